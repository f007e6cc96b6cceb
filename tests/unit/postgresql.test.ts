import { randomBytes } from "crypto";
import type { RawConfig } from "../../lib/config";
import { SECRET_REF, type StackModel } from "../../lib/model";
import { scramSha256Verifier } from "../../lib/scram";
import { odooRoleConnectionLimit } from "../../lib/sizing";
import { fixedKeys, overridableKeys } from "../../lib/layering";
import { GENERATED } from "../../templates/format";
import { pgbouncerSettingsFor, renderPgbouncerIni } from "../../templates/pgbouncer";
import {
  pgHbaSettingsFor,
  POSTGRES_CONF,
  postgresBootstrapSettingsFor,
  postgresConfSettingsFor,
  postgresHostFiles,
  renderPgHba,
  renderPostgresBootstrap,
  renderPostgresConf,
} from "../../templates/postgresql";
import { databasesAt, modelWith } from "../helpers/fixtures";
import { expectGolden } from "../helpers/golden";

const FIXTURES: [string, RawConfig][] = [
  ["default", {}],
  ["two-databases", { ...databasesAt("erp", "erpstaging") }],
  ["three-odoo-hosts", { odooInstances: 3 }],
  ["bastion", { bastionSecurityGroupId: "sg-0123456789abcdef0" }],
];
const models: [string, StackModel][] = FIXTURES.map(([name, raw]) => [name, modelWith(raw)]);
const model = (name: string): StackModel => models.find(([n]) => n === name)![1];

/** `key = value` lines of a postgresql.conf, in order, duplicates kept. */
const confPairs = (text: string): [string, string][] =>
  text
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map((l) => {
      const m = /^([a-z_.]+) = (.*)$/.exec(l);
      if (!m) throw new Error(`unparseable line: ${l}`);
      return [m[1], m[2]];
    });
const valuesOf = (pairs: [string, string][], key: string): string[] => pairs.filter(([k]) => k === key).map(([, v]) => v);

/** pg_hba.conf rows as token arrays. */
const hbaRows = (text: string): string[][] =>
  text
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map((l) => l.trim().split(/\s+/));

describe("goldens", () => {
  it.each([["default"], ["three-odoo-hosts"]])("%s: conf.d drop-in", (name) => {
    expectGolden(`postgresql/${name}.conf`, renderPostgresConf(postgresConfSettingsFor(model(name))));
  });
  it.each([["default"], ["two-databases"], ["bastion"]])("%s: pg_hba.conf", (name) => {
    expectGolden(`postgresql/${name}.pg_hba.conf`, renderPgHba(pgHbaSettingsFor(model(name))));
  });
  it.each([["default"], ["two-databases"], ["three-odoo-hosts"]])("%s: bootstrap.sql", (name) => {
    expectGolden(`postgresql/${name}.bootstrap.sql`, renderPostgresBootstrap(postgresBootstrapSettingsFor(model(name))));
  });
});

/** The drop-in's keys written last: the checklist's and the ones the stack owns (port, TLS files). */
const FIXED_KEYS = fixedKeys(POSTGRES_CONF);

