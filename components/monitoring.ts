// Monitoring (CHECKLIST §9 and the "J" of PG-4, TLS-4, LIMIT-4): the alarm topic (e-mail from
// settings.alarmEmail), one log group per shipped log with a retention, metric filters where a
// log line alone is the signal, every alarm of templates/alarms.ts, and a dashboard laid out by
// checklist section. The hosts publish the metrics (templates/metrics.ts collector, CloudWatch
// agent); this component only decides what is watched and who hears about it.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackModel } from "../lib/model";
import { throwIfAny } from "../lib/problems";
import {
  DASHBOARD_SECTIONS,
  monitoringAlarms,
  resolveThresholds,
  type AlarmSpec,
  type DashboardSectionId,
  type MonitoringThresholdOverrides,
} from "../templates/alarms";
import { BACKUP_METRIC_NAMESPACE, BACKUP_METRICS, METRIC_DIMENSIONS } from "../templates/backup-units";
import { AGENT_METRICS, LOG_SOURCE_NAMES, logGroupName, type LogSource } from "../templates/cloudwatch-agent";
import {
  DIMENSIONS,
  METRIC_NAMESPACES,
  METRICS,
  metricsCollectorSettingsFor,
  ROUTE_CLASSES,
  WATCHED_PROCESSES,
} from "../templates/metrics";
import { LISTEN_DATABASE } from "../templates/pgbouncer";
import { resourceTags, type TagRole } from "./tags";

/** CloudWatch Logs' allowed retentions, in days (PutRetentionPolicy). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

export const MONITORING_ARGS_DEFAULTS = {
  /** A month of logs: enough to compare with last month's close, cheap enough to keep. */
  logRetentionDays: 30,
} as const;

/**
 * Log lines that are a signal on their own, counted by CloudWatch Logs. Metric filters cannot
 * add a fixed dimension, so these live in a per-stack namespace (metricFilterNamespace).
 */
export const LOG_METRIC_FILTERS: readonly {
  readonly id: string;
  readonly source: LogSource;
  readonly pattern: string;
  readonly metricName: string;
  readonly checklist: string;
}[] = [
  { id: "pooler-errors", source: "pgbouncer", pattern: '"pooler error"', metricName: "PoolerErrors", checklist: "OBS-3" },
  // log_lock_waits (PG-3): "process N still waiting for ShareLock on transaction M after 1000 ms".
  { id: "lock-waits-logged", source: "postgresql", pattern: '"still waiting for"', metricName: "LockWaitsLogged", checklist: "PG-3" },
  { id: "deadlocks-logged", source: "postgresql", pattern: '"deadlock detected"', metricName: "DeadlocksLogged", checklist: "OBS-5" },
  {
    id: "statement-timeouts",
    source: "postgresql",
    pattern: '"canceling statement due to statement timeout"',
    metricName: "StatementTimeouts",
    checklist: "PG-2",
  },
  {
    id: "idle-in-transaction-timeouts",
    source: "postgresql",
    pattern: '"idle-in-transaction timeout"',
    metricName: "IdleInTransactionTimeouts",
    checklist: "PG-2",
  },
];

export const metricFilterNamespace = (model: StackModel): string => `OdooStack/Logs/${model.stack}`;

// Until components/tags.ts lists "monitoring" among the TagRoles (asked of the lead).
const MONITORING_ROLE = "monitoring" as TagRole;

export interface MonitoringArgs {
  readonly model: StackModel;
  /** Threshold overrides. Optional. Defaults to MONITORING_DEFAULTS of templates/alarms.ts. */
  readonly thresholds?: MonitoringThresholdOverrides;
  /** Days of logs kept. Optional. Defaults to 30. */
  readonly logRetentionDays?: number;
}

/** Every problem with the args, numbered in one message; empty when valid. */
export function checkMonitoringArgs(args: Pick<MonitoringArgs, "logRetentionDays" | "thresholds">): string[] {
  const problems: string[] = [];
  const days = args.logRetentionDays ?? MONITORING_ARGS_DEFAULTS.logRetentionDays;
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(days))
    problems.push(`'logRetentionDays' must be one of CloudWatch Logs' retentions (${LOG_RETENTION_DAYS.join(", ")}), got ${days}.`);
  try {
    resolveThresholds(args.thresholds);
  } catch (e) {
    problems.push((e as Error).message);
  }
  return problems;
}

