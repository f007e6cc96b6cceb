// odoo.conf: the `[options]` section Odoo reads with RawConfigParser (odoo/tools/config.py).
// Two layers: odooConfSettingsFor() derives plain settings from the stack model (the loopback
// sandbox builds its own), renderOdooConf() turns settings into text. Keys are layered
// defaults → user extra options (allowlisted) → forced keys, written last and sorted.
import type { OdooVersion } from "../lib/config";
import { DB_ROLES, PATHS, secretRef, type HostId, type StackModel } from "../lib/model";
import { isSecretRef } from "../lib/secret-ref";
import { PORTS } from "../lib/ports";
import { layer, type LayerTable } from "../lib/layering";
import { throwIfAny } from "../lib/problems";
import { escapeOdooConf, header, lines, sortedEntries, type HostFile } from "./format";

/** The Unix account Odoo's Debian package creates and runs as; it owns the log and data dirs. */
export const ODOO_SYSTEM_USER = "odoo";

export type OdooOptionValue = string | number | boolean;

/** Every value odoo.conf needs for one Odoo host. */
export interface OdooConfSettings {
  readonly odooVersion: OdooVersion;
  /** Address the HTTP workers and the gevent worker bind: a private address, never 0.0.0.0 (NET-1). */
  readonly httpInterface: string;
  readonly httpPort: number;
  readonly geventPort: number;
  /** PgBouncer's DNS name: verify-full checks the certificate against it (TLS-2, TLS-3). */
  readonly dbHost: string;
  readonly dbPort: number;
  readonly dbUser: string;
  /** A secretRef() placeholder, resolved on the host at apply time. */
  readonly dbPassword: string;
  /** The databases this deployment serves; written as db_name (comma-separated). */
  readonly dbNames: readonly string[];
  /**
   * Optional; required with several databases. Absent with one: db_name alone restricts Odoo to
   * it without a lookup (ODOO-3, see DBFILTER below).
   */
  readonly dbfilter?: string;
  readonly dbMaxconn: number;
  /** The gevent worker's pool (written for Odoo 17.0 and later, which read db_maxconn_gevent). */
  readonly dbMaxconnGevent: number;
  /** A secretRef() placeholder (ODOO-1). */
  readonly adminPasswd: string;
  readonly coreAddonsPath: string;
  readonly customAddonsPath: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly workers: number;
  readonly maxCronThreads: number;
  readonly limitMemorySoftBytes: number;
  readonly limitMemoryHardBytes: number;
  readonly limitTimeCpu: number;
  readonly limitTimeReal: number;
  readonly limitTimeRealCron: number;
  readonly limitRequest: number;
  /**
   * The internal CA that signs PgBouncer's certificate. Not an odoo.conf key (see
   * odooServiceEnvironment): libpq reads it from PGSSLROOTCERT.
   */
  readonly caCertPath: string;
  /** Options the user may tune; checked against ODOO_USER_OPTIONS for the version. */
  readonly extraOptions: Readonly<Record<string, OdooOptionValue>>;
  /**
   * Outbound mail (settings.mail): written as odoo.conf's smtp_* keys, STARTTLS forced.
   * Optional. Defaults to none: Odoo's own defaults (localhost:25), which the egress rules block.
   */
  readonly mail?: {
    readonly server: string;
    readonly port: number;
    readonly user: string;
    /** A secretRef() placeholder, resolved on the host at apply time. */
    readonly password: string;
    readonly from?: string;
  };
}

/** The SSM parameter holding the SMTP password: the operator's, or the one the stack generates. */
export const mailPasswordParameter = (model: StackModel): string | undefined =>
  model.settings.mail === undefined ? undefined : (model.settings.mail.passwordParameter ?? model.parameters.mailPassword);

/**
 * Options a user may set per Odoo version, checked against odoo/tools/config.py of 16.0,
 * 17.0 and 18.0. Everything else is either forced, owned by sizing (workers, limits,
 * db_maxconn: set them as odoo.* in the stack config so the invariants are checked), or not
 * meant for a production file.
 */
