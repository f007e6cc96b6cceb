// The scheduled jobs that make and verify backups (BACKUP-1, BACKUP-2), as systemd service +
// timer units, plus the files they need, per host role:
//   postgres: pgbackrest.conf, weekly full and daily differential backups, the weekly restore
//             drill and the hourly metrics report (backup age, drill freshness);
//   odoo:     an hourly sync of the filestore to the backup bucket.
// Pure: no Pulumi import. The apply script installs the files, reloads systemd and enables the
// timers listed in BACKUP_TIMERS.
import * as fs from "fs";
import * as path from "path";
import type { HostId, StackModel } from "../lib/model";
import { PATHS, secretRef, UNITS } from "../lib/model";
import { header, lines, type HostFile } from "./format";
import {
  PGBACKREST_CONF_PATH,
  pgbackrestCommand,
  pgbackrestSettingsFor,
  postgresArchiveSettings,
  renderPgbackrestConf,
  type PgbackrestSettings,
} from "./pgbackrest";
import { SCRIPTS_DIR } from "./scripts";
import { escapeSystemdWord, oneshotService, systemdEnvironment as env, unitFile } from "./systemd";

/** CloudWatch namespace of every backup metric; the IAM condition and the alarms use it. */
export const BACKUP_METRIC_NAMESPACE = "OdooStack/Backups";

/** Metric names, spelled once: the drill script publishes them, the alarms watch them. */
export const BACKUP_METRICS = {
  /** 1 when a drill succeeded within the stale window (hourly report), 0 otherwise. */
  restoreDrillSuccess: "RestoreDrillSuccess",
  /** Seconds from the start of `pgbackrest restore` to a checked, promoted cluster. */
  restoreDrillRtoSeconds: "RestoreDrillRtoSeconds",
  /** Age of the newest backup in the repository (hourly report and each drill). */
  lastBackupAgeSeconds: "LastBackupAgeSeconds",
  /** 1 after each successful filestore sync, per Odoo host. */
  filestoreSyncSuccess: "FilestoreSyncSuccess",
} as const;

/** Every metric carries the stack; the filestore metric also the host. */
export const METRIC_DIMENSIONS = { stack: "Stack", host: "Host" } as const;

/**
 * The SSM parameter holding the backup bucket's name. The bucket is auto-named (an Output), so
 * host files carry a placeholder the apply script resolves, like a secret, from this parameter.
 */
export const backupBucketNameParameter = (model: StackModel): string => `/${model.project}/${model.stack}/backup/bucket-name`;

/** The bucket as host files spell it: the placeholder above. */
export const backupBucketRef = (model: StackModel): string => secretRef(backupBucketNameParameter(model));

/** Key prefix of a stack's filestore copy in the backup bucket. */
export const filestorePrefix = (stack: string): string => `filestore/${stack}/`;
/** Where an operator puts an existing database dump and filestore for the hosts to import. */
export const importPrefix = (stack: string): string => `import/${stack}/`;

export const RESTORE_DRILL_SCRIPT = "odoo-stack-restore-drill.sh";
export const RESTORE_DRILL_PATH = "/usr/local/sbin/odoo-stack-restore-drill";
/** On the data volume, beside the cluster; the drill checks free space before restoring. */
export const RESTORE_DRILL_SCRATCH = "/var/lib/postgresql/restore-drill";
/** systemd's StateDirectory= of the drill units: /var/lib/<this>. */
export const RESTORE_DRILL_STATE_DIRECTORY = "odoo-stack-restore-drill";
export const ODOO_FILESTORE_DIR = `${PATHS.odooDataDir}/filestore`;

/**
 * When each job runs (UTC). Full on Sunday, differentials on the other days so the two never
 * contend for the stanza lock; the drill mid-week, away from the full backup.
 * https://www.freedesktop.org/software/systemd/man/latest/systemd.time.html#Calendar%20Events
 */
export const BACKUP_SCHEDULES = {
  full: { onCalendar: "Sun *-*-* 01:00:00 UTC", randomizedDelay: "30min" },
  diff: { onCalendar: "Mon..Sat *-*-* 01:00:00 UTC", randomizedDelay: "30min" },
  drill: { onCalendar: "Wed *-*-* 03:00:00 UTC", randomizedDelay: "1h" },
  report: { onCalendar: "hourly", randomizedDelay: "5min" },
  filestore: { onCalendar: "hourly", randomizedDelay: "10min" },
} as const;

