// Facts the program needs from AWS before it registers a single resource: instance specs
// (sizing reads them), availability zones (the subnet count depends on them), the Debian AMI,
// the account id and partition (IAM policies name exact ARNs). Each is a plain value, awaited
// in index.ts, so a bad answer fails `pulumi preview` before anything is created.
import * as aws from "@pulumi/aws";
import {
  ConfigError,
  DEFAULTS,
  INSTANCE_TYPE_KEYS,
  type InstanceSpecLookup,
  type InstanceTypes,
  type RawConfig,
  type StackSettings,
} from "./config";
import { architectureOf, knownInstanceType, type Architecture, type InstanceSpec } from "./instance-types";
import { scanSecretRefs, secretRef } from "./secret-ref";

/** Everything components need from AWS, resolved once. */
export interface AwsFacts {
  readonly region: string;
  /** "aws", "aws-cn" or "aws-us-gov": the first field of every ARN. */
  readonly partition: string;
  readonly accountId: string;
  /** Exactly availabilityZoneCount names, sorted: subnet i sits in zone i. */
  readonly availabilityZones: readonly string[];
  /**
   * The Debian 12 AMI each instance type of the stack boots, by instance type name: amd64 for
   * x86_64 types, arm64 for Graviton ones (resolveDebianAmis).
   */
  readonly amiIds: Readonly<Record<string, string>>;
  /**
   * The version of each SSM parameter the operator created and a setting names
   * (externalParameters), as this preview read it. A host's apply association carries the
   * versions of what it reads, so a value the operator overwrote reaches the hosts at the next
   * `pulumi up` (issue 12 item 9).
   */
  readonly externalParameterVersions: Readonly<Record<string, number>>;
}

/**
 * The distinct instance types a raw config names, defaults filled in. Values that are not
 * strings are skipped: parseSettings reports them with the key and the fix.
 */
export function instanceTypeNames(raw: RawConfig): string[] {
  const names = new Set<string>();
  for (const role of Object.keys(INSTANCE_TYPE_KEYS) as (keyof InstanceTypes)[]) {
    const value = raw[INSTANCE_TYPE_KEYS[role]];
    names.add(typeof value === "string" && value.trim() !== "" ? value.trim() : DEFAULTS.instanceTypes[role]);
  }
  return [...names].sort();
}

/** Asks AWS for one instance type's shape; rejects when AWS cannot answer. */
export type InstanceTypeFetcher = (instanceType: string) => Promise<InstanceSpec>;

/**
 * The architecture a type boots from EC2's supportedArchitectures: arm64 for Graviton, x86_64
 * otherwise ("i386" and "x86_64_mac" types are not offered to odoo-stack's hosts).
 */
export const architectureFromAws = (supported: readonly string[]): Architecture =>
  supported.includes("arm64") && !supported.includes("x86_64") ? "arm64" : "x86_64";

export const fetchInstanceTypeFromAws: InstanceTypeFetcher = async (instanceType) => {
  const answer = await aws.ec2.getInstanceType({ instanceType });
  const architecture = architectureFromAws(answer.supportedArchitectures ?? []);
  return architecture === "x86_64"
    ? { vcpu: answer.defaultVcpus, memoryMiB: answer.memorySize }
    : { vcpu: answer.defaultVcpus, memoryMiB: answer.memorySize, architecture };
};

const isUsable = (spec: InstanceSpec | undefined): spec is InstanceSpec =>
  spec !== undefined && Number.isInteger(spec.vcpu) && spec.vcpu > 0 && Number.isInteger(spec.memoryMiB) && spec.memoryMiB > 0;

/**
 * Resolves `names` to specs: AWS's answer first (it knows every type the region offers);
 * the static table when the invoke fails (offline plan, no credentials, throttling). A type
 * neither knows resolves to undefined, which parseSettings reports as a config problem.
 */
export async function resolveInstanceSpecs(
  names: readonly string[],
  fetch: InstanceTypeFetcher = fetchInstanceTypeFromAws,
): Promise<InstanceSpecLookup> {
  const resolved = new Map<string, InstanceSpec>();
  await Promise.all(
    names.map(async (name) => {
      let spec: InstanceSpec | undefined;
      try {
        spec = await fetch(name);
      } catch {
        spec = undefined;
      }
      if (!isUsable(spec)) spec = knownInstanceType(name);
      if (spec) resolved.set(name, spec);
    }),
  );
  return (name) => resolved.get(name) ?? knownInstanceType(name);
}

/**
 * The first `count` zones of the region. Throws ConfigError naming availabilityZoneCount when
 * the region has fewer, instead of letting AWS fail halfway through creating subnets.
 */
export function pickAvailabilityZones(offered: readonly string[], count: number, region: string): string[] {
  const zones = [...offered].sort();
  if (zones.length < count) {
    throw new ConfigError([
      {
        key: "availabilityZoneCount",
        value: count,
        fix: `region ${region} offers ${zones.length} availability zone${zones.length === 1 ? "" : "s"} (${zones.join(", ") || "none"}); set availabilityZoneCount to at most ${zones.length} and list that many subnet CIDRs`,
      },
    ]);
  }
  return zones.slice(0, count);
}

