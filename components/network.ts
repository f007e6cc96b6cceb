// The VPC every host lives in: public subnets (proxy, NAT), private subnets (Odoo, PgBouncer,
// PostgreSQL), one security group per role whose rules come from the port catalog alone
// (lib/ports.ts), VPC endpoints so SSM works without the internet, and the private zone that
// carries the names TLS certificates are issued for (TLS-3).
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackModel } from "../lib/model";
import {
  FLOWS,
  PORTS,
  PUBLIC_INGRESS,
  PUBLIC_REDIRECT,
  ROLES,
  SERVICE_PEERS,
  SMTP_EGRESS_PORTS,
  SMTP_EGRESS_ROLE,
  WORLD_EGRESS_PORTS,
  type Role,
  type ServicePeer,
} from "../lib/ports";
import { resourceTags, TAG_KEYS, type TagRole } from "./tags";

/** One security group per host role, plus the interface endpoints' group and the EFS mount targets' (shared filestore only). */
export type SecurityGroupName = Role | "endpoints" | ServicePeer;
export const SECURITY_GROUP_NAMES: readonly SecurityGroupName[] = [...ROLES, "endpoints", ...SERVICE_PEERS];

/** Security group ids by name; the service peers' groups exist only when the stack uses them. */
export type SecurityGroupIds<T> = Readonly<Record<Role | "endpoints", T>> & { readonly [P in ServicePeer]?: T };

/** Who is on the other side of a rule. */
export type RulePeer =
  | { readonly kind: "group"; readonly group: SecurityGroupName }
  | { readonly kind: "externalGroup"; readonly groupId: string; readonly label: string }
  | { readonly kind: "cidr"; readonly cidr: string };

/** A normalised security-group rule: what the Network creates, one resource per entry. */
export interface SecurityGroupRuleSpec {
  /** Stable and unique; the rule's resource name is `${networkName}-${key}`. */
  readonly key: string;
  readonly group: SecurityGroupName;
  readonly direction: "ingress" | "egress";
  readonly port: number;
  readonly peer: RulePeer;
  /** Checklist IDs this rule implements; empty for plumbing (egress to AWS APIs, endpoints). */
  readonly checklist: readonly string[];
  readonly description: string;
}

export interface SecurityGroupRuleInput {
  readonly vpcCidr: string;
  /** Private ranges (VPN, office) that may reach Odoo besides the proxy (NET-4). */
  readonly odooInternalCidrs: readonly string[];
  /** A bastion's security group that may reach PostgreSQL besides PgBouncer (NET-6). */
  readonly bastionSecurityGroupId?: string;
  /** The service peers the stack has (EFS with a shared filestore). Optional. Defaults to none. */
  readonly servicePeers?: readonly ServicePeer[];
  /** Open port 80 on the proxy for nginx's redirect-only server (NET-3). Optional. Defaults to false. */
  readonly httpRedirect?: boolean;
  /** Outbound mail: the SMTP port the Odoo hosts reach (settings.mail.port). Optional. Defaults to none. */
  readonly mailPort?: number;
}

export const WORLD_IPV4 = "0.0.0.0/0";
export const WORLD_IPV6 = "::/0";

const peerLabel = (peer: RulePeer): string => {
  switch (peer.kind) {
    case "group":
      return peer.group;
    case "externalGroup":
      return peer.label;
    case "cidr":
      if (peer.cidr === WORLD_IPV4) return "world-ipv4";
      if (peer.cidr === WORLD_IPV6) return "world-ipv6";
      return peer.cidr.replace(/[./:]/g, "-");
  }
};

/**
 * Every rule of every security group, derived from FLOWS, PUBLIC_INGRESS and
 * WORLD_EGRESS_PORTS and nothing else (DESIGN principle 3). Pure: the tests and the policy
 * pack can compare deployed rules against this list.
 */
