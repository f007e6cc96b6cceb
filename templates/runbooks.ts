// The stack's operator runbooks (BACKUP-3, BACKUP-4, AUTH-4: R), generated with the stack's real
// names — hosts, databases, roles, sockets, paths, log groups, alarm names — and commands run
// through SSM Session Manager (no SSH, DESIGN principle 9). The alarm responses are rendered
// from the alarm table the Monitoring component creates its alarms from (templates/alarms.ts),
// so every alarm has an entry. Pure: markdown out; `npm run plan` writes out/<stack>/runbooks/.
import { TAG_KEYS } from "../components/tags";
import { DB_ROLES, PATHS, type HostId, type StackModel } from "../lib/model";
import { PORTS } from "../lib/ports";
import { backupAlarmEntries, monitoringAlarms, PROCEDURES, type AlarmSpec, type Procedure } from "./alarms";
import { LOG_SOURCE_NAMES, logGroupName, POSTGRES_LOG_FILE } from "./cloudwatch-agent";
import { GENERATED } from "./format";
import { METRICS_COLLECTOR_PATH, METRICS_CONFIG_PATH, METRICS_PGPASS_PATH, METRICS_UNITS, TOP_QUERIES_LOG } from "./metrics";
import { odooMigrationCommand } from "./odoo-conf";
import { LISTEN_DATABASE, PGBOUNCER_DEBIAN } from "./pgbouncer";
import { renderBackupRunbook, type BackupRunbookInput } from "./runbook-backup";
import { SCRIPT_PATHS } from "./scripts";

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
  postgresql: "postgresql.md",
  odoo: "odoo.md",
  hosts: "hosts.md",
  alarms: "alarms.md",
  upgrades: "upgrades.md",
  backup: "backup.md",
} as const;

/** Where each procedure lives: its file and anchor (an explicit <a id>, stable across edits of the heading). */
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
};

