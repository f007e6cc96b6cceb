// Runs a Pulumi program offline under `pulumi.runtime.setMocks` and captures every resource the
// way the engine sees it: type, name, parent, dependencies, provider, options, and the raw input
// struct with its secret markers. tools/plan.ts and the component tests use it; the captured
// resources go to the policy pack over gRPC (tools/analyzer-client.ts).
//
// Mode: the program runs as in `pulumi up` (setMocks preview = false). Every output the mocks
// return is known, so apply() callbacks run and the rendered files exist; that is also what the
// policy pack sees during an update, when a resource's dependencies are already created. In a
// `pulumi preview` of a new stack the same outputs would be unknown.
//
// One program at a time per process: the Pulumi runtime keeps its state in a process-wide store.
// runProgram resets it (setMocks → resetOptions, setAllConfig), so a jest file may run several
// programs one after another, never concurrently.
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import type * as resproto from "@pulumi/pulumi/proto/resource_pb";
import type * as structproto from "google-protobuf/google/protobuf/struct_pb";
import { DEBIAN_AMI_OWNER } from "../lib/aws-specs";
import { knownInstanceType } from "../lib/instance-types";

/** Wire markers (sdk/go/common/resource/properties.go), as the engine sends them to analyzers. */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";
export const ROOT_STACK_TYPE = "pulumi:pulumi:Stack";

/** The AWS account every mock ARN and identity names. */
export const MOCK_ACCOUNT_ID = "123456789012";

/** A JSON value in the engine's wire form: secrets are `{[SIG_KEY]: SECRET_SIG, value}`. */
export type WireValue = unknown;

export interface CustomTimeoutsSpec {
  readonly create: string;
  readonly update: string;
  readonly delete: string;
}

/** One resource registration as the engine received it. */
export interface CapturedResource {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  /** false for component resources and the stack. */
  readonly custom: boolean;
  /** True when the program read an existing resource (`Resource.get`) instead of declaring one. */
  readonly read: boolean;
  /** Parent URN; "" only for the stack resource. */
  readonly parent: string;
  /** The id the mock returned; "" for components. */
  readonly id: string;
  readonly dependencies: readonly string[];
  readonly propertyDependencies: Readonly<Record<string, readonly string[]>>;
  /** Provider reference "<provider urn>::<provider id>"; "" means the default provider. */
  readonly provider: string;
  readonly protect: boolean;
  readonly ignoreChanges: readonly string[];
  readonly deleteBeforeReplace: boolean | undefined;
  readonly additionalSecretOutputs: readonly string[];
  readonly aliases: readonly string[];
  readonly customTimeouts: CustomTimeoutsSpec | undefined;
  /** The inputs struct the SDK sent, wire form (secret markers kept). */
  readonly inputs: Readonly<Record<string, WireValue>>;
  /** Custom resources: the mock's state; components and the stack: their registered outputs. */
  readonly outputs: Readonly<Record<string, WireValue>>;
}

export interface ProgramRun {
  /** Every registration, in registration order (the stack first). */
  readonly resources: readonly CapturedResource[];
  /** The stack outputs, wire form (secret outputs keep their marker; see plainValue). */
  readonly outputs: Readonly<Record<string, WireValue>>;
  /** Every invoke the program made, in order. */
  readonly calls: readonly { readonly token: string; readonly inputs: Readonly<Record<string, unknown>> }[];
}

export type ProgramResult = Record<string, unknown> | void | undefined;

export interface RunProgramOptions {
  readonly stack: string;
  readonly project: string;
  /** Config as the CLI passes it (PULUMI_CONFIG): "namespace:key" → string (JSON for objects). */
  readonly config: Readonly<Record<string, string>>;
  /** Keys of `config` that are secrets. */
  readonly secretKeys?: readonly string[];
  /** Optional. Defaults to "organization", what the CLI reports for DIY backends. */
  readonly organization?: string;
  /** The program: resources created inside it are parented to the stack, like `pulumi up`. */
  readonly program: () => ProgramResult | Promise<ProgramResult>;
  /** Optional. More computed attributes for a resource, merged over the built-in ones. */
  readonly extraState?: (args: pulumi.runtime.MockResourceArgs) => Record<string, unknown> | undefined;
  /** Optional. Answers invokes the built-in mocks do not know; return undefined to fall through. */
  readonly extraCall?: (args: pulumi.runtime.MockCallArgs) => Record<string, unknown> | undefined;
}

