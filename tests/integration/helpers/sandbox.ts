// The loopback sandbox the integration tests run the real Debian daemons in: one temp dir per
// test file, ports chosen free at runtime in 55000–59000, every daemon started as an
// unprivileged system user in its own process group, and a cleanup that kills every process
// and removes every file even when a test failed half-way (issue 4: "cleaning up every process
// and temp dir").
import { execFileSync, spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

/** Debian 12 package binaries; CI installs the same packages with apt-get (.ci/run). */
export const BIN = {
  initdb: "/usr/lib/postgresql/15/bin/initdb",
  postgres: "/usr/lib/postgresql/15/bin/postgres",
  psql: "/usr/lib/postgresql/15/bin/psql",
  pgbouncer: "/usr/sbin/pgbouncer",
  nginx: "/usr/sbin/nginx",
  openssl: "/usr/bin/openssl",
} as const;

/** The sandbox's port range: away from the defaults and from ephemeral ports (32768+ on Linux is shared, so we probe). */
export const PORT_RANGE = { first: 55000, last: 58999 } as const;

export interface SystemUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** Looks a system user up (e.g. `postgres`, `www-data`, created by the Debian packages). */
export function systemUser(name: string): SystemUser {
  const id = (flag: string) => Number(execFileSync("id", [flag, name], { encoding: "utf8" }).trim());
  return { name, uid: id("-u"), gid: id("-g") };
}

export interface ProcessSpec {
  /** Shown in logs and failure messages. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Run as this user (daemons refuse root, and production runs them unprivileged). */
  readonly user?: SystemUser;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** The daemon's graceful fast-shutdown signal: SIGINT for postgres, SIGTERM otherwise. */
  readonly stopSignal?: NodeJS.Signals;
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const MAX_CAPTURED_OUTPUT = 1_000_000;

/** A daemon the sandbox started; its output is captured for assertions and failure messages. */
export class ManagedProcess {
  private captured = "";
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when the process's stdout and stderr are closed (its last words are captured). */
  private readonly outputClosed: Promise<void>;

  constructor(
    readonly spec: ProcessSpec,
    private readonly child: ChildProcess,
  ) {
    const append = (chunk: Buffer) => {
      this.captured += chunk.toString("utf8");
      if (this.captured.length > MAX_CAPTURED_OUTPUT) this.captured = this.captured.slice(-MAX_CAPTURED_OUTPUT / 2);
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    this.outputClosed = new Promise((resolve) => child.on("close", () => resolve()));
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      child.on("error", (err) => {
        this.captured += `\n[sandbox] spawn error: ${err.message}\n`;
        this.exitInfo = { code: null, signal: null };
        resolve(this.exitInfo);
      });
    });
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid (spawn failed): ${this.captured}`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** How the process ended ("exit code 1", "signal SIGKILL"), or "running". */
  get exitStatus(): string {
    if (!this.exitInfo) return "running";
    return this.exitInfo.signal ? `signal ${this.exitInfo.signal}` : `exit code ${this.exitInfo.code}`;
  }

  /** Everything the process wrote to stdout and stderr so far. */
  output(): string {
    return this.captured;
  }

  /**
   * The output, once the process has ended and its pipes are drained ('exit' can arrive
   * before the last lines): for failure messages.
   */
  async finalOutput(): Promise<string> {
    if (!this.running) await settlesWithin(this.outputClosed, 1_000);
    return this.captured;
  }

  /** Sends a signal to the daemon itself (e.g. SIGHUP: reload). */
  signal(sig: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, sig);
  }

  /** Resolves when `pattern` appears in the output; rejects with the output on timeout or exit. */
  async waitForOutput(pattern: RegExp, timeoutMs = 10_000, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.captured.slice(from).match(pattern);
      if (match) return match[0];
      if (!this.running) throw new Error(`${this.name} ended (${this.exitStatus}) before printing ${pattern}:\n${this.captured}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms:\n${this.captured}`);
      await sleep(50);
    }
  }

  /**
   * Graceful stop with the daemon's own signal, then SIGKILL to the whole process group
   * (postgres backends, nginx workers) if it has not exited in time.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running) {
      killGroup(this.child.pid, "SIGKILL");
      return;
    }
    try {
      process.kill(this.pid, this.spec.stopSignal ?? "SIGTERM");
    } catch {
      // already gone
    }
    const stopped = await settlesWithin(this.exited, timeoutMs);
    killGroup(this.child.pid, "SIGKILL");
    if (!stopped) await settlesWithin(this.exited, 2_000);
  }

  /** Synchronous last resort for process exit handlers. */
  killNow(): void {
    killGroup(this.child.pid, "SIGKILL");
  }
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // the group is already gone
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** True when `promise` settles within `ms`; the timer is cleared either way (no open handle left behind). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// Every live sandbox, so a crashing test runner still kills what it started.
const liveSandboxes = new Set<Sandbox>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const sandbox of liveSandboxes) sandbox.cleanupNow();
  });
}

const portsHandedOut = new Set<number>();

/** One test file's sandbox: a temp root, free ports, and the processes it started. */
export class Sandbox {
  private readonly processes: ManagedProcess[] = [];
  private readonly cleanups: (() => Promise<void> | void)[] = [];
  private cleanedUp = false;

  private constructor(readonly root: string) {}

  /** Creates the temp root (mode 0711: daemons running as other users can reach their own subdirectories). */
  static create(label: string): Sandbox {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `odoo-stack-it-${label}-`));
    fs.chmodSync(root, 0o711);
    const sandbox = new Sandbox(root);
    liveSandboxes.add(sandbox);
    installExitHook();
    return sandbox;
  }

  path(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  /** Creates a directory under the root, owned by `owner` (default root), mode 0700 unless given. */
  mkdir(relative: string, owner?: SystemUser, mode = 0o700): string {
    const dir = this.path(relative);
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, mode);
    if (owner) fs.chownSync(dir, owner.uid, owner.gid);
    return dir;
  }

  /** Writes a file (absolute or relative to the root) with a mode and owner. */
  writeFile(file: string, content: string | Buffer, options: { mode?: number; owner?: SystemUser } = {}): string {
    const full = path.isAbsolute(file) ? file : this.path(file);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, content);
    fs.chmodSync(full, options.mode ?? 0o644);
    if (options.owner) fs.chownSync(full, options.owner.uid, options.owner.gid);
    return full;
  }

  /** A port in PORT_RANGE that nothing listens on right now (probed by binding 127.0.0.1). */
  async freePort(): Promise<number> {
    const span = PORT_RANGE.last - PORT_RANGE.first + 1;
    const start = Math.floor(Math.random() * span);
    for (let i = 0; i < span; i++) {
      const port = PORT_RANGE.first + ((start + i) % span);
      if (portsHandedOut.has(port)) continue;
      if (await canBind(port)) {
        portsHandedOut.add(port);
        return port;
      }
    }
    throw new Error(`no free port in ${PORT_RANGE.first}-${PORT_RANGE.last}`);
  }

  /** Starts a long-running process in its own process group; the sandbox stops it in cleanup(). */
  start(spec: ProcessSpec): ManagedProcess {
    if (this.cleanedUp) throw new Error(`sandbox ${this.root} is already cleaned up`);
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd ?? this.root,
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", ...(spec.env ?? {}) },
      uid: spec.user?.uid,
      gid: spec.user?.gid,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const managed = new ManagedProcess(spec, child);
    this.processes.push(managed);
    return managed;
  }

  /** Runs a command to completion (optionally as `user`, with stdin), capturing its output. */
  run(
    command: string,
    args: readonly string[],
    options: { user?: SystemUser; env?: Readonly<Record<string, string>>; input?: string; cwd?: string; timeoutMs?: number } = {},
  ): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(command, [...args], {
        cwd: options.cwd ?? this.root,
        env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", ...(options.env ?? {}) },
        uid: options.user?.uid,
        gid: options.user?.gid,
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
      const timer = setTimeout(() => {
        killGroup(child.pid, "SIGKILL");
        reject(new Error(`${command} ${args.join(" ")} timed out after ${options.timeoutMs ?? 60_000} ms\n${stdout}\n${stderr}`));
      }, options.timeoutMs ?? 60_000);
      child.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
      // A command may exit without reading its stdin; that EPIPE is not the command's result.
      child.stdin.on("error", () => undefined);
      // psql may exit before it reads its input; the EPIPE then must not crash the test process.
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.input ?? "");
    });
  }

  /** Like run(), but throws with the output when the exit code is not 0. */
  async runOk(command: string, args: readonly string[], options: Parameters<Sandbox["run"]>[2] = {}): Promise<RunResult> {
    const result = await this.run(command, args, options);
    if (result.code !== 0) {
      throw new Error(`${command} ${args.join(" ")} exited ${result.code ?? result.signal}:\n${result.stdout}\n${result.stderr}`);
    }
    return result;
  }

  /** Registers extra cleanup (client pools, HTTP servers); runs before processes stop, in reverse order. */
  onCleanup(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  /** Stops every process (graceful, then SIGKILL to the group) and removes the temp root. Never throws. */
  async cleanup(): Promise<void> {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    const errors: string[] = [];
    for (const fn of [...this.cleanups].reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(String(err));
      }
    }
    await Promise.all([...this.processes].reverse().map((p) => p.stop().catch((err) => errors.push(`${p.name}: ${String(err)}`))));
    fs.rmSync(this.root, { recursive: true, force: true });
    liveSandboxes.delete(this);
    if (errors.length > 0) console.warn(`[sandbox] cleanup of ${this.root}: ${errors.join("; ")}`);
  }

  /** Synchronous variant for process exit: SIGKILL every group, remove the root. */
  cleanupNow(): void {
    for (const p of this.processes) p.killNow();
    fs.rmSync(this.root, { recursive: true, force: true });
    liveSandboxes.delete(this);
  }

  /** Processes that are still running (cleanup tests assert this is empty). */
  runningProcesses(): ManagedProcess[] {
    return this.processes.filter((p) => p.running);
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The sandbox's ports are probed free, but the range 55000–59000 lies inside Linux's ephemeral
 * range (32768–60999): an outgoing connection may take a probed port before the daemon binds
 * it. Daemon starts therefore retry with a fresh port when the bind fails.
 */
export const ADDRESS_IN_USE = /Address already in use|EADDRINUSE/;

/** Runs `start(port)` with a free port, retrying with another one when the bind lost a race. */
export async function withFreshPort<T>(sandbox: Sandbox, start: (port: number) => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const port = await sandbox.freePort();
    try {
      return await start(port);
    } catch (err) {
      if (attempt >= attempts || !ADDRESS_IN_USE.test(String((err as Error).message))) throw err;
      console.warn(`[sandbox] port ${port} was taken before the daemon bound it; retrying with another (${attempt}/${attempts})`);
    }
  }
}

/** Resolves once a TCP connect to host:port succeeds; rejects after timeoutMs. */
export async function waitForPort(
  port: number,
  options: { host?: string; timeoutMs?: number; process?: ManagedProcess } = {},
): Promise<void> {
  const host = options.host ?? "127.0.0.1";
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    if (await canConnect(host, port)) return;
    if (options.process && !options.process.running) {
      throw new Error(
        `${options.process.name} ended (${options.process.exitStatus}) before listening on ${host}:${port}:\n${await options.process.finalOutput()}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `nothing listens on ${host}:${port} after ${options.timeoutMs ?? 15_000} ms${options.process ? `:\n${options.process.output()}` : ""}`,
      );
    }
    await sleep(50);
  }
}