export function securityGroupRules(input: SecurityGroupRuleInput): SecurityGroupRuleSpec[] {
  const rules: Omit<SecurityGroupRuleSpec, "key">[] = [];

  // Both address families of the internet, to one public port of the proxy.
  const fromTheInternet = (entry: typeof PUBLIC_INGRESS | typeof PUBLIC_REDIRECT, checklist: SecurityGroupRuleSpec["checklist"]) => {
    const port = PORTS[entry.port];
    for (const cidr of [WORLD_IPV4, WORLD_IPV6]) {
      rules.push({
        group: entry.role,
        direction: "ingress",
        port: port.port,
        peer: { kind: "cidr", cidr },
        checklist,
        description: `${port.description} from the internet`,
      });
    }
  };
  // NET-2, NET-3: the world reaches 443 on the proxy, and nothing else anywhere.
  fromTheInternet(PUBLIC_INGRESS, ["NET-2", "NET-3"]);
  // NET-3's exception: port 80 on the proxy, where nginx answers only a redirect to https://.
  if (input.httpRedirect === true) fromTheInternet(PUBLIC_REDIRECT, ["NET-3"]);

  // NET-4, NET-5, NET-6: each tier accepts only the tier in front of it, by security group
  // (not by address), and the tier in front may open connections only to it.
  const peers = input.servicePeers ?? [];
  for (const flow of FLOWS) {
    if ((SERVICE_PEERS as readonly string[]).includes(flow.to) && !peers.includes(flow.to as ServicePeer)) continue;
    const port = PORTS[flow.port];
    rules.push({
      group: flow.to,
      direction: "ingress",
      port: port.port,
      peer: { kind: "group", group: flow.from },
      checklist: [flow.checklist],
      description: `${port.description} from the ${flow.from} hosts`,
    });
    rules.push({
      group: flow.from,
      direction: "egress",
      port: port.port,
      peer: { kind: "group", group: flow.to },
      checklist: [flow.checklist],
      description: `${port.description} to the ${flow.to} hosts`,
    });
  }

  // NET-4: operators' private networks may reach Odoo directly, on Odoo's ports only.
  const odooPorts = FLOWS.filter((f) => f.to === "odoo").map((f) => PORTS[f.port]);
  for (const cidr of input.odooInternalCidrs) {
    for (const port of odooPorts) {
      rules.push({
        group: "odoo",
        direction: "ingress",
        port: port.port,
        peer: { kind: "cidr", cidr },
        checklist: ["NET-4"],
        description: `${port.description} from the internal network ${cidr}`,
      });
    }
  }

  // NET-6: an optional bastion may reach PostgreSQL, on PostgreSQL's port only.
  if (input.bastionSecurityGroupId !== undefined) {
    for (const port of FLOWS.filter((f) => f.to === "postgres").map((f) => PORTS[f.port])) {
      rules.push({
        group: "postgres",
        direction: "ingress",
        port: port.port,
        peer: { kind: "externalGroup", groupId: input.bastionSecurityGroupId, label: "bastion" },
        checklist: ["NET-6"],
        description: `${port.description} from the bastion`,
      });
    }
  }

  // Outbound to package mirrors (80) and AWS APIs, S3, ACME (443); replies to inbound
  // connections need no rule (security groups are stateful).
  for (const role of ROLES) {
    for (const port of WORLD_EGRESS_PORTS) {
      rules.push({
        group: role,
        direction: "egress",
        port,
        peer: { kind: "cidr", cidr: WORLD_IPV4 },
        checklist: [],
        description: port === 80 ? "HTTP to package mirrors" : "HTTPS to AWS APIs, S3 and ACME",
      });
    }
  }

  // Outbound mail (issue 12 item 5): exactly the configured SMTP port, from the Odoo hosts only.
  if (input.mailPort !== undefined) {
    if (!SMTP_EGRESS_PORTS.includes(input.mailPort))
      throw new Error(`mail port ${input.mailPort} is not one of ${SMTP_EGRESS_PORTS.join(", ")}`);
    rules.push({
      group: SMTP_EGRESS_ROLE,
      direction: "egress",
      port: input.mailPort,
      peer: { kind: "cidr", cidr: WORLD_IPV4 },
      checklist: [],
      description: "SMTP (STARTTLS) to the mail relay",
    });
  }

  // The interface endpoints (SSM, logs, metrics) answer HTTPS from inside the VPC only.
  rules.push({
    group: "endpoints",
    direction: "ingress",
    port: PORTS.https.port,
    peer: { kind: "cidr", cidr: input.vpcCidr },
    checklist: [],
    description: "HTTPS to the VPC interface endpoints from inside the VPC",
  });

  const keyed = rules.map((r) => ({ ...r, key: `${r.group}-${r.direction === "ingress" ? "in" : "out"}-${r.port}-${peerLabel(r.peer)}` }));
  const seen = new Set<string>();
  for (const r of keyed) {
    if (seen.has(r.key)) throw new Error(`security group rule ${r.key} is generated twice; odooInternalCidrs must not repeat a range`);
    seen.add(r.key);
  }
  return keyed;
}

