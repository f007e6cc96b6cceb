// pgBackRest: the settings layer (what the stack decides), the pgbackrest.conf renderer, and
// the archive keys PostgreSQL needs for WAL archiving (point-in-time recovery). Pure: no
// Pulumi import. The integration test renders this same file with only the repository and
// the local paths switched (posix repository, temp dirs), so what is tested is what ships.
//
// Reference: pgBackRest 2.45 (Debian 12), https://pgbackrest.org/configuration.html
import { knownInstanceType } from "../lib/instance-types";
import { POSTGRES_CLUSTER, secretRef, type StackModel } from "../lib/model";
import { layer, type LayerTable } from "../lib/layering";
import { PORTS } from "../lib/ports";
import { escapePostgresConf, header, lines, shellQuote, sortedEntries } from "./format";

/** Where the file lives. pgBackRest ≥ 2.x reads this path by default; Debian's legacy /etc/pgbackrest.conf is only a fallback. */
export const PGBACKREST_CONF_PATH = "/etc/pgbackrest/pgbackrest.conf";
/** The one stanza of the stack: one PostgreSQL cluster per stack. */
export const PGBACKREST_STANZA = "main";
/** Debian 12's cluster layout (postgresql-15, cluster "main"). */
export const PG_DATA_PATH = `/var/lib/postgresql/${POSTGRES_CLUSTER.version}/${POSTGRES_CLUSTER.name}`;
export const PG_BIN_DIR = `/usr/lib/postgresql/${POSTGRES_CLUSTER.version}/bin`;
export const PG_SOCKET_PATH = "/var/run/postgresql";

/** Key prefix of the stack's pgBackRest repository inside the backup bucket (no leading slash, as S3 keys have none). */
export const pgbackrestRepoPrefix = (stack: string): string => `pgbackrest/${stack}`;

export type PgbackrestValue = string | number | boolean;

export type PgbackrestRepo =
  | {
      readonly type: "s3";
      readonly bucket: string;
      readonly region: string;
      /** S3 endpoint host of the bucket's region, e.g. s3.eu-west-1.amazonaws.com. */
      readonly endpoint: string;
      /** Repository path inside the bucket, with a leading slash, e.g. /pgbackrest/prod. */
      readonly path: string;
    }
  | {
      /** A local directory: the sandbox's repository (integration tests); never rendered for a stack. */
      readonly type: "posix";
      readonly path: string;
    };

/** Everything the rendered pgbackrest.conf depends on. Built by pgbackrestSettingsFor(). */
export interface PgbackrestSettings {
  /** Where the file is installed; every command the stack runs passes it with --config. */
  readonly configPath: string;
  readonly stanza: string;
  readonly repo: PgbackrestRepo;
  /** The repository cipher pass: a secretRef placeholder, resolved on the host by the apply script. */
  readonly cipherPass: string;
  /** Days of point-in-time recovery the repository keeps (repo1-retention-full-type=time). */
  readonly retentionFullDays: number;
  /** Differential backups kept (count), see diffRetentionFor(). */
  readonly retentionDiff: number;
  /** Parallel processes for backup and archive-push, see backupProcessMax(). */
  readonly processMax: number;
  /** Parallel processes for restore ([global:restore]), see restoreProcessMax(). */
  readonly restoreProcessMax: number;
  /** archive-push-queue-max in GiB, see archivePushQueueMaxGiB(). */
  readonly archivePushQueueMaxGiB: number;
  /** PostgreSQL archive_timeout in seconds: the upper bound of data loss on an idle database. */
  readonly archiveTimeoutSeconds: number;
  readonly pgDataPath: string;
  readonly pgPort: number;
  readonly pgSocketPath: string;
  readonly spoolPath: string;
  readonly logPath: string;
  readonly lockPath: string;
}

/**
 * Full backups run weekly and a differential every other day (templates/backup-units.ts).
 * Any window of N days holds at most N − ⌊N/7⌋ differentials, so keeping that many keeps
 * every differential of the window: any target time in the window restores from its full,
 * at most one differential and less than one day of WAL replay, which bounds the recovery
 * part of the RTO (BACKUP-2). Older points stay reachable through full + WAL, because WAL is
 * kept back to the oldest full (repo1-retention-archive follows the full retention).
 * https://pgbackrest.org/user-guide.html#retention-diff
 */
export const diffRetentionFor = (retentionDays: number): number => retentionDays - Math.floor(retentionDays / 7);

/**
 * Backups run while Odoo serves users: use half the vCPUs (at least one) for compression
 * and transfer. https://pgbackrest.org/configuration.html#section-general/option-process-max
 */
export const backupProcessMax = (vcpu: number): number => Math.max(1, Math.floor(vcpu / 2));

/** A restore runs when the database is down (disaster recovery): use every vCPU. */
export const restoreProcessMax = (vcpu: number): number => Math.max(1, vcpu);

