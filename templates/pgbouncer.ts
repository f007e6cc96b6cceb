// PgBouncer 1.18 (Debian 12) on its own host: pgbouncer.ini, userlist.txt and the systemd
// drop-in that raises its file-descriptor limit. Two layers: plain `...Settings` data in, text
// out (what the loopback sandbox renders with its own ports and paths), and `...SettingsFor`
// deriving those settings from the stack model and the sizing (what production renders).
// Option names and semantics: pgbouncer.ini(5) as shipped in Debian's pgbouncer 1.18.0,
// https://www.pgbouncer.org/config.html
import { DB_ROLES, PATHS, secretRef, type StackModel } from "../lib/model";
import { PORTS } from "../lib/ports";
import { layer, type LayerTable } from "../lib/layering";
import { throwIfAny } from "../lib/problems";
import { parseScramVerifier } from "../lib/scram";
import { isSecretRef } from "../lib/secret-ref";
import { odooRoleConnectionLimit, type PgbouncerSizing } from "../lib/sizing";
import { renderSystemdDropIn } from "./systemd";
import {
  escapePgbouncerConnstrValue,
  escapePgbouncerIniValue,
  escapeUserlist,
  header,
  lines,
  sortedEntries,
  type HostFile,
} from "./format";

/**
 * Debian's pgbouncer.service runs `/usr/sbin/pgbouncer /etc/pgbouncer/pgbouncer.ini` as the
 * `postgres` user (Type=notify, no daemonising); these are the package's own runtime paths.
 * The log file sits where postgresql-common's logrotate (copytruncate) already rotates it.
 */
export const PGBOUNCER_DEBIAN = {
  serviceUser: "postgres",
  unixSocketDir: "/var/run/postgresql",
  pidFile: "/var/run/postgresql/pgbouncer.pid",
  logFile: "/var/log/postgresql/pgbouncer.log",
} as const;

/** Certificate and key PgBouncer presents to Odoo (TLS-1, TLS-3); the host's cert carries its FQDN. */
export const PGBOUNCER_TLS_FILES = {
  cert: `${PATHS.pgbouncerTlsDir}/pgbouncer.crt`,
  key: `${PATHS.pgbouncerTlsDir}/pgbouncer.key`,
} as const;

/**
 * Database `postgres`: Odoo's bus (gevent worker) and cron workers LISTEN there, and every bus
 * message, cron trigger, server start and (with a dbfilter) cookieless request opens a short
 * connection there (DESIGN principle 7; sizing.ts postgresPoolSize). A session pool.
 */
export const LISTEN_DATABASE = "postgres";

/**
 * TCP keepalive on every socket PgBouncer opens or accepts, clients and servers alike. The
 * defaults (tcp_keepalive = 1 with the kernel's 7200 s idle, 9 probes 75 s apart) kept a crashed
 * Odoo host's LISTEN sessions, and their `postgres` pool slots, for about two hours. Probes
 * start after 30 s of silence, 10 s apart, 3 unanswered close the socket; tcp_user_timeout gives
 * a socket with unacknowledged data (a notification sent to a dead LISTENer) the same bound,
 * which keepalive alone does not (the kernel retransmits for ~15 minutes first). The probes are
 * answered by the peer's kernel, so an idle but live LISTENer is never cut.
 * pgbouncer.ini(5), "tcp_keepalive" … "tcp_user_timeout" (1.18); tcp(7).
 */
export const PGBOUNCER_TCP_KEEPALIVE = {
  tcp_keepalive: 1,
  tcp_keepidle: 30,
  tcp_keepintvl: 10,
  tcp_keepcnt: 3,
} as const;

/** Seconds after which PgBouncer closes a socket whose peer is gone: idle + interval × count. */
export const PGBOUNCER_DEAD_PEER_SECONDS =
  PGBOUNCER_TCP_KEEPALIVE.tcp_keepidle + PGBOUNCER_TCP_KEEPALIVE.tcp_keepintvl * PGBOUNCER_TCP_KEEPALIVE.tcp_keepcnt;

export type PgbouncerValue = string | number;