/** A drill is stale after a week plus a day's slack (the weekly timer and its random delay). */
export const DEFAULT_DRILL_STALE_AFTER_DAYS = 8;

/** Unit names by role: the apply script enables each timer (`systemctl enable --now`). */
export const BACKUP_TIMERS = {
  postgres: [
    "odoo-stack-backup-report.timer",
    "odoo-stack-pgbackrest-diff.timer",
    "odoo-stack-pgbackrest-full.timer",
    "odoo-stack-restore-drill.timer",
  ],
  odoo: ["odoo-stack-filestore-sync.timer"],
} as const;

interface TimerSpec {
  readonly description: string;
  readonly onCalendar: string;
  readonly randomizedDelay: string;
}

function timerUnit(t: TimerSpec): string {
  return lines(
    header("#").trimEnd(),
    "[Unit]",
    `Description=${t.description}`,
    "",
    "[Timer]",
    `OnCalendar=${t.onCalendar}`,
    // Spread the stack's hosts (and the world's) over the hour instead of on the dot.
    `RandomizedDelaySec=${t.randomizedDelay}`,
    // A run missed while the host was off starts at boot instead of waiting a whole period.
    "Persistent=true",
    "",
    "[Install]",
    "WantedBy=timers.target",
  );
}

/** Hardening shared by every backup service: they read data and talk to AWS, nothing else. */
const HARDENING = ["NoNewPrivileges=yes", "ProtectSystem=full", "ProtectHome=yes"];

/** Debian's PostgreSQL 15 cluster unit: backups and the drill start after it. */
const POSTGRES_SERVICE = UNITS.postgres;

/** stanza-create, retried while the lock is held (exit 50) for up to 12 × 5 s; `$$` is systemd's `$`. */
export const STANZA_CREATE_RETRY =
  "/bin/sh -c 'for try in 1 2 3 4 5 6 7 8 9 10 11 12; do PGBACKREST stanza-create && exit 0 || rc=$$?; [ $$rc -eq 50 ] || exit $$rc; sleep 5; done; exit $$rc'";

function pgbackrestBackupService(s: PgbackrestSettings, type: "full" | "diff"): string {
  const pgbackrest = `/usr/bin/${pgbackrestCommand(s)}`;
  return oneshotService({
    description: `odoo-stack: pgBackRest ${type === "full" ? "full" : "differential"} backup of stanza ${s.stanza} (BACKUP-1)`,
    documentation: "https://pgbackrest.org/command.html#command-backup",
    after: [POSTGRES_SERVICE],
    service: [
      "User=postgres",
      "Group=postgres",
      // Idempotent: a new host or a new bucket gets its stanza before the first backup. It takes
      // the archive lock, which an asynchronous archive-push (archive-async) holds for a while
      // after a WAL switch (a `check` just before, e.g. the restore runbook's): pgBackRest does
      // not wait for it but exits 50, so the lock gets a minute; any other failure stops here.
      `ExecStartPre=${STANZA_CREATE_RETRY.replace("PGBACKREST", pgbackrest)}`,
      // A differential with no full before it is promoted to a full by pgBackRest itself.
      `ExecStart=${pgbackrest} --type=${type} backup`,
      // Proves archive_command end to end: switches WAL and waits for it in the repository.
      `ExecStartPost=${pgbackrest} check`,
      // Backups yield to Odoo's queries.
      "Nice=10",
      "IOSchedulingClass=best-effort",
      "IOSchedulingPriority=7",
      `TimeoutStartSec=${type === "full" ? "12h" : "6h"}`,
      ...HARDENING,
    ],
  });
}

interface DrillEnvironment {
  readonly model: StackModel;
  readonly settings: PgbackrestSettings;
  readonly staleAfterDays: number;
}

