// PostgreSQL 15 (Debian 12) on its own host: the conf.d drop-in, pg_hba.conf and the
// idempotent bootstrap SQL (roles, per-role timeouts, databases, extensions). Two layers, as
// in pgbouncer.ts: plain `...Settings` data in, text out; `...SettingsFor(model)` derives the
// production settings from the stack model and the sizing.
import { parseCidr } from "../lib/cidr";
import { DB_ROLES, PATHS, secretRef, type StackModel } from "../lib/model";
import { PORTS } from "../lib/ports";
import { layer, type LayerTable } from "../lib/layering";
import { throwIfAny } from "../lib/problems";
import { parseScramVerifier } from "../lib/scram";
import { isSecretRef } from "../lib/secret-ref";
import { odooRoleConnectionLimit, POSTGRES_RESERVED, type MigrationTimeouts, type PostgresSizing } from "../lib/sizing";
import { escapePostgresConf, header, lines, sortedEntries, sqlIdent, sqlLiteral, type HostFile } from "./format";
import { postgresArchiveParameters } from "./backup-units";
import { LISTEN_DATABASE } from "./pgbouncer";

/** Debian's cluster files belong to the postgres user. */
const POSTGRES_USER = "postgres";

/** Server certificate and key (TLS-1, TLS-3); the key must be 0600 and owned by postgres. */
export const POSTGRES_TLS_FILES = {
  cert: `${PATHS.postgresTlsDir}/server.crt`,
  key: `${PATHS.postgresTlsDir}/server.key`,
} as const;

export type PostgresConfValue = string | number | boolean;

/** Everything the drop-in depends on. Flat, so the sandbox can remap ports, addresses and paths. */
export interface PostgresConfSettings {
  readonly listenAddresses: readonly string[];
  readonly port: number;
  readonly sslCertFile: string;
  readonly sslKeyFile: string;
  readonly sslCaFile: string;
  readonly sizing: PostgresSizing;
  /**
   * Keys other parts of the stack add (the backups work: archive_mode, archive_command, …).
   * They may only add: a key the drop-in already sets, or a forced one, throws.
   */
  readonly extraParameters: Readonly<Record<string, PostgresConfValue>>;
}

const GUC_NAME = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;
const mb = (n: number): string => `${n}MB`;

/**
 * The drop-in's keys, layered by lib/layering.ts: tuning defaults from the sizing, then the
 * checklist's keys and the files and addresses the stack owns, written last; the policy pack
 * checks deployed files for the same values and the RDS parameter group (templates/rds.ts)
 * reads this table. No key is overridable: no stack setting reaches the drop-in (the sizing
 * owns memory and timeouts through the postgres.* config keys).
 */
