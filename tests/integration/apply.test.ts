// The apply script (templates/scripts/odoo-stack-apply.sh) run for real against sandboxes:
// Debian's nginx, PgBouncer 1.18 and PostgreSQL 15 on 127.0.0.1. The script is the production
// one; only its documented overrides point it at a local "bucket" directory (FETCH_DIR), a local
// "SSM" directory (SSM_DIR), a root prefix and the sandbox daemons' reload commands.
// DESIGN principle 6: a valid change is applied IN PLACE (same master pid); a broken one leaves
// the installed file and the running daemon untouched and fails loudly. AUTH-4: the rotation
// steps in order, with an open client session surviving every step.
import { internalCaBundle } from "../../lib/internal-ca";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { Client } from "pg";
import { PATHS } from "../../lib/model";
import { sha256, type HostFile } from "../../templates/format";
import { renderManifest } from "../../templates/manifest";
import { SCRIPT_PATHS, SCRIPTS_DIR } from "../../templates/scripts";
import { ODOO_RELEASE_PATHS } from "../../templates/odoo-release";
import { freshVerifier, randomPassword } from "./helpers/secrets";
import { BIN, Sandbox, sleep, systemUser, waitForPort } from "./helpers/sandbox";

const APPLY = path.join(SCRIPTS_DIR, "odoo-stack-apply.sh");
const ROTATE = path.join(SCRIPTS_DIR, "odoo-stack-rotate.sh");
const STACK_PREFIX = "/odoo-stack/test/";
const postgresUser = systemUser("postgres");

jest.setTimeout(120_000);

/** One host's sandbox: its root, its "bucket" prefix and its "SSM" store. */
class HostSandbox {
  readonly root: string;
  readonly bucket: string;
  readonly ssm: string;

  constructor(
    readonly sandbox: Sandbox,
    readonly hostId: string,
  ) {
    this.root = sandbox.mkdir(`${hostId}/root`, undefined, 0o755);
    this.bucket = sandbox.mkdir(`${hostId}/bucket`);
    this.ssm = sandbox.mkdir(`${hostId}/ssm`);
    // A host past its first boot (see the "first boot" test for one that is not).
    sandbox.writeFile(this.at("/var/lib/odoo-stack/bootstrapped"), "");
  }

  /** Host path → sandbox path. */
  at(hostPath: string): string {
    return path.join(this.root, hostPath);
  }

  /** Uploads `files` and their manifest, as Pulumi does to s3://<bucket>/hosts/<hostId>/. */
  publish(files: readonly HostFile[]): void {
    fs.rmSync(this.bucket, { recursive: true, force: true });
    fs.mkdirSync(this.bucket, { mode: 0o700 });
    for (const f of files) this.sandbox.writeFile(path.join(this.bucket, f.path), f.content, { mode: 0o600 });
    this.sandbox.writeFile(path.join(this.bucket, "manifest.json"), renderManifest(this.hostId, files), { mode: 0o600 });
  }

  /** Replaces an uploaded file and its manifest hash, as a faulty upload could (bypasses renderManifest's checks). */
  replaceUploaded(hostPath: string, content: string): void {
    fs.writeFileSync(path.join(this.bucket, hostPath), content);
    const manifestFile = path.join(this.bucket, "manifest.json");
    const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as { files: { path: string; sha256: string }[] };
    for (const f of manifest.files) if (f.path === hostPath) f.sha256 = sha256(content);
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  }

  /** Stores a parameter value, as Pulumi does in SSM. */
  putParameter(name: string, value: string): void {
    this.sandbox.writeFile(path.join(this.ssm, name), value, { mode: 0o600 });
  }

  env(hooks: Readonly<Record<string, string>>): Record<string, string> {
    return {
      ODOO_STACK_ROOT: this.root,
      ODOO_STACK_CONFIG: path.join(this.root, "no-apply.env"),
      ODOO_STACK_HOST_ID: this.hostId,
      ODOO_STACK_PARAMETER_PREFIX: STACK_PREFIX,
      ODOO_STACK_FETCH_DIR: this.bucket,
      ODOO_STACK_SSM_DIR: this.ssm,
      // Every production command that touches systemd is replaced; a forgotten one fails loudly.
      ODOO_STACK_RELOAD_NGINX: "echo unexpected nginx reload >&2; exit 1",
      ODOO_STACK_RELOAD_PGBOUNCER: "echo unexpected pgbouncer reload >&2; exit 1",
      ODOO_STACK_RESTART_PGBOUNCER: "echo unexpected pgbouncer restart >&2; exit 1",
      ODOO_STACK_RELOAD_POSTGRESQL: "echo unexpected postgresql reload >&2; exit 1",
      ODOO_STACK_RESTART_POSTGRESQL: "echo unexpected postgresql restart >&2; exit 1",
      ODOO_STACK_RESTART_ODOO: "echo unexpected odoo restart >&2; exit 1",
      ODOO_STACK_UPDATE_CA: "echo unexpected update-ca-certificates >&2; exit 1",
      ODOO_STACK_DAEMON_RELOAD: "echo unexpected daemon-reload >&2; exit 1",
      ODOO_STACK_ODOO_RELEASE: "echo unexpected odoo release >&2; exit 1",
      ...hooks,
    };
  }
}