/**
 * Resolves once `process` (or a process of its group) itself listens on `port`: a connect
 * alone could reach another program that won the port race, while the daemon already died.
 */
export async function waitForOwnPort(process: ManagedProcess, port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!process.running) {
      throw new Error(`${process.name} ended (${process.exitStatus}) before listening on ${port}:\n${await process.finalOutput()}`);
    }
    if (listeningPorts(processGroupPids(process.pid)).includes(port)) return;
    if (Date.now() > deadline) throw new Error(`${process.name} does not listen on ${port} after ${timeoutMs} ms:\n${process.output()}`);
    await sleep(50);
  }
}

export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(1_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}

/** TCP ports `pid` (and its process group) listen on, from /proc/net/tcp{,6} and /proc/<pid>/fd. */
export function listeningPorts(pids: readonly number[]): number[] {
  const inodes = new Set<string>();
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(target);
        if (m) inodes.add(m[1]);
      } catch {
        // fd closed meanwhile
      }
    }
  }
  const ports = new Set<number>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = fs.readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // cols: sl local_address rem_address st ... inode (index 9); st 0A = LISTEN
      if (cols.length > 9 && cols[3] === "0A" && inodes.has(cols[9])) {
        ports.add(parseInt(cols[1].split(":")[1], 16));
      }
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** Pids of every process in the process group `pgid` (a daemon and its workers/backends). */
export function processGroupPids(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid pgrp ... — comm may contain spaces, so split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid) pids.push(Number(entry));
    } catch {
      // process exited meanwhile
    }
  }
  return pids;
}
