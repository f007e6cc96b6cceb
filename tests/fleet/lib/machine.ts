// One host of the fleet: a Debian 12 system container (systemd as PID 1) booted with
// systemd-nspawn on an overlay of the fleet image, attached to the fleet's bridge with the
// plan's private address, seeded for cloud-init's NoCloud datasource with the host's user data
// exactly as the plan rendered it. EBS volumes are loop devices that appear under the name EC2
// gives them (/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…).
import { execFileSync, spawn, spawnSync, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as path from "path";
import type { FleetNetwork } from "./network";
import { BRIDGE } from "./network";
import { sleep, within } from "./timing";

export interface MachineSpec {
  readonly host: string;
  readonly instanceId: string;
  readonly privateIp: string;
  readonly region: string;
  readonly userData: string;
  /** EBS volumes attached to the instance: id (vol-…) and size. */
  readonly volumes?: readonly { readonly id: string; readonly sizeGiB: number }[];
  /** PEM certificates the image trusts (the suite's CA standing in for public CAs). */
  readonly trustedCaPem: string;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const ENV = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"];

export class Machine {
  readonly dir: string;
  readonly root: string;
  readonly consoleLog: string;
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private loops: { device: string; id: string }[] = [];
  /** Milliseconds from the container's start to cloud-init's end, per boot. */
  readonly boots: { startedAt: number }[] = [];

  constructor(
    readonly spec: MachineSpec,
    private readonly imageRoot: string,
    runDir: string,
    private readonly network: FleetNetwork,
  ) {
    this.dir = path.join(runDir, spec.host);
    this.root = path.join(this.dir, "root");
    this.consoleLog = path.join(this.dir, "console.log");
  }

  /** Overlay, NoCloud seed, network configuration, volumes: the instance as EC2 launches it. */
  prepare(): void {
    for (const d of ["upper", "work", "root"]) fs.mkdirSync(path.join(this.dir, d), { recursive: true });
    execFileSync("mount", [
      "-t",
      "overlay",
      "overlay",
      "-o",
      `lowerdir=${this.imageRoot},upperdir=${this.dir}/upper,workdir=${this.dir}/work`,
      this.root,
    ]);
    const { gateway, prefix } = this.network.gatewayOf(this.spec.privateIp);
    const hostname = `ip-${this.spec.privateIp.replace(/\./g, "-")}`;
    const seed = path.join(this.root, "var/lib/cloud/seed/nocloud");
    fs.mkdirSync(seed, { recursive: true });
    fs.writeFileSync(path.join(seed, "user-data"), this.spec.userData);
    fs.writeFileSync(path.join(seed, "meta-data"), `instance-id: ${this.spec.instanceId}\nlocal-hostname: ${hostname}\n`);
    fs.writeFileSync(
      path.join(seed, "network-config"),
      [
        "version: 2",
        "ethernets:",
        "  host0:",
        `    addresses: [${this.spec.privateIp}/${prefix}]`,
        // gateway4, not routes: Debian's ENI renderer writes `route add` for routes, and
        // net-tools is not on a Debian 12 cloud image.
        `    gateway4: ${gateway}`,
        `    nameservers: {addresses: [${this.network.resolverIp}], search: [${this.spec.region}.compute.internal]}`,
        "",
      ].join("\n"),
    );
    // What DHCP gives an EC2 instance: the VPC resolver.
    fs.rmSync(path.join(this.root, "etc/resolv.conf"), { force: true });
    fs.writeFileSync(
      path.join(this.root, "etc/resolv.conf"),
      `nameserver ${this.network.resolverIp}\nsearch ${this.spec.region}.compute.internal\n`,
    );
    // The public CAs the hosts verify AWS, Odoo's archive and Let's Encrypt with are the suite's CA.
    fs.writeFileSync(path.join(this.root, "usr/local/share/ca-certificates/odoo-stack-fleet-test-ca.crt"), this.spec.trustedCaPem);
    execFileSync("chroot", [this.root, "update-ca-certificates", "--fresh"], { stdio: "ignore" });
    for (const v of this.spec.volumes ?? []) {
      const file = path.join(this.dir, `${v.id}.img`);
      execFileSync("truncate", ["-s", `${v.sizeGiB}G`, file]);
      const device = execFileSync("losetup", ["--find", "--show", file], { encoding: "utf8" }).trim();
      this.loops.push({ device, id: v.id });
    }
  }

  /**
   * A cgroup of its own in each hierarchy systemd uses (the named v1 "systemd" one and the v2 one):
   * without a host systemd, nspawn puts the container's tree under the caller's cgroup, and four
   * containers started from one process would share /payload — one's systemd then removes the
   * cgroup another just made (seen: systemd-sysusers "Failed at step CGROUP").
   */
  private cgroupDirs(): string[] {
    const roots = ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"].filter((d) => fs.existsSync(path.join(d, "cgroup.procs")));
    const all = roots.length > 0 ? roots : ["/sys/fs/cgroup"];
    return all.map((root) => path.join(root, "odoo-stack-fleet", path.basename(path.dirname(this.dir)), this.spec.host));
  }

  /** Boots the container; resolves once systemd runs as its PID 1. */
  async boot(): Promise<void> {
    const cgroups = this.cgroupDirs();
    for (const d of cgroups) fs.mkdirSync(d, { recursive: true });
    const args = [
      `--net=${this.network.path}`,
      "systemd-nspawn",
      "--boot",
      "--register=no",
      "--keep-unit",
      `--directory=${this.root}`,
      `--machine=${this.spec.host}`,
      `--network-bridge=${BRIDGE}`,
      "--resolv-conf=off",
      "--timezone=off",
      "--link-journal=no",
      "--console=pipe",
      ...this.loops.flatMap((l) => [
        `--bind=${l.device}:/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${l.id.replace("-", "")}`,
        `--bind=${l.device}`,
      ]),
    ];
    const log = fs.openSync(this.consoleLog, "a");
    const enter = cgroups.map((d) => `echo $$ > ${path.join(d, "cgroup.procs")}`).join(" && ");
    const child = spawn("sh", ["-c", `${enter} && exec nsenter "$@"`, "sh", ...args], { stdio: ["ignore", log, log] });
    fs.closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    this.boots.push({ startedAt: Date.now() });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (this.leader() !== undefined) return;
      if (child.exitCode !== null) break;
      await sleep(200);
    }
    throw new Error(`${this.spec.host}: the container did not start (see ${this.consoleLog})`);
  }

  /** The systemd-nspawn process of a fleet this suite attached to instead of booting it. */
  attachedNspawnPid: number | undefined;

  get nspawnPid(): number | undefined {
    return this.child?.pid;
  }

  /** PID (in the suite's namespace) of the container's systemd. */
  leader(): number | undefined {
    const nspawn = this.child?.pid ?? this.attachedNspawnPid;
    if (nspawn === undefined) return undefined;
    const out = spawnSync("pgrep", ["-P", String(nspawn)], { encoding: "utf8" }).stdout.trim();
    // sh and nsenter exec nspawn in place, so the container's init is nspawn's child.
    for (const pid of out.split("\n").filter(Boolean)) {
      try {
        if (fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "systemd") return Number(pid);
      } catch {
        /* a short-lived child of nspawn, gone already */
      }
    }
    return undefined;
  }

  /** Runs a command inside the container, as root, with a clean environment. */
  exec(argv: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): ExecResult {
    const leader = this.leader();
    if (leader === undefined) throw new Error(`${this.spec.host} is not running`);
    const r = spawnSync("nsenter", ["-t", String(leader), "-a", ...ENV, ...argv], {
      encoding: "utf8",
      input: opts.input,
      timeout: opts.timeoutMs ?? 120_000,
      maxBuffer: 32 * 1024 * 1024,
    });
    return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  /** A command inside the container that runs alongside the suite (a load generator); stdin is a pipe. */
  spawn(argv: readonly string[]): ChildProcess {
    const leader = this.leader();
    if (leader === undefined) throw new Error(`${this.spec.host} is not running`);
    return spawn("nsenter", ["-t", String(leader), "-a", ...ENV, ...argv], { stdio: ["pipe", "pipe", "pipe"] });
  }

  sh(script: string, opts: { input?: string; timeoutMs?: number } = {}): ExecResult {
    return this.exec(["bash", "-c", script], opts);
  }

  /** `sh` that throws with the output on a non-zero exit. */
  shOk(script: string, opts: { input?: string; timeoutMs?: number } = {}): string {
    const r = this.sh(script, opts);
    if (r.code !== 0) throw new Error(`${this.spec.host}: \`${script}\` exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** Reboots through systemd and boots again (nspawn exits 133 on a guest reboot). */
  async reboot(): Promise<void> {
    if (this.attachedNspawnPid !== undefined) throw new Error("an attached fleet cannot reboot its hosts");
    this.sh("systemctl reboot", { timeoutMs: 10_000 });
    const code = await within(this.exited as Promise<number | null>, 120_000);
    if (code === "timeout") throw new Error(`${this.spec.host}: did not shut down for the reboot within 120 s`);
    await this.boot();
  }

  /** Powers the container off and unmounts everything it used; safe to call twice. */
  async destroy(): Promise<void> {
    if (this.attachedNspawnPid !== undefined) return;
    const child = this.child;
    if (child && child.exitCode === null) {
      child.kill("SIGTERM"); // nspawn turns SIGTERM into a clean guest poweroff
      const done = await within(this.exited as Promise<number | null>, 30_000);
      if (done === "timeout") {
        const leader = this.leader();
        if (leader) spawnSync("kill", ["-KILL", String(leader)]);
        child.kill("SIGKILL");
        await within(this.exited as Promise<number | null>, 10_000);
      }
    }
    spawnSync("umount", ["-R", this.root]);
    for (const l of this.loops) spawnSync("losetup", ["-d", l.device]);
    this.loops = [];
    // This container's emptied cgroups, deepest first (the kernel removes only empty ones), then
    // the run's and the suite's directories once no other container is left in them.
    for (const d of this.cgroupDirs()) {
      spawnSync("sh", [
        "-c",
        `find ${JSON.stringify(d)} -depth -type d -exec rmdir {} + 2>/dev/null; rmdir ${JSON.stringify(path.dirname(d))} ${JSON.stringify(path.dirname(path.dirname(d)))} 2>/dev/null; true`,
      ]);
    }
  }
}
