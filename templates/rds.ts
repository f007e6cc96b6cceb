// Amazon RDS for PostgreSQL as the database engine (issue 8, postgresEngine = "rds"). Pure: the
// parameter group's settings, the bootstrap SQL the PgBouncer host runs against the RDS
// endpoint, and the libpq service file it connects through. Every checklist value comes from
// the same tables the EC2 renderer writes (POSTGRES_CONF, the sizing), so the two engines
// cannot drift apart.
import { DB_ROLES, PATHS, secretRef, type StackModel } from "../lib/model";
import { PORTS } from "../lib/ports";
import { parseScramVerifier } from "../lib/scram";
import { isSecretRef } from "../lib/secret-ref";
import { odooRoleConnectionLimit, POSTGRES_RESERVED, type MigrationTimeouts } from "../lib/sizing";
import { header, lines, sqlIdent, sqlLiteral, type HostFile } from "./format";
import { staticForced } from "../lib/layering";
import { gexecUnless, migrationRoleSql, odooDatabasesSql, POSTGRES_CONF } from "./postgresql";

/**
 * The RDS engine: the major version only, with automatic minor upgrades on
 * (RDS_POSTGRES.autoMinorVersionUpgrade). AWS retires old minors and force-upgrades instances
 * running them; a pinned minor (it was 15.12) would then make every `pulumi up` plan a
 * downgrade RDS refuses. With minor upgrades on, the AWS provider accepts a version prefix
 * ("15" for 15.x) and reports the running minor in `engineVersionActual`, so AWS's upgrades in
 * the maintenance window never show as drift. A major upgrade (16) stays a reviewed change of
 * this constant and of parameterGroupFamily together (BACKUP-3).
 * https://www.pulumi.com/registry/packages/aws/api-docs/rds/instance/#engineversion_nodejs
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.Upgrading.html
 */
export const RDS_POSTGRES = {
  engine: "postgres",
  engineVersion: "15",
  /** Must stay true while engineVersion is a prefix: RDS applies the minors in the maintenance window. */
  autoMinorVersionUpgrade: true,
  parameterGroupFamily: "postgres15",
  storageType: "gp3",
  /** The CA RDS signs the endpoint's certificate with; the regional bundle contains it. */
  caCertIdentifier: "rds-ca-rsa2048-g1",
  /** Performance Insights' free tier (OBS-7). */
  performanceInsightsRetentionDays: 7,
  /** UTC; after the nightly filestore copies, before business hours in Europe. */
  backupWindow: "01:00-02:00",
  maintenanceWindow: "sun:03:00-sun:04:00",
} as const;

/**
 * The RDS instance's identifier: fixed, so the log group RDS exports to has a name before the
 * instance exists (Monitoring creates it first, with the stack's retention; RDS would create it
 * itself, kept forever). RDS identifiers are lower-case letters, digits and single hyphens, at
 * most 63 characters; Pulumi stack names may also hold '_' and '.'.
 */
export function rdsInstanceIdentifier(model: StackModel, suffix = "postgres"): string {
  const clean = (s: string) =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/-{2,}/g, "-")
      .replace(/^-+|-+$/g, "");
  const tail = clean(suffix);
  // A long stack name is cut, never the suffix that tells the instance from its final snapshot.
  const base = clean(`${model.project}-${model.stack}`)
    .slice(0, 63 - tail.length - 1)
    .replace(/-+$/, "");
  return `${base}-${tail}`;
}

/** Where RDS exports PostgreSQL's log (enabledCloudwatchLogsExports: ["postgresql"]). */
export const rdsPostgresqlLogGroupName = (model: StackModel): string => `/aws/rds/instance/${rdsInstanceIdentifier(model)}/postgresql`;

/** libpq service name of the master connection (PATHS.rdsAdminServiceFile). */
export const RDS_ADMIN_SERVICE = "odoo-stack-rds-admin";
/** libpq service name of the metrics collector's connection (PATHS.rdsMonitorServiceFile). */
export const RDS_MONITOR_SERVICE = "odoo-stack-rds-monitor";

export type RdsApplyMethod = "immediate" | "pending-reboot";

export interface RdsParameter {
  readonly name: string;
  readonly value: string;
  /** Static parameters (max_connections, shared_preload_libraries) apply at the next reboot only. */
  readonly applyMethod: RdsApplyMethod;
  /** Checklist IDs the value implements. */
  readonly checklist: readonly string[];
}

