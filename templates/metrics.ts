// The stack's own metrics (CHECKLIST §9, PG-4, TLS-4, LIMIT-4): what the collector on each host
// publishes, under which names, and how it classifies Odoo's requests. Pure: no Pulumi import.
//
// One collector script (templates/scripts/odoo-stack-metrics.py) runs on every host from a
// systemd timer every 60 s. It reads a JSON config rendered here, so every metric name, log
// path, route rule and log pattern is spelled once, in this file: the alarms
// (components/monitoring.ts), the dashboard, the runbooks and the unit tests read the same
// constants the collector receives.
//   pgbouncer  SHOW POOLS / SHOW STATS through the Unix socket as the stats user (OBS-1, OBS-2)
//   postgres   pg_stat_activity, pg_stat_user_tables, pg_database, pg_stat_statements (OBS-7, PG-4)
//   proxy      the nginx JSON access log: p95/p99 per route class, 5xx, 504 (OBS-4, OBS-5)
//   odoo       Odoo's log: worker kills, pool full, deadlocks, cron duration/overlap (OBS-5, OBS-6)
//   every host certificate days-to-expiry (TLS-4), fd usage vs limit, TCP retransmits (OBS-8)
import * as fs from "fs";
import * as path from "path";
import { DB_ROLES, PATHS, secretRef, UNITS, type HostId, type HostRole, type StackModel } from "../lib/model";
import { PORTS } from "../lib/ports";
import { throwIfAny } from "../lib/problems";
import { acmeCertificatePaths } from "./cloud-init";
import { header, lines, renderSortedJson, type HostFile } from "./format";
import { nginxMainSettings } from "./nginx";
import { LISTEN_DATABASE, PGBOUNCER_DEBIAN, PGBOUNCER_TLS_FILES } from "./pgbouncer";
import { POSTGRES_TLS_FILES } from "./postgresql";
import { RDS_MONITOR_SERVICE } from "./rds";
import { SCRIPTS_DIR } from "./scripts";
import { oneshotService, systemdEnvironment, unitFile } from "./systemd";

/** CloudWatch namespaces, one per area ("OdooStack/<area>"); the alarms and dashboard use them. */
export const METRIC_NAMESPACES = {
  host: "OdooStack/Host",
  pgbouncer: "OdooStack/PgBouncer",
  postgres: "OdooStack/PostgreSQL",
  odoo: "OdooStack/Odoo",
  tls: "OdooStack/TLS",
  collector: "OdooStack/Collector",
} as const;
export type MetricArea = keyof typeof METRIC_NAMESPACES;

/** Dimension names. Every datum carries Stack; the rest as each metric says. */
export const DIMENSIONS = {
  stack: "Stack",
  host: "Host",
  database: "Database",
  routeClass: "Class",
  process: "Process",
  certificate: "Certificate",
  state: "State",
} as const;