/**
 * If S3 is unreachable, WAL piles up in pg_wal on the data volume; a full volume stops
 * PostgreSQL. pgBackRest's advice: "Better to lose the backup than have PostgreSQL go down."
 * Past a quarter of the data volume the queue is dropped (PITR breaks until the next backup,
 * which the backup-age alarm and the restore drill report).
 * https://pgbackrest.org/configuration.html#section-archive/option-archive-push-queue-max
 */
export const archivePushQueueMaxGiB = (dataVolumeGiB: number): number => Math.max(1, Math.floor(dataVolumeGiB / 4));

/**
 * archive_timeout forces a WAL segment switch on a quiet database, so at most this many
 * seconds of committed data are not yet in the repository (RPO). Forced segments are mostly
 * zeros and compress to almost nothing with zstd.
 * https://www.postgresql.org/docs/15/runtime-config-wal.html#GUC-ARCHIVE-TIMEOUT
 */
export const ARCHIVE_TIMEOUT_SECONDS = 60;

/** The S3 endpoint of a region (China regions use the .com.cn domain). */
export const s3Endpoint = (region: string): string =>
  region.startsWith("cn-") ? `s3.${region}.amazonaws.com.cn` : `s3.${region}.amazonaws.com`;

/** vCPUs of the PostgreSQL host: the static table; an unknown type counts as 2 vCPUs. */
const postgresVcpu = (model: StackModel): number => knownInstanceType(model.settings.instanceTypes.postgres)?.vcpu ?? 2;

/**
 * The stack's pgBackRest settings. `bucket` is the backup bucket's name (the backups
 * component's output, or a secretRef placeholder the apply script resolves).
 */
export function pgbackrestSettingsFor(model: StackModel, bucket: string): PgbackrestSettings {
  const vcpu = postgresVcpu(model);
  const region = model.settings.region;
  return {
    configPath: PGBACKREST_CONF_PATH,
    stanza: PGBACKREST_STANZA,
    repo: { type: "s3", bucket, region, endpoint: s3Endpoint(region), path: `/${pgbackrestRepoPrefix(model.stack)}` },
    cipherPass: secretRef(model.parameters.backupCipherPass),
    retentionFullDays: model.settings.backupRetentionDays,
    retentionDiff: diffRetentionFor(model.settings.backupRetentionDays),
    processMax: backupProcessMax(vcpu),
    restoreProcessMax: restoreProcessMax(vcpu),
    archivePushQueueMaxGiB: archivePushQueueMaxGiB(model.settings.postgresDataVolumeGiB),
    archiveTimeoutSeconds: ARCHIVE_TIMEOUT_SECONDS,
    pgDataPath: PG_DATA_PATH,
    pgPort: PORTS.postgres.port,
    pgSocketPath: PG_SOCKET_PATH,
    spoolPath: "/var/spool/pgbackrest",
    logPath: "/var/log/pgbackrest",
    lockPath: "/tmp/pgbackrest",
  };
}

/**
 * pgbackrest.conf values: pgBackRest's ini parser takes the rest of the line, trimmed, and
 * rejects empty values; booleans are y/n. A newline would inject a key, so it is refused.
 * (Belongs in templates/format.ts beside the other escape functions.)
 */
export function escapePgbackrestConf(value: PgbackrestValue): string {
  if (typeof value === "boolean") return value ? "y" : "n";
  const s = String(value);
  if (/[\r\n\0]/.test(s)) throw new Error(`pgbackrest.conf value must be a single line: ${JSON.stringify(s)}`);
  if (s.trim() !== s || s === "")
    throw new Error(`pgbackrest.conf value must be non-empty without leading or trailing spaces: ${JSON.stringify(s)}`);
  return s;
}

/** The S3 repository's keys, from the settings (absent for the sandbox's posix repository). */
const s3 =
  (f: (repo: Extract<PgbackrestRepo, { type: "s3" }>) => PgbackrestValue) =>
  (s: PgbackrestSettings): PgbackrestValue | undefined =>
    s.repo.type === "s3" ? f(s.repo) : undefined;

/**
 * The [global] keys, layered by lib/layering.ts: defaults, each with its reason, then the keys
 * the stack fixes (the repository, its encryption and its retention), written over them. No key
 * is overridable: no stack setting reaches this file (issue 17 item 2 deleted the tunables list
 * nothing used). tools/checklist.ts reads the checklist IDs here.
 */