// ---------------------------------------------------------------------------------------------
// Wire-form helpers

export const isSecretWire = (v: unknown): v is { readonly value: unknown } =>
  typeof v === "object" && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;

/** The value with every secret marker removed (resource references stay as they are). */
export function plainValue(v: WireValue): unknown {
  if (isSecretWire(v)) return plainValue(v.value);
  if (Array.isArray(v)) return v.map(plainValue);
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainValue(x)]));
  }
  return v;
}

/** The value with every secret replaced by `replacement` (what out/<stack>/resources.json shows). */
export function redactSecrets(v: WireValue, replacement: unknown = "[secret]"): unknown {
  if (isSecretWire(v)) return replacement;
  if (Array.isArray(v)) return v.map((x) => redactSecrets(x, replacement));
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactSecrets(x, replacement)]));
  }
  return v;
}

const secretWire = (value: unknown): Record<string, unknown> => ({ [SIG_KEY]: SECRET_SIG, value: value ?? null });

// ---------------------------------------------------------------------------------------------
// Deterministic fakes: the same program gives the same ids, addresses and ARNs on every run, so
// rendered files and goldens are stable. Only @pulumi/random values are truly random.

const digest = (...parts: string[]): Buffer => crypto.createHash("sha256").update(parts.join("\u0000")).digest();
const hexOf = (n: number, ...parts: string[]): string =>
  digest(...parts)
    .toString("hex")
    .slice(0, n);

/** An address in `prefix` (e.g. "10", "203.0.113") derived from the resource's identity. */
function fakeAddress(prefix: string, ...parts: string[]): string {
  const bytes = digest(...parts);
  const fixed = prefix.split(".").length;
  const rest = Array.from({ length: 4 - fixed }, (_, i) => (i === 3 - fixed ? 10 + (bytes[i] % 240) : bytes[i]));
  return [prefix, ...rest].join(".");
}

/** PEM-framed text whose body decodes to a plain statement that it is a mock. Not a key. */
function mockPem(label: string, ...facts: string[]): string {
  const body = Buffer.from(`odoo-stack offline mock ${label.toLowerCase()}, not key material: ${facts.join("; ")}`).toString("base64");
  const lines = body.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

const MOCK_EPOCH_MS = Date.UTC(2025, 0, 1);
const rfc3339 = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function randomFrom(alphabet: string, n: number): string {
  return Array.from({ length: n }, () => alphabet[crypto.randomInt(alphabet.length)]).join("");
}

/** @pulumi/random's RandomPassword / RandomString rules: length, classes, minimum counts. */
function randomPasswordResult(inputs: Record<string, unknown>): string {
  const length = Number(inputs.length ?? 16);
  const on = (k: string) => inputs[k] !== false;
  const classes: { readonly alphabet: string; readonly min: number }[] = [];
  if (on("lower")) classes.push({ alphabet: "abcdefghijklmnopqrstuvwxyz", min: Number(inputs.minLower ?? 0) });
  if (on("upper")) classes.push({ alphabet: "ABCDEFGHIJKLMNOPQRSTUVWXYZ", min: Number(inputs.minUpper ?? 0) });
  if (on("numeric") && on("number")) classes.push({ alphabet: "0123456789", min: Number(inputs.minNumeric ?? 0) });
  if (on("special")) {
    const special = typeof inputs.overrideSpecial === "string" ? inputs.overrideSpecial : "!@#$%&*()-_=+[]{}<>:?";
    classes.push({ alphabet: special, min: Number(inputs.minSpecial ?? 0) });
  }
  if (classes.length === 0) throw new Error("random password mock: every character class is disabled");
  const chars = classes.flatMap((c) => randomFrom(c.alphabet, c.min).split(""));
  const all = classes.map((c) => c.alphabet).join("");
  chars.push(...randomFrom(all, Math.max(0, length - chars.length)).split(""));
  for (let i = chars.length - 1; i > 0; i--) {
    const j = crypto.randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j], chars[i]];
  }
  return chars.join("");
}

