// issue 6, "done when": the shipped metrics collector (templates/scripts/odoo-stack-metrics.py)
// against the real daemons, each condition created and the metric seen to move:
//   - PgBouncer 1.18 with a tiny pool, every server connection held: SHOW POOLS read by column
//     name through the Unix socket as the stats user → ClientsWaiting > 0 and a growing
//     MaxWaitSeconds (OBS-1); SHOW STATS deltas → TransactionsPerSecond (OBS-2)
//   - PostgreSQL 15: a transaction left idle → OldestTransactionSeconds grows; a row lock held
//     and a second UPDATE on the row → SessionsWaitingOnLocks ≥ 1 (OBS-7), as the monitor role
//   - RDS: the PgBouncer host's collector reads PostgreSQL through the monitor role's libpq
//     service file (templates/rds.ts) over TLS verify-full; a certificate for another name fails
//   - nginx with the rendered log_format: requests with a known latency distribution per route
//     class → the collector's p95/p99 match the distribution, and equal the TypeScript
//     classifier's on the very lines nginx wrote (OBS-4, OBS-5)
// The collector runs with ODOO_STACK_METRICS_OUTPUT (JSON lines instead of the AWS CLI).
import { sandboxNginxMain } from "./helpers/nginx";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { type Client } from "pg";
import { DB_ROLES, PATHS } from "../../lib/model";
import {
  METRICS,
  metricsCollectorSettingsFor,
  pgpassLine,
  renderMetricsConfig,
  summarizeAccessLog,
  type MetricsCollectorSettings,
  type RouteClass,
} from "../../templates/metrics";
import { nginxMainSettings, renderNginxConf } from "../../templates/nginx";
import { PGBOUNCER_TLS_FILES } from "../../templates/pgbouncer";
import { POSTGRES_TLS_FILES } from "../../templates/postgresql";
import { rdsMonitorServiceSettingsFor, renderRdsService } from "../../templates/rds";
import { modelWith } from "../helpers/fixtures";
import { clientConfig, connect, endAll } from "./helpers/clients";
import { remapForSandbox } from "./helpers/remap";
import { resolveSecretRefs } from "./helpers/secrets";
import { BIN, Sandbox, sleep, systemUser, waitForPort } from "./helpers/sandbox";
import { startDatabaseTier, under, type DatabaseTier } from "./helpers/stack";

jest.setTimeout(90_000);

const SCRIPT = path.resolve(__dirname, "../../templates/scripts/odoo-stack-metrics.py");
// A pool PgBouncer can run out of: 2 server connections, 1 in reserve after 3 s, 3 per database.
const model = modelWith({ pgbouncer: { defaultPoolSize: 2, reservePoolSize: 1 } });
const pools = model.settings.sizing.pgbouncer;
const database = model.settings.databases[0];

const sandbox = Sandbox.create("metrics");
let tier: DatabaseTier;
const summary: string[] = [];

interface Datum {
  readonly namespace: string;
  readonly name: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly value: number;
}

interface CollectorRun {
  readonly data: readonly Datum[];
  readonly stderr: string;
  /** The datum named `name` whose dimensions are exactly Stack plus `dims`. */
  value(name: string, dims?: Readonly<Record<string, string>>): number | undefined;
}

