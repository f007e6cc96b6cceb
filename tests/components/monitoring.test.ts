// Monitoring under Pulumi mocks (every invoke not mocked throws): exact resource counts; every
// alarm with its metric, namespace, dimensions, statistic, threshold, period, evaluation and
// actions = the topic; log groups with retention and the metric filters; the dashboard laid out
// by checklist section with every alarm on it; args checked before anything is registered.
import {
  checkMonitoringArgs,
  LOG_METRIC_FILTERS,
  metricFilterNamespace,
  Monitoring,
  monitoringDashboard,
} from "../../components/monitoring";
import { DASHBOARD_SECTIONS, MONITORING_DEFAULTS, monitoringAlarms, resolveThresholds, type AlarmSpec } from "../../templates/alarms";
import { LOG_SOURCE_NAMES, logGroupName } from "../../templates/cloudwatch-agent";
import { METRIC_NAMESPACES, metricsCollectorSettingsFor, METRICS, ROUTE_CLASSES, TOP_QUERIES_LOG } from "../../templates/metrics";
import { RDS_MONITOR_SERVICE } from "../../templates/rds";
import { PATHS } from "../../lib/model";
import { databasesAt, modelWith } from "../helpers/fixtures";
import { countsByType, named, ofType, runUnderMocks, STACK, type MockRun, type RecordedResource } from "../helpers/component-mocks";

// A mock run takes seconds on a loaded CI machine.
jest.setTimeout(60_000);

const model = modelWith({ odooInstances: 2, ...databasesAt("erp", "erptest"), alarmEmail: "ops@example.com" }, STACK);
const alarms = monitoringAlarms(model);

const runMonitoring = (m = model, args: Partial<ConstructorParameters<typeof Monitoring>[1]> = {}): Promise<MockRun> =>
  runUnderMocks(() => {
    new Monitoring("monitoring", { model: m, ...args });
  });