function drillEnvironment(d: DrillEnvironment): string[] {
  return [
    env("AWS_DEFAULT_REGION", d.model.settings.region),
    env("ODOO_STACK_NAME", d.model.stack),
    env("ODOO_STACK_DATABASES", d.model.settings.databases.join(",")),
    env("ODOO_STACK_PGBACKREST_CONFIG", d.settings.configPath),
    env("ODOO_STACK_STANZA", d.settings.stanza),
    // The drill shares the production host: restore with the backup's parallelism, not all cores.
    env("ODOO_STACK_DRILL_PROCESS_MAX", d.settings.processMax),
    env("ODOO_STACK_DRILL_SCRATCH", RESTORE_DRILL_SCRATCH),
    env("ODOO_STACK_DRILL_STATE", `/var/lib/${RESTORE_DRILL_STATE_DIRECTORY}/last-drill`),
    env("ODOO_STACK_DRILL_STALE_AFTER_SECONDS", d.staleAfterDays * 86_400),
  ];
}

function drillService(d: DrillEnvironment): string {
  return oneshotService({
    description: "odoo-stack: restore drill — restore the latest backup into a scratch cluster, check it, measure the RTO (BACKUP-2)",
    after: [POSTGRES_SERVICE],
    service: [
      "User=postgres",
      "Group=postgres",
      ...drillEnvironment(d),
      `StateDirectory=${RESTORE_DRILL_STATE_DIRECTORY}`,
      `ExecStart=${RESTORE_DRILL_PATH}`,
      // The drill runs beside production: lowest CPU and I/O priority.
      "Nice=15",
      "IOSchedulingClass=idle",
      "TimeoutStartSec=8h",
      ...HARDENING,
    ],
  });
}

function reportService(d: DrillEnvironment): string {
  return oneshotService({
    description: "odoo-stack: publish the newest backup's age and the restore drill's freshness (BACKUP-1, BACKUP-2)",
    service: [
      "User=postgres",
      "Group=postgres",
      ...drillEnvironment(d),
      `StateDirectory=${RESTORE_DRILL_STATE_DIRECTORY}`,
      `ExecStart=${RESTORE_DRILL_PATH} --report`,
      "TimeoutStartSec=10min",
      ...HARDENING,
    ],
  });
}

/**
 * The filestore copy. No --delete: Odoo's filestore is content-addressed (files are named by
 * their checksum and never rewritten), so the prefix becomes a superset of every filestore
 * state — a database restored to any point of the retention window finds every attachment it
 * references with one plain `aws s3 sync` back, no version archaeology (BACKUP-2, lower RTO).
 * It also lets several Odoo hosts sync into one prefix without one host deleting what only
 * another has. Versioning still keeps overwritten objects; the price is that garbage-collected
 * files stay in the copy (the runbook shows how to prune them deliberately).
 */
function filestoreSyncService(model: StackModel, host: HostId, bucket: string): string {
  const aws = "/usr/bin/aws";
  const dimensions = `${METRIC_DIMENSIONS.stack}=${model.stack},${METRIC_DIMENSIONS.host}=${host.id}`;
  return oneshotService({
    description: `odoo-stack: copy the Odoo filestore of ${host.id} to the backup bucket (BACKUP-1)`,
    service: [
      "User=odoo",
      "Group=odoo",
      env("AWS_DEFAULT_REGION", model.settings.region),
      // Odoo creates the filestore with its first attachment; until then an empty copy is still
      // a successful copy. As odoo, and a no-op once it exists ('+': outside the read-only
      // sandbox below).
      `ExecStartPre=+/usr/sbin/runuser -u odoo -- /usr/bin/mkdir -p ${escapeSystemdWord(ODOO_FILESTORE_DIR)}`,
      `ExecStart=${aws} s3 sync ${escapeSystemdWord(ODOO_FILESTORE_DIR)} ${escapeSystemdWord(`s3://${bucket}/${filestorePrefix(model.stack)}`)} --only-show-errors --no-progress`,
      // A datum per success: the alarm fires when successes stop (missing data breaches).
      `ExecStartPost=${aws} cloudwatch put-metric-data --namespace ${BACKUP_METRIC_NAMESPACE} --metric-name ${BACKUP_METRICS.filestoreSyncSuccess} --value 1 --unit Count --dimensions ${escapeSystemdWord(dimensions)}`,
      // The copy can never change the live filestore.
      `ReadOnlyPaths=${PATHS.odooDataDir}`,
      "Nice=10",
      "IOSchedulingClass=idle",
      "TimeoutStartSec=55min",
      ...HARDENING,
    ],
  });
}

