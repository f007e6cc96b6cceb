// The stack's operator runbooks (BACKUP-3, BACKUP-4, AUTH-4: R), generated with the stack's
// names — hosts, databases, roles, sockets, paths, log groups, alarm names — and commands run
// through SSM Session Manager (no SSH, DESIGN principle 9). Two tables drive them:
//   - the alarm table Monitoring creates its alarms from (templates/alarms.ts): every alarm has
//     an entry, and every entry an alarm;
//   - the procedure table (templates/procedures.ts): every operational procedure's steps, hosts,
//     commands and checks, which the host scripts and `odoo-stack rotate` follow too.
// Every shell block says where it runs (templates/runbook-blocks.ts): `sh laptop` or
// `sh host=<id>`, never both, so the fleet-boot suite can run the host blocks as written.
// Engine-aware: an RDS stack names no PostgreSQL host. Pure: markdown out; `npm run plan`
// writes out/<stack>/runbooks/, the deployed stack exports them (`pulumi stack output runbooks`).
import { DB_ROLES, PATHS, type HostId, type StackModel } from "../lib/model";
import { PORTS } from "../lib/ports";
import { ROTATABLE_PASSWORD_NAMES } from "../lib/rotation";
import { backupAlarmEntries, monitoringAlarms, PROCEDURES, type AlarmSpec, type Procedure } from "./alarms";
import { LOG_SOURCE_NAMES, logGroupName, POSTGRES_LOG_FILE } from "./cloudwatch-agent";
import { METRICS_COLLECTOR_PATH, METRICS_CONFIG_PATH, METRICS_PGPASS_PATH, METRICS_UNITS, TOP_QUERIES_LOG } from "./metrics";
import { LISTEN_DATABASE } from "./pgbouncer";
import { adminPsql, databaseAdminRole, operationalProcedures, procedureById, stepHosts, type OperationalProcedure } from "./procedures";
import { RDS_POSTGRES, rdsInstanceIdentifier } from "./rds";
import { renderBackupRunbook, type BackupRunbookInput } from "./runbook-backup";
import { hostBlock, laptopBlock } from "./runbook-blocks";
import { code, onHost, preamble, procedureSection, rotateCommand, sessionCommand, shellAnchor } from "./runbook-format";

export { sessionCommand } from "./runbook-format";

export interface RunbooksInput {
  /** The alarms Monitoring created. Optional. Defaults to monitoringAlarms(model) (default thresholds). */
  readonly alarms?: readonly AlarmSpec[];
  /** The backup runbook's facts (bucket name, BackupPlan numbers). Optional: without them no backup runbook. */
  readonly backup?: BackupRunbookInput;
}

/** File names of the runbooks, in out/<stack>/runbooks/. */
export const RUNBOOK_FILES = {
  index: "README.md",
  pgbouncer: "pgbouncer.md",
  rotation: "rotation.md",
  postgresql: "postgresql.md",
  odoo: "odoo.md",
  hosts: "hosts.md",
  alarms: "alarms.md",
  upgrades: "upgrades.md",
  backup: "backup.md",
} as const;

/** Where each alarm procedure lives: its file and anchor (an explicit <a id>, stable across edits of the heading). */
export const PROCEDURE_LOCATION: Readonly<Record<Procedure, { readonly file: string; readonly title: string }>> = {
  "pgbouncer-queue": { file: RUNBOOK_FILES.pgbouncer, title: "See the PgBouncer queue (SHOW POOLS)" },
  "long-transactions": { file: RUNBOOK_FILES.postgresql, title: "Long transactions" },
  locks: { file: RUNBOOK_FILES.postgresql, title: "Locks: who blocks whom" },
  autovacuum: { file: RUNBOOK_FILES.postgresql, title: "Autovacuum and transaction-ID age" },
  "odoo-errors": { file: RUNBOOK_FILES.odoo, title: "Odoo errors: worker kills, pool full, deadlocks, 5xx" },
  cron: { file: RUNBOOK_FILES.odoo, title: "Crons: duration and overlap" },
  latency: { file: RUNBOOK_FILES.odoo, title: "Slow requests (p95/p99)" },
  "host-resources": { file: RUNBOOK_FILES.hosts, title: "Disk, memory, swap" },
  "file-descriptors": { file: RUNBOOK_FILES.hosts, title: "File descriptors near the limit" },
  certificates: { file: RUNBOOK_FILES.hosts, title: "Certificates about to expire" },
  collector: { file: RUNBOOK_FILES.hosts, title: "The metrics collector" },
  backups: { file: RUNBOOK_FILES.backup, title: "Backups and restores" },
  "restart-pending": { file: RUNBOOK_FILES.postgresql, title: "A setting waits for a PostgreSQL restart" },
  "rotate-internal-ca": { file: RUNBOOK_FILES.hosts, title: "Rotate the internal CA" },
};