describe("Monitoring under mocks", () => {
  let run: MockRun;
  beforeAll(async () => {
    run = await runMonitoring();
  }, 60_000);
  const alarmOf = (a: AlarmSpec): RecordedResource => named(run, `monitoring-${a.id}`, "aws:cloudwatch/metricAlarm:MetricAlarm");

  it("registers exactly its resources, all children of the component, and calls no AWS API", () => {
    expect(countsByType(run)).toEqual({
      "aws:sns/topic:Topic": 1,
      "aws:sns/topicSubscription:TopicSubscription": 1,
      "aws:cloudwatch/logGroup:LogGroup": LOG_SOURCE_NAMES.length,
      "aws:cloudwatch/logMetricFilter:LogMetricFilter": LOG_METRIC_FILTERS.length,
      "aws:cloudwatch/metricAlarm:MetricAlarm": alarms.length,
      "aws:cloudwatch/dashboard:Dashboard": 1,
    });
    const component = named(run, "monitoring", "odoo-stack:monitoring:Monitoring");
    for (const r of run.resources.filter((r) => r.custom)) {
      expect(r.parent).toBe(component.urn);
      expect(r.name.startsWith("monitoring-")).toBe(true);
    }
    expect(run.invokes).toEqual([]);
  });

  it("derives the alarm count from the stack: 2 per PgBouncer database (+ postgres), 4 PostgreSQL (restart pending on EC2) + 2 per database, 4 p99 + 8 Odoo errors and crons, per host disk/memory/swap/fds/certs/collector", () => {
    const hosts = model.allHosts.length;
    const pgbouncerDbs = model.settings.databases.length + 1;
    const disks = hosts + 1; // the PostgreSQL host also watches its data volume
    const certs = hosts + 3; // every host the internal CA; proxy, PgBouncer and PostgreSQL their own
    const fds = hosts;
    expect(alarms.length).toBe(
      2 * pgbouncerDbs + 4 + 2 * model.settings.databases.length + ROUTE_CLASSES.length + 8 + disks + 2 * hosts + fds + certs + 2 * hosts,
    );
    expect(new Set(alarms.map((a) => a.id)).size).toBe(alarms.length);
  });

  it("creates every alarm of the table with its metric, namespace, dimensions, statistic, threshold, period, evaluation and the topic as action", () => {
    const topicArn = ofType(run, "aws:sns/topic:Topic")[0].outputs.arn;
    expect(topicArn).toMatch(/^arn:aws:sns:/);
    for (const a of alarms) {
      expect(alarmOf(a).inputs).toEqual(
        expect.objectContaining({
          name: `odoo-stack-${STACK}-${a.id}`,
          namespace: a.namespace,
          metricName: a.metricName,
          dimensions: a.dimensions,
          statistic: a.statistic,
          threshold: a.threshold,
          period: a.period,
          evaluationPeriods: a.evaluationPeriods,
          datapointsToAlarm: a.datapointsToAlarm,
          comparisonOperator: a.comparisonOperator,
          treatMissingData: a.treatMissingData,
          alarmActions: [topicArn],
          okActions: [topicArn],
        }),
      );
      expect(alarmOf(a).inputs.alarmDescription).toContain(a.checklist[0]);
    }
  });

  it("alarms on what the checklist names, with the brief's thresholds", () => {
    const byId = (id: string) => alarms.find((a) => a.id === id) as AlarmSpec;
    // OBS-1: cl_waiting > 0 in 3 of 5 minutes; maxwait over 1 s.
    expect(byId("pgbouncer-clients-waiting-erp")).toMatchObject({
      namespace: "OdooStack/PgBouncer",
      metricName: METRICS.clientsWaiting,
      dimensions: { Stack: STACK, Database: "erp" },
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
      period: 60,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
    });
    expect(byId("pgbouncer-maxwait-erptest")).toMatchObject({
      metricName: METRICS.maxWaitSeconds,
      threshold: MONITORING_DEFAULTS.maxWaitSeconds,
    });
    expect(byId("pgbouncer-clients-waiting-postgres").dimensions.Database).toBe("postgres");
    // OBS-7
    expect(byId("postgres-long-transaction")).toMatchObject({
      namespace: "OdooStack/PostgreSQL",
      metricName: METRICS.oldestTransactionSeconds,
      threshold: 300,
      dimensions: { Stack: STACK },
    });
    expect(byId("postgres-lock-waiters")).toMatchObject({
      metricName: METRICS.sessionsWaitingOnLocks,
      threshold: 0,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
    });
    // OBS-4: p99 per class; OBS-5
    for (const c of ROUTE_CLASSES)
      expect(byId(`odoo-p99-${c}`)).toMatchObject({
        metricName: METRICS.latencyP99,
        dimensions: { Stack: STACK, Class: c },
        threshold: MONITORING_DEFAULTS.latencyP99Seconds[c],
      });
    expect(byId("odoo-5xx-rate")).toMatchObject({ metricName: METRICS.http5xxPercent, threshold: 1 });
    // OBS-8: disk, memory, swap, fds ≥ 80 %
    expect(byId("host-disk-postgres-var-lib-postgresql")).toMatchObject({
      namespace: "OdooStack/Host",
      metricName: "disk_used_percent",
      dimensions: { Stack: STACK, Host: "postgres", path: "/var/lib/postgresql", fstype: "ext4" },
      threshold: 85,
    });
    expect(byId("host-memory-odoo-2")).toMatchObject({ metricName: "mem_used_percent", threshold: 90 });
    expect(byId("host-swap-proxy")).toMatchObject({ metricName: "swap_used_percent" });
    expect(byId("host-fds-pgbouncer-pgbouncer")).toMatchObject({
      metricName: METRICS.fdUsedPercent,
      threshold: 80,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      dimensions: { Stack: STACK, Host: "pgbouncer", Process: "pgbouncer" },
    });
    // TLS-4: under 21 days
    expect(byId("tls-expiry-proxy-public")).toMatchObject({
      namespace: "OdooStack/TLS",
      metricName: METRICS.certificateDaysToExpiry,
      threshold: 21,
      comparisonOperator: "LessThanThreshold",
      statistic: "Minimum",
    });
    // A silent collector is a failure, not an OK.
    expect(byId("collector-silent-pgbouncer")).toMatchObject({ treatMissingData: "breaching", comparisonOperator: "LessThanThreshold" });
    for (const a of alarms.filter((x) => !x.id.startsWith("collector-silent-"))) expect(a.treatMissingData).toBe("notBreaching");
  });

  it("e-mails the alarm topic to settings.alarmEmail, and subscribes nobody without it", async () => {
    const sub = ofType(run, "aws:sns/topicSubscription:TopicSubscription")[0];
    expect(sub.inputs).toMatchObject({
      protocol: "email",
      endpoint: "ops@example.com",
      topic: ofType(run, "aws:sns/topic:Topic")[0].outputs.arn,
    });
    const quiet = await runMonitoring(modelWith({ odooInstances: 1 }, STACK));
    expect(ofType(quiet, "aws:sns/topicSubscription:TopicSubscription")).toEqual([]);
  });

  it("creates one log group per shipped log with the retention, and the metric filters on them", async () => {
    for (const source of LOG_SOURCE_NAMES) {
      expect(named(run, `monitoring-${source}-logs`).inputs).toMatchObject({ name: logGroupName(model, source), retentionInDays: 30 });
    }
    for (const f of LOG_METRIC_FILTERS) {
      expect(named(run, `monitoring-${f.id}`).inputs).toMatchObject({
        logGroupName: logGroupName(model, f.source),
        pattern: f.pattern,
        metricTransformation: { name: f.metricName, namespace: metricFilterNamespace(model), value: "1", defaultValue: "0" },
      });
    }
    const longer = await runMonitoring(model, { logRetentionDays: 90 });
    expect(ofType(longer, "aws:cloudwatch/logGroup:LogGroup").every((g) => g.inputs.retentionInDays === 90)).toBe(true);
  });

  it("lays the dashboard out by checklist section, each with its alarms (by ARN) and graphs", () => {
    const body = JSON.parse(named(run, "monitoring-dashboard").inputs.dashboardBody);
    const headings = body.widgets
      .filter((w: { type: string }) => w.type === "text")
      .map((w: { properties: { markdown: string } }) => w.properties.markdown);
    expect(headings).toEqual(DASHBOARD_SECTIONS.map((s) => `## ${s.title} (${s.checklist.join(", ")})`));
    const arns = alarms.map((a) => alarmOf(a).outputs.arn);
    const onDashboard = body.widgets
      .filter((w: { type: string }) => w.type === "alarm")
      .flatMap((w: { properties: { alarms: string[] } }) => w.properties.alarms);
    expect([...onDashboard].sort()).toEqual([...arns].sort());
    // Widgets never overlap: each row (y) is filled left to right within 24 columns.
    const cells = new Set<string>();
    for (const w of body.widgets) {
      for (let x = w.x; x < w.x + w.width; x++)
        for (let y = w.y; y < w.y + w.height; y++) {
          expect(cells.has(`${x},${y}`)).toBe(false);
          cells.add(`${x},${y}`);
        }
      expect(w.x + w.width).toBeLessThanOrEqual(24);
    }
  });
});

