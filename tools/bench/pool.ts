// Scenario 1 (issue 7, restated by issue 15 on the Odoo traffic model): the connection storm of a
// fleet of simulated Odoo 17 processes (tools/bench/odoo-traffic.ts, odoo-load.ts). (a) PostgreSQL
// with initdb's defaults, (b) stock PgBouncer in front of it, (c) the stack's rendered PostgreSQL +
// PgBouncer from the integration sandbox (only ports, addresses and paths remapped), (d) the
// rendered PostgreSQL direct at its best client count: the ceiling (c) is measured against.
import * as fs from "fs";
import * as os from "os";
import * as yaml from "js-yaml";
import * as path from "path";
import type { ClientConfig } from "pg";
import { parseSettings, type RawConfig } from "../../lib/config";
import { knownInstanceType } from "../../lib/instance-types";
import { buildModel, DB_ROLES, type StackModel } from "../../lib/model";
import { odooConfSettingsFor, renderOdooConf } from "../../templates/odoo-conf";
import { clientConfig } from "../../tests/integration/helpers/clients";
import { startPgbouncer, type PgbouncerInstance } from "../../tests/integration/helpers/pgbouncer";
import { startPostgres, type PostgresCluster } from "../../tests/integration/helpers/postgres";
import { Sandbox, systemUser, type SystemUser } from "../../tests/integration/helpers/sandbox";
import { randomPassword } from "../../tests/integration/helpers/secrets";
import { startDatabaseTier } from "../../tests/integration/helpers/stack";
import { bindProcessTree, bindThisProcess, cpuPlacement } from "./cpu-placement";
import { runOdooLoad, type OdooLoadResult } from "./odoo-load";
import { odooDbOptions, odooRequestKinds, odooSchemaSql, type OdooDbEndpoint, type OdooDbOptions } from "./odoo-traffic";
import { consoleShow, maxWaitOf } from "./pgbouncer-console";
import type { LadderRun, LadderStep, PgPoint, PoolConfig, PoolScenario, PoolTarget } from "./results";
import { median, ratio, seededRandom } from "./stats";

export interface PoolOptions {
  readonly clientCounts: readonly number[];
  readonly ceilingClientCounts: readonly number[];
  readonly warmupMs: number;
  readonly measureMs: number;
  /** Interleaved rounds of the ladder (ceiling … (c)); the target compares medians over them. */
  readonly rounds: number;
  readonly log: (line: string) => void;
}

/** The targets of issue 15: (c) at every fleet size reaches this share of the ceiling… */
export const TARGET_SHARE_OF_CEILING = 0.9;
/** …with the `postgres` session pool's maxwait below this (SHOW POOLS), in ms. */
export const POSTGRES_MAXWAIT_LIMIT_MS = 100;

/**
 * The stack the rendered tier is sized for: the prod stack file (Pulumi.prod.yaml: m6i.xlarge
 * Odoo hosts, r6i.large PostgreSQL) with the most Odoo hosts it allows (16: max_client_conn
 * 2,750, POOL-4), so that PgBouncer admits the largest simulated fleet. Each simulated process
 * holds its pooled connection while its post-commit NOTIFY logs in on a second one, as Odoo's
 * do: with twelve hosts (max_client_conn 2,070) the run of 2026-12-03 had NOTIFYs at 2,000
 * processes refused with "no more connections allowed (max_client_conn)" (28 of 950 in the
 * point, 31 of 802 in one of three rounds) once more than 57 of those logins overlapped. Nothing else is changed: the pools are what lib/sizing.ts derives
 * for those hosts.
 */
export const BENCH_STACK_OVERRIDES: RawConfig = { odooInstances: 16 };

/**
 * Python time between two statements of a simulated request, ms: Odoo's ORM works between its
 * queries inside the request's transaction, which holds the server connection meanwhile.
 */