const USER_OPTIONS_EVERY_VERSION = [
  "csv_internal_sep",
  "email_from",
  "from_filter",
  "log_handler",
  "log_level",
  "osv_memory_count_limit",
  "server_wide_modules",
  "smtp_password",
  "smtp_port",
  "smtp_server",
  "smtp_ssl",
  "smtp_ssl_certificate_filename",
  "smtp_ssl_private_key_filename",
  "smtp_user",
  "transient_age_limit",
  "unaccent",
  "websocket_keep_alive_timeout",
  "websocket_rate_limit_burst",
  "websocket_rate_limit_delay",
] as const;

export const ODOO_USER_OPTIONS: Readonly<Record<OdooVersion, readonly string[]>> = {
  "16.0": [...USER_OPTIONS_EVERY_VERSION, "geoip_database"].sort(),
  // 17.0 renamed geoip_database to geoip_city_db and added a country database.
  "17.0": [...USER_OPTIONS_EVERY_VERSION, "geoip_city_db", "geoip_country_db"].sort(),
  "18.0": [...USER_OPTIONS_EVERY_VERSION, "geoip_city_db", "geoip_country_db"].sort(),
};

/** Odoo's --log-level choices (odoo/tools/config.py). */
const LOG_LEVELS = ["info", "debug_rpc", "warn", "test", "critical", "runbot", "debug_sql", "error", "debug", "debug_rpc_answer", "notset"];

/** Keys sizing owns, and the stack-config key that sets each. */
const SIZING_KEYS: Readonly<Record<string, string>> = {
  db_maxconn: "odoo.dbMaxconn",
  db_maxconn_gevent: "odoo.dbMaxconnGevent",
  limit_memory_hard: "odoo.limitMemoryHardMiB",
  limit_memory_hard_gevent: "odoo.limitMemoryHardMiB",
  limit_memory_soft: "odoo.limitMemorySoftMiB",
  limit_memory_soft_gevent: "odoo.limitMemorySoftMiB",
  limit_request: "odoo.limitRequest",
  limit_time_cpu: "odoo.limitTimeCpu",
  limit_time_real: "odoo.limitTimeReal",
  limit_time_real_cron: "odoo.limitTimeRealCron",
  max_cron_threads: "odoo.maxCronThreads",
  workers: "odoo.workers",
};

/** Every option any supported version lets a user set (ODOO_USER_OPTIONS), once. */
const USER_OPTIONS_ANY_VERSION = [...new Set(Object.values(ODOO_USER_OPTIONS).flat())].sort();

/** Mail keys: with settings.mail they come from it, whatever odooOptions says. */
const isMailKey = (key: string): boolean => key.startsWith("smtp_") || key === "email_from";

/**
 * odoo.conf's keys, layered by lib/layering.ts: defaults a user option may replace, the
 * allowlisted options (per version), the checklist's keys (forced, with their ID and rule: the
 * tests and tools/checklist.ts read them here) and the keys derived from the model (owned).
 */
