// Stack-wide coherence: files present (every P item), PG-1, POOL-4, and the path Odoo → PgBouncer
// → PostgreSQL (NET-5, NET-6, TLS-2).
import {
  databaseTrafficThroughPgbouncer,
  hostsReceiveCheckedConfigFiles,
  pgbouncerMaxClientConnCoversOdoo,
  pgbouncerPostgresPoolCoversOdoo,
  postgresMaxConnectionsCoverPgbouncer,
} from "../../policy/stack";
import { databasesAt, modelWith } from "../helpers/fixtures";
import { setLine, validateStack, withContent, type FakeResource } from "./fakes";
import { replaced, stackFixture } from "./stack-fixture";

const fixture = stackFixture();
const odooConf = fixture.file("odoo-1", "/etc/odoo/odoo.conf");
const ini = fixture.file("pgbouncer", "/etc/pgbouncer/pgbouncer.ini");
const pgConf = fixture.file("postgres", "/etc/postgresql/15/main/conf.d/90-odoo-stack.conf");
const odooLabel = `odoo.conf of odoo-1 (${odooConf.name})`;
const iniLabel = `pgbouncer.ini of pgbouncer (${ini.name})`;
const messages = async (policy: Parameters<typeof validateStack>[0], resources: readonly FakeResource[]) =>
  (await validateStack(policy, resources)).map((v) => v.message);

describe("hosts-receive-checked-config-files", () => {
  const policy = hostsReceiveCheckedConfigFiles;

  it("passes the stack", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it.each([
    [
      "odoo-1",
      "/etc/odoo/odoo.conf",
      "odoo-odoo-1-instance",
      "odoo",
      "odoo.conf at /etc/odoo/odoo.conf",
      "NET-1, PROXY-4, ODOO-1, ODOO-2, ODOO-3, ODOO-5, LIMIT-1, LIMIT-2, LIMIT-3, TLS-2",
    ],
    ["pgbouncer", "/etc/pgbouncer/userlist.txt", "pgbouncer-host-instance", "pgbouncer", "its auth_file (userlist)", "AUTH-2"],
    [
      "postgres",
      "/etc/postgresql/15/main/pg_hba.conf",
      "postgres-host-instance",
      "postgres",
      "pg_hba.conf at /etc/postgresql/15/main/pg_hba.conf",
      "AUTH-1, TLS-1, NET-6",
    ],
    [
      "proxy",
      "/etc/nginx/conf.d/odoo.conf",
      "proxy-host-instance",
      "proxy",
      "an nginx server that proxies to Odoo (nginx.conf or /etc/nginx/conf.d/*.conf)",
      "NET-2, PROXY-1, PROXY-2, PROXY-3, PROXY-5",
    ],
  ])("rejects %s without %s", async (hostId, path, instance, role, file, items) => {
    const without = fixture.resources.filter((r) => r !== fixture.file(hostId, path));
    expect(await messages(policy, without)).toEqual([
      `EC2 instance (${instance}) must receive ${file} as a config object with inline content (key hosts/${hostId}/…): it is the ${role} host ${hostId}, and without the file the pack cannot check it (${items}).`,
    ]);
  });

  it("does not count a site that only redirects", async () => {
    const site = fixture.file("proxy", "/etc/nginx/conf.d/odoo.conf");
    const redirectOnly = withContent(site, () => "server {\n    listen 443 ssl;\n    return 301 https://example.com;\n}\n");
    expect(await messages(policy, replaced(fixture.resources, redirectOnly))).toHaveLength(1);
  });
});

describe("pgbouncer-postgres-pool-covers-odoo (POOL-2, POOL-3)", () => {
  const policy = pgbouncerPostgresPoolCoversOdoo;
  const postgresEntry = (edit: (value: string) => string) =>
    withContent(ini, (t) => t.replace(/^postgres = (.*)$/m, (_l, v: string) => `postgres = ${edit(v)}`));

  it("passes one host and three", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
    expect(await validateStack(policy, stackFixture(modelWith({ odooInstances: 3 })).resources)).toEqual([]);
  });

  it("rejects the pool sized for LISTEN alone (hosts + crons + 2, no reserve)", async () => {
    const listenOnly = postgresEntry((v) =>
      v
        .replace("pool_size=13", "pool_size=4")
        .replace("reserve_pool=3", "reserve_pool=0")
        .replace("max_db_connections=16", "max_db_connections=4"),
    );
    expect(await messages(policy, replaced(fixture.resources, listenOnly))).toEqual([
      `${iniLabel} must give postgres a pool_size (4) of at least the 13 postgres sessions Odoo can hold at once (odoo-1: 9 workers + gevent + 1 cron: 2 listening, 11 short) (POOL-2).`,
      `${iniLabel} must give postgres a reserve_pool (0) of at least 3: one host's LISTEN sessions still held by a process that is gone, plus its successor's start-up connection (POOL-3).`,
    ]);
  });

  it("rejects a cap that leaves the reserve unusable", async () => {
    const capped = postgresEntry((v) => v.replace("max_db_connections=16", "max_db_connections=13"));
    expect(await messages(policy, replaced(fixture.resources, capped))).toEqual([
      `${iniLabel} must set postgres's max_db_connections (13) at least pool_size + reserve_pool (16), or the reserve can never be used (POOL-3).`,
    ]);
  });

  it("rejects more workers on Odoo's side only", async () => {
    const more = withContent(odooConf, setLine("workers", "workers = 20"));
    expect(await messages(policy, replaced(fixture.resources, more))).toEqual([
      `${iniLabel} must give postgres a pool_size (13) of at least the 24 postgres sessions Odoo can hold at once (odoo-1: 20 workers + gevent + 1 cron: 2 listening, 22 short) (POOL-2).`,
    ]);
  });

  it("rejects a stack without a postgres entry", async () => {
    const none = withContent(ini, (t) => t.replace(/^postgres = .*\n/m, ""));
    expect(await messages(policy, replaced(fixture.resources, none))).toEqual([
      `${iniLabel} must have a postgres entry in session mode for Odoo's 13 postgres sessions (odoo-1: 9 workers + gevent + 1 cron: 2 listening, 11 short) (POOL-2, DESIGN principle 7).`,
    ]);
  });
});

