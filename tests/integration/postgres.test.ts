// issue 4, check 1: PostgreSQL 15 from the rendered conf.d drop-in, pg_hba.conf and bootstrap
// SQL (secrets generated at test time, substituted for the placeholders as the apply script
// does), initdb in a temp dir, TLS with the internal CA's certificate for postgres.<zone>.
// Only ports, addresses and paths are remapped (helpers/stack.ts names them).
import * as path from "path";
import { Client } from "pg";
import { DB_ROLES, PATHS } from "../../lib/model";
import { odooRoleConnectionLimit } from "../../lib/sizing";
import { staticForced } from "../../lib/layering";
import { POSTGRES_CONF, postgresBootstrapSettingsFor, renderPostgresBootstrap } from "../../templates/postgresql";
import { modelWith } from "../helpers/fixtures";
import { clientConfig, connectObserved, refusal, withClient } from "./helpers/clients";
import { randomPassword, resolveSecretRefs } from "./helpers/secrets";
import { Sandbox } from "./helpers/sandbox";
import { startDatabaseTier, type DatabaseTier } from "./helpers/stack";

jest.setTimeout(60_000);

const model = modelWith();
const sandbox = Sandbox.create("postgres");
let tier: DatabaseTier;
let startupMs = 0;
const summary: string[] = [];

beforeAll(async () => {
  const started = Date.now();
  tier = await startDatabaseTier(sandbox, model);
  startupMs = Date.now() - started;
}, 120_000);

afterAll(async () => {
  await sandbox.cleanup();
  console.log(`[postgres] ${summary.join(" | ")}`);
});

const pgSizing = model.settings.sizing.postgres;
const database = model.settings.databases[0];

/** pg_settings' `setting` (base units) for each checklist key, from the settings the drop-in was rendered from. */
function expectedSettings(): Record<string, string> {
  const onOff = (b: boolean) => (b ? "on" : "off");
  return {
    max_connections: String(pgSizing.maxConnections), // PG-1
    superuser_reserved_connections: String(pgSizing.superuserReservedConnections), // PG-1
    statement_timeout: String(pgSizing.statementTimeoutMs), // PG-2 (ms)
    lock_timeout: String(pgSizing.lockTimeoutMs), // PG-2
    idle_in_transaction_session_timeout: String(pgSizing.idleInTransactionSessionTimeoutMs), // PG-2
    log_lock_waits: onOff(staticForced(POSTGRES_CONF, "log_lock_waits") === true), // PG-3
    password_encryption: String(staticForced(POSTGRES_CONF, "password_encryption")), // AUTH-1
    ssl: onOff(staticForced(POSTGRES_CONF, "ssl") === true), // TLS-1
    ssl_min_protocol_version: String(staticForced(POSTGRES_CONF, "ssl_min_protocol_version")),
    shared_preload_libraries: String(staticForced(POSTGRES_CONF, "shared_preload_libraries")), // OBS-7
    listen_addresses: "127.0.0.1", // remapped (NET-6: the private address in production)
    port: String(tier.pg.port), // remapped
  };
}