const file = (p: string, content: string, mode = "0644", owner = "root"): HostFile => ({ path: p, content, mode, owner, group: owner });

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString("utf8")));
      res.on("end", () => resolve(body.trim()));
    });
    req.on("error", reject);
    req.setTimeout(5000, () => req.destroy(new Error("timeout")));
  });
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const masterPid = (pidFile: string): number => Number(fs.readFileSync(pidFile, "utf8").trim());

describe("apply: nginx, validated on a copy and reloaded in place (DESIGN principle 6)", () => {
  const sandbox = Sandbox.create("apply-nginx");
  const host = new HostSandbox(sandbox, "proxy");
  const conf = host.at(PATHS.nginxConf);
  const site = host.at(PATHS.nginxSite);
  const pidFile = host.at("/run/nginx.pid");
  let port = 0;
  let hooks: Record<string, string> = {};

  // A small nginx.conf with the production file layout under the sandbox root; the site is
  // included by absolute path, so validation must rewrite the include into its copy.
  const nginxConf = (): HostFile =>
    file(
      PATHS.nginxConf,
      [
        `pid ${pidFile};`,
        `error_log ${host.at("/var/log/nginx/error.log")};`,
        "worker_processes 1;",
        "events { worker_connections 64; }",
        "http {",
        "  access_log off;",
        `  include ${host.at("/etc/nginx/conf.d")}/*.conf;`,
        "}",
        "",
      ].join("\n"),
    );
  const nginxSite = (body: string): HostFile =>
    file(PATHS.nginxSite, `server {\n  listen 127.0.0.1:${port};\n  location / {\n${body}\n  }\n}\n`);

  const apply = () => sandbox.run("bash", [APPLY], { env: host.env(hooks) });

  beforeAll(async () => {
    port = await sandbox.freePort();
    sandbox.mkdir("proxy/root/run", undefined, 0o755);
    sandbox.mkdir("proxy/root/var/log/nginx", undefined, 0o755);
    const start = `${BIN.nginx} -c ${conf}`;
    hooks = {
      ODOO_STACK_RELOAD_NGINX: `if [ -s ${pidFile} ] && kill -0 "$(cat ${pidFile})" 2>/dev/null; then ${start} -s reload; else ${start}; fi`,
    };
    sandbox.onCleanup(() => {
      if (!fs.existsSync(pidFile)) return;
      try {
        process.kill(masterPid(pidFile), "SIGQUIT");
      } catch {
        // already gone
      }
    });
  });
  afterAll(async () => {
    if (fs.existsSync(pidFile)) {
      const pid = masterPid(pidFile);
      process.kill(pid, "SIGQUIT");
      await eventually(async () => !fs.existsSync(pidFile), "nginx to stop");
    }
    await sandbox.cleanup();
  });

  it("installs v1 and starts nginx, which answers v1", async () => {
    host.publish([nginxConf(), nginxSite('    return 200 "v1\\n";')]);
    const result = await apply();
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`installed ${PATHS.nginxSite}`);
    await waitForPort(port);
    expect(await get(port)).toBe("v1");
    expect(fs.statSync(site).mode & 0o777).toBe(0o644);
  });

  it("a second run with nothing changed reloads nothing", async () => {
    const result = await apply();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("nothing changed");
    expect(result.stdout).not.toContain("nginx reload");
  });

  it("refuses a broken site: exit 1, installed file unchanged, daemon still answers v1", async () => {
    const before = fs.readFileSync(site, "utf8");
    const pid = masterPid(pidFile);
    host.publish([nginxConf(), nginxSite('    return 200 "v2\\n";\n    no_such_directive on;')]);
    const result = await apply();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/unknown directive "no_such_directive"/);
    expect(result.stderr).toContain("nginx: the new configuration is invalid (nothing was installed or reloaded)");
    expect(fs.readFileSync(site, "utf8")).toBe(before);
    expect(masterPid(pidFile)).toBe(pid);
    expect(await get(port)).toBe("v1");
  });

  it("applies v2 with a reload: same master pid, answers v2", async () => {
    const pid = masterPid(pidFile);
    host.publish([nginxConf(), nginxSite('    return 200 "v2\\n";')]);
    const result = await apply();
    expect(result.stderr).not.toContain("ERROR");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("nginx reload");
    await eventually(async () => (await get(port)) === "v2", "nginx to answer v2");
    expect(masterPid(pidFile)).toBe(pid);
  });

  it("removes a file the new manifest no longer lists (a stale site would stay included)", async () => {
    const extra = file("/etc/nginx/conf.d/extra.conf", "# an extra site\n");
    host.publish([nginxConf(), nginxSite('    return 200 "v2\\n";'), extra]);
    expect((await apply()).code).toBe(0);
    expect(fs.existsSync(host.at(extra.path))).toBe(true);
    host.publish([nginxConf(), nginxSite('    return 200 "v2\\n";')]);
    const result = await apply();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`removed ${extra.path} (no longer in the manifest)`);
    expect(fs.existsSync(host.at(extra.path))).toBe(false);
    expect(await get(port)).toBe("v2");
  });

  it("refuses a file whose content does not match the manifest's sha256", async () => {
    const before = fs.readFileSync(site, "utf8");
    host.publish([nginxConf(), nginxSite('    return 200 "v3\\n";')]);
    fs.appendFileSync(path.join(host.bucket, PATHS.nginxSite), "# tampered\n");
    const result = await apply();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${PATHS.nginxSite}: sha256`);
    expect(fs.readFileSync(site, "utf8")).toBe(before);
  });

  it("refuses a manifest other than the one the association names (--manifest-sha256)", async () => {
    host.publish([nginxConf(), nginxSite('    return 200 "v2\\n";')]);
    const result = await sandbox.run("bash", [APPLY, "--manifest-sha256", "0".repeat(64)], {
      env: { ...host.env(hooks), ODOO_STACK_FETCH_WAIT: "0" },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("the manifest in the bucket is not the one expected");
  });
});

describe("apply: secrets from SSM placeholders", () => {
  const sandbox = Sandbox.create("apply-secrets");
  const host = new HostSandbox(sandbox, "odoo-1");
  const confPath = PATHS.odooConf;
  const probePath = "/etc/odoo-stack/probe.txt";
  const restarts = host.at("/restarts.log");
  const env = () => host.env({ ODOO_STACK_RESTART_ODOO: `echo restart >> ${restarts}` });
  afterAll(() => sandbox.cleanup());

  it("resolves every placeholder byte for byte, keeps the manifest's mode, never prints the value", async () => {
    // Characters that break naive substitution: sed's & and \, shell's $ and quotes, a newline.
    const secret = `${randomPassword(16)}&\\1$HOME'"/\n${randomPassword(8)}`;
    const adminPassword = `admin-${randomPassword(24)}`;
    host.putParameter("/odoo-stack/test/odoo/db-password", secret);
    host.putParameter("/odoo-stack/test/odoo/admin-passwd", adminPassword);
    host.publish([
      file(confPath, "[options]\nadmin_passwd = {{ssm:/odoo-stack/test/odoo/admin-passwd}}\n", "0640"),
      file(probePath, "a={{ssm:/odoo-stack/test/odoo/db-password}};b={{ssm:/odoo-stack/test/odoo/db-password}}\n", "0600"),
    ]);
    const result = await sandbox.run("bash", [APPLY, "--bootstrap"], { env: env() });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(fs.readFileSync(host.at(confPath), "utf8")).toBe(`[options]\nadmin_passwd = ${adminPassword}\n`);
    expect(fs.readFileSync(host.at(probePath), "utf8")).toBe(`a=${secret};b=${secret}\n`);
    expect(fs.statSync(host.at(confPath)).mode & 0o777).toBe(0o640);
    expect(fs.statSync(host.at(probePath)).mode & 0o777).toBe(0o600);
    expect(result.stdout + result.stderr).not.toContain(secret.slice(0, 16));
    expect(result.stdout + result.stderr).not.toContain(adminPassword);
    expect(fs.readFileSync(restarts, "utf8")).toBe("restart\n");
  });

  it("fails without touching anything when a parameter is missing, outside the stack, or malformed", async () => {
    const before = fs.readFileSync(host.at(confPath), "utf8");
    for (const [content, message] of [
      ["[options]\ndb_password = {{ssm:/odoo-stack/test/odoo/missing}}\n", "parameter /odoo-stack/test/odoo/missing not found"],
      ["[options]\ndb_password = {{ssm:/odoo-stack/prod/odoo/db-password}}\n", "outside this stack's prefix"],
      ["[options]\ndb_password = {{ssm:odoo/db-password}}\n", "malformed secret placeholder"],
    ]) {
      host.publish([file(confPath, "[options]\n", "0640")]);
      host.replaceUploaded(confPath, content);
      const result = await sandbox.run("bash", [APPLY], { env: env() });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(message);
      expect(fs.readFileSync(host.at(confPath), "utf8")).toBe(before);
    }
    expect(fs.readFileSync(restarts, "utf8")).toBe("restart\n");
  });

  it("before the first boot finished, an association run applies nothing (the bootstrap run will)", async () => {
    const fresh = new HostSandbox(sandbox, "odoo-2");
    fs.rmSync(fresh.at("/var/lib/odoo-stack/bootstrapped"));
    fresh.putParameter("/odoo-stack/test/odoo/admin-passwd", randomPassword());
    fresh.publish([file(confPath, "[options]\nadmin_passwd = {{ssm:/odoo-stack/test/odoo/admin-passwd}}\n", "0640")]);
    const freshEnv = fresh.env({ ODOO_STACK_RESTART_ODOO: `echo restart >> ${fresh.at("/restarts.log")}` });
    const early = await sandbox.run("bash", [APPLY], { env: freshEnv });
    expect(early.code).toBe(0);
    expect(early.stderr).toContain("first boot not finished");
    expect(fs.existsSync(fresh.at(confPath))).toBe(false);
    const bootstrap = await sandbox.run("bash", [APPLY, "--bootstrap"], { env: freshEnv });
    expect(bootstrap.code).toBe(0);
    expect(fs.existsSync(fresh.at(confPath))).toBe(true);
    expect(fs.existsSync(fresh.at("/var/lib/odoo-stack/bootstrapped"))).toBe(true);
    expect(fs.readFileSync(fresh.at("/restarts.log"), "utf8")).toBe("restart\n");
  });

  it("refuses an odoo.conf that Odoo's ConfigParser would reject, and restarts Odoo only on change", async () => {
    host.publish([file(confPath, "[options]\nworkers = 2\nworkers = 3\n", "0640")]);
    const broken = await sandbox.run("bash", [APPLY], { env: env() });
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain("odoo: /etc/odoo/odoo.conf is invalid");
    host.publish([file(confPath, "[options]\nworkers = 3\n", "0640")]);
    expect((await sandbox.run("bash", [APPLY], { env: env() })).code).toBe(0);
    expect((await sandbox.run("bash", [APPLY], { env: env() })).code).toBe(0);
    expect(fs.readFileSync(restarts, "utf8")).toBe("restart\nrestart\n");
  });

  it("loads delivered units and enables every delivered timer, so the stack's jobs run (BACKUP-1, OBS-1)", async () => {
    const jobs = new HostSandbox(sandbox, "odoo-3");
    const log = jobs.at("/systemd.log");
    const jobEnv = jobs.env({
      ODOO_STACK_DAEMON_RELOAD: `echo daemon-reload >> ${log}`,
      ODOO_STACK_ENABLE_TIMER: `echo "enable $1" >> ${log}`,
    });
    jobs.publish([
      file("/etc/systemd/system/odoo-stack-job.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n"),
      file("/etc/systemd/system/odoo-stack-job.timer", "[Timer]\nOnCalendar=hourly\n\n[Install]\nWantedBy=timers.target\n"),
    ]);
    const run = await sandbox.run("bash", [APPLY], { env: jobEnv });
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    expect(fs.readFileSync(log, "utf8")).toBe("daemon-reload\nenable odoo-stack-job.timer\n");
    expect(fs.existsSync(jobs.at("/etc/systemd/system/odoo-stack-job.timer"))).toBe(true);
  });
});

