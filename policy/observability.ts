// Minimal observability: CHECKLIST §9. OBS-3 is a property a resource shows (PgBouncer's logging
// keys); the other items are jobs and alarms (J): the pack checks that the alarms exist for what
// the hosts' collectors publish and notify the alarm topic, and that the instances publish
// one-minute EC2 metrics. Whether the alarms fire is verified where they run.
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { parseNginx, iniInt, parsePgbouncerIni } from "./lib/parse";
import {
  booleanOf,
  fileKindOf,
  fileLabel,
  isRecord,
  referencedResources,
  renderedFiles,
  stringList,
  TYPES,
  UnknownValues,
  validateRenderedFile,
  type RenderedFile,
  type StackResourceView,
} from "./lib/resources";

const LOGGING_KEYS = ["log_connections", "log_disconnections", "log_pooler_errors"] as const;

/**
 * OBS-3: PgBouncer logs connections, disconnections and pooler errors (the trail of a pool
 * running full or a client refused). All three default to 1; the policy asks for them to be
 * written so a copied config cannot switch them off unnoticed.
 */
export const pgbouncerLoggingEnabled: ResourceValidationPolicy = {
  name: "pgbouncer-logging-enabled",
  description: `Checks whether pgbouncer.ini sets ${LOGGING_KEYS.map((k) => `${k} = 1`).join(", ")} (OBS-3).`,
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const settings = parsePgbouncerIni(file.content).settings;
    for (const key of LOGGING_KEYS) {
      const raw = settings.get(key);
      const n = iniInt(raw);
      // PgBouncer reads these as integers; any non-zero value enables them.
      if (n === undefined || n === 0)
        report(`${fileLabel(file)} must set ${key} = 1; it is ${raw === undefined ? "absent" : JSON.stringify(raw)} (OBS-3).`);
    }
  }),
};

/**
 * OBS-8: the alarms and the dashboard work on one-minute periods; without detailed monitoring
 * EC2 publishes its own metrics (CPU, network, status checks, CPU credits) every five minutes.
 */
export const instanceDetailedMonitoring: ResourceValidationPolicy = {
  name: "instance-detailed-monitoring",
  description: "Checks whether every EC2 instance and launch template enables detailed (one-minute) monitoring (OBS-8).",
  validateResource: (args, reportViolation) => {
    if (args.type === TYPES.instance) {
      if (booleanOf(args.props.monitoring) !== true)
        reportViolation(
          `EC2 instance (${args.name}) must enable detailed monitoring (monitoring = true): the host alarms evaluate one-minute periods (OBS-8).`,
        );
    } else if (args.type === TYPES.launchTemplate) {
      const m = isRecord(args.props.monitoring) ? args.props.monitoring : {};
      if (booleanOf(m.enabled) !== true)
        reportViolation(
          `Launch template (${args.name}) must enable detailed monitoring (monitoring.enabled = true): the host alarms evaluate one-minute periods (OBS-8).`,
        );
    }
  },
};

const METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm";
const SNS_TOPIC = "aws:sns/topic:Topic";

/** The collector config a host receives (templates/metrics.ts), as far as the alarms need it. */
interface CollectorConfig {
  readonly stack: string;
  readonly host: string;
  readonly namespaces: Readonly<Record<string, string>>;
  readonly metrics: Readonly<Record<string, string>>;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly certificates: readonly { readonly name: string; readonly path: string }[];
  readonly processes: readonly string[];
  readonly raw: Readonly<Record<string, unknown>>;
}

function collectorConfig(file: RenderedFile): CollectorConfig | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(file.content);
  } catch {
    return undefined;
  }
  if (!isRecord(doc)) return undefined;
  const record = (v: unknown): Record<string, string> =>
    isRecord(v) ? Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === "string")) : {};
  const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.filter(isRecord) : []);
  return {
    stack: String(doc.stack ?? ""),
    host: String(doc.host ?? file.host),
    namespaces: record(doc.namespaces),
    metrics: record(doc.metrics),
    dimensions: record(doc.dimensions),
    certificates: list(doc.certificates).map((c) => ({ name: String(c.name ?? ""), path: String(c.path ?? "") })),
    processes: list(doc.processes).map((p) => String(p.name ?? "")),
    raw: doc,
  };
}

/** One alarm the checklist needs: on which published metric, with exactly which dimensions. */
interface NeededAlarm {
  readonly item: string;
  readonly area: string;
  readonly metric: string;
  /** Dimension keys of the collector config (stack, host, database, …) → value. */
  readonly dims: Readonly<Record<string, string>>;
  readonly what: string;
}

