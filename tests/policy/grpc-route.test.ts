// The route every policy test and the offline plan rely on: resources built with the real SDK
// classes under mocks, captured with the engine's URNs and graph, marshalled as the engine
// marshals them, sent over the Analyzer gRPC protocol to the pack started as the CLI starts it.
// Proven here on NET-3 (security-group-world-ingress-only-443-on-proxy) in each AWS shape.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { buildPolicyConfig } from "../../tools/analyzer-client";
import { analyzeProgram } from "../helpers/mock-run";
import { ofPolicy, PACK_STARTUP_TIMEOUT_MS, usePolicyPack } from "../helpers/policy-server";

jest.setTimeout(60_000);

const NET3 = "security-group-world-ingress-only-443-on-proxy";
const role = (r: string) => ({ "odoo-stack:role": r });
const VPC_ID = "vpc-0a1b2c3d4e5f60718";

const pack = usePolicyPack();

/** Analyzes `program` and returns NET-3's findings from Analyze. */
async function net3(program: () => void) {
  const analyzed = await analyzeProgram(pack().client, () => {
    program();
    return {};
  });
  return { analyzed, findings: ofPolicy(analyzed.perResource, NET3) };
}

describe("policy pack over the Analyzer gRPC protocol", () => {
  it("starts as the CLI starts it and lists NET-3's policy as a mandatory resource policy", () => {
    const { info, startupMs } = pack();
    expect(startupMs).toBeGreaterThan(0);
    expect(startupMs).toBeLessThan(PACK_STARTUP_TIMEOUT_MS);
    expect(info.name).toBe("odoo-stack");
    const policy = info.policies.find((p) => p.name === NET3);
    expect(policy).toMatchObject({ enforcementLevel: "mandatory", type: "resource" });
    expect(policy?.description).toMatch(/^Checks whether .*NET-3/);
  });

  it("NET-3: the proxy's group may admit the internet on tcp 443, inline and as a tagged ingress rule", async () => {
    const { analyzed, findings } = await net3(() => {
      const proxy = new aws.ec2.SecurityGroup("proxy-sg", {
        vpcId: VPC_ID,
        ingress: [{ protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }],
        tags: role("proxy"),
      });
      new aws.vpc.SecurityGroupIngressRule("proxy-https-v4", {
        securityGroupId: proxy.id,
        ipProtocol: "tcp",
        fromPort: 443,
        toPort: 443,
        cidrIpv4: "0.0.0.0/0",
        tags: role("proxy"),
      });
    });
    expect(analyzed.run.resources.map((r) => r.name)).toEqual(expect.arrayContaining(["proxy-sg", "proxy-https-v4"]));
    expect(findings).toEqual([]);
  });

  const violations: [string, string, () => void][] = [
    [
      "an Odoo security group open on 8069 to 0.0.0.0/0 (inline)",
      "odoo-sg",
      () =>
        new aws.ec2.SecurityGroup("odoo-sg", {
          vpcId: VPC_ID,
          ingress: [{ protocol: "tcp", fromPort: 8069, toPort: 8069, cidrBlocks: ["0.0.0.0/0"] }],
          tags: role("odoo"),
        }),
    ],
    [
      "an Odoo security group open on 8069 to ::/0 (inline)",
      "odoo-sg",
      () =>
        new aws.ec2.SecurityGroup("odoo-sg", {
          vpcId: VPC_ID,
          ingress: [{ protocol: "tcp", fromPort: 8069, toPort: 8069, ipv6CidrBlocks: ["::/0"] }],
          tags: role("odoo"),
        }),
    ],
    [
      "a SecurityGroupRule opening 8069 to 0.0.0.0/0",
      "odoo-http-world",
      () =>
        new aws.ec2.SecurityGroupRule("odoo-http-world", {
          type: "ingress",
          securityGroupId: "sg-0123456789abcdef0",
          protocol: "tcp",
          fromPort: 8069,
          toPort: 8069,
          cidrBlocks: ["0.0.0.0/0"],
        }),
    ],
    [
      "a SecurityGroupRule opening 8069 to ::/0",
      "odoo-http-world-v6",
      () =>
        new aws.ec2.SecurityGroupRule("odoo-http-world-v6", {
          type: "ingress",
          securityGroupId: "sg-0123456789abcdef0",
          protocol: "tcp",
          fromPort: 8069,
          toPort: 8069,
          ipv6CidrBlocks: ["::/0"],
        }),
    ],
    [
      "a SecurityGroupIngressRule opening 8069 to 0.0.0.0/0",
      "odoo-http-world-rule",
      () =>
        new aws.vpc.SecurityGroupIngressRule("odoo-http-world-rule", {
          securityGroupId: "sg-0123456789abcdef0",
          ipProtocol: "tcp",
          fromPort: 8069,
          toPort: 8069,
          cidrIpv4: "0.0.0.0/0",
          tags: role("odoo"),
        }),
    ],
    [
      "a SecurityGroupIngressRule opening 8069 to ::/0",
      "odoo-http-world-rule-v6",
      () =>
        new aws.vpc.SecurityGroupIngressRule("odoo-http-world-rule-v6", {
          securityGroupId: "sg-0123456789abcdef0",
          ipProtocol: "tcp",
          fromPort: 8069,
          toPort: 8069,
          cidrIpv6: "::/0",
          tags: role("odoo"),
        }),
    ],
    [
      "443 to the world on a group that is not the proxy's",
      "odoo-sg",
      () =>
        new aws.ec2.SecurityGroup("odoo-sg", {
          vpcId: VPC_ID,
          ingress: [{ protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] }],
          tags: role("odoo"),
        }),
    ],
    [
      "443 to the world through a SecurityGroupRule, which cannot show its group's role",
      "https-world",
      () =>
        new aws.ec2.SecurityGroupRule("https-world", {
          type: "ingress",
          securityGroupId: "sg-0123456789abcdef0",
          protocol: "tcp",
          fromPort: 443,
          toPort: 443,
          cidrBlocks: ["0.0.0.0/0"],
        }),
    ],
    [
      "all traffic from the internet on the proxy's group",
      "proxy-sg",
      () =>
        new aws.ec2.SecurityGroup("proxy-sg", {
          vpcId: VPC_ID,
          ingress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
          tags: role("proxy"),
        }),
    ],
  ];

  it.each(violations)("NET-3: %s is a mandatory violation naming the resource", async (_case, name, program) => {
    const { analyzed, findings } = await net3(program);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ enforcementLevel: "mandatory", policyPackName: "odoo-stack", urn: analyzed.urnOf(name) });
    expect(findings[0].message).toContain(`(${name}) must not open`);
    expect(findings[0].message).toMatch(/\((NET-\d+, )*NET-3\)\.$/);
  });

  it("NET-3: private sources and egress rules are not internet ingress", async () => {
    const { findings } = await net3(() => {
      new aws.ec2.SecurityGroup("odoo-sg", {
        vpcId: VPC_ID,
        ingress: [{ protocol: "tcp", fromPort: 8069, toPort: 8069, cidrBlocks: ["10.40.0.0/16"], ipv6CidrBlocks: ["fd00:40::/56"] }],
        egress: [{ protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] }],
        tags: role("odoo"),
      });
      new aws.ec2.SecurityGroupRule("odoo-egress-world", {
        type: "egress",
        securityGroupId: "sg-0123456789abcdef0",
        protocol: "tcp",
        fromPort: 443,
        toPort: 443,
        cidrBlocks: ["0.0.0.0/0"],
      });
    });
    expect(findings).toEqual([]);
  });

  it("NET-3: a public range that is not 0.0.0.0/0 is the internet too", async () => {
    const { findings } = await net3(() => {
      new aws.ec2.SecurityGroup("odoo-sg", {
        vpcId: VPC_ID,
        ingress: [{ protocol: "tcp", fromPort: 8069, toPort: 8069, cidrBlocks: ["198.51.100.0/24"] }],
        tags: role("odoo"),
      });
    });
    expect(findings.map((f) => f.message)).toEqual([expect.stringContaining("must not open tcp 8069 to 198.51.100.0/24")]);
  });

  it("Configure sends every policy's level: disabled silences NET-3, advisory downgrades it", async () => {
    const open = () => {
      new aws.ec2.SecurityGroup("odoo-sg", {
        vpcId: VPC_ID,
        ingress: [{ protocol: "tcp", fromPort: 8069, toPort: 8069, cidrBlocks: ["0.0.0.0/0"] }],
        tags: role("odoo"),
      });
    };
    try {
      await pack().reconfigure({ [NET3]: "disabled" });
      expect((await net3(open)).findings).toEqual([]);
      await pack().reconfigure({ all: "advisory" });
      expect((await net3(open)).findings.map((f) => f.enforcementLevel)).toEqual(["advisory"]);
    } finally {
      await pack().reconfigure();
    }
    expect((await net3(open)).findings.map((f) => f.enforcementLevel)).toEqual(["mandatory"]);
  });

  it("AnalyzeStack receives the whole stack and answers with stack policies' findings only", async () => {
    const analyzed = await analyzeProgram(pack().client, () => {
      const parent = new pulumi.ComponentResource("odoo-stack:test:Tier", "odoo");
      const sg = new aws.ec2.SecurityGroup("odoo-sg", { vpcId: VPC_ID, tags: role("odoo") }, { parent });
      new aws.vpc.SecurityGroupIngressRule(
        "odoo-http-world-rule",
        { securityGroupId: sg.id, ipProtocol: "tcp", fromPort: 8069, toPort: 8069, cidrIpv4: "0.0.0.0/0", tags: role("odoo") },
        { parent },
      );
      return {};
    });
    const rule = analyzed.run.resources.find((r) => r.name === "odoo-http-world-rule");
    // The engine's URN: qualified by the component, not by the stack.
    expect(rule?.urn).toBe(
      "urn:pulumi:test::odoo-stack::odoo-stack:test:Tier$aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule::odoo-http-world-rule",
    );
    expect(rule?.propertyDependencies.securityGroupId).toEqual([analyzed.urnOf("odoo-sg")]);
    const stackPolicies = new Set(
      pack()
        .info.policies.filter((p) => p.type === "stack")
        .map((p) => p.name),
    );
    const urns = new Set(["", ...analyzed.run.resources.map((r) => r.urn)]);
    for (const d of analyzed.stack) {
      expect(stackPolicies.has(d.policyName)).toBe(true);
      expect(urns.has(d.urn)).toBe(true);
    }
    expect(ofPolicy(analyzed.perResource, NET3).map((d) => d.urn)).toEqual([rule?.urn]);
  });

  it("a policy-config file with unknown policies or levels is rejected with every problem listed", () => {
    expect(() => buildPolicyConfig(pack().info, { "no-such-policy": "mandatory", [NET3]: "strict" as never })).toThrow(
      /2 problems:\n {2}1\. .*"no-such-policy" is not a policy of odoo-stack.*\n {2}2\. "security-group-world-ingress-only-443-on-proxy": "strict" is not an enforcement level/s,
    );
  });
});