describe("apply: the CA certificate and logrotate files are checked before they are installed", () => {
  const sandbox = Sandbox.create("apply-misc");
  const host = new HostSandbox(sandbox, "odoo-1");
  const updates = host.at("/update-ca.log");
  const env = () => host.env({ ODOO_STACK_UPDATE_CA: `echo updated >> ${updates}` });
  const logrotatePath = PATHS.odooLogrotate;
  afterAll(() => sandbox.cleanup());

  it("installs a PEM certificate (from SSM) and runs update-ca-certificates; refuses a non-certificate", async () => {
    const dir = sandbox.mkdir("ca");
    await sandbox.runOk(BIN.openssl, [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      "/CN=odoo-stack test CA",
      "-days",
      "1",
      "-keyout",
      `${dir}/ca.key`,
      "-out",
      `${dir}/ca.crt`,
    ]);
    const pem = fs.readFileSync(`${dir}/ca.crt`, "utf8");
    host.putParameter("/odoo-stack/test/tls/ca-cert", pem);
    host.publish([file(PATHS.caCert, "{{ssm:/odoo-stack/test/tls/ca-cert}}\n")]);
    const good = await sandbox.run("bash", [APPLY], { env: env() });
    expect(good.stderr).toBe("");
    expect(good.code).toBe(0);
    expect(fs.readFileSync(host.at(PATHS.caCert), "utf8")).toBe(pem);
    expect(fs.readFileSync(updates, "utf8")).toBe("updated\n");

    host.putParameter("/odoo-stack/test/tls/ca-cert", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----");
    const bad = await sandbox.run("bash", [APPLY], { env: env() });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`ca-certificates: ${PATHS.caCert} is not a PEM certificate`);
    expect(fs.readFileSync(host.at(PATHS.caCert), "utf8")).toBe(pem);
    expect(fs.readFileSync(updates, "utf8")).toBe("updated\n");
  });

  it("installs the two CAs of an internal CA rotation as one file; refuses a bundle whose second certificate is broken (TLS-4)", async () => {
    const dir = sandbox.mkdir("ca-bundle");
    for (const n of [1, 2]) {
      await sandbox.runOk(BIN.openssl, [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        `/CN=odoo-stack test CA ${n}`,
        "-days",
        "1",
        "-keyout",
        `${dir}/ca${n}.key`,
        "-out",
        `${dir}/ca${n}.crt`,
      ]);
    }
    const bundle = internalCaBundle([fs.readFileSync(`${dir}/ca2.crt`, "utf8"), fs.readFileSync(`${dir}/ca1.crt`, "utf8")]);
    host.putParameter("/odoo-stack/test/tls/ca-cert", bundle.trimEnd());
    host.publish([file(PATHS.caCert, "{{ssm:/odoo-stack/test/tls/ca-cert}}\n")]);
    fs.rmSync(updates, { force: true });
    const good = await sandbox.run("bash", [APPLY], { env: env() });
    expect({ code: good.code, stderr: good.stderr }).toEqual({ code: 0, stderr: "" });
    expect(fs.readFileSync(host.at(PATHS.caCert), "utf8")).toBe(bundle);
    expect(fs.readFileSync(updates, "utf8")).toBe("updated\n");

    const broken = `${fs.readFileSync(`${dir}/ca2.crt`, "utf8")}-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----`;
    host.putParameter("/odoo-stack/test/tls/ca-cert", broken);
    const bad = await sandbox.run("bash", [APPLY], { env: env() });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(
      `ca-certificates: ${PATHS.caCert} is not a PEM certificate bundle (2 certificate blocks, not all of them parse; nothing was installed)`,
    );
    expect(fs.readFileSync(host.at(PATHS.caCert), "utf8")).toBe(bundle);
  });

  it("refuses a logrotate file logrotate itself would skip", async () => {
    host.publish([file(logrotatePath, "/var/log/odoo/*.log {\n  daily\n  bogus_option\n}\n")]);
    const bad = await sandbox.run("bash", [APPLY], { env: env() });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`logrotate: ${logrotatePath} is invalid`);
    expect(fs.existsSync(host.at(logrotatePath))).toBe(false);
    host.publish([file(logrotatePath, "/var/log/odoo/*.log {\n  daily\n  missingok\n  rotate 7\n}\n")]);
    const good = await sandbox.run("bash", [APPLY], { env: env() });
    expect(good.code).toBe(0);
    expect(fs.existsSync(host.at(logrotatePath))).toBe(true);
  });
});