interface StateContext {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  readonly region: string;
}

/** Pulumi auto-names these when the program gives no name: `${logical name}-${7 hex}`. */
const AUTONAMED = new Set([
  "aws:ec2/securityGroup:SecurityGroup",
  "aws:iam/role:Role",
  "aws:iam/instanceProfile:InstanceProfile",
  "aws:iam/policy:Policy",
  "aws:sns/topic:Topic",
  "aws:ec2/launchTemplate:LaunchTemplate",
  "aws:rds/parameterGroup:ParameterGroup",
  "aws:rds/subnetGroup:SubnetGroup",
]);

/** "arn:aws:<service>:<region>:<account>:<type>/<name>", with the services whose ARNs differ spelled out. */
function arnOf(c: StateContext, state: Record<string, unknown>): string {
  const [, module = "", member = ""] = /^aws:([^/]+)\/([^:]+):/.exec(c.type) ?? [];
  const resourceName = String(state.name ?? c.name);
  // ARNs spell resource types in kebab case: securityGroup → security-group, instanceProfile → instance-profile.
  const kind = member.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`);
  switch (module) {
    case "iam":
      return `arn:aws:iam::${MOCK_ACCOUNT_ID}:${kind}/${resourceName}`;
    case "s3":
      return `arn:aws:s3:::${String(state.bucket ?? resourceName)}`;
    case "ssm":
      return `arn:aws:ssm:${c.region}:${MOCK_ACCOUNT_ID}:parameter${resourceName.startsWith("/") ? "" : "/"}${resourceName}`;
    case "sns":
      return `arn:aws:sns:${c.region}:${MOCK_ACCOUNT_ID}:${resourceName}`;
    case "cloudwatch":
      return member === "logGroup"
        ? `arn:aws:logs:${c.region}:${MOCK_ACCOUNT_ID}:log-group:${resourceName}`
        : `arn:aws:cloudwatch:${c.region}:${MOCK_ACCOUNT_ID}:${kind}/${resourceName}`;
    default:
      return `arn:aws:${module}:${c.region}:${MOCK_ACCOUNT_ID}:${kind}/${resourceName}`;
  }
}

/** Attributes the provider computes and programs read, per type. Inputs are plain (no secret markers). */
function computedState(c: StateContext): Record<string, unknown> {
  const { type, name, inputs, region } = c;
  const id = (n: number) => hexOf(n, type, name);
  switch (type) {
    case "aws:ec2/instance:Instance": {
      const privateIp = typeof inputs.privateIp === "string" ? inputs.privateIp : fakeAddress("10", type, name);
      const publicIp = inputs.associatePublicIpAddress === true ? fakeAddress("203.0.113", type, name) : "";
      return {
        privateIp,
        privateDns: `ip-${privateIp.replace(/\./g, "-")}.${region}.compute.internal`,
        publicIp,
        publicDns: publicIp ? `ec2-${publicIp.replace(/\./g, "-")}.${region}.compute.amazonaws.com` : "",
        primaryNetworkInterfaceId: `eni-${id(17)}`,
        instanceState: "running",
      };
    }
    case "aws:ec2/eip:Eip":
      return { allocationId: `eipalloc-${id(17)}`, publicIp: fakeAddress("198.51.100", type, name), domain: "vpc" };
    case "aws:route53/zone:Zone":
      return {
        zoneId: `Z${id(20).toUpperCase()}`,
        nameServers: [`ns-1.awsdns-01.org`, `ns-2.awsdns-02.co.uk`, `ns-3.awsdns-03.com`, `ns-4.awsdns-04.net`],
      };
    case "aws:route53/record:Record":
      return { fqdn: String(inputs.name ?? name) };
    case "aws:s3/bucket:Bucket":
    case "aws:s3/bucketV2:BucketV2": {
      const bucket = typeof inputs.bucket === "string" ? inputs.bucket : `${name}-${id(7)}`;
      return {
        bucket,
        bucketDomainName: `${bucket}.s3.amazonaws.com`,
        bucketRegionalDomainName: `${bucket}.s3.${region}.amazonaws.com`,
        region,
      };
    }
    case "aws:s3/bucketObjectv2:BucketObjectv2":
    case "aws:s3/bucketObject:BucketObject":
      return {
        etag: crypto
          .createHash("md5")
          .update(String(inputs.content ?? ""))
          .digest("hex"),
        versionId: "",
      };
    case "aws:ec2/vpc:Vpc":
      return { defaultSecurityGroupId: `sg-${id(17)}`, mainRouteTableId: `rtb-${id(17)}`, defaultNetworkAclId: `acl-${id(17)}` };
    case "aws:iam/role:Role":
      return { uniqueId: `AROA${id(17).toUpperCase()}` };
    case "aws:kms/key:Key":
      return { keyId: `${id(8)}-${id(4)}-${id(4)}-${id(4)}-${id(12)}` };
    case "aws:ssm/parameter:Parameter":
      return { version: 1 };
    case "aws:efs/fileSystem:FileSystem": {
      const fsId = mockId(type, name);
      return { dnsName: `${fsId}.efs.${region}.amazonaws.com`, numberOfMountTargets: 0, ownerId: MOCK_ACCOUNT_ID };
    }
    case "aws:rds/instance:Instance": {
      const identifier = typeof inputs.identifier === "string" ? inputs.identifier : `${name}-${id(7)}`;
      const address = `${identifier}.c${id(12)}.${region}.rds.amazonaws.com`;
      return {
        identifier,
        address,
        endpoint: `${address}:${String(inputs.port ?? 5432)}`,
        port: Number(inputs.port ?? 5432),
        resourceId: `db-${id(26).toUpperCase()}`,
      };
    }
    case "tls:index/privateKey:PrivateKey": {
      const algorithm = String(inputs.algorithm ?? "RSA");
      return {
        privateKeyPem: mockPem("PRIVATE KEY", name, algorithm),
        privateKeyPemPkcs8: mockPem("PRIVATE KEY", name, algorithm, "pkcs8"),
        privateKeyOpenssh: mockPem("OPENSSH PRIVATE KEY", name, algorithm),
        publicKeyPem: mockPem("PUBLIC KEY", name, algorithm),
        publicKeyOpenssh: `ssh-ed25519 ${Buffer.from(`odoo-stack mock public key ${name}`).toString("base64")}\n`,
        publicKeyFingerprintMd5: id(32).replace(/(..)(?!$)/g, "$1:"),
        publicKeyFingerprintSha256: `SHA256:${digest(type, name).toString("base64").replace(/=+$/, "")}`,
      };
    }
    case "tls:index/certRequest:CertRequest":
      return { certRequestPem: mockPem("CERTIFICATE REQUEST", name, ...sansOf(inputs)) };
    case "tls:index/selfSignedCert:SelfSignedCert":
    case "tls:index/locallySignedCert:LocallySignedCert": {
      const hours = Number(inputs.validityPeriodHours ?? 24 * 365);
      return {
        certPem: mockPem("CERTIFICATE", name, ...sansOf(inputs)),
        validityStartTime: rfc3339(MOCK_EPOCH_MS),
        validityEndTime: rfc3339(MOCK_EPOCH_MS + hours * 3_600_000),
        readyForRenewal: false,
      };
    }
    case "random:index/randomPassword:RandomPassword":
      return {
        result: randomPasswordResult(inputs),
        bcryptHash: `$2a$10$${randomFrom("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 53)}`,
      };
    case "random:index/randomString:RandomString":
      return { result: randomPasswordResult(inputs) };
    case "random:index/randomBytes:RandomBytes": {
      const bytes = crypto.randomBytes(Number(inputs.length ?? 32));
      return { base64: bytes.toString("base64"), hex: bytes.toString("hex") };
    }
    case "random:index/randomId:RandomId": {
      const bytes = crypto.randomBytes(Number(inputs.byteLength ?? 8));
      const prefix = String(inputs.prefix ?? "");
      return {
        hex: prefix + bytes.toString("hex"),
        b64Std: prefix + bytes.toString("base64"),
        b64Url: prefix + bytes.toString("base64url"),
        dec: prefix + BigInt(`0x${bytes.toString("hex") || "0"}`).toString(),
      };
    }
    case "random:index/randomUuid:RandomUuid":
      return { result: crypto.randomUUID() };
    default:
      return {};
  }
}

