// The metrics collector's pure core (OBS-1..OBS-8, PG-4, TLS-4): the route classifier (OBS-4),
// nearest-rank percentiles against known distributions, the access-log summary, the Odoo log
// patterns against Odoo's own messages (OBS-5, OBS-6), the rendered config per role (golden),
// the files each role receives — and the shipped Python collector run on the same access-log
// lines, which must publish exactly what the TypeScript summary computes.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DB_ROLES, PATHS, SECRET_REF } from "../../lib/model";
import type { HostFile } from "../../templates/format";
import { serviceForPath } from "../../templates/manifest";
import {
  classifyRoute,
  LONG_LIVED_ROUTES,
  METRICS,
  METRICS_COLLECTOR_PATH,
  METRICS_CONFIG_PATH,
  METRICS_PGPASS_PATH,
  METRICS_UNITS,
  metricsCollectorScript,
  metricsCollectorSettingsFor,
  metricsHostFiles,
  ODOO_CRON_PATTERNS,
  ODOO_LOG_EVENTS,
  percentile,
  pgpassLine,
  renderMetricsConfig,
  ROUTE_RULES,
  summarizeAccessLog,
  type RouteClass,
} from "../../templates/metrics";
import { RDS_MONITOR_SERVICE } from "../../templates/rds";
import { accessLogLine, knownDistribution } from "../helpers/access-log";
import { modelWith } from "../helpers/fixtures";
import { expectGolden } from "../helpers/golden";

const model = modelWith({ odooInstances: 2 }, "prod");
const host = (id: string) =>
  model.allHosts.find((h) => h.id === id) ??
  (() => {
    throw new Error(id);
  })();

