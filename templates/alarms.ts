// The stack's alarm table (CHECKLIST §9, PG-4, TLS-4, LIMIT-4, OBS-8): one pure list that the
// Monitoring component turns into CloudWatch alarms, the dashboard lays out by checklist
// section, and the runbooks turn into "what to do when <alarm> fires" — so an alarm cannot
// exist without its runbook entry, nor a runbook entry name an alarm that does not exist.
// Pure: no Pulumi import.
import type { HostId, StackModel } from "../lib/model";
import { throwIfAny } from "../lib/problems";
import { AGENT_METRICS, watchedMounts, WATCHED_FSTYPE } from "./cloudwatch-agent";
import {
  DIMENSIONS,
  METRIC_NAMESPACES,
  METRICS,
  ROUTE_CLASSES,
  WATCHED_PROCESSES,
  INTERNAL_CA_CERTIFICATE,
  metricsCollectorSettingsFor,
  type RouteClass,
} from "./metrics";
import { LISTEN_DATABASE } from "./pgbouncer";

/** The dashboard's rows, in checklist order; every alarm belongs to one. */
export const DASHBOARD_SECTIONS = [
  { id: "limits", title: "4. Odoo: concurrency and limits", checklist: ["LIMIT-3", "LIMIT-4", "OBS-5", "OBS-6"] },
  { id: "pool", title: "5. PgBouncer: pool and queue", checklist: ["POOL-2", "POOL-3", "OBS-1", "OBS-2"] },
  { id: "tls", title: "7. TLS: certificate expiry", checklist: ["TLS-4"] },
  { id: "postgres", title: "8. PostgreSQL: connections, locks, autovacuum", checklist: ["PG-1", "PG-4", "OBS-7"] },
  { id: "odoo", title: "9. Odoo: latency and errors", checklist: ["OBS-4", "OBS-5"] },
  { id: "host", title: "9. Hosts: CPU, memory, swap, disk, network, file descriptors", checklist: ["OBS-8"] },
  { id: "backups", title: "10. Backups and restore drills", checklist: ["BACKUP-1", "BACKUP-2"] },
] as const;
export type DashboardSectionId = (typeof DASHBOARD_SECTIONS)[number]["id"];

/** Runbook procedures (templates/runbooks.ts renders each); an alarm's response points at them. */
export const PROCEDURES = [
  "pgbouncer-queue",
  "long-transactions",
  "locks",
  "autovacuum",
  "odoo-errors",
  "cron",
  "latency",
  "host-resources",
  "file-descriptors",
  "certificates",
  "collector",
  "backups",
  "restart-pending",
  "rotate-internal-ca",
] as const;
export type Procedure = (typeof PROCEDURES)[number];

export type Comparison = "GreaterThanThreshold" | "GreaterThanOrEqualToThreshold" | "LessThanThreshold" | "LessThanOrEqualToThreshold";

export interface AlarmSpec {
  /** Unique, kebab-case; the alarm's name is `<project>-<stack>-<id>`. */
  readonly id: string;
  readonly name: string;
  readonly section: DashboardSectionId;
  readonly checklist: readonly string[];
  /** One line: what crossed which line, for the alarm description and the runbook. */
  readonly summary: string;
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly statistic: "Maximum" | "Minimum" | "Sum" | "Average";
  readonly period: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly threshold: number;
  readonly comparisonOperator: Comparison;
  /** "breaching" where silence itself is the failure (the collector stopped). */
  readonly treatMissingData: "breaching" | "notBreaching" | "missing";
  /** Why this matters and the first thing to do; the procedures hold the commands. */
  readonly response: string;
  readonly procedures: readonly Procedure[];
}

/** Thresholds with their defaults, stated once (MonitoringArgs.thresholds overrides any). */
export interface MonitoringThresholds {
  /** Seconds the oldest client may wait in PgBouncer's queue (maxwait). */
  readonly maxWaitSeconds: number;
  readonly oldestTransactionSeconds: number;
  readonly connectionsUsedPercent: number;
  readonly deadTuplesPercent: number;
  readonly transactionIdAge: number;
  readonly latencyP99Seconds: Readonly<Record<RouteClass, number>>;
  readonly http5xxPercent: number;
  readonly cronRunningSeconds: number;
  readonly diskUsedPercent: number;
  readonly memoryUsedPercent: number;
  readonly swapUsedPercent: number;
  readonly fdUsedPercent: number;
  readonly certificateDays: number;
  readonly internalCaDays: number;
}

