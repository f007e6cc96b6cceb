// The backup and restore runbook of one stack (BACKUP-1, BACKUP-2, BACKUP-4: R), generated with
// the stack's names — bucket, prefixes, parameters, hosts, databases, schedules — so an operator
// at 3 a.m. copies commands instead of composing them. One per engine: pgBackRest on the
// PostgreSQL host with a weekly restore drill (ec2), or RDS's automated backups with
// point-in-time restore into a new instance (rds, RTO untested). The restore itself is the
// procedure table's (templates/procedures.ts). Every block is marked laptop or host. Pure.
import { UNITS, type StackModel } from "../lib/model";
import { backupAlarmEntries } from "./alarms";
import {
  BACKUP_METRIC_NAMESPACE,
  BACKUP_METRICS,
  BACKUP_SCHEDULES,
  DEFAULT_DRILL_STALE_AFTER_DAYS,
  filestorePrefix,
  ODOO_FILESTORE_DIR,
  RESTORE_DRILL_PATH,
  RESTORE_DRILL_SCRATCH,
  RESTORE_DRILL_STATE_DIRECTORY,
} from "./backup-units";
import { PGBACKREST_CONF_PATH, pgbackrestSettingsFor } from "./pgbackrest";
import { procedureById } from "./procedures";
import { RDS_POSTGRES, rdsInstanceIdentifier } from "./rds";
import { hostBlock, laptopBlock } from "./runbook-blocks";
import { code, onHost, preamble, procedureSection } from "./runbook-format";

export interface BackupRunbookInput {
  /** The backup bucket's real name. */
  readonly bucket: string;
  /** The drill's RTO target in seconds (BackupPlan; ec2 only). */
  readonly rtoTargetSeconds: number;
  /** Daily EBS snapshots kept (BackupPlan; ec2 only). */
  readonly snapshotRetainCount: number;
  /** Daily snapshot time, HH:MM UTC (BackupPlan; ec2 only). */
  readonly snapshotTime: string;
}

const FILE = "backup.md";

/** The alarm's name in the alarm runbook, linked. */
function alarmLink(model: StackModel, id: string): string {
  const entry = backupAlarmEntries(model).find((e) => e.id === id);
  if (!entry) throw new Error(`backup runbook: no backup alarm ${id} on this stack`);
  return `[${entry.name}](alarms.md#${entry.name})`;
}

function filestoreSections(model: StackModel, input: BackupRunbookInput): string[] {
  const filestoreUri = `s3://${input.bucket}/${filestorePrefix(model.stack)}`;
  const example = model.settings.databases[0];
  const odooIds = model.hosts.odoo.map((h) => h.id);
  return [
    "## Filestore restore",
    "",
    `The copy is made without ${code("--delete")}, and Odoo names filestore files by their checksum and never rewrites them: the prefix holds every file any database state referenced, up to the last hourly copy. After a database restore, copy it back (Odoo stopped)${model.settings.sharedFilestore ? " from one Odoo host: the filestore is shared" : " on each Odoo host"}:`,
    "",
    hostBlock(
      model.settings.sharedFilestore ? [model.cronHost.id] : odooIds,
      [`sudo -u odoo aws s3 sync ${filestoreUri} ${ODOO_FILESTORE_DIR}/ --only-show-errors`],
      { procedure: "filestore", step: "sync" },
    ),
    "",
    "One damaged or overwritten file, from an older version (the bucket is versioned), from your laptop; set FILE to its path under the prefix:",
    "",
    laptopBlock(
      [
        `aws s3api list-object-versions --bucket ${input.bucket} --prefix "${filestorePrefix(model.stack)}${example}/$FILE" --query 'Versions[].[VersionId,LastModified,Size]' --output text`,
        `aws s3api get-object --bucket ${input.bucket} --key "${filestorePrefix(model.stack)}${example}/$FILE" --version-id "$VERSION_ID" /tmp/restored-file`,
      ],
      { procedure: "filestore", step: "version", params: ["FILE", "VERSION_ID"] },
    ),
    "",
    `Files Odoo garbage-collected stay in the copy. Pruning them is a deliberate act with an operator role (the hosts cannot delete): list with ${code(`aws s3 sync ${ODOO_FILESTORE_DIR} ${filestoreUri} --delete --dryrun`)}; a pruned file survives ${model.settings.backupRetentionDays} days as an old version, so a database restored to an older point may miss it afterwards.`,
    "",
  ];
}

