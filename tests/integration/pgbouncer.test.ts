// issue 4, check 2: PgBouncer 1.18 from the rendered pgbouncer.ini and userlist.txt (SCRAM
// verifiers only), in front of PostgreSQL 15 from the rendered files. An Odoo-like client
// (node-postgres, configured as odoo.conf is rendered: db_host, db_user, db_sslmode) logs in with
// SCRAM over TLS, verify-full against PgBouncer's DNS name.
import { Client } from "pg";
import { DB_ROLES } from "../../lib/model";
import { parseScramVerifier } from "../../lib/scram";
import { ODOO_CONF, odooConfSettingsFor } from "../../templates/odoo-conf";
import { LISTEN_DATABASE, PGBOUNCER_INI } from "../../templates/pgbouncer";
import { POSTGRES_TLS_FILES } from "../../templates/postgresql";
import { modelWith } from "../helpers/fixtures";
import { clientConfig, connect, connectObserved, endAll, refusal, withClient } from "./helpers/clients";
import { odooLikeTransaction, TransactionLoad } from "./helpers/load";
import { sampleUntil, serverConnections, showVia } from "./helpers/pgbouncer";
import { BIN, Sandbox, sleep } from "./helpers/sandbox";
import { installPem, issueHostCertificate } from "./helpers/tls";
import { startDatabaseTier, under, type DatabaseTier } from "./helpers/stack";

jest.setTimeout(60_000);

const model = modelWith();
const pools = model.settings.sizing.pgbouncer;
const database = model.settings.databases[0];
/** What odoo.conf tells Odoo (TLS-2): the name to verify, the role, and verify-full. */
const odooConf = odooConfSettingsFor(model, model.hosts.odoo[0]);
const LOAD_CLIENTS = 50;
const LOAD_MS = 3_000;

const sandbox = Sandbox.create("pgbouncer");
let tier: DatabaseTier;
const summary: string[] = [];

beforeAll(async () => {
  tier = await startDatabaseTier(sandbox, model);
  // The load's table, created by Odoo's role through PgBouncer (it owns the database).
  await withClient(clientConfig(tier.pgbouncerEndpoint, tier.odooLogin()), (c) =>
    c.query(
      "CREATE TABLE load_test (id bigserial PRIMARY KEY, client int NOT NULL, backend_pid int NOT NULL, at timestamptz NOT NULL DEFAULT now())",
    ),
  );
}, 120_000);

afterAll(async () => {
  await sandbox.cleanup();
  console.log(`[pgbouncer] ${summary.join(" | ")}`);
});

const odooClientConfig = (db = database, password?: string) => clientConfig(tier.pgbouncerEndpoint, tier.odooLogin(db, password));