// --- dashboard (pure) ------------------------------------------------------------------------------

type MetricLine = readonly (string | Readonly<Record<string, string>>)[];

interface GraphSpec {
  readonly title: string;
  readonly metrics: readonly MetricLine[];
  readonly stat: string;
  readonly period?: number;
}

/** A metric line of a graph widget: namespace, name, then dimension name/value pairs. */
const line = (
  namespace: string,
  metric: string,
  dims: Readonly<Record<string, string>>,
  options?: Readonly<Record<string, string>>,
): MetricLine => [namespace, metric, ...Object.entries(dims).flat(), ...(options ? [options] : [])];

function sectionGraphs(model: StackModel, section: DashboardSectionId, logNamespace: string): GraphSpec[] {
  const S = { [DIMENSIONS.stack]: model.stack };
  const pool = METRIC_NAMESPACES.pgbouncer;
  const pg = METRIC_NAMESPACES.postgres;
  const odoo = METRIC_NAMESPACES.odoo;
  const host = METRIC_NAMESPACES.host;
  const dbs = [...model.settings.databases, LISTEN_DATABASE];
  const perDb = (ns: string, metric: string, databases: readonly string[] = dbs) =>
    databases.map((db) => line(ns, metric, { ...S, [DIMENSIONS.database]: db }, { label: `${metric} ${db}` }));
  const perHost = (metric: string, extra: (id: string) => Readonly<Record<string, string>> = () => ({})) =>
    model.allHosts.map((h) => line(host, metric, { ...S, [DIMENSIONS.host]: h.id, ...extra(h.id) }, { label: h.id }));
  switch (section) {
    case "limits":
      return [
        {
          title: "Worker kills, pool full, deadlocks (OBS-5, LIMIT-3)",
          stat: "Sum",
          metrics: [METRICS.workerTimeLimitKills, METRICS.workerMemoryLimitKills, METRICS.poolFullErrors, METRICS.deadlocks].map((m) =>
            line(odoo, m, S),
          ),
        },
        {
          title: "Cron duration and overlap (OBS-6, LIMIT-4)",
          stat: "Maximum",
          metrics: [METRICS.cronLongestRunningSeconds, METRICS.cronJobMaxSeconds, METRICS.cronOverlaps, METRICS.cronJobsCompleted].map(
            (m) => line(odoo, m, S),
          ),
        },
      ];
    case "pool":
      return [
        {
          title: "Clients waiting / active (OBS-1)",
          stat: "Maximum",
          metrics: [...perDb(pool, METRICS.clientsWaiting), ...perDb(pool, METRICS.clientsActive)],
        },
        { title: "maxwait, seconds (OBS-1)", stat: "Maximum", metrics: perDb(pool, METRICS.maxWaitSeconds) },
        {
          title: "Server connections (POOL-2, POOL-3)",
          stat: "Maximum",
          metrics: [...perDb(pool, METRICS.serversActive), ...perDb(pool, METRICS.serversIdle), ...perDb(pool, METRICS.serversUsed)],
        },
        { title: "Transactions per second (OBS-2)", stat: "Average", metrics: perDb(pool, METRICS.transactionsPerSecond) },
        {
          title: "Average transaction / query / wait time, µs (OBS-2)",
          stat: "Average",
          metrics: [
            ...perDb(pool, METRICS.avgTransactionMicroseconds),
            ...perDb(pool, METRICS.avgQueryMicroseconds),
            ...perDb(pool, METRICS.avgWaitMicroseconds),
          ],
        },
        { title: "PgBouncer pooler errors (OBS-3)", stat: "Sum", metrics: [line(logNamespace, "PoolerErrors", {})] },
      ];
    case "tls":
      return [
        {
          title: "Certificate days to expiry (TLS-4)",
          stat: "Minimum",
          period: 3600,
          metrics: model.allHosts.flatMap((h) =>
            metricsCollectorSettingsFor(model, h).certificates.map((c) =>
              line(
                METRIC_NAMESPACES.tls,
                METRICS.certificateDaysToExpiry,
                { ...S, [DIMENSIONS.host]: h.id, [DIMENSIONS.certificate]: c.name },
                { label: `${h.id} ${c.name}` },
              ),
            ),
          ),
        },
      ];
    case "postgres":
      return [
        {
          title: "Oldest transaction, seconds (OBS-7)",
          stat: "Maximum",
          metrics: [line(pg, METRICS.oldestTransactionSeconds, S, { label: "cluster" }), ...perDb(pg, METRICS.oldestTransactionSeconds)],
        },
        {
          title: "Sessions waiting on locks (OBS-7, PG-3)",
          stat: "Maximum",
          metrics: [
            line(pg, METRICS.sessionsWaitingOnLocks, S),
            line(logNamespace, "LockWaitsLogged", {}, { stat: "Sum" }),
            line(logNamespace, "DeadlocksLogged", {}, { stat: "Sum" }),
          ],
        },
        {
          title: "Connections by state, % of max_connections (PG-1)",
          stat: "Maximum",
          metrics: [
            ...["active", "idle", "idle in transaction", "idle in transaction (aborted)"].map((st) =>
              line(pg, METRICS.connectionsByState, { ...S, [DIMENSIONS.state]: st }, { label: st }),
            ),
            line(pg, METRICS.connectionsUsedPercent, S, { yAxis: "right" }),
          ],
        },
        {
          title: "Dead tuples % and last autovacuum age (PG-4)",
          stat: "Maximum",
          metrics: [
            ...perDb(pg, METRICS.deadTuplesPercent, model.settings.databases),
            ...perDb(pg, METRICS.lastAutovacuumAgeSeconds, model.settings.databases).map((l) => [
              ...l.slice(0, -1),
              { ...(l[l.length - 1] as Record<string, string>), yAxis: "right" },
            ]),
          ],
        },
        {
          title: "Transaction ID age (PG-4)",
          stat: "Maximum",
          period: 3600,
          metrics: perDb(pg, METRICS.transactionIdAge, model.settings.databases),
        },
        {
          title: "Statement time, ms per minute; timeouts (OBS-7, PG-2)",
          stat: "Sum",
          metrics: [
            line(pg, METRICS.statementsExecMilliseconds, S),
            line(logNamespace, "StatementTimeouts", {}, { yAxis: "right" }),
            line(logNamespace, "IdleInTransactionTimeouts", {}, { yAxis: "right" }),
          ],
        },
      ];
    case "odoo":
      return [
        ...(["latencyP95", "latencyP99"] as const).map((m) => ({
          title: `${METRICS[m]} by route class (OBS-4)`,
          stat: "Maximum",
          period: 300,
          metrics: ROUTE_CLASSES.map((c) => line(odoo, METRICS[m], { ...S, [DIMENSIONS.routeClass]: c }, { label: c })),
        })),
        {
          title: "Requests by route class (OBS-4)",
          stat: "Sum",
          period: 300,
          metrics: [
            line(odoo, METRICS.requests, S, { label: "all" }),
            ...ROUTE_CLASSES.map((c) => line(odoo, METRICS.requests, { ...S, [DIMENSIONS.routeClass]: c }, { label: c })),
          ],
        },
        {
          title: "5xx % and upstream timeouts (OBS-5)",
          stat: "Maximum",
          period: 300,
          metrics: [line(odoo, METRICS.http5xxPercent, S), line(odoo, METRICS.upstreamTimeouts, S, { stat: "Sum", yAxis: "right" })],
        },
      ];
    case "host":
      return [
        { title: "CPU active % (OBS-8)", stat: "Maximum", metrics: perHost(AGENT_METRICS.cpuActive, () => ({ cpu: "cpu-total" })) },
        { title: "CPU I/O wait % (OBS-8)", stat: "Maximum", metrics: perHost(AGENT_METRICS.cpuIowait, () => ({ cpu: "cpu-total" })) },
        { title: "Memory used % (OBS-8)", stat: "Maximum", metrics: perHost(AGENT_METRICS.memUsedPercent) },
        { title: "Swap used % (OBS-8)", stat: "Maximum", metrics: perHost(AGENT_METRICS.swapUsedPercent) },
        { title: "TCP retransmits % (OBS-8)", stat: "Maximum", metrics: perHost(METRICS.tcpRetransmitPercent) },
        {
          title: "Open files % of limit (OBS-8)",
          stat: "Maximum",
          metrics: model.allHosts.flatMap((h) =>
            WATCHED_PROCESSES[h.role].map((p) =>
              line(
                host,
                METRICS.fdUsedPercent,
                { ...S, [DIMENSIONS.host]: h.id, [DIMENSIONS.process]: p.name },
                { label: `${h.id} ${p.name}` },
              ),
            ),
          ),
        },
        {
          title: "Collector runs and errors",
          stat: "Sum",
          metrics: model.allHosts.flatMap((h) =>
            [METRICS.collectorRuns, METRICS.collectorErrors].map((m) =>
              line(METRIC_NAMESPACES.collector, m, { ...S, [DIMENSIONS.host]: h.id }, { label: `${h.id} ${m}` }),
            ),
          ),
        },
      ];
    case "backups":
      return [
        {
          title: "Backup age, drill success and RTO (BACKUP-1, BACKUP-2)",
          stat: "Maximum",
          period: 3600,
          metrics: [
            line(BACKUP_METRIC_NAMESPACE, BACKUP_METRICS.lastBackupAgeSeconds, { [METRIC_DIMENSIONS.stack]: model.stack }),
            line(BACKUP_METRIC_NAMESPACE, BACKUP_METRICS.restoreDrillRtoSeconds, { [METRIC_DIMENSIONS.stack]: model.stack }),
            line(
              BACKUP_METRIC_NAMESPACE,
              BACKUP_METRICS.restoreDrillSuccess,
              { [METRIC_DIMENSIONS.stack]: model.stack },
              { yAxis: "right" },
            ),
          ],
        },
      ];
  }
}

