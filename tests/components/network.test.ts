// Network: the security-group rules are exactly the port catalog's (NET-2..NET-6), nothing in a
// subnet gets a public address by default, and the counts follow the AZ and NAT settings.
import { Network, securityGroupRules, type SecurityGroupRuleSpec } from "../../components/network";
import { TAG_KEYS } from "../../components/tags";
import type { RawConfig } from "../../lib/config";
import { modelWith } from "../helpers/fixtures";
import { countsByType, named, ofType, runUnderMocks, type MockRun } from "../helpers/component-mocks";

const INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";
const EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule";
const SG = "aws:ec2/securityGroup:SecurityGroup";
const BASTION = "sg-0123456789abcdef0";

/** A rule as "group direction port peer [checklist]", the way a reviewer reads a firewall. */
const describeSpec = (r: SecurityGroupRuleSpec): string => {
  const peer = r.peer.kind === "group" ? `sg:${r.peer.group}` : r.peer.kind === "externalGroup" ? `sg:${r.peer.groupId}` : r.peer.cidr;
  return `${r.group} ${r.direction} ${r.port} ${peer} [${r.checklist.join(",")}]`;
};

describe("securityGroupRules", () => {
  it("is exactly the checklist's firewall, with internal CIDRs and a bastion", () => {
    const rules = securityGroupRules({ vpcCidr: "10.40.0.0/16", odooInternalCidrs: ["10.8.0.0/16"], bastionSecurityGroupId: BASTION });
    expect(rules.map(describeSpec).sort()).toEqual(
      [
        "proxy ingress 443 0.0.0.0/0 [NET-2,NET-3]",
        "proxy ingress 443 ::/0 [NET-2,NET-3]",
        "odoo ingress 8069 sg:proxy [NET-4]",
        "odoo ingress 8072 sg:proxy [NET-4]",
        "odoo ingress 8069 10.8.0.0/16 [NET-4]",
        "odoo ingress 8072 10.8.0.0/16 [NET-4]",
        "pgbouncer ingress 6432 sg:odoo [NET-5]",
        "postgres ingress 5432 sg:pgbouncer [NET-6]",
        `postgres ingress 5432 sg:${BASTION} [NET-6]`,
        "endpoints ingress 443 10.40.0.0/16 []",
        "proxy egress 8069 sg:odoo [NET-4]",
        "proxy egress 8072 sg:odoo [NET-4]",
        "odoo egress 6432 sg:pgbouncer [NET-5]",
        "pgbouncer egress 5432 sg:postgres [NET-6]",
        ...["proxy", "odoo", "pgbouncer", "postgres"].flatMap((g) => [`${g} egress 80 0.0.0.0/0 []`, `${g} egress 443 0.0.0.0/0 []`]),
      ].sort(),
    );
  });

  it("opens nothing extra without internal CIDRs or a bastion", () => {
    const rules = securityGroupRules({ vpcCidr: "10.40.0.0/16", odooInternalCidrs: [] });
    const ingress = rules
      .filter((r) => r.direction === "ingress")
      .map(describeSpec)
      .sort();
    expect(ingress).toEqual([
      "endpoints ingress 443 10.40.0.0/16 []",
      "odoo ingress 8069 sg:proxy [NET-4]",
      "odoo ingress 8072 sg:proxy [NET-4]",
      "pgbouncer ingress 6432 sg:odoo [NET-5]",
      "postgres ingress 5432 sg:pgbouncer [NET-6]",
      "proxy ingress 443 0.0.0.0/0 [NET-2,NET-3]",
      "proxy ingress 443 ::/0 [NET-2,NET-3]",
    ]);
  });

  it("refuses a repeated internal CIDR instead of creating two identical rules", () => {
    expect(() => securityGroupRules({ vpcCidr: "10.40.0.0/16", odooInternalCidrs: ["10.8.0.0/16", "10.8.0.0/16"] })).toThrow(
      /generated twice/,
    );
  });
});

async function runNetwork(overrides: RawConfig): Promise<MockRun> {
  const model = modelWith(overrides);
  const zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"].slice(0, model.settings.availabilityZoneCount);
  return runUnderMocks(() => {
    const network = new Network("network", { model, availabilityZones: zones });
    return { vpcId: network.vpcId, zoneId: network.privateZoneId };
  });
}