/** Everything pgbouncer.ini depends on. Flat, so the sandbox can remap ports, addresses and paths. */
export interface PgbouncerSettings {
  readonly listenAddresses: readonly string[];
  readonly listenPort: number;
  readonly unixSocketDir: string;
  readonly pidFile: string;
  readonly logFile: string;
  readonly authFile: string;
  /** PostgreSQL as PgBouncer reaches it; must match the server certificate's SAN (verify-full). */
  readonly serverHost: string;
  readonly serverPort: number;
  /** CA that signed PostgreSQL's certificate (server side) and Odoo's, if ever presented. */
  readonly caFile: string;
  /** CA of PostgreSQL's certificate when another than caFile signs it (RDS). Optional. Defaults to caFile. */
  readonly serverCaFile?: string;
  readonly clientTlsCertFile: string;
  readonly clientTlsKeyFile: string;
  /** Odoo databases, each pooled per transaction (POOL-1). */
  readonly odooDatabases: readonly string[];
  readonly statsUsers: readonly string[];
  /** The migration role (DB_ROLES.migrate): its server connections are capped in [users]. */
  readonly migrationUser: string;
  readonly pools: PgbouncerSizing;
  /**
   * [pgbouncer] keys PGBOUNCER_INI lets an override set (only what something reaches: the
   * benchmark's application_name_add_host variant); any other key throws. Optional. Defaults to none.
   */
  readonly overrides?: Readonly<Record<string, PgbouncerValue>>;
}

const INI_KEY = /^[A-Za-z0-9_.*-]+$/;

function iniKey(key: string): string {
  if (!INI_KEY.test(key)) throw new Error(`pgbouncer.ini key ${JSON.stringify(key)} may hold only letters, digits and _ . - *`);
  return key;
}

const connstr = (params: Readonly<Record<string, string | number>>): string =>
  sortedEntries(params)
    .map(([k, v]) => `${iniKey(k)}=${escapePgbouncerConnstrValue(v)}`)
    .join(" ");

const iniLine = (key: string, value: PgbouncerValue): string => `${iniKey(key)} = ${escapePgbouncerIniValue(value)}`;

// --- pgbouncer.ini ---------------------------------------------------------------------------

/**
 * The [pgbouncer] keys, layered by lib/layering.ts: defaults from the settings and the sizing,
 * then the checklist's keys, written last (the policy pack checks deployed files for the same
 * values; tools/checklist.ts reads the IDs here as evidence). No stack setting reaches this
 * file: the one overridable key is the one tools/bench/pool.ts varies. Pool sizes come from the
 * sizing (pgbouncer.* config keys), whose invariants keep them coherent with max_connections.
 */