/** PostgreSQL 15 laid out as Debian does: config in /etc/postgresql/15/main, data elsewhere. */
async function startPostgres(sandbox: Sandbox, host: HostSandbox, port: number) {
  const data = sandbox.mkdir("pgdata", postgresUser, 0o700);
  const socketDir = sandbox.mkdir("pgsocket", postgresUser, 0o755);
  await sandbox.runOk(BIN.initdb, ["-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256"], {
    user: postgresUser,
  });
  const confDir = host.at("/etc/postgresql/15/main");
  fs.mkdirSync(path.join(confDir, "conf.d"), { recursive: true });
  fs.renameSync(path.join(data, "pg_hba.conf"), path.join(confDir, "pg_hba.conf"));
  fs.writeFileSync(
    path.join(confDir, "postgresql.conf"),
    [
      `data_directory = '${data}'`,
      `hba_file = '${confDir}/pg_hba.conf'`,
      `ident_file = '${data}/pg_ident.conf'`,
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${socketDir}'`,
      "include_dir = 'conf.d'",
      "",
    ].join("\n"),
  );
  for (const dir of [host.at("/etc/postgresql"), host.at("/etc/postgresql/15"), confDir, path.join(confDir, "conf.d")])
    fs.chmodSync(dir, 0o755);
  fs.chownSync(path.join(confDir, "pg_hba.conf"), postgresUser.uid, postgresUser.gid);
  const server = sandbox.start({
    name: "postgres",
    command: BIN.postgres,
    args: ["-c", `config_file=${confDir}/postgresql.conf`],
    user: postgresUser,
    stopSignal: "SIGINT",
  });
  await waitForPort(port, { process: server });
  const psql = `${BIN.psql} -X -q -h ${socketDir} -p ${port} -U postgres -d postgres`;
  return { server, psql, socketDir, confDir, data };
}