/** Metric names, spelled once: the collector publishes them, the alarms and dashboard read them. */
export const METRICS = {
  // PgBouncer SHOW POOLS, summed over the users of a database (OBS-1) — {Stack, Database}
  clientsActive: "ClientsActive",
  clientsWaiting: "ClientsWaiting",
  serversActive: "ServersActive",
  serversIdle: "ServersIdle",
  serversUsed: "ServersUsed",
  /** maxwait + maxwait_us / 1e6: how long the oldest waiting client has waited. */
  maxWaitSeconds: "MaxWaitSeconds",
  // PgBouncer SHOW STATS (OBS-2) — {Stack, Database}
  transactionsPerSecond: "TransactionsPerSecond",
  queriesPerSecond: "QueriesPerSecond",
  avgTransactionMicroseconds: "AvgTransactionMicroseconds",
  avgQueryMicroseconds: "AvgQueryMicroseconds",
  avgWaitMicroseconds: "AvgWaitMicroseconds",
  // PostgreSQL (OBS-7, PG-1) — {Stack}, and {Stack, Database} where said
  oldestTransactionSeconds: "OldestTransactionSeconds",
  sessionsWaitingOnLocks: "SessionsWaitingOnLocks",
  connections: "Connections",
  /** {Stack, State}: active, idle, idle in transaction, … */
  connectionsByState: "ConnectionsByState",
  connectionsUsedPercent: "ConnectionsUsedPercent",
  /**
   * Settings PostgreSQL applies only at restart that differ from the running ones
   * (pg_settings.pending_restart): the apply script reloads but never restarts by itself (PG-1).
   * On the database host only: RDS keeps such changes in its parameter group (pending-reboot).
   */
  pendingRestartSettings: "PendingRestartSettings",
  // Autovacuum health (PG-4) — {Stack, Database}
  deadTuples: "DeadTuples",
  deadTuplesPercent: "DeadTuplesPercent",
  lastAutovacuumAgeSeconds: "LastAutovacuumAgeSeconds",
  transactionIdAge: "TransactionIdAge",
  /** pg_stat_statements: execution time of every statement in the last interval (the top ones go to a log). */
  statementsExecMilliseconds: "StatementsExecMilliseconds",
  // Odoo through the proxy's access log (OBS-4, OBS-5) — {Stack, Class} / {Stack}
  latencyP95: "LatencyP95Seconds",
  latencyP99: "LatencyP99Seconds",
  requests: "Requests",
  http5xxPercent: "Http5xxPercent",
  upstreamTimeouts: "UpstreamTimeouts",
  // Odoo's log (OBS-5, OBS-6) — {Stack}
  workerTimeLimitKills: "WorkerTimeLimitKills",
  workerMemoryLimitKills: "WorkerMemoryLimitKills",
  poolFullErrors: "PoolFullErrors",
  deadlocks: "Deadlocks",
  cronJobsCompleted: "CronJobsCompleted",
  cronJobMaxSeconds: "CronJobMaxSeconds",
  cronOverlaps: "CronOverlaps",
  cronLongestRunningSeconds: "CronLongestRunningSeconds",
  // Every host (OBS-8, TLS-4) — {Stack, Host, …}
  fdUsedPercent: "FdUsedPercent",
  tcpRetransmitPercent: "TcpRetransmitPercent",
  certificateDaysToExpiry: "CertificateDaysToExpiry",
  // The collector itself — {Stack, Host}
  collectorRuns: "CollectorRuns",
  collectorErrors: "CollectorErrors",
} as const;
export type MetricKey = keyof typeof METRICS;
export type MetricName = (typeof METRICS)[MetricKey];

// --- Odoo route classes (OBS-4) ----------------------------------------------------------------

export const ROUTE_CLASSES = ["login", "list", "write", "report"] as const;
export type RouteClass = (typeof ROUTE_CLASSES)[number];

/**
 * Ordered rules, first match wins; regular expressions in the common subset of JavaScript and
 * Python's `re` (the collector applies these very strings). Matched against nginx's $uri, which
 * carries no query string.
 */
export const ROUTE_RULES: readonly { readonly routeClass: RouteClass; readonly pattern: string }[] = [
  { routeClass: "login", pattern: "^/web/login/?$" },
  // List views: the legacy endpoint and the ORM call list views make (Odoo 16+: web_search_read).
  { routeClass: "list", pattern: "^/web/dataset/search_read/?$" },
  { routeClass: "list", pattern: "^/web/dataset/call_kw/[^/]+/web_search_read/?$" },
  // Saves: write/create, and web_save, which Odoo 17 form views call to save a record.
  { routeClass: "write", pattern: "^/web/dataset/call_kw/[^/]+/(write|create|web_save)/?$" },
  // QWeb reports (PDF/HTML): /report/pdf/..., /report/html/..., /report/download.
  { routeClass: "report", pattern: "^/report/" },
];

const COMPILED_ROUTE_RULES = ROUTE_RULES.map((r) => ({ routeClass: r.routeClass, re: new RegExp(r.pattern) }));

/** The class of an Odoo request path ($uri), or undefined for every other route. */
export function classifyRoute(uri: string): RouteClass | undefined {
  return COMPILED_ROUTE_RULES.find((r) => r.re.test(uri))?.routeClass;
}

/**
 * Nearest-rank percentile (the smallest value with at least p % of the values at or below it);
 * undefined for no values. The collector computes the same.
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (!(p > 0 && p <= 100)) throw new Error(`percentile: p must be in (0, 100], got ${p}`);
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1];
}

/** One parsed line of the nginx JSON access log (templates/nginx.ts ACCESS_LOG_FIELDS). */
export interface AccessLogEntry {
  readonly uri: string;
  readonly status: number;
  readonly requestTime: number;
}

/** Parses one access-log line; undefined for a line that is not the JSON format. */
export function parseAccessLogLine(line: string): AccessLogEntry | undefined {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof o !== "object" || o === null) return undefined;
  const r = o as Record<string, unknown>;
  const status = Number(r.status);
  const requestTime = Number(r.request_time);
  if (typeof r.uri !== "string" || !Number.isFinite(status) || !Number.isFinite(requestTime)) return undefined;
  return { uri: r.uri, status, requestTime };
}

