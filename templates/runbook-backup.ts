// The backup and restore runbook of one stack (BACKUP-2, BACKUP-4: R), generated with the
// stack's real names — bucket, prefixes, parameters, hosts, databases, schedules — so an
// operator at 3 a.m. copies commands instead of composing them. Pure: markdown out.
import { TAG_KEYS } from "../components/tags";
import type { StackModel } from "../lib/model";
import { GENERATED } from "./format";
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
import { PG_DATA_PATH, PGBACKREST_CONF_PATH, pgbackrestSettingsFor } from "./pgbackrest";

export interface BackupRunbookInput {
  /** The backup bucket's real name. */
  readonly bucket: string;
  /** The drill's RTO target in seconds (BackupPlan). */
  readonly rtoTargetSeconds: number;
  /** Daily EBS snapshots kept (BackupPlan). */
  readonly snapshotRetainCount: number;
  /** Daily snapshot time, HH:MM UTC (BackupPlan). */
  readonly snapshotTime: string;
}

/** A markdown code span; names here never contain a backtick, and a newline would break the line. */
function code(value: string | number): string {
  const s = String(value);
  if (/[`\r\n]/.test(s)) throw new Error(`runbook value must not contain a backtick or a newline: ${JSON.stringify(s)}`);
  return `\`${s}\``;
}

/** A fenced block of shell commands. */
const shell = (...commands: string[]): string => ["```sh", ...commands, "```"].join("\n");

export function renderBackupRunbook(model: StackModel, input: BackupRunbookInput): string {
  const s = pgbackrestSettingsFor(model, input.bucket);
  const stack = model.stack;
  const repo = s.repo.type === "s3" ? s.repo : undefined;
  if (!repo) throw new Error("renderBackupRunbook: the stack's repository is S3");
  const pgb = `sudo -u postgres pgbackrest --stanza=${s.stanza}`;
  const filestoreUri = `s3://${input.bucket}/${filestorePrefix(stack)}`;
  const hostLookup = (id: string) =>
    `aws ec2 describe-instances --region ${model.settings.region} --filters Name=tag:${TAG_KEYS.stack},Values=${stack} Name=tag:${TAG_KEYS.host},Values=${id} Name=instance-state-name,Values=running --query 'Reservations[].Instances[].InstanceId' --output text`;
  const session = (id: string) => `aws ssm start-session --region ${model.settings.region} --target "$(${hostLookup(id)})"`;
  const dbs = model.settings.databases;
  const odooHosts = model.hosts.odoo.map((h) => code(h.id)).join(", ");
  const example = dbs[0];

  return [
    `<!-- ${GENERATED} -->`,
    `# Backups and restores — stack ${code(stack)}`,
    "",
    `Databases: ${dbs.map(code).join(", ")}. PostgreSQL host: ${code(model.hosts.postgres.fqdn)}. Odoo hosts: ${odooHosts}.`,
    "Every host is reached through Session Manager (no SSH). Open a shell on the PostgreSQL host with:",
    "",
    shell(session(model.hosts.postgres.id)),
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
    `The repository is encrypted client-side (${code("aes-256-cbc")}); the cipher pass is the SSM SecureString ${code(model.parameters.backupCipherPass)}, written into ${code(PGBACKREST_CONF_PATH)} on the host. Without it no backup can be read: it is part of the backup.`,
    `Point-in-time recovery reaches back ${s.retentionFullDays} days (full backups kept by age, ${s.retentionDiff} differentials, WAL back to the oldest full). The bucket is versioned: a deleted or overwritten object stays recoverable for ${model.settings.backupRetentionDays} days.`,
    "",
    "## Check the backups",
    "",
    shell(
      `${pgb} info                       # status ok, newest backup, WAL archive min/max`,
      `${pgb} check                      # archive_command works end to end (switches WAL, waits for it)`,
      "systemctl list-timers 'odoo-stack-*'       # next and last run of every backup job",
      "journalctl -u odoo-stack-pgbackrest-diff -u odoo-stack-pgbackrest-full --since -2d",
    ),
    "",
    `Alarms (CloudWatch namespace ${code(BACKUP_METRIC_NAMESPACE)}, dimension ${code(`Stack=${stack}`)}):`,
    "",
    `- **backup age** — ${code(BACKUP_METRICS.lastBackupAgeSeconds)} over 26 h, or missing: the nightly backup failed (see the journal above) or the hourly report stopped (${code("journalctl -u odoo-stack-backup-report")}). Run a backup by hand: ${code("sudo systemctl start odoo-stack-pgbackrest-diff")}.`,
    `- **restore drill stale** — ${code(BACKUP_METRICS.restoreDrillSuccess)} below 1 for 3 hours: the last drill failed or is older than ${DEFAULT_DRILL_STALE_AFTER_DAYS} days. Read ${code("journalctl -u odoo-stack-restore-drill")}, fix, re-run the drill (next section). On a new stack this alarm stays on until the first drill after the first backup.`,
    `- **restore drill RTO** — ${code(BACKUP_METRICS.restoreDrillRtoSeconds)} over ${input.rtoTargetSeconds} s: restores take longer than the target; the journal shows restore vs. WAL replay time. Fewer WAL to replay: more frequent differentials; faster restore: ${code("process-max")}.`,
    `- **filestore sync** (one per Odoo host) — ${code(BACKUP_METRICS.filestoreSyncSuccess)} missing for 3 hours: ${code("journalctl -u odoo-stack-filestore-sync")} on that host.`,
    "",
    "## Restore drill",
    "",
    `Weekly (${code(BACKUP_SCHEDULES.drill.onCalendar)}) the PostgreSQL host restores the newest backup plus WAL into ${code(RESTORE_DRILL_SCRATCH)}, starts it as a temporary server (unix socket only, archiving off: it never writes to the repository), checks every Odoo database (${code("ir_module_module")}, ${code("res_users")}, ${code("ir_attachment")}), measures the RTO and removes it. It refuses to start without room for the restored cluster on the data volume.`,
    "",
    shell(
      "sudo systemctl start odoo-stack-restore-drill          # run it now",
      "journalctl -u odoo-stack-restore-drill -n 100          # RTO, restore and replay times, checks",
      `cat /var/lib/${RESTORE_DRILL_STATE_DIRECTORY}/last-drill            # result, finish time, RTO of the last drill`,
    ),
    "",
    "### Get back one record without touching production",
    "",
    `Restore a point in time beside production, copy what you need, remove it (${code("ODOO_STACK_PUT_METRIC=true")}: an operator's restore publishes no drill metric):`,
    "",
    shell(
      `sudo -u postgres env ODOO_STACK_PUT_METRIC=true ${RESTORE_DRILL_PATH} --target-time '2024-05-01 09:59:00+00' --keep`,
      `sudo -u postgres pg_dump -h ${RESTORE_DRILL_SCRATCH}/run -p 55432 -d ${example} -t public.res_partner --data-only > /tmp/res_partner.sql`,
      `sudo -u postgres ${RESTORE_DRILL_PATH} --cleanup`,
    ),
    "",
    "## Full restore (host or data volume lost)",
    "",
    "`pulumi up` recreates a lost host; its bootstrap installs pgBackRest and this configuration. Then:",
    "",
    shell(
      "# 1. On every Odoo host, and the PgBouncer host: no writes during the restore",
      "sudo systemctl stop odoo            # Odoo hosts",
      "sudo systemctl stop pgbouncer       # PgBouncer host",
      "# 2. On the PostgreSQL host",
      "sudo systemctl stop postgresql@15-main",
      `${pgb} --delta restore   # --delta reuses files whose checksum matches (a surviving volume); an empty ${PG_DATA_PATH} works too`,
      "sudo systemctl start postgresql@15-main   # replays all archived WAL, then promotes by itself",
      "sudo -u postgres psql -Atc 'SELECT pg_is_in_recovery()'   # f once promoted",
      `sudo -u postgres psql -d ${example} -Atc "SELECT count(*) FROM res_users"`,
      `${pgb} check                            # archiving works on the new timeline`,
      "sudo systemctl start odoo-stack-pgbackrest-full   # a fresh full backup of the restored cluster",
      "# 3. Then PgBouncer, then Odoo",
    ),
    "",
    "Restore the filestore too (next sections): a database without its attachments is not restored.",
    "",
    "## Point-in-time recovery (a bad change at a known time)",
    "",
    "1. Pick the target just before the mistake, in UTC. Rehearse it first with the drill (`--target-time ... --keep`, above) and look at the data.",
    "2. Stop Odoo and PgBouncer, then PostgreSQL, as in the full restore.",
    "3. Restore to the target and start:",
    "",
    shell(
      `${pgb} --delta --type=time --target='2024-05-01 09:59:00+00' --target-action=promote restore`,
      "sudo systemctl start postgresql@15-main",
      "sudo -u postgres psql -Atc 'SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()'",
    ),
    "",
    "**Promote** — with `--target-action=promote` the server ends recovery at the target and opens for writes on a new timeline by itself.",
    "To inspect before opening, restore with `--target-action=pause` instead: the server stops at the target, read-only; when the data is right, end recovery with",
    "`sudo -u postgres psql -c 'SELECT pg_wal_replay_resume()'` (it then promotes); when it is not, stop it and restore again with another target",
    "(https://www.postgresql.org/docs/15/runtime-config-wal.html#GUC-RECOVERY-TARGET-ACTION).",
    `After promotion: ${code(`${pgb} check`)}, then a full backup (${code("sudo systemctl start odoo-stack-pgbackrest-full")}); start PgBouncer and Odoo.`,
    "",
    "## Filestore restore",
    "",
    `The copy is made without ${code("--delete")}, and Odoo names filestore files by their checksum and never rewrites them: the prefix holds every file any database state referenced, up to the last hourly copy. After a full or point-in-time restore, copy it back on each Odoo host (Odoo stopped):`,
    "",
    shell(`sudo -u odoo aws s3 sync ${filestoreUri} ${ODOO_FILESTORE_DIR}/ --only-show-errors`),
    "",
    "One damaged or overwritten file, from an older version (the bucket is versioned):",
    "",
    shell(
      `aws s3api list-object-versions --bucket ${input.bucket} --prefix ${filestorePrefix(stack)}${example}/ab/abcdef0123 --query 'Versions[].[VersionId,LastModified,Size]' --output text`,
      `aws s3api get-object --bucket ${input.bucket} --key ${filestorePrefix(stack)}${example}/ab/abcdef0123 --version-id VERSION_ID /tmp/abcdef0123`,
    ),
    "",
    `Files Odoo garbage-collected stay in the copy. Pruning them is a deliberate act with an operator role (the hosts cannot delete): list with ${code(`aws s3 sync ${ODOO_FILESTORE_DIR} ${filestoreUri} --delete --dryrun`)}; a pruned file survives ${model.settings.backupRetentionDays} days as an old version, so a database restored to an older point may miss it afterwards.`,
    "",
    "## EBS snapshots",
    "",
    shell(
      `aws ec2 describe-snapshots --region ${model.settings.region} --owner-ids self --filters Name=tag:odoo-stack:snapshot-of,Values=${stack}-postgres-data --query 'Snapshots[].[SnapshotId,StartTime,State]' --output text`,
    ),
    "",
    "A snapshot is crash-consistent (pg_wal is on the same volume): a volume created from it starts like after a power cut. Prefer pgBackRest (encrypted, any point in time, verified weekly); use a snapshot to roll the whole volume back within the last days, e.g. after a failed PostgreSQL or Odoo upgrade (BACKUP-3). Create the volume in the PostgreSQL host's AZ, stop PostgreSQL, swap the volumes, start PostgreSQL, run the check above, then `pulumi refresh` so the stack sees the new volume.",
    "",
  ].join("\n");
}