describe("apply: PostgreSQL checked before and after install, reloaded, restart reported", () => {
  const sandbox = Sandbox.create("apply-postgres");
  const host = new HostSandbox(sandbox, "postgres");
  let pg: Awaited<ReturnType<typeof startPostgres>>;
  let env: Record<string, string> = {};
  const confPath = "/etc/postgresql/15/main/conf.d/90-odoo-stack.conf";
  const hbaPath = "/etc/postgresql/15/main/pg_hba.conf";
  const sqlPath = PATHS.postgresBootstrapSql;
  let hba = "";
  const query = async (sql: string) => (await sandbox.runOk("bash", ["-c", `${pg.psql} -At -c "${sql}"`])).stdout.trim();
  const files = (conf: string, hbaText = hba, sql = "SELECT 1;\n"): HostFile[] => [
    file(confPath, conf, "0644", "postgres"),
    file(hbaPath, hbaText, "0640", "postgres"),
    file(sqlPath, sql, "0600", "root"),
  ];

  beforeAll(async () => {
    const port = await sandbox.freePort();
    pg = await startPostgres(sandbox, host, port);
    hba = fs.readFileSync(host.at(hbaPath), "utf8");
    env = host.env({
      ODOO_STACK_PSQL: pg.psql,
      ODOO_STACK_RELOAD_POSTGRESQL: `${pg.psql} -c 'SELECT pg_reload_conf()' >/dev/null`,
    });
  });
  afterAll(() => sandbox.cleanup());

  it("applies a valid change with a reload and runs the SQL", async () => {
    host.publish(files("statement_timeout = '30s'\n", hba, "CREATE ROLE odoo_probe;\n"));
    const result = await sandbox.run("bash", [APPLY], { env });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(await query("SHOW statement_timeout")).toBe("30s");
    expect(await query("SELECT count(*) FROM pg_roles WHERE rolname = 'odoo_probe'")).toBe("1");
  });

  it("refuses an invalid value before installing (postgres --check), the server keeps its settings", async () => {
    host.publish(files("statement_timeout = 'soon'\n", hba, "CREATE ROLE odoo_probe;\n"));
    const result = await sandbox.run("bash", [APPLY], { env });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('invalid value for parameter "statement_timeout": "soon"');
    expect(fs.readFileSync(host.at(confPath), "utf8")).toBe("statement_timeout = '30s'\n");
  });

  it("rolls back a broken pg_hba.conf found by pg_hba_file_rules, without reloading", async () => {
    const broken = `${hba}host all all 10.0.0.0/99 scram-sha-256\n`;
    host.publish(files("statement_timeout = '30s'\n", broken, "CREATE ROLE odoo_probe;\n"));
    const result = await sandbox.run("bash", [APPLY], { env });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/pg_hba\.conf:\d+: invalid CIDR mask/);
    expect(result.stderr).toContain("files rolled back, server not reloaded");
    expect(fs.readFileSync(host.at(hbaPath), "utf8")).toBe(hba);
    expect(await query("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")).toBe("0");
  });

  it("reports a setting that needs a restart instead of restarting silently", async () => {
    host.publish(files("statement_timeout = '30s'\nmax_connections = 90\n", hba, "CREATE ROLE odoo_probe;\n"));
    const result = await sandbox.run("bash", [APPLY], { env });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("NOTICE: postgresql (restart needed for: max_connections)");
    expect(await query("SHOW max_connections")).toBe("100");
  });

  it("a failing SQL file fails the run and is retried next time", async () => {
    host.publish(files("statement_timeout = '30s'\nmax_connections = 90\n", hba, "SELECT no_such_function();\n"));
    const result = await sandbox.run("bash", [APPLY], { env });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`sql: ${sqlPath} failed`);
    expect(fs.readFileSync(host.at(sqlPath), "utf8")).toBe("CREATE ROLE odoo_probe;\n");
  });
});