export function renderBackupRunbook(model: StackModel, input: BackupRunbookInput): string {
  return model.settings.postgresEngine === "rds" ? rdsBackupRunbook(model, input) : ec2BackupRunbook(model, input);
}

function rdsBackupRunbook(model: StackModel, input: BackupRunbookInput): string {
  const id = rdsInstanceIdentifier(model);
  const region = model.settings.region;
  const filestoreUri = `s3://${input.bucket}/${filestorePrefix(model.stack)}`;
  return [
    ...preamble(model, "Backups and restores"),
    `Databases: ${model.settings.databases.map(code).join(", ")} on the RDS instance ${code(id)}. Odoo hosts: ${model.hosts.odoo.map((h) => onHost(h, FILE)).join(", ")}.`,
    "",
    "## What is backed up, where, how often",
    "",
    "| What | Where | When | Loss at most (RPO) |",
    "| --- | --- | --- | --- |",
    `| PostgreSQL (RDS automated backups) | RDS, encrypted, kept ${model.settings.backupRetentionDays} days | daily snapshot in ${code(RDS_POSTGRES.backupWindow)} UTC, transaction logs every 5 minutes | about 5 minutes (the latest restorable time) |`,
    `| Odoo filestore | ${code(filestoreUri)} | ${code(BACKUP_SCHEDULES.filestore.onCalendar)} from each Odoo host | 1 hour of new attachments |`,
    "",
    "## Check the backups",
    "",
    laptopBlock(
      [
        `aws rds describe-db-instances --region ${region} --db-instance-identifier ${id} --query 'DBInstances[0].[LatestRestorableTime,BackupRetentionPeriod]' --output text`,
        `aws rds describe-db-snapshots --region ${region} --db-instance-identifier ${id} --snapshot-type automated --query 'DBSnapshots[-3:].[DBSnapshotIdentifier,SnapshotCreateTime,Status]' --output text`,
      ],
      { procedure: "backups", step: "check" },
    ),
    "",
    `The latest restorable time should be minutes old. Alarms: one per Odoo host when its filestore copy stops (${model.hosts.odoo.map((h) => alarmLink(model, `filestore-sync-${h.id}`)).join(", ")}; metric ${code(`${BACKUP_METRIC_NAMESPACE} ${BACKUP_METRICS.filestoreSyncSuccess}`)}): ${code("journalctl -u odoo-stack-filestore-sync")} on that host. RDS's own backups have no alarm in this stack, and no restore drill: **BACKUP-2 (restore tested, RTO measured) is not met on RDS** until you rehearse the restore below and record its time.`,
    "",
    ...procedureSection(model, procedureById(model, "restore"), FILE),
    ...filestoreSections(model, input),
  ].join("\n");
}

