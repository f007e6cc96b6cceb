// vCPU and memory of the instance types people commonly run Odoo, PgBouncer and PostgreSQL
// on. The program asks AWS first (aws.ec2.getInstanceType); this table is the fallback for
// offline plans and tests, and it is what the policy pack sizes against.
// Source: https://aws.amazon.com/ec2/instance-types/ (On-Demand specs, x86_64).

export interface InstanceSpec {
  readonly vcpu: number;
  readonly memoryMiB: number;
}

const GiB = 1024;

function family(sizes: Record<string, [vcpu: number, memoryGiB: number]>, prefixes: string[]) {
  const table: Record<string, InstanceSpec> = {};
  for (const prefix of prefixes) {
    for (const [size, [vcpu, mem]] of Object.entries(sizes)) {
      table[`${prefix}.${size}`] = { vcpu, memoryMiB: mem * GiB };
    }
  }
  return table;
}

// Burstable: t3 (Intel) and t3a (AMD) share shapes.
const burstable = family(
  { micro: [2, 1], small: [2, 2], medium: [2, 4], large: [2, 8], xlarge: [4, 16], "2xlarge": [8, 32] },
  ["t3", "t3a"],
);
// General purpose: 4 GiB per vCPU.
const general = family(
  { large: [2, 8], xlarge: [4, 16], "2xlarge": [8, 32], "4xlarge": [16, 64], "8xlarge": [32, 128] },
  ["m5", "m5a", "m6i", "m6a", "m7i", "m7a"],
);
// Compute optimised: 2 GiB per vCPU.
const compute = family(
  { large: [2, 4], xlarge: [4, 8], "2xlarge": [8, 16], "4xlarge": [16, 32], "8xlarge": [32, 64] },
  ["c5", "c6i", "c6a", "c7i"],
);
// Memory optimised: 8 GiB per vCPU, the usual PostgreSQL shape.
const memory = family(
  { large: [2, 16], xlarge: [4, 32], "2xlarge": [8, 64], "4xlarge": [16, 128], "8xlarge": [32, 256] },
  ["r5", "r6i", "r6a", "r7i"],
);

export const INSTANCE_TYPES: Readonly<Record<string, InstanceSpec>> = {
  ...burstable,
  ...general,
  ...compute,
  ...memory,
};

export function knownInstanceType(name: string): InstanceSpec | undefined {
  return Object.prototype.hasOwnProperty.call(INSTANCE_TYPES, name) ? INSTANCE_TYPES[name] : undefined;
}