/** Static in PostgreSQL (context "postmaster"): RDS refuses "immediate" for them. */
const STATIC_PARAMETERS = new Set(["max_connections", "shared_preload_libraries"]);

const rdsValue = (v: string | number | boolean): string => (typeof v === "boolean" ? (v ? "1" : "0") : String(v));

/**
 * The parameter group's settings, sorted by name. The EC2 drop-in's forced keys become RDS
 * parameters, except what RDS owns: `ssl` (RDS always offers TLS; rds.force_ssl refuses plain
 * connections, TLS-1) and the file and address keys.
 */
export function rdsParameters(model: StackModel): RdsParameter[] {
  const pg = model.settings.sizing.postgres;
  // Each value and its checklist IDs from the drop-in's table (POSTGRES_CONF): the fixed ones as
  // they are, the sizing's from the same sizing.
  const fromTable = (key: string, value: string | number | boolean = staticForced(POSTGRES_CONF, key)) => ({
    value,
    checklist: POSTGRES_CONF.keys[key].checklist ?? [],
  });
  const values: Record<string, { value: string | number | boolean; checklist: readonly string[] }> = {
    password_encryption: fromTable("password_encryption"),
    ssl_min_protocol_version: fromTable("ssl_min_protocol_version"),
    log_lock_waits: fromTable("log_lock_waits"),
    shared_preload_libraries: fromTable("shared_preload_libraries"),
    "rds.force_ssl": fromTable("ssl"),
    max_connections: fromTable("max_connections", pg.maxConnections),
    statement_timeout: fromTable("statement_timeout", pg.statementTimeoutMs),
    lock_timeout: fromTable("lock_timeout", pg.lockTimeoutMs),
    idle_in_transaction_session_timeout: fromTable("idle_in_transaction_session_timeout", pg.idleInTransactionSessionTimeoutMs),
  };
  return Object.keys(values)
    .sort()
    .map((name) => ({
      name,
      value: rdsValue(values[name].value),
      applyMethod: STATIC_PARAMETERS.has(name) ? "pending-reboot" : "immediate",
      checklist: values[name].checklist,
    }));
}

// --- bootstrap SQL ----------------------------------------------------------------------------

export interface RdsBootstrapSettings {
  readonly masterRole: string;
  readonly odooRole: string;
  /** A SCRAM-SHA-256 verifier or a secretRef() to one: no plaintext leaves SSM. */
  readonly odooPasswordVerifier: string;
  readonly odooConnectionLimit: number;
  readonly odooStatementTimeoutMs: number;
  readonly odooLockTimeoutMs: number;
  readonly odooIdleInTransactionSessionTimeoutMs: number;
  readonly migrateRole: string;
  readonly migrateConnectionLimit: number;
  readonly migrateTimeouts: MigrationTimeouts;
  readonly odooDatabases: readonly string[];
  readonly monitorRole: string;
  /** The collector's password, an {{ssm:...}} reference resolved by the apply script. */
  readonly monitorPassword: string;
  readonly monitorConnectionLimit: number;
}

/**
 * The RDS variant of the bootstrap (templates/postgresql.ts renderPostgresBootstrap), run by
 * the PgBouncer host's apply script as the master user: RDS's master is rds_superuser, not a
 * superuser, so it cannot state NOSUPERUSER/NOREPLICATION/NOBYPASSRLS (new roles have none of
 * them anyway) nor SET the superuser-only logging parameters; it must be a member of the Odoo
 * role to create databases owned by it. The monitor role is the metrics collector's, which runs
 * on the PgBouncer host for RDS (there is no database host): pg_monitor, as on EC2 (OBS-7, PG-4).
 */
