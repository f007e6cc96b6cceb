import { randomBytes } from "crypto";
import { DB_ROLES, SECRET_REF, type StackModel } from "../../lib/model";
import { scramSha256Verifier } from "../../lib/scram";
import { odooRoleConnectionLimit } from "../../lib/sizing";
import type { RawConfig } from "../../lib/config";
import { forcedEntries, overridableKeys } from "../../lib/layering";
import { escapePgbouncerConnstrValue, escapePgbouncerIniValue } from "../../templates/format";
import {
  LISTEN_DATABASE,
  PGBOUNCER_DEAD_PEER_SECONDS,
  PGBOUNCER_INI,
  pgbouncerHostFiles,
  pgbouncerSettingsFor,
  pgbouncerSystemdSettingsFor,
  pgbouncerUserlistSettingsFor,
  renderPgbouncerIni,
  renderPgbouncerSystemdDropIn,
  renderPgbouncerUserlist,
} from "../../templates/pgbouncer";
import { GENERATED } from "../../templates/format";
import { expectGolden } from "../helpers/golden";
import { databasesAt, modelWith } from "../helpers/fixtures";

/** Key/value lines per section, duplicates kept, the way PgBouncer reads them (last one wins). */
function parseIni(text: string): Map<string, [string, string][]> {
  const sections = new Map<string, [string, string][]>();
  let current: [string, string][] | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith(";") || line.startsWith("#")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = [];
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    if (!current || eq < 0) throw new Error(`unparseable line: ${line}`);
    current.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return sections;
}

const section = (text: string, name: string): [string, string][] => parseIni(text).get(name) ?? [];
const valuesOf = (pairs: [string, string][], key: string): string[] => pairs.filter(([k]) => k === key).map(([, v]) => v);
const connstr = (value: string): Record<string, string> =>
  Object.fromEntries(value.split(" ").map((pair) => pair.split("=") as [string, string]));

const FIXTURES: [string, RawConfig][] = [
  ["default", {}],
  ["two-databases", { ...databasesAt("erp", "erpstaging") }],
  ["three-odoo-hosts", { odooInstances: 3 }],
];
const models: [string, StackModel][] = FIXTURES.map(([name, raw]) => [name, modelWith(raw)]);

describe("pgbouncer.ini goldens", () => {
  it.each(models)("%s", (name, model) => {
    expectGolden(`pgbouncer/${name}.ini`, renderPgbouncerIni(pgbouncerSettingsFor(model)));
  });

  it("userlist.txt and the systemd drop-in (default)", () => {
    const [, model] = models[0];
    expectGolden("pgbouncer/default.userlist.txt", renderPgbouncerUserlist(pgbouncerUserlistSettingsFor(model)));
    expectGolden("pgbouncer/default.systemd.conf", renderPgbouncerSystemdDropIn(pgbouncerSystemdSettingsFor(model)));
  });
});

/** The [pgbouncer] keys PGBOUNCER_INI forces, sorted. */
const FORCED_KEYS = forcedEntries(PGBOUNCER_INI)
  .map(([k]) => k)
  .sort();