export const ODOO_CONF: LayerTable<OdooConfSettings, OdooOptionValue> = {
  overrideName: "an extra option",
  allowedName: (s) => `an Odoo ${s.odooVersion} option odoo-stack lets you set`,
  setElsewhere: (key, s) =>
    key in SIZING_KEYS
      ? `comes from sizing; set ${SIZING_KEYS[key]} in the stack config so its invariants are checked (LIMIT-1..3, POOL-4)`
      : s.mail !== undefined && isMailKey(key)
        ? "is set by the stack's mail setting (mail.host, mail.port, mail.user, mail.passwordParameter, mail.from); set it there"
        : undefined,
  checkValue: (key, value) => (typeof value === "string" && /[\r\n\0]/.test(value) ? `${key}: must be a single line` : undefined),
  keys: {
    ...Object.fromEntries(
      USER_OPTIONS_ANY_VERSION.map((key) => [
        key,
        { overridable: (s: OdooConfSettings) => ODOO_USER_OPTIONS[s.odooVersion].includes(key) },
      ]),
    ),
    log_level: {
      overridable: true,
      default: "info",
      check: (value) =>
        LOG_LEVELS.includes(String(value)) ? undefined : `log_level = ${JSON.stringify(value)}: must be one of ${LOG_LEVELS.join(", ")}`,
    },
    // Odoo's default; `bus` is an ordinary module in 16.0+ and needs no server-wide load.
    server_wide_modules: { overridable: true, default: "base,web" },

    // --- checklist -----------------------------------------------------------------------
    proxy_mode: {
      forced: true,
      checklist: ["PROXY-4"],
      rule: "must be True: Odoo sits behind nginx and must trust its X-Forwarded-* headers",
    },
    list_db: { forced: false, checklist: ["ODOO-2"], rule: "must be False: no database listing or manager" },
    // Crons run for each name here instead of every database the role can see on the server
    // (PgBouncer knows only these), and the web exposes only these (ODOO-3).
    db_name: { forced: (s) => s.dbNames.join(","), checklist: ["ODOO-3"], rule: "must name exactly the stack's databases" },
    // ODOO-3. With one database there is none: Odoo 17 then answers list_dbs with db_name and
    // never connects (odoo/service/db.py list_dbs L432-437), and db_filter serves only db_name's
    // databases (odoo/http.py db_filter L375-379). With a filter, every request whose session
    // names no database (first visits, health checks) opens a new connection to database
    // `postgres` (db.py L441, http.py L1608): measured, 1,347 for 1,366 cookieless requests, and
    // 63 instead of 142 requests/s.
    dbfilter: {
      forced: (s) => s.dbfilter,
      checklist: ["ODOO-3"],
      rule: "must restrict the databases (not empty, not .*); with one database it is left out and db_name alone restricts Odoo to it",
    },
    admin_passwd: {
      forced: (s) => s.adminPasswd,
      checklist: ["ODOO-1"],
      rule: "must be a secret placeholder resolved from SSM, never a literal",
    },
    // Core and custom addons in separate directories, so an upgrade replaces one and keeps the other (ODOO-4).
    addons_path: {
      forced: (s) => `${s.coreAddonsPath},${s.customAddonsPath}`,
      checklist: ["ODOO-4"],
      rule: "must list the core and the custom addons directories separately",
    },
    // Odoo opens it with a WatchedFileHandler on POSIX, which reopens the file once logrotate
    // has renamed it: rotation needs no signal and no copytruncate (ODOO-5, templates/logrotate.ts).
    logfile: { forced: (s) => s.logFile, checklist: ["ODOO-5"], rule: "must be set; the file is rotated by logrotate" },
    http_interface: {
      forced: (s) => s.httpInterface,
      checklist: ["NET-1"],
      rule: "must be the host's private address, never empty or 0.0.0.0",
    },
    http_port: { forced: (s) => s.httpPort, checklist: ["PROXY-1"], rule: "must be the port nginx's upstream odoo targets" },
    // gevent_port is the name from 16.0 on (16.0 and 17.0 keep longpolling_port only as a
    // deprecated alias; 18.0 dropped it).
    gevent_port: { forced: (s) => s.geventPort, checklist: ["PROXY-2"], rule: "must be the port nginx's upstream odoochat targets" },
    workers: { forced: (s) => s.workers, checklist: ["LIMIT-1"], rule: "must come from sizing (vCPU and RAM), at least 2" },
    max_cron_threads: { forced: (s) => s.maxCronThreads, checklist: ["LIMIT-2"], rule: "must be 1–2 on the cron host and 0 elsewhere" },
    limit_memory_soft: { forced: (s) => s.limitMemorySoftBytes, checklist: ["LIMIT-3"], rule: "must be set, in bytes" },
    limit_memory_hard: { forced: (s) => s.limitMemoryHardBytes, checklist: ["LIMIT-3"], rule: "must be set, in bytes" },
    limit_time_cpu: { forced: (s) => s.limitTimeCpu, checklist: ["LIMIT-3"], rule: "must be set, in seconds" },
    limit_time_real: { forced: (s) => s.limitTimeReal, checklist: ["LIMIT-3"], rule: "must be set, in seconds" },
    db_host: {
      forced: (s) => s.dbHost,
      checklist: ["NET-5", "TLS-2"],
      rule: "must be PgBouncer's DNS name, the name its certificate carries",
    },
    db_port: { forced: (s) => s.dbPort, checklist: ["NET-5"], rule: "must be PgBouncer's port: Odoo never talks to PostgreSQL directly" },
    db_sslmode: { forced: "verify-full", checklist: ["TLS-2"], rule: "must be verify-full" },

    // --- derived from the model ------------------------------------------------------------
    db_user: { owned: (s) => s.dbUser },
    db_password: { owned: (s) => s.dbPassword },
    // Per process; PgBouncer's max_client_conn is sized from it (POOL-4).
    db_maxconn: { owned: (s) => s.dbMaxconn },
    // The gevent worker serves every WebSocket of the host; without its own value it inherits
    // db_maxconn (odoo/sql_db.py L819-821) and fails WebSocket messages with "The Connection Pool
    // Is Full" under reconnect storms. Odoo 16.0 has no such option (its gevent worker uses db_maxconn).
    db_maxconn_gevent: { owned: (s) => (s.odooVersion === "16.0" ? undefined : s.dbMaxconnGevent) },
    limit_time_real_cron: { owned: (s) => s.limitTimeRealCron },
    limit_request: { owned: (s) => s.limitRequest },
    data_dir: { owned: (s) => s.dataDir },
    // Demo data ships well-known logins; never on a production database.
    without_demo: { owned: "all" },
    // Outbound mail (issue 12 item 5): STARTTLS always (Odoo's smtp_ssl means STARTTLS), so the
    // credentials never cross the network in clear. Without settings.mail these are ordinary
    // user options (allowlisted above).
    smtp_server: { overridable: true, owned: (s) => s.mail?.server },
    smtp_port: { overridable: true, owned: (s) => s.mail?.port },
    smtp_user: { overridable: true, owned: (s) => s.mail?.user },
    smtp_password: {
      overridable: true,
      owned: (s) => s.mail?.password,
      // A secret: a user passes a secretRef(), never the value.
      check: (value) =>
        typeof value === "string" && isSecretRef(value)
          ? undefined
          : "smtp_password: is a secret; pass a secretRef() placeholder of an SSM parameter, never the value",
    },
    smtp_ssl: { overridable: true, owned: (s) => (s.mail === undefined ? undefined : true) },
    email_from: { overridable: true, owned: (s) => s.mail?.from },
  },
};

