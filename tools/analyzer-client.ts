// Starts the CrossGuard pack the way the Pulumi CLI does and speaks the Analyzer gRPC protocol
// to it. No Pulumi CLI runs here, so this file plays the engine's part:
//   - spawn `node node_modules/@pulumi/pulumi/cmd/run-policy-pack <engine address> .` with cwd
//     policy/ and the CLI's environment (PULUMI_CONFIG, PULUMI_NODEJS_STACK, …); the pack
//     type-checks itself with ts-node and prints the port it serves on;
//   - Handshake, ConfigureStack, GetAnalyzerInfo, Configure with EVERY policy's enforcement level
//     and config, Analyze per resource, AnalyzeStack, then kill the process;
//   - marshal properties as the engine does for analyzers (MarshalOptions KeepUnknowns,
//     KeepSecrets, SkipInternalKeys; resource references become their id, else their URN).
// Reference: sdk/go/common/resource/plugin/analyzer_plugin.go (NewPolicyAnalyzer, Analyze,
// AnalyzeStack, Configure) and pkg/resource/deploy/step_generator.go in pulumi/pulumi.
import { spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as analyzerpb from "@pulumi/pulumi/proto/analyzer_pb";
import * as analyzerrpc from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as enginepb from "@pulumi/pulumi/proto/engine_pb";
import * as enginerpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as emptypb from "google-protobuf/google/protobuf/empty_pb";
import * as structpb from "google-protobuf/google/protobuf/struct_pb";
import { throwIfAny } from "../lib/problems";
import { RESOURCE_SIG, SIG_KEY, type CapturedResource } from "./mocks";

export type EnforcementLevel = "advisory" | "mandatory" | "disabled" | "remediate";
export const ENFORCEMENT_LEVELS: readonly EnforcementLevel[] = ["advisory", "mandatory", "disabled", "remediate"];

export interface PolicyDiagnostic {
  readonly policyName: string;
  readonly policyPackName: string;
  readonly policyPackVersion: string;
  readonly description: string;
  readonly message: string;
  readonly enforcementLevel: EnforcementLevel;
  /** The resource in violation; "" when a stack policy blames the whole stack. */
  readonly urn: string;
}

export interface PolicyConfigSchema {
  readonly properties: Readonly<Record<string, Record<string, unknown>>>;
  readonly required: readonly string[];
}

export interface PolicyInfo {
  readonly name: string;
  readonly displayName: string;
  readonly description: string;
  readonly enforcementLevel: EnforcementLevel;
  readonly type: "resource" | "stack" | "unknown";
  readonly configSchema: PolicyConfigSchema | undefined;
  readonly tags: readonly string[];
  readonly remediationSteps: string;
  readonly url: string;
}

export interface AnalyzerInfo {
  readonly name: string;
  readonly version: string;
  readonly supportsConfig: boolean;
  readonly policies: readonly PolicyInfo[];
  readonly initialConfig: Readonly<Record<string, PolicyConfigEntry>>;
}

/** What Configure sends for one policy. */
export interface PolicyConfigEntry {
  readonly enforcementLevel: EnforcementLevel;
  readonly properties: Readonly<Record<string, unknown>>;
}

/** The stack the pack is told about (ConfigureStack and the CLI's environment variables). */
export interface StackContext {
  readonly stack: string;
  readonly project: string;
  /** Optional. Defaults to "organization", what the CLI reports for DIY backends. */
  readonly organization?: string;
  /** Optional. Defaults to true (a preview). tools/plan.ts passes false: its mocks run as `pulumi up`. */
  readonly dryRun?: boolean;
  readonly config?: Readonly<Record<string, string>>;
  readonly secretKeys?: readonly string[];
  readonly tags?: Readonly<Record<string, string>>;
}

export interface AnalyzerResourceOptions {
  readonly protect?: boolean;
  readonly ignoreChanges?: readonly string[];
  readonly deleteBeforeReplace?: boolean;
  readonly additionalSecretOutputs?: readonly string[];
  readonly aliases?: readonly string[];
  /** Seconds, as the engine sends them. */
  readonly customTimeouts?: { readonly create: number; readonly update: number; readonly delete: number };
  readonly parent?: string;
}

export interface AnalyzerProvider {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly properties: Readonly<Record<string, unknown>>;
}

/** One resource for Analyze: properties in wire form (secrets as the engine marks them). */
export interface AnalyzerResourceInput {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly properties: Readonly<Record<string, unknown>>;
  readonly options?: AnalyzerResourceOptions;
  readonly provider?: AnalyzerProvider;
}

/** One resource for AnalyzeStack: its outputs, and where it sits in the graph. */
export interface AnalyzerStackResourceInput extends AnalyzerResourceInput {
  readonly parent?: string;
  readonly dependencies?: readonly string[];
  readonly propertyDependencies?: Readonly<Record<string, readonly string[]>>;
}

export interface EngineLog {
  readonly severity: "debug" | "info" | "warning" | "error";
  readonly message: string;
  readonly urn: string;
}

export interface StartOptions {
  /** Optional. Defaults to 120 s: ts-node type-checks the pack before it serves. */
  readonly startupTimeoutMs?: number;
  /** Optional. Defaults to 60 s per RPC. */
  readonly callTimeoutMs?: number;
  /** Optional. Sets the environment the CLI gives the pack; ConfigureStack still has to be called. */
  readonly context?: StackContext;
}

const LEVEL_TO_PROTO: Record<EnforcementLevel, analyzerpb.EnforcementLevel> = {
  advisory: analyzerpb.EnforcementLevel.ADVISORY,
  mandatory: analyzerpb.EnforcementLevel.MANDATORY,
  disabled: analyzerpb.EnforcementLevel.DISABLED,
  remediate: analyzerpb.EnforcementLevel.REMEDIATE,
};

function levelFromProto(level: analyzerpb.EnforcementLevel): EnforcementLevel {
  const found = ENFORCEMENT_LEVELS.find((l) => LEVEL_TO_PROTO[l] === level);
  if (!found) throw new Error(`the policy pack sent an unknown enforcement level ${level}`);
  return found;
}

const SEVERITY: Record<number, EngineLog["severity"]> = {
  [enginepb.LogSeverity.DEBUG]: "debug",
  [enginepb.LogSeverity.INFO]: "info",
  [enginepb.LogSeverity.WARNING]: "warning",
  [enginepb.LogSeverity.ERROR]: "error",
};

// ---------------------------------------------------------------------------------------------
// Property marshalling, as the engine does it for analyzers

/**
 * Wire form → what the engine sends analyzers: keys starting with "__" dropped (SkipInternalKeys),
 * resource references replaced by their id or, for components, their URN (KeepResources is off),
 * secrets, assets and unknowns kept as they are.
 */
export function analyzerWire(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(analyzerWire);
  if (typeof value !== "object" || value === null) return value;
  const record = value as Record<string, unknown>;
  if (record[SIG_KEY] === RESOURCE_SIG) {
    return typeof record.id === "string" && record.id !== "" ? record.id : record.urn;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) {
    if (k.startsWith("__")) continue;
    out[k] = analyzerWire(v);
  }
  return out;
}

const toStruct = (props: Readonly<Record<string, unknown>>): structpb.Struct =>
  structpb.Struct.fromJavaScript(analyzerWire(props) as Record<string, structpb.JavaScriptValue>);

/** Go duration text ("5m", "1h30m", "90s") → seconds; "" → 0. */
export function durationSeconds(text: string): number {
  if (text.trim() === "") return 0;
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6, µs: 1e-6, ns: 1e-9 };
  let total = 0;
  let rest = text.trim();
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/.exec(rest);
    if (!m) throw new Error(`custom timeout "${text}" is not a duration like "10m" or "1h30m"`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

function resourceOptions(o: AnalyzerResourceOptions | undefined): analyzerpb.AnalyzerResourceOptions {
  const opts = new analyzerpb.AnalyzerResourceOptions();
  opts.setProtect(o?.protect ?? false);
  opts.setIgnorechangesList([...(o?.ignoreChanges ?? [])]);
  opts.setDeletebeforereplace(o?.deleteBeforeReplace ?? false);
  opts.setDeletebeforereplacedefined(o?.deleteBeforeReplace !== undefined);
  opts.setAdditionalsecretoutputsList([...(o?.additionalSecretOutputs ?? [])]);
  opts.setAliasesList([...(o?.aliases ?? [])]);
  const timeouts = new analyzerpb.AnalyzerResourceOptions.CustomTimeouts();
  timeouts.setCreate(o?.customTimeouts?.create ?? 0);
  timeouts.setUpdate(o?.customTimeouts?.update ?? 0);
  timeouts.setDelete(o?.customTimeouts?.delete ?? 0);
  opts.setCustomtimeouts(timeouts);
  opts.setParent(o?.parent ?? "");
  return opts;
}

function providerMessage(p: AnalyzerProvider | undefined): analyzerpb.AnalyzerProviderResource | undefined {
  if (!p) return undefined;
  const msg = new analyzerpb.AnalyzerProviderResource();
  msg.setUrn(p.urn);
  msg.setType(p.type);
  msg.setName(p.name);
  msg.setProperties(toStruct(p.properties));
  return msg;
}

/** `subject` is the analyzed resource's URN: the engine files a resource policy's violation under it. */
function diagnosticsOf(resp: analyzerpb.AnalyzeResponse, subject = ""): PolicyDiagnostic[] {
  return resp.getDiagnosticsList().map((d) => ({
    policyName: d.getPolicyname(),
    policyPackName: d.getPolicypackname(),
    policyPackVersion: d.getPolicypackversion(),
    description: d.getDescription(),
    message: d.getMessage(),
    enforcementLevel: levelFromProto(d.getEnforcementlevel()),
    urn: d.getUrn() || subject,
  }));
}

/**
 * Captured resources (tools/mocks.ts) → what the engine sends: per-resource Analyze gets the
 * inputs, AnalyzeStack gets the outputs with parent and dependencies. Explicit providers are
 * attached with their inputs; the engine's default providers do not exist under mocks, so
 * resources on a default provider carry none.
 */
export function analyzerResourcesFrom(captured: readonly CapturedResource[]): {
  readonly analyze: readonly AnalyzerResourceInput[];
  readonly stack: readonly AnalyzerStackResourceInput[];
} {
  const byUrn = new Map(captured.map((r) => [r.urn, r]));
  const providerOf = (ref: string): AnalyzerProvider | undefined => {
    if (!ref) return undefined;
    const urn = ref.slice(0, ref.lastIndexOf("::"));
    const p = byUrn.get(urn);
    return p ? { urn: p.urn, type: p.type, name: p.name, properties: p.inputs } : undefined;
  };
  const optionsOf = (r: CapturedResource): AnalyzerResourceOptions => ({
    protect: r.protect,
    ignoreChanges: r.ignoreChanges,
    deleteBeforeReplace: r.deleteBeforeReplace,
    additionalSecretOutputs: r.additionalSecretOutputs,
    aliases: r.aliases,
    customTimeouts: r.customTimeouts && {
      create: durationSeconds(r.customTimeouts.create),
      update: durationSeconds(r.customTimeouts.update),
      delete: durationSeconds(r.customTimeouts.delete),
    },
    parent: r.parent,
  });
  const analyze = captured.map((r) => ({
    urn: r.urn,
    type: r.type,
    name: r.name,
    properties: r.inputs,
    options: optionsOf(r),
    provider: providerOf(r.provider),
  }));
  const stack = captured.map((r) => ({
    urn: r.urn,
    type: r.type,
    name: r.name,
    properties: r.outputs,
    options: optionsOf(r),
    provider: providerOf(r.provider),
    parent: r.parent,
    dependencies: r.dependencies,
    propertyDependencies: r.propertyDependencies,
  }));
  return { analyze, stack };
}

// ---------------------------------------------------------------------------------------------
// Policy configuration (the CLI's --policy-pack-config file)

/** The file's shape: "all" or a policy name → a level, or {enforcementLevel?, ...properties}. */
export type PolicyConfigFile = Readonly<Record<string, EnforcementLevel | Readonly<Record<string, unknown>>>>;

export function readPolicyConfigFile(file: string): PolicyConfigFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`policy config ${file}: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`policy config ${file}: expected a JSON object of policy name → level or settings`);
  }
  return parsed as PolicyConfigFile;
}

const isLevel = (v: unknown): v is EnforcementLevel => typeof v === "string" && (ENFORCEMENT_LEVELS as readonly string[]).includes(v);

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/**
 * Every policy's level and settings, as the CLI sends them: the policy's own level, then the
 * pack's initial config, then the file's "all", then the file's entry for the policy; settings
 * start from the schema's defaults. Unknown policies, unknown levels, missing required settings
 * and settings of the wrong type are errors, reported together.
 */
export function buildPolicyConfig(info: AnalyzerInfo, file: PolicyConfigFile = {}): Record<string, PolicyConfigEntry> {
  const problems: string[] = [];
  const names = new Set(info.policies.map((p) => p.name));
  const split = (key: string, v: unknown): { level?: EnforcementLevel; props: Record<string, unknown> } => {
    if (typeof v === "string") {
      if (!isLevel(v)) problems.push(`"${key}": "${v}" is not an enforcement level (${ENFORCEMENT_LEVELS.join(", ")})`);
      return { level: isLevel(v) ? v : undefined, props: {} };
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      problems.push(`"${key}": expected an enforcement level or an object of settings`);
      return { props: {} };
    }
    const { enforcementLevel, ...props } = v as Record<string, unknown>;
    if (enforcementLevel !== undefined && !isLevel(enforcementLevel)) {
      problems.push(
        `"${key}".enforcementLevel: "${String(enforcementLevel)}" is not an enforcement level (${ENFORCEMENT_LEVELS.join(", ")})`,
      );
    }
    return { level: isLevel(enforcementLevel) ? enforcementLevel : undefined, props };
  };
  for (const key of Object.keys(file)) {
    if (key !== "all" && !names.has(key)) {
      problems.push(`"${key}" is not a policy of ${info.name}; its policies: ${[...names].sort().join(", ")}`);
    }
  }
  const all = file.all === undefined ? undefined : split("all", file.all);
  if (all && Object.keys(all.props).length > 0) problems.push(`"all" takes only an enforcement level`);

  const config: Record<string, PolicyConfigEntry> = {};
  for (const policy of info.policies) {
    const initial = info.initialConfig[policy.name];
    const own = file[policy.name] === undefined ? undefined : split(policy.name, file[policy.name]);
    const schema = policy.configSchema;
    const defaults = Object.fromEntries(
      Object.entries(schema?.properties ?? {})
        .filter(([, s]) => s.default !== undefined)
        .map(([k, s]) => [k, s.default]),
    );
    const properties = { ...defaults, ...(initial?.properties ?? {}), ...(own?.props ?? {}) };
    for (const [key, value] of Object.entries(own?.props ?? {})) {
      const expected = schema?.properties[key]?.type;
      if (!schema || !(key in schema.properties)) {
        problems.push(`"${policy.name}".${key}: the policy has no setting "${key}"`);
      } else if (
        typeof expected === "string" &&
        jsonType(value) !== expected &&
        !(expected === "number" && jsonType(value) === "integer")
      ) {
        problems.push(`"${policy.name}".${key}: expected ${expected}, got ${jsonType(value)}`);
      }
    }
    for (const key of schema?.required ?? []) {
      if (properties[key] === undefined) problems.push(`"${policy.name}".${key}: required setting is missing`);
    }
    config[policy.name] = {
      enforcementLevel: own?.level ?? all?.level ?? initial?.enforcementLevel ?? policy.enforcementLevel,
      properties,
    };
  }
  throwIfAny("policy config", problems);
  return config;
}

// ---------------------------------------------------------------------------------------------
// The engine's side: a minimal Engine service for the pack's log calls

class EngineServer {
  readonly logs: EngineLog[] = [];
  private readonly server = new grpc.Server();
  address = "";

  async start(): Promise<string> {
    const empty = () => new emptypb.Empty();
    const impl: enginerpc.IEngineServer = {
      log: (call, cb) => {
        const req = call.request;
        this.logs.push({ severity: SEVERITY[req.getSeverity()] ?? "info", message: req.getMessage(), urn: req.getUrn() });
        cb(null, empty());
      },
      getRootResource: (_call, cb) => cb(null, new enginepb.GetRootResourceResponse()),
      setRootResource: (_call, cb) => cb(null, new enginepb.SetRootResourceResponse()),
      startDebugging: (_call, cb) => cb(null, empty()),
      requirePulumiVersion: (_call, cb) => cb(null, new enginepb.RequirePulumiVersionResponse()),
    };
    this.server.addService(enginerpc.EngineService, impl);
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.address = `127.0.0.1:${port}`;
    return this.address;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------
// The client

const tail = (lines: readonly string[], n = 25): string => lines.slice(-n).join("\n");

export class PolicyPackClient {
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitPromise: Promise<void>;

  private constructor(
    readonly policyDir: string,
    private readonly child: ChildProcess,
    private readonly engine: EngineServer,
    private readonly rpc: analyzerrpc.AnalyzerClient,
    /** The address the pack serves on. */
    readonly address: string,
    /** Milliseconds from spawn to the printed port: mostly ts-node type-checking the pack. */
    readonly startupMs: number,
    private readonly callTimeoutMs: number,
    private readonly stdout: string[],
    private readonly stderr: string[],
  ) {
    this.exitPromise = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        this.exited = { code: child.exitCode, signal: child.signalCode };
        resolve();
        return;
      }
      child.once("exit", (code, signal) => {
        this.exited = { code, signal };
        resolve();
      });
    });
  }

  /** Log calls the pack made to the engine. */
  get logs(): readonly EngineLog[] {
    return this.engine.logs;
  }

  /** What the pack printed (console.log / console.error in policies end up here, as with the CLI). */
  get output(): { readonly stdout: readonly string[]; readonly stderr: readonly string[] } {
    return { stdout: this.stdout, stderr: this.stderr };
  }

  static async start(policyDir: string, options: StartOptions = {}): Promise<PolicyPackClient> {
    const dir = path.resolve(policyDir);
    const runner = path.join("node_modules", "@pulumi", "pulumi", "cmd", "run-policy-pack");
    if (!fs.existsSync(path.join(dir, "PulumiPolicy.yaml"))) throw new Error(`${dir} is not a policy pack: PulumiPolicy.yaml is missing`);
    if (!fs.existsSync(path.join(dir, runner))) {
      throw new Error(`the policy pack's dependencies are not installed; run npm ci --prefix ${path.relative(process.cwd(), dir) || "."}`);
    }
    const engine = new EngineServer();
    const engineAddress = await engine.start();
    const started = Date.now();
    const child = spawn(process.execPath, [runner, engineAddress, "."], {
      cwd: dir,
      env: { ...process.env, ...cliEnvironment(options.context) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stdout: string[] = [];
    const stderr: string[] = [];
    const startupTimeoutMs = options.startupTimeoutMs ?? 120_000;
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let buffered = "";
        let port: number | undefined;
        const timer = setTimeout(
          () => reject(new Error(`policy pack in ${dir} printed no port within ${startupTimeoutMs / 1000}s\n${tail(stderr)}`)),
          startupTimeoutMs,
        );
        child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
          buffered += chunk;
          const lines = buffered.split("\n");
          buffered = lines.pop() ?? "";
          for (const line of lines) {
            if (port === undefined && /^\d+$/.test(line.trim())) {
              port = Number(line.trim());
              clearTimeout(timer);
              resolve(port);
            } else {
              stdout.push(line);
            }
          }
        });
        child.stderr?.setEncoding("utf8").on("data", (chunk: string) => stderr.push(...chunk.split("\n").filter((l) => l !== "")));
        child.once("error", (err) => {
          clearTimeout(timer);
          reject(err);
        });
        child.once("exit", (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`policy pack in ${dir} exited (${signal ?? `code ${code}`}) before serving:\n${tail([...stdout, ...stderr])}`));
        });
      });
      const address = `127.0.0.1:${port}`;
      const rpc = new analyzerrpc.AnalyzerClient(address, grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": 400 * 1024 * 1024,
        "grpc.max_send_message_length": 400 * 1024 * 1024,
      });
      const client = new PolicyPackClient(
        dir,
        child,
        engine,
        rpc,
        address,
        Date.now() - started,
        options.callTimeoutMs ?? 60_000,
        stdout,
        stderr,
      );
      await client.handshake(engineAddress, dir);
      return client;
    } catch (err) {
      child.kill("SIGKILL");
      await engine.stop();
      throw err;
    }
  }

  private call<Req, Resp>(
    method: string,
    invoke: (
      req: Req,
      metadata: grpc.Metadata,
      options: Partial<grpc.CallOptions>,
      cb: (err: grpc.ServiceError | null, resp: Resp) => void,
    ) => unknown,
    req: Req,
  ): Promise<Resp> {
    if (this.exited) return Promise.reject(this.deadError(method));
    return new Promise((resolve, reject) => {
      invoke.call(
        this.rpc,
        req,
        new grpc.Metadata(),
        { deadline: Date.now() + this.callTimeoutMs },
        (err: grpc.ServiceError | null, resp: Resp) => {
          if (!err) return resolve(resp);
          if (err.code === grpc.status.DEADLINE_EXCEEDED) {
            return reject(
              new Error(`${method} timed out after ${this.callTimeoutMs / 1000}s: the policy pack did not answer\n${tail(this.stderr)}`),
            );
          }
          if (this.exited || err.code === grpc.status.UNAVAILABLE) return reject(this.deadError(method, err));
          const wrapped = new Error(`${method} failed: ${err.details || err.message}`) as Error & { code?: number };
          wrapped.code = err.code;
          reject(wrapped);
        },
      );
    });
  }

  private deadError(method: string, err?: grpc.ServiceError): Error {
    const how = this.exited ? `exited (${this.exited.signal ?? `code ${this.exited.code}`})` : `is unreachable (${err?.details ?? ""})`;
    return new Error(`${method}: the policy pack ${how}\n${tail([...this.stdout, ...this.stderr])}`);
  }

  /** The CLI's first call; packs that predate it answer UNIMPLEMENTED, which the CLI accepts too. */
  private async handshake(engineAddress: string, dir: string): Promise<void> {
    const req = new analyzerpb.AnalyzerHandshakeRequest();
    req.setEngineAddress(engineAddress);
    req.setRootDirectory(dir);
    req.setProgramDirectory(dir);
    try {
      await this.call("Handshake", this.rpc.handshake, req);
    } catch (err) {
      if ((err as { code?: number }).code !== grpc.status.UNIMPLEMENTED) throw err;
    }
  }

  async configureStack(ctx: StackContext): Promise<void> {
    const req = new analyzerpb.AnalyzerStackConfigureRequest();
    req.setStack(ctx.stack);
    req.setProject(ctx.project);
    req.setOrganization(ctx.organization ?? "organization");
    req.setDryRun(ctx.dryRun ?? true);
    req.setConfigSecretKeysList([...(ctx.secretKeys ?? [])]);
    for (const [k, v] of Object.entries(ctx.config ?? {})) req.getConfigMap().set(k, v);
    for (const [k, v] of Object.entries(ctx.tags ?? {})) req.getTagsMap().set(k, v);
    await this.call("ConfigureStack", this.rpc.configureStack, req);
  }

  async getAnalyzerInfo(): Promise<AnalyzerInfo> {
    const info = await this.call("GetAnalyzerInfo", this.rpc.getAnalyzerInfo, new emptypb.Empty());
    const initialConfig: Record<string, PolicyConfigEntry> = {};
    info.getInitialconfigMap().forEach((c, name) => {
      initialConfig[name] = {
        enforcementLevel: levelFromProto(c.getEnforcementlevel()),
        properties: (c.getProperties()?.toJavaScript() as Record<string, unknown> | undefined) ?? {},
      };
    });
    return {
      name: info.getName(),
      version: info.getVersion(),
      supportsConfig: info.getSupportsconfig(),
      initialConfig,
      policies: info.getPoliciesList().map((p) => {
        const schema = p.getConfigschema();
        return {
          name: p.getName(),
          displayName: p.getDisplayname(),
          description: p.getDescription(),
          enforcementLevel: levelFromProto(p.getEnforcementlevel()),
          type:
            p.getPolicyType() === analyzerpb.PolicyType.POLICY_TYPE_RESOURCE
              ? "resource"
              : p.getPolicyType() === analyzerpb.PolicyType.POLICY_TYPE_STACK
                ? "stack"
                : "unknown",
          configSchema: schema && {
            properties: (schema.getProperties()?.toJavaScript() ?? {}) as Record<string, Record<string, unknown>>,
            required: schema.getRequiredList(),
          },
          tags: p.getTagsList(),
          remediationSteps: p.getRemediationSteps(),
          url: p.getUrl(),
        };
      }),
    };
  }

  /** Sends every entry; build it with buildPolicyConfig so no policy is left out. */
  async configure(config: Readonly<Record<string, PolicyConfigEntry>>): Promise<void> {
    const req = new analyzerpb.ConfigureAnalyzerRequest();
    for (const [name, entry] of Object.entries(config)) {
      const c = new analyzerpb.PolicyConfig();
      c.setEnforcementlevel(LEVEL_TO_PROTO[entry.enforcementLevel]);
      // Always set: the policy SDK reads getProperties().toJavaScript() without a guard.
      c.setProperties(structpb.Struct.fromJavaScript(entry.properties as Record<string, structpb.JavaScriptValue>));
      req.getPolicyconfigMap().set(name, c);
    }
    await this.call("Configure", this.rpc.configure, req);
  }

  async analyze(resource: AnalyzerResourceInput): Promise<PolicyDiagnostic[]> {
    const req = new analyzerpb.AnalyzeRequest();
    req.setUrn(resource.urn);
    req.setType(resource.type);
    req.setName(resource.name);
    req.setProperties(toStruct(resource.properties));
    req.setOptions(resourceOptions(resource.options));
    req.setProvider(providerMessage(resource.provider));
    return diagnosticsOf(await this.call(`Analyze(${resource.urn})`, this.rpc.analyze, req), resource.urn);
  }

  async analyzeStack(resources: readonly AnalyzerStackResourceInput[]): Promise<PolicyDiagnostic[]> {
    const req = new analyzerpb.AnalyzeStackRequest();
    req.setResourcesList(
      resources.map((r) => {
        const msg = new analyzerpb.AnalyzerResource();
        msg.setUrn(r.urn);
        msg.setType(r.type);
        msg.setName(r.name);
        msg.setProperties(toStruct(r.properties));
        msg.setOptions(resourceOptions(r.options));
        msg.setProvider(providerMessage(r.provider));
        msg.setParent(r.parent ?? "");
        msg.setDependenciesList([...(r.dependencies ?? [])]);
        for (const [key, urns] of Object.entries(r.propertyDependencies ?? {})) {
          // The engine skips properties without dependencies.
          if (urns.length === 0) continue;
          const deps = new analyzerpb.AnalyzerPropertyDependencies();
          deps.setUrnsList([...urns]);
          msg.getPropertydependenciesMap().set(key, deps);
        }
        return msg;
      }),
    );
    return diagnosticsOf(await this.call("AnalyzeStack", this.rpc.analyzeStack, req));
  }

  /** Stops the pack (SIGTERM, SIGKILL after 5 s) and the engine server; safe to call twice. */
  async close(): Promise<void> {
    this.rpc.close();
    if (!this.exited) {
      this.child.kill("SIGTERM");
      const killer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
      await this.exitPromise;
      clearTimeout(killer);
    }
    await this.engine.stop();
  }
}

/** The variables NewPolicyAnalyzer's constructEnv gives a Node.js pack. */
function cliEnvironment(ctx: StackContext | undefined): Record<string, string> {
  if (!ctx) return {};
  const env: Record<string, string> = {};
  const set = (k: string, v: string | undefined) => {
    if (v) env[k] = v;
  };
  if (ctx.config && Object.keys(ctx.config).length > 0) set("PULUMI_CONFIG", JSON.stringify(ctx.config));
  const organization = ctx.organization ?? "organization";
  const dryRun = String(ctx.dryRun ?? true);
  for (const prefix of ["PULUMI_NODEJS_", "PULUMI_"]) {
    set(`${prefix}ORGANIZATION`, organization);
    set(`${prefix}PROJECT`, ctx.project);
    set(`${prefix}STACK`, ctx.stack);
    set(`${prefix}DRY_RUN`, dryRun);
  }
  return env;
}

export const startPolicyPack = (policyDir: string, options?: StartOptions): Promise<PolicyPackClient> =>
  PolicyPackClient.start(policyDir, options);