describe("pgbouncer-max-client-conn-covers-odoo (POOL-4)", () => {
  const policy = pgbouncerMaxClientConnCoversOdoo;

  it("passes one host and three", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
    expect(await validateStack(policy, stackFixture(modelWith({ odooInstances: 3 })).resources)).toEqual([]);
  });

  it("rejects max_client_conn below Odoo's processes × db_maxconn", async () => {
    const r = withContent(ini, setLine("max_client_conn", "max_client_conn = 80"));
    expect(await messages(policy, replaced(fixture.resources, r))).toEqual([
      `${iniLabel} must set max_client_conn (80) at least the 144 connections Odoo may open (odoo-1: (9 workers + 1 cron) × 8 + gevent 64) (POOL-4).`,
    ]);
  });

  it("rejects a db_maxconn raised on Odoo's side only", async () => {
    const r = withContent(odooConf, setLine("db_maxconn", "db_maxconn = 64"));
    expect(await messages(policy, replaced(fixture.resources, r))).toEqual([
      `${iniLabel} must set max_client_conn (200) at least the 704 connections Odoo may open (odoo-1: (9 workers + 1 cron) × 64 + gevent 64) (POOL-4).`,
    ]);
  });
});

describe("postgres-max-connections-cover-pgbouncer (PG-1)", () => {
  const policy = postgresMaxConnectionsCoverPgbouncer;
  const label = `90-odoo-stack.conf of postgres (${pgConf.name})`;

  it("passes the sized stack", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
    expect(await validateStack(policy, stackFixture(modelWith({ odooInstances: 3, ...databasesAt("erp", "erptest") })).resources)).toEqual(
      [],
    );
  });

  it("rejects max_connections below the pools + reserves + `postgres` pool + the migration role + slots", async () => {
    const r = withContent(pgConf, setLine("max_connections", "max_connections = 20"));
    expect(await messages(policy, replaced(fixture.resources, r))).toEqual([
      `${label} must set max_connections (20) at least 44: pgbouncer pools 30 + odoo_migrate 2 + backup 4 + monitoring 2 + admin 3 + superuser_reserved_connections 3 (PG-1).`,
    ]);
  });

  it("rejects pools raised in pgbouncer.ini without raising max_connections", async () => {
    const r = withContent(ini, (t) =>
      t
        .replace("pool_size=11", "pool_size=41")
        .replace(/max_db_connections=14/g, "max_db_connections=44")
        .replace("max_user_connections = 30", "max_user_connections = 60"),
    );
    expect(await messages(policy, replaced(fixture.resources, r))).toEqual([
      `${label} must set max_connections (46) at least 74: pgbouncer pools 60 + odoo_migrate 2 + backup 4 + monitoring 2 + admin 3 + superuser_reserved_connections 3 (PG-1).`,
    ]);
  });
});

describe("database-traffic-through-pgbouncer (NET-5, NET-6, TLS-2)", () => {
  const policy = databaseTrafficThroughPgbouncer;

  it("passes the stack", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it("rejects Odoo pointed straight at PostgreSQL", async () => {
    const r = withContent(
      withContent(odooConf, setLine("db_host", "db_host = postgres.odoo.internal")),
      setLine("db_port", "db_port = 5432"),
    );
    expect(await messages(policy, replaced(fixture.resources, r))).toEqual([
      `${odooLabel} must set db_host to the PgBouncer host's name (pgbouncer.odoo.internal); it is postgres.odoo.internal, the postgres host postgres (NET-5, TLS-2).`,
      `${odooLabel} must set db_port = 6432 (PgBouncer); it is "5432" (NET-5).`,
    ]);
  });

  it("rejects an empty db_host (a local socket) and a PgBouncer entry that loops back to itself", async () => {
    const local = withContent(odooConf, setLine("db_host", "db_host ="));
    expect(await messages(policy, replaced(fixture.resources, local))).toEqual([
      `${odooLabel} must set db_host to the PgBouncer host's name (pgbouncer.odoo.internal); it is absent (a local Unix socket) (NET-5, TLS-2).`,
    ]);
    const loop = withContent(ini, (t) => t.replace(/^erp = (.*)host=postgres\.odoo\.internal/m, "erp = $1host=pgbouncer.odoo.internal"));
    expect(await messages(policy, replaced(fixture.resources, loop))).toEqual([
      `${iniLabel} must send database erp to the PostgreSQL host; host=pgbouncer.odoo.internal is the pgbouncer host pgbouncer (NET-6).`,
    ]);
  });
});
