// The apply script's systemd validation (validate_systemd in templates/scripts/odoo-stack-apply.sh):
// what the manifest promises for the "systemd" service (SERVICE_STEPS: systemd-analyze verify),
// run here on every host's rendered units with Debian 12's own systemd-analyze, and on broken
// units it must refuse before anything is installed or reloaded.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { HostFile } from "../../templates/format";
import { renderAllHosts } from "../../templates/hosts";
import { serviceForPath } from "../../templates/manifest";
import { SCRIPTS, SCRIPTS_DIR } from "../../templates/scripts";
import { modelWith } from "../helpers/fixtures";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-apply-systemd-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

type Staged = Pick<HostFile, "path" | "content"> & { readonly service?: string };
let n = 0;

/** Stages the files as the apply script does (F_PATH, F_SERVICE, $TMP/staged) and runs validate_systemd. */
function validateSystemd(files: readonly Staged[]): { status: number | null; stderr: string } {
  const dir = path.join(tmp, `run-${n++}`);
  const list: string[] = [];
  for (const f of files) {
    fs.mkdirSync(path.join(dir, "files", path.dirname(f.path)), { recursive: true });
    fs.writeFileSync(path.join(dir, "files", f.path), f.content);
    list.push(`${f.path}\t${f.service ?? serviceForPath(f.path)}`);
  }
  fs.writeFileSync(path.join(dir, "list.tsv"), `${list.join("\n")}\n`);
  const driver = [
    'source "$1" && init_settings && init_commands && make_tmp',
    'while IFS=$\'\\t\' read -r p s; do F_PATH+=("$p"); F_SERVICE+=("$s"); mkdir -p -- "$TMP/staged${p%/*}"; cp -- "$2$p" "$TMP/staged$p"; done <"$3"',
    "validate_systemd",
  ].join("\n");
  const result = spawnSync(
    "bash",
    ["--norc", "-c", driver, "validate", path.join(SCRIPTS_DIR, SCRIPTS.apply), path.join(dir, "files"), path.join(dir, "list.tsv")],
    {
      encoding: "utf8",
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TMPDIR: dir, ODOO_STACK_CONFIG: path.join(dir, "none.env") },
      timeout: 60_000,
    },
  );
  return { status: result.status, stderr: result.stderr };
}

const hosts = [
  ...renderAllHosts(modelWith()).entries(),
  ...[...renderAllHosts(modelWith({ postgresEngine: "rds" })).entries()].map(([id, f]) => [`${id} (rds)`, f] as const),
];

describe("validate_systemd", () => {
  it.each(hosts.filter(([, files]) => files.some((f) => serviceForPath(f.path) === "systemd")))(
    "accepts the units %s receives",
    (_id, files) => {
      const r = validateSystemd(files);
      expect(r.status).toBe(0);
      // Only notices, each about a command this machine lacks (the AWS CLI is on the hosts only).
      for (const line of r.stderr.split("\n").filter(Boolean)) {
        const m = /^odoo-stack-apply: NOTICE: systemd: \S+: Command (\/\S+) is not executable: No such file or directory$/.exec(line);
        expect([line, m !== null && !fs.existsSync(m[1])]).toEqual([line, true]);
      }
    },
  );

  const service = (body: string): Staged => ({
    path: "/etc/systemd/system/odoo-stack-job.service",
    content: `[Unit]\nDescription=job\n\n[Service]\nType=oneshot\n${body}`,
  });
  const timer: Staged = {
    path: "/etc/systemd/system/odoo-stack-job.timer",
    content: "[Unit]\nDescription=job\n\n[Timer]\nOnCalendar=hourly\n\n[Install]\nWantedBy=timers.target\n",
  };
  const delivered: Staged = { path: "/usr/local/sbin/odoo-stack-job", content: "#!/bin/bash\n", service: "none" };

  it("accepts a command the same manifest delivers (installed after validation)", () => {
    expect(validateSystemd([service(`ExecStart=${delivered.path}\n`), timer, delivered])).toEqual({ status: 0, stderr: "" });
  });

  it("reports, without failing, a command neither delivered nor installed (the host's packages' business)", () => {
    expect(validateSystemd([service("ExecStart=/usr/local/sbin/odoo-stack-nowhere\n"), timer])).toEqual({
      status: 0,
      stderr:
        "odoo-stack-apply: NOTICE: systemd: odoo-stack-job.service: Command /usr/local/sbin/odoo-stack-nowhere is not executable: No such file or directory\n",
    });
  });

  it.each([
    [
      "an unknown key",
      [service("ExecStart=/bin/true\nExecStartt=/bin/true\n"), timer],
      /^\/etc\/systemd\/system\/odoo-stack-job\.service:7: Unknown key 'ExecStartt' in section \[Service\], ignoring\.$/m,
    ],
    [
      "a bad value",
      [service("ExecStart=/bin/true\nTimeoutStartSec=soon\n"), timer],
      /^\/etc\/systemd\/system\/odoo-stack-job\.service:7: Failed to parse TimeoutStartSec= parameter, ignoring: soon$/m,
    ],
    [
      "a timer with no trigger (a misspelt OnCalendar)",
      [service("ExecStart=/bin/true\n"), { ...timer, content: timer.content.replace("OnCalendar", "OnCalander") }],
      /^odoo-stack-job\.timer: Timer unit lacks value setting\. Refusing\.$/m,
    ],
  ])("refuses %s, naming it, before anything is installed", (_why, files, finding) => {
    const r = validateSystemd(files);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(finding);
    expect(r.stderr).toMatch(/odoo-stack-apply: ERROR: systemd: the new units are invalid \(nothing was installed or reloaded\)\n$/);
    expect(r.stderr).not.toContain(tmp);
  });
});