export const PGBACKREST_GLOBAL: LayerTable<PgbackrestSettings, PgbackrestValue> = {
  overrideName: "a pgbackrest.conf override",
  allowedName: "a tunable pgBackRest key",
  keys: {
    // Archive WAL in parallel from a local spool: archive_command returns fast under load.
    // https://pgbackrest.org/user-guide.html#async-archiving
    "archive-async": { default: true },
    "archive-push-queue-max": { default: (s) => `${s.archivePushQueueMaxGiB}GiB` },
    // zstd: better ratio than gz at a fraction of the CPU; Debian 12's pgbackrest 2.45 links libzstd.
    "compress-type": { default: "zst" },
    // The timers' output goes to the journal; progress at info level makes a failed run readable.
    "log-level-console": { default: "info" },
    "log-level-file": { default: "detail" },
    "process-max": { default: (s) => s.processMax },
    // Bundle small files: far fewer S3 requests for a cluster of many small relations.
    // https://pgbackrest.org/configuration.html#section-repository/option-repo-bundle
    "repo1-bundle": { default: true },
    // Checkpoint at once when a backup starts instead of waiting for the next one.
    "start-fast": { default: true },

    // --- fixed by the stack -------------------------------------------------------------------
    "repo1-type": { owned: (s) => s.repo.type },
    "repo1-path": { owned: (s) => s.repo.path },
    "repo1-s3-bucket": { owned: s3((r) => r.bucket) },
    "repo1-s3-endpoint": { owned: s3((r) => r.endpoint) },
    "repo1-s3-region": { owned: s3((r) => r.region) },
    // Temporary credentials of the instance role; no static key on the host (DESIGN 5).
    "repo1-s3-key-type": { owned: s3(() => "auto") },
    // Client-side encryption: the bucket's operators and anyone who copies it see ciphertext
    // only (BACKUP-1). The pass lives in SSM and reaches the host at apply time.
    "repo1-cipher-type": {
      forced: "aes-256-cbc",
      checklist: ["BACKUP-1"],
      rule: "must be aes-256-cbc: the repository is encrypted client-side",
    },
    "repo1-cipher-pass": { owned: (s) => s.cipherPass },
    // Time-based: keep enough full backups that the oldest is at least N days old, so PITR
    // covers the whole configured window. https://pgbackrest.org/configuration.html#section-repository/option-repo-retention-full-type
    "repo1-retention-full-type": { owned: "time" },
    "repo1-retention-full": { owned: (s) => s.retentionFullDays },
    "repo1-retention-diff": { owned: (s) => s.retentionDiff },
    "spool-path": { owned: (s) => s.spoolPath },
    "log-path": { owned: (s) => s.logPath },
    "lock-path": { owned: (s) => s.lockPath },
  },
};

const section = (name: string, entries: Readonly<Record<string, PgbackrestValue>>): string[] => [
  `[${name}]`,
  ...sortedEntries(entries).map(([k, v]) => `${k}=${escapePgbackrestConf(v)}`),
];

/** Renders pgbackrest.conf: [global] layered (PGBACKREST_GLOBAL), sorted within each section. */
export function renderPgbackrestConf(s: PgbackrestSettings): string {
  const global = layer(PGBACKREST_GLOBAL, s).values;
  const stanza: Record<string, PgbackrestValue> = {
    "pg1-path": s.pgDataPath,
    "pg1-port": s.pgPort,
    "pg1-socket-path": s.pgSocketPath,
  };
  return lines(
    header("#").trimEnd(),
    `# pgBackRest for stanza ${s.stanza}: weekly full, daily differential, WAL archived continuously (BACKUP-1, BACKUP-2).`,
    "",
    section("global", global),
    "",
    // A restore runs on an idle host (disaster recovery): all cores. The drill passes a lower
    // --process-max on the command line, which wins over this section.
    section("global:restore", { "process-max": s.restoreProcessMax }),
    "",
    section(s.stanza, stanza),
  );
}

/** A shell word for archive_command: bare when it is safe, single-quoted otherwise. */
const shellWord = (v: string): string => (/^[A-Za-z0-9_./=:-]+$/.test(v) ? v : shellQuote(v));

/** The pgbackrest invocation every unit, script and archive_command uses. */
export const pgbackrestCommand = (s: Pick<PgbackrestSettings, "configPath" | "stanza">): string =>
  `pgbackrest ${shellWord(`--config=${s.configPath}`)} ${shellWord(`--stanza=${s.stanza}`)}`;

/**
 * The postgresql.conf keys WAL archiving needs, for the PostgreSQL drop-in to write as
 * forced keys (a user override must not turn archiving off: BACKUP-1). Values are typed for
 * escapePostgresConf; postgresArchiveConfLines() renders them.
 * https://pgbackrest.org/user-guide.html#quickstart/configure-archiving
 */
export function postgresArchiveSettings(s: PgbackrestSettings): Readonly<Record<string, string | number | boolean>> {
  return {
    archive_mode: true,
    archive_command: `${pgbackrestCommand(s)} archive-push %p`,
    archive_timeout: s.archiveTimeoutSeconds,
    // Archiving needs at least replica; minimal would make archive_mode refuse to start.
    wal_level: "replica",
  };
}

/** The archive keys as postgresql.conf lines, sorted and escaped. */
export const postgresArchiveConfLines = (s: PgbackrestSettings): string[] =>
  sortedEntries(postgresArchiveSettings(s)).map(([k, v]) => `${k} = ${escapePostgresConf(v)}`);