describe("classifyRoute (OBS-4)", () => {
  it.each<[string, RouteClass | undefined]>([
    ["/web/login", "login"],
    ["/web/login/", "login"],
    ["/web/dataset/search_read", "list"],
    ["/web/dataset/call_kw/res.partner/web_search_read", "list"],
    ["/web/dataset/call_kw/sale.order/web_search_read", "list"],
    ["/web/dataset/call_kw/res.partner/write", "write"],
    ["/web/dataset/call_kw/res.partner/create", "write"],
    ["/web/dataset/call_kw/sale.order/web_save", "write"],
    ["/report/pdf/sale.report_saleorder/42", "report"],
    ["/report/download", "report"],
    // Neighbours that must not be classified
    ["/web/login_totp", undefined],
    ["/web/dataset/call_kw/res.partner/read", undefined],
    ["/web/dataset/call_kw/res.partner/web_read", undefined],
    ["/web/dataset/call_kw/res.partner/write_date", undefined],
    ["/web/dataset/call_kw/write", undefined],
    ["/web/reportx", undefined],
    ["/websocket", undefined],
    ["/", undefined],
  ])("%s → %s", (uri, expected) => {
    expect(classifyRoute(uri)).toBe(expected);
  });

  it("has every class reachable and every rule a valid Python-compatible pattern (no lookbehind, no named groups)", () => {
    expect(new Set(ROUTE_RULES.map((r) => r.routeClass))).toEqual(new Set(["login", "list", "write", "report"]));
    for (const r of ROUTE_RULES) expect(r.pattern).not.toMatch(/\(\?<|\(\?P/);
  });
});

describe("percentile (nearest rank)", () => {
  it("gives p95 = 95 and p99 = 99 over 1..100 in any order", () => {
    const values = Array.from({ length: 100 }, (_, i) => ((i * 37) % 100) + 1);
    expect(percentile(values, 95)).toBe(95);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
  });

  it("gives the value at rank ceil(p·n) for sizes that do not divide evenly", () => {
    const values = Array.from({ length: 250 }, (_, i) => i + 1);
    expect(percentile(values, 95)).toBe(238); // ceil(237.5)
    expect(percentile(values, 99)).toBe(248); // ceil(247.5)
    expect(percentile([7], 99)).toBe(7);
  });

  it("returns undefined for no values and refuses p outside (0, 100]", () => {
    expect(percentile([], 95)).toBeUndefined();
    expect(() => percentile([1], 0)).toThrow(/p must be/);
    expect(() => percentile([1], 101)).toThrow(/p must be/);
  });
});

describe("summarizeAccessLog (OBS-4, OBS-5)", () => {
  it("computes p95/p99 per class from the known distribution, the 5xx rate and the 504s; WebSocket and garbage left out", () => {
    const d = knownDistribution();
    const s = summarizeAccessLog(d.lines);
    expect(s.requests).toBe(d.requests);
    expect(s.upstreamTimeouts).toBe(d.timeouts);
    expect(s.http5xxPercent).toBeCloseTo((100 * d.errors) / d.requests, 10);
    for (const [c, e] of Object.entries(d.expected)) {
      expect(s.byClass[c as RouteClass]?.count).toBe(e.count);
      expect(s.byClass[c as RouteClass]?.p95).toBeCloseTo(e.p95, 9);
      expect(s.byClass[c as RouteClass]?.p99).toBeCloseTo(e.p99, 9);
    }
    expect(LONG_LIVED_ROUTES.some((p) => new RegExp(p).test("/websocket"))).toBe(true);
  });
});

describe("Odoo log patterns (OBS-5, OBS-6)", () => {
  // Messages as odoo/service/server.py, odoo/sql_db.py and PostgreSQL write them.
  const lines: [string, string | undefined][] = [
    [
      "2026-11-26 12:00:00,001 811 ERROR erp odoo.service.server: WorkerHTTP (812) virtual real time limit (1201/1200s) reached.",
      "workerTimeLimitKills",
    ],
    ["2026-11-26 12:00:00,001 811 ERROR erp odoo.service.server: WorkerHTTP (812) CPU time limit (600) reached.", "workerTimeLimitKills"],
    ["2026-11-26 12:00:00,001 811 ERROR ? odoo.service.server: WorkerCron (813) timeout after 1200s", "workerTimeLimitKills"],
    [
      "2026-11-26 12:00:00,001 812 INFO erp odoo.service.server: Worker (812) virtual memory limit (2147483648) reached.",
      "workerMemoryLimitKills",
    ],
    ["psycopg2.pool.PoolError: The Connection Pool Is Full", "poolFullErrors"],
    ["2026-11-26 12:00:00,001 812 ERROR erp odoo.sql_db: bad query: UPDATE ... ERROR: deadlock detected", "deadlocks"],
    ['2026-11-26 12:00:00,001 812 INFO erp werkzeug: 10.40.10.10 - - "POST /web/dataset/call_kw HTTP/1.0" 200 - 3 0.004 0.011', undefined],
    ["2026-11-26 12:00:00,001 812 INFO erp odoo.service.server: Worker WorkerHTTP (812) alive", undefined],
  ];
  it.each(lines)("%s → %s", (line, expected) => {
    const matched = ODOO_LOG_EVENTS.filter((e) => new RegExp(e.pattern).test(line)).map((e) => e.metric);
    expect(matched).toEqual(expected ? [expected] : []);
  });

  it("reads Odoo 17's ir_cron start and done lines with their time, pid, database and job", () => {
    const line = new RegExp(ODOO_CRON_PATTERNS.line);
    const start = line.exec(
      "2026-11-26 12:00:00,123 4567 INFO erp odoo.addons.base.models.ir_cron: Starting job `Mail: Email Queue Manager`.",
    );
    expect(start?.slice(1)).toEqual(["2026-11-26 12:00:00", "4567", "erp", "Starting job `Mail: Email Queue Manager`."]);
    expect(new RegExp(ODOO_CRON_PATTERNS.start).exec(start?.[4] ?? "")?.[1]).toBe("Mail: Email Queue Manager");
    const done = line.exec("2026-11-26 12:00:07,900 4567 INFO erp odoo.addons.base.models.ir_cron: Job `Mail: Email Queue Manager` done.");
    expect(new RegExp(ODOO_CRON_PATTERNS.done).exec(done?.[4] ?? "")?.[1]).toBe("Mail: Email Queue Manager");
    expect(line.test("2026-11-26 12:00:00,123 4567 INFO erp odoo.models: Starting job `x`.")).toBe(false);
  });
});

describe("collector config and files per role", () => {
  it.each(["proxy", "odoo-1", "pgbouncer", "postgres"])("renders metrics.json for %s (golden)", (id) => {
    expectGolden(`observability/metrics-${id}.json`, renderMetricsConfig(metricsCollectorSettingsFor(model, host(id))));
  });

  it("gives each role exactly its sources: PgBouncer's pools, PostgreSQL's activity, the access log, Odoo's log", () => {
    const sources = (id: string) =>
      Object.keys(JSON.parse(renderMetricsConfig(metricsCollectorSettingsFor(model, host(id))))).filter((k) =>
        ["pgbouncer", "postgres", "accessLog", "odooLog"].includes(k),
      );
    expect(sources("proxy")).toEqual(["accessLog"]);
    expect(sources("odoo-2")).toEqual(["odooLog"]);
    expect(sources("pgbouncer")).toEqual(["pgbouncer"]);
    expect(sources("postgres")).toEqual(["postgres"]);
    const pg = JSON.parse(renderMetricsConfig(metricsCollectorSettingsFor(model, host("pgbouncer"))));
    expect(pg.pgbouncer).toEqual({ socketDir: "/var/run/postgresql", port: 6432, user: DB_ROLES.stats, database: "pgbouncer" });
    expect(JSON.parse(renderMetricsConfig(metricsCollectorSettingsFor(model, host("postgres")))).postgres.user).toBe(DB_ROLES.monitor);
  });

  it("reads RDS from the PgBouncer host through the monitor's libpq service, and keeps its log directory (OBS-7, PG-4)", () => {
    const rds = modelWith({ odooInstances: 2, postgresEngine: "rds" }, "prod");
    const settings = metricsCollectorSettingsFor(rds, rds.hosts.pgbouncer);
    const text = renderMetricsConfig(settings);
    expectGolden("observability/metrics-pgbouncer-rds.json", text);
    const config = JSON.parse(text);
    expect(Object.keys(config).filter((k) => ["pgbouncer", "postgres", "accessLog", "odooLog"].includes(k))).toEqual([
      "pgbouncer",
      "postgres",
    ]);
    expect(config.postgres).toMatchObject({ service: RDS_MONITOR_SERVICE, serviceFile: PATHS.rdsMonitorServiceFile });
    expect(config.postgres.socketDir).toBeUndefined();
    const files = metricsHostFiles(rds, rds.hosts.pgbouncer);
    // The monitor's password lives in its service file (templates/rds.ts); the password file keeps the stats user only.
    const pgpass = files.find((f) => f.path === METRICS_PGPASS_PATH);
    expect([...(pgpass?.content ?? "").matchAll(SECRET_REF)].map((m) => m[1])).toEqual([rds.parameters.statsPassword]);
    const service = files.find((f) => f.path.endsWith(METRICS_UNITS.service))?.content ?? "";
    expect(service).toMatch(/^LogsDirectory=odoo-stack$/m);
    expect(filesOf("pgbouncer").find((f) => f.path.endsWith(METRICS_UNITS.service))?.content).not.toMatch(/^LogsDirectory=/m);
    // A libpq service is how the PgBouncer role may read PostgreSQL; a socket is the database host's alone.
    const { service: _s, serviceFile: _f, ...readings } = config.postgres;
    expect(() => renderMetricsConfig({ ...settings, postgres: { ...readings, socketDir: "/x", port: 5432, user: "u" } })).toThrow(
      /only for the postgres role, or the pgbouncer role through a libpq service/,
    );
  });

  it("hands the collector the very route rules and metric names the TypeScript side uses", () => {
    const config = JSON.parse(renderMetricsConfig(metricsCollectorSettingsFor(model, host("proxy"))));
    expect(config.accessLog.routes).toEqual(ROUTE_RULES.map((r) => ({ class: r.routeClass, pattern: r.pattern })));
    expect(config.metrics).toEqual(METRICS);
  });

  it("refuses a source on the wrong role and a bad certificate name", () => {
    const s = metricsCollectorSettingsFor(model, host("proxy"));
    expect(() => renderMetricsConfig({ ...s, pgbouncer: { socketDir: "/x", port: 1, user: "u" } })).toThrow(/only for the pgbouncer role/);
    expect(() => renderMetricsConfig({ ...s, certificates: [{ name: "Bad Name", path: "/x" }] })).toThrow(/certificate name/);
  });

  const filesOf = (id: string): HostFile[] => metricsHostFiles(model, host(id));

  it("gives the password file (0600 root, a secretRef only) to the two database hosts and nobody else", () => {
    for (const id of ["proxy", "odoo-1", "odoo-2"]) expect(filesOf(id).map((f) => f.path)).not.toContain(METRICS_PGPASS_PATH);
    const bouncer = filesOf("pgbouncer").find((f) => f.path === METRICS_PGPASS_PATH);
    expect(bouncer).toMatchObject({ mode: "0600", owner: "root", group: "root" });
    expect([...(bouncer?.content ?? "").matchAll(SECRET_REF)].map((m) => m[1])).toEqual([model.parameters.statsPassword]);
    expect(bouncer?.content).toContain(`*:6432:pgbouncer:${DB_ROLES.stats}:{{ssm:`);
    const pg = filesOf("postgres").find((f) => f.path === METRICS_PGPASS_PATH);
    expect([...(pg?.content ?? "").matchAll(SECRET_REF)].map((m) => m[1])).toEqual([model.parameters.monitorPassword]);
    expect(pgpassLine({ port: 1, database: "a:b", user: "c\\d", password: "x" })).toBe("*:1:a\\:b:c\\\\d:x");
  });

  it("installs the collector with a 60 s timer, sandboxed, and the files land with no reload service but their own", () => {
    for (const id of ["proxy", "odoo-1", "pgbouncer", "postgres"]) {
      const files = filesOf(id);
      expect(files.map((f) => f.path)).toEqual([...files.map((f) => f.path)].sort());
      expect(files.find((f) => f.path === METRICS_COLLECTOR_PATH)).toMatchObject({ mode: "0755", content: metricsCollectorScript() });
      expect(files.find((f) => f.path === METRICS_CONFIG_PATH)?.mode).toBe("0644");
      const service = files.find((f) => f.path.endsWith(METRICS_UNITS.service))?.content ?? "";
      expect(service).toMatch(/^CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE$/m);
      expect(service).toMatch(/^ProtectSystem=strict$/m);
      expect(service).toContain(`ExecStart=/usr/bin/python3 ${METRICS_COLLECTOR_PATH}`);
      // After a reboot the minute's run waits for the daemon it reads, instead of failing.
      const daemon = {
        proxy: "nginx.service",
        "odoo-1": "odoo.service",
        pgbouncer: "pgbouncer.service",
        postgres: "postgresql@15-main.service",
      }[id];
      expect(service).toMatch(new RegExp(`^After=${daemon?.replace(/[.@]/g, "\\$&")} network-online\\.target$`, "m"));
      expect(files.find((f) => f.path.endsWith(METRICS_UNITS.timer))?.content).toMatch(/^OnCalendar=\*-\*-\* \*:\*:00$/m);
      // Units and timers go to the systemd class, whose apply step enables every timer.
      for (const f of files) expect(serviceForPath(f.path)).toBe(f.path.startsWith("/etc/systemd/system/") ? "systemd" : "none");
    }
    expectGolden(
      "observability/odoo-stack-metrics.postgres.service",
      filesOf("postgres").find((f) => f.path.endsWith(METRICS_UNITS.service))?.content ?? "",
    );
    expectGolden(
      "observability/odoo-stack-metrics.timer",
      filesOf("postgres").find((f) => f.path.endsWith(METRICS_UNITS.timer))?.content ?? "",
    );
  });
});

describe("the shipped Python collector on the same lines", () => {
  it("compiles", () => {
    const r = spawnSync("python3", ["-m", "py_compile", path.resolve(__dirname, "../../templates/scripts/odoo-stack-metrics.py")], {
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("keeps publishing when one source fails: CollectorErrors counts it, the run exits 1, the others still report", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-metrics-"));
    try {
      const settings = metricsCollectorSettingsFor(model, host("pgbouncer"));
      const config = path.join(dir, "metrics.json");
      // Nothing listens on this socket directory: the PgBouncer source fails, TCP and the rest do not.
      fs.writeFileSync(
        config,
        renderMetricsConfig({
          ...settings,
          certificates: [],
          pgbouncer: { ...(settings.pgbouncer as NonNullable<typeof settings.pgbouncer>), socketDir: dir },
        }),
      );
      const out = path.join(dir, "out.jsonl");
      const env = {
        ...process.env,
        ODOO_STACK_METRICS_CONFIG: config,
        ODOO_STACK_METRICS_STATE: path.join(dir, "state"),
        ODOO_STACK_METRICS_OUTPUT: out,
        PGPASSFILE: "/dev/null",
      };
      const run = spawnSync("python3", [path.resolve(__dirname, "../../templates/scripts/odoo-stack-metrics.py")], {
        env,
        encoding: "utf8",
      });
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(/odoo-stack-metrics: pgbouncer: psql -U pgbouncer_stats -d pgbouncer: /);
      const data = fs
        .readFileSync(out, "utf8")
        .trim()
        .split("\n")
        .flatMap((l) => JSON.parse(l).metricData as { MetricName: string; Value: number }[]);
      expect(data.find((m) => m.MetricName === METRICS.collectorErrors)?.Value).toBe(1);
      expect(data.find((m) => m.MetricName === METRICS.collectorRuns)?.Value).toBe(1);
      expect(data.some((m) => m.MetricName === METRICS.clientsWaiting)).toBe(false);
      expect(fs.existsSync(path.join(dir, "state", "state.json"))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("publishes exactly the TypeScript summary of the known distribution (classifier, p95/p99, 5xx, 504)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-metrics-"));
    try {
      const settings = metricsCollectorSettingsFor(model, host("proxy"));
      const accessLog = path.join(dir, "access.log");
      const config = path.join(dir, "metrics.json");
      fs.writeFileSync(config, renderMetricsConfig({ ...settings, certificates: [], processes: [], accessLog: { path: accessLog } }));
      fs.writeFileSync(accessLog, `${accessLogLine("/web/login", 200, 9)}\n`); // before the first run: not counted
      const env = {
        ...process.env,
        ODOO_STACK_METRICS_CONFIG: config,
        ODOO_STACK_METRICS_STATE: path.join(dir, "state"),
        ODOO_STACK_METRICS_OUTPUT: path.join(dir, "out.jsonl"),
      };
      const script = path.resolve(__dirname, "../../templates/scripts/odoo-stack-metrics.py");
      expect(spawnSync("python3", [script], { env, encoding: "utf8" }).status).toBe(0);
      const d = knownDistribution();
      fs.appendFileSync(accessLog, `${d.lines.join("\n")}\n`);
      fs.writeFileSync(env.ODOO_STACK_METRICS_OUTPUT, "");
      const run = spawnSync("python3", [script], { env, encoding: "utf8" });
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      const data = fs
        .readFileSync(env.ODOO_STACK_METRICS_OUTPUT, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .filter((b) => b.namespace === "OdooStack/Odoo")
        .flatMap((b) => b.metricData);
      const value = (name: string, routeClass?: string) =>
        data.find(
          (m: { MetricName: string; Dimensions: { Name: string; Value: string }[] }) =>
            m.MetricName === name &&
            (routeClass === undefined ? m.Dimensions.length === 1 : m.Dimensions.some((x) => x.Name === "Class" && x.Value === routeClass)),
        )?.Value;
      const ts = summarizeAccessLog(d.lines);
      expect(value(METRICS.requests)).toBe(ts.requests);
      expect(value(METRICS.upstreamTimeouts)).toBe(ts.upstreamTimeouts);
      expect(value(METRICS.http5xxPercent)).toBeCloseTo(ts.http5xxPercent, 9);
      for (const c of ["login", "list", "write", "report"] as const) {
        expect(value(METRICS.latencyP95, c)).toBeCloseTo(ts.byClass[c]?.p95 as number, 9);
        expect(value(METRICS.latencyP99, c)).toBeCloseTo(ts.byClass[c]?.p99 as number, 9);
        expect(value(METRICS.requests, c)).toBe(ts.byClass[c]?.count);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