/** Subject CN and SANs of a TLS request, for the mock PEM's text. */
function sansOf(inputs: Record<string, unknown>): string[] {
  const subject = inputs.subject as Record<string, unknown> | undefined;
  const names = Array.isArray(inputs.dnsNames) ? inputs.dnsNames.map(String) : [];
  const ips = Array.isArray(inputs.ipAddresses) ? inputs.ipAddresses.map(String) : [];
  return [
    ...(subject?.commonName ? [`CN=${String(subject.commonName)}`] : []),
    ...names.map((n) => `DNS:${n}`),
    ...ips.map((i) => `IP:${i}`),
  ];
}

function newResourceState(c: StateContext, custom: boolean): Record<string, unknown> {
  if (!custom) return {};
  const state: Record<string, unknown> = {};
  if (c.type.startsWith("aws:")) {
    if (AUTONAMED.has(c.type) && c.inputs.name === undefined && c.inputs.namePrefix === undefined) {
      state.name = `${c.name}-${hexOf(7, c.type, c.name)}`;
    }
    if (c.inputs.tags !== undefined) state.tagsAll = c.inputs.tags;
  }
  Object.assign(state, computedState(c));
  if (c.type.startsWith("aws:")) state.arn = arnOf(c, { ...c.inputs, ...state });
  return state;
}