/** Where each operational procedure (templates/procedures.ts) is rendered. */
export function operationalProcedureFile(id: string): string {
  if (id.startsWith("rotate-") && id !== "rotate-internal-ca") return RUNBOOK_FILES.rotation;
  if (id.startsWith("upgrade-")) return RUNBOOK_FILES.upgrades;
  const files: Record<string, string> = {
    "reload-auth-file": RUNBOOK_FILES.pgbouncer,
    "pgbouncer-queue": RUNBOOK_FILES.pgbouncer,
    "long-transactions": RUNBOOK_FILES.postgresql,
    "restart-pending": RUNBOOK_FILES.postgresql,
    "rotate-internal-ca": RUNBOOK_FILES.hosts,
    restore: RUNBOOK_FILES.backup,
    "first-install": RUNBOOK_FILES.odoo,
    "add-database": RUNBOOK_FILES.odoo,
    "import-database": RUNBOOK_FILES.odoo,
    "release-odoo": RUNBOOK_FILES.upgrades,
  };
  const file = files[id];
  if (!file) throw new Error(`runbooks: procedure ${id} has no runbook file`);
  return file;
}

const anchor = (p: Procedure): string => `<a id="${p}"></a>`;
const link = (p: Procedure, from: string): string => {
  const loc = PROCEDURE_LOCATION[p];
  return `[${loc.title}](${loc.file === from ? "" : loc.file}#${p})`;
};
const heading = (p: Procedure): string => `${anchor(p)}\n## ${PROCEDURE_LOCATION[p].title}`;
const procedureLink = (p: OperationalProcedure, from: string): string => {
  const file = operationalProcedureFile(p.id);
  return `[${p.title}](${file === from ? "" : file}#${p.id})`;
};

/** SQL through the administrator's psql on databaseAdminRole's host, as a here-document. */
const sqlHeredoc = (model: StackModel, database: string, statements: readonly string[]): string[] => [
  `${adminPsql(model, database)} <<'SQL'`,
  ...statements,
  "SQL",
];

/** The host where SQL as the administrator runs: the PostgreSQL host, or with RDS the PgBouncer host. */
const adminHost = (model: StackModel): HostId => stepHosts(model, { where: databaseAdminRole(model) })[0];

function databaseIntro(model: StackModel, from: string): string {
  const host = adminHost(model);
  return model.settings.postgresEngine === "rds"
    ? `PostgreSQL 15 runs on Amazon RDS: instance ${code(rdsInstanceIdentifier(model))}${model.settings.rdsMultiAz ? " (Multi-AZ)" : ""}; databases ${model.settings.databases.map(code).join(", ")}. There is no PostgreSQL host: SQL runs on ${onHost(host, from)} as the master user ${code(DB_ROLES.rdsMaster)} (rds_superuser, not a superuser) through its libpq service file ${code(PATHS.rdsAdminServiceFile)} (verify-full, root only).`
    : `PostgreSQL 15 runs on ${onHost(host, from)} (${code(host.fqdn)}); databases ${model.settings.databases.map(code).join(", ")}. SQL runs there as the superuser over the Unix socket (peer authentication).`;
}