describe("apply: the Odoo release (issue 12 item 7)", () => {
  const sandbox = Sandbox.create("apply-release");
  const host = new HostSandbox(sandbox, "odoo-1");
  const calls = host.at("/release.log");
  const env = () => host.env({ ODOO_STACK_ODOO_RELEASE: `echo "$1 $2" >> ${calls}` });
  const releaseFile = (pkg: string) => file(ODOO_RELEASE_PATHS.env, `ODOO_STACK_ODOO_PACKAGE=${pkg}\n`);
  const script = file(SCRIPT_PATHS.odooRelease, "#!/bin/bash\n", "0755");
  afterAll(() => sandbox.cleanup());

  it("installs the release script with its file, then runs it; again only when the release file changes", async () => {
    host.publish([releaseFile("17.0.20241201"), script]);
    const first = await sandbox.run("bash", [APPLY, "--bootstrap"], { env: env() });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const expected = `${host.at(SCRIPT_PATHS.odooRelease)} ${host.at(ODOO_RELEASE_PATHS.env)}\n`;
    expect(fs.readFileSync(calls, "utf8")).toBe(expected);
    expect(fs.existsSync(host.at(SCRIPT_PATHS.odooRelease))).toBe(true);
    expect((await sandbox.run("bash", [APPLY], { env: env() })).stdout).toContain("nothing changed");
    expect(fs.readFileSync(calls, "utf8")).toBe(expected);
    host.publish([releaseFile("17.0.20250115"), script]);
    const changed = await sandbox.run("bash", [APPLY], { env: env() });
    expect(changed.code).toBe(0);
    expect(fs.readFileSync(calls, "utf8")).toBe(expected + expected);
    expect(fs.readFileSync(host.at(ODOO_RELEASE_PATHS.env), "utf8")).toBe("ODOO_STACK_ODOO_PACKAGE=17.0.20250115\n");
  });

  it("fails the run when the release script fails (it has rolled back by then)", async () => {
    host.publish([releaseFile("17.0.20250201"), script]);
    const r = await sandbox.run("bash", [APPLY], {
      env: host.env({ ODOO_STACK_ODOO_RELEASE: "echo 'odoo-stack-odoo-release: ERROR: rolled back' >&2; exit 1" }),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("odoo release failed");
  });
});

describe("AUTH-4: password rotation in order, an open session survives every step", () => {
  const sandbox = Sandbox.create("rotate");
  const pgHost = new HostSandbox(sandbox, "postgres");
  const bouncer = new HostSandbox(sandbox, "pgbouncer");
  const odoo = new HostSandbox(sandbox, "odoo-1");
  const verifierParam = "/odoo-stack/test/pgbouncer/odoo-scram-verifier";
  const passwordParam = "/odoo-stack/test/odoo/db-password";
  const userlistPath = PATHS.pgbouncerUserlist;
  const restarts = odoo.at("/restarts.log");
  const bouncerPid = bouncer.at("/run/pgbouncer.pid");
  let pg: Awaited<ReturnType<typeof startPostgres>>;
  let bouncerPort = 0;
  let oldPassword = "";
  let newPassword = "";
  let held: Client;

  const setSecret = (password: string, verifier: string) => {
    for (const h of [pgHost, bouncer, odoo]) {
      h.putParameter(verifierParam, verifier);
      h.putParameter(passwordParam, password);
    }
  };
  const pgbouncerIni = (poolMode = "transaction"): HostFile =>
    file(
      PATHS.pgbouncerIni,
      [
        "[databases]",
        `postgres = host=127.0.0.1 port=${pgPort} dbname=postgres pool_mode=session`,
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        `listen_port = ${bouncerPort}`,
        `unix_socket_dir = ${bouncer.at("/run")}`,
        `pidfile = ${bouncerPid}`,
        `logfile = ${bouncer.at("/var/log/pgbouncer.log")}`,
        "auth_type = scram-sha-256",
        `auth_file = ${bouncer.at(userlistPath)}`,
        `pool_mode = ${poolMode}`,
        "",
      ].join("\n"),
      "0640",
      "postgres",
    );
  const userlist = (): HostFile => file(userlistPath, `"odoo" "{{ssm:${verifierParam}}}"\n`, "0600", "postgres");
  const odooConf = (): HostFile =>
    file(
      PATHS.odooConf,
      `[options]\ndb_host = 127.0.0.1\ndb_port = ${bouncerPort}\ndb_user = odoo\ndb_password = {{ssm:${passwordParam}}}\ndb_sslmode = disable\n`,
      "0640",
    );
  let pgPort = 0;
  let bouncerEnv: Record<string, string> = {};
  let odooEnv: Record<string, string> = {};
  let pgEnv: Record<string, string> = {};

  const login = async (password: string) => {
    const client = new Client({ host: "127.0.0.1", port: bouncerPort, user: "odoo", password, database: "postgres" });
    await client.connect();
    return client;
  };

  beforeAll(async () => {
    pgPort = await sandbox.freePort();
    bouncerPort = await sandbox.freePort();
    pg = await startPostgres(sandbox, pgHost, pgPort);
    oldPassword = randomPassword();
    newPassword = randomPassword();
    const oldVerifier = freshVerifier(oldPassword);
    setSecret(oldPassword, oldVerifier);
    await sandbox.runOk("bash", ["-c", `${pg.psql} -v ON_ERROR_STOP=1`], { input: `CREATE ROLE odoo LOGIN PASSWORD '${oldVerifier}';\n` });

    sandbox.mkdir("pgbouncer/root/run", postgresUser, 0o755);
    sandbox.mkdir("pgbouncer/root/var/log", postgresUser, 0o755);
    const pgbouncerCmd = `setpriv --reuid=postgres --regid=postgres --init-groups -- ${BIN.pgbouncer} -d ${bouncer.at(PATHS.pgbouncerIni)} </dev/null >/dev/null 2>&1`;
    bouncerEnv = bouncer.env({
      ODOO_STACK_RESTART_PGBOUNCER: pgbouncerCmd,
      ODOO_STACK_RELOAD_PGBOUNCER: `kill -HUP "$(cat ${bouncerPid})"`,
    });
    sandbox.onCleanup(() => {
      if (fs.existsSync(bouncerPid)) process.kill(masterPid(bouncerPid), "SIGTERM");
    });
    bouncer.publish([pgbouncerIni(), userlist()]);
    const first = await sandbox.run("bash", [APPLY, "--bootstrap"], { env: bouncerEnv });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    await waitForPort(bouncerPort);

    odooEnv = odoo.env({ ODOO_STACK_RESTART_ODOO: `echo restart >> ${restarts}` });
    odoo.publish([odooConf()]);
    expect((await sandbox.run("bash", [APPLY, "--bootstrap"], { env: odooEnv })).code).toBe(0);
    pgEnv = pgHost.env({ ODOO_STACK_PSQL: pg.psql });
    held = await login(oldPassword);
    sandbox.onCleanup(() => held.end());
  });
  afterAll(() => sandbox.cleanup());

  it("the throwaway pgbouncer refuses a broken ini and a broken userlist; nothing is installed", async () => {
    const installed = fs.readFileSync(bouncer.at(PATHS.pgbouncerIni), "utf8");
    bouncer.publish([pgbouncerIni("sometimes"), userlist()]);
    const badIni = await sandbox.run("bash", [APPLY], { env: bouncerEnv });
    expect(badIni.code).toBe(1);
    expect(badIni.stderr).toContain('invalid value "sometimes" for parameter pool_mode');
    expect(fs.readFileSync(bouncer.at(PATHS.pgbouncerIni), "utf8")).toBe(installed);

    const userlistBefore = fs.readFileSync(bouncer.at(userlistPath), "utf8");
    // The placeholder is substituted raw: a stray quote in the value breaks the userlist line,
    // which pgbouncer only logs ("broken auth file") and the throwaway instance must catch.
    bouncer.putParameter(verifierParam, 'SCRAM-SHA-256$4096:broken"');
    bouncer.publish([pgbouncerIni(), userlist()]);
    const badUserlist = await sandbox.run("bash", [APPLY], { env: bouncerEnv });
    expect(badUserlist.code).toBe(1);
    expect(badUserlist.stderr).toContain("broken auth file");
    expect(fs.readFileSync(bouncer.at(userlistPath), "utf8")).toBe(userlistBefore);
    bouncer.putParameter(verifierParam, userlistBefore.split('"')[3]);
    expect((await held.query("SELECT 1 AS ok")).rows[0].ok).toBe(1);
  });

  it("rotates in the documented order: pgbouncer (RELOAD, same pid), then postgres, then odoo (restart), then check", async () => {
    const pidBefore = masterPid(bouncerPid);
    setSecret(newPassword, freshVerifier(newPassword));

    const step1 = await sandbox.run("bash", [ROTATE, "pgbouncer"], { env: { ...bouncerEnv, ODOO_STACK_APPLY: APPLY } });
    expect(step1.stderr).toBe("");
    expect(step1.code).toBe(0);
    expect(step1.stdout).toContain(`installed ${userlistPath}`);
    expect(step1.stdout).toContain("pgbouncer reload");
    expect(masterPid(bouncerPid)).toBe(pidBefore);
    expect(fs.statSync(bouncer.at(userlistPath)).mode & 0o777).toBe(0o600);
    expect((await held.query("SELECT 1 AS ok")).rows[0].ok).toBe(1);

    const step2 = await sandbox.run("bash", [ROTATE, "postgres"], { env: { ...pgEnv, ODOO_STACK_APPLY: APPLY } });
    expect(step2.stderr).toBe("");
    expect(step2.code).toBe(0);
    expect((await held.query("SELECT 1 AS ok")).rows[0].ok).toBe(1);

    const step3 = await sandbox.run("bash", [ROTATE, "odoo"], { env: { ...odooEnv, ODOO_STACK_APPLY: APPLY } });
    expect(step3.code).toBe(0);
    expect(fs.readFileSync(restarts, "utf8")).toBe("restart\nrestart\n");

    const step4 = await sandbox.run("bash", [ROTATE, "check"], {
      env: { ...odooEnv, ODOO_STACK_APPLY: APPLY, PATH: `/usr/lib/postgresql/15/bin:/usr/bin:/bin:/usr/sbin:/sbin` },
    });
    expect(step4.stderr).toBe("");
    expect(step4.code).toBe(0);

    await expect(login(oldPassword)).rejects.toThrow(/password authentication failed|SASL/);
    const fresh = await login(newPassword);
    expect((await fresh.query("SELECT current_user AS u")).rows[0].u).toBe("odoo");
    await fresh.end();
    expect((await held.query("SELECT 1 AS ok")).rows[0].ok).toBe(1);
  });

  it("refuses a parameter that is not a SCRAM verifier (PostgreSQL would take it as a password)", async () => {
    pgHost.putParameter(verifierParam, "plain-password");
    const result = await sandbox.run("bash", [ROTATE, "postgres"], { env: { ...pgEnv, ODOO_STACK_APPLY: APPLY } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("does not hold a SCRAM-SHA-256 verifier; nothing was changed");
    const fresh = await login(newPassword);
    await fresh.end();
  });
});