/**
 * The dashboard body: per checklist section a heading, the section's alarms, then its graphs,
 * two widgets per row. Pure: `alarmArns` maps alarm ids to ARNs (Outputs resolved by the caller).
 */
export function monitoringDashboard(
  model: StackModel,
  alarms: readonly AlarmSpec[],
  alarmArns: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const region = model.settings.region;
  const widgets: Record<string, unknown>[] = [];
  let y = 0;
  const logNamespace = metricFilterNamespace(model);
  for (const section of DASHBOARD_SECTIONS) {
    widgets.push({
      type: "text",
      x: 0,
      y,
      width: 24,
      height: 1,
      properties: { markdown: `## ${section.title} (${section.checklist.join(", ")})` },
    });
    y += 1;
    const arns = alarms.filter((a) => a.section === section.id).map((a) => alarmArns[a.id]);
    if (arns.some((a) => a === undefined)) throw new Error(`monitoringDashboard: an alarm of section ${section.id} has no ARN`);
    if (arns.length > 0) {
      // The alarm status widget takes at most 100 alarms.
      widgets.push({
        type: "alarm",
        x: 0,
        y,
        width: 24,
        height: 2 + Math.ceil(arns.length / 4),
        properties: { title: `Alarms — ${section.title}`, alarms: arns.slice(0, 100), sortBy: "stateUpdatedTimestamp" },
      });
      y += 2 + Math.ceil(arns.length / 4);
    }
    sectionGraphs(model, section.id, logNamespace).forEach((g, i) => {
      widgets.push({
        type: "metric",
        x: (i % 2) * 12,
        y: y + Math.floor(i / 2) * 6,
        width: 12,
        height: 6,
        properties: {
          title: g.title,
          region,
          view: "timeSeries",
          stacked: false,
          stat: g.stat,
          period: g.period ?? 60,
          metrics: g.metrics,
        },
      });
    });
    y += Math.ceil(sectionGraphs(model, section.id, logNamespace).length / 2) * 6;
  }
  return { start: "-PT6H", widgets };
}