function pgbouncerRunbook(model: StackModel): string {
  const f = RUNBOOK_FILES.pgbouncer;
  const sizing = model.settings.sizing.pgbouncer;
  return [
    ...preamble(model, "PgBouncer"),
    `PgBouncer runs on ${onHost(model.hosts.pgbouncer, f)} (${code(model.hosts.pgbouncer.fqdn)}, port ${PORTS.pgbouncer.port}, transaction pooling; ${code(LISTEN_DATABASE)} in session pooling for Odoo's LISTEN).`,
    "",
    ...procedureSection(model, procedureById(model, "pgbouncer-queue"), f),
    `- ${code("cl_waiting")} > 0: clients wait for a server connection; ${code("maxwait")} + ${code("maxwait_us")} is how long the oldest has waited (OBS-1).`,
    `- ${code("sv_active")} equal to the pool size (${code("default_pool_size")} ${sizing.defaultPoolSize}, + ${sizing.reservePoolSize} reserve after ${sizing.reservePoolTimeoutSeconds} s) means every server connection is busy. ${code("SHOW SERVERS")} lists them; match their ${code("remote_pid")} to ${code("pg_stat_activity.pid")} to see what they run (${link("long-transactions", f)}, ${link("locks", f)}).`,
    `- Grow the pool only once no long transaction or lock explains the queue: set ${code("pgbouncer.defaultPoolSize")} in the stack config (its invariants keep PostgreSQL's ${code("max_connections")} coherent, PG-1), ${code("pulumi up")}; the change is applied by RELOAD without dropping clients.`,
    "",
    `The same figures are in CloudWatch (namespace ${code("OdooStack/PgBouncer")}, dimensions ${code(`Stack=${model.stack}`)} and ${code("Database")}) and on the dashboard ${code(`${model.project}-${model.stack}`)}.`,
    "",
    ...procedureSection(model, procedureById(model, "reload-auth-file"), f),
    `Passwords and their verifiers are rotated by the procedures in ${RUNBOOK_FILES.rotation}: ${ROTATABLE_PASSWORD_NAMES.map((n) => procedureLink(procedureById(model, `rotate-${n}`), f)).join(", ")}.`,
    "",
  ].join("\n");
}

function rotationRunbook(model: StackModel): string {
  const f = RUNBOOK_FILES.rotation;
  return [
    ...preamble(model, "Password rotation (AUTH-4)"),
    `Every generated password has a keeper: the stack setting ${code("passwordRotation")} (a date per password). A new date makes ${code("pulumi up")} generate that password anew and store it (and its SCRAM verifier) in SSM; the hosts keep the old one until their steps run, in the order below. From a checkout of the stack's repository, one command runs every host step through SSM Run Command, waits for each, checks its output and stops at the first failure:`,
    "",
    laptopBlock(
      ROTATABLE_PASSWORD_NAMES.map((n) => rotateCommand(model, n)),
      { procedure: "rotate" },
    ),
    "",
    "By hand, the same steps:",
    "",
    ...ROTATABLE_PASSWORD_NAMES.flatMap((n) => procedureSection(model, procedureById(model, `rotate-${n}`), f)),
  ].join("\n");
}

