// vCPU and memory of the instance types people commonly run Odoo, PgBouncer and PostgreSQL
// on. The program asks AWS first (aws.ec2.getInstanceType); this table is the fallback for
// offline plans and tests, and it is what the policy pack sizes against.
// Source: https://aws.amazon.com/ec2/instance-types/ (On-Demand specs; x86_64, and the
// Graviton (arm64) families, whose hosts boot Debian's arm64 AMI).

/** CPU architectures odoo-stack has a Debian 12 AMI for (lib/aws-specs.ts). */
export const ARCHITECTURES = ["x86_64", "arm64"] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export interface InstanceSpec {
  readonly vcpu: number;
  readonly memoryMiB: number;
  /** Optional. Defaults to x86_64. */
  readonly architecture?: Architecture;
}

/** The architecture an instance type boots, x86_64 unless its spec says otherwise. */
export const architectureOf = (spec: InstanceSpec): Architecture => spec.architecture ?? "x86_64";

const GiB = 1024;

function family(sizes: Record<string, [vcpu: number, memoryGiB: number]>, prefixes: string[], architecture: Architecture = "x86_64") {
  const table: Record<string, InstanceSpec> = {};
  for (const prefix of prefixes) {
    for (const [size, [vcpu, mem]] of Object.entries(sizes)) {
      table[`${prefix}.${size}`] =
        architecture === "x86_64" ? { vcpu, memoryMiB: mem * GiB } : { vcpu, memoryMiB: mem * GiB, architecture };
    }
  }
  return table;
}

// Burstable: t3 (Intel) and t3a (AMD) share shapes.
const burstable = family({ micro: [2, 1], small: [2, 2], medium: [2, 4], large: [2, 8], xlarge: [4, 16], "2xlarge": [8, 32] }, [
  "t3",
  "t3a",
]);
// General purpose: 4 GiB per vCPU.
const general = family({ large: [2, 8], xlarge: [4, 16], "2xlarge": [8, 32], "4xlarge": [16, 64], "8xlarge": [32, 128] }, [
  "m5",
  "m5a",
  "m6i",
  "m6a",
  "m7i",
  "m7a",
]);
// Compute optimised: 2 GiB per vCPU.
const compute = family({ large: [2, 4], xlarge: [4, 8], "2xlarge": [8, 16], "4xlarge": [16, 32], "8xlarge": [32, 64] }, [
  "c5",
  "c6i",
  "c6a",
  "c7i",
]);
// Memory optimised: 8 GiB per vCPU, the usual PostgreSQL shape.
const memory = family({ large: [2, 16], xlarge: [4, 32], "2xlarge": [8, 64], "4xlarge": [16, 128], "8xlarge": [32, 256] }, [
  "r5",
  "r6i",
  "r6a",
  "r7i",
]);

// Graviton (arm64): the same shapes as their x86_64 siblings.
const graviton = {
  ...family({ micro: [2, 1], small: [2, 2], medium: [2, 4], large: [2, 8], xlarge: [4, 16], "2xlarge": [8, 32] }, ["t4g"], "arm64"),
  ...family({ large: [2, 8], xlarge: [4, 16], "2xlarge": [8, 32], "4xlarge": [16, 64], "8xlarge": [32, 128] }, ["m6g", "m7g"], "arm64"),
  ...family({ large: [2, 4], xlarge: [4, 8], "2xlarge": [8, 16], "4xlarge": [16, 32], "8xlarge": [32, 64] }, ["c6g", "c7g"], "arm64"),
  ...family({ large: [2, 16], xlarge: [4, 32], "2xlarge": [8, 64], "4xlarge": [16, 128], "8xlarge": [32, 256] }, ["r6g", "r7g"], "arm64"),
};

export const INSTANCE_TYPES: Readonly<Record<string, InstanceSpec>> = {
  ...burstable,
  ...general,
  ...compute,
  ...memory,
  ...graviton,
};

export function knownInstanceType(name: string): InstanceSpec | undefined {
  return Object.prototype.hasOwnProperty.call(INSTANCE_TYPES, name) ? INSTANCE_TYPES[name] : undefined;
}