// ---------------------------------------------------------------------------------------------
// Invokes

function region(config: Readonly<Record<string, string>>, inputs: Record<string, unknown>): string {
  const r = typeof inputs.region === "string" ? inputs.region : config["aws:region"];
  if (!r) throw new Error("aws:region is not set in the stack config; the AWS provider needs it (pulumi config set aws:region eu-west-1)");
  return r;
}

interface AmiFilter {
  readonly name?: unknown;
  readonly values?: unknown;
}

/** aws.ec2.getAmi: only Debian 12 from Debian's account exists offline; anything else fails loudly. */
function debian12Ami(inputs: Record<string, unknown>, regionName: string): Record<string, unknown> {
  const owners = Array.isArray(inputs.owners) ? inputs.owners.map(String) : [];
  const filters = (Array.isArray(inputs.filters) ? inputs.filters : []) as AmiFilter[];
  const valuesOf = (n: string) => filters.filter((f) => f.name === n).flatMap((f) => (Array.isArray(f.values) ? f.values.map(String) : []));
  const namePatterns = [...valuesOf("name"), ...(typeof inputs.nameRegex === "string" ? [inputs.nameRegex] : [])];
  if (!owners.includes(DEBIAN_AMI_OWNER) || !namePatterns.some((p) => p.includes("debian-12"))) {
    throw new Error(
      `aws:ec2/getAmi mock only knows Debian 12 images (owners [${DEBIAN_AMI_OWNER}], name "debian-12-*"); got owners ${JSON.stringify(owners)}, names ${JSON.stringify(namePatterns)}`,
    );
  }
  const arm = [...valuesOf("architecture"), ...namePatterns].some((v) => v.includes("arm64"));
  const architecture = arm ? "arm64" : "x86_64";
  const imageId = `ami-0${hexOf(16, "debian-12", regionName, architecture)}`;
  return {
    id: imageId,
    imageId,
    arn: `arn:aws:ec2:${regionName}::image/${imageId}`,
    name: `debian-12-${arm ? "arm64" : "amd64"}-20250101-1958`,
    architecture,
    ownerId: DEBIAN_AMI_OWNER,
    rootDeviceName: "/dev/xvda",
    rootDeviceType: "ebs",
    virtualizationType: "hvm",
    creationDate: "2025-01-01T20:00:00.000Z",
    state: "available",
  };
}