export function renderRdsBootstrap(s: RdsBootstrapSettings): string {
  if (!isSecretRef(s.odooPasswordVerifier) && !parseScramVerifier(s.odooPasswordVerifier)) {
    throw new Error(
      "RDS bootstrap: the Odoo role's password must be a SCRAM-SHA-256 verifier or an {{ssm:...}} reference to one, never plaintext (DESIGN principle 5)",
    );
  }
  if (!isSecretRef(s.monitorPassword)) {
    throw new Error("RDS bootstrap: the monitor role's password must be an {{ssm:...}} reference, never a literal (DESIGN principle 5)");
  }
  for (const [name, n] of [
    ["odooConnectionLimit", s.odooConnectionLimit],
    ["migrateConnectionLimit", s.migrateConnectionLimit],
    ["monitorConnectionLimit", s.monitorConnectionLimit],
  ] as const) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`RDS bootstrap: ${name} must be a positive whole number, got ${n}`);
  }
  const odoo = sqlIdent(s.odooRole);
  const monitor = sqlIdent(s.monitorRole);
  const master = sqlIdent(s.masterRole);
  const databases = [...s.odooDatabases].sort();
  return lines(
    header("--"),
    `-- Run by the PgBouncer host's apply script against the RDS endpoint as ${s.masterRole}`,
    `-- (libpq service ${RDS_ADMIN_SERVICE}, verify-full with the RDS CA bundle).`,
    "\\set ON_ERROR_STOP on",
    "SET password_encryption = 'scram-sha-256';",
    "",
    "-- Odoo's role: CONNECTION LIMIT = PgBouncer's pools + reserves + `postgres` pool (PG-1); the",
    "-- password is PgBouncer's verifier itself, so SCRAM passes through PgBouncer (AUTH-1). Set",
    "-- when the role is created only: this file runs on the PgBouncer host in the same apply run",
    "-- that RELOADs PgBouncer, milliseconds later, and a new verifier must reach the database only",
    "-- once PgBouncer re-opened its server connections (AUTH-4: odoo-stack-rotate postgres waits).",
    gexecUnless(
      `CREATE ROLE ${odoo} PASSWORD ${sqlLiteral(s.odooPasswordVerifier)}`,
      `SELECT FROM pg_catalog.pg_roles WHERE rolname = ${sqlLiteral(s.odooRole)}`,
    ),
    `ALTER ROLE ${odoo} WITH LOGIN NOCREATEDB NOCREATEROLE INHERIT CONNECTION LIMIT ${s.odooConnectionLimit};`,
    "-- PG-2 per role: sent at every server login, so it holds through transaction pooling.",
    `ALTER ROLE ${odoo} SET statement_timeout = ${s.odooStatementTimeoutMs};`,
    `ALTER ROLE ${odoo} SET lock_timeout = ${s.odooLockTimeoutMs};`,
    `ALTER ROLE ${odoo} SET idle_in_transaction_session_timeout = ${s.odooIdleInTransactionSessionTimeoutMs};`,
    "",
    migrationRoleSql(s, "LOGIN NOCREATEDB NOCREATEROLE INHERIT", "at creation"),
    "",
    "-- The metrics collector on the PgBouncer host (OBS-7, PG-4): read-only statistics.",
    gexecUnless(`CREATE ROLE ${monitor}`, `SELECT FROM pg_catalog.pg_roles WHERE rolname = ${sqlLiteral(s.monitorRole)}`),
    `ALTER ROLE ${monitor} WITH LOGIN NOCREATEDB NOCREATEROLE INHERIT CONNECTION LIMIT ${s.monitorConnectionLimit};`,
    `ALTER ROLE ${monitor} WITH PASSWORD ${sqlLiteral(s.monitorPassword)};`,
    `GRANT pg_monitor TO ${monitor};`,
    "",
    "-- Maintenance and pg_dump run as the master user and must not be cut by the global default.",
    `ALTER ROLE ${master} SET statement_timeout = 0;`,
    "-- CREATE DATABASE … OWNER and ALTER DATABASE … OWNER TO need membership in the owner role.",
    `GRANT ${odoo} TO ${master};`,
    "",
    odooDatabasesSql(databases, s.odooRole),
  );
}

export function rdsBootstrapSettingsFor(model: StackModel): RdsBootstrapSettings {
  const pg = model.settings.sizing.postgres;
  return {
    masterRole: DB_ROLES.rdsMaster,
    odooRole: DB_ROLES.odoo,
    odooPasswordVerifier: secretRef(model.parameters.odooDbScramVerifier),
    odooConnectionLimit: odooRoleConnectionLimit(model.settings.sizing.pgbouncer),
    odooStatementTimeoutMs: pg.statementTimeoutMs,
    odooLockTimeoutMs: pg.lockTimeoutMs,
    odooIdleInTransactionSessionTimeoutMs: pg.idleInTransactionSessionTimeoutMs,
    migrateRole: DB_ROLES.migrate,
    migrateConnectionLimit: model.settings.sizing.pgbouncer.migrationConnections,
    migrateTimeouts: pg.migration,
    odooDatabases: model.settings.databases,
    monitorRole: DB_ROLES.monitor,
    monitorPassword: secretRef(model.parameters.monitorPassword),
    monitorConnectionLimit: POSTGRES_RESERVED.monitoring,
  };
}