/** A collector for one "host": its rendered config (sandbox paths), its state dir, its password file. */
function collector(label: string, settings: MetricsCollectorSettings, pgpass?: string) {
  const dir = sandbox.mkdir(`collector-${label}`, undefined, 0o700);
  const config = sandbox.writeFile(`${dir}/metrics.json`, renderMetricsConfig(settings));
  const pgpassFile = pgpass === undefined ? undefined : sandbox.writeFile(`${dir}/metrics.pgpass`, `${pgpass}\n`, { mode: 0o600 });
  const output = `${dir}/out.jsonl`;
  return async (): Promise<CollectorRun> => {
    fs.writeFileSync(output, "");
    const r = await sandbox.run("/usr/bin/python3", [SCRIPT], {
      env: {
        ODOO_STACK_METRICS_CONFIG: config,
        ODOO_STACK_METRICS_STATE: `${dir}/state`,
        ODOO_STACK_METRICS_OUTPUT: output,
        ODOO_STACK_PSQL: BIN.psql,
        ...(pgpassFile ? { PGPASSFILE: pgpassFile } : {}),
      },
      timeoutMs: 30_000,
    });
    if (r.code !== 0) throw new Error(`collector ${label} exited ${r.code}:\n${r.stderr}`);
    const data: Datum[] = fs
      .readFileSync(output, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .flatMap((l) => {
        const batch = JSON.parse(l) as {
          namespace: string;
          metricData: { MetricName: string; Dimensions: { Name: string; Value: string }[]; Value: number }[];
        };
        return batch.metricData.map((m) => ({
          namespace: batch.namespace,
          name: m.MetricName,
          dimensions: Object.fromEntries(m.Dimensions.map((d) => [d.Name, d.Value])),
          value: m.Value,
        }));
      });
    const value = (name: string, dims: Readonly<Record<string, string>> = {}) => {
      const want = { Stack: model.stack, ...dims };
      return data.find(
        (d) => d.name === name && JSON.stringify(Object.entries(d.dimensions).sort()) === JSON.stringify(Object.entries(want).sort()),
      )?.value;
    };
    return { data, stderr: r.stderr, value };
  };
}

let collectPgbouncer: () => Promise<CollectorRun>;
let collectPostgres: () => Promise<CollectorRun>;

beforeAll(async () => {
  tier = await startDatabaseTier(sandbox, model);
  const odoo = await connect(clientConfig(tier.pgbouncerEndpoint, tier.odooLogin()));
  await odoo.query("CREATE TABLE metrics_lock (id int PRIMARY KEY, v int NOT NULL); INSERT INTO metrics_lock VALUES (1, 0)");
  await odoo.end();

  // The rendered settings of each host, with the sandbox's sockets, ports and certificate files.
  const bouncer = metricsCollectorSettingsFor(model, model.hosts.pgbouncer);
  collectPgbouncer = collector(
    "pgbouncer",
    remapForSandbox(bouncer, ["pgbouncer", "certificates"], {
      pgbouncer: {
        ...(bouncer.pgbouncer as NonNullable<MetricsCollectorSettings["pgbouncer"]>),
        socketDir: tier.pgbouncer.socketDir,
        port: tier.pgbouncer.port,
      },
      certificates: [
        { name: "internal-ca", path: under(tier.roots.pgbouncer, PATHS.caCert) },
        { name: "pgbouncer", path: under(tier.roots.pgbouncer, PGBOUNCER_TLS_FILES.cert) },
      ],
    }),
    pgpassLine({ port: tier.pgbouncer.port, database: "pgbouncer", user: DB_ROLES.stats, password: tier.secrets.statsPassword }),
  );
  const pg = metricsCollectorSettingsFor(model, model.hosts.postgres);
  collectPostgres = collector(
    "postgres",
    remapForSandbox(pg, ["postgres", "certificates"], {
      postgres: {
        ...(pg.postgres as NonNullable<MetricsCollectorSettings["postgres"]>),
        socketDir: tier.pg.socketDir,
        port: tier.pg.port,
        topQueriesLog: sandbox.path("top-queries.log"),
      },
      certificates: [{ name: "postgres", path: under(tier.roots.postgres, POSTGRES_TLS_FILES.cert) }],
    }),
    pgpassLine({ port: tier.pg.port, database: "*", user: DB_ROLES.monitor, password: tier.secrets.monitorPassword }),
  );
}, 120_000);

afterAll(async () => {
  await sandbox.cleanup();
  console.log(`[metrics] ${summary.join(" | ")}`);
});

const odooClient = (): Promise<Client> => connect(clientConfig(tier.pgbouncerEndpoint, tier.odooLogin()));

describe("PgBouncer 1.18: SHOW POOLS / SHOW STATS by column name (OBS-1, OBS-2)", () => {
  it("reports ClientsWaiting > 0 and a growing MaxWaitSeconds while every server connection is held", async () => {
    const before = await collectPgbouncer();
    expect(before.value(METRICS.clientsWaiting, { Database: database })).toBe(0);
    expect(before.value(METRICS.collectorErrors, { Host: "pgbouncer" })).toBe(0);

    // Hold every server connection of the pool: the pool, then the reserve (after its timeout).
    const holders: Client[] = [];
    const clients: Client[] = [];
    try {
      for (let i = 0; i < pools.defaultPoolSize + pools.reservePoolSize; i++) {
        const c = await odooClient();
        holders.push(c);
        await c.query("BEGIN");
        await c.query("SELECT txid_current()");
      }
      const held = (await tier.pgbouncer.show("POOLS")).find((p) => p.database === database && p.user === DB_ROLES.odoo);
      expect(Number(held?.sv_active)).toBe(pools.maxDbConnections);
      // Two more clients ask for a connection: they queue.
      const waiting = await Promise.all([odooClient(), odooClient()]);
      clients.push(...waiting);
      const queued = waiting.map((c) => c.query("SELECT 1").catch((e: Error) => e));
      await sleep(1_500);
      const first = await collectPgbouncer();
      await sleep(2_000);
      const second = await collectPgbouncer();
      const w1 = first.value(METRICS.clientsWaiting, { Database: database });
      const m1 = first.value(METRICS.maxWaitSeconds, { Database: database }) as number;
      const m2 = second.value(METRICS.maxWaitSeconds, { Database: database }) as number;
      expect(w1).toBe(2);
      expect(second.value(METRICS.clientsWaiting, { Database: database })).toBe(2);
      expect(second.value(METRICS.serversActive, { Database: database })).toBe(pools.maxDbConnections);
      expect(m1).toBeGreaterThanOrEqual(1);
      // maxwait_us makes it sub-second precise: it grew by about the 2 s between the runs.
      expect(m2 - m1).toBeGreaterThan(1.5);
      expect(m2 - m1).toBeLessThan(4);
      summary.push(
        `cl_waiting ${w1} → maxwait ${m1.toFixed(3)} s then ${m2.toFixed(3)} s (pool ${pools.defaultPoolSize}+${pools.reservePoolSize} held)`,
      );

      for (const h of holders) await h.query("COMMIT");
      const answers = await Promise.all(queued);
      for (const a of answers) expect(a).not.toBeInstanceOf(Error);
      const after = await collectPgbouncer();
      expect(after.value(METRICS.clientsWaiting, { Database: database })).toBe(0);
      expect(after.value(METRICS.maxWaitSeconds, { Database: database })).toBe(0);
      // SHOW STATS between two runs gives a rate. PgBouncer folds its counters into the totals
      // once per stats_period (60 s, the collector's interval), so seconds apart the rate may be 0.
      expect(after.value(METRICS.transactionsPerSecond, { Database: database })).toBeGreaterThanOrEqual(0);
      expect(after.value(METRICS.avgTransactionMicroseconds, { Database: database })).toBeDefined();
    } finally {
      await endAll([...holders, ...clients]);
    }
  });

  it("publishes PgBouncer's open files against its limit, the certificates' days to expiry, and no error (OBS-8, TLS-4)", async () => {
    const run = await collectPgbouncer();
    const fds = run.value(METRICS.fdUsedPercent, { Host: "pgbouncer", Process: "pgbouncer" }) as number;
    expect(fds).toBeGreaterThan(0);
    expect(fds).toBeLessThan(100);
    const days = run.value(METRICS.certificateDaysToExpiry, { Host: "pgbouncer", Certificate: "pgbouncer" }) as number;
    expect(days).toBeGreaterThan(1);
    expect(run.value(METRICS.collectorErrors, { Host: "pgbouncer" })).toBe(0);
    expect(run.stderr).toBe("");
    summary.push(`pgbouncer fds ${fds} % of limit; cert ${days} days`);
  });
});

describe("PostgreSQL 15 as the monitor role (OBS-7, PG-1, PG-4)", () => {
  it("sees a transaction left idle grow older run after run", async () => {
    const idle = await odooClient();
    try {
      await idle.query("BEGIN");
      await idle.query("SELECT txid_current()");
      const first = await collectPostgres();
      await sleep(3_000);
      const second = await collectPostgres();
      const a1 = first.value(METRICS.oldestTransactionSeconds) as number;
      const a2 = second.value(METRICS.oldestTransactionSeconds) as number;
      expect(a2 - a1).toBeGreaterThan(2.5);
      expect(second.value(METRICS.oldestTransactionSeconds, { Database: database })).toBeCloseTo(a2, 3);
      expect(second.value(METRICS.connectionsByState, { State: "idle in transaction" })).toBeGreaterThanOrEqual(1);
      summary.push(`oldest xact ${a1.toFixed(2)} s → ${a2.toFixed(2)} s`);
      await idle.query("COMMIT");
      const after = await collectPostgres();
      expect(after.value(METRICS.oldestTransactionSeconds, { Database: database }) as number).toBeLessThan(1);
    } finally {
      await idle.end().catch(() => undefined);
    }
  });

  it("counts a session waiting on a row lock, and none once the lock is released", async () => {
    const blocker = await odooClient();
    const waiter = await odooClient();
    try {
      await blocker.query("BEGIN");
      await blocker.query("UPDATE metrics_lock SET v = v + 1 WHERE id = 1");
      const blocked = waiter.query("UPDATE metrics_lock SET v = v + 1 WHERE id = 1");
      for (const deadline = Date.now() + 5_000; ;) {
        const n = await tier.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'");
        if (n === "1") break;
        if (Date.now() > deadline) throw new Error("the second UPDATE never waited on the lock");
        await sleep(100);
      }
      const during = await collectPostgres();
      const waiting = during.value(METRICS.sessionsWaitingOnLocks) as number;
      expect(waiting).toBeGreaterThanOrEqual(1);
      await blocker.query("COMMIT");
      await blocked;
      const after = await collectPostgres();
      expect(after.value(METRICS.sessionsWaitingOnLocks)).toBe(0);
      summary.push(`lock waiters ${waiting} → ${after.value(METRICS.sessionsWaitingOnLocks)}`);
    } finally {
      await endAll([blocker, waiter]);
    }
  });

  it("publishes connections vs max_connections, autovacuum health, xid age and top queries, with no error", async () => {
    const run = await collectPostgres();
    expect(run.value(METRICS.collectorErrors, { Host: "postgres" })).toBe(0);
    expect(run.stderr).toBe("");
    const used = run.value(METRICS.connectionsUsedPercent) as number;
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(100);
    for (const db of [database, "postgres"]) {
      expect(run.value(METRICS.transactionIdAge, { Database: db })).toBeGreaterThan(0);
      expect(run.value(METRICS.deadTuplesPercent, { Database: db })).toBeGreaterThanOrEqual(0);
    }
    // The UPDATEs above left a dead row in metrics_lock.
    expect(run.value(METRICS.deadTuples, { Database: database })).toBeGreaterThanOrEqual(1);
    expect(run.value(METRICS.statementsExecMilliseconds)).toBeGreaterThanOrEqual(0);
    const top = fs
      .readFileSync(sandbox.path("top-queries.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(top.length).toBeGreaterThan(0);
    expect(top[0]).toEqual(expect.objectContaining({ rank: 1, calls: expect.any(String), query: expect.any(String) }));
    summary.push(`connections ${used.toFixed(1)} % of max_connections; ${top.length} top-query lines`);
  });

  it("publishes the settings that wait for a restart: 0, then 1 after a reloaded max_connections change, 0 once undone (PG-1)", async () => {
    const pendingNow = async () => tier.pg.psql("SELECT count(*) FROM pg_settings WHERE pending_restart");
    const settle = async (want: string) => {
      // pg_reload_conf() only signals the postmaster: wait until a new session sees the result.
      for (const deadline = Date.now() + 10_000; (await pendingNow()) !== want; await sleep(100)) {
        if (Date.now() > deadline) throw new Error(`pg_settings never showed ${want} pending setting(s)`);
      }
    };
    const before = await collectPostgres();
    expect(before.value(METRICS.pendingRestartSettings)).toBe(0);
    const current = Number(await tier.pg.psql("SHOW max_connections"));
    await tier.pg.psql(`ALTER SYSTEM SET max_connections = ${current + 10}`);
    let during: CollectorRun | undefined;
    try {
      await tier.pg.psql("SELECT pg_reload_conf()");
      await settle("1");
      during = await collectPostgres();
    } finally {
      await tier.pg.psql("ALTER SYSTEM RESET max_connections");
      await tier.pg.psql("SELECT pg_reload_conf()");
    }
    expect(during.value(METRICS.pendingRestartSettings)).toBe(1);
    await settle("0");
    const after = await collectPostgres();
    expect(after.value(METRICS.pendingRestartSettings)).toBe(0);
    summary.push(
      `pending restart: ${before.value(METRICS.pendingRestartSettings)} → ${during.value(METRICS.pendingRestartSettings)} (max_connections ${current} → ${current + 10} reloaded) → ${after.value(METRICS.pendingRestartSettings)}`,
    );
  });
});

describe("RDS: the PgBouncer host's collector reads PostgreSQL through the monitor's libpq service (OBS-7, TLS-1)", () => {
  // The same stack with postgresEngine "rds": same stack name, so the same SSM parameter names.
  const rds = modelWith({ pgbouncer: { defaultPoolSize: 2, reservePoolSize: 1 }, postgresEngine: "rds" });
  const pgFqdn = model.hosts.postgres.fqdn;

  /** The monitor's service file as rendered, pointed at the sandbox cluster, its password resolved. */
  function serviceFile(label: string, serverName: string, dialLoopback: boolean): string {
    const rendered = renderRdsService({
      ...rdsMonitorServiceSettingsFor(rds),
      host: serverName,
      port: tier.pg.port,
      sslRootCert: under(tier.roots.postgres, PATHS.caCert),
    });
    // RDS's endpoint resolves through DNS; here the name is kept for verify-full and dialled at 127.0.0.1.
    const dialled = dialLoopback ? `${rendered}hostaddr=127.0.0.1\n` : rendered;
    return sandbox.writeFile(sandbox.path(`rds-monitor-${label}.pg_service.conf`), resolveSecretRefs(dialled, tier.secrets.byParameter), {
      mode: 0o600,
    });
  }

  function rdsCollector(label: string, file: string) {
    const settings = metricsCollectorSettingsFor(rds, rds.hosts.pgbouncer);
    const postgres = settings.postgres as NonNullable<MetricsCollectorSettings["postgres"]>;
    return collector(
      `rds-${label}`,
      remapForSandbox(settings, ["pgbouncer", "postgres", "certificates"], {
        pgbouncer: {
          ...(settings.pgbouncer as NonNullable<MetricsCollectorSettings["pgbouncer"]>),
          socketDir: tier.pgbouncer.socketDir,
          port: tier.pgbouncer.port,
        },
        postgres: { ...postgres, serviceFile: file, topQueriesLog: sandbox.path(`top-queries-rds-${label}.log`) },
        certificates: [],
      }),
      pgpassLine({ port: tier.pgbouncer.port, database: "pgbouncer", user: DB_ROLES.stats, password: tier.secrets.statsPassword }),
    );
  }

  beforeAll(async () => {
    // RDS admits TLS logins from the VPC itself (rds.force_ssl); the sandbox cluster's rendered
    // pg_hba.conf admits the monitor over its socket only, so one hostssl line stands in.
    const hba = path.join(tier.pg.confDir, "pg_hba.conf");
    fs.writeFileSync(hba, `hostssl all ${DB_ROLES.monitor} 127.0.0.1/32 scram-sha-256\n${fs.readFileSync(hba, "utf8")}`);
    await tier.pg.psql("SELECT pg_reload_conf()");
  });

  it("publishes PgBouncer's pools and PostgreSQL's activity, locks, autovacuum and top queries in one run, with no error", async () => {
    const collect = rdsCollector(
      "verified",
      serviceFile("verified", tier.verifiesPostgresByName ? pgFqdn : "127.0.0.1", tier.verifiesPostgresByName),
    );
    const idle = await odooClient();
    try {
      await idle.query("BEGIN");
      await idle.query("SELECT txid_current()");
      await sleep(1_500);
      const run = await collect();
      expect(run.stderr).toBe("");
      expect(run.value(METRICS.collectorErrors, { Host: "pgbouncer" })).toBe(0);
      expect(run.value(METRICS.oldestTransactionSeconds) as number).toBeGreaterThan(1);
      expect(run.value(METRICS.sessionsWaitingOnLocks)).toBe(0);
      expect(run.value(METRICS.connectionsUsedPercent) as number).toBeGreaterThan(0);
      expect(run.value(METRICS.transactionIdAge, { Database: database }) as number).toBeGreaterThan(0);
      expect(run.value(METRICS.clientsWaiting, { Database: database })).toBe(0);
      // RDS keeps pending-reboot parameters in its parameter group: nothing is published for it here.
      expect(run.value(METRICS.pendingRestartSettings)).toBeUndefined();
      const top = fs.readFileSync(sandbox.path("top-queries-rds-verified.log"), "utf8").trim().split("\n");
      expect(top.length).toBeGreaterThan(0);
      summary.push(
        `RDS path: oldest xact ${(run.value(METRICS.oldestTransactionSeconds) as number).toFixed(2)} s over verify-full, ${top.length} top-query lines`,
      );
    } finally {
      await idle.query("COMMIT").catch(() => undefined);
      await idle.end().catch(() => undefined);
    }
  });

  it("refuses a server certificate for another host name (verify-full): the run fails and says why", async () => {
    const collect = rdsCollector("wrong-name", serviceFile("wrong-name", "elsewhere.odoo.internal", true));
    await expect(collect()).rejects.toThrow(
      /postgres: psql service odoo-stack-rds-monitor -d postgres: .*(does not match host name|no matching|certificate)/,
    );
  });
});

describe("nginx with the rendered log_format → the collector's p95/p99 per route class (OBS-4, OBS-5)", () => {
  /** Delays per class (ms), the known distribution: p95/p99 by nearest rank. */
  const plan: { routeClass: RouteClass; uri: string; delays: number[] }[] = [
    { routeClass: "login", uri: "/web/login", delays: Array.from({ length: 100 }, (_, i) => i + 1) },
    {
      routeClass: "list",
      uri: "/web/dataset/call_kw/res.partner/web_search_read",
      delays: Array.from({ length: 100 }, (_, i) => 2 * (i + 1)),
    },
    { routeClass: "write", uri: "/web/dataset/call_kw/sale.order/web_save", delays: Array.from({ length: 100 }, (_, i) => 3 * (i + 1)) },
    { routeClass: "report", uri: "/report/pdf/sale.report_saleorder/7", delays: Array.from({ length: 20 }, (_, i) => 40 * (i + 1)) },
  ];
  const nearestRank = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.ceil((p / 100) * values.length) - 1] / 1000;

  it("measures what the requests took: p95/p99 from the collector match the distribution and the TypeScript classifier exactly", async () => {
    const www = systemUser("www-data");
    const { main, etc } = sandboxNginxMain(sandbox, "nginx");
    // An upstream standing in for Odoo: answers after ?ms= milliseconds with ?status=.
    const upstreamPort = await sandbox.freePort();
    const upstream = http.createServer((req, res) => {
      const q = new URL(req.url ?? "/", "http://x").searchParams;
      setTimeout(() => res.writeHead(Number(q.get("status") ?? 200)).end("ok"), Number(q.get("ms") ?? 0));
    });
    await new Promise<void>((resolve) => upstream.listen(upstreamPort, "127.0.0.1", resolve));
    sandbox.onCleanup(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
    const port = await sandbox.freePort();
    const conf = sandbox.writeFile(`${etc}/nginx.conf`, renderNginxConf(main));
    // Plain HTTP on loopback: the access log format lives in the main config rendered above.
    sandbox.writeFile(
      `${etc}/conf.d/metrics.conf`,
      `server {\n  listen 127.0.0.1:${port};\n  location / {\n    proxy_pass http://127.0.0.1:${upstreamPort};\n    proxy_read_timeout 1s;\n  }\n}\n`,
    );
    const nginx = sandbox.start({
      name: "nginx",
      command: BIN.nginx,
      args: ["-c", conf, "-g", "daemon off;"],
      user: www,
      stopSignal: "SIGTERM",
    });
    await waitForPort(port, { process: nginx, timeoutMs: 10_000 });

    const proxy = metricsCollectorSettingsFor(model, model.hosts.proxy);
    expect(proxy.accessLog?.path).toBe(nginxMainSettings().accessLogPath);
    const collect = collector(
      "proxy",
      remapForSandbox(proxy, ["accessLog", "certificates", "processes"], {
        accessLog: { path: main.accessLogPath },
        certificates: [],
        processes: [],
      }),
    );
    // The first run starts at the end of the log (nothing before the collector counts).
    await fetchVia(port, "/web/login", 0, 200);
    expect((await collect()).value(METRICS.requests)).toBe(0);

    const requests = plan.flatMap((p) => p.delays.map((ms) => ({ uri: p.uri, ms, status: 200 })));
    requests.push(...Array.from({ length: 6 }, () => ({ uri: "/web/image/res.partner/3/avatar_128", ms: 0, status: 500 })));
    requests.push(...Array.from({ length: 2 }, () => ({ uri: "/web/action/load", ms: 2_000, status: 200 }))); // → 504 after 1 s
    await inParallel(requests, 25, (r) => fetchVia(port, r.uri, r.ms, r.status));
    await sleep(200);

    const result = await collect();
    const written = fs.readFileSync(main.accessLogPath, "utf8").trim().split("\n").slice(1); // the one before the first run
    expect(written.length).toBe(requests.length);
    const ts = summarizeAccessLog(written);
    expect(result.value(METRICS.requests)).toBe(requests.length);
    expect(result.value(METRICS.upstreamTimeouts)).toBe(2);
    expect(result.value(METRICS.http5xxPercent)).toBeCloseTo((100 * 8) / requests.length, 9);
    const report: string[] = [];
    for (const p of plan) {
      const p95 = result.value(METRICS.latencyP95, { Class: p.routeClass }) as number;
      const p99 = result.value(METRICS.latencyP99, { Class: p.routeClass }) as number;
      // Exactly what the TypeScript classifier and percentile compute on the same lines...
      expect(p95).toBe(ts.byClass[p.routeClass]?.p95);
      expect(p99).toBe(ts.byClass[p.routeClass]?.p99);
      expect(result.value(METRICS.requests, { Class: p.routeClass })).toBe(p.delays.length);
      // ...and what the requests took: the designed delay plus nginx's and the stub's overhead.
      // The exact check is the one above; this bound only catches a wrong unit or class, and is
      // loose because a loaded CI machine adds scheduling delay to every request (0.13 s seen).
      const e95 = nearestRank(p.delays, 95);
      const e99 = nearestRank(p.delays, 99);
      const overheadBound = 0.5;
      expect(p95).toBeGreaterThanOrEqual(e95);
      expect(p95).toBeLessThan(e95 + overheadBound);
      expect(p99).toBeGreaterThanOrEqual(e99);
      expect(p99).toBeLessThan(e99 + overheadBound);
      report.push(`${p.routeClass} p95 ${p95}/${e95} p99 ${p99}/${e99}`);
    }
    summary.push(
      `access log (measured/expected s): ${report.join(", ")}; 5xx ${result.value(METRICS.http5xxPercent)?.toFixed(2)} %, 504 × ${result.value(METRICS.upstreamTimeouts)}`,
    );
  });
});

function fetchVia(port: number, uri: string, ms: number, status: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: `${uri}?ms=${ms}&status=${status}`, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${uri} timed out`)));
  });
}

async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}
