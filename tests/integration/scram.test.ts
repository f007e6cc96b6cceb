// SCRAM verifiers checked against the real PostgreSQL 15 from Debian: PostgreSQL computes a
// verifier, we recompute it from its salt and iteration count and must match byte for byte;
// then a verifier we computed is stored with ALTER ROLE and must let the password log in.
// The cluster is throwaway: a temp dir, no TCP listener, one Unix socket in that dir.
import { execFileSync, spawn, type ChildProcess } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseScramVerifier, scramSha256Verifier, SCRAM_SALT_BYTES } from "../../lib/scram";

jest.setTimeout(60_000);

const BIN = execFileSync("pg_config", ["--bindir"], { encoding: "utf8" }).trim();
// The socket file is named after the port; the socket lives in our private temp dir, so
// the number only has to be valid, not free.
const PORT = 55432;
/** initdb and postgres refuse to run as root: when we are root, run them as postgres. */
const asUser: { uid?: number; gid?: number } =
  process.getuid?.() === 0
    ? {
        uid: Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" })),
        gid: Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" })),
      }
    : {};

function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(path.join(BIN, bin), args, {
    ...asUser,
    encoding: "utf8",
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Random ASCII-alphanumeric password, the kind the stack generates. Never a stack secret. */
const throwawayPassword = (): string =>
  randomBytes(24)
    .toString("base64")
    .replace(/[^A-Za-z0-9]/g, "")
    .slice(0, 20);

describe("scramSha256Verifier against PostgreSQL 15 (AUTH-1, DESIGN principle 5)", () => {
  let dir: string;
  let server: ChildProcess | undefined;

  const psql = (sql: string, user = "postgres", password?: string): string =>
    run(
      "psql",
      ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", String(PORT), "-U", user, "-d", "postgres", "-c", sql],
      password ? { PGPASSWORD: password } : {},
    ).trim();

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-scram-"));
    if (asUser.uid !== undefined) fs.chownSync(dir, asUser.uid, asUser.gid!);
    const data = path.join(dir, "data");
    // trust only on the Unix socket inside our 0700 temp dir; the role under test gets
    // scram-sha-256 so that a login proves the stored verifier.
    run("initdb", ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync"]);
    fs.writeFileSync(path.join(data, "pg_hba.conf"), "local all scram_login scram-sha-256\nlocal all postgres trust\n");
    // Spawned directly (no runuser wrapper) so that our signal reaches the postmaster.
    server = spawn(path.join(BIN, "postgres"), ["-D", data, "-k", dir, "-p", String(PORT), "-c", "listen_addresses=", "-c", "fsync=off"], {
      ...asUser,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    server.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    for (let i = 0; i < 100 && !/ready to accept connections/.test(log); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!/ready to accept connections/.test(log)) throw new Error(`postgres did not start:\n${log}`);
  });

  afterAll(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((r) => server?.once("exit", r));
      server.kill("SIGINT"); // fast shutdown
      const killer = setTimeout(() => server?.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each([1, 2, 3])("reproduces the verifier PostgreSQL computed, byte for byte (run %i)", (n) => {
    const role = `scram_probe_${n}`;
    const password = throwawayPassword();
    psql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE ${role} PASSWORD '${password}'`);
    const stored = psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${role}'`);
    const parts = parseScramVerifier(stored);
    expect(parts).toBeDefined();
    expect(parts?.salt.length).toBe(SCRAM_SALT_BYTES);
    expect(scramSha256Verifier(password, parts!.salt, parts!.iterations)).toBe(stored);
  });

  it("stores a verifier we computed verbatim and accepts the password against it", () => {
    const password = throwawayPassword();
    const verifier = scramSha256Verifier(password, randomBytes(SCRAM_SALT_BYTES));
    psql(`CREATE ROLE scram_login LOGIN PASSWORD '${verifier}'`);
    expect(psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_login'")).toBe(verifier);
    expect(psql("SELECT current_user", "scram_login", password)).toBe("scram_login");
    expect(() => psql("SELECT 1", "scram_login", `${password}x`)).toThrow(/password authentication failed/);
  });
});
