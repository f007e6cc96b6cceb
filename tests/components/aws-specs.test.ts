// lib/aws-specs.ts: what the program asks AWS before registering anything, and what it does
// when AWS cannot answer.
import { ConfigError, DEFAULTS } from "../../lib/config";
import {
  architectureFromAws,
  checkExternalParameters,
  instanceTypeNames,
  partitionOf,
  pickAvailabilityZones,
  resolveDebianAmis,
  resolveInstanceSpecs,
  type InstanceTypeFetcher,
} from "../../lib/aws-specs";
import { knownInstanceType, type InstanceSpec } from "../../lib/instance-types";

const failing: InstanceTypeFetcher = async (name) => {
  throw new Error(`no credentials to describe ${name}`);
};

describe("instanceTypeNames", () => {
  it.each([
    ["no keys: the four defaults", {}, [...new Set(Object.values(DEFAULTS.instanceTypes))].sort()],
    [
      "configured types replace the defaults",
      {
        proxyInstanceType: "t3a.micro",
        odooInstanceType: "c6i.2xlarge",
        pgbouncerInstanceType: "t3a.micro",
        postgresInstanceType: "r7i.xlarge",
      },
      ["c6i.2xlarge", "r7i.xlarge", "t3a.micro"],
    ],
    [
      "a non-string value falls back to the default (parseSettings reports it)",
      { odooInstanceType: 42, postgresInstanceType: " r5.large " },
      ["m6i.xlarge", "r5.large", "t3.small"],
    ],
  ])("%s", (_why, raw, expected) => {
    expect(instanceTypeNames(raw)).toEqual(expected);
  });
});

describe("resolveInstanceSpecs", () => {
  it("uses AWS's answer when the invoke succeeds, even for a type the static table lacks", async () => {
    const fromAws: Record<string, InstanceSpec> = { "x9z.huge": { vcpu: 96, memoryMiB: 786432 }, "t3.small": { vcpu: 2, memoryMiB: 2048 } };
    const lookup = await resolveInstanceSpecs(["x9z.huge", "t3.small"], async (name) => fromAws[name]);
    expect(lookup("x9z.huge")).toEqual({ vcpu: 96, memoryMiB: 786432 });
    expect(knownInstanceType("x9z.huge")).toBeUndefined();
  });

  it.each(["m6i.xlarge", "r6i.large", "t3.small"])("falls back to the static table for %s when the invoke fails", async (name) => {
    const lookup = await resolveInstanceSpecs([name], failing);
    expect(lookup(name)).toEqual(knownInstanceType(name));
  });

  it.each([
    ["zero vCPUs", { vcpu: 0, memoryMiB: 16384 }],
    ["fractional memory", { vcpu: 4, memoryMiB: 0.5 }],
  ])("ignores an unusable AWS answer (%s) and falls back", async (_why, answer) => {
    const lookup = await resolveInstanceSpecs(["m6i.xlarge"], async () => answer);
    expect(lookup("m6i.xlarge")).toEqual(knownInstanceType("m6i.xlarge"));
  });

  it("resolves a type neither AWS nor the table knows to undefined, for parseSettings to report", async () => {
    const lookup = await resolveInstanceSpecs(["m6i.gigantic"], failing);
    expect(lookup("m6i.gigantic")).toBeUndefined();
  });
});

describe("pickAvailabilityZones", () => {
  it.each([
    [["eu-west-1c", "eu-west-1a", "eu-west-1b"], 2, ["eu-west-1a", "eu-west-1b"]],
    [["eu-west-1a", "eu-west-1b", "eu-west-1c"], 3, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]],
  ])("picks the first zones by name from %j (count %i)", (offered, count, expected) => {
    expect(pickAvailabilityZones(offered, count, "eu-west-1")).toEqual(expected);
  });

  it("throws a ConfigError naming availabilityZoneCount when the region has fewer zones", () => {
    let error: unknown;
    try {
      pickAvailabilityZones(["ca-west-1a", "ca-west-1b"], 3, "ca-west-1");
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([expect.objectContaining({ key: "availabilityZoneCount", value: 3 })]);
    expect((error as ConfigError).message).toContain("region ca-west-1 offers 2 availability zones (ca-west-1a, ca-west-1b)");
  });
});