function postgresRunbook(model: StackModel): string {
  const f = RUNBOOK_FILES.postgresql;
  const db = model.settings.databases[0];
  const sizing = model.settings.sizing.postgres;
  const host = adminHost(model);
  const rds = model.settings.postgresEngine === "rds";
  return [
    ...preamble(model, "PostgreSQL: locks, long transactions, autovacuum"),
    databaseIntro(model, f),
    "",
    ...procedureSection(model, procedureById(model, "long-transactions"), f),
    `Through PgBouncer, ${code("application_name")} carries the Odoo host and port (${code("application_name_add_host")}); ${code("state = 'idle in transaction'")} is a transaction waiting for its client. Guards already in place (PG-2, per role): ${code("statement_timeout")} ${sizing.statementTimeoutMs} ms, ${code("lock_timeout")} ${sizing.lockTimeoutMs} ms, ${code("idle_in_transaction_session_timeout")} ${sizing.idleInTransactionSessionTimeoutMs} ms; a transaction older than these is a cron or a session outside Odoo's role. A cron that keeps showing up here needs batching with intermediate commits (LIMIT-4, ${link("cron", f)}).${rds ? " On RDS the master user may end the sessions of non-superuser roles (odoo's), which is all Odoo opens." : ""}`,
    "",
    heading("locks"),
    "",
    `Who waits on whom (OBS-7, BACKUP-4). ${code("log_lock_waits")} (PG-3) also logs every wait longer than ${code("deadlock_timeout")} to ` +
      (rds
        ? `PostgreSQL's log, which RDS exports to the log group ${code(logGroupName(model, "postgresql"))}.`
        : `${code(POSTGRES_LOG_FILE)} (log group ${code(logGroupName(model, "postgresql"))}).`),
    "",
    hostBlock(
      host.id,
      sqlHeredoc(model, db, [
        "SELECT w.pid AS waiting_pid, now() - w.query_start AS waiting_for, left(w.query, 120) AS waiting_query,",
        "       b.pid AS blocking_pid, b.state AS blocking_state, now() - b.xact_start AS blocking_xact_age,",
        "       b.application_name AS blocking_app, left(b.query, 120) AS blocking_last_query",
        "FROM pg_stat_activity w",
        "JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid) ON true",
        "JOIN pg_stat_activity b ON b.pid = blocker.pid",
        "ORDER BY waiting_for DESC;",
      ]),
      { procedure: "locks", step: "list" },
    ),
    "",
    `The root blocker is the ${code("blocking_pid")} that is not itself waiting. If it is ${code("idle in transaction")} or has run far longer than a request may, end it with the cancel, then terminate steps of ${procedureLink(procedureById(model, "long-transactions"), f)}. Deadlocks resolve themselves (one transaction is aborted, logged as ${code("deadlock detected")}); repeated ones point at two code paths updating the same rows in different orders.`,
    "",
    heading("autovacuum"),
    "",
    hostBlock(
      host.id,
      sqlHeredoc(model, db, [
        "-- tables with the most dead rows, and when autovacuum last got to them (PG-4)",
        "SELECT relname, n_live_tup, n_dead_tup, last_autovacuum, last_vacuum, autovacuum_count",
        "FROM pg_stat_user_tables ORDER BY n_dead_tup DESC LIMIT 15;",
        "-- autovacuum workers now",
        "SELECT pid, now() - xact_start AS running_for, query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker';",
        "-- transaction-ID age per database and the oldest tables",
        "SELECT datname, age(datfrozenxid) FROM pg_database ORDER BY 2 DESC;",
        "SELECT c.oid::regclass, age(c.relfrozenxid) FROM pg_class c WHERE c.relkind IN ('r', 't', 'm') ORDER BY 2 DESC LIMIT 10;",
      ]),
      { procedure: "autovacuum", step: "list" },
    ),
    "",
    `A long transaction (above) stops vacuum from removing anything newer than it: end it first. Then vacuum the worst table by hand (it does not block reads or writes): ${code("VACUUM (VERBOSE, ANALYZE) <table>;")}. Autovacuum runs over 1 s are in the PostgreSQL log (${code("log_autovacuum_min_duration")}).`,
    "",
    "## Top queries (OBS-7)",
    "",
    `Every minute the collector on ${code(host.id)} appends the ten statements with the most total execution time to ${code(TOP_QUERIES_LOG)} (log group ${code(logGroupName(model, "top-queries"))}). Live:`,
    "",
    hostBlock(
      host.id,
      sqlHeredoc(model, "postgres", [
        "SELECT d.datname, s.calls, round(s.total_exec_time) AS total_ms, round(s.mean_exec_time::numeric, 1) AS mean_ms,",
        "       s.rows, left(s.query, 200) AS query",
        "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid",
        "ORDER BY s.total_exec_time DESC LIMIT 20;",
      ]),
      { procedure: "top-queries", step: "list" },
    ),
    "",
    `After a fix, start measuring afresh: ${code("SELECT pg_stat_statements_reset();")}.`,
    "",
    ...procedureSection(model, procedureById(model, "restart-pending"), f),
  ].join("\n");
}

