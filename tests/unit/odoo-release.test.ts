// The Odoo release (issue 12 item 7): templates/scripts/odoo-stack-odoo-release.sh run for real
// (bash, tar, sha256sum, python3's compileall, pip --target from a wheelhouse made per run) with
// stand-ins only for what needs a host: aws s3 cp (a copy), apt (a recorder that "installs"),
// odoo (records its calls, or fails), and the service hooks. Plus the rendered release file, the
// manifest's routing of it to the release service, the apt pin shared with the bootstrap, and
// the hosts' exact read grant on the artifact.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DB_ROLES, PATHS } from "../../lib/model";
import { renderAllHosts } from "../../templates/hosts";
import { serviceForPath } from "../../templates/manifest";
import { ODOO_RELEASE_PYTHONPATH } from "../../templates/odoo-conf";
import { odooAddonsStatements, ODOO_RELEASE_PATHS, renderOdooReleaseEnv } from "../../templates/odoo-release";
import { SCRIPT_PATHS, SCRIPTS_DIR } from "../../templates/scripts";
import { databasesAt, modelWith } from "../helpers/fixtures";
import { makeArtifact, type Artifact } from "../helpers/odoo-artifact";

const RELEASE = path.join(SCRIPTS_DIR, "odoo-stack-odoo-release.sh");
const BOOTSTRAP = path.join(SCRIPTS_DIR, "odoo-stack-bootstrap.sh");
const OLD_BUILD = "17.0.20241201";

const GOOD_ADDON = {
  "__manifest__.py": "{'name': 'Stack Test', 'depends': ['base'], 'installable': True}\n",
  "__init__.py": "from . import models\n",
  "models/__init__.py": "import odoo_stack_tinydep\n",
};

interface Sandbox {
  readonly dir: string;
  readonly root: string;
  /** Runs the release script with the env file `env`; `odooFails`: the stand-in odoo exits 1. */
  run(env: string, opts?: { odooFails?: boolean; check?: boolean }): { status: number | null; stdout: string; stderr: string };
  /** Calls of the hooks and stand-ins, in order: "stop", "start", "apt odoo=…", "odoo …". */
  events(): string[];
  installed(): string;
}