describe("conf.d drop-in invariants", () => {
  it.each(models)("%s: every forced key appears exactly once, with its value, after every other key (PG-1, PG-2, PG-3)", (_name, m) => {
    const pairs = confPairs(renderPostgresConf(postgresConfSettingsFor(m)));
    const pg = m.settings.sizing.postgres;
    const expected: Record<string, string> = {
      password_encryption: "'scram-sha-256'",
      ssl: "on",
      ssl_min_protocol_version: "'TLSv1.2'",
      log_lock_waits: "on",
      shared_preload_libraries: "'pg_stat_statements'",
      max_connections: String(pg.maxConnections),
      superuser_reserved_connections: String(pg.superuserReservedConnections),
      statement_timeout: String(pg.statementTimeoutMs),
      lock_timeout: String(pg.lockTimeoutMs),
      idle_in_transaction_session_timeout: String(pg.idleInTransactionSessionTimeoutMs),
      listen_addresses: `'${m.hosts.postgres.privateIp},localhost'`,
      port: "5432",
      ssl_cert_file: "'/etc/postgresql/15/main/tls/server.crt'",
      ssl_key_file: "'/etc/postgresql/15/main/tls/server.key'",
      ssl_ca_file: `'${"/usr/local/share/ca-certificates/odoo-stack-internal-ca.crt"}'`,
    };
    expect(Object.keys(expected).sort()).toEqual(FIXED_KEYS);
    for (const [key, value] of Object.entries(expected)) expect([key, valuesOf(pairs, key)]).toEqual([key, [value]]);
    const firstForced = pairs.findIndex(([k]) => FIXED_KEYS.includes(k));
    expect(pairs.slice(firstForced).every(([k]) => FIXED_KEYS.includes(k))).toBe(true);
    const keys = pairs.map(([k]) => k);
    expect(keys).toEqual([...new Set(keys)]);
  });

  it.each(models)("%s: memory settings are the sizing's, in MB", (_name, m) => {
    const pairs = confPairs(renderPostgresConf(postgresConfSettingsFor(m)));
    const pg = m.settings.sizing.postgres;
    expect(valuesOf(pairs, "shared_buffers")).toEqual([`'${pg.sharedBuffersMiB}MB'`]);
    expect(valuesOf(pairs, "effective_cache_size")).toEqual([`'${pg.effectiveCacheSizeMiB}MB'`]);
    expect(valuesOf(pairs, "work_mem")).toEqual([`'${pg.workMemMiB}MB'`]);
    expect(valuesOf(pairs, "maintenance_work_mem")).toEqual([`'${pg.maintenanceWorkMemMiB}MB'`]);
  });

  it("archives WAL through pgBackRest, each archive key exactly once (BACKUP-1)", () => {
    const text = renderPostgresConf(postgresConfSettingsFor(model("default")));
    expect(text.match(/^archive_mode = on$/gm)).toHaveLength(1);
    expect(text.match(/^archive_command = 'pgbackrest .*--stanza=main archive-push %p'$/gm)).toHaveLength(1);
    expect(text.match(/^wal_level = 'replica'$/gm)).toHaveLength(1);
  });

  it("follows a timeout override from the sizing (PG-2)", () => {
    const m = modelWith({ postgres: { statementTimeoutMs: 60000 } });
    expect(valuesOf(confPairs(renderPostgresConf(postgresConfSettingsFor(m))), "statement_timeout")).toEqual(["60000"]);
  });
});

describe("conf.d extra parameters", () => {
  const base = postgresConfSettingsFor(model("default"));

  // No stack setting reaches the drop-in's tuning keys: the sizing owns them through the
  // postgres.* config keys (issue 17 item 2 deleted the allowlist nothing used).
  it("no key of the drop-in is overridable", () => {
    expect(overridableKeys(POSTGRES_CONF, base)).toEqual([]);
  });

  it("extra parameters are appended once, escaped", () => {
    const pairs = confPairs(
      renderPostgresConf({ ...base, extraParameters: { archive_mode: true, archive_command: "pgbackrest --stanza=main archive-push %p" } }),
    );
    expect(valuesOf(pairs, "archive_mode")).toEqual(["on"]);
    expect(valuesOf(pairs, "archive_command")).toEqual(["'pgbackrest --stanza=main archive-push %p'"]);
  });

  it("extra parameters may not change a forced key or one the drop-in sets, and must be parameter names", () => {
    expect(() => renderPostgresConf({ ...base, extraParameters: { statement_timeout: 0 } })).toThrow(/statement_timeout is fixed/);
    expect(() => renderPostgresConf({ ...base, extraParameters: { work_mem: "1GB" } })).toThrow(/work_mem is already set/);
    expect(() => renderPostgresConf({ ...base, extraParameters: { "x = 1\nssl": "off" } })).toThrow(/not a PostgreSQL parameter name/);
  });

  it("extra parameters are refused all at once", () => {
    expect(() => renderPostgresConf({ ...base, extraParameters: { ssl: false, work_mem: "1GB" } })).toThrow(
      /2 problems:\n {2}1\. ssl is fixed[\s\S]*2\. work_mem is already set/,
    );
  });
});

