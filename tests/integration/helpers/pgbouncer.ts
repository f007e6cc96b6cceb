// PgBouncer 1.18 from Debian, run as `postgres` (what Debian's pgbouncer.service does) on the
// rendered pgbouncer.ini and userlist.txt. Its [databases] entries name PostgreSQL by DNS name
// (server_tls_sslmode = verify-full checks the certificate against it, TLS-2/TLS-3), so the
// sandbox gives the pgbouncer process a private /etc/hosts in its own mount namespace that maps
// postgres.<zone> to 127.0.0.1. Nothing outside that one process sees the change.
import * as fs from "fs";
import { Client } from "pg";
import { BIN, sleep, waitForOwnPort, type ManagedProcess, type Sandbox, type SystemUser } from "./sandbox";

let namespaceSupport: boolean | undefined;

/**
 * Whether this machine lets root give one process a private /etc/hosts (unshare --mount).
 * ODOO_STACK_IT_NO_MOUNT_NAMESPACE=1 forces the fallback, to exercise it where namespaces work.
 */
export async function privateHostsSupported(sandbox: Sandbox): Promise<boolean> {
  if (process.env.ODOO_STACK_IT_NO_MOUNT_NAMESPACE === "1") return false;
  if (namespaceSupport !== undefined) return namespaceSupport;
  const probe = sandbox.writeFile("hosts-probe", "127.0.0.1 odoo-stack-probe.invalid\n");
  const r = await sandbox.run("/usr/bin/unshare", [
    "--mount",
    "--propagation",
    "private",
    "--",
    "/bin/sh",
    "-c",
    'mount --bind "$0" /etc/hosts && getent hosts odoo-stack-probe.invalid',
    probe,
  ]);
  namespaceSupport = r.code === 0 && /127\.0\.0\.1/.test(r.stdout);
  return namespaceSupport;
}

/**
 * Command and arguments that run `command` as `user` with `hostsFile` bind-mounted over
 * /etc/hosts in a private mount namespace. Every step execs, so the spawned pid is the
 * daemon's own pid (signals such as SIGHUP reach it directly).
 */
export function withPrivateHosts(
  hostsFile: string,
  user: SystemUser,
  command: string,
  args: readonly string[],
): { command: string; args: string[] } {
  return {
    command: "/usr/bin/unshare",
    args: [
      "--mount",
      "--propagation",
      "private",
      "--",
      "/bin/sh",
      "-c",
      'hosts=$1; uid=$2; gid=$3; shift 3; mount --bind "$hosts" /etc/hosts && exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"',
      "odoo-stack-sandbox",
      hostsFile,
      String(user.uid),
      String(user.gid),
      command,
      ...args,
    ],
  };
}

export interface PgbouncerInstance {
  readonly process: ManagedProcess;
  readonly port: number;
  readonly socketDir: string;
  readonly iniPath: string;
  readonly logFile: string;
  /** SHOW <what> on the admin console (user "pgbouncer" over the Unix socket, same OS user), parsed into rows. */
  show(what: string): Promise<Record<string, string>[]>;
  /** The log written so far (rendered logfile, remapped into the sandbox). */
  log(): string;
}

/**
 * Starts pgbouncer on `iniPath` as `user`. `hostsFile` maps the server's DNS name to
 * 127.0.0.1; when private mount namespaces are unavailable the caller must have rendered
 * serverHost as an address instead (and says so in its report).
 */
export async function startPgbouncer(
  sandbox: Sandbox,
  user: SystemUser,
  opts: { iniPath: string; port: number; socketDir: string; logFile: string; hostsFile?: string; pidFile?: string },
): Promise<PgbouncerInstance> {
  // A previous attempt that lost its port (withFreshPort) leaves its pidfile, which would make
  // this one refuse to start ("pidfile exists, another instance running?").
  if (opts.pidFile) fs.rmSync(opts.pidFile, { force: true });
  const spawnSpec = opts.hostsFile
    ? withPrivateHosts(opts.hostsFile, user, BIN.pgbouncer, [opts.iniPath])
    : { command: BIN.pgbouncer, args: [opts.iniPath] };
  const process = sandbox.start({
    name: "pgbouncer",
    command: spawnSpec.command,
    args: spawnSpec.args,
    user: opts.hostsFile ? undefined : user,
    // PgBouncer 1.18: SIGTERM is the immediate SHUTDOWN; SIGINT would wait for every client.
    stopSignal: "SIGTERM",
  });
  try {
    await waitForOwnPort(process, opts.port);
  } catch (err) {
    await process.stop(5_000);
    throw err;
  }
  const readLog = () => {
    try {
      return fs.readFileSync(opts.logFile, "utf8");
    } catch {
      return "";
    }
  };
  const show = async (what: string) => {
    const r = await sandbox.run(
      BIN.psql,
      ["-X", "-h", opts.socketDir, "-p", String(opts.port), "-U", "pgbouncer", "-d", "pgbouncer", "--csv", "-c", `SHOW ${what}`],
      { user },
    );
    if (r.code !== 0) throw new Error(`SHOW ${what} failed: ${r.stderr}`);
    return parseCsv(r.stdout);
  };
  return { process, port: opts.port, socketDir: opts.socketDir, iniPath: opts.iniPath, logFile: opts.logFile, show, log: readLog };
}

/** psql --csv output → rows keyed by column (PgBouncer's SHOW values never contain newlines). */
export function parseCsv(text: string): Record<string, string>[] {
  const rows = text.trim() === "" ? [] : text.trim().split("\n").map(splitCsvLine);
  if (rows.length === 0) return [];
  const [head, ...body] = rows;
  return body.map((cols) => Object.fromEntries(head.map((h, i) => [h, cols[i] ?? ""])));
}

function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** SHOW POOLS / SHOW STATS through a pg client (simple query protocol, as monitoring agents do). */
export async function showVia(client: Client, what: string): Promise<Record<string, string>[]> {
  const res = await client.query({ text: `SHOW ${what}`, rowMode: "array" });
  return res.rows.map((row: unknown[]) => Object.fromEntries(res.fields.map((f, i) => [f.name, String(row[i])])));
}

/** Server connections of a pool as SHOW POOLS counts them. */
export const serverConnections = (pool: Record<string, string>): number =>
  Number(pool.sv_active) + Number(pool.sv_idle) + Number(pool.sv_used) + Number(pool.sv_tested) + Number(pool.sv_login);

/** Polls `fn` every `intervalMs` until `stop` resolves; returns every sample. */
export async function sampleUntil<T>(stop: Promise<unknown>, intervalMs: number, fn: () => Promise<T>): Promise<T[]> {
  const samples: T[] = [];
  let done = false;
  void stop.then(
    () => (done = true),
    () => (done = true),
  );
  while (!done) {
    samples.push(await fn());
    await sleep(intervalMs);
  }
  return samples;
}
