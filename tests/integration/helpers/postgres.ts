// A PostgreSQL 15 cluster laid out as Debian's pg_createcluster lays it out (config directory
// with postgresql.conf → include_dir 'conf.d', pg_hba.conf, pg_ident.conf; a separate data
// directory), run as the `postgres` user on 127.0.0.1 and a sandbox Unix socket directory.
// The rendered drop-in, pg_hba.conf and bootstrap SQL are installed unchanged apart from the
// remapped ports, addresses and paths.
import * as fs from "fs";
import * as path from "path";
import { BIN, sleep, type ManagedProcess, type RunResult, type Sandbox, type SystemUser } from "./sandbox";

export interface PostgresFiles {
  /** The rendered conf.d drop-in (PATHS.postgresConf's file name). */
  readonly dropIn: { readonly fileName: string; readonly content: string };
  readonly pgHba: string;
}

export interface PostgresCluster {
  readonly process: ManagedProcess;
  readonly port: number;
  readonly socketDir: string;
  readonly confDir: string;
  readonly dataDir: string;
  readonly user: SystemUser;
  /** Runs SQL as the `postgres` superuser over the Unix socket (peer authentication). */
  psql(sql: string, options?: { database?: string; input?: string }): Promise<string>;
  /** Like psql() but returns the raw result (for expected failures). */
  psqlRaw(sql: string, options?: { database?: string; input?: string }): Promise<RunResult>;
  /** Runs a SQL script from stdin with ON_ERROR_STOP (how the apply script runs bootstrap SQL). */
  runScript(sql: string, database?: string): Promise<RunResult>;
}

/**
 * What pg_createcluster writes into the main postgresql.conf that matters for a cluster in a
 * temp dir: file locations, port and socket directory, then `include_dir = 'conf.d'` at the end,
 * so the rendered drop-in is read last and wins, as on the host.
 */
export function debianMainConf(opts: { dataDir: string; confDir: string; port: number; socketDir: string }): string {
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  return [
    "# sandbox stand-in for Debian's /etc/postgresql/15/main/postgresql.conf (pg_createcluster)",
    `data_directory = ${q(opts.dataDir)}`,
    `hba_file = ${q(path.join(opts.confDir, "pg_hba.conf"))}`,
    `ident_file = ${q(path.join(opts.confDir, "pg_ident.conf"))}`,
    `port = ${opts.port}`,
    `unix_socket_directories = ${q(opts.socketDir)}`,
    "cluster_name = '15/main'",
    "dynamic_shared_memory_type = posix",
    "log_line_prefix = '%m [%p] %q%u@%d '",
    "log_timezone = 'UTC'",
    "timezone = 'UTC'",
    "datestyle = 'iso, mdy'",
    "lc_messages = 'C.UTF-8'",
    "default_text_search_config = 'pg_catalog.english'",
    "include_dir = 'conf.d'",
    "",
  ].join("\n");
}

/**
 * initdb + the Debian layout + start. `port` and `socketDir` must be the values the rendered
 * drop-in was remapped to (the drop-in is read last; the main file only mirrors Debian's).
 */
export async function startPostgres(
  sandbox: Sandbox,
  user: SystemUser,
  files: PostgresFiles,
  opts: { port: number; confDir: string; dataDir: string; socketDir: string; name?: string },
): Promise<PostgresCluster> {
  const name = opts.name ?? "postgres";
  const { confDir, dataDir, socketDir } = opts;
  for (const [dir, mode] of [
    [dataDir, 0o700],
    [confDir, 0o755],
    [socketDir, 0o755],
  ] as const) {
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, mode);
    fs.chownSync(dir, user.uid, user.gid);
  }
  // A retry with another port (withFreshPort) reuses the cluster initdb already made.
  if (!fs.existsSync(path.join(dataDir, "PG_VERSION")))
    await sandbox.runOk(
      BIN.initdb,
      [
        "-D",
        dataDir,
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--auth-local=peer",
        "--auth-host=scram-sha-256",
        "--no-instructions",
      ],
      { user, timeoutMs: 120_000 },
    );
  sandbox.writeFile(path.join(confDir, "postgresql.conf"), debianMainConf({ dataDir, confDir, port: opts.port, socketDir }), {
    owner: user,
    mode: 0o644,
  });
  sandbox.writeFile(path.join(confDir, "conf.d", files.dropIn.fileName), files.dropIn.content, { owner: user, mode: 0o644 });
  fs.chownSync(path.join(confDir, "conf.d"), user.uid, user.gid);
  sandbox.writeFile(path.join(confDir, "pg_hba.conf"), files.pgHba, { owner: user, mode: 0o640 });
  sandbox.writeFile(path.join(confDir, "pg_ident.conf"), "", { owner: user, mode: 0o640 });

  const process = sandbox.start({
    name,
    command: BIN.postgres,
    args: ["-D", dataDir, "-c", `config_file=${path.join(confDir, "postgresql.conf")}`],
    user,
    stopSignal: "SIGINT", // fast shutdown: active sessions are rolled back, not waited for
  });

  const psqlArgs = (database: string) => [
    "-X",
    "-q",
    "-h",
    socketDir,
    "-p",
    String(opts.port),
    "-U",
    "postgres",
    "-d",
    database,
    "-v",
    "ON_ERROR_STOP=1",
  ];
  const psqlRaw = (sql: string, o: { database?: string; input?: string } = {}) =>
    sandbox.run(BIN.psql, [...psqlArgs(o.database ?? "postgres"), "-At", "-c", sql], { user, input: o.input });
  const psql = async (sql: string, o: { database?: string; input?: string } = {}) => {
    const r = await psqlRaw(sql, o);
    if (r.code !== 0) throw new Error(`psql failed (${sql}):\n${r.stderr}`);
    return r.stdout.trim();
  };
  const runScript = (sql: string, database = "postgres") => sandbox.run(BIN.psql, [...psqlArgs(database), "-f", "-"], { user, input: sql });

  // Ready when a superuser session over the socket works (the log may go to a collector file).
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await psqlRaw("SELECT 1");
    if (r.code === 0) break;
    if (!process.running || Date.now() > deadline) {
      const logs = collectServerLogs(dataDir);
      const reason = process.running ? "timeout after 30 s" : process.exitStatus;
      if (process.running) await process.stop(5_000);
      throw new Error(`PostgreSQL did not start (${reason}):\n${await process.finalOutput()}\n${logs}\nlast psql: ${r.stderr}`);
    }
    await sleep(100);
  }

  return {
    process,
    port: opts.port,
    socketDir,
    confDir,
    dataDir,
    user,
    psql,
    psqlRaw,
    runScript,
  };
}

/** Server log files under the data directory (when the drop-in turns the logging collector on). */
export function collectServerLogs(dataDir: string): string {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && (e.name === "log" || e.name === "pg_log")) walk(p);
      else if (e.isFile() && /\.(log|csv|json)$/.test(e.name)) out.push(`--- ${p}\n${fs.readFileSync(p, "utf8").slice(-20_000)}`);
    }
  };
  walk(dataDir);
  return out.join("\n");
}