/** The custom addons' requirements of the current release (templates/odoo-release.ts ODOO_RELEASE_PATHS.python). */
export const ODOO_RELEASE_PYTHONPATH = "/opt/odoo/current/python";

/**
 * Environment the Odoo systemd unit must set. odoo.conf has no CA-file key in every supported
 * version (db_sslrootcert is in a 17.0 source we read, not in 16.0 nor in an 18.0 one), so
 * the CA reaches libpq through PGSSLROOTCERT, read whenever a connection names no sslrootcert:
 * https://www.postgresql.org/docs/15/libpq-envars.html. One mechanism for every version;
 * without it verify-full looks for ~/.postgresql/root.crt and every connection fails.
 */
export function odooServiceEnvironment(settings: Pick<OdooConfSettings, "caCertPath">): Readonly<Record<string, string>> {
  // PYTHONPATH: the custom addons' Python requirements, installed per release by
  // odoo-stack-odoo-release (pip --target; Debian 12's system Python is PEP 668, issue 12 item 7).
  return { PGSSLROOTCERT: settings.caCertPath, PYTHONPATH: ODOO_RELEASE_PYTHONPATH };
}

/**
 * The module update (`odoo -u`) of one database, run on an Odoo host with Odoo stopped, as the
 * migration role (DB_ROLES.migrate): it logs in with odoo.conf's password and gets the
 * migration timeouts from its role (lib/sizing.ts migrationTimeouts, templates/postgresql.ts
 * migrationRoleSql), which PgBouncer and Odoo's own DISCARD ALL leave in force. The service's
 * environment (PGSSLROOTCERT) is not a sudo shell's, so it is given here too.
 */
