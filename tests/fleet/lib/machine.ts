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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
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
    execFileSync("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${this.imageRoot},upperdir=${this.dir}/upper,workdir=${this.dir}/work`, this.root]);
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
    fs.writeFileSync(path.join(this.root, "etc/resolv.conf"), `nameserver ${this.network.resolverIp}\nsearch ${this.spec.region}.compute.internal\n`);
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

  /** Boots the container; resolves once systemd runs as its PID 1. */
  async boot(): Promise<void> {
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
      ...this.loops.flatMap((l) => [`--bind=${l.device}:/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${l.id.replace("-", "")}`, `--bind=${l.device}`]),
    ];
    const log = fs.openSync(this.consoleLog, "a");
    const child = spawn("nsenter", args, { stdio: ["ignore", log, log] });
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
    // nsenter execs nspawn in place, so the container's init is nspawn's child.
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

  sh(script: string, opts: { input?: string; timeoutMs?: number } = {}): ExecResult {
    return this.exec(["bash", "-c", script], opts);
  }

  /** `sh` that throws with the output on a non-zero exit. */
  shOk(script: string, opts: { timeoutMs?: number } = {}): string {
    const r = this.sh(script, opts);
    if (r.code !== 0) throw new Error(`${this.spec.host}: \`${script}\` exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** Reboots through systemd and boots again (nspawn exits 133 on a guest reboot). */
  async reboot(): Promise<void> {
    if (this.attachedNspawnPid !== undefined) throw new Error("an attached fleet cannot reboot its hosts");
    this.sh("systemctl reboot", { timeoutMs: 10_000 });
    const code = await Promise.race([this.exited, sleep(120_000).then(() => "timeout" as const)]);
    if (code === "timeout") throw new Error(`${this.spec.host}: did not shut down for the reboot within 120 s`);
    await this.boot();
  }

  /** Powers the container off and unmounts everything it used; safe to call twice. */
  async destroy(): Promise<void> {
    if (this.attachedNspawnPid !== undefined) return;
    const child = this.child;
    if (child && child.exitCode === null) {
      child.kill("SIGTERM"); // nspawn turns SIGTERM into a clean guest poweroff
      const done = await Promise.race([this.exited, sleep(30_000).then(() => "timeout" as const)]);
      if (done === "timeout") {
        const leader = this.leader();
        if (leader) spawnSync("kill", ["-KILL", String(leader)]);
        child.kill("SIGKILL");
        await Promise.race([this.exited, sleep(10_000)]);
      }
    }
    spawnSync("umount", ["-R", this.root]);
    for (const l of this.loops) spawnSync("losetup", ["-d", l.device]);
    this.loops = [];
  }
}