function ec2BackupRunbook(model: StackModel, input: BackupRunbookInput): string {
  const s = pgbackrestSettingsFor(model, input.bucket);
  const stack = model.stack;
  const repo = s.repo.type === "s3" ? s.repo : undefined;
  if (!repo) throw new Error("renderBackupRunbook: the stack's repository is S3");
  const pgb = `sudo -u postgres pgbackrest --stanza=${s.stanza}`;
  const filestoreUri = `s3://${input.bucket}/${filestorePrefix(stack)}`;
  const dbs = model.settings.databases;
  const pg = model.hosts.postgres;
  const example = dbs[0];

  return [
    ...preamble(model, "Backups and restores"),
    `Databases: ${dbs.map(code).join(", ")}. PostgreSQL host: ${onHost(pg, FILE)} (${code(pg.fqdn)}). Odoo hosts: ${model.hosts.odoo.map((h) => onHost(h, FILE)).join(", ")}.`,
    "",
    "## What is backed up, where, how often",
    "",
    "| What | Where | When | Loss at most (RPO) |",
    "| --- | --- | --- | --- |",
    `| PostgreSQL, full | ${code(`s3://${input.bucket}${repo.path}`)} (pgBackRest, stanza ${code(s.stanza)}) | ${code(BACKUP_SCHEDULES.full.onCalendar)} | — |`,
    `| PostgreSQL, differential | same | ${code(BACKUP_SCHEDULES.diff.onCalendar)} | — |`,
    `| PostgreSQL WAL (point-in-time) | same | continuously; a segment at least every ${s.archiveTimeoutSeconds} s | about ${s.archiveTimeoutSeconds} s |`,
    `| Odoo filestore | ${code(filestoreUri)} | ${code(BACKUP_SCHEDULES.filestore.onCalendar)} from each Odoo host | 1 hour of new attachments |`,
    `| Data volume snapshot (EBS, DLM) | snapshots tagged ${code(`odoo-stack:snapshot-of=${stack}-postgres-data`)} | daily at ${code(input.snapshotTime)} UTC, ${input.snapshotRetainCount} kept | 1 day |`,
    "",
    `The repository is encrypted client-side (${code("aes-256-cbc")}); the cipher pass is the SSM SecureString ${code(model.parameters.backupCipherPass)}, written into ${code(PGBACKREST_CONF_PATH)} on the host. Without it no backup can be read: it is part of the backup, and never rotated.`,
    `Point-in-time recovery reaches back ${s.retentionFullDays} days (full backups kept by age, ${s.retentionDiff} differentials, WAL back to the oldest full). The bucket is versioned: a deleted or overwritten object stays recoverable for ${model.settings.backupRetentionDays} days.`,
    "",
    "## Check the backups",
    "",
    hostBlock(
      pg.id,
      [
        `${pgb} info`,
        `${pgb} check`,
        "systemctl list-timers 'odoo-stack-*'",
        "journalctl -u odoo-stack-pgbackrest-diff -u odoo-stack-pgbackrest-full --since -2d --no-pager",
      ],
      { procedure: "backups", step: "check" },
    ),
    "",
    "`info`: status ok, the newest backup, the WAL archive's range; `check`: archive_command works end to end (it switches WAL and waits for it); the timers: next and last run of every backup job.",
    "",
    `Alarms (CloudWatch namespace ${code(BACKUP_METRIC_NAMESPACE)}, dimension ${code(`Stack=${stack}`)}):`,
    "",
    `- ${alarmLink(model, "backup-age")} — ${code(BACKUP_METRICS.lastBackupAgeSeconds)} over 26 h, or missing: the nightly backup failed (see the journal above) or the hourly report stopped (${code("journalctl -u odoo-stack-backup-report")}). Run a backup by hand: ${code("sudo systemctl start odoo-stack-pgbackrest-diff")}.`,
    `- ${alarmLink(model, "restore-drill-stale")} — ${code(BACKUP_METRICS.restoreDrillSuccess)} below 1 for 3 hours: the last drill failed or is older than ${DEFAULT_DRILL_STALE_AFTER_DAYS} days. Read ${code("journalctl -u odoo-stack-restore-drill")}, fix, re-run the drill (next section). On a new stack this alarm stays on until the first drill after the first backup.`,
    `- ${alarmLink(model, "restore-drill-rto")} — ${code(BACKUP_METRICS.restoreDrillRtoSeconds)} over ${input.rtoTargetSeconds} s: restores take longer than the target; the journal shows restore vs. WAL replay time. Fewer WAL to replay: more frequent differentials; faster restore: ${code("process-max")}.`,
    `- ${model.hosts.odoo.map((h) => alarmLink(model, `filestore-sync-${h.id}`)).join(", ")} — ${code(BACKUP_METRICS.filestoreSyncSuccess)} missing for 3 hours: ${code("journalctl -u odoo-stack-filestore-sync")} on that host.`,
    "",
    "## Restore drill",
    "",
    `Weekly (${code(BACKUP_SCHEDULES.drill.onCalendar)}) the PostgreSQL host restores the newest backup plus WAL into ${code(RESTORE_DRILL_SCRATCH)}, starts it as a temporary server (unix socket only, archiving off: it never writes to the repository), checks every Odoo database (${code("ir_module_module")}, ${code("res_users")}, ${code("ir_attachment")}), measures the RTO and removes it. It refuses to start without room for the restored cluster on the data volume. Run it now, then read its RTO, restore and replay times and checks:`,
    "",
    hostBlock(
      pg.id,
      [
        "sudo systemctl start odoo-stack-restore-drill",
        "journalctl -u odoo-stack-restore-drill -n 100 --no-pager",
        `cat /var/lib/${RESTORE_DRILL_STATE_DIRECTORY}/last-drill`,
      ],
      { procedure: "restore-drill", step: "run" },
    ),
    "",
    "### Get back one record without touching production",
    "",
    `Restore a point in time beside production, copy what you need, remove it (${code("ODOO_STACK_PUT_METRIC=true")}: an operator's restore publishes no drill metric). TARGET_TIME is UTC, e.g. ${code("2024-05-01 09:59:00+00")}:`,
    "",
    hostBlock(
      pg.id,
      [
        `sudo -u postgres env ODOO_STACK_PUT_METRIC=true ${RESTORE_DRILL_PATH} --target-time "$TARGET_TIME" --keep`,
        `sudo -u postgres pg_dump -h ${RESTORE_DRILL_SCRATCH}/run -p 55432 -d ${example} -t public.res_partner --data-only > /tmp/res_partner.sql`,
        `sudo -u postgres ${RESTORE_DRILL_PATH} --cleanup`,
      ],
      { procedure: "restore-drill", step: "point-in-time-copy", params: ["TARGET_TIME"] },
    ),
    "",
    ...procedureSection(model, procedureById(model, "restore"), FILE),
    "## Point-in-time recovery (a bad change at a known time)",
    "",
    "1. Pick the target just before the mistake, in UTC. Rehearse it first with the drill (`--target-time ... --keep`, above) and look at the data.",
    "2. Stop Odoo and PgBouncer, as in the full restore.",
    "3. Restore to the target and start:",
    "",
    hostBlock(
      pg.id,
      [
        `sudo systemctl stop ${UNITS.postgres.replace(/\.service$/, "")}`,
        `${pgb} --delta --type=time --target="$TARGET_TIME" --target-action=promote restore`,
        `sudo systemctl start ${UNITS.postgres.replace(/\.service$/, "")}`,
        "sudo -u postgres psql -XAtc 'SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()'",
      ],
      { procedure: "point-in-time-recovery", step: "restore", params: ["TARGET_TIME"] },
    ),
    "",
    "**Promote** — with `--target-action=promote` the server ends recovery at the target and opens for writes on a new timeline by itself.",
    "To inspect before opening, restore with `--target-action=pause` instead: the server stops at the target, read-only; when the data is right, end recovery with",
    "`sudo -u postgres psql -c 'SELECT pg_wal_replay_resume()'` (it then promotes); when it is not, stop it and restore again with another target",
    "(https://www.postgresql.org/docs/15/runtime-config-wal.html#GUC-RECOVERY-TARGET-ACTION).",
    `After promotion: ${code(`${pgb} check`)}, then a full backup (${code("sudo systemctl start odoo-stack-pgbackrest-full")}); start PgBouncer and Odoo.`,
    "",
    ...filestoreSections(model, input),
    "## EBS snapshots",
    "",
    laptopBlock(
      [
        `aws ec2 describe-snapshots --region ${model.settings.region} --owner-ids self --filters Name=tag:odoo-stack:snapshot-of,Values=${stack}-postgres-data --query 'Snapshots[].[SnapshotId,StartTime,State]' --output text`,
      ],
      { procedure: "snapshots", step: "list" },
    ),
    "",
    "A snapshot is crash-consistent (pg_wal is on the same volume): a volume created from it starts like after a power cut. Prefer pgBackRest (encrypted, any point in time, verified weekly); use a snapshot to roll the whole volume back within the last days, e.g. after a failed PostgreSQL or Odoo upgrade (BACKUP-3). Create the volume in the PostgreSQL host's AZ, stop PostgreSQL, swap the volumes, start PostgreSQL, run the check above, then `pulumi refresh` so the stack sees the new volume.",
    "",
  ].join("\n");
}