export function odooMigrationCommand(model: StackModel, host: HostId, database: string, modules = "all"): string {
  const env = Object.entries(odooServiceEnvironment(odooConfSettingsFor(model, host))).map(([k, v]) => `${k}=${v}`);
  return [
    `sudo -u ${ODOO_SYSTEM_USER} env`,
    ...env,
    `odoo -c ${PATHS.odooConf} --db_user ${DB_ROLES.migrate} -d ${database} -u ${modules} --stop-after-init --no-http`,
  ].join(" ");
}

/** Settings for `host` (an Odoo host) from the stack model and its sizing. */
export function odooConfSettingsFor(
  model: StackModel,
  host: HostId,
  extraOptions: Readonly<Record<string, OdooOptionValue>> = {},
): OdooConfSettings {
  if (host.role !== "odoo") throw new Error(`odoo.conf is rendered for Odoo hosts only; ${host.id} is a ${host.role} host`);
  const sizing = model.settings.sizing.odoo;
  return {
    odooVersion: model.settings.odooVersion,
    httpInterface: host.privateIp,
    httpPort: PORTS.odooHttp.port,
    geventPort: PORTS.odooGevent.port,
    dbHost: model.hosts.pgbouncer.fqdn,
    dbPort: PORTS.pgbouncer.port,
    dbUser: DB_ROLES.odoo,
    dbPassword: secretRef(model.parameters.odooDbPassword),
    dbNames: model.settings.databases,
    ...(model.settings.dbfilter !== undefined ? { dbfilter: model.settings.dbfilter } : {}),
    dbMaxconn: sizing.dbMaxconn,
    dbMaxconnGevent: sizing.dbMaxconnGevent,
    adminPasswd: secretRef(model.parameters.odooAdminPassword),
    coreAddonsPath: PATHS.odooCoreAddons,
    customAddonsPath: PATHS.odooCustomAddons,
    dataDir: PATHS.odooDataDir,
    logFile: PATHS.odooLogFile,
    workers: sizing.workers,
    // One host runs crons; the others must not, or every cron would run N times at once (LIMIT-2).
    maxCronThreads: host.runsCron ? sizing.maxCronThreads : 0,
    limitMemorySoftBytes: sizing.limitMemorySoftBytes,
    limitMemoryHardBytes: sizing.limitMemoryHardBytes,
    limitTimeCpu: sizing.limitTimeCpu,
    limitTimeReal: sizing.limitTimeReal,
    limitTimeRealCron: sizing.limitTimeRealCron,
    limitRequest: sizing.limitRequest,
    caCertPath: PATHS.caCert,
    extraOptions,
    ...(model.settings.mail === undefined
      ? {}
      : {
          mail: {
            server: model.settings.mail.host,
            port: model.settings.mail.port,
            user: model.settings.mail.user,
            password: secretRef(mailPasswordParameter(model) as string),
            ...(model.settings.mail.from === undefined ? {} : { from: model.settings.mail.from }),
          },
        }),
  };
}

const isWildcardInterface = (address: string): boolean => ["", "0.0.0.0", "::", "[::]", "*"].includes(address.trim());