describe("partitionOf", () => {
  it.each([
    ["eu-west-1", "aws"],
    ["us-east-1", "aws"],
    ["cn-north-1", "aws-cn"],
    ["us-gov-west-1", "aws-us-gov"],
  ])("%s → %s", (region, partition) => {
    expect(partitionOf(region)).toBe(partition);
  });
});

describe("architectures (Graviton)", () => {
  it.each([
    [["x86_64"], "x86_64"],
    [["i386", "x86_64"], "x86_64"],
    [["arm64"], "arm64"],
  ])("EC2's supportedArchitectures %j boot %s", (supported, expected) => {
    expect(architectureFromAws(supported)).toBe(expected);
  });

  it("knows the Graviton families as arm64 and the others as x86_64", () => {
    expect(knownInstanceType("m7g.xlarge")).toEqual({ vcpu: 4, memoryMiB: 16384, architecture: "arm64" });
    expect(knownInstanceType("t4g.small")?.architecture).toBe("arm64");
    expect(knownInstanceType("m6i.xlarge")?.architecture).toBeUndefined();
  });

  it("looks the AMI up once per architecture and maps every instance type to its own", async () => {
    const asked: string[] = [];
    const amis = await resolveDebianAmis(
      ["m6i.xlarge", "t4g.small", "m7g.xlarge", "t3.small", "t3.small"],
      knownInstanceType,
      async (a) => {
        asked.push(a);
        return `ami-${a}`;
      },
    );
    expect(asked.sort()).toEqual(["arm64", "x86_64"]);
    expect(amis).toEqual({ "m6i.xlarge": "ami-x86_64", "m7g.xlarge": "ami-arm64", "t3.small": "ami-x86_64", "t4g.small": "ami-arm64" });
  });
});

// Issue 12 item 5: a parameter the operator must create is checked before any resource.
describe("checkExternalParameters", () => {
  const stack = { project: "odoo-stack", stack: "prod", region: "eu-west-1" };

  it("passes when every parameter exists, and names each missing one with its key and the command that creates it", async () => {
    const params = [
      { key: "odooOptions.smtp_password", name: "/mail/smtp" },
      { key: "tls.privateKeyParameter", name: "/certs/key" },
    ];
    // Each parameter's version, for the hosts' apply associations (issue 12 item 9).
    await expect(checkExternalParameters(params, stack, async (name) => (name === "/mail/smtp" ? 3 : 1))).resolves.toEqual({
      "/mail/smtp": 3,
      "/certs/key": 1,
    });
    let error: unknown;
    try {
      await checkExternalParameters(params, stack, async (name) => (name === "/mail/smtp" ? undefined : 1));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      {
        key: "odooOptions.smtp_password",
        value: "{{ssm:/mail/smtp}}",
        fix: "names SSM parameter /mail/smtp, which does not exist in eu-west-1; create it before the preview (the hosts read it at apply time): aws ssm put-parameter --region eu-west-1 --name /mail/smtp --type SecureString --value '<value>' (--type String for a certificate; once the stack exists, add --key-id alias/odoo-stack-prod --overwrite so only the roles the stack grants can decrypt it)",
      },
    ]);
  });

  it("lets other AWS failures through (credentials, throttling) instead of calling the parameter missing", async () => {
    await expect(
      checkExternalParameters([{ key: "mail.passwordParameter", name: "/x" }], stack, async () =>
        Promise.reject(new Error("ExpiredToken")),
      ),
    ).rejects.toThrow("ExpiredToken");
  });
});
