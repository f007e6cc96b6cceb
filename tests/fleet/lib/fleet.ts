// The whole stack booted here as on EC2 (issue 18): the plan of a stack, four Debian 12 system
// containers seeded with the plan's user data, and the edge standing in for AWS, Debian's and
// Odoo's archives and Let's Encrypt, all inside one network namespace. `Fleet.up` returns when
// every host has finished first boot (or throws with each host's evidence); `destroy` removes
// every container, mount, loop device, process and the namespace, also after a failure.
import { odooPackageVersion } from "../../../lib/config";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import * as ts from "typescript";
import { parseSettings } from "../../../lib/config";
import { knownInstanceType } from "../../../lib/instance-types";
import { buildModel, type StackModel } from "../../../lib/model";
import { plan, ROOT } from "../../../tools/plan";
import { readStackConfig } from "../../../tools/stack-config";
import { generateSecrets, randomPassword } from "../../integration/helpers/secrets";
import type { EdgeConfig } from "../edge/main";
import type { Call, MetricDatum } from "../edge/aws";
import { ensureImage } from "./image";
import { Machine } from "./machine";
import { CLIENT_IP, createNetwork, EDGE_IP, IMDS_IP, type FleetNetwork } from "./network";
import { buildOdooRepo, type OdooRepo } from "./odoo-repo";
import { sleep, within } from "./timing";
import { createCa, issue, type Ca } from "./pki";
import { deliveredFiles, readPlanFacts, type PlanFacts } from "./plan-facts";
import { buildCloudwatchAgentStandin, buildOdooStandin, buildSsmAgentStandin } from "./standins";

export interface FleetOptions {
  readonly stack?: string;
  /** A real odoo_17.0.*.deb to install instead of the stand-in (ODOO_STACK_FLEET_ODOO_DEB). */
  readonly odooDeb?: string;
  readonly log?: (line: string) => void;
  /** Seconds to wait for every host's first boot. Optional. Defaults to 900. */
  readonly firstBootTimeoutSeconds?: number;
}

export interface BootReport {
  readonly host: string;
  readonly seconds: number;
  readonly cloudInit: string;
  readonly systemState: string;
  readonly failedUnits: readonly string[];
}

/**
 * The edge runs as plain JavaScript: under tsx's require hook, s3rver's koa gets an ES module
 * namespace where it expects a function (generator-function's "module-sync" export), so the edge's
 * files are transpiled with TypeScript and run by node with the project's node_modules.
 */