export const POSTGRES_CONF: LayerTable<PostgresConfSettings, PostgresConfValue> = {
  overrideName: "a postgresql.conf override",
  allowedName: "an overridable PostgreSQL setting",
  keys: {
    shared_buffers: { default: (s) => mb(s.sizing.sharedBuffersMiB) },
    effective_cache_size: { default: (s) => mb(s.sizing.effectiveCacheSizeMiB) },
    work_mem: { default: (s) => mb(s.sizing.workMemMiB) },
    maintenance_work_mem: { default: (s) => mb(s.sizing.maintenanceWorkMemMiB) },
    // log_lock_waits (PG-3) reports a wait once it passes deadlock_timeout; 1 s is the
    // PostgreSQL default, stated because PG-3's usefulness depends on it.
    deadlock_timeout: { default: "1s" },
    // Slow statements with their duration; Odoo requests over 1 s are worth a look (OBS-7).
    log_min_duration_statement: { default: "1s" },
    // Time, pid, user, database and application (Odoo host:port via PgBouncer's
    // application_name_add_host) on every line.
    log_line_prefix: { default: "%m [%p] %q%u@%d app=%a " },
    // PG-4: every autovacuum/autoanalyze run over 1 s is logged with its counts.
    log_autovacuum_min_duration: { default: "1s", checklist: ["PG-4"] },
    // I/O timings in pg_stat_statements and EXPLAIN (OBS-7, OBS-8).
    track_io_timing: { default: true },
    // Odoo's ORM produces many distinct statements: room for them. Only top-level statements,
    // without utility commands (SAVEPOINT/RELEASE would crowd out the real queries).
    "pg_stat_statements.max": { default: 10000 },
    "pg_stat_statements.track": { default: "top" },
    "pg_stat_statements.track_utility": { default: false },

    // --- checklist: written last, so that nothing above can change them -------------------
    // A pre-computed verifier is stored as given.
    password_encryption: { forced: "scram-sha-256", checklist: ["AUTH-1"], rule: "must be scram-sha-256: verifiers, never md5" },
    // PgBouncer connects with verify-full.
    ssl: { forced: true, checklist: ["TLS-1"], rule: "must be on: PgBouncer connects with TLS, verify-full" },
    ssl_min_protocol_version: { forced: "TLSv1.2", checklist: ["TLS-1"], rule: "must be TLSv1.2 or later" },
    log_lock_waits: {
      forced: true,
      checklist: ["PG-3"],
      rule: "must be on: a wait longer than deadlock_timeout is logged with the blocking pids",
    },
    shared_preload_libraries: { forced: "pg_stat_statements", checklist: ["OBS-7"], rule: "must load pg_stat_statements: top queries" },
    listen_addresses: {
      forced: (s) => s.listenAddresses.join(","),
      checklist: ["NET-6"],
      rule: "must be the host's private address (and localhost), never *",
    },
    max_connections: {
      forced: (s) => s.sizing.maxConnections,
      checklist: ["PG-1"],
      rule: "must come from the sizing: PgBouncer's pools, the reserves and the admin slots fit in it",
    },
    superuser_reserved_connections: {
      forced: (s) => s.sizing.superuserReservedConnections,
      checklist: ["PG-1"],
      rule: "must come from the sizing, counted in max_connections",
    },
    // Global defaults (PG-2); ALTER ROLE values in the bootstrap are the ones that count
    // through transaction pooling, and the postgres role lifts statement_timeout.
    statement_timeout: { forced: (s) => s.sizing.statementTimeoutMs, checklist: ["PG-2"], rule: "must be set from the sizing, in ms" },
    lock_timeout: { forced: (s) => s.sizing.lockTimeoutMs, checklist: ["PG-2"], rule: "must be set from the sizing, in ms" },
    idle_in_transaction_session_timeout: {
      forced: (s) => s.sizing.idleInTransactionSessionTimeoutMs,
      checklist: ["PG-2"],
      rule: "must be set from the sizing, in ms",
    },
    // --- owned by the stack ------------------------------------------------------------------
    port: { owned: (s) => s.port },
    ssl_cert_file: { owned: (s) => s.sslCertFile },
    ssl_key_file: { owned: (s) => s.sslKeyFile },
    ssl_ca_file: { owned: (s) => s.sslCaFile },
  },
};

/** The conf.d drop-in (Debian's postgresql.conf ends with include_dir = 'conf.d'). */
export function renderPostgresConf(s: PostgresConfSettings): string {
  const layered = layer(POSTGRES_CONF, s);
  const { main, fixed } = layered;
  const problems = [...layered.problems];
  for (const key of Object.keys(s.extraParameters).sort()) {
    if (!GUC_NAME.test(key)) problems.push(`${key} is not a PostgreSQL parameter name`);
    else if (key in fixed) problems.push(`${key} is fixed by the checklist and cannot be set by another module`);
    else if (key in main) problems.push(`${key} is already set by the drop-in; extra parameters may only add keys`);
  }
  throwIfAny("postgresql.conf parameters rejected", problems);

  const line = ([k, v]: [string, PostgresConfValue]): string => `${k} = ${escapePostgresConf(v)}`;
  return lines(
    header("#"),
    `# Included last by ${PATHS.postgresConfDir}/postgresql.conf (include_dir = 'conf.d'), so these win.`,
    sortedEntries({ ...main, ...s.extraParameters }).map(line),
    "# checklist keys, last so that nothing above can change them",
    sortedEntries(fixed).map(line),
  );
}

