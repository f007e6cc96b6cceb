// issue 15: the rendered PostgreSQL 15 + PgBouncer 1.18 driven by the Odoo traffic model
// (tools/bench/odoo-traffic.ts: Odoo 17's processes, each behaviour cited to its source line),
// configured from the rendered odoo.conf. One test per defect a real Odoo 17 measured on the
// rendered configs of before (ODOO-FACTS.md):
//   1. a dbfilter with one database costs a `postgres` connection per cookieless request;
//   2. the `postgres` session pool sized for LISTEN alone, and dead LISTENers kept for hours;
//   3. the gevent worker's pool at db_maxconn (8);
//   4. migrations under the web requests' timeouts;
// (5, the proxy's queue, is tests/integration/nginx-shedding.test.ts).
import { execFileSync } from "child_process";
import type { ClientConfig } from "pg";
import { DB_ROLES } from "../../lib/model";
import { odooConfSettingsFor, odooMigrationCommand, renderOdooConf } from "../../templates/odoo-conf";
import { LISTEN_DATABASE, PGBOUNCER_DEAD_PEER_SECONDS } from "../../templates/pgbouncer";
import { seededRandom } from "../../tools/bench/stats";
import {
  dbFilter,
  odooDbOptions,
  OdooCursor,
  OdooHost,
  OdooPoolError,
  OdooProcess,
  odooRequestKinds,
  odooSchemaSql,
  PostgresListener,
  serveRequest,
  TrafficRecorder,
  websocketReconnect,
  type OdooDbEndpoint,
} from "../../tools/bench/odoo-traffic";
import { modelWith } from "../helpers/fixtures";
import { clientConfig } from "./helpers/clients";
import { Sandbox, sleep } from "./helpers/sandbox";
import { startDatabaseTier, type DatabaseTier } from "./helpers/stack";

jest.setTimeout(120_000);

const model = modelWith();
const host = model.hosts.odoo[0];
const database = model.settings.databases[0];
/** What Odoo reads: the rendered odoo.conf of the cron host, through the policy pack's parser. */
const odooConf = renderOdooConf(odooConfSettingsFor(model, host));
const options = odooDbOptions(odooConf);
const kinds = odooRequestKinds();
const byKind = (kind: string) => kinds.find((k) => k.kind === kind) as (typeof kinds)[number];

/**
 * The storm's Python: 20 ms per handler before its first statement (the environment, the session
 * read from the filestore, the registry check) with the cursor held, as websocket.py
 * serve_websocket_message holds it from acquire_cursor (L758) on. The HTTP workers serve a page
 * every HTTP_THINK_MS meanwhile.
 */
const WEBSOCKET_HANDLER = { pythonMsPerStep: 20, pythonMsPerStatement: 0 } as const;
const HTTP_THINK_MS = 200;

const sandbox = Sandbox.create("odoo-traffic");
let tier: DatabaseTier;
let endpoint: OdooDbEndpoint;
const summary: string[] = [];
let nextPid = 40_000;
const pids = (n: number) => {
  const first = nextPid;
  nextPid += n;
  return first;
};

beforeAll(async () => {
  tier = await startDatabaseTier(sandbox, model);
  const loaded = await tier.pg.runScript(odooSchemaSql(DB_ROLES.odoo), database);
  if (loaded.code !== 0) throw new Error(`loading Odoo's tables failed:\n${loaded.stderr}`);
  endpoint = { config: (db: string): ClientConfig => clientConfig(tier.pgbouncerEndpoint, tier.odooLogin(db)) };
}, 180_000);

afterAll(async () => {
  await sandbox.cleanup();
  console.log(`[odoo-traffic] ${summary.join(" | ")}`);
});

/** Resolves with `promise`'s outcome, or an Error after `ms` (a client stuck in PgBouncer's queue). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T | Error> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Error>((resolve) => (timer = setTimeout(() => resolve(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  try {
    return await Promise.race([
      promise.then(
        (v) => v,
        (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** SHOW STATS's total_query_count of one database (PgBouncer lists a database once it has a pool). */