/** Every problem with the settings, each naming the key and the fix. */
export function checkOdooConfSettings(s: OdooConfSettings): string[] {
  const problems: string[] = [];
  if (isWildcardInterface(s.httpInterface)) {
    problems.push(
      `http_interface = ${JSON.stringify(s.httpInterface)}: must be the host's private address so Odoo is never reachable from outside (NET-1)`,
    );
  }
  if (s.dbfilter !== undefined && (s.dbfilter.trim() === "" || s.dbfilter === ".*" || s.dbfilter === "^.*$")) {
    problems.push(`dbfilter = ${JSON.stringify(s.dbfilter)}: must restrict the databases, e.g. ^%d$ or ^mydb$ (ODOO-3)`);
  }
  if (s.dbfilter === undefined && s.dbNames.length > 1) {
    problems.push(
      `dbfilter: must be set with several databases (${s.dbNames.join(", ")}), e.g. ^%d$: db_name lists them, but only a filter picks one per request (ODOO-3)`,
    );
  }
  if (s.dbNames.length === 0) problems.push("db_name: at least one database must be served");
  const secrets: [string, string][] = [
    ["admin_passwd", s.adminPasswd],
    ["db_password", s.dbPassword],
    ...(s.mail ? ([["smtp_password", s.mail.password]] as [string, string][]) : []),
  ];
  for (const [key, value] of secrets) {
    if (!isSecretRef(value))
      problems.push(`${key}: must be a secretRef() placeholder resolved from SSM on the host, never a literal (ODOO-1)`);
  }
  const counts: [string, number, number][] = [
    ["http_port", s.httpPort, 1],
    ["gevent_port", s.geventPort, 1],
    ["db_port", s.dbPort, 1],
    ["db_maxconn", s.dbMaxconn, 2],
    ["db_maxconn_gevent", s.dbMaxconnGevent, 2],
    ["workers", s.workers, 2],
    ["max_cron_threads", s.maxCronThreads, 0],
    ["limit_memory_soft", s.limitMemorySoftBytes, 1],
    ["limit_memory_hard", s.limitMemoryHardBytes, 1],
    ["limit_time_cpu", s.limitTimeCpu, 1],
    ["limit_time_real", s.limitTimeReal, 1],
    ["limit_time_real_cron", s.limitTimeRealCron, 1],
    ["limit_request", s.limitRequest, 1],
  ];
  for (const [key, value, min] of counts) {
    if (!Number.isInteger(value) || value < min) problems.push(`${key} = ${value}: must be a whole number ≥ ${min}`);
  }
  if (s.httpPort === s.geventPort) problems.push(`gevent_port = ${s.geventPort}: must differ from http_port`);

  problems.push(...layer(ODOO_CONF, s, s.extraOptions).problems);
  return problems;
}

/**
 * The layering in one place (lib/layering.ts): defaults, then user options, then forced and
 * owned keys, so a forced key always has the last word even if a caller bypasses
 * checkOdooConfSettings (a refused option is left out).
 */
export function odooConfOptions(s: OdooConfSettings): Record<string, OdooOptionValue> {
  return { ...layer(ODOO_CONF, s, s.extraOptions).values };
}

/** odoo.conf text. Throws listing every problem when the settings break a rule. */
export function renderOdooConf(s: OdooConfSettings): string {
  const problems = checkOdooConfSettings(s);
  throwIfAny("odoo.conf", problems);
  return lines(
    header(";"),
    "[options]",
    sortedEntries(odooConfOptions(s)).map(([key, value]) => `${key} = ${escapeOdooConf(value)}`),
  );
}

/**
 * odoo.conf as the host receives it: after the apply script resolves the placeholders it holds
 * the admin and database passwords, so only root and the odoo group may read it.
 */
export function odooConfFile(model: StackModel, host: HostId, extraOptions: Readonly<Record<string, OdooOptionValue>> = {}): HostFile {
  return {
    path: PATHS.odooConf,
    content: renderOdooConf(odooConfSettingsFor(model, host, extraOptions)),
    mode: "0640",
    owner: "root",
    group: ODOO_SYSTEM_USER,
  };
}