describe("PostgreSQL 15 from the rendered drop-in, pg_hba.conf and bootstrap SQL (issue 4 check 1)", () => {
  it("starts from initdb + the rendered files, and the bootstrap SQL creates the roles, database and extensions", async () => {
    expect(tier.pg.process.running).toBe(true);
    const roles = await tier.pg.psql(
      `SELECT rolname, rolconnlimit, rolsuper, rolcanlogin FROM pg_roles WHERE rolname IN ('${DB_ROLES.odoo}', '${DB_ROLES.monitor}') ORDER BY 1`,
    );
    expect(roles.split("\n")).toEqual([
      `${DB_ROLES.odoo}|${odooRoleConnectionLimit(model.settings.sizing.pgbouncer)}|f|t`,
      `${DB_ROLES.monitor}|2|f|t`,
    ]);
    // The role's verifier is the very one PgBouncer's userlist carries (SCRAM pass-through).
    const stored = await tier.pg.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${DB_ROLES.odoo}'`);
    expect(stored).toBe(tier.secrets.byParameter.get(model.parameters.odooDbScramVerifier));
    expect(await tier.pg.psql(`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${database}'`)).toBe(DB_ROLES.odoo);
    // pg_stat_statements lives in `postgres`, where the collector connects; pg_trgm where Odoo needs it.
    expect(await tier.pg.psql("SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension")).toBe("pg_stat_statements,plpgsql");
    expect(await tier.pg.psql("SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension", { database })).toBe("pg_trgm,plpgsql");
    // Idempotent: the apply script runs it on every apply.
    const again = await tier.pg.runScript(
      resolveSecretRefs(renderPostgresBootstrap(postgresBootstrapSettingsFor(model)), tier.secrets.byParameter),
    );
    expect(again.code).toBe(0);
    // Only "already exists" notices on the second run; no error, no warning.
    expect(again.stderr.split("\n").filter((l) => l.trim() !== "" && !/NOTICE: .*already/.test(l))).toEqual([]);
    summary.push(`initdb+start+bootstrap+pgbouncer in ${startupMs} ms; bootstrap idempotent`);
  });

  it("applies every checklist setting from the drop-in: SHOW/pg_settings agree, no file error (PG-1, PG-2, PG-3, AUTH-1, TLS-1, OBS-7)", async () => {
    const expected = expectedSettings();
    const names = Object.keys(expected).sort();
    // The metrics collector's own session (local socket, SCRAM): a role without per-role
    // settings, so SHOW reports the server-wide values (postgres and odoo have role overrides).
    const monitor = new Client({
      host: tier.pg.socketDir,
      port: tier.pg.port,
      user: DB_ROLES.monitor,
      password: tier.secrets.monitorPassword,
      database: "postgres",
    });
    await monitor.connect();
    try {
      const { rows } = await monitor.query<{ name: string; setting: string; source: string; sourcefile: string | null }>(
        "SELECT name, setting, source, sourcefile FROM pg_settings WHERE name = ANY($1) ORDER BY name",
        [names],
      );
      expect(Object.fromEntries(rows.map((r) => [r.name, r.setting]))).toEqual(expected);
      const dropInPath = `${tier.pg.confDir}/conf.d/${path.basename(PATHS.postgresConf)}`;
      for (const r of rows)
        expect({ name: r.name, source: r.source, sourcefile: r.sourcefile }).toEqual({
          name: r.name,
          source: "configuration file",
          sourcefile: dropInPath,
        });
      const shown: string[] = [];
      for (const name of [
        "max_connections",
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
        "log_lock_waits",
        "password_encryption",
        "ssl",
        "shared_preload_libraries",
      ]) {
        const res = await monitor.query(`SHOW ${name}`);
        shown.push(`${name}=${res.rows[0][name]}`);
      }
      // pg_stat_statements is loaded (the view answers), not only listed.
      expect((await monitor.query("SELECT count(*) >= 0 AS ok FROM pg_stat_statements")).rows[0].ok).toBe(true);
      summary.push(`SHOW: ${shown.join(" ")} (${names.length} keys, all from the drop-in)`);
    } finally {
      await monitor.end();
    }
    // Nothing in the drop-in was ignored or rejected by the server (entries of the Debian main
    // file that the drop-in overrides, such as port, are "not applied" by design).
    const dropIn = `${tier.pg.confDir}/conf.d/${path.basename(PATHS.postgresConf)}`;
    expect(
      await tier.pg.psql(`SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL OR (sourcefile = '${dropIn}' AND NOT applied)`),
    ).toBe("0");
    expect(Number(await tier.pg.psql(`SELECT count(*) FROM pg_file_settings WHERE sourcefile = '${dropIn}'`))).toBe(
      tier.installed.postgresDropIn.split("\n").filter((l) => /^[a-z_.]+ = /.test(l)).length,
    );
  });

  it("serves TLS with the internal CA's certificate for postgres.<zone>: verify-full passes on the name, fails on another name", async () => {
    const login = tier.odooLogin();
    const observed = await connectObserved(clientConfig(tier.postgresEndpoint, login));
    try {
      expect(observed.encrypted).toBe(true);
      const { rows } = await observed.client.query<{ ssl: boolean; version: string }>(
        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
      );
      expect(rows[0].ssl).toBe(true);
      expect(["TLSv1.2", "TLSv1.3"]).toContain(rows[0].version);
    } finally {
      await observed.client.end();
    }
    const wrongName = await refusal(clientConfig(tier.postgresEndpoint, login, { serverNameOverride: model.hosts.pgbouncer.fqdn }));
    expect(wrongName).toMatch(/does not match certificate's altnames|Hostname\/IP does not match/);
  });

  it("refuses a plaintext (non-TLS) login, even with the right password (TLS-1, NET-6)", async () => {
    const message = await refusal(clientConfig(tier.postgresEndpoint, tier.odooLogin(), { tls: false }));
    expect(message).toMatch(/pg_hba\.conf rejects connection for host "127\.0\.0\.1", user "odoo", database "erp", no encryption/);
    summary.push(`plaintext login -> "${message}"`);
  });

  it("asks clients for SCRAM-SHA-256 only, and refuses a role whose stored password is md5 (AUTH-1)", async () => {
    const observed = await connectObserved(clientConfig(tier.postgresEndpoint, tier.odooLogin()));
    await observed.client.end();
    expect(observed.authRequests).toEqual(["SASL"]);
    expect(observed.saslMechanisms).toContain("SCRAM-SHA-256");
    expect(observed.saslMechanisms.every((m) => m.startsWith("SCRAM-SHA-256"))).toBe(true);

    // Every TCP rule is scram-sha-256 or reject; no md5, password or trust anywhere.
    const methods = await tier.pg.psql("SELECT string_agg(DISTINCT auth_method, ',' ORDER BY auth_method) FROM pg_hba_file_rules");
    expect(methods).toBe("peer,reject,scram-sha-256");
    expect(await tier.pg.psql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")).toBe("0");

    // A role that still has an md5 hash (e.g. restored from an old dump) cannot log in.
    const md5Password = randomPassword();
    await tier.pg.psql(`SET password_encryption = 'md5'; ALTER ROLE ${DB_ROLES.odoo} PASSWORD '${md5Password}'`);
    try {
      expect(await tier.pg.psql(`SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = '${DB_ROLES.odoo}'`)).toBe("md5");
      const message = await refusal(clientConfig(tier.postgresEndpoint, tier.odooLogin(database, md5Password)));
      expect(message).toMatch(/password authentication failed for user "odoo"/);
      summary.push(
        `server asks ${observed.authRequests.join(",")} [${observed.saslMechanisms.join(",")}]; md5-stored role -> "${message}"`,
      );
    } finally {
      // Back to the verifier PgBouncer holds.
      const verifier = tier.secrets.byParameter.get(model.parameters.odooDbScramVerifier) as string;
      await tier.pg.psql(`ALTER ROLE ${DB_ROLES.odoo} PASSWORD '${verifier}'`);
    }
    // A wrong password over TLS is refused as well (the control for the two refusals above).
    const wrong = await refusal(clientConfig(tier.postgresEndpoint, tier.odooLogin(database, randomPassword())));
    expect(wrong).toMatch(/password authentication failed for user "odoo"/);
  });

  it("sets Odoo's timeouts per role (pg_db_role_setting), and they hold through PgBouncer's transaction pool (PG-2)", async () => {
    const roleSettings = await tier.pg.psql(
      `SELECT unnest(setconfig) FROM pg_db_role_setting WHERE setrole = '${DB_ROLES.odoo}'::regrole AND setdatabase = 0 ORDER BY 1`,
    );
    expect(roleSettings.split("\n")).toEqual([
      `idle_in_transaction_session_timeout=${pgSizing.idleInTransactionSessionTimeoutMs}`,
      `lock_timeout=${pgSizing.lockTimeoutMs}`,
      `statement_timeout=${pgSizing.statementTimeoutMs}`,
    ]);
    const query =
      "SELECT name, setting, source FROM pg_settings WHERE name IN ('statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout') ORDER BY name";
    const expected = [
      { name: "idle_in_transaction_session_timeout", setting: String(pgSizing.idleInTransactionSessionTimeoutMs), source: "user" },
      { name: "lock_timeout", setting: String(pgSizing.lockTimeoutMs), source: "user" },
      { name: "statement_timeout", setting: String(pgSizing.statementTimeoutMs), source: "user" },
    ];
    const seen: string[] = [];
    // Through the transaction pool (Odoo's database) and the session pool (LISTEN), as Odoo connects.
    for (const db of [database, "postgres"]) {
      await withClient(clientConfig(tier.pgbouncerEndpoint, tier.odooLogin(db)), async (client) => {
        // Several transactions: each may land on another pooled server connection.
        for (let i = 0; i < 3; i++) {
          const { rows } = await client.query(query);
          expect(rows).toEqual(expected);
        }
        const shown = await client.query("SHOW statement_timeout");
        seen.push(`${db}: statement_timeout=${shown.rows[0].statement_timeout}`);
      });
    }
    // Maintenance (pg_dump, backups) runs as postgres and is not cut by the global default.
    expect(await tier.pg.psql("SHOW statement_timeout")).toBe("0");
    summary.push(`per-role timeouts via PgBouncer (${seen.join(", ")}, source=user for all three)`);
  });
});