const queriesOn = async (db: string) => Number((await tier.pgbouncer.show("STATS")).find((r) => r.database === db)?.total_query_count ?? 0);

describe("the rendered PgBouncer under Odoo 17's traffic (issue 15)", () => {
  it("reads the rendered odoo.conf as Odoo does", () => {
    expect(options).toMatchObject({
      workers: model.settings.sizing.odoo.workers,
      maxCronThreads: model.settings.sizing.odoo.maxCronThreads,
      dbNames: [database],
      dbUser: DB_ROLES.odoo,
    });
  });

  it("1. serves requests without a session from db_name alone: no `postgres` connection per request, and no other database (ODOO-3)", async () => {
    const recorder = new TrafficRecorder();
    const worker = new OdooProcess(pids(1), "http", options.dbMaxconn, endpoint, recorder);
    const random = seededRandom(1);
    const before = await queriesOn(LISTEN_DATABASE);
    let served = 0;
    try {
      for (let i = 0; i < 40; i++) {
        const r = await serveRequest(worker, options, {
          database,
          kind: byKind("read"),
          random,
          cookieless: true,
          host: "erp.example.com",
          pythonMsPerStatement: 0,
        });
        if (r.database === database) served++;
      }
    } finally {
      await worker.close();
    }
    const postgresQueries = (await queriesOn(LISTEN_DATABASE)) - before;
    summary.push(
      `1: 40 cookieless requests served ${served}, list_dbs connections ${recorder.eventsFor("list_dbs").length}, queries on postgres ${postgresQueries}`,
    );
    expect(served).toBe(40);
    expect(recorder.eventsFor("list_dbs").map((e) => e.ms)).toEqual([]);
    expect(postgresQueries).toBe(0);
    // Still only the stack's database, whatever the host or the database a URL names.
    for (const requestHost of ["erp.example.com", "postgres.example.com", "other.example.com"]) {
      expect(dbFilter(options, [database, "postgres", "template1", "other"], requestHost)).toEqual([database]);
    }
  });

  it("2. gives every process's short `postgres` session a slot while the LISTENers and a crashed host's two are held: no wait, no lost notification (DESIGN 7)", async () => {
    const recorder = new TrafficRecorder();
    const odoo = new OdooHost({ name: host.id, options, endpoint, recorder, firstPid: pids(20) });
    // Another host that crashed: its bus and cron LISTEN sessions stay until TCP keepalive frees them.
    const crashed = new OdooHost({ name: "crashed", options, endpoint, recorder, firstPid: pids(20) });
    const starting = new OdooProcess(pids(1), "cli", options.dbMaxconn, endpoint, recorder);
    try {
      await odoo.start();
      await Promise.all([crashed.bus.start(), ...crashed.cronListeners.map((l) => l.start())]);
      const random = seededRandom(2);
      const started = performance.now();
      // Every process of the host at once: each HTTP worker commits a write that notifies the bus,
      // the gevent worker too, the cron worker triggers a cron, and a second server starts.
      const work: Promise<unknown>[] = [
        ...[...odoo.http, odoo.gevent].map((p) =>
          serveRequest(p, options, {
            database,
            kind: byKind("write"),
            random,
            cookieless: false,
            host: "erp.example.com",
            pythonMsPerStatement: 0,
          }),
        ),
        ...odoo.cron.map((p) =>
          serveRequest(p, options, {
            database,
            kind: byKind("read"),
            random,
            cookieless: false,
            host: "erp.example.com",
            pythonMsPerStatement: 0,
            triggerCron: true,
          }),
        ),
        starting.serverStart(options),
      ];
      const outcomes = await Promise.all(work.map((w) => within(w, 20_000, "a request and its post-commit")));
      const elapsed = performance.now() - started;
      const errors = outcomes.filter((o): o is Error => o instanceof Error).map((e) => e.message);
      // Deliveries: every NOTIFY reached the bus LISTENers, every trigger the cron worker.
      const deadline = Date.now() + 5_000;
      while (
        Date.now() < deadline &&
        (odoo.bus.received.length < recorder.busSent.size ||
          odoo.cronListeners.some((l) => l.received.length < recorder.cronTriggersSent.size))
      )
        await sleep(50);
      const short = recorder.events.filter((e) => ["notify_bus", "notify_cron", "server_start"].includes(e.purpose));
      summary.push(
        `2: ${short.length} short postgres sessions next to ${2 + 2} held LISTEN sessions in ${elapsed.toFixed(0)} ms (slowest ${Math.max(0, ...short.map((e) => e.ms)).toFixed(0)} ms), ` +
          `bus ${odoo.bus.received.length}/${recorder.busSent.size} delivered, cron triggers ${odoo.cronListeners.map((l) => l.received.length).join(",")}/${recorder.cronTriggersSent.size}`,
      );
      expect(errors).toEqual([]);
      expect([...recorder.busFailed, ...recorder.cronTriggersFailed]).toEqual([]);
      expect(recorder.busSent.size).toBe(odoo.http.length + 1);
      expect(recorder.cronTriggersSent.size).toBe(odoo.cron.length);
      expect([...odoo.bus.received].sort()).toEqual([...recorder.busSent].sort());
      expect([...crashed.bus.received].sort()).toEqual([...recorder.busSent].sort()); // LISTEN is per session, alive or not
      for (const l of odoo.cronListeners) expect(l.received.sort()).toEqual([...recorder.cronTriggersSent].sort());
      expect(short.filter((e) => e.error !== undefined)).toEqual([]);
    } finally {
      await Promise.all([odoo.stop(), crashed.stop(), starting.close()]);
    }
  });

  it(`2. closes a dead host's LISTEN session within ${PGBOUNCER_DEAD_PEER_SECONDS} s: TCP keepalive on PgBouncer's client and server sockets`, async () => {
    const recorder = new TrafficRecorder();
    const gone = new OdooProcess(pids(1), "gevent", options.dbMaxconnGevent, endpoint, recorder);
    const bus = new PostgresListener(gone, "imbus");
    const table = `odoo_stack_it_${process.pid}_${Date.now() % 100_000}`;
    let firewall = false;
    const dropFirewall = () => {
      if (!firewall) return;
      firewall = false;
      try {
        execFileSync("nft", ["delete", "table", "inet", table], { stdio: "ignore" });
      } catch {
        // already gone
      }
    };
    process.on("exit", dropFirewall);
    try {
      await bus.start();
      const clientPort = bus.socket?.localPort as number;
      const bouncerPort = tier.pgbouncerEndpoint.port;
      // The kernel's view of PgBouncer's sockets: its client socket to this LISTENer and its
      // server sockets to PostgreSQL both run a keepalive timer, due within tcp_keepidle.
      // A socket shows its keepalive timer once idle (right after a send it shows the
      // retransmission timer until the peer's delayed ACK): sample until every one does.
      const keepaliveSeconds = async (filter: string): Promise<number[]> => {
        for (let attempt = 0; ; attempt++) {
          const lines = execFileSync("ss", ["-tnoH", "state", "established", filter], { encoding: "utf8" })
            .split("\n")
            .filter((l) => l.trim() !== "");
          const timers = lines.map((l) => /timer:\(keepalive,(?:(\d+)min)?(?:([\d.]+)(sec|ms))?/.exec(l));
          if (timers.every((m) => m !== null) || attempt >= 20) {
            return timers.map((m) => (m === null ? Infinity : Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0) / (m[3] === "ms" ? 1000 : 1)));
          }
          await sleep(100);
        }
      };
      const clientSide = await keepaliveSeconds(`( sport = :${bouncerPort} and dport = :${clientPort} )`);
      // Only PgBouncer reaches this PostgreSQL over TCP (psql uses the Unix socket).
      const serverSide = await keepaliveSeconds(`( dport = :${tier.pg.port} )`);
      summary.push(
        `2: keepalive due in ${clientSide.join(",")} s on PgBouncer's client socket, ${serverSide.slice(0, 3).join(",")} s on its server sockets`,
      );
      expect(clientSide).toHaveLength(1);
      expect(clientSide[0]).toBeLessThanOrEqual(PGBOUNCER_DEAD_PEER_SECONDS);
      expect(serverSide.length).toBeGreaterThan(0);
      for (const s of serverSide) expect(s).toBeLessThanOrEqual(PGBOUNCER_DEAD_PEER_SECONDS);

      // The host vanishes: its packets stop, in both directions, with no FIN or RST (a crash or a
      // network partition). Only this one connection's 4-tuple is dropped, in a table of its own.
      const rule = (sport: number, dport: number) => [
        "add",
        "rule",
        "inet",
        table,
        "out",
        "ip",
        "saddr",
        "127.0.0.1",
        "tcp",
        "sport",
        String(sport),
        "tcp",
        "dport",
        String(dport),
        "drop",
      ];
      execFileSync("nft", ["add", "table", "inet", table]);
      firewall = true;
      sandbox.onCleanup(dropFirewall);
      execFileSync("nft", ["add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; }"]);
      execFileSync("nft", rule(clientPort, bouncerPort));
      execFileSync("nft", rule(bouncerPort, clientPort));
      const cut = Date.now();
      const present = async () =>
        (await tier.pgbouncer.show("CLIENTS")).some((c) => c.database === LISTEN_DATABASE && Number(c.port) === clientPort);
      expect(await present()).toBe(true);
      let freedAfterMs = -1;
      while (Date.now() - cut < (PGBOUNCER_DEAD_PEER_SECONDS + 45) * 1000) {
        if (!(await present())) {
          freedAfterMs = Date.now() - cut;
          break;
        }
        await sleep(1_000);
      }
      summary.push(`2: dead LISTENer freed after ${(freedAfterMs / 1000).toFixed(0)} s`);
      expect(freedAfterMs).toBeGreaterThan(0);
      expect(freedAfterMs).toBeLessThanOrEqual((PGBOUNCER_DEAD_PEER_SECONDS + 15) * 1000);
    } finally {
      dropFirewall();
      process.removeListener("exit", dropFirewall);
      bus.socket?.destroy();
      await gone.close();
    }
  }, 180_000);

  it('3. takes 200 WebSocket reconnects at 100/s on the gevent worker\'s pool without "The Connection Pool Is Full", with the HTTP workers busy', async () => {
    const recorder = new TrafficRecorder();
    const odoo = new OdooHost({ name: host.id, options, endpoint, recorder, firstPid: pids(20) });
    // A running server: the gevent worker's pool holds the connections it needed before (Odoo
    // keeps them 600 s), and the HTTP workers are serving when the storm begins.
    await odoo.gevent.pool.warm(database, odoo.gevent.pool.maxconn);
    let served = 0;
    let stop = false;
    // The HTTP workers keep serving pages meanwhile (the transaction pool is shared).
    const background = odoo.http.map(async (p, i) => {
      const random = seededRandom(100 + i);
      while (!stop) {
        try {
          await serveRequest(p, options, {
            database,
            kind: byKind(random() < 0.3 ? "write" : "read"),
            random,
            cookieless: false,
            host: "erp.example.com",
            pythonMsPerStatement: 1,
          });
          served++;
        } catch (err) {
          recorder.failure((err as Error).message);
        }
        await sleep(HTTP_THINK_MS);
      }
    });
    const random = seededRandom(3);
    const errors = new Map<string, number>();
    const reconnects: Promise<void>[] = [];
    let peak = 0;
    let sampler: NodeJS.Timeout | undefined;
    try {
      for (const deadline = Date.now() + 10_000; served < 2 * odoo.http.length && Date.now() < deadline;) await sleep(50);
      sampler = setInterval(() => (peak = Math.max(peak, odoo.gevent.pool.inUse)), 5);
      for (let i = 0; i < 200; i++) {
        reconnects.push(
          websocketReconnect(odoo.gevent, database, random, WEBSOCKET_HANDLER).catch((err: Error) => {
            const key = err instanceof OdooPoolError ? `PoolError: ${err.message}` : err.message;
            errors.set(key, (errors.get(key) ?? 0) + 1);
          }),
        );
        await sleep(10);
      }
      await Promise.all(reconnects.map((r) => within(r, 60_000, "a reconnect")));
    } finally {
      clearInterval(sampler);
      stop = true;
      await Promise.all(background);
      await odoo.stop();
    }
    summary.push(
      `3: 200 reconnects on db_maxconn_gevent ${options.dbMaxconnGevent} (peak ${peak} cursors in use): ${JSON.stringify(Object.fromEntries(errors))}; HTTP requests ${served}, failed ${recorder.requests.failed}`,
    );
    expect(Object.fromEntries(errors)).toEqual({});
    expect(recorder.requests.failed).toBe(0);
  });

  it("4. runs requests and crons with the Odoo role's timeouts, and the migration command's role with statement and idle bounds lifted, past PgBouncer and Odoo's DISCARD ALL (PG-2)", async () => {
    const recorder = new TrafficRecorder();
    const settings = (cr: OdooCursor) =>
      cr.execute<{ role: string; login: string; statement: string; lock: string; idle: string }>(
        "SELECT current_user AS role, session_user AS login, current_setting('statement_timeout') AS statement, current_setting('lock_timeout') AS lock, current_setting('idle_in_transaction_session_timeout') AS idle",
      );
    // Twice on one process: the second cursor reuses the connection after DISCARD ALL.
    const twice = async (p: OdooProcess) => {
      const out = [];
      for (let i = 0; i < 2; i++) {
        const cr = await OdooCursor.open(p.pool, database);
        try {
          out.push((await settings(cr))[0]);
          await cr.commit();
        } finally {
          await cr.close();
        }
      }
      return out;
    };
    const web = new OdooProcess(pids(1), "http", options.dbMaxconn, endpoint, recorder);
    // The documented migration command names its role; it logs in with odoo.conf's password.
    const command = odooMigrationCommand(model, host, database);
    const migrateUser = /--db_user (\S+)/.exec(command)?.[1] as string;
    const migrationEndpoint: OdooDbEndpoint = {
      config: (db) => clientConfig(tier.pgbouncerEndpoint, { user: migrateUser, password: tier.secrets.odooDbPassword, database: db }),
    };
    const migration = new OdooProcess(pids(1), "cli", options.dbMaxconn, migrationEndpoint, recorder);
    try {
      const webSettings = await twice(web);
      expect(web.pool.opened.get(database)).toBe(1);
      for (const s of webSettings)
        expect(s).toEqual({ role: DB_ROLES.odoo, login: DB_ROLES.odoo, statement: "2min", lock: "30s", idle: "20min" });

      const migrationSettings = await twice(migration);
      expect(migration.pool.opened.get(database)).toBe(1);
      for (const s of migrationSettings)
        expect(s).toEqual({ role: DB_ROLES.odoo, login: DB_ROLES.migrate, statement: "0", lock: "30s", idle: "0" });
      // What a migration creates belongs to the Odoo role, which the web requests run as.
      const cr = await OdooCursor.open(migration.pool, database);
      try {
        await cr.execute("CREATE TABLE migration_probe (id int)");
        await cr.commit();
      } finally {
        await cr.close();
      }
      expect(await tier.pg.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'migration_probe'", { database })).toBe(DB_ROLES.odoo);
      // Its start-up connection to `postgres` works too (odoo/cli/server.py L149).
      await migration.serverStart(options);
      summary.push(`4: web ${JSON.stringify(webSettings[1])}; migration (${migrateUser}) ${JSON.stringify(migrationSettings[1])}`);
    } finally {
      await Promise.all([web.close(), migration.close()]);
    }
  });
});