function odooRunbook(model: StackModel): string {
  const f = RUNBOOK_FILES.odoo;
  const cronHost = model.cronHost;
  const odooIds = model.hosts.odoo.map((h) => h.id);
  const insights = (group: string, query: string) =>
    `aws logs start-query --region ${model.settings.region} --log-group-name ${group} --start-time $(date -d '-1 hour' +%s) --end-time $(date +%s) --query-string '${query}'`;
  return [
    ...preamble(model, "Odoo: errors, crons, latency"),
    `Odoo hosts: ${model.hosts.odoo.map((h) => onHost(h, f)).join(", ")} (crons run on ${code(cronHost.id)} only). Log: ${code(PATHS.odooLogFile)} on each host, shipped to ${code(logGroupName(model, "odoo"))} (one stream per host).`,
    "",
    ...procedureSection(model, procedureById(model, "first-install"), f),
    ...procedureSection(model, procedureById(model, "add-database"), f),
    ...(model.settings.postgresEngine === "ec2"
      ? procedureSection(model, procedureById(model, "import-database"), f)
      : [
          "**Importing an existing database** with RDS: restore its dump into the RDS instance from the PgBouncer host as the master user (the admin service of the restore procedure) and copy its filestore under the Odoo data_dir; the hosts cannot read an upload of yours, so copy the dump there through a Session Manager session. Not rehearsed by the fleet suite (it boots the EC2 engine).",
          "",
        ]),
    heading("odoo-errors"),
    "",
    "The collector counts these lines every minute (OBS-5); find the requests and tracebacks around them, on any Odoo host:",
    "",
    hostBlock(
      odooIds,
      [
        `sudo grep -nE 'virtual real time limit|CPU time limit|timeout after|virtual memory limit|PoolError|Connection Pool Is Full|deadlock detected' ${PATHS.odooLogFile} | tail -n 50`,
      ],
      { procedure: "odoo-errors", step: "log" },
    ),
    "",
    "or across every host, from your laptop (CloudWatch Logs Insights):",
    "",
    laptopBlock(
      [
        insights(
          logGroupName(model, "odoo"),
          "fields @timestamp, @logStream, @message | filter @message like /PoolError|deadlock detected|time limit|memory limit|Traceback/ | sort @timestamp desc | limit 50",
        ),
      ],
      { procedure: "odoo-errors", step: "insights" },
    ),
    "",
    `- **Worker killed by limit_time_real/limit_time_cpu** (LIMIT-3): a request ran longer than ${model.settings.sizing.odoo.limitTimeReal} s real time. The line before it names the worker's last request; long reports belong in a queue job or need the limit raised deliberately (${code("odoo.limitTimeReal")} in the stack config).`,
    "- **Worker recycled by limit_memory_soft**: normal now and then; frequent recycling means requests that load too much (large exports): batch them.",
    `- **PoolError / Connection Pool Is Full**: a worker used more than ${code("db_maxconn")} connections — usually requests stuck behind locks. Check ${link("locks", f)} and ${link("pgbouncer-queue", f)}.`,
    `- **deadlock detected**: PostgreSQL aborted one transaction; Odoo retries serialization failures but shows deadlocks to the user. Repeated: ${link("locks", f)}.`,
    "- **5xx**: 502 = Odoo down or restarting (check `systemctl status odoo`), 504 = Odoo slower than the proxy's timeout, 500 = a traceback in the Odoo log.",
    "",
    heading("cron"),
    "",
    "Odoo logs `` Starting job `<name>`. `` and `` Job `<name>` done. `` per run; " +
      `the collector turns them into durations, overlaps and the age of the job still running (OBS-6). On ${onHost(cronHost, f)}:`,
    "",
    hostBlock(cronHost.id, [`sudo grep -E "ir_cron: (Starting job|Job .* done)" ${PATHS.odooLogFile} | tail -n 40`], {
      procedure: "cron",
      step: "log",
    }),
    "",
    `The jobs and their next run, on ${onHost(adminHost(model), f)}:`,
    "",
    hostBlock(
      adminHost(model).id,
      sqlHeredoc(model, model.settings.databases[0], [
        "SELECT id, cron_name, interval_number, interval_type, nextcall, lastcall, active FROM ir_cron WHERE active ORDER BY nextcall;",
      ]),
      { procedure: "cron", step: "jobs" },
    ),
    "",
    `A job that overlaps itself or runs long holds one transaction for its whole run (locks, vacuum, ${link("long-transactions", f)}). Fix: process records in batches and commit between them, or trigger it less often (LIMIT-4). Do not raise ${code("max_cron_threads")} before measuring (LIMIT-2).`,
    "",
    heading("latency"),
    "",
    `The proxy's JSON access log (${code(logGroupName(model, "nginx-access"))}) has ${code("request_time")}, ${code("upstream_response_time")}, ${code("status")} and ${code("uri")} per request; the collector classifies ${code("uri")} into login, list, write and report (OBS-4). The slowest routes of the last hour, from your laptop (the second command takes the query id the first printed):`,
    "",
    laptopBlock(
      [
        insights(
          logGroupName(model, "nginx-access"),
          "fields uri, request_time, upstream_response_time, status | filter request_time > 1 | stats count(*) as n, max(request_time) as worst, avg(request_time) as mean by uri | sort n desc | limit 20",
        ),
        `aws logs get-query-results --region ${model.settings.region} --query-id "$QUERY_ID"`,
      ],
      { procedure: "latency", step: "insights", params: ["QUERY_ID"] },
    ),
    "",
    `${code("upstream_response_time")} close to ${code("request_time")}: Odoo is slow — check the PgBouncer queue (${link("pgbouncer-queue", f)}), locks, then the top queries. A gap between them: the client or the network.`,
    "",
  ].join("\n");
}