export const PYTHON_MS_PER_STATEMENT = 1;
/** Requests that arrive without a session database (first visits, health checks). */
export const COOKIELESS_SHARE = 0.05;
/** How long a storm's connections may take to log in (TLS + SCRAM) on a loaded machine. */
const STORM_CONNECT_TIMEOUT_MS = 180_000;

/**
 * The model of the prod stack file (Pulumi.prod.yaml's own keys, lib/config.ts defaults for
 * the rest) with `overrides` on top (default: BENCH_STACK_OVERRIDES).
 */
export function benchModel(root: string, overrides: RawConfig = BENCH_STACK_OVERRIDES): StackModel {
  const file = yaml.load(fs.readFileSync(path.join(root, "Pulumi.prod.yaml"), "utf8")) as { config?: Record<string, unknown> };
  const config = file.config ?? {};
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) if (key.startsWith("odoo-stack:")) raw[key.slice("odoo-stack:".length)] = value;
  return buildModel("prod", parseSettings({ ...(raw as RawConfig), ...overrides }, String(config["aws:region"]), knownInstanceType));
}

/** Debian's pg_hba.conf for a fresh cluster (TCP from localhost with a password). */
const STOCK_PG_HBA = [
  "local   all   postgres                 peer",
  "local   all   all                      peer",
  "host    all   all      127.0.0.1/32    scram-sha-256",
  "host    all   all      ::1/128         scram-sha-256",
  "",
].join("\n");

/**
 * Debian's pgbouncer.ini as shipped, with only the database entry a user must add and the
 * remapped ports and paths: every pool setting stays at PgBouncer's default (pool_mode
 * session, default_pool_size 20, max_client_conn 100).
 */
export function stockPgbouncerIni(o: {
  listenPort: number;
  serverPort: number;
  database: string;
  socketDir: string;
  logFile: string;
  pidFile: string;
  authFile: string;
}): string {
  return [
    "[databases]",
    `${o.database} = host=127.0.0.1 port=${o.serverPort} dbname=${o.database}`,
    "",
    "[pgbouncer]",
    `logfile = ${o.logFile}`,
    `pidfile = ${o.pidFile}`,
    "listen_addr = 127.0.0.1",
    `listen_port = ${o.listenPort}`,
    `unix_socket_dir = ${o.socketDir}`,
    "auth_type = md5",
    `auth_file = ${o.authFile}`,
    "",
  ].join("\n");
}

/**
 * Waits until PgBouncer holds no client from the previous point: clients that were queued
 * behind a session pool when their sockets closed still count against max_client_conn until
 * PgBouncer gets to them, and would make the next point fail for the previous one's sake.
 */