export const PGBOUNCER_INI: LayerTable<PgbouncerSettings, PgbouncerValue> = {
  overrideName: "a pgbouncer.ini override",
  allowedName: "an overridable PgBouncer setting (pool sizes come from the pgbouncer.* config keys)",
  keys: {
    listen_addr: { default: (s) => s.listenAddresses.join(",") },
    listen_port: { default: (s) => s.listenPort },
    unix_socket_dir: { default: (s) => s.unixSocketDir },
    pidfile: { default: (s) => s.pidFile },
    logfile: { default: (s) => s.logFile },
    // No admin_users: nobody logs in to the console with a password. Reloads (AUTH-4) use
    // SIGHUP (`systemctl reload pgbouncer`) or the console as user "pgbouncer" over the Unix
    // socket from the service's own OS user, which PgBouncer admits without a password.
    stats_users: { default: (s) => s.statsUsers.join(","), checklist: ["OBS-1", "OBS-2"] }, // SHOW POOLS / SHOW STATS only
    default_pool_size: { default: (s) => s.pools.defaultPoolSize, checklist: ["POOL-2"] },
    reserve_pool_size: { default: (s) => s.pools.reservePoolSize, checklist: ["POOL-3"] },
    reserve_pool_timeout: { default: (s) => s.pools.reservePoolTimeoutSeconds }, // POOL-3
    max_client_conn: { default: (s) => s.pools.maxClientConn, checklist: ["POOL-4"] },
    max_db_connections: { default: (s) => s.pools.maxDbConnections, checklist: ["POOL-5"] },
    max_user_connections: { default: (s) => odooRoleConnectionLimit(s.pools), checklist: ["POOL-5"] }, // and PG-1
    server_tls_ca_file: { default: (s) => s.serverCaFile ?? s.caFile },
    client_tls_cert_file: { default: (s) => s.clientTlsCertFile },
    client_tls_key_file: { default: (s) => s.clientTlsKeyFile },
    client_tls_ca_file: { default: (s) => s.caFile },
    // "secure" = TLS 1.2 and 1.3 (the 1.18 default), written out so the file says it.
    client_tls_protocols: { default: "secure" },
    server_tls_protocols: { default: "secure" },
    // Run only for session pools (the LISTEN pool): DISCARD ALL also drops LISTEN
    // registrations, so the next client does not receive another's notifications.
    server_reset_query: { default: "DISCARD ALL" },
    server_reset_query_always: { default: 0 },
    // psycopg2 sends no untracked startup parameter; JDBC and lib/pq-based exporters send
    // extra_float_digits, which would otherwise fail their login.
    ignore_startup_parameters: { default: "extra_float_digits" },
    // A client queued longer than this is disconnected with an error the pooler logs
    // (OBS-3) instead of hanging; 120 s is PgBouncer's default, stated here on purpose.
    query_wait_timeout: { default: 120 },
    server_idle_timeout: { default: 600 },
    server_lifetime: { default: 3600 },
    // Source host:port in application_name: pg_stat_activity shows which Odoo host sent a
    // long transaction (OBS-7). Its price: in transaction pooling PgBouncer sends
    // SET application_name whenever a server connection goes to a client with another name,
    // which Odoo's processes (odoo-<pid>) already have, and Odoo's own DISCARD ALL at every
    // cursor (odoo/sql_db.py L675) resets the name on the server anyway, so the SET is paid
    // whatever this says. One ODOO_PGAPPNAME per host (with this at 0) was measured on the
    // Odoo traffic model and not adopted: 0.98× the requests/s of this setting, medians of 5
    // interleaved rounds at 500 processes (issue 15; tools/bench/pool.ts measures it too).
    application_name_add_host: { default: 1, overridable: true },
    ...Object.fromEntries(Object.entries(PGBOUNCER_TCP_KEEPALIVE).map(([key, value]) => [key, { default: value }])),
    tcp_user_timeout: { default: PGBOUNCER_DEAD_PEER_SECONDS * 1000 },

    // --- checklist: written last, so that nothing above can change them -------------------
    // Odoo web traffic pools per transaction; only `postgres` overrides it, per database.
    pool_mode: { forced: "transaction", checklist: ["POOL-1"], rule: "must be transaction: Odoo web traffic pools per transaction" },
    // Verifiers only, and the prerequisite for SCRAM pass-through to PostgreSQL.
    auth_type: { forced: "scram-sha-256", checklist: ["AUTH-1"], rule: "must be scram-sha-256: verifiers only, never md5 or plain" },
    // AUTH-3 applies to auth_user/auth_query; the auth_file of verifiers is the construction
    // that leaves no lookup role or function to get wrong.
    auth_file: {
      forced: (s) => s.authFile,
      checklist: ["AUTH-2", "AUTH-3"],
      rule: "must be the userlist of SCRAM verifiers, mode 0600; no auth_user or auth_query",
    },
    client_tls_sslmode: {
      forced: "require",
      checklist: ["TLS-1"],
      rule: "must be require: Odoo speaks TLS to PgBouncer; plain TCP clients are rejected",
    },
    server_tls_sslmode: {
      forced: "verify-full",
      checklist: ["TLS-1", "TLS-2"],
      rule: "must be verify-full: PgBouncer verifies PostgreSQL's certificate and its hostname",
    },
    log_connections: { forced: 1, checklist: ["OBS-3"], rule: "must be 1: connections are logged" },
    log_disconnections: { forced: 1, checklist: ["OBS-3"], rule: "must be 1: disconnections are logged" },
    log_pooler_errors: { forced: 1, checklist: ["OBS-3"], rule: "must be 1: the pooler's errors are logged" },
  },
};