describe("PgBouncer 1.18 from the rendered pgbouncer.ini and userlist.txt (issue 4 check 2)", () => {
  it("holds SCRAM verifiers only, byte-identical to PostgreSQL's, and no plaintext password (AUTH-1, AUTH-2, DESIGN 5)", async () => {
    const entries = tier.installed.userlist
      .split("\n")
      .filter((l) => l.startsWith('"'))
      .map((l) => /^"([^"]+)" "([^"]+)"$/.exec(l));
    expect(entries.map((m) => m?.[1])).toEqual([DB_ROLES.odoo, DB_ROLES.migrate, DB_ROLES.stats]);
    for (const m of entries) expect(parseScramVerifier(m?.[2] ?? "")).toBeDefined();
    expect(entries[0]?.[2]).toBe(await tier.pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${DB_ROLES.odoo}'`));
    // The migration role logs in with the Odoo role's password: the same verifier on both sides.
    expect(entries[1]?.[2]).toBe(await tier.pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${DB_ROLES.migrate}'`));
    expect(entries[1]?.[2]).toBe(entries[0]?.[2]);
    for (const text of [tier.installed.userlist, tier.installed.pgbouncerIni]) {
      expect(text).not.toContain(tier.secrets.odooDbPassword);
      expect(text).not.toContain(tier.secrets.statsPassword);
    }
  });

  it("lets an Odoo-like client log in with SCRAM over TLS, verify-full against pgbouncer.<zone> (TLS-1, TLS-2, TLS-3, AUTH-1)", async () => {
    expect(ODOO_CONF.keys.db_sslmode.forced).toBe("verify-full");
    expect(odooConf.dbHost).toBe(tier.pgbouncerEndpoint.serverName);
    const observed = await connectObserved(
      clientConfig(tier.pgbouncerEndpoint, { user: odooConf.dbUser, password: tier.secrets.odooDbPassword, database }),
    );
    try {
      expect(observed.encrypted).toBe(true);
      expect(observed.authRequests).toEqual(["SASL"]);
      expect(observed.saslMechanisms).toContain("SCRAM-SHA-256");
      // Server login by SCRAM pass-through: PgBouncer has no password, yet its server
      // connection is an authenticated TLS session of the odoo role on PostgreSQL.
      const { rows } = await observed.client.query(
        "SELECT current_user AS role, s.ssl, s.version FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()",
      );
      expect(rows[0]).toMatchObject({ role: DB_ROLES.odoo, ssl: true });
      summary.push(
        `client login: TLS + ${observed.saslMechanisms.join(",")} verify-full ${odooConf.dbHost}; server side ${rows[0].version} as ${rows[0].role} by pass-through`,
      );
    } finally {
      await observed.client.end();
    }
    // PgBouncer verified PostgreSQL by name: its server_tls_sslmode is verify-full.
    expect(tier.installed.pgbouncerIni).toMatch(
      new RegExp(`^server_tls_sslmode = ${String(PGBOUNCER_INI.keys.server_tls_sslmode.forced)}$`, "m"),
    );
    expect(tier.installed.pgbouncerIni).toContain(`host=${tier.verifiesPostgresByName ? model.hosts.postgres.fqdn : "127.0.0.1"}`);
    if (!tier.verifiesPostgresByName)
      summary.push("FALLBACK: no mount namespace, PgBouncer verified PostgreSQL's certificate by IP SAN 127.0.0.1");
    // The certificate check is real: the same client refuses a certificate for another name.
    const wrongName = await refusal(
      clientConfig(tier.pgbouncerEndpoint, tier.odooLogin(), { serverNameOverride: model.hosts.postgres.fqdn }),
    );
    expect(wrongName).toMatch(/does not match certificate's altnames/);
  });

  it("accepts libpq (what Odoo's psycopg2 uses) with sslmode=verify-full, host=pgbouncer.<zone> hostaddr=127.0.0.1, and libpq rejects another name (TLS-2, TLS-3)", async () => {
    const libpq = (host: string) =>
      sandbox.run(
        BIN.psql,
        [
          "-X",
          "-At",
          "-c",
          "SELECT current_user || ' ' || (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())",
          `host=${host} hostaddr=127.0.0.1 port=${tier.pgbouncerEndpoint.port} dbname=${database} user=${odooConf.dbUser} sslmode=${String(ODOO_CONF.keys.db_sslmode.forced)} sslrootcert=${tier.ca.certPath}`,
        ],
        // Odoo's service gets the CA through PGSSLROOTCERT (odooServiceEnvironment); the password through odoo.conf.
        { env: { PGPASSWORD: tier.secrets.odooDbPassword } },
      );
    const ok = await libpq(odooConf.dbHost);
    expect({ code: ok.code, stdout: ok.stdout.trim(), stderr: ok.stderr }).toEqual({
      code: 0,
      stdout: `${DB_ROLES.odoo} true`,
      stderr: "",
    });
    const wrong = await libpq(model.hosts.postgres.fqdn);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/server certificate for "pgbouncer\.odoo\.internal" does not match host name "postgres\.odoo\.internal"/);
    summary.push(
      `libpq verify-full host=${odooConf.dbHost} hostaddr=127.0.0.1 ok; other name -> "${wrong.stderr.trim().split("\n").pop()}"`,
    );
  });

  it(`runs the Odoo database in transaction mode: ${LOAD_CLIENTS} clients share at most default_pool_size server connections (POOL-1, POOL-2, OBS-1)`, async () => {
    const stats = await connect(clientConfig(tier.pgbouncerEndpoint, tier.statsLogin()));
    const clients = await Promise.all(Array.from({ length: LOAD_CLIENTS }, () => connect(odooClientConfig())));
    try {
      const load = new TransactionLoad(clients, odooLikeTransaction("load_test", 5)).start();
      const stopped = sleep(LOAD_MS).then(() => load.stop());
      // SHOW POOLS as the stats user, the way the collector samples it (OBS-1).
      const samples = await sampleUntil(
        stopped,
        100,
        async () => (await showVia(stats, "POOLS")).find((p) => p.database === database) as Record<string, string>,
      );
      const report = await stopped;
      const maxServer = Math.max(...samples.map(serverConnections));
      const maxClients = Math.max(...samples.map((p) => Number(p.cl_active) + Number(p.cl_waiting)));
      const maxWaiting = Math.max(...samples.map((p) => Number(p.cl_waiting)));
      const maxWaitUs = Math.max(...samples.map((p) => Number(p.maxwait) * 1e6 + Number(p.maxwait_us)));
      const pgSide = Number(await tier.pg.psql(`SELECT count(*) FROM load_test`, { database }));

      expect(report.failures).toEqual([]);
      expect(report.committed).toBeGreaterThan(LOAD_CLIENTS);
      expect(pgSide).toBe(report.committed);
      expect(samples.every((p) => p.pool_mode === "transaction")).toBe(true);
      expect(maxClients).toBe(LOAD_CLIENTS);
      expect(maxServer).toBeGreaterThan(1);
      expect(maxServer).toBeLessThanOrEqual(pools.defaultPoolSize);
      // Every transaction ran on one of at most default_pool_size backends, and single clients
      // were moved between backends: the pooling is per transaction, not per session.
      expect(report.serverBackends).toBeLessThanOrEqual(pools.defaultPoolSize);
      expect(report.maxBackendsPerClient).toBeGreaterThan(1);
      summary.push(
        `transaction pool: ${LOAD_CLIENTS} clients, ${report.committed} tx in ${(report.durationMs / 1000).toFixed(1)} s (${Math.round((report.committed * 1000) / report.durationMs)} tx/s), ` +
          `0 failed; SHOW POOLS max cl_active+cl_waiting=${maxClients} (cl_waiting max ${maxWaiting}, maxwait ${(maxWaitUs / 1000).toFixed(1)} ms) vs sv_active+sv_idle+sv_used max=${maxServer} ` +
          `(default_pool_size ${pools.defaultPoolSize}); ${report.serverBackends} distinct backends, up to ${report.maxBackendsPerClient} per client (${samples.length} samples)`,
      );
    } finally {
      await endAll([...clients, stats]);
    }
  });

  it("keeps LISTEN/NOTIFY working on the `postgres` entry (session mode) while the Odoo database stays transactional (DESIGN 7)", async () => {
    const listener = await connect(odooClientConfig(LISTEN_DATABASE));
    const notifier = await connect(odooClientConfig(LISTEN_DATABASE));
    try {
      const channel = "imbus";
      const payload = `bus-${Date.now()}`;
      const received = new Promise<{ channel: string; payload?: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no notification within 5 s")), 5_000);
        listener.on("notification", (msg) => {
          clearTimeout(timer);
          resolve(msg);
        });
      });
      await listener.query(`LISTEN ${channel}`);
      // A few transactions elsewhere in between, as Odoo's workers run while the bus listens.
      for (let i = 0; i < 3; i++) await notifier.query("SELECT 1");
      const sent = Date.now();
      await notifier.query("SELECT pg_notify($1, $2)", [channel, payload]);
      const msg = await received;
      expect(msg).toMatchObject({ channel, payload });
      const latency = Date.now() - sent;

      const databases = await withClient(clientConfig(tier.pgbouncerEndpoint, tier.statsLogin()), (c) => showVia(c, "DATABASES"));
      const modeOf = (name: string) => databases.find((d) => d.name === name)?.pool_mode;
      expect(modeOf(LISTEN_DATABASE)).toBe("session");
      expect(modeOf(database)).toBe("transaction");
      summary.push(
        `LISTEN/NOTIFY via ${LISTEN_DATABASE} (pool_mode ${modeOf(LISTEN_DATABASE)}) delivered in ${latency} ms; ${database} pool_mode ${modeOf(database)}`,
      );
    } finally {
      await endAll([listener, notifier]);
    }
  });

  it("lets the stats user read SHOW POOLS and SHOW STATS, and nothing else (OBS-1, OBS-2)", async () => {
    await withClient(clientConfig(tier.pgbouncerEndpoint, tier.statsLogin()), async (stats) => {
      const poolRows = await showVia(stats, "POOLS");
      const erp = poolRows.find((p) => p.database === database && p.user === DB_ROLES.odoo);
      expect(erp).toBeDefined();
      expect(Object.keys(erp as object)).toEqual(
        expect.arrayContaining(["cl_active", "cl_waiting", "sv_active", "sv_idle", "maxwait", "pool_mode"]),
      );
      const statRows = await showVia(stats, "STATS");
      const erpStats = statRows.find((s) => s.database === database);
      expect(Number(erpStats?.total_xact_count)).toBeGreaterThan(0);
      expect(Object.keys(erpStats as object)).toEqual(expect.arrayContaining(["avg_xact_time", "avg_query_time", "avg_wait_time"]));
      // stats_users, not admin_users: no RELOAD, PAUSE or SHUTDOWN from this login.
      await expect(stats.query("RELOAD")).rejects.toThrow(/admin access needed/);
      summary.push(
        `stats user: SHOW POOLS (${poolRows.length} pools) and SHOW STATS (${database} total_xact_count=${erpStats?.total_xact_count}, avg_xact_time=${erpStats?.avg_xact_time} us) ok, RELOAD refused`,
      );
    });
  });

  it("refuses a wrong password, a plaintext client and a client over max_client_conn, with PgBouncer's own errors (AUTH-1, TLS-1, POOL-4)", async () => {
    const wrongPassword = await refusal(odooClientConfig(database, "not-the-password"));
    // PgBouncer answers a failed SCRAM exchange with this text (and logs "password authentication failed").
    expect(wrongPassword).toMatch(/^SASL authentication failed$/);
    const plaintext = await refusal(clientConfig(tier.pgbouncerEndpoint, tier.odooLogin(), { tls: false }));
    expect(plaintext).toMatch(/SSL required/);

    // Fill PgBouncer up to max_client_conn with idle logged-in clients, then one more.
    const held: Client[] = [];
    let overLimit = "";
    try {
      while (held.length < pools.maxClientConn + 5 && overLimit === "") {
        const batch = await Promise.allSettled(Array.from({ length: 10 }, () => connect(odooClientConfig())));
        for (const r of batch) {
          if (r.status === "fulfilled") held.push(r.value);
          else overLimit ||= (r.reason as Error).message;
        }
      }
      expect(overLimit).toMatch(/no more connections allowed \(max_client_conn\)/);
      expect(held.length).toBe(pools.maxClientConn);
      summary.push(
        `refusals: wrong password -> "${wrongPassword}"; plaintext -> "${plaintext}"; client ${held.length + 1} over max_client_conn=${pools.maxClientConn} -> "${overLimit}"`,
      );
    } finally {
      await endAll(held);
    }
    // And PgBouncer recovers: a new client gets in once the others left.
    await sleep(200);
    await withClient(odooClientConfig(), (c) => c.query("SELECT 1"));
  });

  it("logs connections, disconnections and pooler errors (OBS-3), without any password", () => {
    const log = tier.pgbouncer.log();
    expect(log).toMatch(/LOG C-0x[0-9a-f]+: erp\/odoo@127\.0\.0\.1:\d+ login attempt: db=erp user=odoo tls=TLSv1\.[23]/);
    expect(log).toMatch(/closing because: client close request/);
    expect(log).toMatch(/pooler error: no more connections allowed \(max_client_conn\)/);
    expect(log).toMatch(/ERROR C-0x[0-9a-f]+: erp\/odoo@127\.0\.0\.1:\d+ password authentication failed/);
    expect(log).toMatch(/pooler error: SASL authentication failed/);
    expect(log).not.toContain(tier.secrets.odooDbPassword);
    expect(log).not.toContain(tier.secrets.statsPassword);
    // The only errors are the ones this file provoked.
    const unexpected = log
      .split("\n")
      .filter(
        (l) => /\b(ERROR|FATAL)\b/.test(l) && !/password authentication failed|max_client_conn|SSL required|admin access needed/.test(l),
      );
    expect(unexpected).toEqual([]);
  });

  // Last: it leaves PostgreSQL with a certificate PgBouncer must refuse.
  it("verifies PostgreSQL's certificate against its DNS name (server_tls_sslmode = verify-full): a certificate for another name is refused (TLS-2, TLS-3)", async () => {
    const expectedName = tier.verifiesPostgresByName ? model.hosts.postgres.fqdn : "127.0.0.1";
    const other = await issueHostCertificate(sandbox, tier.ca, sandbox.path("other-cert"), ["other.odoo.internal"]);
    installPem(other.certPath, under(tier.roots.postgres, POSTGRES_TLS_FILES.cert), tier.postgresUser, 0o644);
    installPem(other.keyPath, under(tier.roots.postgres, POSTGRES_TLS_FILES.key), tier.postgresUser, 0o600);
    expect(await tier.pg.psql("SELECT pg_reload_conf()")).toBe("t");
    await sleep(300);
    // RELOAD closes PgBouncer's server connections (observed on 1.18), so the next query needs a new one.
    const logBefore = tier.pgbouncer.log().length;
    tier.pgbouncer.process.signal("SIGHUP");
    const message = await refusal({ ...odooClientConfig(), connectionTimeoutMillis: 5_000 });
    const log = tier.pgbouncer.log().slice(logBefore);
    expect(log).toMatch(new RegExp(`TLS handshake error: name \`${expectedName.replace(/\./g, "\\.")}' not present in server certificate`));
    summary.push(`PostgreSQL cert for another name -> PgBouncer "${/TLS handshake error: [^\n]*/.exec(log)?.[0]}", client: "${message}"`);
  });
});