/** A markdown code span; names here never contain a backtick, and a newline would break the line. */
function code(value: string | number): string {
  const s = String(value);
  if (/[`\r\n]/.test(s)) throw new Error(`runbook value must not contain a backtick or a newline: ${JSON.stringify(s)}`);
  return `\`${s}\``;
}

const shell = (...commands: string[]): string => ["```sh", ...commands, "```"].join("\n");
const sql = (...statements: string[]): string => ["```sql", ...statements, "```"].join("\n");
const anchor = (p: Procedure): string => `<a id="${p}"></a>`;
const link = (p: Procedure, from: string): string => {
  const loc = PROCEDURE_LOCATION[p];
  return `[${loc.title}](${loc.file === from ? "" : loc.file}#${p})`;
};
const heading = (p: Procedure): string => `${anchor(p)}\n## ${PROCEDURE_LOCATION[p].title}`;

/** Shell on a host of the stack through Session Manager, found by its odoo-stack:host tag. */
export function sessionCommand(model: StackModel, host: HostId): string {
  const lookup = `aws ec2 describe-instances --region ${model.settings.region} --filters Name=tag:${TAG_KEYS.stack},Values=${model.stack} Name=tag:${TAG_KEYS.host},Values=${host.id} Name=instance-state-name,Values=running --query 'Reservations[].Instances[].InstanceId' --output text`;
  return `aws ssm start-session --region ${model.settings.region} --target "$(${lookup})"`;
}

function preamble(model: StackModel, title: string): string[] {
  return [`<!-- ${GENERATED} -->`, `# ${title} — stack ${code(model.stack)}`, ""];
}

/** The admin console over PgBouncer's Unix socket, as the service's OS user (no password: AUTH-4). */
const pgbouncerConsole = (command: string): string =>
  `sudo -u ${PGBOUNCER_DEBIAN.serviceUser} psql -X -h ${PGBOUNCER_DEBIAN.unixSocketDir} -p ${PORTS.pgbouncer.port} -U pgbouncer pgbouncer -c '${command}'`;
const postgresSql = (database: string): string => `sudo -u postgres psql -X -d ${database}`;

function pgbouncerRunbook(model: StackModel): string {
  const f = RUNBOOK_FILES.pgbouncer;
  const rotate = SCRIPT_PATHS.rotate;
  const dbs = model.settings.databases;
  return [
    ...preamble(model, "PgBouncer"),
    `PgBouncer runs on ${code(model.hosts.pgbouncer.fqdn)} (port ${PORTS.pgbouncer.port}, transaction pooling; ${code(LISTEN_DATABASE)} in session pooling for Odoo's LISTEN). Open a shell there:`,
    "",
    shell(sessionCommand(model, model.hosts.pgbouncer)),
    "",
    heading("pgbouncer-queue"),
    "",
    "How to see the queue (BACKUP-4): the admin console over the Unix socket, as the OS user PgBouncer runs as (no password needed, nothing exposed on the network):",
    "",
    shell(pgbouncerConsole("SHOW POOLS"), pgbouncerConsole("SHOW STATS"), pgbouncerConsole("SHOW CLIENTS"), pgbouncerConsole("SHOW SERVERS")),
    "",
    `- ${code("cl_waiting")} > 0: clients wait for a server connection; ${code("maxwait")} + ${code("maxwait_us")} is how long the oldest has waited (OBS-1).`,
    `- ${code("sv_active")} equal to the pool size (${code("default_pool_size")} ${model.settings.sizing.pgbouncer.defaultPoolSize}, + ${model.settings.sizing.pgbouncer.reservePoolSize} reserve after ${model.settings.sizing.pgbouncer.reservePoolTimeoutSeconds} s) means every server connection is busy. ${code("SHOW SERVERS")} lists them; match their ${code("remote_pid")} to ${code("pg_stat_activity.pid")} on PostgreSQL to see what they run (${link("long-transactions", f)}, ${link("locks", f)}).`,
    `- Grow the pool only once no long transaction or lock explains the queue: set ${code("pgbouncer.defaultPoolSize")} in the stack config (its invariants keep PostgreSQL's ${code("max_connections")} coherent, PG-1), ${code("pulumi up")}; the change is applied by RELOAD without dropping clients.`,
    "",
    `The same figures are in CloudWatch (namespace ${code("OdooStack/PgBouncer")}, dimensions ${code(`Stack=${model.stack}`)} and ${code("Database")}) and on the dashboard ${code(`${model.project}-${model.stack}`)}.`,
    "",
    "## Reload the auth_file (userlist.txt) and PgBouncer's settings (BACKUP-4)",
    "",
    `${code(PATHS.pgbouncerUserlist)} (mode 0600, AUTH-2) holds SCRAM verifiers only. It is rendered from SSM and installed by the apply script, which validates it with a throwaway PgBouncer and then reloads. To reload by hand (no client is disconnected):`,
    "",
    shell("sudo systemctl reload pgbouncer", pgbouncerConsole("RELOAD"), `sudo tail -n 20 ${PGBOUNCER_DEBIAN.logFile}`),
    "",
    "## Rotate a database password (AUTH-4)",
    "",
    `Order matters (the rotation script documents why): PostgreSQL first, then PgBouncer, then every Odoo host. First put the new password and its SCRAM verifier in SSM (${code(model.parameters.odooDbPassword)}, ${code(model.parameters.odooDbScramVerifier)}): change the password's keeper and run ${code("pulumi up")}. Then, back to back, in a quiet hour:`,
    "",
    shell(
      `# 1. PostgreSQL host (${model.hosts.postgres.id}): ALTER ROLE ${DB_ROLES.odoo} with the new verifier`,
      sessionCommand(model, model.hosts.postgres),
      `sudo ${rotate} postgres --role ${DB_ROLES.odoo}`,
      `sudo ${rotate} postgres --role ${DB_ROLES.migrate}   # the migration role shares the password`,
      `# 2. PgBouncer host: re-render userlist.txt, check, RELOAD`,
      sessionCommand(model, model.hosts.pgbouncer),
      `sudo ${rotate} pgbouncer`,
      ...model.hosts.odoo.flatMap((h, i) => [
        `# ${3 + i}. ${h.id}: new db_password in odoo.conf, graceful restart`,
        sessionCommand(model, h),
        `sudo ${rotate} odoo`,
      ]),
      `# ${3 + model.hosts.odoo.length}. any Odoo host: log in through PgBouncer with odoo.conf's credentials`,
      `sudo ${rotate} check --dbname ${dbs[0]}`,
    ),
    "",
    `Between steps 1 and 3 only new connections are affected; open ones keep working. The stats user (${code(DB_ROLES.stats)}) rotates the same way with ${code(`--role ${DB_ROLES.stats} --verifier-parameter ${model.parameters.statsScramVerifier}`)}.`,
    "",
  ].join("\n");
}

function postgresRunbook(model: StackModel): string {
  const db = model.settings.databases[0];
  const sizing = model.settings.sizing.postgres;
  return [
    ...preamble(model, "PostgreSQL: locks, long transactions, autovacuum"),
    `PostgreSQL 15 runs on ${code(model.hosts.postgres.fqdn)}; databases ${model.settings.databases.map(code).join(", ")}. Open a shell there, then psql as the superuser over the socket (peer authentication):`,
    "",
    shell(sessionCommand(model, model.hosts.postgres), postgresSql(db)),
    "",
    heading("long-transactions"),
    "",
    `Oldest transactions first (OBS-7, BACKUP-4). Through PgBouncer, ${code("application_name")} carries the Odoo host and port (${code("application_name_add_host")}); ${code("state = 'idle in transaction'")} is a transaction waiting for its client.`,
    "",
    sql(
      "SELECT pid, datname, usename, application_name, client_addr, state,",
      "       now() - xact_start AS xact_age, now() - state_change AS in_state_for,",
      "       wait_event_type, wait_event, left(query, 200) AS query",
      "FROM pg_stat_activity",
      "WHERE xact_start IS NOT NULL AND backend_type = 'client backend'",
      "ORDER BY xact_start",
      "LIMIT 20;",
    ),
    "",
    `Guards already in place (PG-2, per role): ${code("statement_timeout")} ${sizing.statementTimeoutMs} ms, ${code("lock_timeout")} ${sizing.lockTimeoutMs} ms, ${code("idle_in_transaction_session_timeout")} ${sizing.idleInTransactionSessionTimeoutMs} ms. A transaction older than these is a cron or a session outside Odoo's role. End it — cancel first (the transaction rolls back, the session stays), terminate if that does not help:`,
    "",
    sql("SELECT pg_cancel_backend(<pid>);", "SELECT pg_terminate_backend(<pid>);"),
    "",
    `Through PgBouncer's transaction pooling a terminated server connection is replaced by PgBouncer; the Odoo worker whose transaction it was gets an error and retries or shows it. A cron that keeps showing up here needs batching with intermediate commits (LIMIT-4, ${link("cron", RUNBOOK_FILES.postgresql)}).`,
    "",
    heading("locks"),
    "",
    `Who waits on whom (OBS-7, BACKUP-4). ${code("log_lock_waits")} (PG-3) also logs every wait longer than ${code("deadlock_timeout")} to ` +
      (model.settings.postgresEngine === "rds"
        ? `PostgreSQL's log, which RDS exports to the log group ${code(logGroupName(model, "postgresql"))}.`
        : `${code(POSTGRES_LOG_FILE)} (log group ${code(logGroupName(model, "postgresql"))}).`),
    "",
    sql(
      "SELECT w.pid AS waiting_pid, now() - w.query_start AS waiting_for, left(w.query, 120) AS waiting_query,",
      "       b.pid AS blocking_pid, b.state AS blocking_state, now() - b.xact_start AS blocking_xact_age,",
      "       b.application_name AS blocking_app, left(b.query, 120) AS blocking_last_query",
      "FROM pg_stat_activity w",
      "JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid) ON true",
      "JOIN pg_stat_activity b ON b.pid = blocker.pid",
      "ORDER BY waiting_for DESC;",
    ),
    "",
    `The root blocker is the ${code("blocking_pid")} that is not itself waiting. If it is ${code("idle in transaction")} or has run far longer than a request may (its client is gone or stuck), cancel it, then terminate it: ${code("SELECT pg_cancel_backend(<pid>);")} / ${code("SELECT pg_terminate_backend(<pid>);")}. Deadlocks resolve themselves (one transaction is aborted, logged as ${code("deadlock detected")}); repeated ones point at two code paths updating the same rows in different orders.`,
    "",
    heading("autovacuum"),
    "",
    sql(
      "-- tables with the most dead rows, and when autovacuum last got to them (PG-4)",
      "SELECT relname, n_live_tup, n_dead_tup, last_autovacuum, last_vacuum, autovacuum_count",
      "FROM pg_stat_user_tables ORDER BY n_dead_tup DESC LIMIT 15;",
      "-- autovacuum workers now",
      "SELECT pid, now() - xact_start AS running_for, query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker';",
      "-- transaction-ID age per database and the oldest tables",
      "SELECT datname, age(datfrozenxid) FROM pg_database ORDER BY 2 DESC;",
      "SELECT c.oid::regclass, age(c.relfrozenxid) FROM pg_class c WHERE c.relkind IN ('r', 't', 'm') ORDER BY 2 DESC LIMIT 10;",
    ),
    "",
    `A long transaction (above) stops vacuum from removing anything newer than it: end it first. Then vacuum the worst table by hand (it does not block reads or writes): ${code("VACUUM (VERBOSE, ANALYZE) <table>;")}. Autovacuum runs over 1 s are in the PostgreSQL log (${code("log_autovacuum_min_duration")}).`,
    "",
    "## Top queries (OBS-7)",
    "",
    `Every minute the collector appends the ten statements with the most total execution time to ${code(TOP_QUERIES_LOG)} (log group ${code(logGroupName(model, "top-queries"))}). Live:`,
    "",
    sql(
      "SELECT d.datname, s.calls, round(s.total_exec_time) AS total_ms, round(s.mean_exec_time::numeric, 1) AS mean_ms,",
      "       s.rows, left(s.query, 200) AS query",
      "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid",
      "ORDER BY s.total_exec_time DESC LIMIT 20;",
      "-- after a fix, start measuring afresh:",
      "SELECT pg_stat_statements_reset();",
    ),
    "",
  ].join("\n");
}

function odooRunbook(model: StackModel): string {
  const f = RUNBOOK_FILES.odoo;
  const cronHost = model.hosts.odoo.find((h) => h.runsCron) as HostId;
  const insights = (group: string, query: string) =>
    `aws logs start-query --region ${model.settings.region} --log-group-name ${group} --start-time $(date -d '-1 hour' +%s) --end-time $(date +%s) --query-string '${query}'`;
  return [
    ...preamble(model, "Odoo: errors, crons, latency"),
    `Odoo hosts: ${model.hosts.odoo.map((h) => code(h.id)).join(", ")} (crons run on ${code(cronHost.id)} only). Log: ${code(PATHS.odooLogFile)} on each host, shipped to ${code(logGroupName(model, "odoo"))} (one stream per host). Shell on a host:`,
    "",
    shell(sessionCommand(model, model.hosts.odoo[0])),
    "",
    heading("odoo-errors"),
    "",
    "The collector counts these lines every minute (OBS-5); find the requests and tracebacks around them:",
    "",
    shell(
      `sudo grep -nE 'virtual real time limit|CPU time limit|timeout after|virtual memory limit|PoolError|Connection Pool Is Full|deadlock detected' ${PATHS.odooLogFile} | tail -n 50`,
      insights(logGroupName(model, "odoo"), "fields @timestamp, @logStream, @message | filter @message like /PoolError|deadlock detected|time limit|memory limit|Traceback/ | sort @timestamp desc | limit 50"),
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
      `the collector turns them into durations, overlaps and the age of the job still running (OBS-6). On ${code(cronHost.id)}:`,
    "",
    shell(`sudo grep -E "ir_cron: (Starting job|Job .* done)" ${PATHS.odooLogFile} | tail -n 40`),
    "",
    sql(
      `-- ${postgresSql(model.settings.databases[0])} on the PostgreSQL host`,
      "SELECT id, cron_name, interval_number, interval_type, nextcall, lastcall, active FROM ir_cron WHERE active ORDER BY nextcall;",
    ),
    "",
    `A job that overlaps itself or runs long holds one transaction for its whole run (locks, vacuum, ${link("long-transactions", f)}). Fix: process records in batches and commit between them, or trigger it less often (LIMIT-4). Do not raise ${code("max_cron_threads")} before measuring (LIMIT-2).`,
    "",
    heading("latency"),
    "",
    `The proxy's JSON access log (${code(logGroupName(model, "nginx-access"))}) has ${code("request_time")}, ${code("upstream_response_time")}, ${code("status")} and ${code("uri")} per request; the collector classifies ${code("uri")} into login, list, write and report (OBS-4). The slowest routes of the last hour:`,
    "",
    shell(
      insights(logGroupName(model, "nginx-access"), "fields uri, request_time, upstream_response_time, status | filter request_time > 1 | stats count(*) as n, max(request_time) as worst, avg(request_time) as mean by uri | sort n desc | limit 20"),
      `aws logs get-query-results --region ${model.settings.region} --query-id <id printed above>`,
    ),
    "",
    `${code("upstream_response_time")} close to ${code("request_time")}: Odoo is slow — check the PgBouncer queue (${link("pgbouncer-queue", f)}), locks, then the top queries. A gap between them: the client or the network.`,
    "",
  ].join("\n");
}

function hostsRunbook(model: StackModel): string {
  const f = RUNBOOK_FILES.hosts;
  return [
    ...preamble(model, "Hosts: resources, file descriptors, certificates, collector"),
    "Shell on any host:",
    "",
    shell(...model.allHosts.map((h) => `${sessionCommand(model, h)}   # ${h.id}`)),
    "",
    heading("host-resources"),
    "",
    shell(
      "df -h / /var/lib/postgresql 2>/dev/null; df -i /",
      "sudo du -xh --max-depth=2 /var/log /var/lib 2>/dev/null | sort -h | tail -n 15",
      "free -m; swapon --show",
      "ps -eo pid,user,rss,vsz,comm --sort=-rss | head -n 15",
      "journalctl -k --since -1h | grep -i -E 'oom|killed process'",
    ),
    "",
    `On the PostgreSQL host the data volume (${code(PATHS.postgresDataMount)}) holds the database and WAL: grow the EBS volume (${code("postgresDataVolumeGiB")} in the stack config, ${code("pulumi up")}, then ${code("sudo resize2fs")} on its device) before it fills; a full volume stops PostgreSQL. On Odoo hosts memory pressure means workers × ${code("limit_memory_hard")} no longer fits (LIMIT-1).`,
    "",
    heading("file-descriptors"),
    "",
    shell(
      "for p in pgbouncer postgres nginx odoo; do for pid in $(pgrep -x \"$p\"); do",
      "  printf '%s %s: %s open / %s\\n' \"$p\" \"$pid\" \"$(sudo ls /proc/\"$pid\"/fd | wc -l)\" \"$(awk '/Max open files/ {print $4}' /proc/\"$pid\"/limits)\"",
      "done; done",
    ),
    "",
    `PgBouncer needs one fd per client and per server connection; its limit (${code("LimitNOFILE")} ${model.settings.sizing.pgbouncer.limitNofile}) is set by ${code(PATHS.pgbouncerLimits)} from the sizing. Near the limit: too many clients (a leak in a client, or ${code("max_client_conn")} too high for the limit) — ${code("SHOW CLIENTS")} (${link("pgbouncer-queue", f)}) shows where they come from.`,
    "",
    heading("certificates"),
    "",
    shell(
      `sudo openssl x509 -noout -subject -enddate -in ${PATHS.caCert}`,
      "sudo openssl x509 -noout -subject -enddate -in <the certificate named by the alarm>",
      "systemctl list-timers certbot.timer; sudo certbot renew --dry-run        # proxy, ACME",
    ),
    "",
    `- The public certificate on the proxy renews by certbot (DNS-01 on Route 53) twice a day once within 30 days of expiry; a failing renewal shows in ${code("journalctl -u certbot")}. An imported certificate must be replaced in its SSM parameters, then the host's files re-applied.`,
    `- Internal certificates (CA, PgBouncer, PostgreSQL) are re-issued by ${code("pulumi up")} before expiry (early renewal, TLS-4); then re-run each host's apply association (${code(`aws ssm list-associations --region ${model.settings.region}`)}, ${code("aws ssm start-associations-once --association-ids <id>")}) so the new files are installed and the daemons reloaded.`,
    "",
    heading("collector"),
    "",
    `Every host runs ${code(METRICS_UNITS.timer)} every minute; ${code(METRICS_UNITS.service)} runs ${code(METRICS_COLLECTOR_PATH)} with ${code(METRICS_CONFIG_PATH)} (and ${code(METRICS_PGPASS_PATH)} on the database hosts).`,
    "",
    shell(
      `systemctl list-timers ${METRICS_UNITS.timer}; systemctl status ${METRICS_UNITS.service}`,
      `journalctl -u ${METRICS_UNITS.service} -n 30            # the failing source and its error`,
      `# one run printing what it would publish, with a throwaway state:`,
      `sudo env ODOO_STACK_METRICS_OUTPUT=- ODOO_STACK_METRICS_STATE=$(mktemp -d) PGPASSFILE=${METRICS_PGPASS_PATH} python3 ${METRICS_COLLECTOR_PATH}`,
    ),
    "",
    `A psql login failure on the PgBouncer or PostgreSQL host after a password rotation: the password file is rendered from SSM by the apply script; re-run the host's apply association. The CloudWatch agent (host metrics and logs): ${code("sudo /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a status")}.`,
    "",
  ].join("\n");
}

function alarmsRunbook(model: StackModel, alarms: readonly AlarmSpec[]): string {
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
    `- Metric: ${code(`${a.namespace} ${a.metricName}`)} with ${Object.entries(a.dimensions).map(([k, v]) => code(`${k}=${v}`)).join(", ")}`,
    `- Fires when: ${a.statistic} ${cmp[a.comparisonOperator]} ${a.threshold} in ${a.datapointsToAlarm} of ${a.evaluationPeriods} periods of ${a.period} s; missing data: ${a.treatMissingData}`,
    `- What it means, what to do first: ${a.response}`,
    `- Procedures: ${a.procedures.map((p) => link(p, f)).join(", ")}`,
    "",
  ]);
  return [
    ...preamble(model, "Alarms: what each one means and what to do"),
    `Every alarm notifies the SNS topic ${code(`${model.project}-${model.stack}-alarms`)}${model.settings.alarmEmail ? ` (e-mail to ${code(model.settings.alarmEmail)})` : " (no e-mail configured: set alarmEmail in the stack config)"}, when it fires and when it recovers. The dashboard ${code(`${model.project}-${model.stack}`)} shows them by checklist section.`,
    "",
    "| Alarm | Checklist | Section |",
    "| --- | --- | --- |",
    ...alarms.map((a) => `| [${a.name}](#${a.name}) | ${a.checklist.join(", ")} | ${a.section} |`),
    "",
    "## Alarm by alarm",
    "",
    ...entries,
    "## Backup alarms (BackupPlan)",
    "",
    `Named ${code("backup-plan-<id>-<suffix>")} in CloudWatch; responses in ${link("backups", f)}.`,
    "",
    ...backupAlarmEntries(model).map((b) => `- ${code(b.id)} — ${b.summary}`),
    "",
  ].join("\n");
}

function upgradesRunbook(model: StackModel): string {
  const db = model.settings.databases[0];
  return [
    ...preamble(model, "Upgrades: Odoo, PostgreSQL, PgBouncer (BACKUP-3)"),
    `Before any upgrade: a fresh backup and a snapshot, so that rolling back is a restore, not a repair. On the PostgreSQL host (${code(model.hosts.postgres.id)}):`,
    "",
    shell(
      sessionCommand(model, model.hosts.postgres),
      "sudo systemctl start odoo-stack-pgbackrest-diff && sudo -u postgres pgbackrest --stanza=main info",
      `aws ec2 create-snapshot --region ${model.settings.region} --volume-id "$(pulumi stack output postgresDataVolumeId)" --description "before upgrade"`,
    ),
    "",
    "Rehearse on a restored copy first: the restore drill can keep its scratch cluster (backup runbook, \"Get back one record\"), and an Odoo upgrade can be run against it.",
    "",
    "## Odoo",
    "",
    `Minor updates (same series, ${code(model.settings.odooVersion)}): one Odoo host at a time, so the proxy keeps serving from the others${model.hosts.odoo.length === 1 ? " (with one host: a short outage, in a quiet hour)" : ""}.`,
    "",
    shell(
      ...model.hosts.odoo.flatMap((h) => [
        `# ${h.id}`,
        sessionCommand(model, h),
        "sudo apt-get update && sudo apt-get install --only-upgrade odoo",
        "sudo systemctl restart odoo && sudo systemctl status odoo --no-pager",
      ]),
      `# then, once, the module data (from ${model.hosts.odoo[0].id}, with Odoo stopped on every host), as ${DB_ROLES.migrate}:`,
      `# no statement_timeout for the long rewrites of big tables, the same lock_timeout`,
      ...model.settings.databases.map((d) => odooMigrationCommand(model, model.hosts.odoo[0], d)),
    ),
    "",
    `Major versions (e.g. 16.0 → 17.0) need a database migration (Odoo's upgrade service or OpenUpgrade) on a restored copy, tested, then: set ${code("odooVersion")} in the stack config, ${code("pulumi up")} (the renderers apply the new version's options), restore the migrated database. Keep the pre-upgrade backup until the new version has run a full business cycle.`,
    "",
    "## PostgreSQL",
    "",
    `Minor releases (15.x) are security and bug fixes: apply them. PgBouncer keeps clients connected while PostgreSQL restarts; transactions in flight fail and Odoo retries or reports them.`,
    "",
    shell(
      sessionCommand(model, model.hosts.postgres),
      "sudo apt-get update && sudo apt-get install --only-upgrade postgresql-15 postgresql-client-15",
      "sudo systemctl restart postgresql@15-main",
      `sudo -u postgres psql -X -d ${db} -c 'SELECT version()'`,
    ),
    "",
    `A major version (16, 17) changes the data directory layout (${code("pg_upgradecluster")}) and this stack's rendered paths (${code(PATHS.postgresConfDir)}): it is a change to the stack (templates), rehearsed on a restored copy, not an operator step.`,
    "",
    "## PgBouncer",
    "",
    shell(
      sessionCommand(model, model.hosts.pgbouncer),
      "sudo apt-get update && sudo apt-get install --only-upgrade pgbouncer",
      "sudo systemctl restart pgbouncer      # clients reconnect; do it in a quiet minute",
      pgbouncerConsole("SHOW VERSION"),
      pgbouncerConsole("SHOW POOLS"),
    ),
    "",
    `The metrics collector reads ${code("SHOW POOLS")} / ${code("SHOW STATS")} columns by name, so a release that adds or removes columns keeps working (Debian's packaged PgBouncer exporter does not: it assumes the columns of the release it was built for). After the upgrade check that ${code("ClientsWaiting")} still arrives on the dashboard and that the apply script's validation of ${code(PATHS.pgbouncerIni)} passes (${code("systemctl reload pgbouncer")}, then the log).`,
    "",
  ].join("\n");
}

function indexRunbook(model: StackModel, files: readonly string[]): string {
  return [
    ...preamble(model, "Runbooks"),
    `Generated from the stack's model; every name and command is this stack's. Hosts: ${model.allHosts.map((h) => `${code(h.id)} (${code(h.fqdn)})`).join(", ")}. Log groups: ${LOG_SOURCE_NAMES.map((s) => code(logGroupName(model, s))).join(", ")}.`,
    "",
    ...files.filter((f) => f !== RUNBOOK_FILES.index).map((f) => `- [${f}](${f})`),
    "",
    "Procedures:",
    "",
    ...PROCEDURES.filter((p) => files.includes(PROCEDURE_LOCATION[p].file)).map((p) => `- [${PROCEDURE_LOCATION[p].title}](${PROCEDURE_LOCATION[p].file}#${p})`),
    "",
  ].join("\n");
}

/** Every runbook of the stack by file name (sorted), markdown. */
export function renderRunbooks(model: StackModel, input: RunbooksInput = {}): Record<string, string> {
  const alarms = input.alarms ?? monitoringAlarms(model);
  const docs: Record<string, string> = {
    [RUNBOOK_FILES.pgbouncer]: pgbouncerRunbook(model),
    [RUNBOOK_FILES.postgresql]: postgresRunbook(model),
    [RUNBOOK_FILES.odoo]: odooRunbook(model),
    [RUNBOOK_FILES.hosts]: hostsRunbook(model),
    [RUNBOOK_FILES.alarms]: alarmsRunbook(model, alarms),
    [RUNBOOK_FILES.upgrades]: upgradesRunbook(model),
  };
  if (input.backup) {
    const backup = renderBackupRunbook(model, input.backup);
    docs[RUNBOOK_FILES.backup] = backup.replace(/\n## /, `\n${anchor("backups")}\n## `);
  }
  docs[RUNBOOK_FILES.index] = indexRunbook(model, Object.keys(docs).concat(RUNBOOK_FILES.index).sort());
  return Object.fromEntries(Object.keys(docs).sort().map((k) => [k, docs[k]]));
}