function hostsRunbook(model: StackModel): string {
  const f = RUNBOOK_FILES.hosts;
  const all = model.allHosts.map((h) => h.id);
  const rds = model.settings.postgresEngine === "rds";
  return [
    ...preamble(model, "Hosts: shells, resources, file descriptors, certificates, collector"),
    "## Shells (Session Manager)",
    "",
    "No host accepts SSH (DESIGN principle 9). A shell on a host, from your laptop (the AWS CLI and its Session Manager plugin):",
    "",
    ...model.allHosts.flatMap((h) => [
      `<a id="${shellAnchor(h)}"></a>`,
      `### ${h.id} (${code(h.fqdn)})`,
      "",
      laptopBlock([sessionCommand(model, h)]),
      "",
    ]),
    rds
      ? `There is no PostgreSQL host: PostgreSQL is the RDS instance ${code(rdsInstanceIdentifier(model))}, reached from ${code(model.hosts.pgbouncer.id)}.`
      : "",
    "",
    heading("host-resources"),
    "",
    `On any host (${all.map(code).join(", ")}):`,
    "",
    hostBlock(
      all,
      [
        "df -h / /var/lib/postgresql 2>/dev/null; df -i /",
        "sudo du -xh --max-depth=2 /var/log /var/lib 2>/dev/null | sort -h | tail -n 15",
        "free -m; swapon --show",
        "ps -eo pid,user,rss,vsz,comm --sort=-rss | head -n 15",
        "journalctl -k --since -1h | grep -i -E 'oom|killed process' || true",
      ],
      { procedure: "host-resources", step: "show" },
    ),
    "",
    rds
      ? `PostgreSQL's storage is RDS's (${code("postgresDataVolumeGiB")} GiB allocated): its ${code("FreeStorageSpace")} metric is in the RDS console; grow it with ${code("postgresDataVolumeGiB")} in the stack config and ${code("pulumi up")}. On Odoo hosts ${code("limit_memory_hard")} caps each process's address space (RLIMIT_AS), not their sum: memory pressure means the workers' resident memory (${code("ps -o rss,vsz -C odoo")}) outgrew the RAM; lower ${code("odoo.workers")} or pick a larger ${code("odooInstanceType")} (LIMIT-1).`
      : `On the PostgreSQL host the data volume (${code(PATHS.postgresDataMount)}) holds the database and WAL: grow the EBS volume (${code("postgresDataVolumeGiB")} in the stack config, ${code("pulumi up")}, then ${code("sudo resize2fs")} on its device) before it fills; a full volume stops PostgreSQL. On Odoo hosts ${code("limit_memory_hard")} caps each process's address space (RLIMIT_AS), not their sum: memory pressure means the workers' resident memory (${code("ps -o rss,vsz -C odoo")}) outgrew the RAM; lower ${code("odoo.workers")} or pick a larger ${code("odooInstanceType")} (LIMIT-1).`,
    "",
    heading("file-descriptors"),
    "",
    hostBlock(
      all,
      [
        'for p in pgbouncer postgres nginx odoo; do for pid in $(pgrep -x "$p"); do',
        '  printf \'%s %s: %s open / %s\\n\' "$p" "$pid" "$(sudo ls /proc/"$pid"/fd | wc -l)" "$(awk \'/Max open files/ {print $4}\' /proc/"$pid"/limits)"',
        "done; done",
      ],
      { procedure: "file-descriptors", step: "show" },
    ),
    "",
    `PgBouncer needs one fd per client and per server connection; its limit (${code("LimitNOFILE")} ${model.settings.sizing.pgbouncer.limitNofile}) is set by ${code(PATHS.pgbouncerLimits)} from the sizing. Near the limit: too many clients (a leak in a client, or ${code("max_client_conn")} too high for the limit) — ${code("SHOW CLIENTS")} (${link("pgbouncer-queue", f)}) shows where they come from.`,
    "",
    heading("certificates"),
    "",
    hostBlock(all, [`sudo openssl x509 -noout -subject -enddate -in ${PATHS.caCert}`], { procedure: "certificates", step: "internal-ca" }),
    "",
    `The public certificate on ${onHost(model.hosts.proxy, f)}:`,
    "",
    hostBlock(model.hosts.proxy.id, ["systemctl list-timers certbot.timer", "sudo certbot renew --dry-run"], {
      procedure: "certificates",
      step: "public",
    }),
    "",
    `- The public certificate renews by certbot (DNS-01 on Route 53) twice a day once within 30 days of expiry; a failing renewal shows in ${code("journalctl -u certbot")}. An imported certificate must be replaced in its SSM parameters, then the proxy's files re-applied (${code("sudo /usr/local/sbin/odoo-stack-apply")} there).`,
    `- Internal host certificates are re-issued by ${code("pulumi up")} before expiry (early renewal, TLS-4); then run ${code("sudo /usr/local/sbin/odoo-stack-apply")} on each host it names (or re-run its association: ${code(`aws ssm start-associations-once --region ${model.settings.region} --association-ids <id>`)}), so the new files are installed and the daemons reloaded. The CA itself: below.`,
    "",
    ...procedureSection(model, procedureById(model, "rotate-internal-ca"), f),
    heading("collector"),
    "",
    `Every host runs ${code(METRICS_UNITS.timer)} every minute; ${code(METRICS_UNITS.service)} runs ${code(METRICS_COLLECTOR_PATH)} with ${code(METRICS_CONFIG_PATH)} (and ${code(METRICS_PGPASS_PATH)} where it reads a database). On the host the alarm names:`,
    "",
    hostBlock(
      all,
      [
        `systemctl list-timers ${METRICS_UNITS.timer}; systemctl status ${METRICS_UNITS.service} --no-pager || true`,
        `journalctl -u ${METRICS_UNITS.service} -n 30 --no-pager`,
        `sudo env ODOO_STACK_METRICS_OUTPUT=- ODOO_STACK_METRICS_STATE="$(mktemp -d)" PGPASSFILE=${METRICS_PGPASS_PATH} python3 ${METRICS_COLLECTOR_PATH}`,
      ],
      { procedure: "collector", step: "show" },
    ),
    "",
    `The last command is one run printing what it would publish, with a throwaway state. A psql login failure after a password rotation: the password file is rendered from SSM by the apply script; run it on that host. The CloudWatch agent (host metrics and logs): ${code("sudo /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a status")}.`,
    "",
  ].join("\n");
}