export function postgresConfSettingsFor(model: StackModel): PostgresConfSettings {
  return {
    // The private address for PgBouncer and the bastion (NET-6); localhost for the collector
    // and backups on this host.
    listenAddresses: [model.hosts.postgres.privateIp, "localhost"],
    port: PORTS.postgres.port,
    sslCertFile: POSTGRES_TLS_FILES.cert,
    sslKeyFile: POSTGRES_TLS_FILES.key,
    sslCaFile: PATHS.caCert,
    sizing: model.settings.sizing.postgres,
    // WAL archiving to pgBackRest (BACKUP-1): the backups module owns these keys.
    extraParameters: postgresArchiveParameters(model),
  };
}

// --- pg_hba.conf -----------------------------------------------------------------------------

export interface PgHbaSettings {
  readonly odooDatabases: readonly string[];
  readonly odooRole: string;
  /** The migration role (DB_ROLES.migrate): the same databases, from the same address. */
  readonly migrateRole: string;
  readonly monitorRole: string;
  /** PgBouncer's address as a /32 (NET-6): the only TCP source for the Odoo role. */
  readonly pgbouncerCidr: string;
  /** The VPC CIDR when a bastion may connect (NET-6); its security group narrows it to the bastion. */
  readonly bastionCidr?: string;
}

// pg_hba.conf has no escape function in format.ts: its tokens are written only after they
// pass these patterns, so nothing needs quoting.
const HBA_NAME = /^[a-z_][a-z0-9_]*$/;

function hbaName(name: string): string {
  if (!HBA_NAME.test(name)) throw new Error(`pg_hba.conf: ${JSON.stringify(name)} must be a lower-case identifier`);
  return name;
}

function hbaCidr(cidr: string): string {
  if (!parseCidr(cidr)) throw new Error(`pg_hba.conf: ${JSON.stringify(cidr)} must be an IPv4 CIDR with no host bits set`);
  return cidr;
}

/**
 * pg_hba.conf, first match wins: peer for the postgres OS user, a password for the local
 * collector, TLS + SCRAM from PgBouncer for the Odoo role, then explicit rejects. Never
 * trust, password or md5 on TCP.
 */
export function renderPgHba(s: PgHbaSettings): string {
  const databases = [...s.odooDatabases.map(hbaName), LISTEN_DATABASE].join(",");
  const rows: [string, string, string, string, string][] = [
    // Maintenance, bootstrap and backups run as the postgres OS user over the Unix socket.
    ["local", "all", "postgres", "", "peer"],
    ["local", "replication", "postgres", "", "peer"],
    // The metrics collector (OBS-7, PG-4) reads every database with pg_monitor rights.
    ["local", "all", hbaName(s.monitorRole), "", "scram-sha-256"],
    ["local", "all", "all", "", "reject"],
    // NET-6 at the database layer: Odoo's roles, over TLS, from PgBouncer only.
    ["hostssl", databases, [hbaName(s.odooRole), hbaName(s.migrateRole)].join(","), hbaCidr(s.pgbouncerCidr), "scram-sha-256"],
  ];
  if (s.bastionCidr !== undefined) rows.push(["hostssl", "all", "all", hbaCidr(s.bastionCidr), "scram-sha-256"]);
  rows.push(["host", "all", "all", "0.0.0.0/0", "reject"], ["host", "all", "all", "::/0", "reject"]);

  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
  const row = (r: readonly string[]): string =>
    r
      .map((cell, i) => (i < 4 ? cell.padEnd(widths[i]) : cell))
      .join("  ")
      .replace(/ +$/, "");
  return lines(header("#"), row(["# TYPE".padEnd(widths[0]), "DATABASE", "USER", "ADDRESS", "METHOD"]), rows.map(row));
}

export function pgHbaSettingsFor(model: StackModel): PgHbaSettings {
  return {
    odooDatabases: model.settings.databases,
    odooRole: DB_ROLES.odoo,
    migrateRole: DB_ROLES.migrate,
    monitorRole: DB_ROLES.monitor,
    pgbouncerCidr: `${model.hosts.pgbouncer.privateIp}/32`,
    ...(model.settings.bastionSecurityGroupId !== undefined ? { bastionCidr: model.settings.vpcCidr } : {}),
  };
}

// --- bootstrap SQL ---------------------------------------------------------------------------