function sandbox(): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-release-"));
  const root = path.join(dir, "root");
  fs.mkdirSync(root);
  const events = path.join(dir, "events");
  const installed = path.join(dir, "installed");
  fs.writeFileSync(installed, OLD_BUILD);
  fs.writeFileSync(events, "");
  // Odoo's repository: the builds it has (ODOO_STACK_ODOO_AVAILABLE), refreshes counted apart.
  fs.writeFileSync(path.join(dir, "available"), `${OLD_BUILD}\n17.0.20250115\n`);
  fs.writeFileSync(path.join(dir, "index-refreshes"), "");
  // aws s3 cp --only-show-errors --region R s3://bucket/key DEST: the object is a file under dir/s3/bucket/key.
  const aws = path.join(dir, "aws");
  fs.writeFileSync(aws, `#!/bin/bash\nuri=\${@: -2:1}; dest=\${@: -1}\ncp -- "${dir}/s3/\${uri#s3://}" "$dest"\n`, { mode: 0o755 });
  const odoo = path.join(dir, "odoo");
  fs.writeFileSync(
    odoo,
    `#!/bin/bash\nprintf 'odoo PGSSLROOTCERT=%s PYTHONPATH=%s %s\\n' "$PGSSLROOTCERT" "$PYTHONPATH" "$*" >>${events}\n[[ -z \${ODOO_FAILS:-} ]] || exit 1\n`,
    { mode: 0o755 },
  );
  return {
    dir,
    root,
    run(env, opts = {}) {
      const envFile = path.join(dir, "odoo-release.env");
      fs.writeFileSync(envFile, env);
      const r = spawnSync("bash", [RELEASE, ...(opts.check ? ["--check"] : []), envFile], {
        env: {
          PATH: process.env.PATH,
          ODOO_STACK_ROOT: root,
          ODOO_STACK_AWS: aws,
          // Odoo must be held stopped while the package installs (its postinst would start it) and
          // released before it starts: an event says so when it is not.
          ODOO_STACK_APT_INSTALL: `echo "apt $*$([[ -e ${dir}/held ]] || echo ' (Odoo not held stopped)')" >>${events}; echo "\${1#odoo=}" >${installed}`,
          ODOO_STACK_HOLD_ODOO: `touch ${dir}/held`,
          ODOO_STACK_UNHOLD_ODOO: `rm -f ${dir}/held`,
          ODOO_STACK_ODOO_INSTALLED: `cat ${installed}`,
          ODOO_STACK_APT_UPDATE: `echo update >>${dir}/index-refreshes`,
          ODOO_STACK_ODOO_AVAILABLE: `cat ${dir}/available`,
          ODOO_STACK_ODOO: odoo,
          ODOO_STACK_ODOO_CONF: path.join(dir, "odoo.conf"),
          ODOO_STACK_STOP_ODOO: `echo stop >>${events}`,
          ODOO_STACK_RESTART_ODOO: `echo "start$([[ -e ${dir}/held ]] && echo ' (still held)')" >>${events}`,
          ODOO_STACK_RUN_AS_ODOO: "env",
          ...(opts.odooFails ? { ODOO_FAILS: "1" } : {}),
        },
        encoding: "utf8",
        // stdin not a socket: bash would read ~/.bashrc, taking itself for a remote shell.
        stdio: ["ignore", "pipe", "pipe"],
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    events: () => fs.readFileSync(events, "utf8").split("\n").filter(Boolean),
    installed: () => fs.readFileSync(installed, "utf8").trim(),
  };
}

const model = modelWith(
  {
    ...databasesAt("erp", "shop"),
    odooInstances: 2,
    odooBuild: "20250115",
    odooAddons: { s3Uri: "s3://my-artifacts/odoo/addons.tar.gz", sha256: "0".repeat(64) },
  },
  "prod",
);
const [cronHost, otherHost] = model.hosts.odoo;

/** The rendered release file of `host`, with the artifact and checksum of this run. */
const envFor = (host = cronHost, artifact?: Artifact, pkg = "17.0.20250115"): string =>
  renderOdooReleaseEnv(model, host)
    .replace(/^ODOO_STACK_ODOO_PACKAGE=.*$/m, `ODOO_STACK_ODOO_PACKAGE=${pkg}`)
    .replace(/^ODOO_STACK_ADDONS_URI=.*$/m, `ODOO_STACK_ADDONS_URI=${artifact ? "s3://my-artifacts/odoo/addons.tar.gz" : ""}`)
    .replace(/^ODOO_STACK_ADDONS_SHA256=.*$/m, `ODOO_STACK_ADDONS_SHA256=${artifact?.sha256 ?? ""}`);

function publish(box: Sandbox, artifact: Artifact): void {
  fs.mkdirSync(path.join(box.dir, "s3/my-artifacts/odoo"), { recursive: true });
  fs.copyFileSync(artifact.file, path.join(box.dir, "s3/my-artifacts/odoo/addons.tar.gz"));
}

let boxes: Sandbox[] = [];
const newBox = () => {
  const b = sandbox();
  boxes.push(b);
  return b;
};
afterEach(() => {
  for (const b of boxes) fs.rmSync(b.dir, { recursive: true, force: true });
  boxes = [];
});

describe("the rendered release (odoo-release.env)", () => {
  it("names the pinned package, the artifact, the cron host and the migration role", () => {
    expect(renderOdooReleaseEnv(model, cronHost).split("\n")).toEqual([
      "# generated by odoo-stack — do not edit",
      "ODOO_STACK_ODOO_PACKAGE=17.0.20250115",
      "ODOO_STACK_ADDONS_URI=s3://my-artifacts/odoo/addons.tar.gz",
      `ODOO_STACK_ADDONS_SHA256=${"0".repeat(64)}`,
      `ODOO_STACK_REGION=${model.settings.region}`,
      "ODOO_STACK_RUNS_CRON=1",
      "ODOO_STACK_DATABASES=erp,shop",
      `ODOO_STACK_CA=${PATHS.caCert}`,
      `ODOO_STACK_MIGRATION_ROLE=${DB_ROLES.migrate}`,
      "",
    ]);
    expect(renderOdooReleaseEnv(model, otherHost)).toContain("ODOO_STACK_RUNS_CRON=0\n");
    expect(renderOdooReleaseEnv(modelWith({}, "prod"), cronHost)).toContain("ODOO_STACK_ADDONS_URI=\nODOO_STACK_ADDONS_SHA256=\n");
  });

  it("reaches every Odoo host, and only Odoo hosts, through the manifest's odoo-release service (so a change re-runs the apply association)", () => {
    const all = renderAllHosts(model);
    for (const host of model.allHosts) {
      const paths = (all.get(host.id) ?? []).map((f) => f.path);
      const expected = host.role === "odoo";
      expect(paths.includes(ODOO_RELEASE_PATHS.env)).toBe(expected);
      expect(paths.includes(SCRIPT_PATHS.odooRelease)).toBe(expected);
    }
    expect(serviceForPath(ODOO_RELEASE_PATHS.env)).toBe("odoo-release");
    expect(serviceForPath(SCRIPT_PATHS.odooRelease)).toBe("odoo-release");
    // The service's Python path is the release's (one source with the script's layout).
    expect(ODOO_RELEASE_PATHS.python).toBe(ODOO_RELEASE_PYTHONPATH);
    expect(fs.readFileSync(RELEASE, "utf8")).toContain('"PYTHONPATH=$CURRENT/python"');
    expect(ODOO_RELEASE_PATHS.python).toBe(`${ODOO_RELEASE_PATHS.current}/python`);
  });

  it("grants the Odoo hosts s3:GetObject on exactly the artifact, and nothing without one", () => {
    expect(odooAddonsStatements("aws", model.settings)).toEqual([
      { Sid: "OdooAddonsArtifact", Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::my-artifacts/odoo/addons.tar.gz"] },
    ]);
    expect(odooAddonsStatements("aws", modelWith({}, "prod").settings)).toEqual([]);
  });
});

describe("the apt pin", () => {
  it("is the same file from the bootstrap's odoo-repo step and from the release script", () => {
    const box = newBox();
    const b = spawnSync("bash", [BOOTSTRAP, "odoo-repo", "17.0", "20250115"], {
      env: { PATH: process.env.PATH, ODOO_STACK_ROOT: box.root, ODOO_STACK_ODOO_REPO_PIN_ONLY: "1" },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect(b.stderr).toBe("");
    expect(b.status).toBe(0);
    const pin = path.join(box.root, ODOO_RELEASE_PATHS.aptPin);
    const fromBootstrap = fs.readFileSync(pin, "utf8");
    expect(fromBootstrap).toBe("# generated by odoo-stack — do not edit\nPackage: odoo\nPin: version 17.0.20250115\nPin-Priority: 1001\n");
    fs.rmSync(pin);
    const r = box.run(envFor());
    expect(r.status).toBe(0);
    expect(fs.readFileSync(pin, "utf8")).toBe(fromBootstrap);
    const bad = spawnSync("bash", [BOOTSTRAP, "odoo-repo", "17.0"], {
      env: { PATH: process.env.PATH, ODOO_STACK_ROOT: box.root, ODOO_STACK_ODOO_REPO_PIN_ONLY: "1" },
      encoding: "utf8",
    });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("odoo-repo: invalid build '' (YYYYMMDD)");
  });
});

describe("odoo-stack-odoo-release", () => {
  it("first release on a host: unpacks the verified artifact, installs its requirements from its wheels, links custom-addons, no module update", () => {
    const box = newBox();
    const artifact = makeArtifact(box.dir, "a.tar.gz", { stack_test: GOOD_ADDON }, "odoo-stack-tinydep==1.2.3\n");
    publish(box, artifact);
    fs.writeFileSync(path.join(box.dir, "installed"), "17.0.20250115");
    const r = box.run(envFor(cronHost, artifact));
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("first release on this host: no module update");
    expect(box.events()).toEqual(["stop", "start"]);
    const base = path.join(box.root, "opt/odoo");
    expect(fs.readlinkSync(path.join(base, "current"))).toBe(`releases/${artifact.sha256}`);
    expect(fs.readlinkSync(path.join(box.root, PATHS.odooCustomAddons))).toBe("current/addons");
    expect(fs.readFileSync(path.join(box.root, PATHS.odooCustomAddons, "stack_test/__manifest__.py"), "utf8")).toBe(
      GOOD_ADDON["__manifest__.py"],
    );
    // The requirement is importable from the release's python/ (PYTHONPATH), not from the system.
    const imp = spawnSync("python3", ["-c", "import odoo_stack_tinydep; print(odoo_stack_tinydep.VERSION)"], {
      env: { PATH: process.env.PATH, PYTHONPATH: path.join(base, "current/python") },
      encoding: "utf8",
    });
    expect(imp.stdout.trim()).toBe("1.2.3");
    expect(fs.existsSync(path.join(base, "current/addons/requirements.txt"))).toBe(false);
    // The artifact was packed from a 0700 directory (mkdtemp), as CI's often are: Odoo's user
    // still reads every file and traverses every directory; only root writes.
    const modes: string[] = [];
    const walk = (p: string) => {
      const st = fs.lstatSync(p);
      const want = st.isDirectory() ? 0o755 : 0o644;
      if ((st.mode & 0o777) !== want && !(st.isFile() && (st.mode & 0o777) === 0o755))
        modes.push(`${path.relative(base, p)} ${(st.mode & 0o777).toString(8)}`);
      if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    };
    walk(path.join(base, "releases", artifact.sha256));
    expect(modes).toEqual([]);
    // Run again: nothing to do, Odoo untouched.
    const again = box.run(envFor(cronHost, artifact));
    expect(again.status).toBe(0);
    expect(again.stdout).toContain("nothing to do");
    expect(box.events()).toEqual(["stop", "start"]);
  });

  it("a new build and new addons on the cron host: package, switch, then `-u all` per database as the migration role with the CA and the release's PYTHONPATH", () => {
    const box = newBox();
    const first = makeArtifact(box.dir, "a.tar.gz", { stack_test: GOOD_ADDON });
    publish(box, first);
    expect(box.run(envFor(cronHost, first, OLD_BUILD)).status).toBe(0);
    const second = makeArtifact(box.dir, "b.tar.gz", { stack_test: { ...GOOD_ADDON, "__init__.py": "# v2\n" }, stack_more: GOOD_ADDON });
    publish(box, second);
    fs.writeFileSync(path.join(box.dir, "events"), "");
    const r = box.run(envFor(cronHost, second));
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const conf = path.join(box.dir, "odoo.conf");
    expect(box.events()).toEqual([
      "stop",
      "apt odoo=17.0.20250115",
      ...["erp", "shop"].map(
        (db) =>
          `odoo PGSSLROOTCERT=${PATHS.caCert} PYTHONPATH=${box.root}/opt/odoo/current/python -c ${conf} --db_user ${DB_ROLES.migrate} -d ${db} -u all --stop-after-init --no-http`,
      ),
      "start",
    ]);
    expect(box.installed()).toBe("17.0.20250115");
    // Odoo's index refreshed for the new build only (a build published after the host's last
    // apt-get update is not in its lists); the first run was on the installed build already.
    expect(fs.readFileSync(path.join(box.dir, "index-refreshes"), "utf8")).toBe("update\n");
    expect(fs.readlinkSync(path.join(box.root, "opt/odoo/current"))).toBe(`releases/${second.sha256}`);
    // The previous release stays for the rollback; older ones go.
    expect(fs.readdirSync(path.join(box.root, "opt/odoo/releases")).sort()).toEqual([first.sha256, second.sha256].sort());
  });

  it("new addons only: updates exactly the artifact's addons; another Odoo host switches without a module update", () => {
    const box = newBox();
    const first = makeArtifact(box.dir, "a.tar.gz", { stack_test: GOOD_ADDON });
    publish(box, first);
    expect(box.run(envFor(cronHost, first, OLD_BUILD)).status).toBe(0);
    const second = makeArtifact(box.dir, "b.tar.gz", { stack_more: GOOD_ADDON, stack_test: GOOD_ADDON, not_an_addon: { README: "x" } });
    publish(box, second);
    fs.writeFileSync(path.join(box.dir, "events"), "");
    expect(box.run(envFor(cronHost, second, OLD_BUILD)).status).toBe(0);
    expect(
      box
        .events()
        .filter((e) => e.startsWith("odoo "))
        .map((e) => e.replace(/.* -u (\S+) .*/, "$1")),
    ).toEqual(["stack_more,stack_test", "stack_more,stack_test"]);

    const other = newBox();
    publish(other, first);
    expect(other.run(envFor(otherHost, first, OLD_BUILD)).status).toBe(0);
    publish(other, second);
    fs.writeFileSync(path.join(other.dir, "events"), "");
    const r = other.run(envFor(otherHost, second));
    expect(r.status).toBe(0);
    expect(other.events()).toEqual(["stop", "apt odoo=17.0.20250115", "start"]);
  });

  it.each([
    ["a checksum that is not the stack's", (a: Artifact) => ({ ...a, sha256: "f".repeat(64) }), { stack_test: GOOD_ADDON }, "has sha256"],
    [
      "an addon whose manifest is not a literal",
      (a: Artifact) => a,
      { stack_test: { ...GOOD_ADDON, "__manifest__.py": "{'name': open('x')}\n" } },
      "the addons do not load",
    ],
    [
      "a Python file that does not compile",
      (a: Artifact) => a,
      { stack_test: { ...GOOD_ADDON, "models/__init__.py": "def broken(:\n" } },
      "a Python file does not compile",
    ],
    ["no addon at the top level", (a: Artifact) => a, { docs: { "README.md": "x" } }, "the addons do not load"],
  ])("refuses %s before it stops Odoo: the running release is untouched", (_why, tamper, addons, message) => {
    const box = newBox();
    const first = makeArtifact(box.dir, "a.tar.gz", { stack_test: GOOD_ADDON });
    publish(box, first);
    expect(box.run(envFor(cronHost, first, OLD_BUILD)).status).toBe(0);
    const bad = makeArtifact(box.dir, "b.tar.gz", addons);
    publish(box, bad);
    fs.writeFileSync(path.join(box.dir, "events"), "");
    const r = box.run(envFor(cronHost, tamper(bad)));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(message);
    expect(box.events()).toEqual([]);
    expect(fs.readlinkSync(path.join(box.root, "opt/odoo/current"))).toBe(`releases/${first.sha256}`);
    expect(box.installed()).toBe(OLD_BUILD);
  });

  it("rolls back when the module update fails: the previous package, pin and release, Odoo started, exit 1 naming the step", () => {
    const box = newBox();
    const first = makeArtifact(box.dir, "a.tar.gz", { stack_test: GOOD_ADDON });
    publish(box, first);
    expect(box.run(envFor(cronHost, first, OLD_BUILD)).status).toBe(0);
    const second = makeArtifact(box.dir, "b.tar.gz", { stack_more: GOOD_ADDON });
    publish(box, second);
    fs.writeFileSync(path.join(box.dir, "events"), "");
    const r = box.run(envFor(cronHost, second), { odooFails: true });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`step module update of erp failed; rolling back to ${OLD_BUILD} + ${first.sha256}`);
    const events = box.events();
    expect(events[0]).toBe("stop");
    expect(events[1]).toBe("apt odoo=17.0.20250115");
    expect(events.slice(-2)).toEqual([`apt odoo=${OLD_BUILD}`, "start"]);
    expect(box.installed()).toBe(OLD_BUILD);
    expect(fs.readlinkSync(path.join(box.root, "opt/odoo/current"))).toBe(`releases/${first.sha256}`);
    expect(fs.readFileSync(path.join(box.root, ODOO_RELEASE_PATHS.aptPin), "utf8")).toContain(`Pin: version ${OLD_BUILD}\n`);
    // The runbook's verify step (--check) says so and changes nothing: running the script itself
    // would stop Odoo and try the failing release again.
    fs.writeFileSync(path.join(box.dir, "events"), "");
    const check = box.run(envFor(cronHost, second), { check: true });
    expect({ status: check.status, stderr: check.stderr.trim() }).toEqual({
      status: 1,
      stderr: `odoo-stack-odoo-release: ERROR: not on the stack's release: package ${OLD_BUILD} (the stack's: 17.0.20250115), addons ${first.sha256} (the stack's: ${second.sha256}); the apply association's output names the step that failed`,
    });
    // Rolled back in the stack too (the previous values): the check passes, still changing nothing.
    const back = box.run(envFor(cronHost, first, OLD_BUILD), { check: true });
    expect({ status: back.status, stdout: back.stdout.trim().split("\n").pop() }).toEqual({
      status: 0,
      stdout: `odoo-stack-odoo-release: on release ${OLD_BUILD} + ${first.sha256}; nothing to do`,
    });
    expect(box.events()).toEqual([]);
  });

  it("refuses a build that is not in Odoo's repository before it stops Odoo, after refreshing the index", () => {
    const box = newBox();
    const first = makeArtifact(box.dir, "a.tar.gz", { stack_test: GOOD_ADDON });
    publish(box, first);
    expect(box.run(envFor(cronHost, first, OLD_BUILD)).status).toBe(0);
    fs.writeFileSync(path.join(box.dir, "events"), "");
    fs.writeFileSync(path.join(box.dir, "index-refreshes"), "");
    const r = box.run(envFor(cronHost, first, "17.0.20250230"));
    expect({ status: r.status, error: r.stderr.trim() }).toEqual({
      status: 1,
      error: `odoo-stack-odoo-release: ERROR: odoo=17.0.20250230 is not in Odoo's repository (it has: ${OLD_BUILD} 17.0.20250115 ); check odooBuild (nothing changed)`,
    });
    expect(fs.readFileSync(path.join(box.dir, "index-refreshes"), "utf8")).toBe("update\n");
    expect(box.events()).toEqual([]);
    expect(box.installed()).toBe(OLD_BUILD);
  });

  it("refuses an env file with an unknown key or a package that is not SERIES.YYYYMMDD", () => {
    const box = newBox();
    expect(box.run(`${envFor()}EXTRA=1\n`).stderr).toContain("unknown key 'EXTRA'");
    const r = box.run(envFor().replace(/^ODOO_STACK_ODOO_PACKAGE=.*$/m, "ODOO_STACK_ODOO_PACKAGE=latest"));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("ODOO_STACK_ODOO_PACKAGE: invalid 'latest'");
  });
});