function alarmsRunbook(model: StackModel, alarms: readonly AlarmSpec[], hasBackupRunbook: boolean): string {
  const f = RUNBOOK_FILES.alarms;
  const cmp: Record<AlarmSpec["comparisonOperator"], string> = {
    GreaterThanThreshold: ">",
    GreaterThanOrEqualToThreshold: "≥",
    LessThanThreshold: "<",
    LessThanOrEqualToThreshold: "≤",
  };
  const entries = alarms.flatMap((a) => [
    `<a id="${a.name}"></a>`,
    `### ${a.name}`,
    "",
    `${a.summary} (${a.checklist.join(", ")})`,
    "",
    `- Metric: ${code(`${a.namespace} ${a.metricName}`)} with ${Object.entries(a.dimensions)
      .map(([k, v]) => code(`${k}=${v}`))
      .join(", ")}`,
    `- Fires when: ${a.statistic} ${cmp[a.comparisonOperator]} ${a.threshold} in ${a.datapointsToAlarm} of ${a.evaluationPeriods} periods of ${a.period} s; missing data: ${a.treatMissingData}`,
    `- What it means, what to do first: ${a.response}`,
    `- Procedures: ${a.procedures.map((p) => link(p, f)).join(", ")}`,
    "",
  ]);
  const backups = backupAlarmEntries(model);
  return [
    ...preamble(model, "Alarms: what each one means and what to do"),
    `Every alarm notifies the SNS topic ${code(`${model.project}-${model.stack}-alarms`)}${model.settings.alarmEmail ? ` (e-mail to ${code(model.settings.alarmEmail)})` : " (no e-mail configured: set alarmEmail in the stack config)"}, when it fires and when it recovers. The dashboard ${code(`${model.project}-${model.stack}`)} shows them by checklist section.`,
    "",
    "| Alarm | Checklist | Section |",
    "| --- | --- | --- |",
    ...alarms.map((a) => `| [${a.name}](#${a.name}) | ${a.checklist.join(", ")} | ${a.section} |`),
    ...backups.map((b) => `| [${b.name}](#${b.name}) | ${b.checklist.join(", ")} | backups |`),
    "",
    "## Alarm by alarm",
    "",
    ...entries,
    "## Backup alarms (BackupPlan)",
    "",
    hasBackupRunbook ? `Their metrics and responses: ${link("backups", f)}.` : "",
    "",
    ...backups.flatMap((b) => [`<a id="${b.name}"></a>`, `### ${b.name}`, "", `${b.summary} (${b.checklist.join(", ")})`, ""]),
  ].join("\n");
}