describe("pgbouncer.ini invariants", () => {
  it.each(models)(
    "%s: every forced key appears exactly once in [pgbouncer], with its value (POOL-1, AUTH-1, AUTH-2, TLS-1, OBS-3)",
    (_name, model) => {
      const settings = pgbouncerSettingsFor(model);
      const pairs = section(renderPgbouncerIni(settings), "pgbouncer");
      // What the checklist requires, stated apart from the table.
      const expected: Record<string, string> = {
        pool_mode: "transaction",
        auth_type: "scram-sha-256",
        auth_file: settings.authFile,
        client_tls_sslmode: "require",
        server_tls_sslmode: "verify-full",
        log_connections: "1",
        log_disconnections: "1",
        log_pooler_errors: "1",
      };
      expect(Object.keys(expected).sort()).toEqual(FORCED_KEYS);
      for (const [key, value] of Object.entries(expected)) expect([key, valuesOf(pairs, key)]).toEqual([key, [value]]);
      // Written last: every forced key follows every other key.
      const firstForced = pairs.findIndex(([k]) => FORCED_KEYS.includes(k));
      expect(pairs.slice(firstForced).every(([k]) => FORCED_KEYS.includes(k))).toBe(true);
    },
  );

  it.each(models)("%s: no key appears twice in any section", (_name, model) => {
    for (const [, pairs] of parseIni(renderPgbouncerIni(pgbouncerSettingsFor(model)))) {
      const keys = pairs.map(([k]) => k);
      expect(keys).toEqual([...new Set(keys)]);
    }
  });

  it.each(models)(
    "%s: Odoo databases pool per transaction, `postgres` per session, nothing else reachable (POOL-1, DESIGN 7)",
    (_name, model) => {
      const databases = section(renderPgbouncerIni(pgbouncerSettingsFor(model)), "databases");
      expect(databases.map(([name]) => name).sort()).toEqual([...model.settings.databases, LISTEN_DATABASE].sort());
      for (const [name, value] of databases) {
        const params = connstr(value);
        expect(params).toMatchObject({ host: model.hosts.postgres.fqdn, port: "5432", dbname: name });
        expect(params.pool_mode).toBe(name === LISTEN_DATABASE ? "session" : "transaction");
        expect(params).not.toHaveProperty("user"); // a forced user would break SCRAM pass-through
        expect(params).not.toHaveProperty("password");
      }
    },
  );

  it.each(models)("%s: pool numbers are the sizing's, and the Odoo role's cap fits max_connections (POOL-2..5, PG-1)", (_name, model) => {
    const text = renderPgbouncerIni(pgbouncerSettingsFor(model));
    const pools = model.settings.sizing.pgbouncer;
    const pg = model.settings.sizing.postgres;
    const one = (key: string) => Number(valuesOf(section(text, "pgbouncer"), key)[0]);
    expect(one("default_pool_size")).toBe(pools.defaultPoolSize);
    expect(one("reserve_pool_size")).toBe(pools.reservePoolSize);
    expect(one("reserve_pool_timeout")).toBe(pools.reservePoolTimeoutSeconds);
    expect(one("max_client_conn")).toBe(pools.maxClientConn);
    expect(one("max_db_connections")).toBe(pools.maxDbConnections);
    expect(one("max_user_connections")).toBe(pools.maxUserConnections + pools.postgresPoolSize + pools.postgresReservePoolSize);
    const dbs = Object.fromEntries(section(text, "databases").map(([name, v]) => [name, connstr(v)]));
    for (const db of model.settings.databases) {
      expect(Number(dbs[db].pool_size)).toBe(pools.defaultPoolSize);
      expect(Number(dbs[db].max_db_connections)).toBe(pools.maxDbConnections);
    }
    expect(dbs[LISTEN_DATABASE]).toMatchObject({
      pool_size: String(pools.postgresPoolSize),
      reserve_pool: String(pools.postgresReservePoolSize),
      max_db_connections: String(pools.postgresPoolSize + pools.postgresReservePoolSize),
    });
    // The migration role queues in PgBouncer at its PostgreSQL CONNECTION LIMIT.
    const users = Object.fromEntries(section(text, "users").map(([name, v]) => [name, connstr(v)]));
    expect(users).toEqual({ [DB_ROLES.migrate]: { max_user_connections: String(pools.migrationConnections) } });
    // Every server connection PgBouncer may open for Odoo fits what PostgreSQL keeps for it.
    expect(one("max_user_connections")).toBe(pg.slots.pools + pg.slots.postgresPool);
    expect(
      one("max_user_connections") +
        pools.migrationConnections +
        pg.slots.monitoring +
        pg.slots.backup +
        pg.slots.admin +
        pg.superuserReservedConnections,
    ).toBeLessThanOrEqual(pg.maxConnections);
  });

  it("follows a sizing override (POOL-2)", () => {
    const model = modelWith({ pgbouncer: { defaultPoolSize: 5, reservePoolSize: 2 } });
    const text = renderPgbouncerIni(pgbouncerSettingsFor(model));
    expect(valuesOf(section(text, "pgbouncer"), "default_pool_size")).toEqual(["5"]);
    expect(connstr(valuesOf(section(text, "databases"), model.settings.databases[0])[0]).pool_size).toBe("5");
  });

  it("listens on the PgBouncer host's private address and loopback, port 6432 (NET-5)", () => {
    const [, model] = models[0];
    const pairs = section(renderPgbouncerIni(pgbouncerSettingsFor(model)), "pgbouncer");
    expect(valuesOf(pairs, "listen_addr")).toEqual([`${model.hosts.pgbouncer.privateIp},127.0.0.1`]);
    expect(valuesOf(pairs, "listen_port")).toEqual(["6432"]);
    expect(valuesOf(pairs, "admin_users")).toEqual([]);
    expect(valuesOf(pairs, "stats_users")).toEqual(["pgbouncer_stats"]);
  });
});