/** pgbouncer.ini. Throws on an override PGBOUNCER_INI refuses, no Odoo database, or an Odoo database named like the LISTEN pool. */
export function renderPgbouncerIni(s: PgbouncerSettings): string {
  const { main, fixed, problems } = layer(PGBOUNCER_INI, s, s.overrides);
  throwIfAny("pgbouncer.ini overrides rejected", problems);
  if (s.odooDatabases.length === 0) throw new Error("pgbouncer.ini needs at least one Odoo database");
  if (s.odooDatabases.includes(LISTEN_DATABASE)) {
    throw new Error(`"${LISTEN_DATABASE}" is the LISTEN session pool and cannot also be an Odoo database`);
  }
  const p = s.pools;
  const server = { host: s.serverHost, port: s.serverPort };

  // No "*" fallback entry: only the databases named here are reachable through PgBouncer.
  const databases: Record<string, string> = {};
  for (const db of s.odooDatabases) {
    databases[db] = connstr({
      ...server,
      dbname: db,
      pool_mode: "transaction", // POOL-1
      pool_size: p.defaultPoolSize, // POOL-2
      max_db_connections: p.maxDbConnections, // POOL-5
    });
  }
  // LISTEN needs the same server session for the client's lifetime, which transaction pooling
  // cannot give: the one, narrow exception to POOL-1. Sized for every Odoo process that can hold
  // a `postgres` session at once, LISTENers and short-lived ones (sizing.postgresPoolSize), with
  // a reserve for a host whose old sessions are not freed yet (sizing.postgresReservePoolSize);
  // max_connections counts both.
  databases[LISTEN_DATABASE] = connstr({
    ...server,
    dbname: LISTEN_DATABASE,
    pool_mode: "session",
    pool_size: p.postgresPoolSize,
    reserve_pool: p.postgresReservePoolSize,
    max_db_connections: p.postgresPoolSize + p.postgresReservePoolSize,
  });

  // One `odoo -u` at a time: its role queues in PgBouncer instead of being refused by
  // PostgreSQL's CONNECTION LIMIT (PG-1: sizing.MIGRATION_CONNECTIONS).
  const users: Record<string, string> = {
    [s.migrationUser]: connstr({ max_user_connections: p.migrationConnections }),
  };

  return lines(
    header(";"),
    "; Odoo databases pool per transaction (POOL-1); `postgres` is the session pool for Odoo's",
    "; LISTENers and its short-lived `postgres` connections (DESIGN principle 7). Reload with",
    "; SIGHUP: `systemctl reload pgbouncer`.",
    "",
    "[databases]",
    sortedEntries(databases).flatMap(([name, value]) => [
      ...(name === LISTEN_DATABASE
        ? [
            "; session mode: a LISTEN needs its server session for the client's lifetime; sized for every",
            "; LISTENer and every NOTIFY / database list / server start at once, plus a reserve (DESIGN principle 7)",
          ]
        : []),
      iniLine(name, value),
    ]),
    "",
    "[users]",
    sortedEntries(users).map(([name, value]) => iniLine(name, value)),
    "",
    "[pgbouncer]",
    sortedEntries(main).map(([k, v]) => iniLine(k, v)),
    "; checklist keys, last so that nothing above can change them",
    "; AUTH-3: no auth_user/auth_query: the auth_file holds SCRAM verifiers byte-identical to",
    "; PostgreSQL's, so no lookup role or function exists to be abused (AUTH-1, AUTH-2).",
    sortedEntries(fixed).map(([k, v]) => iniLine(k, v)),
  );
}

export function pgbouncerSettingsFor(model: StackModel): PgbouncerSettings {
  const rds = model.settings.postgresEngine === "rds";
  return {
    // The private address for Odoo (NET-5); loopback for the metrics collector on this host.
    listenAddresses: [model.hosts.pgbouncer.privateIp, "127.0.0.1"],
    listenPort: PORTS.pgbouncer.port,
    unixSocketDir: PGBOUNCER_DEBIAN.unixSocketDir,
    pidFile: PGBOUNCER_DEBIAN.pidFile,
    logFile: PGBOUNCER_DEBIAN.logFile,
    authFile: PATHS.pgbouncerUserlist,
    // RDS (issue 8): the endpoint address exists only once RDS created the instance, so the file
    // names the SSM parameter holding it, resolved on the host like a secret; verify-full then
    // checks the endpoint's certificate against RDS's regional CA bundle (TLS-1).
    serverHost: rds ? secretRef(model.parameters.rdsEndpoint) : model.hosts.postgres.fqdn,
    serverPort: PORTS.postgres.port,
    caFile: PATHS.caCert,
    ...(rds ? { serverCaFile: PATHS.rdsCaBundle } : {}),
    clientTlsCertFile: PGBOUNCER_TLS_FILES.cert,
    clientTlsKeyFile: PGBOUNCER_TLS_FILES.key,
    odooDatabases: model.settings.databases,
    statsUsers: [DB_ROLES.stats],
    migrationUser: DB_ROLES.migrate,
    pools: model.settings.sizing.pgbouncer,
  };
}