// --- libpq service file ------------------------------------------------------------------------

export interface RdsServiceSettings {
  /** The libpq service name: RDS_ADMIN_SERVICE or RDS_MONITOR_SERVICE. */
  readonly service: string;
  /** The endpoint address, or a secretRef() to the parameter holding it (an Output at plan time). */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** A secretRef() to the role's password: never a literal. */
  readonly password: string;
  readonly sslRootCert: string;
}

// libpq service files have no escape function in format.ts: values are written only after they
// pass these patterns, so nothing needs quoting.
const SERVICE_VALUE = /^[A-Za-z0-9_.\-/]+$/;
const isServiceValue = (v: string): boolean => SERVICE_VALUE.test(v) || isSecretRef(v);

/**
 * A libpq service file (https://www.postgresql.org/docs/15/libpq-pgservice.html): the apply
 * script's psql connects through the master's, the metrics collector through the monitor's;
 * verify-full against the RDS CA bundle (TLS-1), the password resolved from SSM on the host,
 * the file 0600 root.
 */
export function renderRdsService(s: RdsServiceSettings): string {
  if (!isSecretRef(s.password))
    throw new Error("RDS service file: the password must be an {{ssm:...}} reference, never a literal (DESIGN principle 5)");
  const entries: [string, string | number][] = [
    ["host", s.host],
    ["port", s.port],
    ["dbname", "postgres"],
    ["user", s.user],
    ["password", s.password],
    ["sslmode", "verify-full"],
    ["sslrootcert", s.sslRootCert],
  ];
  for (const [k, v] of entries) {
    if (!isServiceValue(String(v)))
      throw new Error(
        `RDS service file: ${k} = ${JSON.stringify(v)} may hold only letters, digits and _ . - / (or be one {{ssm:...}} reference)`,
      );
  }
  if (!SERVICE_VALUE.test(s.service))
    throw new Error(`RDS service file: service name ${JSON.stringify(s.service)} may hold only letters, digits and _ . - /`);
  return lines(
    header("#"),
    `[${s.service}]`,
    entries.map(([k, v]) => `${k}=${v}`),
  );
}

export function rdsAdminServiceSettingsFor(model: StackModel): RdsServiceSettings {
  return {
    service: RDS_ADMIN_SERVICE,
    host: secretRef(model.parameters.rdsEndpoint),
    port: PORTS.postgres.port,
    user: DB_ROLES.rdsMaster,
    password: secretRef(model.parameters.rdsMasterPassword),
    sslRootCert: PATHS.rdsCaBundle,
  };
}

/** The collector's read-only connection: the monitor role, never the master. */
export function rdsMonitorServiceSettingsFor(model: StackModel): RdsServiceSettings {
  return {
    ...rdsAdminServiceSettingsFor(model),
    service: RDS_MONITOR_SERVICE,
    user: DB_ROLES.monitor,
    password: secretRef(model.parameters.monitorPassword),
  };
}

/** What the PgBouncer host receives besides its own files when PostgreSQL is RDS. */
export function rdsPgbouncerHostFiles(model: StackModel): HostFile[] {
  if (model.settings.postgresEngine !== "rds") return [];
  return [
    {
      path: PATHS.postgresBootstrapSql,
      content: renderRdsBootstrap(rdsBootstrapSettingsFor(model)),
      mode: "0600",
      owner: "root",
      group: "root",
    },
    {
      path: PATHS.rdsAdminServiceFile,
      content: renderRdsService(rdsAdminServiceSettingsFor(model)),
      mode: "0600",
      owner: "root",
      group: "root",
    },
    {
      path: PATHS.rdsMonitorServiceFile,
      content: renderRdsService(rdsMonitorServiceSettingsFor(model)),
      mode: "0600",
      owner: "root",
      group: "root",
    },
  ];
}