describe("pgbouncer.ini overrides", () => {
  const base = pgbouncerSettingsFor(models[0][1]);

  it("an allowlisted override replaces the default, once (the benchmark's application_name_add_host variant)", () => {
    const pairs = section(renderPgbouncerIni({ ...base, overrides: { application_name_add_host: 0 } }), "pgbouncer");
    expect(valuesOf(pairs, "application_name_add_host")).toEqual(["0"]);
    expect(valuesOf(section(renderPgbouncerIni(base), "pgbouncer"), "application_name_add_host")).toEqual(["1"]);
  });

  it.each(forcedEntries(PGBOUNCER_INI).map(([key, e]) => [key, (e.checklist ?? []).join(", ")]))(
    "an override of forced key %s throws naming %s instead of winning",
    (key, ids) => {
      expect(() => renderPgbouncerIni({ ...base, overrides: { [key]: "session" } })).toThrow(
        new RegExp(`${key}: is fixed by odoo-stack \\(${ids}: `),
      );
    },
  );

  it.each(["default_pool_size", "max_client_conn", "admin_users", "query_wait_timeout", "no_such_key"])(
    "an override of %s (not allowlisted) throws",
    (key) => {
      expect(() => renderPgbouncerIni({ ...base, overrides: { [key]: 1 } })).toThrow(
        new RegExp(`${key}: is not an overridable PgBouncer setting .*; allowed: application_name_add_host$`, "m"),
      );
    },
  );

  it("reports every rejected override at once", () => {
    expect(() => renderPgbouncerIni({ ...base, overrides: { auth_type: "md5", bogus: 1 } })).toThrow(/1\. auth_type[\s\S]*2\. bogus/);
  });

  it("the allowlist and the forced keys do not overlap", () => {
    expect(overridableKeys(PGBOUNCER_INI, base).filter((k) => FORCED_KEYS.includes(k))).toEqual([]);
  });

  it("refuses `postgres` as an Odoo database and an empty list", () => {
    expect(() => renderPgbouncerIni({ ...base, odooDatabases: ["erp", "postgres"] })).toThrow(/LISTEN session pool/);
    expect(() => renderPgbouncerIni({ ...base, odooDatabases: [] })).toThrow(/at least one/);
  });
});