describe("pg_hba.conf (NET-6, AUTH-1)", () => {
  it.each(models)("%s: never trust, password or md5; TCP only with TLS + SCRAM or reject", (_name, m) => {
    for (const row of hbaRows(renderPgHba(pgHbaSettingsFor(m)))) {
      const method = row[row.length - 1];
      expect(["peer", "scram-sha-256", "reject"]).toContain(method);
      if (row[0].startsWith("host") && method !== "reject") expect(row[0]).toBe("hostssl");
    }
  });

  it.each(models)(
    "%s: Odoo's role reaches its databases and `postgres` from PgBouncer's /32 only, then everything else is rejected",
    (_name, m) => {
      const rows = hbaRows(renderPgHba(pgHbaSettingsFor(m)));
      const odoo = rows.filter((r) => r[0] === "hostssl" && r[2].split(",").includes("odoo"));
      // The migration role (`odoo -u`) comes the same way, to the same databases.
      expect(odoo).toEqual([
        [
          "hostssl",
          [...m.settings.databases, "postgres"].join(","),
          "odoo,odoo_migrate",
          `${m.hosts.pgbouncer.privateIp}/32`,
          "scram-sha-256",
        ],
      ]);
      expect(rows.slice(-2)).toEqual([
        ["host", "all", "all", "0.0.0.0/0", "reject"],
        ["host", "all", "all", "::/0", "reject"],
      ]);
      expect(rows[0]).toEqual(["local", "all", "postgres", "peer"]);
    },
  );

  it("opens the VPC to SCRAM over TLS only when a bastion is configured (NET-6)", () => {
    const bastionRows = (m: StackModel) => hbaRows(renderPgHba(pgHbaSettingsFor(m))).filter((r) => r[3] === m.settings.vpcCidr);
    expect(bastionRows(model("default"))).toEqual([]);
    expect(bastionRows(model("bastion"))).toEqual([["hostssl", "all", "all", model("bastion").settings.vpcCidr, "scram-sha-256"]]);
  });

  it("refuses tokens that would need quoting or change the rule", () => {
    const base = pgHbaSettingsFor(model("default"));
    expect(() => renderPgHba({ ...base, odooDatabases: ["erp all"] })).toThrow(/lower-case identifier/);
    expect(() => renderPgHba({ ...base, odooRole: "all\nlocal" })).toThrow(/lower-case identifier/);
    expect(() => renderPgHba({ ...base, pgbouncerCidr: "10.40.128.11" })).toThrow(/CIDR/);
    expect(() => renderPgHba({ ...base, bastionCidr: "0.0.0.0/0 trust" })).toThrow(/CIDR/);
  });
});