/**
 * What must be alarmed, read from what each host's collector publishes (its metrics.json) and,
 * for the pools, from the pgbouncer.ini on the same host: the checklist's observability items
 * (OBS-1, OBS-4 … OBS-8), autovacuum (PG-4) and certificate expiry (TLS-4).
 */
function neededAlarms(config: CollectorConfig, pgbouncerDatabases: readonly string[]): NeededAlarm[] {
  const out: NeededAlarm[] = [];
  const stack = { stack: config.stack };
  const host = { ...stack, host: config.host };
  const need = (item: string, area: string, metric: string, dims: Record<string, string>, what: string) =>
    out.push({ item, area, metric, dims, what });
  need("OBS-8", "collector", "collectorRuns", host, `the collector of ${config.host} publishing at all`);
  for (const p of config.processes) need("OBS-8", "host", "fdUsedPercent", { ...host, process: p }, `open files of ${p} on ${config.host}`);
  for (const c of config.certificates)
    need(
      "TLS-4",
      "tls",
      "certificateDaysToExpiry",
      { ...host, certificate: c.name },
      `expiry of the ${c.name} certificate on ${config.host}`,
    );
  const { raw } = config;
  if (isRecord(raw.pgbouncer)) {
    for (const db of pgbouncerDatabases) {
      need("OBS-1", "pgbouncer", "clientsWaiting", { ...stack, database: db }, `clients waiting (cl_waiting) for ${db}`);
      need("OBS-1", "pgbouncer", "maxWaitSeconds", { ...stack, database: db }, `maxwait of ${db}`);
    }
  }
  if (isRecord(raw.accessLog)) {
    for (const c of stringList(raw.accessLog.classes))
      need("OBS-4", "odoo", "latencyP99", { ...stack, routeClass: c }, `p99 latency of ${c} requests`);
    need("OBS-5", "odoo", "http5xxPercent", stack, "the share of 5xx answers");
    need("OBS-5", "odoo", "upstreamTimeouts", stack, "proxy timeouts (504)");
  }
  if (isRecord(raw.odooLog)) {
    for (const e of (Array.isArray(raw.odooLog.events) ? raw.odooLog.events : []).filter(isRecord)) {
      if (typeof e.metric === "string") need("OBS-5", "odoo", e.metric, stack, `Odoo's log events ${e.metric}`);
    }
    if (isRecord(raw.odooLog.cron)) {
      need("OBS-6", "odoo", "cronOverlaps", stack, "overlapping cron runs");
      need("OBS-6", "odoo", "cronLongestRunningSeconds", stack, "the longest running cron");
    }
  }
  if (isRecord(raw.postgres)) {
    need("OBS-7", "postgres", "oldestTransactionSeconds", stack, "the oldest open transaction (xact_start)");
    need("OBS-7", "postgres", "sessionsWaitingOnLocks", stack, "sessions waiting on locks");
    const maintenance = raw.postgres.maintenanceDatabase;
    for (const db of stringList(raw.postgres.databases).filter((d) => d !== maintenance)) {
      need("PG-4", "postgres", "deadTuplesPercent", { ...stack, database: db }, `dead tuples of ${db}`);
      need("PG-4", "postgres", "transactionIdAge", { ...stack, database: db }, `transaction ID age of ${db}`);
    }
  }
  return out;
}

/** Certificate files a host holds: delivered .crt files and the certificates its nginx serves. */
function certificatePaths(files: readonly RenderedFile[]): string[] {
  const paths = new Set<string>();
  for (const f of files) {
    if (f.path.endsWith(".crt")) paths.add(f.path);
    const kind = fileKindOf(f.path);
    if (kind === "nginx-site" || kind === "nginx.conf") {
      const visit = (
        block: readonly { readonly name: string; readonly args: readonly string[]; readonly block?: readonly unknown[] }[],
      ) => {
        for (const d of block) {
          if (d.name === "ssl_certificate" && d.args[0] && !d.args[0].includes("$")) paths.add(d.args[0]);
          if (d.block) visit(d.block as typeof block);
        }
      };
      visit(parseNginx(f.content));
    }
  }
  return [...paths];
}