export class Monitoring extends pulumi.ComponentResource {
  /** The SNS topic every alarm notifies; pass it to BackupPlan's alarmActions. */
  readonly topicArn: pulumi.Output<string>;
  /** Alarm names by alarm id (templates/alarms.ts). */
  readonly alarmNames: Readonly<Record<string, pulumi.Output<string>>>;
  readonly logGroupNames: Readonly<Record<LogSource, pulumi.Output<string>>>;
  /** PostgreSQL's log group: with RDS the one RDS exports to, which must exist before the instance. */
  readonly postgresqlLogGroup: aws.cloudwatch.LogGroup;
  readonly dashboardName: pulumi.Output<string>;
  /** The alarm table the component built: the runbooks are rendered from it. */
  readonly alarms: readonly AlarmSpec[];

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    const problems = checkMonitoringArgs(args);
    throwIfAny(`Monitoring ${name}`, problems);
    super("odoo-stack:monitoring:Monitoring", name, {}, opts);
    const { model } = args;
    const parent = { parent: this };
    const tags = (resource: string) => resourceTags(model, MONITORING_ROLE, `${name}-${resource}`);
    const retentionInDays = args.logRetentionDays ?? MONITORING_ARGS_DEFAULTS.logRetentionDays;

    // Not KMS-encrypted: CloudWatch alarms cannot publish to a topic under the AWS-managed
    // aws/sns key (its key policy does not admit CloudWatch); alarm texts carry no secret.
    const topic = new aws.sns.Topic(
      `${name}-alarms`,
      {
        name: `${model.project}-${model.stack}-alarms`,
        displayName: `odoo-stack ${model.stack} alarms`,
        tags: tags("alarms"),
      },
      parent,
    );
    this.topicArn = topic.arn;
    if (model.settings.alarmEmail !== undefined) {
      // The address receives a confirmation mail; until it is confirmed nothing is delivered.
      new aws.sns.TopicSubscription(
        `${name}-alarm-email`,
        { topic: topic.arn, protocol: "email", endpoint: model.settings.alarmEmail },
        parent,
      );
    }