export const MONITORING_DEFAULTS: MonitoringThresholds = {
  // A second in the queue is a second added to every request behind it: the pool is too small
  // or a server connection is held by something slow (POOL-2, OBS-1).
  maxWaitSeconds: 1,
  // Five minutes holds row locks and stops vacuum from cleaning anything newer (LIMIT-4, PG-4);
  // Odoo's own requests end well before (reports aside, which rarely hold a write transaction).
  oldestTransactionSeconds: 300,
  // Headroom for the admin, backup and monitoring slots sizing reserves (PG-1).
  connectionsUsedPercent: 85,
  // autovacuum_vacuum_scale_factor is 20 %: a table past it for an hour is not being vacuumed.
  deadTuplesPercent: 20,
  // 2.5 × autovacuum_freeze_max_age (200 M): anti-wraparound vacuum is not keeping up.
  transactionIdAge: 500_000_000,
  // What users feel as slow (OBS-4); reports render PDFs and get a minute.
  latencyP99Seconds: { login: 2, list: 3, write: 3, report: 60 },
  http5xxPercent: 1,
  // A cron holding a transaction for 30 min: batch it (LIMIT-4).
  cronRunningSeconds: 1800,
  diskUsedPercent: 85,
  memoryUsedPercent: 90,
  swapUsedPercent: 10,
  // OBS-8: "file descriptors (especially PgBouncer)" — each client and server is one fd.
  fdUsedPercent: 80,
  // TLS-4: three weeks leaves two renewal attempts of certbot (every 12 h) many times over,
  // and time to reissue an internal certificate by `pulumi up`.
  certificateDays: 21,
  // TLS-4: the internal CA is never renewed in place (lib/internal-ca.ts); half a year leaves time
  // for its rotation's three `pulumi up`s in quiet weeks.
  internalCaDays: 180,
};

export type MonitoringThresholdOverrides = Partial<Omit<MonitoringThresholds, "latencyP99Seconds">> & {
  readonly latencyP99Seconds?: Partial<Readonly<Record<RouteClass, number>>>;
};

/** Every problem with the thresholds, one message each naming the key; empty when valid. */
export function checkMonitoringThresholds(o: MonitoringThresholdOverrides): string[] {
  const problems: string[] = [];
  const percentKeys = [
    "connectionsUsedPercent",
    "deadTuplesPercent",
    "http5xxPercent",
    "diskUsedPercent",
    "memoryUsedPercent",
    "swapUsedPercent",
    "fdUsedPercent",
  ] as const;
  for (const key of percentKeys) {
    const v = o[key];
    if (v !== undefined && !(v > 0 && v <= 100)) problems.push(`'thresholds.${key}' must be a percentage in (0, 100], got ${v}.`);
  }
  for (const key of [
    "maxWaitSeconds",
    "oldestTransactionSeconds",
    "cronRunningSeconds",
    "certificateDays",
    "internalCaDays",
    "transactionIdAge",
  ] as const) {
    const v = o[key];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) problems.push(`'thresholds.${key}' must be a positive number, got ${v}.`);
  }
  for (const [c, v] of Object.entries(o.latencyP99Seconds ?? {})) {
    if (!(ROUTE_CLASSES as readonly string[]).includes(c))
      problems.push(`'thresholds.latencyP99Seconds.${c}' is not a route class; use ${ROUTE_CLASSES.join(", ")}.`);
    else if (!(Number.isFinite(v) && (v as number) > 0))
      problems.push(`'thresholds.latencyP99Seconds.${c}' must be a positive number of seconds, got ${v}.`);
  }
  if (o.certificateDays !== undefined && o.certificateDays > 60)
    problems.push(
      `'thresholds.certificateDays' = ${o.certificateDays}: certbot renews 30 days before expiry, so an alarm over 60 days would always fire.`,
    );
  return problems;
}