/** Routes whose duration is a connection's lifetime, not a response time: left out of every figure. */
export const LONG_LIVED_ROUTES = ["^/websocket", "^/longpolling/"] as const;
const LONG_LIVED = LONG_LIVED_ROUTES.map((p) => new RegExp(p));

export interface AccessLogSummary {
  readonly requests: number;
  readonly http5xxPercent: number;
  /** Responses with status 504: nginx gave up waiting for Odoo (proxy_read_timeout, PROXY-5). */
  readonly upstreamTimeouts: number;
  readonly byClass: Readonly<Partial<Record<RouteClass, { readonly count: number; readonly p95: number; readonly p99: number }>>>;
}

/** What the collector publishes for a batch of access-log lines (the same arithmetic, in TypeScript). */
export function summarizeAccessLog(logLines: readonly string[]): AccessLogSummary {
  const times = new Map<RouteClass, number[]>();
  let requests = 0;
  let errors = 0;
  let timeouts = 0;
  for (const line of logLines) {
    const entry = parseAccessLogLine(line);
    if (!entry || LONG_LIVED.some((re) => re.test(entry.uri))) continue;
    requests++;
    if (entry.status >= 500) errors++;
    if (entry.status === 504) timeouts++;
    const routeClass = classifyRoute(entry.uri);
    if (routeClass) times.set(routeClass, [...(times.get(routeClass) ?? []), entry.requestTime]);
  }
  const byClass: Partial<Record<RouteClass, { count: number; p95: number; p99: number }>> = {};
  for (const c of ROUTE_CLASSES) {
    const t = times.get(c);
    if (t) byClass[c] = { count: t.length, p95: percentile(t, 95) as number, p99: percentile(t, 99) as number };
  }
  return { requests, http5xxPercent: requests === 0 ? 0 : (100 * errors) / requests, upstreamTimeouts: timeouts, byClass };
}

// --- Odoo log events (OBS-5, OBS-6) -------------------------------------------------------------

/**
 * Odoo log lines counted per interval, by the message Odoo writes (odoo/service/server.py,
 * odoo/sql_db.py; PostgreSQL's error text for deadlocks, which Odoo logs with the failing query).
 */
export const ODOO_LOG_EVENTS: readonly { readonly metric: MetricKey; readonly pattern: string; readonly why: string }[] = [
  {
    metric: "workerTimeLimitKills",
    pattern: "(virtual real time limit|CPU time limit) \\([^)]*\\) reached|\\) timeout after \\d+s",
    why: "limit_time_real / limit_time_cpu (LIMIT-3) killed a worker mid-request",
  },
  {
    metric: "workerMemoryLimitKills",
    pattern: "virtual memory limit \\(\\d+\\) reached",
    why: "limit_memory_soft (LIMIT-3) recycled a worker",
  },
  { metric: "poolFullErrors", pattern: "PoolError|Connection Pool Is Full", why: "a worker ran out of database connections (db_maxconn)" },
  { metric: "deadlocks", pattern: "deadlock detected", why: "PostgreSQL aborted a transaction to break a deadlock" },
];

/**
 * Odoo's ir_cron log lines (odoo/addons/base/models/ir_cron.py, 16.0–18.0):
 *   _logger.info('Starting job `%s`.', cron_name) … _logger.info('Job `%s` done.', cron_name)
 * in Odoo's log format "%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s".
 */
export const ODOO_CRON_PATTERNS = {
  line: "^(\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d),\\d+ (\\d+) [A-Z]+ (\\S+) odoo\\.addons\\.base\\.models\\.ir_cron: (.*)$",
  start: "^Starting job `(.+)`\\.$",
  done: "^Job `(.+)` done\\.$",
} as const;

// --- collector settings and files ---------------------------------------------------------------