async function settle(bouncer: PgbouncerInstance, user: SystemUser, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pools = await consoleShow({ socketDir: bouncer.socketDir, port: bouncer.port, user }, "POOLS").catch(() => []);
    // The console's own pseudo-pool (database "pgbouncer") holds this very query's client.
    const clients = pools
      .filter((p) => p.database !== "pgbouncer")
      .reduce((s, p) => s + Number(p.cl_active ?? 0) + Number(p.cl_waiting ?? 0), 0);
    if (clients === 0 || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Waits until the stock cluster has no `bench` backend left (the previous point's are exiting). */
async function settleBackends(cluster: PostgresCluster, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    Number(await cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'bench'").catch(() => "0")) > 0 &&
    Date.now() < deadline
  ) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The largest maxwait of SHOW POOLS right now, over every pool and over `postgres`, in ms. */
const maxWaits = async (bouncer: PgbouncerInstance, user: SystemUser): Promise<{ all: number; postgres: number }> => {
  const pools = await consoleShow({ socketDir: bouncer.socketDir, port: bouncer.port, user }, "POOLS");
  return { all: maxWaitOf(pools), postgres: maxWaitOf(pools.filter((p) => p.database === "postgres")) };
};

/** Partners in the dataset: requests pick one at random, so writes rarely collide (REPEATABLE READ). */
const BENCH_PARTNERS = 50_000;

async function startStockPostgres(sandbox: Sandbox, user: SystemUser): Promise<PostgresCluster> {
  const port = await sandbox.freePort();
  const root = sandbox.mkdir("stock-postgres", undefined, 0o755);
  return startPostgres(
    sandbox,
    user,
    {
      dropIn: { fileName: "stock.conf", content: "# nothing: initdb's defaults (max_connections 100, shared_buffers 128MB)\n" },
      pgHba: STOCK_PG_HBA,
    },
    { port, confDir: path.join(root, "etc"), dataDir: path.join(root, "data"), socketDir: path.join(root, "run"), name: "postgres-stock" },
  );
}

/** One rung of the ladder: a fleet size, an endpoint and, through PgBouncer, the ini it runs with. */
interface LadderRung {
  readonly key: string;
  readonly label: string;
  readonly clients: number;
  readonly endpoint: OdooDbEndpoint;
  readonly database: string;
  readonly options: OdooDbOptions;
  readonly pgids: () => number[];
  readonly pgbouncerIni?: string;
  readonly odooPgAppName?: (host: number) => string | undefined;
}

/** An endpoint for `login` (user, password) on `base`, any database, with the storm's connect timeout. */
const endpointOf = (base: (database: string) => ClientConfig): OdooDbEndpoint => ({
  config: (database) => ({ ...base(database), connectionTimeoutMillis: STORM_CONNECT_TIMEOUT_MS }),
});

/** The request kinds as the report describes them. */
function describeMix(): PoolScenario["mix"] {
  const random = seededRandom(1);
  return odooRequestKinds().map((k) => ({
    kind: k.kind,
    weight: k.weight,
    sql: [
      "DISCARD ALL (psycopg2 reset, each cursor)",
      "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT … FROM base_registry_signaling, base_cache_signaling_…; ROLLBACK",
      `BEGIN ISOLATION LEVEL REPEATABLE READ; ${k.statements(random).length} statements${k.busMessages > 0 ? "; INSERT INTO bus_bus …" : ""}; COMMIT`,
      ...(k.busMessages > 0 ? ["then, on a new connection to postgres: NOTIFY imbus, '…'"] : []),
    ],
  }));
}

export async function runPoolScenario(root: string, opts: PoolOptions): Promise<PoolScenario> {
  const model = benchModel(root);
  const hosts = model.settings.odooInstances;
  // What the simulated processes read: the rendered odoo.conf of the stack's first Odoo host.
  const renderedOptions = odooDbOptions(renderOdooConf(odooConfSettingsFor(model, model.hosts.odoo[0])));
  const placement = cpuPlacement(os.cpus().length);
  if (placement) bindThisProcess(placement.others);
  const postgresUser = systemUser("postgres");
  const sandbox = Sandbox.create("bench-pool");
  const points: PgPoint[] = [];
  let stockCluster: PostgresCluster | undefined;
  const freeStockSlots = async () => {
    if (stockCluster) await settleBackends(stockCluster);
  };
  let pid = 100_000;
  const load = async (
    clients: number,
    endpoint: OdooDbEndpoint,
    database: string,
    options: OdooDbOptions,
    pgids: number[],
    bouncer?: PgbouncerInstance,
    odooPgAppName?: (host: number) => string | undefined,
  ): Promise<OdooLoadResult> => {
    if (bouncer) await settle(bouncer, postgresUser);
    else await freeStockSlots();
    const firstPid = pid;
    pid += clients + hosts + 10;
    return runOdooLoad({
      endpoint,
      database,
      options,
      processes: clients,
      hosts: Math.min(hosts, clients),
      odooPgAppName,
      warmupMs: opts.warmupMs,
      measureMs: opts.measureMs,
      pythonMsPerStatement: PYTHON_MS_PER_STATEMENT,
      cookielessShare: COOKIELESS_SHARE,
      pgids,
      sampleMaxWait: bouncer ? () => maxWaits(bouncer, postgresUser) : undefined,
      firstPid,
    });
  };
  const point = async (
    config: PoolConfig,
    clients: number,
    endpoint: OdooDbEndpoint,
    database: string,
    options: OdooDbOptions,
    pgids: number[],
    bouncer?: PgbouncerInstance,
  ) => {
    opts.log(`pool: ${config} × ${clients} simulated Odoo processes …`);
    const r = await load(clients, endpoint, database, options, pgids, bouncer);
    const p: PgPoint = { config, ...r };
    opts.log(
      `pool: ${config} × ${clients}: ${p.tps.toFixed(0)} requests/s, p95 ${p.latencyMs.p95.toFixed(1)} ms, ${p.failedConnections} failed connections, ` +
        `${p.failedTransactions} failed requests, ${p.starvedClients} starved, ${r.notifications.lost}/${r.notifications.sent} notifications lost; ` +
        `CPU generator ${p.cpu.generatorCores.toFixed(2)} daemons ${p.cpu.serverCores.toFixed(2)}`,
    );
    points.push(p);
  };
  try {
    // --- (a) and (b): PostgreSQL with initdb's defaults, stock PgBouncer in front of it --------
    const stock = await startStockPostgres(sandbox, postgresUser);
    stockCluster = stock;
    const login = { user: "bench", password: randomPassword(), database: "bench" };
    await stock.runScript(
      `SET password_encryption = 'scram-sha-256';\nCREATE ROLE bench LOGIN PASSWORD '${login.password}';\nCREATE DATABASE bench OWNER bench;\n`,
    );
    const loaded = await stock.runScript(odooSchemaSql("bench", BENCH_PARTNERS), "bench");
    if (loaded.code !== 0) throw new Error(`loading Odoo's tables failed:\n${loaded.stderr}`);
    const stockOptions: OdooDbOptions = { ...renderedOptions, dbNames: ["bench"], dbUser: "bench" };
    const stockBase =
      (port: number) =>
      (database: string): ClientConfig => ({ host: "127.0.0.1", port, user: login.user, password: login.password, database, ssl: false });
    const stockDirect = endpointOf(stockBase(stock.port));
    const bouncerDir = sandbox.mkdir("stock-pgbouncer", postgresUser, 0o755);
    const authFile = sandbox.writeFile(path.join(bouncerDir, "userlist.txt"), `"${login.user}" "${login.password}"\n`, {
      owner: postgresUser,
      mode: 0o600,
    });
    const startStockBouncer = async (): Promise<PgbouncerInstance> => {
      const listenPort = await sandbox.freePort();
      const files = {
        socketDir: bouncerDir,
        logFile: path.join(bouncerDir, "pgbouncer.log"),
        pidFile: path.join(bouncerDir, "pgbouncer.pid"),
        authFile,
      };
      const iniPath = sandbox.writeFile(
        path.join(bouncerDir, "pgbouncer.ini"),
        stockPgbouncerIni({ listenPort, serverPort: stock.port, database: login.database, ...files }),
        { owner: postgresUser, mode: 0o640 },
      );
      const bouncer = await startPgbouncer(sandbox, postgresUser, {
        iniPath,
        port: listenPort,
        socketDir: files.socketDir,
        logFile: files.logFile,
      });
      if (placement) bindProcessTree([bouncer.process.pid], placement.others);
      return bouncer;
    };

    // --- (c) and (d): the rendered tier --------------------------------------------------------
    opts.log("pool: starting the rendered PostgreSQL + PgBouncer …");
    const tier = await startDatabaseTier(sandbox, model);
    const database = model.settings.databases[0];
    const renderedLoad = await tier.pg.runScript(odooSchemaSql(DB_ROLES.odoo, BENCH_PARTNERS), database);
    if (renderedLoad.code !== 0) throw new Error(`loading Odoo's tables into the rendered cluster failed:\n${renderedLoad.stderr}`);
    const rendered = endpointOf((db) => clientConfig(tier.pgbouncerEndpoint, tier.odooLogin(db)));
    const renderedDirect = endpointOf((db) => clientConfig(tier.postgresEndpoint, tier.odooLogin(db)));
    if (placement) {
      bindProcessTree([stock.process.pid, tier.pg.process.pid], placement.database);
      bindProcessTree([tier.pgbouncer.process.pid], placement.others);
      opts.log(`pool: PostgreSQL on CPUs ${placement.database}; PgBouncer and the load generator on CPUs ${placement.others}`);
    }

    for (const clients of opts.ceilingClientCounts)
      await point("ceiling", clients, renderedDirect, database, renderedOptions, [tier.pg.process.pid]);
    for (const clients of opts.clientCounts) {
      await point("stock-postgres", clients, stockDirect, "bench", stockOptions, [stock.process.pid]);
      const stockBouncer = await startStockBouncer();
      try {
        await point(
          "stock-pgbouncer",
          clients,
          endpointOf(stockBase(stockBouncer.port)),
          "bench",
          stockOptions,
          [stock.process.pid, stockBouncer.process.pid],
          stockBouncer,
        );
      } finally {
        await stockBouncer.process.stop();
      }
      await point(
        "rendered",
        clients,
        rendered,
        database,
        renderedOptions,
        [tier.pg.process.pid, tier.pgbouncer.process.pid],
        tier.pgbouncer,
      );
    }
    const pools = model.settings.sizing.pgbouncer;
    const pg = model.settings.sizing.postgres;
    const largest = Math.max(...opts.clientCounts);
    const smallest = Math.min(...opts.clientCounts);
    const sweepBest = points.filter((p) => p.config === "ceiling").reduce((a, b) => (b.tps > a.tps ? b : a));

    // The ladder: every rung measured once per round, the rounds' order alternating, so that the
    // machine's drift falls on every rung alike. Targets compare medians.
    const best = sweepBest.clients;
    const poolForBest = benchModel(root, { ...BENCH_STACK_OVERRIDES, pgbouncer: { defaultPoolSize: best } });
    const poolForBestSizes = poolForBest.settings.sizing.pgbouncer;
    const viaPgbouncer = (
      key: string,
      label: string,
      clients: number,
      pgbouncerIni: string,
      odooPgAppName?: (host: number) => string | undefined,
    ): LadderRung => ({
      key,
      label,
      clients,
      endpoint: rendered,
      database,
      options: renderedOptions,
      pgids: () => [tier.pg.process.pid, tier.pgbouncer.process.pid],
      pgbouncerIni,
      odooPgAppName,
    });
    const perHost = (host: number) => `odoo-${model.hosts.odoo[host % model.hosts.odoo.length].id}`;
    const rungs: readonly LadderRung[] = [
      {
        key: "ceiling",
        label: `ceiling: the rendered PostgreSQL direct (TLS, SCRAM, the checklist's settings), ${best} processes`,
        clients: best,
        endpoint: renderedDirect,
        database,
        options: renderedOptions,
        pgids: () => [tier.pg.process.pid],
      },
      {
        key: "stock-direct",
        label: `stock PostgreSQL direct (plain TCP, initdb's defaults), ${best} processes: the security tax's reference`,
        clients: best,
        endpoint: stockDirect,
        database: "bench",
        options: stockOptions,
        pgids: () => [stock.process.pid],
      },
      ...opts.clientCounts.map((n) =>
        viaPgbouncer(
          `rendered-${n}`,
          `(c) as rendered, ${n} processes: pool ${pools.defaultPoolSize} + reserve ${pools.reservePoolSize}, TLS on both hops, application_name_add_host = 1, odoo-<pid> names`,
          n,
          tier.pgbouncerIniFor(model),
        ),
      ),
      viaPgbouncer(
        `pool-at-best-${largest}`,
        `(c) with the pool the ceiling sweep favours (${poolForBestSizes.defaultPoolSize} + reserve ${poolForBestSizes.reservePoolSize}), ${largest} processes`,
        largest,
        tier.pgbouncerIniFor(poolForBest),
      ),
      viaPgbouncer(
        `appname-pid-${smallest}`,
        `(c) with application_name_add_host = 0, Odoo's odoo-<pid> names, ${smallest} processes`,
        smallest,
        tier.pgbouncerIniFor(model, { application_name_add_host: 0 }),
      ),
      viaPgbouncer(
        `appname-host-${smallest}`,
        `(c) with application_name_add_host = 0 and ODOO_PGAPPNAME per host (odoo-<host>), ${smallest} processes`,
        smallest,
        tier.pgbouncerIniFor(model, { application_name_add_host: 0 }),
        perHost,
      ),
    ];
    const runs: LadderRun[][] = rungs.map(() => []);
    for (let round = 0; round < opts.rounds; round++) {
      const order = rungs.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        const rung = rungs[i];
        opts.log(`pool: round ${round + 1}/${opts.rounds}, ${rung.label} …`);
        let bouncer: PgbouncerInstance | undefined;
        if (rung.pgbouncerIni !== undefined) {
          // A fresh PgBouncer per run: nothing of the previous run's clients or servers remains.
          bouncer = await tier.restartPgbouncer(rung.pgbouncerIni);
          if (placement) bindProcessTree([bouncer.process.pid], placement.others);
        }
        const r = await load(rung.clients, rung.endpoint, rung.database, rung.options, rung.pgids(), bouncer, rung.odooPgAppName);
        runs[i].push({
          round,
          tps: r.tps,
          latencyMs: r.latencyMs,
          failures: r.failedConnections + r.failedTransactions + r.starvedClients,
          lostNotifications: r.notifications.lost,
          ...(r.postgresMaxWaitMs !== undefined ? { postgresMaxWaitMs: r.postgresMaxWaitMs } : {}),
          cpu: r.cpu,
        });
        opts.log(
          `pool: round ${round + 1}: ${r.tps.toFixed(0)} requests/s, p50 ${r.latencyMs.p50.toFixed(1)} ms, ${r.notifications.lost}/${r.notifications.sent} notifications lost`,
        );
      }
    }
    const ladder: LadderStep[] = rungs.map((rung, i) => ({
      key: rung.key,
      label: rung.label,
      clients: rung.clients,
      runs: runs[i],
      tps: median(runs[i].map((r) => r.tps)),
    }));
    const step = (key: string) => ladder.find((l) => l.key === key) as LadderStep;
    const ceiling = step("ceiling");
    const targets: PoolTarget[] = opts.clientCounts.map((n) => {
      const c = step(`rendered-${n}`);
      const point = points.find((p) => p.config === "rendered" && p.clients === n);
      const failures =
        c.runs.reduce((sum, r) => sum + r.failures, 0) +
        (point ? point.failedConnections + point.failedTransactions + point.starvedClients : 0);
      const lost = c.runs.reduce((sum, r) => sum + r.lostNotifications, 0) + (point?.notifications?.lost ?? 0);
      const postgresMaxWaitMs = Math.max(0, ...c.runs.map((r) => r.postgresMaxWaitMs ?? 0), point?.postgresMaxWaitMs ?? 0);
      const share = ratio(c.tps, ceiling.tps);
      return {
        clients: n,
        renderedTps: c.tps,
        ceilingTps: ceiling.tps,
        ratio: share,
        roundRatios: ceiling.runs.map((run, i) => ratio(c.runs[i].tps, run.tps)),
        required: TARGET_SHARE_OF_CEILING,
        failures,
        lostNotifications: lost,
        postgresMaxWaitMs,
        postgresMaxWaitLimitMs: POSTGRES_MAXWAIT_LIMIT_MS,
        met: share >= TARGET_SHARE_OF_CEILING && failures === 0 && lost === 0 && postgresMaxWaitMs < POSTGRES_MAXWAIT_LIMIT_MS,
      };
    });
    const stockDirectStep = step("stock-direct");
    return {
      warmupMs: opts.warmupMs,
      measureMs: opts.measureMs,
      clientCounts: opts.clientCounts,
      ceilingClientCounts: opts.ceilingClientCounts,
      mix: describeMix(),
      dataset: `Odoo's tables the model touches (tools/bench/odoo-traffic.ts odooSchemaSql): res_partner ${BENCH_PARTNERS.toLocaleString("en")} rows, sale_order_line ${(BENCH_PARTNERS * 10).toLocaleString("en")}, mail_message and bus_bus append-only, the registry's signaling sequences, ir_cron; VACUUM ANALYZE after loading. ${PYTHON_MS_PER_STATEMENT} ms of Python between statements; ${COOKIELESS_SHARE * 100} % of requests without a session database; ${hosts} simulated hosts: a bus LISTENer each, one cron LISTENer`,
      configs: {
        "stock-postgres":
          "initdb defaults (max_connections 100, shared_buffers 128MB), Debian's pg_hba (scram-sha-256 from 127.0.0.1), plain TCP; each simulated process connects straight to it, `postgres` included.",
        "stock-pgbouncer":
          "Debian's pgbouncer.ini with only the database entry added: pool_mode session, default_pool_size 20, max_client_conn 100 (PgBouncer 1.18 defaults), auth_type md5, plain TCP; in front of (a), started afresh for each point. It has no `postgres` entry, so Odoo's bus and cron connections there fail. " +
          "PgBouncer counts every accepted socket against max_client_conn when it reads a startup packet (client.c), so when a storm's sockets are all accepted first, it can refuse every one of them.",
        rendered:
          `the rendered pgbouncer.ini and PostgreSQL drop-in for the prod stack file with ${hosts} Odoo hosts (BENCH_STACK_OVERRIDES in tools/bench/pool.ts): ` +
          `pool_mode transaction, default_pool_size ${pools.defaultPoolSize} + reserve ${pools.reservePoolSize}, the \`postgres\` session pool ${pools.postgresPoolSize} + ${pools.postgresReservePoolSize}, max_client_conn ${pools.maxClientConn}, max_connections ${pg.maxConnections}, ` +
          `shared_buffers ${pg.sharedBuffersMiB}MB; TLS with verify-full on both hops (client→PgBouncer, PgBouncer→PostgreSQL) and SCRAM — (a) and (b) run without TLS, so (c) pays for it alone.`,
        ceiling:
          `the rendered PostgreSQL (TLS, SCRAM, the checklist's settings) straight from the simulated processes, with ${opts.ceilingClientCounts.join(", ")} of them; the best count is the ceiling's, and its rate is the median of ${opts.rounds} ` +
          "runs at that count interleaved with (c)'s (the ladder below).",
      },
      points,
      ...(placement ? { placement: { database: placement.database, others: placement.others } } : {}),
      ceiling: { clients: best, tps: ceiling.tps, sweepTps: sweepBest.tps, roundTps: ceiling.runs.map((r) => r.tps) },
      ladder,
      targets,
      securityTax: {
        clients: best,
        renderedDirectTps: ceiling.tps,
        stockDirectTps: stockDirectStep.tps,
        ratio: ratio(ceiling.tps, stockDirectStep.tps),
      },
      applicationName: {
        clients: smallest,
        variants: [`rendered-${smallest}`, `appname-pid-${smallest}`, `appname-host-${smallest}`].map((key) => ({
          key,
          label: step(key).label,
          tps: step(key).tps,
        })),
      },
    };
  } finally {
    if (placement) bindThisProcess(placement.all);
    await sandbox.cleanup();
  }
}