describe("Network under mocks", () => {
  const runs = new Map<string, MockRun>();
  const run = async (label: string, overrides: RawConfig) => {
    if (!runs.has(label)) runs.set(label, await runNetwork(overrides));
    return runs.get(label) as MockRun;
  };
  const CASES: [string, RawConfig, { azs: number; nats: number }][] = [
    ["2 AZs, single NAT", {}, { azs: 2, nats: 1 }],
    ["3 AZs, NAT per AZ", { availabilityZoneCount: 3, natGateways: "perAz" }, { azs: 3, nats: 3 }],
    [
      "2 AZs, internal CIDRs and bastion",
      { odooInternalCidrs: ["10.8.0.0/16", "192.168.10.0/24"], bastionSecurityGroupId: BASTION },
      { azs: 2, nats: 1 },
    ],
  ];
  beforeAll(async () => {
    for (const [label, overrides] of CASES) await run(label, overrides);
  }, 60_000);

  it.each(CASES)("%s: exact resource counts", async (label, overrides, { azs, nats }) => {
    const r = await run(label, overrides);
    const internal = (overrides.odooInternalCidrs as string[] | undefined)?.length ?? 0;
    const bastion = overrides.bastionSecurityGroupId ? 1 : 0;
    expect(countsByType(r)).toEqual({
      "aws:ec2/vpc:Vpc": 1,
      "aws:ec2/internetGateway:InternetGateway": 1,
      "aws:ec2/subnet:Subnet": 2 * azs,
      "aws:ec2/routeTable:RouteTable": 1 + azs,
      "aws:ec2/route:Route": 1 + azs,
      "aws:ec2/routeTableAssociation:RouteTableAssociation": 2 * azs,
      "aws:ec2/eip:Eip": nats,
      "aws:ec2/natGateway:NatGateway": nats,
      [SG]: 5,
      // world 443 ×2, world 80 ×2 (redirect only), FLOWS ×4, internal CIDRs × 2 Odoo ports, bastion, endpoints
      [INGRESS]: 2 + 2 + 4 + 2 * internal + bastion + 1,
      // FLOWS ×4, 4 roles × (80, 443)
      [EGRESS]: 4 + 8,
      "aws:ec2/vpcEndpoint:VpcEndpoint": 6,
      "aws:route53/zone:Zone": 1,
    });
  });

  it.each(CASES)("%s: every child is named network-… and parented to the Network", async (label, overrides) => {
    const r = await run(label, overrides);
    const component = r.resources.find((x) => x.type === "odoo-stack:network:Network");
    expect(component?.name).toBe("network");
    for (const child of r.resources.filter((x) => x.custom)) {
      expect([child.name, child.parent]).toEqual([expect.stringMatching(/^network-/), component?.urn]);
    }
  });

  it.each(CASES)("%s: no subnet maps public IPs on launch; NAT EIPs are tagged egress-only", async (label, overrides) => {
    const r = await run(label, overrides);
    for (const subnet of ofType(r, "aws:ec2/subnet:Subnet")) expect(subnet.inputs.mapPublicIpOnLaunch).toBe(false);
    for (const eip of ofType(r, "aws:ec2/eip:Eip")) expect(eip.inputs.tags[TAG_KEYS.role]).toBe("nat");
  });

  it.each(CASES)(
    "%s: only the proxy's group admits the world, on 443 and on 80 for nginx's redirect (NET-2, NET-3)",
    async (label, overrides) => {
      const r = await run(label, overrides);
      const proxySg = named(r, "network-proxy-sg").id;
      const world = ofType(r, INGRESS).filter((rule) => rule.inputs.cidrIpv4 === "0.0.0.0/0" || rule.inputs.cidrIpv6 === "::/0");
      expect(
        world
          .map((rule) => [
            rule.inputs.fromPort,
            rule.inputs.toPort,
            rule.inputs.ipProtocol,
            rule.inputs.tags[TAG_KEYS.role],
            rule.inputs.cidrIpv4 ?? rule.inputs.cidrIpv6,
            rule.inputs.tags[TAG_KEYS.checklist],
          ])
          .sort(),
      ).toEqual([
        [443, 443, "tcp", "proxy", "0.0.0.0/0", "NET-2 NET-3"],
        [443, 443, "tcp", "proxy", "::/0", "NET-2 NET-3"],
        [80, 80, "tcp", "proxy", "0.0.0.0/0", "NET-3"],
        [80, 80, "tcp", "proxy", "::/0", "NET-3"],
      ]);
      for (const rule of world) expect(rule.inputs.securityGroupId).toBe(proxySg);
    },
  );

  it("opens no port 80 with httpRedirect = false", async () => {
    const r = await run("no redirect", { httpRedirect: false });
    const world = ofType(r, INGRESS).filter((rule) => rule.inputs.cidrIpv4 === "0.0.0.0/0" || rule.inputs.cidrIpv6 === "::/0");
    expect(world.map((rule) => rule.inputs.fromPort)).toEqual([443, 443]);
  });

  it.each(CASES)("%s: each tier admits only the tier in front of it, by security group (NET-4, NET-5, NET-6)", async (label, overrides) => {
    const r = await run(label, overrides);
    const sgId = (group: string) => named(r, `network-${group}-sg`).id;
    const rules = ofType(r, INGRESS).filter((rule) => rule.inputs.referencedSecurityGroupId !== undefined);
    const seen = rules.map((rule) => {
      const target = ["proxy", "odoo", "pgbouncer", "postgres", "endpoints"].find((g) => sgId(g) === rule.inputs.securityGroupId);
      const source =
        ["proxy", "odoo", "pgbouncer", "postgres"].find((g) => sgId(g) === rule.inputs.referencedSecurityGroupId) ??
        rule.inputs.referencedSecurityGroupId;
      return `${target} ${rule.inputs.fromPort}-${rule.inputs.toPort} from ${source} (${rule.inputs.tags[TAG_KEYS.checklist]})`;
    });
    expect(seen.sort()).toEqual(
      [
        "odoo 8069-8069 from proxy (NET-4)",
        "odoo 8072-8072 from proxy (NET-4)",
        "pgbouncer 6432-6432 from odoo (NET-5)",
        "postgres 5432-5432 from pgbouncer (NET-6)",
        ...(overrides.bastionSecurityGroupId ? [`postgres 5432-5432 from ${BASTION} (NET-6)`] : []),
      ].sort(),
    );
    // CIDR sources other than the world: the private internal ranges on Odoo, the VPC on endpoints.
    const cidrRules = ofType(r, INGRESS).filter((rule) => rule.inputs.cidrIpv4 !== undefined && rule.inputs.cidrIpv4 !== "0.0.0.0/0");
    expect(cidrRules.map((rule) => `${rule.inputs.tags[TAG_KEYS.role]} ${rule.inputs.fromPort} ${rule.inputs.cidrIpv4}`).sort()).toEqual(
      [
        "endpoints 443 10.40.0.0/16",
        ...((overrides.odooInternalCidrs as string[] | undefined) ?? []).flatMap((c) => [`odoo 8069 ${c}`, `odoo 8072 ${c}`]),
      ].sort(),
    );
  });

  it("gives every security group and rule the stack, role and checklist tags", async () => {
    const r = await run("2 AZs, single NAT", {});
    for (const res of [...ofType(r, SG), ...ofType(r, INGRESS), ...ofType(r, EGRESS)]) {
      expect(res.inputs.tags).toEqual(
        expect.objectContaining({
          [TAG_KEYS.stack]: "test",
          [TAG_KEYS.role]: expect.stringMatching(/^(proxy|odoo|pgbouncer|postgres|endpoints)$/),
        }),
      );
    }
    expect(ofType(r, SG).every((sg) => sg.inputs.ingress === undefined && sg.inputs.egress === undefined)).toBe(true);
  });

  it("routes private subnets through NAT and S3 through the gateway endpoint; SSM endpoints have private DNS", async () => {
    const r = await run("3 AZs, NAT per AZ", { availabilityZoneCount: 3, natGateways: "perAz" });
    const nats = ofType(r, "aws:ec2/natGateway:NatGateway").map((n) => n.id);
    const privateRoutes = ofType(r, "aws:ec2/route:Route").filter((route) => route.name.startsWith("network-private-"));
    expect(privateRoutes.map((route) => route.inputs.natGatewayId).sort()).toEqual([...nats].sort());
    const endpoints = ofType(r, "aws:ec2/vpcEndpoint:VpcEndpoint");
    expect(
      endpoints.filter((e) => e.inputs.vpcEndpointType === "Interface").map((e) => [e.inputs.serviceName, e.inputs.privateDnsEnabled]),
    ).toEqual(["ssm", "ssmmessages", "ec2messages", "logs", "monitoring"].map((s) => [`com.amazonaws.eu-west-1.${s}`, true]));
    const s3 = endpoints.find((e) => e.inputs.vpcEndpointType === "Gateway");
    expect(s3?.inputs.routeTableIds).toHaveLength(3);
    const zone = ofType(r, "aws:route53/zone:Zone")[0];
    expect(zone.inputs.name).toBe("odoo.internal");
    expect(zone.inputs.vpcs).toEqual([expect.objectContaining({ vpcId: named(r, "network-vpc").id })]);
  });

  it("refuses an AZ list that disagrees with the settings", async () => {
    const model = modelWith({ availabilityZoneCount: 3 });
    let error: unknown;
    await runUnderMocks(() => {
      try {
        new Network("network", { model, availabilityZones: ["eu-west-1a", "eu-west-1b"] });
      } catch (err) {
        error = err;
      }
    });
    expect(String(error)).toMatch(/'availabilityZones' has 2 zones but availabilityZoneCount is 3/);
  }, 60_000);
});