function upgradesRunbook(model: StackModel): string {
  const f = RUNBOOK_FILES.upgrades;
  const rds = model.settings.postgresEngine === "rds";
  return [
    ...preamble(model, "Upgrades: Odoo, PostgreSQL, PgBouncer (BACKUP-3)"),
    "Every upgrade starts with a fresh backup, so that rolling back is a restore, not a repair. Rehearse on a restored copy first: " +
      (rds
        ? `a point-in-time copy (${link("backups", f)}, its restore step only) takes the upgrade without touching production.`
        : `the restore drill can keep its scratch cluster (${code("--keep")}, ${link("backups", f)}), and an Odoo upgrade can be run against it.`),
    "",
    ...procedureSection(model, procedureById(model, "upgrade-odoo"), f),
    ...procedureSection(model, procedureById(model, "release-odoo"), f),
    ...procedureSection(model, procedureById(model, "upgrade-postgresql"), f),
    ...procedureSection(model, procedureById(model, "upgrade-pgbouncer"), f),
    rds ? `RDS's engine and its maintenance window (${code(RDS_POSTGRES.maintenanceWindow)}) are the stack's: see templates/rds.ts.` : "",
    "",
  ].join("\n");
}

function indexRunbook(model: StackModel, files: readonly string[], procedures: readonly OperationalProcedure[]): string {
  const rds = model.settings.postgresEngine === "rds";
  return [
    ...preamble(model, "Runbooks"),
    `Generated from the stack's model. Hosts: ${model.allHosts.map((h) => `${onHost(h, RUNBOOK_FILES.index)} (${code(h.fqdn)})`).join(", ")}${rds ? `; PostgreSQL is the RDS instance ${code(rdsInstanceIdentifier(model))}` : ""}. Log groups: ${LOG_SOURCE_NAMES.map((s) => code(logGroupName(model, s))).join(", ")}.`,
    "",
    "Every shell block says where it runs: ```` ```sh laptop ```` on your machine (AWS CLI, Pulumi CLI), ```` ```sh host=<id> ```` on that host (a shell through Session Manager, see hosts.md), with the procedure and step it belongs to.",
    "",
    ...files.filter((f) => f !== RUNBOOK_FILES.index).map((f) => `- [${f}](${f})`),
    "",
    "Operational procedures:",
    "",
    ...procedures.map((p) => `- ${procedureLink(p, RUNBOOK_FILES.index)} (${p.checklist.join(", ")})`),
    "",
    "What to do when an alarm fires:",
    "",
    ...PROCEDURES.filter((p) => files.includes(PROCEDURE_LOCATION[p].file) && !procedures.some((o) => o.id === p)).map(
      (p) => `- [${PROCEDURE_LOCATION[p].title}](${PROCEDURE_LOCATION[p].file}#${p})`,
    ),
    "",
  ].join("\n");
}

/** Every runbook of the stack by file name (sorted), markdown. */
export function renderRunbooks(model: StackModel, input: RunbooksInput = {}): Record<string, string> {
  const alarms = input.alarms ?? monitoringAlarms(model);
  const docs: Record<string, string> = {
    [RUNBOOK_FILES.pgbouncer]: pgbouncerRunbook(model),
    [RUNBOOK_FILES.rotation]: rotationRunbook(model),
    [RUNBOOK_FILES.postgresql]: postgresRunbook(model),
    [RUNBOOK_FILES.odoo]: odooRunbook(model),
    [RUNBOOK_FILES.hosts]: hostsRunbook(model),
    [RUNBOOK_FILES.alarms]: alarmsRunbook(model, alarms, input.backup !== undefined),
    [RUNBOOK_FILES.upgrades]: upgradesRunbook(model),
  };
  if (input.backup) docs[RUNBOOK_FILES.backup] = renderBackupRunbook(model, input.backup).replace(/\n## /, `\n${anchor("backups")}\n## `);
  const procedures = operationalProcedures(model).filter((p) => operationalProcedureFile(p.id) in docs);
  docs[RUNBOOK_FILES.index] = indexRunbook(model, Object.keys(docs).concat(RUNBOOK_FILES.index).sort(), procedures);
  return Object.fromEntries(
    Object.keys(docs)
      .sort()
      .map((k) => [k, docs[k]]),
  );
}