export function resolveThresholds(o: MonitoringThresholdOverrides = {}): MonitoringThresholds {
  const problems = checkMonitoringThresholds(o);
  throwIfAny("monitoring thresholds", problems);
  return {
    ...MONITORING_DEFAULTS,
    ...o,
    latencyP99Seconds: { ...MONITORING_DEFAULTS.latencyP99Seconds, ...(o.latencyP99Seconds ?? {}) },
  } as MonitoringThresholds;
}

/** `<project>-<stack>-<id>`: what the console, the SNS mail and the runbook all show. */
export const alarmName = (model: StackModel, id: string): string => `${model.project}-${model.stack}-${id}`;

/** A mount point as an alarm id segment: "/" → "root", "/var/lib/postgresql" → "var-lib-postgresql". */
const mountId = (mount: string): string => (mount === "/" ? "root" : mount.replace(/^\/+/, "").replace(/\//g, "-"));

/** The stack's alarms, in a stable order (section, then id). */
export function monitoringAlarms(model: StackModel, overrides: MonitoringThresholdOverrides = {}): AlarmSpec[] {
  const t = resolveThresholds(overrides);
  const stack = { [DIMENSIONS.stack]: model.stack };
  const out: AlarmSpec[] = [];
  const add = (a: Omit<AlarmSpec, "name">) => out.push({ ...a, name: alarmName(model, a.id) });
  const perMinute = { period: 60 } as const;
  const pgbouncerDatabases = [...model.settings.databases, LISTEN_DATABASE];

  // --- 5. PgBouncer (OBS-1) ---------------------------------------------------------------------
  for (const db of pgbouncerDatabases) {
    add({
      id: `pgbouncer-clients-waiting-${db}`,
      section: "pool",
      checklist: ["OBS-1", "POOL-2"],
      summary: `Clients of database ${db} waited in PgBouncer's queue (cl_waiting > 0) in 3 of the last 5 minutes.`,
      namespace: METRIC_NAMESPACES.pgbouncer,
      metricName: METRICS.clientsWaiting,
      dimensions: { ...stack, [DIMENSIONS.database]: db },
      statistic: "Maximum",
      ...perMinute,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
      response:
        "Every server connection of the pool is busy and requests queue before reaching PostgreSQL. Look at the queue, then at who holds the server connections (long transactions, locks) before growing the pool.",
      procedures: ["pgbouncer-queue", "long-transactions", "locks"],
    });
    add({
      id: `pgbouncer-maxwait-${db}`,
      section: "pool",
      checklist: ["OBS-1"],
      summary: `The oldest waiting client of database ${db} waited more than ${t.maxWaitSeconds} s (maxwait) in 2 of the last 3 minutes.`,
      namespace: METRIC_NAMESPACES.pgbouncer,
      metricName: METRICS.maxWaitSeconds,
      dimensions: { ...stack, [DIMENSIONS.database]: db },
      statistic: "Maximum",
      ...perMinute,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      threshold: t.maxWaitSeconds,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
      response:
        "Users wait for a database connection before Odoo even runs their request. Same cause as a queue, worse: find what holds the server connections.",
      procedures: ["pgbouncer-queue", "long-transactions", "locks"],
    });
  }

  // --- 8. PostgreSQL (OBS-7, PG-1, PG-4) -----------------------------------------------------------
  // The collector publishes these from the database host, or for RDS from the PgBouncer host.
  postgresAlarms(model, t, add);

  // --- 9. Odoo: latency and errors (OBS-4, OBS-5) ---------------------------------------------------
  for (const c of ROUTE_CLASSES) {
    add({
      id: `odoo-p99-${c}`,
      section: "odoo",
      checklist: ["OBS-4"],
      summary: `p99 of ${c} requests over ${t.latencyP99Seconds[c]} s in 3 consecutive 5-minute periods.`,
      namespace: METRIC_NAMESPACES.odoo,
      metricName: METRICS.latencyP99,
      dimensions: { ...stack, [DIMENSIONS.routeClass]: c },
      statistic: "Maximum",
      period: 300,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      threshold: t.latencyP99Seconds[c],
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
      response: `The slowest 1 % of ${c} requests is slower than the target. Check the PgBouncer queue first (waiting for a connection), then locks, then the slow statements.`,
      procedures: ["latency", "pgbouncer-queue", "locks"],
    });
  }
  add({
    id: "odoo-5xx-rate",
    section: "odoo",
    checklist: ["OBS-5"],
    summary: `More than ${t.http5xxPercent} % of requests answered 5xx in 2 consecutive 5-minute periods.`,
    namespace: METRIC_NAMESPACES.odoo,
    metricName: METRICS.http5xxPercent,
    dimensions: stack,
    statistic: "Maximum",
    period: 300,
    evaluationPeriods: 2,
    datapointsToAlarm: 2,
    threshold: t.http5xxPercent,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
    response:
      "Odoo fails requests (500), is down (502) or too slow for the proxy (504). Read Odoo's log for the tracebacks at the same minutes.",
    procedures: ["odoo-errors", "latency"],
  });
  const odooErrorAlarm = (id: string, metric: string, what: string, procedures: readonly Procedure[], period = 300) =>
    add({
      id,
      section: id.startsWith("odoo-worker") || id.startsWith("odoo-cron") ? "limits" : "odoo",
      checklist: id.startsWith("odoo-worker") ? ["OBS-5", "LIMIT-3"] : ["OBS-5"],
      summary: `${what} (any in ${period / 60} minutes).`,
      namespace: METRIC_NAMESPACES.odoo,
      metricName: metric,
      dimensions: stack,
      statistic: "Sum",
      period,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
      response: `${what}: users saw an error. The Odoo log has the request or job at the same minute.`,
      procedures,
    });
  odooErrorAlarm("odoo-upstream-timeouts", METRICS.upstreamTimeouts, "The proxy gave up waiting for Odoo (504)", [
    "latency",
    "odoo-errors",
  ]);
  odooErrorAlarm("odoo-worker-time-limit", METRICS.workerTimeLimitKills, "An Odoo worker was killed by limit_time_real/limit_time_cpu", [
    "odoo-errors",
    "long-transactions",
  ]);
  odooErrorAlarm("odoo-pool-full", METRICS.poolFullErrors, "An Odoo worker found its connection pool full (PoolError)", [
    "odoo-errors",
    "pgbouncer-queue",
  ]);
  odooErrorAlarm("odoo-deadlocks", METRICS.deadlocks, "PostgreSQL broke a deadlock in an Odoo transaction", ["locks", "odoo-errors"]);
  add({
    id: "odoo-worker-memory-limit",
    section: "limits",
    checklist: ["OBS-5", "LIMIT-3"],
    summary: "Odoo recycled 10 or more workers for limit_memory_soft within an hour.",
    namespace: METRIC_NAMESPACES.odoo,
    metricName: METRICS.workerMemoryLimitKills,
    dimensions: stack,
    statistic: "Sum",
    period: 3600,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    threshold: 10,
    comparisonOperator: "GreaterThanOrEqualToThreshold",
    treatMissingData: "notBreaching",
    response:
      "Recycling after a request is normal now and then; this often means a request pattern (large exports, imports) that needs more memory or batching.",
    procedures: ["odoo-errors", "host-resources"],
  });
  add({
    id: "odoo-cron-overlap",
    section: "limits",
    checklist: ["OBS-6", "LIMIT-4"],
    summary: "A cron job started again while its previous run had not finished (any in 15 minutes).",
    namespace: METRIC_NAMESPACES.odoo,
    metricName: METRICS.cronOverlaps,
    dimensions: stack,
    statistic: "Sum",
    period: 900,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    threshold: 0,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
    response: "Cron runs pile up (backlog): a job takes longer than its interval.",
    procedures: ["cron", "long-transactions"],
  });
  add({
    id: "odoo-cron-long-running",
    section: "limits",
    checklist: ["OBS-6", "LIMIT-4"],
    summary: `A cron job has been running for more than ${t.cronRunningSeconds} s.`,
    namespace: METRIC_NAMESPACES.odoo,
    metricName: METRICS.cronLongestRunningSeconds,
    dimensions: stack,
    statistic: "Maximum",
    ...perMinute,
    evaluationPeriods: 2,
    datapointsToAlarm: 2,
    threshold: t.cronRunningSeconds,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
    response: "A long cron usually means one long transaction: locks held, vacuum blocked (LIMIT-4). Batch it with intermediate commits.",
    procedures: ["cron", "long-transactions", "locks"],
  });

  // --- 9. Hosts (OBS-8) and 7. TLS (TLS-4), per host ---------------------------------------------------
  for (const host of model.allHosts) hostAlarms(model, host, t, add);

  const order = new Map(DASHBOARD_SECTIONS.map((s, i) => [s.id as string, i]));
  return out.sort(
    (a, b) => (order.get(a.section) as number) - (order.get(b.section) as number) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

function postgresAlarms(model: StackModel, t: MonitoringThresholds, add: (a: Omit<AlarmSpec, "name">) => void): void {
  const stack = { [DIMENSIONS.stack]: model.stack };
  const perMinute = { period: 60 } as const;
  add({
    id: "postgres-long-transaction",
    section: "postgres",
    checklist: ["OBS-7", "LIMIT-4", "PG-2"],
    summary: `A transaction has been open for more than ${t.oldestTransactionSeconds} s (pg_stat_activity.xact_start) for 2 minutes.`,
    namespace: METRIC_NAMESPACES.postgres,
    metricName: METRICS.oldestTransactionSeconds,
    dimensions: stack,
    statistic: "Maximum",
    ...perMinute,
    evaluationPeriods: 2,
    datapointsToAlarm: 2,
    threshold: t.oldestTransactionSeconds,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
    response:
      "A long transaction holds its locks and a pooled server connection, and stops vacuum from removing newer dead rows. Identify it (often a cron or a manual session) and end it if it is not doing useful work.",
    procedures: ["long-transactions", "locks", "cron"],
  });
  add({
    id: "postgres-lock-waiters",
    section: "postgres",
    checklist: ["OBS-7", "PG-3"],
    summary: "Sessions waited on a lock (wait_event_type = Lock) in 3 of the last 5 minutes.",
    namespace: METRIC_NAMESPACES.postgres,
    metricName: METRICS.sessionsWaitingOnLocks,
    dimensions: stack,
    statistic: "Maximum",
    ...perMinute,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    threshold: 0,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
    response:
      "Requests are blocked behind another transaction's row or table lock; lock_timeout (PG-2) will fail them. Find the blocking pid and what it is doing.",
    procedures: ["locks", "long-transactions"],
  });
  add({
    id: "postgres-connections",
    section: "postgres",
    checklist: ["PG-1"],
    summary: `More than ${t.connectionsUsedPercent} % of max_connections in use for 3 minutes.`,
    namespace: METRIC_NAMESPACES.postgres,
    metricName: METRICS.connectionsUsedPercent,
    dimensions: stack,
    statistic: "Maximum",
    ...perMinute,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    threshold: t.connectionsUsedPercent,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
    response:
      "PgBouncer's pools are sized to fit max_connections (PG-1); connections beyond them come from outside the pools (a bastion session, a script). Find them by application_name and client address.",
    procedures: ["long-transactions", "pgbouncer-queue"],
  });
  // PG-1: a max_connections raised for a bigger Odoo host is installed and reloaded, but takes
  // effect only at a restart the operator schedules; until then PgBouncer's pools may exceed it.
  // The collector publishes it on the database host only (RDS: its parameter group's status).
  if (model.settings.postgresEngine === "ec2") {
    add({
      id: "postgres-restart-pending",
      section: "postgres",
      checklist: ["PG-1"],
      summary: "A setting PostgreSQL applies only at restart (pg_settings.pending_restart) has waited for a restart for an hour.",
      namespace: METRIC_NAMESPACES.postgres,
      metricName: METRICS.pendingRestartSettings,
      dimensions: stack,
      statistic: "Minimum",
      period: 3600,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
      response:
        "A changed setting (max_connections, shared_buffers) is installed but not in force: the apply script never restarts PostgreSQL by itself. Schedule the restart for a quiet time, or restart now.",
      procedures: ["restart-pending"],
    });
  }
  for (const db of model.settings.databases) {
    add({
      id: `postgres-dead-tuples-${db}`,
      section: "postgres",
      checklist: ["PG-4"],
      summary: `More than ${t.deadTuplesPercent} % of the rows of database ${db} are dead, for an hour.`,
      namespace: METRIC_NAMESPACES.postgres,
      metricName: METRICS.deadTuplesPercent,
      dimensions: { ...stack, [DIMENSIONS.database]: db },
      statistic: "Minimum",
      period: 3600,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      threshold: t.deadTuplesPercent,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
      response:
        "Autovacuum is not keeping up (or a long transaction prevents it): tables and indexes bloat and queries slow down over days.",
      procedures: ["autovacuum", "long-transactions"],
    });
    add({
      id: `postgres-xid-age-${db}`,
      section: "postgres",
      checklist: ["PG-4"],
      summary: `age(datfrozenxid) of database ${db} is over ${t.transactionIdAge} transactions.`,
      namespace: METRIC_NAMESPACES.postgres,
      metricName: METRICS.transactionIdAge,
      dimensions: { ...stack, [DIMENSIONS.database]: db },
      statistic: "Maximum",
      period: 3600,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      threshold: t.transactionIdAge,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
      response:
        "Anti-wraparound vacuum is falling behind; at 2 billion PostgreSQL stops accepting writes. Find the oldest tables and vacuum them.",
      procedures: ["autovacuum", "long-transactions"],
    });
  }
}

function hostAlarms(model: StackModel, host: HostId, t: MonitoringThresholds, add: (a: Omit<AlarmSpec, "name">) => void): void {
  const dims = { [DIMENSIONS.stack]: model.stack, [DIMENSIONS.host]: host.id };
  const fiveMinutes = { period: 300, evaluationPeriods: 2, datapointsToAlarm: 2, treatMissingData: "notBreaching" } as const;
  for (const mount of watchedMounts(host.role)) {
    add({
      id: `host-disk-${host.id}-${mountId(mount)}`,
      section: "host",
      checklist: ["OBS-8"],
      summary: `${mount} on ${host.id} is more than ${t.diskUsedPercent} % full.`,
      namespace: METRIC_NAMESPACES.host,
      metricName: AGENT_METRICS.diskUsedPercent,
      dimensions: { ...dims, path: mount, fstype: WATCHED_FSTYPE },
      statistic: "Maximum",
      ...fiveMinutes,
      threshold: t.diskUsedPercent,
      comparisonOperator: "GreaterThanThreshold",
      response:
        host.role === "postgres" && mount !== "/"
          ? "PostgreSQL stops when its volume fills (WAL included): grow the EBS volume now, then find what grew."
          : "Logs or temp files are filling the disk; find the largest directories.",
      procedures: ["host-resources"],
    });
  }
  add({
    id: `host-memory-${host.id}`,
    section: "host",
    checklist: ["OBS-8"],
    summary: `Memory of ${host.id} more than ${t.memoryUsedPercent} % used for 10 minutes.`,
    namespace: METRIC_NAMESPACES.host,
    metricName: AGENT_METRICS.memUsedPercent,
    dimensions: dims,
    statistic: "Minimum",
    ...fiveMinutes,
    threshold: t.memoryUsedPercent,
    comparisonOperator: "GreaterThanThreshold",
    response:
      "Next stop is the OOM killer. On Odoo hosts look for workers far above the ~134 MiB an idle one holds (ps -o rss,vsz -C odoo): limit_memory_hard caps one process's address space, not the sum; lower odoo.workers or pick a larger odooInstanceType (LIMIT-1, LIMIT-3).",
    procedures: ["host-resources"],
  });
  add({
    id: `host-swap-${host.id}`,
    section: "host",
    checklist: ["OBS-8"],
    summary: `Swap of ${host.id} more than ${t.swapUsedPercent} % used for 10 minutes.`,
    namespace: METRIC_NAMESPACES.host,
    metricName: AGENT_METRICS.swapUsedPercent,
    dimensions: dims,
    statistic: "Minimum",
    ...fiveMinutes,
    threshold: t.swapUsedPercent,
    comparisonOperator: "GreaterThanThreshold",
    response: "A host that swaps answers in seconds instead of milliseconds.",
    procedures: ["host-resources"],
  });
  for (const p of WATCHED_PROCESSES[host.role]) {
    add({
      id: `host-fds-${host.id}-${p.name}`,
      section: "host",
      checklist: ["OBS-8"],
      summary: `${p.name} on ${host.id} uses ${t.fdUsedPercent} % or more of its open-files limit.`,
      namespace: METRIC_NAMESPACES.host,
      metricName: METRICS.fdUsedPercent,
      dimensions: { ...dims, [DIMENSIONS.process]: p.name },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      threshold: t.fdUsedPercent,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      treatMissingData: "notBreaching",
      response: `At the limit ${p.name} refuses new connections ("Too many open files").`,
      procedures: ["file-descriptors"],
    });
  }
  for (const cert of metricsCollectorSettingsFor(model, host).certificates) {
    const internalCa = cert.name === INTERNAL_CA_CERTIFICATE;
    const days = internalCa ? t.internalCaDays : t.certificateDays;
    add({
      id: `tls-expiry-${host.id}-${cert.name}`,
      section: "tls",
      checklist: ["TLS-4"],
      summary: `The ${cert.name} certificate on ${host.id} (${cert.path}) expires in less than ${days} days.`,
      namespace: METRIC_NAMESPACES.tls,
      metricName: METRICS.certificateDaysToExpiry,
      dimensions: { ...dims, [DIMENSIONS.certificate]: cert.name },
      statistic: "Minimum",
      period: 3600,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      threshold: days,
      comparisonOperator: "LessThanThreshold",
      treatMissingData: "notBreaching",
      response:
        cert.name === "public"
          ? "certbot's renewal is failing (or the imported certificate was not replaced)."
          : internalCa
            ? "The internal CA is never renewed in place: rotate it to its next generation (procedure rotate-internal-ca)."
            : "The internal CA's host certificates are re-issued by `pulumi up` before they expire (early renewal); this one was not.",
      procedures: internalCa ? ["certificates", "rotate-internal-ca"] : ["certificates"],
    });
  }
  add({
    id: `collector-silent-${host.id}`,
    section: "host",
    checklist: ["OBS-1", "OBS-8"],
    summary: `The metrics collector of ${host.id} published nothing for 5 minutes: every alarm fed by it is blind.`,
    namespace: METRIC_NAMESPACES.collector,
    metricName: METRICS.collectorRuns,
    dimensions: dims,
    statistic: "Sum",
    period: 300,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    threshold: 1,
    comparisonOperator: "LessThanThreshold",
    treatMissingData: "breaching",
    response: "The host is down, the timer stopped, or the collector cannot reach CloudWatch.",
    procedures: ["collector"],
  });
  add({
    id: `collector-errors-${host.id}`,
    section: "host",
    checklist: ["OBS-1", "OBS-8"],
    summary: `A source of the metrics collector on ${host.id} failed in 3 consecutive runs.`,
    namespace: METRIC_NAMESPACES.collector,
    metricName: METRICS.collectorErrors,
    dimensions: dims,
    statistic: "Minimum",
    period: 60,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    threshold: 0,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
    response: "One source (psql login, a log file, a certificate) fails while the others publish: its alarms are blind.",
    procedures: ["collector"],
  });
}

/**
 * The alarms BackupPlan creates (components/backup-plan.ts), named from this list, for the
 * runbook: their responses are in the backup runbook. Ids are BackupPlan's resource suffixes.
 */
export function backupAlarmEntries(model: StackModel): readonly BackupAlarmEntry[] {
  const entry = (id: string, checklist: string, summary: string): BackupAlarmEntry => ({
    id,
    name: alarmName(model, id),
    checklist: [checklist],
    summary,
  });
  return [
    // pgBackRest and its drill live on the PostgreSQL host: RDS stacks have neither.
    ...(model.settings.postgresEngine === "ec2"
      ? [
          entry("restore-drill-stale", "BACKUP-2", "No successful restore drill within the window, or the hourly report stopped."),
          entry("restore-drill-rto", "BACKUP-2", "The last restore drill took longer than the RTO target."),
          entry("backup-age", "BACKUP-1", "The newest pgBackRest backup is older than 26 h, or the hourly report stopped."),
        ]
      : []),
    ...model.hosts.odoo.map((h) =>
      entry(`filestore-sync-${h.id}`, "BACKUP-1", `The hourly filestore copy of ${h.id} has not succeeded for 3 hours.`),
    ),
  ];
}

export interface BackupAlarmEntry {
  /** BackupPlan's resource suffix. */
  readonly id: string;
  /** `<project>-<stack>-<id>`, the name BackupPlan gives the alarm: what the console and SNS show. */
  readonly name: string;
  readonly checklist: readonly string[];
  readonly summary: string;
}