// --- userlist.txt ----------------------------------------------------------------------------

export interface PgbouncerUserlistEntry {
  readonly user: string;
  /** A SCRAM-SHA-256 verifier, or a secretRef() to one. Nothing else (AUTH-1). */
  readonly secret: string;
}

export interface PgbouncerUserlistSettings {
  readonly entries: readonly PgbouncerUserlistEntry[];
}

/**
 * userlist.txt (auth_file). PgBouncer's parser (loader.c load_auth_file) skips lines that
 * start with ';' and stops at the first line that starts with anything but '"' — so a '#'
 * comment would silently drop every user after it.
 */
export function renderPgbouncerUserlist(s: PgbouncerUserlistSettings): string {
  const seen = new Set<string>();
  for (const { user, secret } of s.entries) {
    if (seen.has(user)) throw new Error(`userlist.txt lists ${user} twice`);
    seen.add(user);
    if (!isSecretRef(secret) && !parseScramVerifier(secret)) {
      throw new Error(
        `userlist.txt entry for ${user} must be a SCRAM-SHA-256 verifier or an {{ssm:...}} reference to one (AUTH-1); plaintext and md5 are refused`,
      );
    }
  }
  const sorted = [...s.entries].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
  return lines(
    header(";"),
    "; SCRAM verifiers identical to PostgreSQL's (same salt and iterations) for SCRAM pass-through.",
    "; Mode 0600 (AUTH-2). After a change: `systemctl reload pgbouncer` (AUTH-4).",
    sorted.map(({ user, secret }) => `${escapeUserlist(user)} ${escapeUserlist(secret)}`),
  );
}

export function pgbouncerUserlistSettingsFor(model: StackModel): PgbouncerUserlistSettings {
  return {
    entries: [
      { user: DB_ROLES.odoo, secret: secretRef(model.parameters.odooDbScramVerifier) },
      // The migration role logs in with the Odoo role's password (lib/model.ts DB_ROLES.migrate).
      { user: DB_ROLES.migrate, secret: secretRef(model.parameters.odooDbScramVerifier) },
      { user: DB_ROLES.stats, secret: secretRef(model.parameters.statsScramVerifier) },
    ],
  };
}

// --- systemd drop-in -------------------------------------------------------------------------

export interface PgbouncerSystemdSettings {
  readonly limitNofile: number;
}

/** Drop-in for Debian's pgbouncer.service: the fd limit sized for clients + servers (OBS-8). */
export function renderPgbouncerSystemdDropIn(s: PgbouncerSystemdSettings): string {
  if (!Number.isInteger(s.limitNofile) || s.limitNofile < 1024) {
    throw new Error(`LimitNOFILE must be a whole number of at least 1024, got ${s.limitNofile}`);
  }
  return renderSystemdDropIn({ Service: { LimitNOFILE: s.limitNofile } });
}

export function pgbouncerSystemdSettingsFor(model: StackModel): PgbouncerSystemdSettings {
  return { limitNofile: model.settings.sizing.pgbouncer.limitNofile };
}

// --- files for the host ----------------------------------------------------------------------

/** The PgBouncer host's files with their modes and owners (pgbouncer runs as postgres). */
export function pgbouncerHostFiles(model: StackModel): HostFile[] {
  const user = PGBOUNCER_DEBIAN.serviceUser;
  return [
    { path: PATHS.pgbouncerIni, content: renderPgbouncerIni(pgbouncerSettingsFor(model)), mode: "0640", owner: user, group: user },
    {
      path: PATHS.pgbouncerUserlist,
      content: renderPgbouncerUserlist(pgbouncerUserlistSettingsFor(model)),
      mode: "0600",
      owner: user,
      group: user,
    },
    {
      path: PATHS.pgbouncerLimits,
      content: renderPgbouncerSystemdDropIn(pgbouncerSystemdSettingsFor(model)),
      mode: "0644",
      owner: "root",
      group: "root",
    },
  ];
}