function builtInCall(
  token: string,
  inputs: Record<string, unknown>,
  config: Readonly<Record<string, string>>,
): Record<string, unknown> | undefined {
  switch (token) {
    case "aws:index/getRegion:getRegion": {
      const r = region(config, inputs);
      return { id: r, name: r, region: r, endpoint: `ec2.${r}.amazonaws.com`, description: `Mock region ${r}` };
    }
    case "aws:index/getCallerIdentity:getCallerIdentity":
      return {
        id: MOCK_ACCOUNT_ID,
        accountId: MOCK_ACCOUNT_ID,
        arn: `arn:aws:iam::${MOCK_ACCOUNT_ID}:user/odoo-stack-plan`,
        userId: "AIDAODOOSTACKPLAN0000",
      };
    case "aws:index/getPartition:getPartition":
      return { id: "aws", partition: "aws", dnsSuffix: "amazonaws.com", reverseDnsPrefix: "com.amazonaws" };
    case "aws:index/getAvailabilityZones:getAvailabilityZones": {
      const r = region(config, inputs);
      const letters = ["a", "b", "c", "d", "e", "f"];
      return {
        id: r,
        region: r,
        names: letters.map((l) => `${r}${l}`),
        zoneIds: letters.map((_, i) => `${r.replace(/-/g, "").slice(0, 4)}-az${i + 1}`),
        groupNames: letters.map(() => r),
      };
    }
    case "aws:ec2/getAmi:getAmi":
      return debian12Ami(inputs, region(config, inputs));
    case "aws:ssm/getParameter:getParameter": {
      // The offline plan cannot see the account's parameters: every one the program asks about
      // exists (metadata only; a test simulates a missing one with extraCall).
      const name = String(inputs.name);
      return {
        id: name,
        name,
        type: "SecureString",
        value: "[mock]",
        insecureValue: "[mock]",
        version: 1,
        arn: `arn:aws:ssm:${region(config, inputs)}:${MOCK_ACCOUNT_ID}:parameter${name}`,
        withDecryption: false,
      };
    }
    case "aws:ec2/getInstanceType:getInstanceType": {
      const name = String(inputs.instanceType);
      const spec = knownInstanceType(name);
      // What EC2 answers for a type that does not exist (DescribeInstanceTypes).
      if (!spec) throw new Error(`InvalidInstanceType: The following supplied instance types do not exist: [${name}]`);
      return {
        id: name,
        instanceType: name,
        defaultVcpus: spec.vcpu,
        memorySize: spec.memoryMiB,
        supportedArchitectures: [spec.architecture ?? "x86_64"],
        currentGeneration: true,
      };
    }
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The capturing monitor

type Callback<T> = (err: Error | null, resp?: T) => void;

/** The parts of @pulumi/pulumi's MockMonitor this file wraps (runtime/mocks.js). */
interface MockMonitorLike {
  newUrn(parent: string, type: string, name: string): string;
  registerResource(req: resproto.RegisterResourceRequest, cb: Callback<resproto.RegisterResourceResponse>): unknown;
  readResource(req: resproto.ReadResourceRequest, cb: Callback<resproto.ReadResourceResponse>): unknown;
  registerResourceOutputs(req: resproto.RegisterResourceOutputsRequest, cb: Callback<unknown>): unknown;
}

interface Capture {
  resource: CapturedResource;
  outputs: Record<string, WireValue>;
}

const structToObject = (s: structproto.Struct | undefined): Record<string, WireValue> =>
  (s?.toJavaScript() as Record<string, WireValue> | undefined) ?? {};

function captureRegistration(req: resproto.RegisterResourceRequest): Omit<CapturedResource, "urn" | "id" | "outputs"> {
  const propertyDependencies: Record<string, string[]> = {};
  req.getPropertydependenciesMap().forEach((deps, key) => {
    propertyDependencies[key] = deps.getUrnsList();
  });
  const timeouts = req.getCustomtimeouts();
  return {
    type: req.getType(),
    name: req.getName(),
    custom: req.getCustom(),
    read: false,
    parent: req.getParent(),
    dependencies: req.getDependenciesList(),
    propertyDependencies,
    provider: req.getProvider(),
    protect: req.getProtect() === true,
    ignoreChanges: req.getIgnorechangesList(),
    deleteBeforeReplace: req.getDeletebeforereplacedefined() ? req.getDeletebeforereplace() : undefined,
    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
    aliases: [
      ...req.getAliasurnsList(),
      ...req
        .getAliasesList()
        .filter((a) => a.hasUrn())
        .map((a) => a.getUrn()),
    ],
    // The SDK always sends the message; empty strings mean "not set".
    customTimeouts:
      timeouts && (timeouts.getCreate() || timeouts.getUpdate() || timeouts.getDelete())
        ? { create: timeouts.getCreate(), update: timeouts.getUpdate(), delete: timeouts.getDelete() }
        : undefined,
    inputs: structToObject(req.getObject()),
  };
}

/**
 * The engine marks `additionalSecretOutputs` secret in the state it returns (the mock monitor does
 * not): RandomPassword.result, PrivateKey.privateKeyPem, … must come back as secrets.
 */
function markAdditionalSecrets(req: resproto.RegisterResourceRequest, resp: resproto.RegisterResourceResponse): void {
  const keys = req.getAdditionalsecretoutputsList();
  const object = resp.getObject();
  if (keys.length === 0 || !object) return;
  const state = structToObject(object);
  let changed = false;
  for (const key of keys) {
    if (key in state && !isSecretWire(state[key])) {
      state[key] = secretWire(state[key]);
      changed = true;
    }
  }
  if (changed)
    resp.setObject((object.constructor as typeof structproto.Struct).fromJavaScript(state as Record<string, structproto.JavaScriptValue>));
}

/**
 * The engine's URN rule (resource.NewURN): a child's type is qualified by its parent's full
 * qualified type, except under the root stack. The mock monitor qualifies by the stack and by
 * the parent's last segment only, so we restore the engine's URNs.
 */
function engineUrn(stack: string, project: string, parent: string, type: string, name: string): string {
  const parentQualified = parent ? parent.split("::")[2] : "";
  const qualified = parentQualified && parentQualified !== ROOT_STACK_TYPE ? `${parentQualified}$${type}` : type;
  return `urn:pulumi:${stack}::${project}::${qualified}::${name}`;
}

let running = false;

/**
 * Runs `program` under mocks with `config` and returns every resource it registered.
 * Rejects with every error the program raised, including failed registrations and invokes that
 * surface as unhandled rejections in the Pulumi runtime.
 */
/**
 * AWS-shaped ids where the program or its renderers check the shape (a user data renderer
 * needs a real `vol-…` to find the NVMe device); a stable hash of the name keeps plans diffable.
 */
const AWS_ID_PREFIX: Readonly<Record<string, string>> = {
  "aws:ebs/volume:Volume": "vol-",
  "aws:ec2/instance:Instance": "i-",
  "aws:ec2/securityGroup:SecurityGroup": "sg-",
  "aws:ec2/subnet:Subnet": "subnet-",
  "aws:ec2/vpc:Vpc": "vpc-",
  "aws:ec2/eip:Eip": "eipalloc-",
  // Odoo's user data mounts the shared filestore by its id (issue 8).
  "aws:efs/fileSystem:FileSystem": "fs-",
};
export function mockId(type: string, name: string): string {
  const prefix = AWS_ID_PREFIX[type];
  if (prefix === undefined) return `${name}-id`;
  return prefix + crypto.createHash("sha256").update(`${type}/${name}`).digest("hex").slice(0, 17);
}

export async function runProgram(opts: RunProgramOptions): Promise<ProgramRun> {
  if (running) throw new Error("runProgram: another program is running in this process; the Pulumi runtime holds one program at a time");
  running = true;
  const errors: unknown[] = [];
  const onUnhandled = (reason: unknown) => errors.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    const captures = new Map<string, Capture>();
    const order: string[] = [];
    const calls: { token: string; inputs: Record<string, unknown> }[] = [];
    const config = opts.config;

    const mocks: pulumi.runtime.Mocks = {
      newResource: (args) =>
        asRpcError(() => {
          const inputs = plainValue(args.inputs) as Record<string, unknown>;
          const ctx: StateContext = { type: args.type, name: args.name, inputs, region: config["aws:region"] ?? "" };
          const computed = { ...newResourceState(ctx, args.custom !== false), ...(opts.extraState?.(args) ?? {}) };
          // Inputs keep their secret markers, so a secret input stays a secret output, as in the engine.
          return { id: args.custom === false ? undefined : mockId(args.type, args.name), state: { ...args.inputs, ...computed } };
        }),
      call: (args) =>
        asRpcError(() => {
          const inputs = plainValue(args.inputs) as Record<string, unknown>;
          calls.push({ token: args.token, inputs });
          const result = builtInCall(args.token, inputs, config) ?? opts.extraCall?.(args);
          if (result === undefined) {
            throw new Error(`unmocked invoke ${args.token}: add it to tools/mocks.ts or pass extraCall (inputs ${JSON.stringify(inputs)})`);
          }
          return result;
        }),
    };

    // Config lives in the runtime's store, which setMocks does not reset: set it for this run,
    // before the program (whose modules read it at import) is loaded.
    pulumi.runtime.setAllConfig({ ...config }, [...(opts.secretKeys ?? [])]);
    await pulumi.runtime.setMocks(mocks, opts.project, opts.stack, false, opts.organization ?? "organization");
    const monitor = pulumi.runtime.getMonitor() as unknown as MockMonitorLike;

    monitor.newUrn = (parent, type, name) => engineUrn(opts.stack, opts.project, parent, type, name);

    const registerResource = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, cb) => {
      const registration = captureRegistration(req);
      return registerResource(req, (err, resp) => {
        if (!err && resp) {
          markAdditionalSecrets(req, resp);
          const outputs = registration.custom ? structToObject(resp.getObject()) : {};
          const resource: CapturedResource = { ...registration, urn: resp.getUrn(), id: resp.getId(), outputs };
          captures.set(resource.urn, { resource, outputs });
          order.push(resource.urn);
        }
        cb(err, resp);
      });
    };

    const readResource = monitor.readResource.bind(monitor);
    monitor.readResource = (req, cb) =>
      readResource(req, (err, resp) => {
        if (!err && resp) {
          const resource: CapturedResource = {
            urn: resp.getUrn(),
            type: req.getType(),
            name: req.getName(),
            custom: true,
            read: true,
            parent: req.getParent(),
            id: req.getId(),
            dependencies: req.getDependenciesList(),
            propertyDependencies: {},
            provider: req.getProvider(),
            protect: false,
            ignoreChanges: [],
            deleteBeforeReplace: undefined,
            additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
            aliases: [],
            customTimeouts: undefined,
            inputs: structToObject(req.getProperties()),
            outputs: structToObject(resp.getProperties()),
          };
          captures.set(resource.urn, { resource, outputs: { ...resource.outputs } });
          order.push(resource.urn);
        }
        cb(err, resp);
      });

    const registerResourceOutputs = monitor.registerResourceOutputs.bind(monitor);
    monitor.registerResourceOutputs = (req, cb) => {
      const capture = captures.get(req.getUrn());
      if (capture) capture.outputs = structToObject(req.getOutputs());
      return registerResourceOutputs(req, cb);
    };

    try {
      await pulumi.runtime.runInPulumiStack(async () => (await opts.program()) ?? {});
    } catch (err) {
      errors.push(err);
    }
    // Registrations still in flight when the program returned finish here, as the CLI's language host waits for them.
    await pulumi.runtime.disconnect();
    // Node reports an unhandled rejection after the microtasks of the turn that made it; let the
    // runtime's own promises (a failed program rejects several) settle while we still listen.
    for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
    if (errors.length > 0) throw programError(errors);

    const resources = order.map((urn) => {
      const c = captures.get(urn) as Capture;
      return { ...c.resource, outputs: c.outputs };
    });
    const stackResource = resources.find((r) => r.type === ROOT_STACK_TYPE && r.parent === "");
    return { resources, outputs: stackResource?.outputs ?? {}, calls };
  } finally {
    process.off("unhandledRejection", onUnhandled);
    running = false;
  }
}

/**
 * The SDK reports a failed RPC by its gRPC `details` (runtime/invoke.js, resource.js), so an
 * error thrown by a mock carries its message there too, or the program would see an empty one.
 */
function asRpcError<T>(body: () => T): T {
  try {
    return body();
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    Object.assign(error, { details: error.message });
    throw error;
  }
}

function programError(errors: readonly unknown[]): Error {
  const unique = [...new Set(errors.map((e) => (e instanceof Error ? e.message : String(e))))];
  return new Error(
    unique.length === 1
      ? unique[0]
      : `the program failed with ${unique.length} errors:\n${unique.map((m, i) => `  ${i + 1}. ${m}`).join("\n")}`,
    { cause: errors[0] },
  );
}