describe("monitoringDashboard (pure)", () => {
  const arns = Object.fromEntries(alarms.map((a) => [a.id, `arn:aws:cloudwatch:eu-west-1:123456789012:alarm:${a.name}`]));
  const body = monitoringDashboard(model, alarms, arns) as { widgets: { type: string; properties: Record<string, unknown> }[] };
  const graphs = body.widgets.filter((w) => w.type === "metric");

  it("graphs the pool, PostgreSQL, Odoo and host signals of the checklist, per database and per host", () => {
    const titles = graphs.map((g) => g.properties.title as string);
    for (const t of [
      "Clients waiting",
      "maxwait",
      "Transactions per second",
      "Oldest transaction",
      "Sessions waiting on locks",
      "Dead tuples",
      "LatencyP99Seconds",
      "5xx",
      "Memory used",
      "Open files",
      "Certificate days",
      "Backup age",
    ]) {
      expect(titles.some((x) => x.includes(t))).toBe(true);
    }
    const lines = graphs.flatMap((g) => g.properties.metrics as unknown[][]);
    for (const db of [...model.settings.databases, "postgres"])
      expect(lines).toContainEqual(expect.arrayContaining([METRIC_NAMESPACES.pgbouncer, METRICS.clientsWaiting, "Database", db]));
    for (const h of model.allHosts)
      expect(lines).toContainEqual(expect.arrayContaining(["OdooStack/Host", "mem_used_percent", "Host", h.id]));
  });

  it("refuses an alarm without an ARN", () => {
    expect(() => monitoringDashboard(model, alarms, {})).toThrow(/has no ARN/);
  });
});