export const METRICS_COLLECTOR_SCRIPT = "odoo-stack-metrics.py";
export const METRICS_COLLECTOR_PATH = "/usr/local/sbin/odoo-stack-metrics";
export const METRICS_CONFIG_PATH = "/etc/odoo-stack/metrics.json";
/** Password file of the database reader (libpq's PGPASSFILE); root only, it holds a resolved secret. */
export const METRICS_PGPASS_PATH = "/etc/odoo-stack/metrics.pgpass";
export const METRICS_STATE_DIRECTORY = "odoo-stack-metrics";
/** pg_stat_statements' heaviest statements, one JSON object per line, shipped by the agent (OBS-7). */
export const TOP_QUERIES_LOG = "/var/log/odoo-stack/top-queries.log";
export const METRICS_UNITS = { service: "odoo-stack-metrics.service", timer: "odoo-stack-metrics.timer" } as const;
/** Every host enables this timer (the apply script: `systemctl enable --now`). */
export const METRICS_TIMERS = [METRICS_UNITS.timer] as const;
/** Collection interval, seconds: the alarms' 60 s periods assume one datum per minute. */
export const METRICS_INTERVAL_SECONDS = 60;

/** A process whose open files are compared with its limit (OBS-8). `comm` is /proc/<pid>/comm. */
export interface WatchedProcess {
  readonly name: string;
  readonly comm: string;
}

/** The processes each role runs that can run out of file descriptors. */
export const WATCHED_PROCESSES: Readonly<Record<HostRole, readonly WatchedProcess[]>> = {
  proxy: [{ name: "nginx", comm: "nginx" }],
  // Debian's odoo package starts /usr/bin/odoo, a Python script: comm is the script's name.
  odoo: [{ name: "odoo", comm: "odoo" }],
  pgbouncer: [{ name: "pgbouncer", comm: "pgbouncer" }],
  postgres: [{ name: "postgres", comm: "postgres" }],
};

/** How the collector reads PostgreSQL (OBS-7, PG-4): where, and what. */
export type PostgresReader = {
  /**
   * Where the cluster-wide views are read: the bootstrap SQL creates pg_stat_statements in the
   * maintenance database "postgres" (templates/postgresql.ts, templates/rds.ts).
   */
  readonly maintenanceDatabase: string;
  /** Databases whose tables are checked for autovacuum health. */
  readonly databases: readonly string[];
  readonly topQueries: number;
  readonly topQueriesLog: string;
} & (
  | /** On the database host: its Unix socket, the password from PGPASSFILE. */ {
      readonly socketDir: string;
      readonly port: number;
      readonly user: string;
    }
  | /** RDS, from the PgBouncer host: a libpq service (TLS verify-full, the monitor role). */ {
      readonly service: string;
      readonly serviceFile: string;
    }
);

/** The collector's name for the internal CA file's expiry (its alarm asks for a CA rotation). */
export const INTERNAL_CA_CERTIFICATE = "internal-ca";

export interface MetricsCollectorSettings {
  readonly stack: string;
  readonly hostId: string;
  readonly role: HostRole;
  readonly processes: readonly WatchedProcess[];
  /** Certificate files whose expiry is published (TLS-4), by a short name. */
  readonly certificates: readonly { readonly name: string; readonly path: string }[];
  readonly pgbouncer?: { readonly socketDir: string; readonly port: number; readonly user: string };
  readonly postgres?: PostgresReader;
  readonly accessLog?: { readonly path: string };
  readonly odooLog?: { readonly path: string; readonly cronMaxSeconds: number };
}

/** What the collector reads of PostgreSQL, wherever it reads it from. */
const postgresReadings = (model: StackModel) => ({
  maintenanceDatabase: "postgres",
  databases: [...model.settings.databases, LISTEN_DATABASE],
  topQueries: 10,
  topQueriesLog: TOP_QUERIES_LOG,
});

