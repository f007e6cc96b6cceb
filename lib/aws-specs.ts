// Facts the program needs from AWS before it registers a single resource: instance specs
// (sizing reads them), availability zones (the subnet count depends on them), the Debian AMI,
// the account id and partition (IAM policies name exact ARNs). Each is a plain value, awaited
// in index.ts, so a bad answer fails `pulumi preview` before anything is created.
import * as aws from "@pulumi/aws";
import { ConfigError, DEFAULTS, INSTANCE_TYPE_KEYS, type InstanceSpecLookup, type InstanceTypes, type RawConfig } from "./config";
import { knownInstanceType, type InstanceSpec } from "./instance-types";

/** Everything components need from AWS, resolved once. */
export interface AwsFacts {
  readonly region: string;
  /** "aws", "aws-cn" or "aws-us-gov": the first field of every ARN. */
  readonly partition: string;
  readonly accountId: string;
  /** Exactly availabilityZoneCount names, sorted: subnet i sits in zone i. */
  readonly availabilityZones: readonly string[];
  /** Debian 12 AMI the hosts boot from. */
  readonly amiId: string;
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

export const fetchInstanceTypeFromAws: InstanceTypeFetcher = async (instanceType) => {
  const answer = await aws.ec2.getInstanceType({ instanceType });
  return { vcpu: answer.defaultVcpus, memoryMiB: answer.memorySize };
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
/** Debian 12 (bookworm), x86_64: the packages the integration tests prove the configs on. */
export const DEBIAN_AMI_NAME = "debian-12-amd64-*";

export async function resolveDebianAmi(): Promise<string> {
  const ami = await aws.ec2.getAmi({
    mostRecent: true,
    owners: [DEBIAN_AMI_OWNER],
    filters: [
      { name: "name", values: [DEBIAN_AMI_NAME] },
      { name: "architecture", values: ["x86_64"] },
      { name: "virtualization-type", values: ["hvm"] },
      { name: "root-device-type", values: ["ebs"] },
    ],
  });
  return ami.id;
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