describe("checkMonitoringArgs", () => {
  it("accepts the defaults", () => {
    expect(checkMonitoringArgs({})).toEqual([]);
  });

  it("names every bad key with its value and the fix, all at once", () => {
    const problems = checkMonitoringArgs({
      logRetentionDays: 10,
      thresholds: { fdUsedPercent: 120, latencyP99Seconds: { login: -1 }, certificateDays: 90 },
    });
    expect(problems[0]).toMatch(/'logRetentionDays' must be one of .* got 10/);
    expect(problems[1]).toMatch(/thresholds\.fdUsedPercent' must be a percentage.*120/);
    expect(problems[1]).toMatch(/latencyP99Seconds\.login' must be a positive number of seconds, got -1/);
    expect(problems[1]).toMatch(/certificateDays' = 90/);
  });

  it("lets an override change one threshold and keep the others", () => {
    const t = resolveThresholds({ latencyP99Seconds: { report: 120 } });
    expect(t.latencyP99Seconds).toEqual({ ...MONITORING_DEFAULTS.latencyP99Seconds, report: 120 });
    expect(t.maxWaitSeconds).toBe(MONITORING_DEFAULTS.maxWaitSeconds);
  });

  it("fails the component before registering anything", async () => {
    const run = await runUnderMocks(() => {
      expect(() => new Monitoring("monitoring", { model, logRetentionDays: 10 })).toThrow(/Monitoring monitoring: 1 problem/);
    });
    expect(run.resources.filter((r) => r.custom)).toEqual([]);
  });

  it("keeps the PostgreSQL alarms with RDS: the PgBouncer host's collector publishes them (OBS-7, PG-4)", () => {
    const rds = modelWith(
      { odooInstances: 2, ...databasesAt("erp", "erptest"), alarmEmail: "ops@example.com", postgresEngine: "rds" },
      STACK,
    );
    expect(rds.allHosts.map((h) => h.role)).not.toContain("postgres");
    const postgresIds = (m: typeof model) =>
      monitoringAlarms(m)
        .map((a) => a.id)
        .filter((id) => id.startsWith("postgres-"));
    // All but the restart-pending alarm: RDS keeps pending-reboot parameters in its parameter group, not pg_settings (PG-1).
    expect(postgresIds(rds)).toEqual(postgresIds(model).filter((id) => id !== "postgres-restart-pending"));
    expect(postgresIds(model)).toContain("postgres-restart-pending");
    expect(postgresIds(rds)).toContain("postgres-long-transaction");
    const pgbouncer = metricsCollectorSettingsFor(rds, rds.hosts.pgbouncer);
    expect(pgbouncer.postgres).toEqual({
      maintenanceDatabase: "postgres",
      databases: ["erp", "erptest", "postgres"],
      topQueries: 10,
      topQueriesLog: TOP_QUERIES_LOG,
      service: RDS_MONITOR_SERVICE,
      serviceFile: PATHS.rdsMonitorServiceFile,
    });
    // The EC2 stack's PgBouncer host reads PgBouncer only; its database host reads PostgreSQL.
    expect(metricsCollectorSettingsFor(model, model.hosts.pgbouncer).postgres).toBeUndefined();
  });
});