/** The stack's collector settings for `host`: production paths, ports and roles. */
export function metricsCollectorSettingsFor(model: StackModel, host: HostId): MetricsCollectorSettings {
  const base = { stack: model.stack, hostId: host.id, role: host.role, processes: WATCHED_PROCESSES[host.role] };
  // The CA file's first certificate, the issuing generation's (lib/internal-ca.ts).
  const ca = { name: INTERNAL_CA_CERTIFICATE, path: PATHS.caCert };
  switch (host.role) {
    case "proxy": {
      const tls = model.settings.tls;
      const publicCert = tls.mode === "acme" ? acmeCertificatePaths(model.settings.domain).fullchain : `${PATHS.nginxTlsDir}/fullchain.pem`;
      return { ...base, certificates: [ca, { name: "public", path: publicCert }], accessLog: { path: nginxMainSettings().accessLogPath } };
    }
    case "odoo": {
      const odoo = model.settings.sizing.odoo;
      // A cron job cannot outlive its kill limit; a "Starting job" with no "done" after it was killed.
      const cronLimit = odoo.limitTimeRealCron > 0 ? odoo.limitTimeRealCron : odoo.limitTimeReal;
      return { ...base, certificates: [ca], odooLog: { path: PATHS.odooLogFile, cronMaxSeconds: cronLimit + 60 } };
    }
    case "pgbouncer":
      return {
        ...base,
        certificates: [ca, { name: "pgbouncer", path: PGBOUNCER_TLS_FILES.cert }],
        pgbouncer: { socketDir: PGBOUNCER_DEBIAN.unixSocketDir, port: PORTS.pgbouncer.port, user: DB_ROLES.stats },
        // RDS has no host of its own to run the collector on: the PgBouncer host reads it.
        ...(model.settings.postgresEngine === "rds"
          ? { postgres: { ...postgresReadings(model), service: RDS_MONITOR_SERVICE, serviceFile: PATHS.rdsMonitorServiceFile } }
          : {}),
      };
    case "postgres":
      return {
        ...base,
        certificates: [ca, { name: "postgres", path: POSTGRES_TLS_FILES.cert }],
        postgres: {
          ...postgresReadings(model),
          socketDir: PGBOUNCER_DEBIAN.unixSocketDir,
          port: PORTS.postgres.port,
          user: DB_ROLES.monitor,
        },
      };
  }
}

/** Deterministic JSON: keys sorted, two-space indent, one trailing newline. */

/** The collector's config: the settings plus every name and rule it applies, spelled here once. */
export function renderMetricsConfig(s: MetricsCollectorSettings): string {
  const problems: string[] = [];
  if (s.pgbouncer && s.role !== "pgbouncer") problems.push("'pgbouncer' is only for the pgbouncer role");
  if (s.postgres && s.role !== "postgres" && !("service" in s.postgres && s.role === "pgbouncer")) {
    problems.push("'postgres' is only for the postgres role, or the pgbouncer role through a libpq service (RDS)");
  }
  if (s.postgres && s.postgres.databases.length === 0) problems.push("'postgres.databases' must name at least one database");
  if (s.odooLog && !(s.odooLog.cronMaxSeconds > 0)) problems.push("'odooLog.cronMaxSeconds' must be positive");
  for (const c of s.certificates)
    if (!/^[a-z0-9-]+$/.test(c.name)) problems.push(`certificate name ${JSON.stringify(c.name)} must be lowercase letters, digits and '-'`);
  throwIfAny("metrics.json", problems);
  return renderSortedJson({
    generated: "generated by odoo-stack — do not edit",
    format: 1,
    stack: s.stack,
    host: s.hostId,
    role: s.role,
    intervalSeconds: METRICS_INTERVAL_SECONDS,
    namespaces: METRIC_NAMESPACES,
    dimensions: DIMENSIONS,
    metrics: METRICS,
    processes: s.processes,
    certificates: s.certificates,
    ...(s.pgbouncer ? { pgbouncer: { ...s.pgbouncer, database: "pgbouncer" } } : {}),
    ...(s.postgres ? { postgres: s.postgres } : {}),
    ...(s.accessLog
      ? {
          accessLog: {
            path: s.accessLog.path,
            routes: ROUTE_RULES.map((r) => ({ class: r.routeClass, pattern: r.pattern })),
            longLived: LONG_LIVED_ROUTES,
            classes: ROUTE_CLASSES,
          },
        }
      : {}),
    ...(s.odooLog
      ? {
          odooLog: {
            path: s.odooLog.path,
            cronMaxSeconds: s.odooLog.cronMaxSeconds,
            events: ODOO_LOG_EVENTS.map((e) => ({ metric: e.metric, pattern: e.pattern })),
            cron: ODOO_CRON_PATTERNS,
          },
        }
      : {}),
  });
}

/** The collector as deployed: the file the integration test runs. */
export function metricsCollectorScript(): string {
  return fs.readFileSync(path.join(SCRIPTS_DIR, METRICS_COLLECTOR_SCRIPT), "utf8");
}

/**
 * libpq's password file line: host:port:database:user:password, ':' and '\\' escaped in the
 * names. Host '*': a Unix-socket connection matches "localhost" only for the default socket
 * directory. The password is a secretRef resolved on the host: the stack's generated passwords
 * are alphanumeric (components/secrets.ts), so nothing in them needs escaping.
 */