/**
 * OBS-1, OBS-4 … OBS-8, PG-4, TLS-4: every signal the checklist asks to be alarmed, for what each
 * host's collector publishes, has a CloudWatch alarm on exactly that metric and dimension set
 * (CloudWatch matches dimensions exactly: one more or one less and the alarm never sees a datum)
 * whose actions notify an SNS topic of the stack; and the collector watches every certificate
 * its host holds.
 */
export const checklistAlarmsNotifyTopic: StackValidationPolicy = {
  name: "checklist-alarms-notify-topic",
  description:
    "Checks whether every signal the checklist's observability and TLS items need (cl_waiting and maxwait per pool, p99 per route class, Odoo errors, cron overlap, long transactions and lock waits, autovacuum, host file descriptors and collector liveness, certificate expiry) has an alarm on the published metric that notifies the stack's alarm topic (OBS-1, OBS-4, OBS-5, OBS-6, OBS-7, OBS-8, PG-4, TLS-4).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    const topics = resources.filter((r) => r.type === SNS_TOPIC);
    const alarms = resources.filter((r) => r.type === METRIC_ALARM);
    const topicArns = topics.map((t) => unknown.run(() => t.props.arn)).filter((a): a is string => typeof a === "string" && a !== "");
    const notifies = (alarm: StackResourceView): boolean =>
      booleanOf(alarm.props.actionsEnabled) !== false &&
      (referencedResources(alarm, "alarmActions", topics, () => []).length > 0 ||
        stringList(alarm.props.alarmActions).some((a) => topicArns.includes(a)));
    for (const metricsFile of files.filter((f) => fileKindOf(f.path) === "metrics")) {
      unknown.run(() => {
        const config = collectorConfig(metricsFile);
        if (!config) return;
        const hostFiles = files.filter((f) => f.host === metricsFile.host);
        const pools = hostFiles
          .filter((f) => fileKindOf(f.path) === "pgbouncer.ini")
          .flatMap((f) => parsePgbouncerIni(f.content).databases.map((d) => d.name))
          .filter((d) => d !== "*");
        for (const need of neededAlarms(config, [...new Set(pools)])) {
          const namespace = config.namespaces[need.area];
          const metricName = config.metrics[need.metric];
          if (namespace === undefined || metricName === undefined) {
            reportViolation(
              `${fileLabel(metricsFile)} must name the namespace and metric of ${need.what} (${need.area}, ${need.metric}), so an alarm can watch it (${need.item}).`,
              metricsFile.resource.urn,
            );
            continue;
          }
          const dims = Object.fromEntries(Object.entries(need.dims).map(([k, v]) => [config.dimensions[k] ?? k, v]));
          const matching = alarms.filter(
            (a) =>
              unknown.run(
                () => a.props.namespace === namespace && a.props.metricName === metricName && sameDimensions(a.props.dimensions, dims),
              ) === true,
          );
          const dimText = Object.entries(dims)
            .map(([k, v]) => `${k}=${v}`)
            .join(", ");
          if (matching.length === 0) {
            reportViolation(
              `${fileLabel(metricsFile)} publishes ${namespace} ${metricName} {${dimText}} (${need.what}), which must have a CloudWatch alarm notifying the stack's alarm topic: none watches it (${need.item}).`,
              metricsFile.resource.urn,
            );
          } else if (!matching.some((a) => unknown.run(() => notifies(a)) !== false)) {
            for (const a of matching) {
              reportViolation(
                `CloudWatch alarm (${a.name}) on ${metricName} {${dimText}} must notify an SNS topic of this stack (alarmActions, actions enabled): ${topics.length === 0 ? "the stack has no topic" : "it notifies none"} (${need.item}).`,
                a.urn,
              );
            }
          }
        }
        const watched = new Set(config.certificates.map((c) => c.path));
        for (const path of certificatePaths(hostFiles).filter((p) => !watched.has(p))) {
          reportViolation(
            `${fileLabel(metricsFile)} must list the certificate ${path} of host ${metricsFile.host} among its certificates, so its expiry is published and alarmed (TLS-4).`,
            metricsFile.resource.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

/** Do an alarm's dimensions equal `wanted` exactly? */
function sameDimensions(actual: unknown, wanted: Readonly<Record<string, string>>): boolean {
  if (!isRecord(actual)) return Object.keys(wanted).length === 0;
  const keys = Object.keys(actual);
  return keys.length === Object.keys(wanted).length && keys.every((k) => actual[k] === wanted[k]);
}

export const policies: Policies = [pgbouncerLoggingEnabled, instanceDetailedMonitoring, checklistAlarmsNotifyTopic];