export interface PostgresBootstrapSettings {
  readonly odooRole: string;
  /** A SCRAM-SHA-256 verifier or a secretRef() to one: no plaintext reaches the database host. */
  readonly odooPasswordVerifier: string;
  readonly odooConnectionLimit: number;
  readonly odooStatementTimeoutMs: number;
  readonly odooLockTimeoutMs: number;
  readonly odooIdleInTransactionSessionTimeoutMs: number;
  /** `odoo -u` logs in as this role: the Odoo role's password, migration timeouts, acting as the Odoo role. */
  readonly migrateRole: string;
  readonly migrateConnectionLimit: number;
  readonly migrateTimeouts: MigrationTimeouts;
  readonly monitorRole: string;
  /** secretRef() to the collector's password (the collector on this host needs it anyway). */
  readonly monitorPassword: string;
  readonly monitorConnectionLimit: number;
  readonly odooDatabases: readonly string[];
}

/** A `SELECT '<statement>' WHERE NOT EXISTS (...)\gexec` line: psql runs it only when needed. */
export const gexecUnless = (statement: string, existsQuery: string): string =>
  `SELECT ${sqlLiteral(statement)} WHERE NOT EXISTS (${existsQuery})\\gexec`;

/**
 * Odoo's databases as Odoo itself creates them (UTF8, C collation, from template0), owned by
 * its role, then pg_stat_statements (OBS-7) and pg_trgm in each (Odoo creates pg_trgm only in
 * databases it creates itself). Shared by the EC2 and RDS bootstraps.
 */
/** CREATE DATABASE as Odoo creates its databases: UTF8, C collation, from template0, owned by Odoo's role. */
export const createOdooDatabase = (databaseIdent: string, odooRoleIdent: string): string =>
  `CREATE DATABASE ${databaseIdent} OWNER ${odooRoleIdent} ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0`;

export function odooDatabasesSql(databases: readonly string[], odooRole: string): string[] {
  const odoo = sqlIdent(odooRole);
  return [
    "-- Odoo's databases, as Odoo itself creates them (UTF8, C collation, from template0).",
    "-- CREATE DATABASE cannot run inside a transaction block (DO), hence \\gexec.",
    ...databases.flatMap((db) => [
      gexecUnless(createOdooDatabase(sqlIdent(db), odoo), `SELECT FROM pg_catalog.pg_database WHERE datname = ${sqlLiteral(db)}`),
      `ALTER DATABASE ${sqlIdent(db)} OWNER TO ${odoo};`,
    ]),
    "",
    "-- OBS-7: top queries (the library is preloaded by the server's configuration).",
    "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;",
    "-- Trigram indexes (fields with index='trigram'); Odoo creates pg_trgm only in databases it",
    "-- creates itself, and these it does not.",
    ...databases.flatMap((db) => [`\\connect ${sqlIdent(db)}`, "CREATE EXTENSION IF NOT EXISTS pg_trgm;"]),
  ];
}

const ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT";

/**
 * The migration role (DB_ROLES.migrate), shared by the EC2 and RDS bootstraps: `odoo -u` logs in
 * as it and gets the migration timeouts (sizing.ts migrationTimeouts) from the role itself, so
 * they hold through PgBouncer and through the DISCARD ALL Odoo sends whenever it reuses a
 * connection (odoo/sql_db.py ConnectionPool.borrow L675; psycopg2 connection.reset()). A session
 * SET would be gone after the first reuse, and PgBouncer 1.18 refuses the `options` startup
 * parameter PGOPTIONS would send. `SET role` makes it act as the Odoo role, so the tables and
 * columns a migration creates belong to Odoo's role like the rest. Same verifier as the Odoo
 * role: no second secret to rotate apart (lib/model.ts), set as the Odoo role's is: on every run
 * on the PostgreSQL host, at creation only on RDS (templates/rds.ts says why); the rotation's
 * postgres step changes both (templates/procedures.ts). The databases' first install
 * (`odoo -i`, templates/scripts/odoo-stack-odoo-init.sh) logs in as it too.
 */