export async function resolveAvailabilityZones(count: number, region: string): Promise<string[]> {
  // Local and Wavelength zones are opt-in and lack most instance types; standard AZs only.
  const answer = await aws.getAvailabilityZones({
    state: "available",
    filters: [{ name: "opt-in-status", values: ["opt-in-not-required"] }],
  });
  return pickAvailabilityZones(answer.names, count, region);
}

/** Debian's official AWS account (https://wiki.debian.org/Cloud/AmazonEC2Image). */
export const DEBIAN_AMI_OWNER = "136693071363";
/**
 * Debian 12 (bookworm): the packages the integration tests prove the configs on, built by Debian
 * for both architectures (amd64, arm64) from the same sources; the bootstrap script fetches the
 * AWS agents for `dpkg --print-architecture`, and Odoo's package is architecture-independent.
 */
export const debianAmiName = (architecture: Architecture): string => `debian-12-${architecture === "arm64" ? "arm64" : "amd64"}-*`;

export async function resolveDebianAmi(architecture: Architecture): Promise<string> {
  const ami = await aws.ec2.getAmi({
    mostRecent: true,
    owners: [DEBIAN_AMI_OWNER],
    filters: [
      { name: "name", values: [debianAmiName(architecture)] },
      { name: "architecture", values: [architecture] },
      { name: "virtualization-type", values: ["hvm"] },
      { name: "root-device-type", values: ["ebs"] },
    ],
  });
  return ami.id;
}

/**
 * The AMI of each instance type, one lookup per architecture the types use (an x86_64-only stack
 * asks once, as before). `specs` must resolve every name (parseSettings has checked them).
 */
export async function resolveDebianAmis(
  instanceTypes: readonly string[],
  specs: InstanceSpecLookup,
  resolve: (architecture: Architecture) => Promise<string> = resolveDebianAmi,
): Promise<Record<string, string>> {
  const archOf = (name: string): Architecture => {
    const spec = specs(name);
    if (!spec) throw new Error(`instance type ${name} has no spec; parseSettings should have refused it`);
    return architectureOf(spec);
  };
  const architectures = [...new Set(instanceTypes.map(archOf))].sort();
  const amis = new Map(await Promise.all(architectures.map(async (a) => [a, await resolve(a)] as const)));
  return Object.fromEntries([...new Set(instanceTypes)].sort().map((name) => [name, amis.get(archOf(name)) as string]));
}

/** An SSM parameter the operator created and a config key names (odooOptions, mail, tls). */
export interface ExternalParameter {
  /** The config key that names it, e.g. "odooOptions.smtp_password". */
  readonly key: string;
  readonly name: string;
}

/** The parameters the operator must have created for `settings`, each with the key naming it. */
export function externalParameters(settings: StackSettings): ExternalParameter[] {
  const out: ExternalParameter[] = [];
  for (const [k, v] of Object.entries(settings.odooOptions)) {
    if (typeof v !== "string") continue;
    for (const name of scanSecretRefs(v).paths) out.push({ key: `odooOptions.${k}`, name });
  }
  if (settings.mail?.passwordParameter !== undefined) out.push({ key: "mail.passwordParameter", name: settings.mail.passwordParameter });
  if (settings.tls.mode === "imported") {
    out.push(
      { key: "tls.certificateParameter", name: settings.tls.certificateParameter },
      { key: "tls.privateKeyParameter", name: settings.tls.privateKeyParameter },
    );
  }
  return out;
}

/** A parameter's version; undefined when AWS answered ParameterNotFound; a rejection for any other failure. */
export type ParameterProbe = (name: string) => Promise<number | undefined>;

export const probeParameterInAws: ParameterProbe = async (name) => {
  try {
    // Metadata only: the value (a secret) is not decrypted.
    return (await aws.ssm.getParameter({ name, withDecryption: false })).version;
  } catch (err) {
    if (/ParameterNotFound/.test(String((err as Error).message ?? err))) return undefined;
    throw err;
  }
};

/**
 * Checks before any resource that every parameter the operator must create exists, and throws a
 * ConfigError naming each missing one, the key that names it and the command that creates it
 * (issue 12 item 5: a missing one used to fail the plan with a stack trace). Returns the version
 * of each (AwsFacts.externalParameterVersions).
 */
export async function checkExternalParameters(
  parameters: readonly ExternalParameter[],
  stack: { readonly project: string; readonly stack: string; readonly region: string },
  probe: ParameterProbe = probeParameterInAws,
): Promise<Record<string, number>> {
  const answers = await Promise.all(parameters.map(async (p) => ({ ...p, version: await probe(p.name) })));
  const missing = answers.filter((a) => a.version === undefined);
  if (missing.length === 0) return Object.fromEntries(answers.map((a) => [a.name, a.version as number]));
  throw new ConfigError(
    missing.map((m) => ({
      key: m.key,
      value: secretRef(m.name),
      fix: `names SSM parameter ${m.name}, which does not exist in ${stack.region}; create it before the preview (the hosts read it at apply time): aws ssm put-parameter --region ${stack.region} --name ${m.name} --type SecureString --value '<value>' (--type String for a certificate; once the stack exists, add --key-id alias/${stack.project}-${stack.stack} --overwrite so only the roles the stack grants can decrypt it)`,
    })),
  );
}

/** The ARN partition of a region. */
export function partitionOf(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}

export async function resolveAccountId(): Promise<string> {
  return (await aws.getCallerIdentity({})).accountId;
}