    const groups = {} as Record<LogSource, aws.cloudwatch.LogGroup>;
    for (const source of LOG_SOURCE_NAMES) {
      groups[source] = new aws.cloudwatch.LogGroup(
        `${name}-${source}-logs`,
        {
          name: logGroupName(model, source),
          retentionInDays,
          tags: tags(`${source}-logs`),
        },
        parent,
      );
    }
    this.logGroupNames = Object.fromEntries(LOG_SOURCE_NAMES.map((s) => [s, groups[s].name])) as Record<LogSource, pulumi.Output<string>>;
    this.postgresqlLogGroup = groups.postgresql;

    for (const f of LOG_METRIC_FILTERS) {
      new aws.cloudwatch.LogMetricFilter(
        `${name}-${f.id}`,
        {
          name: `${model.project}-${model.stack}-${f.id}`,
          logGroupName: groups[f.source].name,
          pattern: f.pattern,
          metricTransformation: {
            name: f.metricName,
            namespace: metricFilterNamespace(model),
            value: "1",
            defaultValue: "0",
            unit: "Count",
          },
        },
        parent,
      );
    }

    this.alarms = monitoringAlarms(model, args.thresholds);
    const actions = [topic.arn];
    const created = this.alarms.map(
      (a) =>
        new aws.cloudwatch.MetricAlarm(
          `${name}-${a.id}`,
          {
            name: a.name,
            alarmDescription: `${a.checklist.join(", ")}: ${a.summary} Runbook: "${a.name}".`,
            namespace: a.namespace,
            metricName: a.metricName,
            dimensions: { ...a.dimensions },
            statistic: a.statistic,
            period: a.period,
            evaluationPeriods: a.evaluationPeriods,
            datapointsToAlarm: a.datapointsToAlarm,
            threshold: a.threshold,
            comparisonOperator: a.comparisonOperator,
            treatMissingData: a.treatMissingData,
            alarmActions: actions,
            okActions: actions,
            tags: tags(a.id),
          },
          parent,
        ),
    );
    this.alarmNames = Object.fromEntries(this.alarms.map((a, i) => [a.id, created[i].name]));

    const dashboard = new aws.cloudwatch.Dashboard(
      `${name}-dashboard`,
      {
        dashboardName: `${model.project}-${model.stack}`,
        dashboardBody: pulumi
          .all(created.map((c) => c.arn))
          .apply((arns) =>
            JSON.stringify(monitoringDashboard(model, this.alarms, Object.fromEntries(this.alarms.map((a, i) => [a.id, arns[i]])))),
          ),
      },
      parent,
    );
    this.dashboardName = dashboard.dashboardName;

    this.registerOutputs({ topicArn: this.topicArn, dashboardName: this.dashboardName });
  }
}