export function migrationRoleSql(
  s: Pick<PostgresBootstrapSettings, "odooRole" | "odooPasswordVerifier" | "migrateRole" | "migrateConnectionLimit" | "migrateTimeouts">,
  attributes = ROLE_ATTRIBUTES,
  password: "every run" | "at creation" = "every run",
): string[] {
  const odoo = sqlIdent(s.odooRole);
  const migrate = sqlIdent(s.migrateRole);
  const t = s.migrateTimeouts;
  return [
    `-- ${"`"}odoo -u${"`"} and ${"`"}odoo -i${"`"} log in as ${s.migrateRole}: ${t.statementTimeoutMs === 0 ? "no statement_timeout" : `statement_timeout ${t.statementTimeoutMs}`}, ${t.idleInTransactionSessionTimeoutMs === 0 ? "no idle_in_transaction_session_timeout" : `idle_in_transaction_session_timeout ${t.idleInTransactionSessionTimeoutMs}`}`,
    `-- (long rewrites of big tables), the same lock_timeout, acting as ${s.odooRole} (owner of what it creates).`,
    ...(password === "every run"
      ? [
          gexecUnless(`CREATE ROLE ${migrate}`, `SELECT FROM pg_catalog.pg_roles WHERE rolname = ${sqlLiteral(s.migrateRole)}`),
          `ALTER ROLE ${migrate} WITH ${attributes} CONNECTION LIMIT ${s.migrateConnectionLimit};`,
          `ALTER ROLE ${migrate} WITH PASSWORD ${sqlLiteral(s.odooPasswordVerifier)};`,
        ]
      : [
          gexecUnless(
            `CREATE ROLE ${migrate} PASSWORD ${sqlLiteral(s.odooPasswordVerifier)}`,
            `SELECT FROM pg_catalog.pg_roles WHERE rolname = ${sqlLiteral(s.migrateRole)}`,
          ),
          `ALTER ROLE ${migrate} WITH ${attributes} CONNECTION LIMIT ${s.migrateConnectionLimit};`,
        ]),
    `GRANT ${odoo} TO ${migrate};`,
    `ALTER ROLE ${migrate} SET role = ${sqlLiteral(s.odooRole)};`,
    `ALTER ROLE ${migrate} SET statement_timeout = ${t.statementTimeoutMs};`,
    `ALTER ROLE ${migrate} SET lock_timeout = ${t.lockTimeoutMs};`,
    `ALTER ROLE ${migrate} SET idle_in_transaction_session_timeout = ${t.idleInTransactionSessionTimeoutMs};`,
  ];
}

/**
 * The bootstrap script, run on every apply with `psql -v ON_ERROR_STOP=1 -d postgres` as the
 * postgres OS user; every statement is idempotent. Placeholders are resolved by the apply
 * script before psql reads it; the stack's generated secrets are alphanumeric and SCRAM
 * verifiers hold only base64 and `$:` characters, so a resolved value cannot end a literal.
 */
