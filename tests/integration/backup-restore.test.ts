// BACKUP-1, BACKUP-2 on the real Debian pgBackRest 2.45 + PostgreSQL 15: the stack's own
// rendered pgbackrest.conf (repository switched to posix, paths and port remapped to a temp
// dir) and its own archive_command; the deployed restore drill restores a point in time and
// the test proves exactly the rows committed before the target are there — zero lost, zero
// extra. Everything runs as the postgres OS user (PostgreSQL refuses root), on unix sockets
// in the temp dir only (listen_addresses = ''), and is stopped and removed at the end.
//
// ODOO_STACK_BACKUP_BENCH=1 adds the measurement of a ≥ 200 MB database: backup time,
// restore time and the ratio of restore time to a plain `cp -a` of the data directory.
import { randomBytes } from "crypto";
import { spawnSync, type SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { modelWith } from "../helpers/fixtures";
import {
  PG_BIN_DIR,
  pgbackrestSettingsFor,
  postgresArchiveConfLines,
  renderPgbackrestConf,
  type PgbackrestSettings,
} from "../../templates/pgbackrest";
import { header } from "../../templates/format";

const DRILL = path.resolve(__dirname, "../../templates/scripts/odoo-stack-restore-drill.sh");
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const BENCH = process.env.ODOO_STACK_BACKUP_BENCH === "1";

jest.setTimeout(BENCH ? 600_000 : 150_000);

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs a command as the postgres OS user: via runuser when the test runs as root. */
function asPostgres(command: string, args: readonly string[], env: Readonly<Record<string, string>> = {}, timeoutMs = 120_000): Run {
  const isRoot = process.getuid?.() === 0;
  const fullEnv = { PATH: SYSTEM_PATH, LANG: "C.UTF-8", TZ: "UTC", ...env };
  const started = Date.now();
  const r: SpawnSyncReturns<string> = isRoot
    ? spawnSync(
        "runuser",
        ["-u", "postgres", "--", "env", "-i", ...Object.entries(fullEnv).map(([k, v]) => `${k}=${v}`), command, ...args],
        {
          encoding: "utf8",
          timeout: timeoutMs,
          cwd: "/",
        },
      )
    : spawnSync(command, [...args], { encoding: "utf8", timeout: timeoutMs, env: { ...process.env, ...fullEnv }, cwd: "/" });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

function ok(r: Run, what: string): Run {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The sandbox: one temp dir holding the cluster, the repository, the drill's scratch dir. */
class Sandbox {
  readonly base = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-backup-"));
  readonly pgdata = path.join(this.base, "pgdata");
  readonly socketDir = path.join(this.base, "sock");
  readonly scratch = path.join(this.base, "drill");
  readonly stateFile = path.join(this.base, "state", "last-drill");
  readonly metricsLog = path.join(this.base, "metrics.log");
  readonly confPath = path.join(this.base, "pgbackrest.conf");
  readonly port = 5432;
  readonly drillPort = 55432;
  readonly settings: PgbackrestSettings;
  readonly conf: string;
  readonly production: PgbackrestSettings;

  constructor() {
    fs.chmodSync(this.base, 0o755);
    for (const d of ["sock", "repo", "log", "lock", "spool", "state"]) fs.mkdirSync(path.join(this.base, d));
    // The stack's settings, with only the repository and the host paths switched.
    this.production = pgbackrestSettingsFor(modelWith({}, "sandbox"), "odoo-stack-sandbox-backups");
    this.settings = {
      ...this.production,
      configPath: this.confPath,
      repo: { type: "posix", path: path.join(this.base, "repo") },
      cipherPass: randomBytes(32).toString("base64url"),
      pgDataPath: this.pgdata,
      pgPort: this.port,
      pgSocketPath: this.socketDir,
      spoolPath: path.join(this.base, "spool"),
      logPath: path.join(this.base, "log"),
      lockPath: path.join(this.base, "lock"),
    };
    this.conf = renderPgbackrestConf(this.settings);
    fs.writeFileSync(this.confPath, this.conf, { mode: 0o600 });
    fs.writeFileSync(path.join(this.base, "put-metric"), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${this.metricsLog}\n`, { mode: 0o755 });
    chownPostgres(this.base);
  }

  drillEnv(): Record<string, string> {
    return {
      ODOO_STACK_PGBACKREST_CONFIG: this.confPath,
      ODOO_STACK_PG_BIN: PG_BIN_DIR,
      ODOO_STACK_DRILL_SCRATCH: this.scratch,
      ODOO_STACK_DRILL_PORT: String(this.drillPort),
      ODOO_STACK_DRILL_STATE: this.stateFile,
      ODOO_STACK_PUT_METRIC: path.join(this.base, "put-metric"),
      ODOO_STACK_NAME: "sandbox",
      ODOO_STACK_PYTHON: "/usr/bin/python3",
    };
  }

  pgbackrest(...args: string[]): Run {
    return ok(asPostgres("pgbackrest", [`--config=${this.confPath}`, "--stanza=main", ...args]), `pgbackrest ${args.join(" ")}`);
  }

  psql(sql: string, opts: { socketDir?: string; port?: number; db?: string } = {}): string {
    const r = asPostgres(`${PG_BIN_DIR}/psql`, [
      "-X",
      "-q",
      "-A",
      "-t",
      "-v",
      "ON_ERROR_STOP=1",
      "-h",
      opts.socketDir ?? this.socketDir,
      "-p",
      String(opts.port ?? this.port),
      "-U",
      "postgres",
      "-d",
      opts.db ?? "postgres",
      "-c",
      sql,
    ]);
    return ok(r, `psql ${sql}`).stdout.trim();
  }

  drill(...args: string[]): Run {
    return this.drillWith({}, ...args);
  }

  drillWith(env: Readonly<Record<string, string>>, ...args: string[]): Run {
    return asPostgres("/bin/bash", [DRILL, ...args], { ...this.drillEnv(), ...env }, 300_000);
  }

  metrics(): string[] {
    return fs.existsSync(this.metricsLog) ? fs.readFileSync(this.metricsLog, "utf8").trim().split("\n") : [];
  }

  clearMetrics(): void {
    fs.rmSync(this.metricsLog, { force: true });
  }
}

function chownPostgres(dir: string): void {
  if (process.getuid?.() !== 0) return;
  const r = spawnSync("chown", ["-R", "postgres:postgres", dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`chown failed: ${r.stderr}`);
}

/** "<metric> <value>" pairs from the put-metric log lines. */
function metricValues(lines: readonly string[], name: string): number[] {
  return lines
    .map((l) => /--metric-name (\S+) --value (\S+) --unit (\S+) --dimensions Stack=sandbox/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === name)
    .map((m) => Number(m[2]));
}

function secondsLogged(out: string, phase: RegExp): number {
  const m = phase.exec(out);
  if (!m) throw new Error(`no ${phase} in drill output:\n${out}`);
  return Number(m[1]);
}

const sb = new Sandbox();
const measurements: string[] = [];

function startCluster(): void {
  ok(
    asPostgres(`${PG_BIN_DIR}/pg_ctl`, ["-D", sb.pgdata, "-l", path.join(sb.base, "postgres.log"), "-w", "-t", "60", "start"]),
    "pg_ctl start",
  );
}

beforeAll(() => {
  ok(
    asPostgres(`${PG_BIN_DIR}/initdb`, [
      "-D",
      sb.pgdata,
      "-U",
      "postgres",
      "-E",
      "UTF8",
      "--locale=C.UTF-8",
      "--auth-local=peer",
      "--auth-host=reject",
      "-N",
    ]),
    "initdb",
  );
  // The cluster's own settings for the sandbox, then the archive keys exactly as the stack renders them.
  fs.appendFileSync(
    path.join(sb.pgdata, "postgresql.conf"),
    [
      "",
      header("#").trimEnd(),
      "listen_addresses = ''",
      `unix_socket_directories = '${sb.socketDir}'`,
      `port = ${sb.port}`,
      "fsync = off",
      "timezone = 'UTC'",
      ...postgresArchiveConfLines(sb.settings),
      "",
    ].join("\n"),
  );
  startCluster();
});

afterAll(() => {
  try {
    sb.drill("--cleanup");
    asPostgres(`${PG_BIN_DIR}/pg_ctl`, ["-D", sb.pgdata, "-m", "fast", "-w", "stop"]);
    // The async archiver exits once its queue is empty; wait for any still holding the sandbox.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && sandboxProcesses().length > 0) spawnSync("sleep", ["0.2"]);
    for (const pid of sandboxProcesses()) process.kill(pid, "SIGKILL");
  } finally {
    fs.rmSync(sb.base, { recursive: true, force: true });
  }
  if (measurements.length > 0) console.log(`backup-restore measurements: ${measurements.join(" | ")}`);
});

/** PIDs of processes whose command line names the sandbox dir (postgres, pgbackrest). */
function sandboxProcesses(): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/cmdline`, "utf8").includes(sb.base);
      } catch {
        return false;
      }
    })
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

describe("pgBackRest with the rendered configuration (BACKUP-1)", () => {
  it("the sandbox config differs from the stack's only in the repository and host paths", () => {
    const stackConf = renderPgbackrestConf(sb.production).split("\n");
    const sandboxConf = sb.conf.split("\n");
    const differing = (a: string[], b: string[]) => a.filter((l) => !b.includes(l)).map((l) => l.split("=")[0]);
    const remapped = [
      "lock-path",
      "log-path",
      "pg1-path",
      "pg1-socket-path",
      "repo1-cipher-pass",
      "repo1-path",
      "repo1-s3-bucket",
      "repo1-s3-endpoint",
      "repo1-s3-key-type",
      "repo1-s3-region",
      "repo1-type",
      "spool-path",
    ];
    expect(differing(stackConf, sandboxConf).every((k) => remapped.includes(k))).toBe(true);
    expect(differing(sandboxConf, stackConf).every((k) => remapped.includes(k))).toBe(true);
    expect(sb.conf).toMatch(/^repo1-cipher-type=aes-256-cbc$/m);
    expect(sb.conf).toMatch(/^compress-type=zst$/m);
    expect(sb.conf).toMatch(/^archive-async=y$/m);
  });

  it("creates the stanza (twice: idempotent, as the backup units run it) and passes check through the rendered archive_command", () => {
    sb.pgbackrest("stanza-create");
    sb.pgbackrest("stanza-create");
    expect(sb.psql("SHOW archive_command")).toBe(`pgbackrest --config=${sb.confPath} --stanza=main archive-push %p`);
    sb.pgbackrest("check");
  });

  it("encrypts the repository: backup.info is not readable without the cipher pass", () => {
    const info = fs.readFileSync(path.join(sb.base, "repo", "backup", "main", "backup.info"));
    expect(info.subarray(0, 8).toString("latin1")).toBe("Salted__");
  });
});

describe("point-in-time restore through the deployed drill (BACKUP-2)", () => {
  const ROWS = 6;
  const KEEP = 3;
  let beforeBackup = "";
  let target = "";
  let commitTimes: string[] = [];

  beforeAll(() => {
    beforeBackup = sb.psql("SELECT clock_timestamp()");
    sb.psql(
      "CREATE TABLE drill_rows (id int PRIMARY KEY, note text NOT NULL, committed_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    );
    sb.psql("INSERT INTO drill_rows (id, note) SELECT -g, 'before the backup' FROM generate_series(1, 100) g");
    sb.pgbackrest("--type=full", "backup");
    commitTimes = [];
    for (let id = 1; id <= ROWS; id++) {
      // Each row its own transaction; a pause either side so commit timestamps separate.
      sb.psql(`SELECT pg_sleep(0.15); INSERT INTO drill_rows (id, note) VALUES (${id}, 'after the backup')`);
      commitTimes.push(sb.psql(`SELECT committed_at FROM drill_rows WHERE id = ${id}`));
      if (id === KEEP) {
        sb.psql("SELECT pg_sleep(0.15)");
        target = sb.psql("SELECT clock_timestamp()");
      }
    }
    // Switch and archive the WAL holding the last commits: check forces a segment switch and
    // waits until it is in the repository.
    sb.pgbackrest("check");
  });

  it("restores to the target time: exactly the rows committed before it, zero lost, zero extra", () => {
    const r = sb.drill("--target-time", target, "--keep");
    expect(r.stderr + r.stdout).toContain("drill succeeded");
    expect(r.status).toBe(0);
    const kept = { socketDir: path.join(sb.scratch, "run"), port: sb.drillPort };
    const ids = sb.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM drill_rows WHERE id > 0", kept);
    expect(ids).toBe(Array.from({ length: KEEP }, (_, i) => i + 1).join(","));
    expect(sb.psql("SELECT count(*) FROM drill_rows WHERE id < 0", kept)).toBe("100");
    // Every restored row committed before the target; the first one left out committed after it.
    expect(sb.psql(`SELECT bool_and(committed_at < '${target}') FROM drill_rows`, kept)).toBe("t");
    expect(sb.psql(`SELECT '${commitTimes[KEEP]}'::timestamptz > '${target}'`)).toBe("t");
    expect(sb.psql("SELECT pg_is_in_recovery()", kept)).toBe("f");
    measurements.push(
      `pitr-drill: rto=${secondsLogged(r.stdout, /RTO (\d+\.\d+) s/)}s restore=${secondsLogged(r.stdout, /restore took (\d+\.\d+) s/)}s`,
    );
  });

  it("--cleanup stops the kept server and removes the scratch dir", () => {
    ok(sb.drill("--cleanup"), "drill --cleanup");
    expect(fs.existsSync(sb.scratch)).toBe(false);
    expect(sandboxProcesses().some((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(sb.scratch))).toBe(false);
  });

  it("restores the latest backup + WAL, checks, reports RTO and success, and cleans up", () => {
    sb.clearMetrics();
    const r = ok(sb.drill("--databases", "erp"), "drill (latest)");
    const m = sb.metrics();
    expect(metricValues(m, "RestoreDrillSuccess")).toEqual([1]);
    const [rto] = metricValues(m, "RestoreDrillRtoSeconds");
    expect(rto).toBeGreaterThan(0);
    expect(rto).toBeLessThan(120);
    expect(metricValues(m, "LastBackupAgeSeconds")[0]).toBeGreaterThanOrEqual(0);
    // The newest commit was replayed: the restore reached the end of the archived WAL.
    const last = /last transaction replayed: (.+)$/m.exec(r.stdout)?.[1] ?? "";
    expect(sb.psql(`SELECT '${last}'::timestamptz >= '${commitTimes[ROWS - 1]}'::timestamptz`)).toBe("t");
    expect(r.stdout).toContain("WARNING: Odoo database erp is not in the restored cluster");
    expect(fs.existsSync(sb.scratch)).toBe(false);
    expect(fs.readFileSync(sb.stateFile, "utf8")).toMatch(/^result=1 finished=\d+ rto_seconds=\d+\.\d+ target=latest$/m);
    measurements.push(`latest-drill: rto=${rto}s`);
  });

  it("--report publishes the backup age and a fresh drill success", () => {
    sb.clearMetrics();
    ok(sb.drill("--report"), "drill --report");
    expect(metricValues(sb.metrics(), "RestoreDrillSuccess")).toEqual([1]);
    expect(metricValues(sb.metrics(), "LastBackupAgeSeconds")).toHaveLength(1);
  });

  it.each([
    ["precedes every backup (pgBackRest finds no backup set)", () => beforeBackup, /ERROR: pgbackrest restore failed/],
    [
      "lies past the archived WAL (PostgreSQL ends recovery before the target)",
      () => sb.psql("SELECT clock_timestamp()"),
      /ERROR: the (temporary server did not start|restored cluster stopped during recovery)/,
    ],
  ])("fails, publishes RestoreDrillSuccess 0 and cleans up when the target %s", (_why, targetOf, reason) => {
    sb.clearMetrics();
    const r = sb.drill("--target-time", targetOf());
    expect(r.status).not.toBe(0);
    expect(r.stdout).toMatch(reason);
    expect(r.stdout).toContain("drill FAILED");
    expect(metricValues(sb.metrics(), "RestoreDrillSuccess")).toEqual([0]);
    expect(metricValues(sb.metrics(), "RestoreDrillRtoSeconds")).toEqual([]);
    expect(fs.existsSync(sb.scratch)).toBe(false);
    expect(fs.readFileSync(sb.stateFile, "utf8")).toMatch(/^result=0 /);
    sb.clearMetrics();
    ok(sb.drill("--report"), "drill --report");
    expect(metricValues(sb.metrics(), "RestoreDrillSuccess")).toEqual([0]);
  });

  it("refuses a target time that is not a timestamp (it reaches SQL and recovery.conf)", () => {
    const r = sb.drill("--target-time", "2024-01-01'; DROP TABLE drill_rows; --");
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain("--target-time must look like");
  });
});

(BENCH ? describe : describe.skip)("measured backup and restore of a ≥ 200 MB database (ODOO_STACK_BACKUP_BENCH=1)", () => {
  it("times a full backup, the drill's restore, and a plain cp -a of the restored data directory", () => {
    sb.psql(
      "CREATE TABLE bench AS SELECT g AS id, md5(g::text) AS a, md5((g * 7)::text) AS b, clock_timestamp() AS ts FROM generate_series(1, 2300000) g",
    );
    const dbBytes = Number(sb.psql("SELECT sum(pg_database_size(datname)) FROM pg_database"));
    expect(dbBytes).toBeGreaterThanOrEqual(200 * 1024 * 1024);
    const rows = Number(sb.psql("SELECT count(*) FROM bench"));
    sb.pgbackrest("check");
    const backup = sb.pgbackrest("--type=full", "backup");
    const repoBytes = Number(ok(asPostgres("du", ["-sb", path.join(sb.base, "repo")]), "du").stdout.split("\t")[0]);

    // The drill as deployed (process-max 1 beside production), kept running to check it.
    const drill = ok(sb.drillWith({}, "--keep"), "drill --keep (bench)");
    const kept = { socketDir: path.join(sb.scratch, "run"), port: sb.drillPort };
    expect(Number(sb.psql("SELECT count(*) FROM bench", kept))).toBe(rows);
    // The plain copy: the same restored data directory, server stopped, cp -a.
    const restored = path.join(sb.scratch, "data");
    ok(asPostgres(`${PG_BIN_DIR}/pg_ctl`, ["-D", restored, "-m", "fast", "-w", "stop"]), "stop the kept drill server");
    const restoredBytes = Number(ok(asPostgres("du", ["-sb", restored]), "du").stdout.split("\t")[0]);
    const copyDir = path.join(sb.base, "copy");
    const cp = ok(asPostgres("cp", ["-a", restored, copyDir]), "cp -a");
    fs.rmSync(copyDir, { recursive: true, force: true });
    ok(sb.drill("--cleanup"), "drill --cleanup");
    // A disaster-recovery restore on an idle host uses every core ([global:restore] process-max).
    const allCores = ok(sb.drillWith({ ODOO_STACK_DRILL_PROCESS_MAX: String(os.cpus().length) }), "drill (all cores)");

    const restoreS = secondsLogged(drill.stdout, /restore took (\d+\.\d+) s/);
    const rtoS = secondsLogged(drill.stdout, /RTO (\d+\.\d+) s/);
    const restoreAllS = secondsLogged(allCores.stdout, /restore took (\d+\.\d+) s/);
    const cpS = cp.ms / 1000;
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)}MiB`;
    measurements.push(
      `bench: database=${mib(dbBytes)} restored-datadir=${mib(restoredBytes)} repo(backup+WAL, zstd+aes)=${mib(repoBytes)} ` +
        `full-backup=${(backup.ms / 1000).toFixed(1)}s(process-max ${sb.settings.processMax}) ` +
        `restore=${restoreS}s(process-max 1) restore=${restoreAllS}s(process-max ${os.cpus().length}) drill-rto=${rtoS}s ` +
        `cp-a=${cpS.toFixed(1)}s restore/cp=${(restoreS / cpS).toFixed(1)} (${(restoreAllS / cpS).toFixed(1)} with all cores) rto/cp=${(rtoS / cpS).toFixed(1)} on ${os.cpus().length} cores`,
    );
  });
});