describe("bootstrap SQL", () => {
  it.each(models)("%s: the Odoo role's CONNECTION LIMIT is PgBouncer's max_user_connections, within max_connections (PG-1)", (_name, m) => {
    const sql = renderPostgresBootstrap(postgresBootstrapSettingsFor(m));
    const limit = Number(/ALTER ROLE "odoo" WITH .* CONNECTION LIMIT (\d+);/.exec(sql)![1]);
    const ini = renderPgbouncerIni(pgbouncerSettingsFor(m));
    expect(`\nmax_user_connections = ${limit}\n`).toBe(ini.match(/\nmax_user_connections = \d+\n/)![0]);
    expect(limit).toBe(odooRoleConnectionLimit(m.settings.sizing.pgbouncer));
    const monitorLimit = Number(/ALTER ROLE "odoo_stack_monitor" WITH .* CONNECTION LIMIT (\d+);/.exec(sql)![1]);
    const pg = m.settings.sizing.postgres;
    expect(limit + monitorLimit + pg.slots.backup + pg.slots.admin + pg.superuserReservedConnections).toBeLessThanOrEqual(
      pg.maxConnections,
    );
  });

  it.each(models)(
    "%s: the migration role acts as the Odoo role with the migration timeouts, its CONNECTION LIMIT capped in PgBouncer too (PG-1, PG-2)",
    (_name, m) => {
      const sql = renderPostgresBootstrap(postgresBootstrapSettingsFor(m));
      const t = m.settings.sizing.postgres.migration;
      const limit = m.settings.sizing.pgbouncer.migrationConnections;
      expect(sql).toContain(
        `ALTER ROLE "odoo_migrate" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT ${limit};`,
      );
      for (const line of [
        `GRANT "odoo" TO "odoo_migrate";`,
        `ALTER ROLE "odoo_migrate" SET role = 'odoo';`,
        `ALTER ROLE "odoo_migrate" SET statement_timeout = ${t.statementTimeoutMs};`,
        `ALTER ROLE "odoo_migrate" SET lock_timeout = ${t.lockTimeoutMs};`,
        `ALTER ROLE "odoo_migrate" SET idle_in_transaction_session_timeout = ${t.idleInTransactionSessionTimeoutMs};`,
      ])
        expect(sql).toContain(line);
      expect([t.statementTimeoutMs, t.idleInTransactionSessionTimeoutMs, t.lockTimeoutMs]).toEqual([
        0,
        0,
        m.settings.sizing.postgres.lockTimeoutMs,
      ]);
      expect(renderPgbouncerIni(pgbouncerSettingsFor(m))).toContain(`\nodoo_migrate = max_user_connections=${limit}\n`);
    },
  );

  it.each(models)("%s: per-role timeouts are the sizing's (PG-2); postgres lifts statement_timeout", (_name, m) => {
    const sql = renderPostgresBootstrap(postgresBootstrapSettingsFor(m));
    const pg = m.settings.sizing.postgres;
    expect(sql).toContain(`ALTER ROLE "odoo" SET statement_timeout = ${pg.statementTimeoutMs};`);
    expect(sql).toContain(`ALTER ROLE "odoo" SET lock_timeout = ${pg.lockTimeoutMs};`);
    expect(sql).toContain(`ALTER ROLE "odoo" SET idle_in_transaction_session_timeout = ${pg.idleInTransactionSessionTimeoutMs};`);
    expect(sql).toContain('ALTER ROLE "postgres" SET statement_timeout = 0;');
  });

  it.each(models)("%s: creates each database only when missing, owned by odoo, with pg_trgm", (_name, m) => {
    const sql = renderPostgresBootstrap(postgresBootstrapSettingsFor(m));
    for (const db of m.settings.databases) {
      expect(sql).toContain(
        `SELECT 'CREATE DATABASE "${db}" OWNER "odoo" ENCODING ''UTF8'' LC_COLLATE ''C'' TEMPLATE template0' WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = '${db}')\\gexec`,
      );
      expect(sql).toContain(`\\connect "${db}"\nCREATE EXTENSION IF NOT EXISTS pg_trgm;`);
    }
    // Every CREATE outside an existence guard is itself idempotent.
    const unguarded = sql.split("\n").filter((l) => /^CREATE /.test(l));
    expect(unguarded.every((l) => l.includes("IF NOT EXISTS"))).toBe(true);
    expect(sql.match(/'CREATE DATABASE /g)).toHaveLength(m.settings.databases.length);
  });

  it("references secrets only as placeholders: the Odoo verifier and the monitor password", () => {
    const m = model("default");
    const sql = renderPostgresBootstrap(postgresBootstrapSettingsFor(m));
    expect([...sql.matchAll(SECRET_REF)].map((x) => x[1]).sort()).toEqual(
      [m.parameters.monitorPassword, m.parameters.odooDbScramVerifier, m.parameters.odooDbScramVerifier].sort(),
    );
    expect(sql).toContain(`ALTER ROLE "odoo" WITH PASSWORD '{{ssm:${m.parameters.odooDbScramVerifier}}}';`);
    // The migration role logs in with the same password (lib/model.ts DB_ROLES.migrate).
    expect(sql).toContain(`ALTER ROLE "odoo_migrate" WITH PASSWORD '{{ssm:${m.parameters.odooDbScramVerifier}}}';`);
    expect(sql).not.toContain(m.parameters.odooDbPassword);
    // The password statements run with statement logging off.
    expect(sql.indexOf("SET log_min_error_statement = 'panic';")).toBeLessThan(sql.indexOf("WITH PASSWORD"));
  });

  it("refuses a plaintext password for the Odoo role, accepts a verifier", () => {
    const base = postgresBootstrapSettingsFor(model("default"));
    expect(() => renderPostgresBootstrap({ ...base, odooPasswordVerifier: "Sup3rSecret" })).toThrow(/never plaintext/);
    const verifier = scramSha256Verifier("Sup3rSecret", randomBytes(16));
    expect(renderPostgresBootstrap({ ...base, odooPasswordVerifier: verifier })).toContain(`PASSWORD '${verifier}'`);
  });

  it("quotes role and database names as identifiers and literals", () => {
    const base = postgresBootstrapSettingsFor(model("default"));
    const sql = renderPostgresBootstrap({ ...base, odooRole: "o\"d'oo" });
    expect(sql).toContain(`ALTER ROLE "o""d'oo" SET lock_timeout`);
    expect(sql).toContain(
      `SELECT 'CREATE ROLE "o""d''oo"' WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'o"d''oo')\\gexec`,
    );
  });

  it("refuses a non-positive connection limit", () => {
    const base = postgresBootstrapSettingsFor(model("default"));
    expect(() => renderPostgresBootstrap({ ...base, odooConnectionLimit: 0 })).toThrow(/odooConnectionLimit/);
  });
});

describe("host files", () => {
  it("modes and owners; each file starts with the generated header", () => {
    const files = Object.fromEntries(postgresHostFiles(model("default")).map((f) => [f.path, f]));
    expect(files["/etc/postgresql/15/main/conf.d/90-odoo-stack.conf"]).toMatchObject({ mode: "0644", owner: "postgres" });
    expect(files["/etc/postgresql/15/main/pg_hba.conf"]).toMatchObject({ mode: "0640", owner: "postgres" });
    expect(files["/etc/odoo-stack/bootstrap.sql"]).toMatchObject({ mode: "0600", owner: "root" });
    for (const f of Object.values(files)) expect(f.content.split("\n")[0]).toMatch(new RegExp(`^(#|--) ${GENERATED}$`));
  });
});