/** Interface endpoints SSM Session Manager, the agent and CloudWatch need from private subnets. */
export const INTERFACE_ENDPOINT_SERVICES = ["ssm", "ssmmessages", "ec2messages", "logs", "monitoring"] as const;

export interface NetworkArgs {
  readonly model: StackModel;
  /**
   * Availability zone names, one per public/private subnet pair, resolved by index.ts before
   * any resource (lib/aws-specs.ts). Plain: the number of subnets depends on it.
   */
  readonly availabilityZones: readonly string[];
}

/**
 * VPC, subnets over ≥2 AZs, NAT, per-role security groups, SSM/CloudWatch/S3 endpoints and
 * the private Route 53 zone.
 */
export class Network extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly vpcCidr: string;
  readonly availabilityZones: readonly string[];
  /** Index i sits in availabilityZones[i]; HostId.subnetIndex points into these. */
  readonly publicSubnetIds: pulumi.Output<string>[];
  readonly privateSubnetIds: pulumi.Output<string>[];
  readonly privateRouteTableIds: pulumi.Output<string>[];
  readonly securityGroupIds: SecurityGroupIds<pulumi.Output<string>>;
  /** Private hosted zone of settings.internalZone, attached to the VPC. */
  readonly privateZoneId: pulumi.Output<string>;
  /** Egress-only addresses of the NAT gateways (for allow-lists of outside services). */
  readonly natPublicIps: pulumi.Output<string>[];

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:network:Network", name, {}, opts);
    const { model } = args;
    const settings = model.settings;
    const zones = args.availabilityZones;
    if (
      zones.length !== settings.availabilityZoneCount ||
      zones.length !== settings.publicSubnetCidrs.length ||
      zones.length !== settings.privateSubnetCidrs.length
    ) {
      throw new Error(
        `Network ${name}: 'availabilityZones' has ${zones.length} zones but availabilityZoneCount is ${settings.availabilityZoneCount} ` +
          `with ${settings.publicSubnetCidrs.length} public and ${settings.privateSubnetCidrs.length} private subnet CIDRs; they must all agree.`,
      );
    }
    const parent = { parent: this };
    const tags = (role: TagRole, part: string, extra: Record<string, string> = {}) => resourceTags(model, role, `${name}-${part}`, extra);

    const vpc = new aws.ec2.Vpc(
      `${name}-vpc`,
      {
        cidrBlock: settings.vpcCidr,
        // Both on: the private zone and the interface endpoints' private DNS need them.
        enableDnsSupport: true,
        enableDnsHostnames: true,
        tags: tags("network", "vpc"),
      },
      parent,
    );
    const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: tags("network", "igw") }, parent);

    const publicSubnets = zones.map(
      (az, i) =>
        new aws.ec2.Subnet(
          `${name}-public-${az}`,
          {
            vpcId: vpc.id,
            availabilityZone: az,
            cidrBlock: settings.publicSubnetCidrs[i],
            // NET-1/NET-2: nothing launched here gets a public address by default; the proxy's
            // Elastic IP is the only inbound public address of the stack.
            mapPublicIpOnLaunch: false,
            tags: tags("network", `public-${az}`),
          },
          parent,
        ),
    );
    const privateSubnets = zones.map(
      (az, i) =>
        new aws.ec2.Subnet(
          `${name}-private-${az}`,
          {
            vpcId: vpc.id,
            availabilityZone: az,
            cidrBlock: settings.privateSubnetCidrs[i],
            mapPublicIpOnLaunch: false,
            tags: tags("network", `private-${az}`),
          },
          parent,
        ),
    );

    const publicRoutes = new aws.ec2.RouteTable(`${name}-public-routes`, { vpcId: vpc.id, tags: tags("network", "public-routes") }, parent);
    new aws.ec2.Route(
      `${name}-public-default-route`,
      { routeTableId: publicRoutes.id, destinationCidrBlock: "0.0.0.0/0", gatewayId: igw.id },
      parent,
    );
    publicSubnets.forEach(
      (subnet, i) =>
        new aws.ec2.RouteTableAssociation(
          `${name}-public-${zones[i]}-routes`,
          { subnetId: subnet.id, routeTableId: publicRoutes.id },
          parent,
        ),
    );

    // "single" saves a NAT's hourly cost; "perAz" keeps each AZ's egress up when another AZ fails.
    const natZones = settings.natGateways === "perAz" ? zones.map((_, i) => i) : [0];
    const nats = natZones.map((i) => {
      const az = zones[i];
      const eip = new aws.ec2.Eip(`${name}-nat-eip-${az}`, { domain: "vpc", tags: tags("nat", `nat-eip-${az}`) }, parent);
      const nat = new aws.ec2.NatGateway(
        `${name}-nat-${az}`,
        {
          allocationId: eip.allocationId,
          subnetId: publicSubnets[i].id,
          connectivityType: "public",
          tags: tags("nat", `nat-${az}`),
        },
        { parent: this, dependsOn: [igw] },
      );
      return { nat, eip };
    });

    const privateRouteTables = privateSubnets.map((subnet, i) => {
      const az = zones[i];
      const table = new aws.ec2.RouteTable(
        `${name}-private-routes-${az}`,
        { vpcId: vpc.id, tags: tags("network", `private-routes-${az}`) },
        parent,
      );
      const nat = nats[settings.natGateways === "perAz" ? i : 0].nat;
      new aws.ec2.Route(
        `${name}-private-default-route-${az}`,
        { routeTableId: table.id, destinationCidrBlock: "0.0.0.0/0", natGatewayId: nat.id },
        parent,
      );
      new aws.ec2.RouteTableAssociation(`${name}-private-${az}-routes`, { subnetId: subnet.id, routeTableId: table.id }, parent);
      return table;
    });

    const servicePeers: ServicePeer[] = settings.sharedFilestore ? ["efs"] : [];
    const groupNames = SECURITY_GROUP_NAMES.filter(
      (g) => !(SERVICE_PEERS as readonly string[]).includes(g) || servicePeers.includes(g as ServicePeer),
    );
    const groups = {} as Record<SecurityGroupName, aws.ec2.SecurityGroup>;
    for (const group of groupNames) {
      // No inline rules: the provider then removes AWS's default allow-all egress, and every
      // rule below is a separate resource a policy can inspect.
      groups[group] = new aws.ec2.SecurityGroup(
        `${name}-${group}-sg`,
        {
          vpcId: vpc.id,
          description:
            group === "endpoints"
              ? "odoo-stack VPC interface endpoints"
              : group === "efs"
                ? "odoo-stack EFS mount targets (shared filestore)"
                : `odoo-stack ${group} hosts`,
          tags: tags(group, `${group}-sg`),
        },
        parent,
      );
    }

    for (const rule of securityGroupRules({
      vpcCidr: settings.vpcCidr,
      odooInternalCidrs: settings.odooInternalCidrs,
      bastionSecurityGroupId: settings.bastionSecurityGroupId,
      servicePeers,
      httpRedirect: settings.httpRedirect,
      ...(settings.mail === undefined ? {} : { mailPort: settings.mail.port }),
    })) {
      const peer =
        rule.peer.kind === "group"
          ? { referencedSecurityGroupId: groups[rule.peer.group].id }
          : rule.peer.kind === "externalGroup"
            ? { referencedSecurityGroupId: rule.peer.groupId }
            : rule.peer.cidr.includes(":")
              ? { cidrIpv6: rule.peer.cidr }
              : { cidrIpv4: rule.peer.cidr };
      const ruleArgs = {
        securityGroupId: groups[rule.group].id,
        ipProtocol: "tcp",
        fromPort: rule.port,
        toPort: rule.port,
        description: rule.checklist.length > 0 ? `${rule.description} (${rule.checklist.join(", ")})` : rule.description,
        tags: tags(rule.group, rule.key, rule.checklist.length > 0 ? { [TAG_KEYS.checklist]: rule.checklist.join(" ") } : {}),
        ...peer,
      };
      if (rule.direction === "ingress") new aws.vpc.SecurityGroupIngressRule(`${name}-${rule.key}`, ruleArgs, parent);
      else new aws.vpc.SecurityGroupEgressRule(`${name}-${rule.key}`, ruleArgs, parent);
    }

    // Session Manager and the CloudWatch agent reach AWS through these, not through the NAT.
    for (const service of INTERFACE_ENDPOINT_SERVICES) {
      new aws.ec2.VpcEndpoint(
        `${name}-endpoint-${service}`,
        {
          vpcId: vpc.id,
          serviceName: `com.amazonaws.${settings.region}.${service}`,
          vpcEndpointType: "Interface",
          privateDnsEnabled: true,
          subnetIds: privateSubnets.map((s) => s.id),
          securityGroupIds: [groups.endpoints.id],
          tags: tags("endpoints", `endpoint-${service}`),
        },
        parent,
      );
    }
    // Config objects and backups travel to S3 over the gateway endpoint (free, no NAT bytes).
    new aws.ec2.VpcEndpoint(
      `${name}-endpoint-s3`,
      {
        vpcId: vpc.id,
        serviceName: `com.amazonaws.${settings.region}.s3`,
        vpcEndpointType: "Gateway",
        routeTableIds: privateRouteTables.map((t) => t.id),
        tags: tags("endpoints", "endpoint-s3"),
      },
      parent,
    );

    const zone = new aws.route53.Zone(
      `${name}-internal-zone`,
      {
        name: settings.internalZone,
        comment: `odoo-stack ${model.stack}: private names of the hosts (TLS-3 SANs)`,
        vpcs: [{ vpcId: vpc.id }],
        tags: tags("network", "internal-zone"),
      },
      parent,
    );

    this.vpcId = vpc.id;
    this.vpcCidr = settings.vpcCidr;
    this.availabilityZones = [...zones];
    this.publicSubnetIds = publicSubnets.map((s) => s.id);
    this.privateSubnetIds = privateSubnets.map((s) => s.id);
    this.privateRouteTableIds = privateRouteTables.map((t) => t.id);
    this.securityGroupIds = Object.fromEntries(groupNames.map((g) => [g, groups[g].id])) as SecurityGroupIds<pulumi.Output<string>>;
    this.privateZoneId = zone.zoneId;
    this.natPublicIps = nats.map((n) => n.eip.publicIp);
    this.registerOutputs({
      vpcId: this.vpcId,
      publicSubnetIds: this.publicSubnetIds,
      privateSubnetIds: this.privateSubnetIds,
      securityGroupIds: this.securityGroupIds,
      privateZoneId: this.privateZoneId,
      natPublicIps: this.natPublicIps,
    });
  }
}