export function pgpassLine(fields: {
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
}): string {
  const esc = (v: string) => v.replace(/[\\:]/g, (c) => `\\${c}`);
  if (/[\r\n]/.test(fields.password)) throw new Error("pgpass: the password must be one line");
  return `*:${fields.port}:${esc(fields.database)}:${esc(fields.user)}:${fields.password}`;
}

/**
 * The daemon a host's collector reads. The timer fires on the minute, also in the seconds after a
 * boot before that daemon is up (a reboot found PostgreSQL's socket missing and the unit failed,
 * the host "degraded"): After= makes a start queued meanwhile wait for the daemon's start job.
 */
const COLLECTED_DAEMON: Readonly<Record<HostRole, string>> = {
  postgres: UNITS.postgres,
  pgbouncer: UNITS.pgbouncer,
  odoo: UNITS.odoo,
  proxy: UNITS.nginx,
};

function collectorService(model: StackModel, host: HostId, databaseReader: boolean, writesTopQueries: boolean): string {
  return oneshotService({
    description: `odoo-stack: publish ${host.role} metrics of ${host.id} to CloudWatch (OBS-1..OBS-8, PG-4, TLS-4)`,
    after: [COLLECTED_DAEMON[host.role]],
    service: [
      systemdEnvironment("AWS_DEFAULT_REGION", model.settings.region),
      systemdEnvironment("ODOO_STACK_METRICS_CONFIG", METRICS_CONFIG_PATH),
      ...(databaseReader ? [systemdEnvironment("PGPASSFILE", METRICS_PGPASS_PATH)] : []),
      `StateDirectory=${METRICS_STATE_DIRECTORY}`,
      `ExecStart=/usr/bin/python3 ${METRICS_COLLECTOR_PATH}`,
      // Root without root's powers: it reads logs, /proc/<pid>/fd of other users' daemons and
      // 0600 certificates (CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE for /proc), and writes only its
      // state and the top-queries log.
      "CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      ...(writesTopQueries ? [`LogsDirectory=${path.basename(path.dirname(TOP_QUERIES_LOG))}`] : []),
      "Nice=5",
      // A run must finish well inside its minute; a stuck psql must not pile up runs.
      "TimeoutStartSec=50s",
    ],
  });
}

function collectorTimer(): string {
  return lines(
    header("#").trimEnd(),
    "[Unit]",
    "Description=odoo-stack: metrics every minute",
    "",
    "[Timer]",
    // On every minute, to the second: one datum per 60 s alarm period, not two in one period
    // and none in the next (systemd's default accuracy is a whole minute).
    "OnCalendar=*-*-* *:*:00",
    "AccuracySec=1s",
    "",
    "[Install]",
    "WantedBy=timers.target",
  );
}

/** The collector, its config, its password file (database hosts) and its units for `host`, sorted by path. */
export function metricsHostFiles(model: StackModel, host: HostId): HostFile[] {
  const settings = metricsCollectorSettingsFor(model, host);
  // RDS's monitor password is in its service file (templates/rds.ts), not here.
  const postgresOverSocket = settings.postgres !== undefined && "socketDir" in settings.postgres ? settings.postgres : undefined;
  const reader = [
    ...(settings.pgbouncer !== undefined
      ? [
          pgpassLine({
            port: settings.pgbouncer.port,
            database: "pgbouncer",
            user: settings.pgbouncer.user,
            password: secretRef(model.parameters.statsPassword),
          }),
        ]
      : []),
    // The monitor role reads every database (pg_monitor): '*' for the database.
    ...(postgresOverSocket !== undefined
      ? [
          pgpassLine({
            port: postgresOverSocket.port,
            database: "*",
            user: postgresOverSocket.user,
            password: secretRef(model.parameters.monitorPassword),
          }),
        ]
      : []),
  ];
  const files: HostFile[] = [
    { path: METRICS_COLLECTOR_PATH, content: metricsCollectorScript(), mode: "0755", owner: "root", group: "root" },
    { path: METRICS_CONFIG_PATH, content: renderMetricsConfig(settings), mode: "0644", owner: "root", group: "root" },
    ...(reader.length > 0
      ? [{ path: METRICS_PGPASS_PATH, content: lines(header("#").trimEnd(), reader), mode: "0600", owner: "root", group: "root" }]
      : []),
    unitFile(METRICS_UNITS.service, collectorService(model, host, reader.length > 0, settings.postgres !== undefined)),
    unitFile(METRICS_UNITS.timer, collectorTimer()),
  ];
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
