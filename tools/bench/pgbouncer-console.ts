// SHOW POOLS during a run. The sandbox's PgbouncerInstance.show() hands psql an empty stdin and
// can die of EPIPE when psql exits first; sampled every second under load that happens, so the
// benchmark runs psql with stdin closed instead (a small addition kept beside the bench).
import { spawn } from "child_process";
import { parseCsv } from "../../tests/integration/helpers/pgbouncer";
import { BIN, type SystemUser } from "../../tests/integration/helpers/sandbox";

export interface ConsoleAddress {
  readonly socketDir: string;
  readonly port: number;
  /** The daemon's OS user: the console admits user "pgbouncer" from it without a password. */
  readonly user: SystemUser;
}

/** SHOW <what> on PgBouncer's console, parsed into rows. */
export const consoleShow = async (o: ConsoleAddress, what: string, timeoutMs = 5_000): Promise<Record<string, string>[]> =>
  parseCsv(await consoleCommand(o, `SHOW ${what}`, timeoutMs));

/** Runs one console command (SHOW, KILL, RESUME, …); resolves with psql's CSV output. */
export function consoleCommand(o: ConsoleAddress, command: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      BIN.psql,
      ["-X", "-h", o.socketDir, "-p", String(o.port), "-U", "pgbouncer", "-d", "pgbouncer", "--csv", "-c", command],
      {
        uid: o.user.uid,
        gid: o.user.gid,
        env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${command} failed (${code}): ${stderr.trim()}`));
    });
  });
}

/** The largest maxwait over every pool of SHOW POOLS, in ms (maxwait s + maxwait_us µs). */
export function maxWaitOf(pools: readonly Record<string, string>[]): number {
  return Math.max(0, ...pools.map((p) => Number(p.maxwait ?? 0) * 1000 + Number(p.maxwait_us ?? 0) / 1000));
}