describe("pgbouncer.ini escaping (PgBouncer's parser has no ini-level quoting)", () => {
  it("writes ini values verbatim and refuses what the parser would cut or trim", () => {
    expect(escapePgbouncerIniValue("DISCARD ALL")).toBe("DISCARD ALL");
    expect(escapePgbouncerIniValue(6432)).toBe("6432");
    expect(() => escapePgbouncerIniValue("a\nlisten_addr = *")).toThrow(/one line/);
    expect(() => escapePgbouncerIniValue(" x")).toThrow(/blanks/);
    expect(() => escapePgbouncerIniValue("x ")).toThrow(/blanks/);
  });

  it("quotes connection-string values with blanks or quotes the way loader.c unquotes them", () => {
    expect(escapePgbouncerConnstrValue("erp")).toBe("erp");
    expect(escapePgbouncerConnstrValue("SET x = 1")).toBe("'SET x = 1'");
    expect(escapePgbouncerConnstrValue("it's")).toBe("'it''s'");
    expect(() => escapePgbouncerConnstrValue("")).toThrow(/empty/);
  });

  it("quotes a server host with a blank, so it cannot inject another parameter", () => {
    const base = pgbouncerSettingsFor(models[0][1]);
    const text = renderPgbouncerIni({ ...base, serverHost: "db user=postgres" });
    const value = valuesOf(section(text, "databases"), base.odooDatabases[0])[0];
    expect(value).toContain("host='db user=postgres'");
    expect(value.replace(/'[^']*'/g, "QUOTED")).not.toMatch(/\buser=/);
  });
});

describe("userlist.txt (AUTH-1, AUTH-2)", () => {
  it("carries only {{ssm:...}} references to the SCRAM verifiers, never to a password", () => {
    const model = models[0][1];
    const text = renderPgbouncerUserlist(pgbouncerUserlistSettingsFor(model));
    const entries = text.split("\n").filter((l) => l.startsWith('"'));
    expect(entries).toEqual([
      `"odoo" "{{ssm:${model.parameters.odooDbScramVerifier}}}"`,
      // The migration role shares the Odoo role's password, so its verifier too.
      `"odoo_migrate" "{{ssm:${model.parameters.odooDbScramVerifier}}}"`,
      `"pgbouncer_stats" "{{ssm:${model.parameters.statsScramVerifier}}}"`,
    ]);
    const refs = [...text.matchAll(SECRET_REF)].map((m) => m[1]);
    expect(refs.every((p) => p.endsWith("-scram-verifier"))).toBe(true);
  });

  it("comments only with ';' (a '#' line would end PgBouncer's parsing of the file)", () => {
    const text = renderPgbouncerUserlist(pgbouncerUserlistSettingsFor(models[0][1]));
    const lines = text.split("\n").filter((l) => l !== "");
    expect(lines.every((l) => l.startsWith(";") || l.startsWith('"'))).toBe(true);
    expect(lines[0]).toBe(`; ${GENERATED}`);
  });

  it("accepts a real verifier (the sandbox's) and refuses plaintext and md5", () => {
    const verifier = scramSha256Verifier("Abc123xyz", randomBytes(16));
    expect(renderPgbouncerUserlist({ entries: [{ user: "odoo", secret: verifier }] })).toContain(`"odoo" "${verifier}"`);
    expect(() => renderPgbouncerUserlist({ entries: [{ user: "odoo", secret: "Abc123xyz" }] })).toThrow(/plaintext and md5 are refused/);
    expect(() => renderPgbouncerUserlist({ entries: [{ user: "odoo", secret: `md5${"a".repeat(32)}` }] })).toThrow(/AUTH-1/);
    expect(() => renderPgbouncerUserlist({ entries: [{ user: "odoo", secret: "x{{ssm:/a/b}}" }] })).toThrow(/AUTH-1/);
  });

  it("refuses a user listed twice and escapes quotes in names", () => {
    const verifier = scramSha256Verifier("Abc", randomBytes(16));
    expect(() =>
      renderPgbouncerUserlist({
        entries: [
          { user: "a", secret: verifier },
          { user: "a", secret: verifier },
        ],
      }),
    ).toThrow(/twice/);
    expect(renderPgbouncerUserlist({ entries: [{ user: 'we"ird', secret: verifier }] })).toContain('"we""ird"');
  });
});

describe("systemd drop-in and host files", () => {
  it.each(models)("%s: LimitNOFILE is the sizing's (OBS-8)", (_name, model) => {
    expect(renderPgbouncerSystemdDropIn(pgbouncerSystemdSettingsFor(model))).toContain(
      `\nLimitNOFILE=${model.settings.sizing.pgbouncer.limitNofile}\n`,
    );
  });

  it("refuses a limit below 1024", () => {
    expect(() => renderPgbouncerSystemdDropIn({ limitNofile: 100 })).toThrow(/at least 1024/);
  });

  it("delivers the userlist 0600 to the service user (AUTH-2) and the ini 0640", () => {
    const files = Object.fromEntries(pgbouncerHostFiles(models[0][1]).map((f) => [f.path, f]));
    expect(files["/etc/pgbouncer/userlist.txt"]).toMatchObject({ mode: "0600", owner: "postgres", group: "postgres" });
    expect(files["/etc/pgbouncer/pgbouncer.ini"]).toMatchObject({ mode: "0640", owner: "postgres", group: "postgres" });
    expect(files["/etc/systemd/system/pgbouncer.service.d/odoo-stack.conf"]).toMatchObject({ mode: "0644", owner: "root" });
    for (const f of Object.values(files)) expect(f.content.startsWith(`${f.path.endsWith(".conf") ? "#" : ";"} ${GENERATED}\n`)).toBe(true);
  });

  it("odooRoleConnectionLimit adds the `postgres` pool and its reserve to the transaction pools", () => {
    expect(odooRoleConnectionLimit({ maxUserConnections: 10, postgresPoolSize: 13, postgresReservePoolSize: 3 })).toBe(26);
  });

  it("turns TCP keepalive on, both sides, with a dead peer found in PGBOUNCER_DEAD_PEER_SECONDS (POOL-2, POOL-3)", () => {
    const text = renderPgbouncerIni(pgbouncerSettingsFor(models[0][1]));
    const one = (key: string) => valuesOf(section(text, "pgbouncer"), key);
    expect(one("tcp_keepalive")).toEqual(["1"]);
    expect(Number(one("tcp_keepidle")[0]) + Number(one("tcp_keepintvl")[0]) * Number(one("tcp_keepcnt")[0])).toBe(
      PGBOUNCER_DEAD_PEER_SECONDS,
    );
    expect(one("tcp_user_timeout")).toEqual([String(PGBOUNCER_DEAD_PEER_SECONDS * 1000)]);
    expect(PGBOUNCER_DEAD_PEER_SECONDS).toBeLessThanOrEqual(120);
  });
});