/** The drill script as deployed: the file shellcheck and the integration test run. */
export function restoreDrillScript(): string {
  return fs.readFileSync(path.join(SCRIPTS_DIR, RESTORE_DRILL_SCRIPT), "utf8");
}

export interface PostgresBackupOptions {
  /** The bucket name as host files carry it. Optional. Defaults to backupBucketRef(model). */
  readonly bucket?: string;
  /** Days after which the last successful drill counts as stale. Optional. Defaults to 8. */
  readonly drillStaleAfterDays?: number;
}

/** Every backup file of the PostgreSQL host, sorted by path. */
export function postgresBackupHostFiles(model: StackModel, options: PostgresBackupOptions = {}): HostFile[] {
  const settings = pgbackrestSettingsFor(model, options.bucket ?? backupBucketRef(model));
  const staleAfterDays = options.drillStaleAfterDays ?? DEFAULT_DRILL_STALE_AFTER_DAYS;
  if (!Number.isInteger(staleAfterDays) || staleAfterDays < 1) {
    throw new Error(`postgresBackupHostFiles: 'drillStaleAfterDays' must be a whole number of days ≥ 1, got ${staleAfterDays}.`);
  }
  const drill: DrillEnvironment = { model, settings, staleAfterDays };
  const timer = (name: keyof typeof BACKUP_SCHEDULES, description: string): string => timerUnit({ description, ...BACKUP_SCHEDULES[name] });
  const files: HostFile[] = [
    // Readable by pgBackRest (postgres), writable by root only: it carries the cipher pass once resolved.
    { path: PGBACKREST_CONF_PATH, content: renderPgbackrestConf(settings), mode: "0640", owner: "root", group: "postgres" },
    { path: RESTORE_DRILL_PATH, content: restoreDrillScript(), mode: "0755", owner: "root", group: "root" },
    unitFile("odoo-stack-pgbackrest-full.service", pgbackrestBackupService(settings, "full")),
    unitFile("odoo-stack-pgbackrest-full.timer", timer("full", "odoo-stack: weekly full pgBackRest backup")),
    unitFile("odoo-stack-pgbackrest-diff.service", pgbackrestBackupService(settings, "diff")),
    unitFile("odoo-stack-pgbackrest-diff.timer", timer("diff", "odoo-stack: daily differential pgBackRest backup")),
    unitFile("odoo-stack-restore-drill.service", drillService(drill)),
    unitFile("odoo-stack-restore-drill.timer", timer("drill", "odoo-stack: weekly restore drill")),
    unitFile("odoo-stack-backup-report.service", reportService(drill)),
    unitFile("odoo-stack-backup-report.timer", timer("report", "odoo-stack: hourly backup metrics")),
  ];
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The filestore sync of one Odoo host, sorted by path. */
export function odooBackupHostFiles(model: StackModel, host: HostId, options: { readonly bucket?: string } = {}): HostFile[] {
  if (host.role !== "odoo") throw new Error(`odooBackupHostFiles: ${host.id} is a ${host.role} host, not an Odoo host.`);
  const bucket = options.bucket ?? backupBucketRef(model);
  return [
    unitFile("odoo-stack-filestore-sync.service", filestoreSyncService(model, host, bucket)),
    unitFile(
      "odoo-stack-filestore-sync.timer",
      timerUnit({ description: "odoo-stack: hourly copy of the Odoo filestore", ...BACKUP_SCHEDULES.filestore }),
    ),
  ];
}

/**
 * The stack's WAL archiving keys for the PostgreSQL drop-in: pass them as
 * PostgresConfSettings.extraParameters (templates/postgresql.ts) in postgresHostFiles.
 */
export function postgresArchiveParameters(model: StackModel): Readonly<Record<string, string | number | boolean>> {
  return postgresArchiveSettings(pgbackrestSettingsFor(model, backupBucketRef(model)));
}

/** Backup files of any host: the PostgreSQL host's, an Odoo host's, or none. */
export function backupHostFiles(model: StackModel, host: HostId, options: PostgresBackupOptions = {}): HostFile[] {
  if (host.role === "postgres") return postgresBackupHostFiles(model, options);
  if (host.role === "odoo") return odooBackupHostFiles(model, host, { bucket: options.bucket });
  return [];
}