function transpileEdge(outDir: string): string {
  const edgeDir = path.join(__dirname, "..", "edge");
  fs.mkdirSync(outDir, { recursive: true });
  for (const file of fs.readdirSync(edgeDir).filter((f) => f.endsWith(".ts"))) {
    const out = ts.transpileModule(fs.readFileSync(path.join(edgeDir, file), "utf8"), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    fs.writeFileSync(path.join(outDir, file.replace(/\.ts$/, ".js")), out.outputText);
  }
  return path.join(outDir, "main.js");
}

import { FIRSTBOOT_COMPLETE_MARKER, FIRSTBOOT_UNIT } from "../../../templates/cloud-init";

export class Fleet {
  readonly machines = new Map<string, Machine>();
  private edgeProcess: ChildProcess | undefined;
  private edgeLog = "";
  network: FleetNetwork | undefined;
  facts!: PlanFacts;
  model!: StackModel;
  internalCa!: Ca;
  publicCa!: Ca;
  /** Parameter name → value, as the SSM stand-in serves them (generated per run). */
  parameterValues = new Map<string, string>();
  imageBuildSeconds = 0;
  /** Odoo's repository (nightly.odoo.com); undefined when attached to another process's fleet. */
  odooRepo: OdooRepo | undefined;

  private constructor(
    readonly runDir: string,
    readonly options: FleetOptions,
  ) {}

  get log(): (line: string) => void {
    return this.options.log ?? (() => undefined);
  }

  get controlSocket(): string {
    return path.join(this.runDir, "edge.sock");
  }

  /**
   * A fleet another process booted and keeps up (tests/fleet/dev.ts): for iterating on the suite's
   * checks without booting again. Set ODOO_STACK_FLEET_ATTACH to its run directory.
   */
  static async attach(runDir: string, options: FleetOptions = {}): Promise<Fleet> {
    const fleet = new Fleet(runDir, options);
    fleet.attached = true;
    const state = JSON.parse(fs.readFileSync(path.join(runDir, "state.json"), "utf8")) as { ns: string; nspawn: Record<string, number> };
    const stack = options.stack ?? "prod";
    fleet.facts = readPlanFacts(path.join(runDir, "plan", stack));
    fleet.model = fleet.modelOf(stack);
    fleet.publicCa = {
      certFile: path.join(runDir, "pki/public/ca.crt"),
      keyFile: path.join(runDir, "pki/public/ca.key"),
      certPem: fs.readFileSync(path.join(runDir, "pki/public/ca.crt"), "utf8"),
    };
    fleet.internalCa = {
      certFile: path.join(runDir, "pki/internal/ca.crt"),
      keyFile: path.join(runDir, "pki/internal/ca.key"),
      certPem: fs.readFileSync(path.join(runDir, "pki/internal/ca.crt"), "utf8"),
    };
    const edge = JSON.parse(fs.readFileSync(path.join(runDir, "edge.json"), "utf8")) as EdgeConfig;
    fleet.parameterValues = new Map(Object.entries(edge.parameters).map(([k, v]) => [k, v.value]));
    const nsPath = `/run/netns/${state.ns}`;
    fleet.network = {
      name: state.ns,
      path: nsPath,
      resolverIp: edge.resolverIp,
      gatewayOf: () => ({ gateway: "", prefix: 0 }),
      exec: (command, args, opts = {}) =>
        execFileSync("nsenter", [`--net=${nsPath}`, command, ...args], {
          encoding: "utf8",
          input: opts.input,
          timeout: opts.timeoutMs ?? 60_000,
          stdio: ["pipe", "pipe", "pipe"],
        }),
      destroy: () => undefined,
    };
    for (const h of fleet.facts.hosts) {
      const m = new Machine(
        {
          host: h.id,
          instanceId: h.instanceId,
          privateIp: h.privateIp,
          region: fleet.facts.region,
          userData: h.userData,
          trustedCaPem: "",
        },
        "",
        runDir,
        fleet.network,
      );
      m.attachedNspawnPid = state.nspawn[h.id];
      m.boots.push({ startedAt: Date.now() });
      fleet.machines.set(h.id, m);
    }
    return fleet;
  }

  private attached = false;

  static async up(options: FleetOptions = {}): Promise<Fleet> {
    if (process.env.ODOO_STACK_FLEET_ATTACH) return Fleet.attach(process.env.ODOO_STACK_FLEET_ATTACH, options);
    sweepStaleFleets(options.log ?? (() => undefined));
    const runDir = fs.mkdtempSync(path.join(RUN_BASE, RUN_PREFIX));
    fs.writeFileSync(path.join(runDir, "owner.pid"), String(process.pid));
    const fleet = new Fleet(runDir, options);
    // A run interrupted (Ctrl-C, CI's timeout) still removes what it made.
    const onSignal = (signal: NodeJS.Signals) => {
      void fleet.destroy().finally(() => process.kill(process.pid, signal));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    fleet.signalHandlers = () => {
      process.removeListener("SIGINT", onSignal);
      process.removeListener("SIGTERM", onSignal);
    };
    try {
      await fleet.start();
      return fleet;
    } catch (e) {
      const evidence = fleet.evidence();
      await fleet.destroy();
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${evidence}`);
    }
  }

  private signalHandlers: () => void = () => undefined;

  /** Plans the stack into the run directory (as `npm run plan` writes out/<stack>/). */
  async planStack(projectDir?: string): Promise<PlanFacts> {
    const stack = this.options.stack ?? "prod";
    // One directory per project: a test compares the plans of successive re-plans.
    const outDir = path.join(this.runDir, projectDir ? `replan-${path.basename(projectDir)}` : "plan");
    const result = await plan({ stack, outDir, ...(projectDir ? { projectDir } : {}) });
    const mandatory = result.diagnostics.filter((d) => d.enforcementLevel === "mandatory");
    if (mandatory.length > 0)
      throw new Error(`the plan of ${stack} has mandatory policy violations:\n${mandatory.map((d) => d.message).join("\n")}`);
    return readPlanFacts(result.stackDir, result.resources);
  }

  private modelOf(stack: string): StackModel {
    const config = readStackConfig(ROOT, stack);
    const raw: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(config.config)) if (k.startsWith(`${config.project}:`)) raw[k.slice(config.project.length + 1)] = v;
    const region = config.config["aws:region"] ?? "";
    return buildModel(stack, parseSettings(raw, region, knownInstanceType), config.project);
  }

  private async start(): Promise<void> {
    const stack = this.options.stack ?? "prod";
    this.log(`planning stack ${stack}`);
    this.facts = await this.planStack();
    this.model = this.modelOf(stack);

    const debDir = path.join(this.runDir, "debs");
    fs.mkdirSync(debDir);
    const odooDeb = this.options.odooDeb ?? buildOdooStandin(debDir, odooPackageVersion(this.model.settings));
    // A newer nightly beside the pinned build, as on nightly.odoo.com: first boot must still
    // install exactly the pinned one (the stand-in only: a real package has no newer twin here).
    const newerDebs = this.options.odooDeb ? [] : [buildOdooStandin(debDir, `${this.model.settings.odooVersion}.${NEWER_ODOO_BUILD}`)];
    const image = ensureImage(odooDeb, undefined, this.log);
    this.imageBuildSeconds = image.buildSeconds;
    this.log(`image ${image.key}${image.buildSeconds ? ` built in ${image.buildSeconds} s` : " from the cache"}`);

    this.publicCa = createCa(path.join(this.runDir, "pki", "public"), "odoo-stack fleet test CA (stands in for public CAs)");
    this.internalCa = createCa(path.join(this.runDir, "pki", "internal"), "odoo-stack prod internal CA (fleet)");
    this.parameterValues = this.generateParameters();

    const region = this.facts.region;
    const edgeCert = issue(this.publicCa, path.join(this.runDir, "pki", "edge"), "edge", [
      `s3.${region}.amazonaws.com`,
      `*.s3.${region}.amazonaws.com`,
      "s3.amazonaws.com",
      "*.s3.amazonaws.com",
      `ssm.${region}.amazonaws.com`,
      `monitoring.${region}.amazonaws.com`,
      `logs.${region}.amazonaws.com`,
      `sts.${region}.amazonaws.com`,
      "route53.amazonaws.com",
      "acme-v02.api.letsencrypt.org",
      "nightly.odoo.com",
      "deb.debian.org",
    ]);
    this.odooRepo = buildOdooRepo(
      path.join(this.runDir, "odoo-repo"),
      path.join(this.runDir, "odoo-repo-gnupg"),
      this.model.settings.odooVersion,
      [odooDeb, ...newerDebs],
    );
    const repo = this.odooRepo.dir;
    const ssmAgent = buildSsmAgentStandin(debDir);
    const cwAgent = buildCloudwatchAgentStandin(debDir);
    const backupBucket = this.parameterValues.get(`/${this.model.project}/${stack}/backup/bucket-name`);

    const edgeConfig: EdgeConfig = {
      stateDir: path.join(this.runDir, "edge"),
      controlSocket: this.controlSocket,
      region,
      accountId: "123456789012",
      resolverIp: "",
      edgeIp: EDGE_IP,
      imdsIp: IMDS_IP,
      dns: {
        records: {
          ...this.facts.privateRecords,
          ...this.facts.publicRecords,
          // AmazonProvidedDNS also answers each instance's own name (ip-a-b-c-d.<region>.compute.internal).
          ...Object.fromEntries(
            this.facts.hosts.map((h) => [`ip-${h.privateIp.replace(/\./g, "-")}.${region}.compute.internal`, h.privateIp]),
          ),
        },
        suffixes: {
          "amazonaws.com": EDGE_IP,
          "nightly.odoo.com": EDGE_IP,
          "deb.debian.org": EDGE_IP,
          "acme-v02.api.letsencrypt.org": EDGE_IP,
        },
      },
      tls: { certFile: edgeCert.certFile, keyFile: edgeCert.keyFile },
      testCa: { certFile: this.publicCa.certFile, keyFile: this.publicCa.keyFile },
      parameters: Object.fromEntries(
        this.facts.parameters.map((p) => [p.name, { type: p.type, value: this.parameterValues.get(p.name) as string, version: 1 }]),
      ),
      instances: this.facts.hosts.map((h) => ({
        host: h.id,
        instanceId: h.instanceId,
        privateIp: h.privateIp,
        // The proxy's Elastic IP shows some seconds after boot, as when AWS associates it after launch.
        ...(h.role === "proxy" && this.facts.proxyEip
          ? { publicIp: this.facts.proxyEip.publicIp, publicIpAfterSeconds: EIP_ASSOCIATION_DELAY_SECONDS }
          : {}),
        availabilityZone: h.availabilityZone,
        region,
        accountId: "123456789012",
        roleName: h.roleName,
      })),
      hostedZones: this.facts.publicZone ? [this.facts.publicZone] : [],
      buckets: [
        this.facts.configBucket,
        ...(backupBucket ? [backupBucket] : []),
        `amazon-ssm-${region}`,
        `amazoncloudwatch-agent-${region}`,
      ],
      objects: [
        ...this.facts.hosts.flatMap((h) =>
          deliveredFiles(this.facts.stackDir, h.id).map((f) => ({ bucket: this.facts.configBucket, ...f })),
        ),
        { bucket: `amazon-ssm-${region}`, key: "latest/debian_amd64/amazon-ssm-agent.deb", file: ssmAgent },
        { bucket: `amazoncloudwatch-agent-${region}`, key: "debian/amd64/latest/amazon-cloudwatch-agent.deb", file: cwAgent },
      ],
      mirror: { lists: image.mirrorLists, debs: image.mirrorDebs },
      odooRepo: repo,
    };

    const subnets = [...this.model.settings.publicSubnetCidrs, ...this.model.settings.privateSubnetCidrs];
    // Named after the owner process, so that an interrupted run's namespace is found again.
    const nsName = `odoo-fleet-${process.pid}`;
    this.network = createNetwork(nsName, { vpcCidr: this.model.settings.vpcCidr, subnets, eip: this.facts.proxyEip });
    const configFile = path.join(this.runDir, "edge.json");
    fs.writeFileSync(configFile, JSON.stringify({ ...edgeConfig, resolverIp: this.network.resolverIp }, null, 2), { mode: 0o600 });
    await this.startEdge(configFile);

    for (const h of this.facts.hosts) {
      const m = new Machine(
        {
          host: h.id,
          instanceId: h.instanceId,
          privateIp: h.privateIp,
          region,
          userData: h.userData,
          volumes: h.volumes,
          trustedCaPem: this.publicCa.certPem,
        },
        image.root,
        this.runDir,
        this.network,
      );
      this.machines.set(h.id, m);
      m.prepare();
    }
    this.log(`booting ${[...this.machines.keys()].join(", ")}`);
    await Promise.all([...this.machines.values()].map((m) => m.boot()));
    fs.writeFileSync(
      path.join(this.runDir, "state.json"),
      JSON.stringify({ ns: nsName, nspawn: Object.fromEntries([...this.machines].map(([id, m]) => [id, m.nspawnPid])) }),
    );
  }

  /** A value for every parameter the plan creates: generated secrets, real certificates, planned values. */
  private generateParameters(): Map<string, string> {
    const values = new Map(generateSecrets(this.model).byParameter);
    const p = this.model.parameters;
    values.set(p.caCert, this.internalCa.certPem);
    for (const h of this.model.allHosts) {
      const names = this.facts.certificateNames[h.id] ?? { dnsNames: [h.fqdn], ipAddresses: [] };
      const cert = issue(this.internalCa, path.join(this.runDir, "pki", "hosts"), h.id, names.dnsNames, names.ipAddresses);
      values.set(p.hostCert(h.id), cert.certPem);
      values.set(p.hostKey(h.id), cert.keyPem);
    }
    for (const param of this.facts.parameters) {
      if (values.has(param.name)) continue;
      if (param.value !== undefined) values.set(param.name, param.value);
      else if (param.type === "SecureString" && !/verifier/.test(param.name)) values.set(param.name, randomPassword(32));
      else throw new Error(`the fleet has no value for parameter ${param.name}: add it to Fleet.generateParameters`);
    }
    return values;
  }

  private async startEdge(configFile: string): Promise<void> {
    const net = this.network as FleetNetwork;
    const main = transpileEdge(path.join(this.runDir, "edge-js"));
    const child = spawn("nsenter", [`--net=${net.path}`, process.execPath, main, configFile], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_PATH: path.join(ROOT, "node_modules") },
    });
    this.edgeProcess = child;
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        this.edgeLog += d.toString("utf8");
        if (this.edgeLog.includes("edge ready")) resolve();
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.on("exit", (code) => reject(new Error(`the edge exited (${code}) before it was ready:\n${this.edgeLog}`)));
    });
    if ((await within(ready, 60_000)) === "timeout") throw new Error(`the edge did not start within 60 s:\n${this.edgeLog}`);
  }

  /** A request to the edge's control socket. */
  control(method: string, urlPath: string, data?: Buffer | string): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      // agent: false — a kept-alive socket the edge closed while a synchronous exec blocked the
      // event loop would fail the next request with EPIPE.
      const req = http.request({ socketPath: this.controlSocket, method, path: urlPath, agent: false }, async (res) => {
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
      });
      req.on("error", reject);
      req.end(data);
    });
  }

  async calls(): Promise<Call[]> {
    return JSON.parse((await this.control("GET", "/calls")).body.toString("utf8")) as Call[];
  }

  async metrics(): Promise<MetricDatum[]> {
    return JSON.parse((await this.control("GET", "/metrics")).body.toString("utf8")) as MetricDatum[];
  }

  async putObject(bucket: string, key: string, content: Buffer | string): Promise<void> {
    const r = await this.control("PUT", `/object?bucket=${encodeURIComponent(bucket)}&key=${encodeURIComponent(key)}`, content);
    if (r.status !== 200 || JSON.parse(r.body.toString()).status !== 200)
      throw new Error(`putting s3://${bucket}/${key} failed: ${r.body.toString()}`);
  }

  /** A bucket of the user's (e.g. for the custom addons artifact), as `aws s3 mb` makes one. */
  async createBucket(bucket: string): Promise<void> {
    const r = await this.control("PUT", `/bucket?name=${encodeURIComponent(bucket)}`);
    if (r.status !== 200 || ![200, 409].includes(JSON.parse(r.body.toString()).status))
      throw new Error(`creating s3://${bucket} failed: ${r.body.toString()}`);
  }

  /**
   * A new Odoo nightly appears on nightly.odoo.com while the hosts run (the stand-in package of
   * `build`); a host sees it after its own apt-get update of Odoo's source.
   */
  publishOdooBuild(build: string): string {
    if (this.options.odooDeb) throw new Error("the fleet runs a real Odoo package: it has no stand-in builds to publish");
    const version = `${this.model.settings.odooVersion}.${build}`;
    const debDir = path.join(this.runDir, "debs");
    fs.mkdirSync(debDir, { recursive: true });
    const repo =
      this.odooRepo ??
      buildOdooRepo(path.join(this.runDir, "odoo-repo"), path.join(this.runDir, "odoo-repo-gnupg"), this.model.settings.odooVersion, []);
    repo.publish([buildOdooStandin(debDir, version)]);
    return version;
  }

  async listObjects(bucket: string, prefix: string): Promise<string[]> {
    const r = await this.control("GET", `/list?bucket=${encodeURIComponent(bucket)}&prefix=${encodeURIComponent(prefix)}`);
    return [...r.body.toString("utf8").matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]);
  }

  async setParameter(name: string, value: string): Promise<number> {
    const r = await this.control("POST", "/parameter", JSON.stringify({ name, value }));
    return (JSON.parse(r.body.toString("utf8")) as { version: number }).version;
  }

  /**
   * Puts a plan's files and manifests in the config bucket, as `pulumi up` uploads them; returns
   * each host's association command (the manifest hash changes with the files).
   */
  async deliver(facts: PlanFacts, hosts: readonly string[] = facts.hosts.map((h) => h.id)): Promise<Map<string, string>> {
    const commands = new Map<string, string>();
    for (const h of facts.hosts.filter((x) => hosts.includes(x.id))) {
      // Files first, the manifest last: a run that fetches in between sees the old manifest.
      const files = deliveredFiles(facts.stackDir, h.id);
      for (const f of files.filter((x) => !x.key.endsWith("/manifest.json")))
        await this.putObject(facts.configBucket, f.key, fs.readFileSync(f.file));
      for (const f of files.filter((x) => x.key.endsWith("/manifest.json")))
        await this.putObject(facts.configBucket, f.key, fs.readFileSync(f.file));
      commands.set(h.id, h.associationCommand);
    }
    // The hosted zone: the plan's public A records, created or changed (a hostname per database).
    const records = JSON.parse((await this.control("GET", "/records")).body.toString("utf8")) as Record<string, string>;
    const changed = Object.entries(facts.publicRecords).filter(([name, ip]) => records[name] !== ip);
    if (changed.length > 0)
      await this.control("POST", "/records", JSON.stringify(changed.map(([name, ip]) => ({ action: "UPSERT", name, ip }))));
    // Parameters the new plan adds get their values, as `pulumi up` creates them.
    for (const param of facts.parameters) {
      if (this.parameterValues.has(param.name)) continue;
      if (param.value !== undefined) this.parameterValues.set(param.name, param.value);
      else if (param.type === "SecureString" && !/verifier/.test(param.name)) this.parameterValues.set(param.name, randomPassword(32));
      else throw new Error(`the fleet has no value for the new parameter ${param.name}: add it to Fleet.deliver`);
      await this.setParameter(param.name, this.parameterValues.get(param.name) as string);
    }
    return commands;
  }

  machine(host: string): Machine {
    const m = this.machines.get(host);
    if (!m) throw new Error(`no host ${host} in the fleet (${[...this.machines.keys()].join(", ")})`);
    return m;
  }

  /** Waits until every host has finished first boot; the report says how each one ended. */
  async waitForFirstBoot(): Promise<BootReport[]> {
    const timeout = (this.options.firstBootTimeoutSeconds ?? 900) * 1000;
    const reports = await Promise.all(
      [...this.machines.values()].map(async (m) => {
        const started = m.boots[m.boots.length - 1].startedAt;
        for (;;) {
          // result.json is written when cloud-init's last stage ends; status alone says "error"
          // as soon as one module failed, while later ones still run.
          const finished = m.sh("test -f /run/cloud-init/result.json").code === 0;
          const status = m.sh("cloud-init status 2>/dev/null | sed -n 's/^status: //p'").stdout.trim();
          const complete = m.sh(`test -f ${FIRSTBOOT_COMPLETE_MARKER}`).code === 0;
          if (finished && (complete || status !== "done")) {
            // Jobs first boot queued (a restart, a timer's first run) may still be finishing.
            const state = m.sh("timeout 120 systemctl is-system-running --wait", { timeoutMs: 130_000 }).stdout.trim();
            const failed = m.sh("systemctl list-units --failed --plain --no-legend | awk '{print $1}'").stdout.split("\n").filter(Boolean);
            const report = {
              host: m.spec.host,
              seconds: Math.round((Date.now() - started) / 1000),
              cloudInit: status,
              systemState: state,
              failedUnits: failed,
            };
            this.log(
              `${m.spec.host} first boot: cloud-init ${status}, system ${state}${failed.length ? ` (failed: ${failed.join(", ")})` : ""}, ${report.seconds} s`,
            );
            return report;
          }
          if (Date.now() - started > timeout)
            throw new Error(`${m.spec.host}: first boot did not finish within ${timeout / 1000} s (cloud-init: ${status || "?"})`);
          await sleep(3000);
        }
      }),
    );
    return reports;
  }

  /** What each host says about its boot: for failure messages. */
  evidence(): string {
    const parts: string[] = [];
    for (const m of this.machines.values()) {
      if (m.leader() === undefined) {
        const consoleTail = fs.existsSync(m.consoleLog) ? fs.readFileSync(m.consoleLog, "utf8").split("\n").slice(-30).join("\n") : "";
        parts.push(`--- ${m.spec.host}: not running; console:\n${consoleTail}`);
        continue;
      }
      const r = m.sh(
        `cloud-init status --long; tail -n 30 /var/log/cloud-init-output.log; systemctl list-units --failed --plain --no-legend; systemctl status ${FIRSTBOOT_UNIT} --no-pager | head -5; journalctl -u ${FIRSTBOOT_UNIT} -n 60 --no-pager`,
      );
      parts.push(`--- ${m.spec.host}:\n${r.stdout}${r.stderr}`);
    }
    if (this.edgeLog) parts.push(`--- edge:\n${this.edgeLog.split("\n").slice(-30).join("\n")}`);
    return parts.join("\n");
  }

  /** Runs a client command on "the internet" side of the fleet (inside its namespace). */
  client(command: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    return (this.network as FleetNetwork).exec(command, args, opts);
  }

  static readonly CLIENT_IP = CLIENT_IP;

  async destroy(): Promise<void> {
    if (this.attached) return;
    this.signalHandlers();
    await Promise.all([...this.machines.values()].map((m) => m.destroy().catch(() => undefined)));
    if (this.edgeProcess && this.edgeProcess.exitCode === null) {
      this.edgeProcess.kill("SIGTERM");
      await sleep(500);
      if (this.edgeProcess.exitCode === null) this.edgeProcess.kill("SIGKILL");
    }
    this.network?.destroy();
    if (!process.env.ODOO_STACK_FLEET_KEEP) fs.rmSync(this.runDir, { recursive: true, force: true });
  }
}

/** The nightly the fleet's Odoo repository serves beside the pinned build from the start. */
export const NEWER_ODOO_BUILD = "20250115";

/** How long after the proxy boots its Elastic IP shows in the instance metadata. */
export const EIP_ASSOCIATION_DELAY_SECONDS = 15;

const RUN_BASE = process.env.ODOO_STACK_FLEET_RUN_DIR ?? "/var/tmp";
const RUN_PREFIX = "odoo-stack-fleet-";

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Removes what an earlier run left behind when its process was killed before its cleanup:
 * containers, overlays, loop devices, cgroups, namespaces and run directories of runs whose
 * owner process is gone. A run of a live process is never touched.
 */
export function sweepStaleFleets(log: (line: string) => void): void {
  for (const entry of fs.existsSync(RUN_BASE) ? fs.readdirSync(RUN_BASE) : []) {
    if (!entry.startsWith(RUN_PREFIX)) continue;
    const runDir = path.join(RUN_BASE, entry);
    const ownerFile = path.join(runDir, "owner.pid");
    const owner = fs.existsSync(ownerFile) ? Number(fs.readFileSync(ownerFile, "utf8")) : NaN;
    if (Number.isFinite(owner) && alive(owner)) continue;
    log(`removing the leftovers of an interrupted run: ${runDir}`);
    const ns = `odoo-fleet-${owner}`;
    const sh = (script: string) => spawnSync("sh", ["-c", script], { stdio: "ignore", timeout: 60_000 });
    // Every process in the run's namespace (containers, edge), then their mounts and devices.
    sh(
      `for p in $(ip netns pids ${ns} 2>/dev/null); do kill -TERM $p; done; sleep 5; for p in $(ip netns pids ${ns} 2>/dev/null); do kill -KILL $p; done`,
    );
    sh(`for m in $(awk '$2 ~ "^${runDir}/" {print $2}' /proc/mounts | sort -r); do umount -l "$m"; done`);
    sh(`losetup -l -n -O NAME,BACK-FILE | awk '$2 ~ "^${runDir}/" {print $1}' | xargs -r -n1 losetup -d`);
    sh(`ip netns del ${ns} 2>/dev/null; true`);
    for (const root of ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"]) {
      const dir = path.join(root, "odoo-stack-fleet", entry);
      if (fs.existsSync(dir))
        sh(
          `find ${JSON.stringify(dir)} -depth -type d -exec rmdir {} + 2>/dev/null; rmdir ${JSON.stringify(path.dirname(dir))} 2>/dev/null; true`,
        );
    }
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}