export function renderPostgresBootstrap(s: PostgresBootstrapSettings): string {
  if (!isSecretRef(s.odooPasswordVerifier) && !parseScramVerifier(s.odooPasswordVerifier)) {
    throw new Error(
      "bootstrap: the Odoo role's password must be a SCRAM-SHA-256 verifier or an {{ssm:...}} reference to one, never plaintext (DESIGN principle 5)",
    );
  }
  for (const [name, n] of [
    ["odooConnectionLimit", s.odooConnectionLimit],
    ["migrateConnectionLimit", s.migrateConnectionLimit],
    ["monitorConnectionLimit", s.monitorConnectionLimit],
  ] as const) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`bootstrap: ${name} must be a positive whole number, got ${n}`);
  }
  const odoo = sqlIdent(s.odooRole);
  const monitor = sqlIdent(s.monitorRole);
  const roleExists = (role: string) => `SELECT FROM pg_catalog.pg_roles WHERE rolname = ${sqlLiteral(role)}`;
  const databases = [...s.odooDatabases].sort();

  return lines(
    header("--"),
    "-- Run by the apply script: psql -v ON_ERROR_STOP=1 -d postgres, as the postgres OS user.",
    "\\set ON_ERROR_STOP on",
    "",
    "-- Password statements stay out of the server log, even slow or failing ones.",
    "SET log_statement = 'none';",
    "SET log_min_duration_statement = -1;",
    "SET log_min_error_statement = 'panic';",
    "SET password_encryption = 'scram-sha-256';",
    "",
    "-- Odoo's role. CONNECTION LIMIT = PgBouncer's transaction pools + reserves + the `postgres` pool",
    "-- (PG-1). The password is PgBouncer's verifier itself (same salt and iterations), so SCRAM",
    "-- passes through PgBouncer and no plaintext reaches this host.",
    gexecUnless(`CREATE ROLE ${odoo}`, roleExists(s.odooRole)),
    `ALTER ROLE ${odoo} WITH ${ROLE_ATTRIBUTES} CONNECTION LIMIT ${s.odooConnectionLimit};`,
    `ALTER ROLE ${odoo} WITH PASSWORD ${sqlLiteral(s.odooPasswordVerifier)};`,
    "-- PG-2 per role: sent at every server login, so it holds through transaction pooling.",
    `ALTER ROLE ${odoo} SET statement_timeout = ${s.odooStatementTimeoutMs};`,
    `ALTER ROLE ${odoo} SET lock_timeout = ${s.odooLockTimeoutMs};`,
    `ALTER ROLE ${odoo} SET idle_in_transaction_session_timeout = ${s.odooIdleInTransactionSessionTimeoutMs};`,
    "",
    migrationRoleSql(s),
    "",
    "-- The metrics collector on this host (OBS-7, PG-4): read-only statistics.",
    gexecUnless(`CREATE ROLE ${monitor}`, roleExists(s.monitorRole)),
    `ALTER ROLE ${monitor} WITH ${ROLE_ATTRIBUTES} CONNECTION LIMIT ${s.monitorConnectionLimit};`,
    `ALTER ROLE ${monitor} WITH PASSWORD ${sqlLiteral(s.monitorPassword)};`,
    `GRANT pg_monitor TO ${monitor};`,
    "",
    "-- Maintenance, pg_dump and backups run as postgres and must not be cut by the global default.",
    `ALTER ROLE ${sqlIdent(POSTGRES_USER)} SET statement_timeout = 0;`,
    "",
    odooDatabasesSql(databases, s.odooRole),
  );
}

export function postgresBootstrapSettingsFor(model: StackModel): PostgresBootstrapSettings {
  const pools = model.settings.sizing.pgbouncer;
  const pg = model.settings.sizing.postgres;
  return {
    odooRole: DB_ROLES.odoo,
    odooPasswordVerifier: secretRef(model.parameters.odooDbScramVerifier),
    odooConnectionLimit: odooRoleConnectionLimit(pools),
    odooStatementTimeoutMs: pg.statementTimeoutMs,
    odooLockTimeoutMs: pg.lockTimeoutMs,
    odooIdleInTransactionSessionTimeoutMs: pg.idleInTransactionSessionTimeoutMs,
    migrateRole: DB_ROLES.migrate,
    migrateConnectionLimit: pools.migrationConnections,
    migrateTimeouts: pg.migration,
    monitorRole: DB_ROLES.monitor,
    monitorPassword: secretRef(model.parameters.monitorPassword),
    monitorConnectionLimit: POSTGRES_RESERVED.monitoring,
    odooDatabases: model.settings.databases,
  };
}

// --- files for the host ----------------------------------------------------------------------

/** The database host's files with their modes and owners. */
export function postgresHostFiles(model: StackModel): HostFile[] {
  return [
    {
      path: PATHS.postgresConf,
      content: renderPostgresConf(postgresConfSettingsFor(model)),
      mode: "0644",
      owner: POSTGRES_USER,
      group: POSTGRES_USER,
    },
    { path: PATHS.postgresHba, content: renderPgHba(pgHbaSettingsFor(model)), mode: "0640", owner: POSTGRES_USER, group: POSTGRES_USER },
    // It names secrets by reference only, but the resolved copy on the host holds the monitor
    // password: 0600.
    {
      path: PATHS.postgresBootstrapSql,
      content: renderPostgresBootstrap(postgresBootstrapSettingsFor(model)),
      mode: "0600",
      owner: "root",
      group: "root",
    },
  ];
}
