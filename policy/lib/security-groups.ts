// One normalised view of the three ways AWS lets a program open a port, so each network
// policy is written once (STYLE: pulumi-policy-aws copies its check per type alias; we don't):
//   aws:ec2/securityGroup:SecurityGroup                       inline `ingress` blocks, tags
//     (and aws:ec2/defaultSecurityGroup:DefaultSecurityGroup, the VPC's default group, alike)
//   aws:ec2/securityGroupRule:SecurityGroupRule               type = ingress | egress, no tags
//   aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule one source per rule, tags
// Docs: https://www.pulumi.com/registry/packages/aws/api-docs/ec2/securitygroup/ (and the
// securitygrouprule / vpc securitygroupingressrule pages).
import { isPrivate, type Cidr } from "../../lib/cidr";
import { isRecord, numberOf, roleOf, stringList, type ResourceView } from "./resources";

export const SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup";
/** Adopts the VPC's default group: same inline shape as SecurityGroup, usually without tags. */
export const DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup";
export const SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule";
export const SECURITY_GROUP_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";
export const SECURITY_GROUP_EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule";

/** "tcp", "udp", "icmp", "icmpv6", "all", or the protocol number AWS was given. */
export type Protocol = string;

/** One ingress permission: a protocol, a port range and the sources it admits. */
export interface IngressPermission {
  readonly protocol: Protocol;
  /** Inclusive; for protocol "all" the range is 0–65535 whatever the resource says. */
  readonly fromPort: number;
  readonly toPort: number;
  readonly cidrs: readonly string[];
  readonly sourceSecurityGroups: readonly string[];
  readonly prefixLists: readonly string[];
  readonly self: boolean;
}

/** The ingress a resource declares, and the role of the security group it belongs to. */
export interface SecurityGroupIngress {
  /** How violation messages name the resource: "Security group (odoo-sg)". */
  readonly label: string;
  /**
   * The `odoo-stack:role` of the group, when the resource can show it: a SecurityGroup and a
   * SecurityGroupIngressRule carry tags; a SecurityGroupRule cannot, so its role is unknown.
   */
  readonly role: string | undefined;
  readonly canCarryRole: boolean;
  readonly permissions: readonly IngressPermission[];
}

const PROTOCOL_NAMES: Readonly<Record<string, Protocol>> = {
  "-1": "all",
  all: "all",
  "6": "tcp",
  tcp: "tcp",
  "17": "udp",
  udp: "udp",
  "1": "icmp",
  icmp: "icmp",
  "58": "icmpv6",
  icmpv6: "icmpv6",
};

export function normaliseProtocol(value: unknown): Protocol {
  const text = String(value ?? "")
    .trim()
    .toLowerCase();
  return PROTOCOL_NAMES[text] ?? text;
}

function permission(
  protocol: unknown,
  from: unknown,
  to: unknown,
  sources: Omit<IngressPermission, "protocol" | "fromPort" | "toPort">,
): IngressPermission {
  const p = normaliseProtocol(protocol);
  if (p === "all") return { protocol: p, fromPort: 0, toPort: 65535, ...sources };
  // A missing bound means the resource did not restrict it: read it as the widest range.
  return { protocol: p, fromPort: numberOf(from) ?? 0, toPort: numberOf(to) ?? 65535, ...sources };
}

/** The ingress of a security-group resource; undefined for every other type (and for egress rules). */
export function securityGroupIngressOf(resource: Pick<ResourceView, "type" | "name" | "props">): SecurityGroupIngress | undefined {
  const { type, name, props } = resource;
  switch (type) {
    case SECURITY_GROUP:
    case DEFAULT_SECURITY_GROUP: {
      const blocks = Array.isArray(props.ingress) ? props.ingress.filter(isRecord) : [];
      return {
        label: type === DEFAULT_SECURITY_GROUP ? `Default security group (${name})` : `Security group (${name})`,
        role: roleOf(props),
        canCarryRole: true,
        permissions: blocks.map((b) =>
          permission(b.protocol, b.fromPort, b.toPort, {
            cidrs: [...stringList(b.cidrBlocks), ...stringList(b.ipv6CidrBlocks)],
            sourceSecurityGroups: stringList(b.securityGroups),
            prefixLists: stringList(b.prefixListIds),
            self: b.self === true,
          }),
        ),
      };
    }
    case SECURITY_GROUP_RULE: {
      if (props.type !== "ingress") return undefined;
      return {
        label: `Security group rule (${name})`,
        role: undefined,
        canCarryRole: false,
        permissions: [
          permission(props.protocol, props.fromPort, props.toPort, {
            cidrs: [...stringList(props.cidrBlocks), ...stringList(props.ipv6CidrBlocks)],
            sourceSecurityGroups: typeof props.sourceSecurityGroupId === "string" ? [props.sourceSecurityGroupId] : [],
            prefixLists: stringList(props.prefixListIds),
            self: props.self === true,
          }),
        ],
      };
    }
    case SECURITY_GROUP_INGRESS_RULE: {
      const cidrs = [props.cidrIpv4, props.cidrIpv6].filter((c): c is string => typeof c === "string");
      return {
        label: `Security group ingress rule (${name})`,
        role: roleOf(props),
        canCarryRole: true,
        permissions: [
          permission(props.ipProtocol, props.fromPort, props.toPort, {
            cidrs,
            sourceSecurityGroups: typeof props.referencedSecurityGroupId === "string" ? [props.referencedSecurityGroupId] : [],
            prefixLists: typeof props.prefixListId === "string" ? [props.prefixListId] : [],
            self: false,
          }),
        ],
      };
    }
    default:
      return undefined;
  }
}

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** IPv4 CIDR with host bits cleared (AWS reads "10.0.0.1/8" as 10.0.0.0/8). */
function parseIpv4(text: string): Cidr | undefined {
  const m = IPV4_CIDR.exec(text.trim());
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return undefined;
  const address = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (address & mask) >>> 0, prefix };
}

/** First 16 bits and the prefix length of an IPv6 CIDR; enough to tell ULA/link-local from public. */
function ipv6Head(text: string): { readonly first: number; readonly prefix: number } | undefined {
  const m = /^([0-9a-f:]+)\/(\d{1,3})$/i.exec(text.trim());
  if (!m || !m[1].includes(":")) return undefined;
  const prefix = Number(m[2]);
  if (prefix > 128) return undefined;
  const head = m[1].startsWith("::") ? "0" : m[1].split(":")[0];
  return { first: parseInt(head || "0", 16), prefix };
}

/**
 * True when the CIDR admits any address outside private space: RFC 1918 for IPv4, unique-local
 * (fc00::/7) and link-local (fe80::/10) for IPv6. 0.0.0.0/0 and ::/0 are the obvious cases;
 * 8.8.8.0/24 or 0.0.0.0/1 are the internet too. A CIDR that cannot be parsed counts as the
 * internet, so a typo fails closed.
 */
export function reachesInternet(cidr: string): boolean {
  const v4 = parseIpv4(cidr);
  if (v4) return !isPrivate(v4);
  const v6 = ipv6Head(cidr);
  if (!v6) return true;
  const uniqueLocal = v6.prefix >= 7 && (v6.first & 0xfe00) === 0xfc00;
  const linkLocal = v6.prefix >= 10 && (v6.first & 0xffc0) === 0xfe80;
  return !(uniqueLocal || linkLocal);
}

export const describePorts = (p: IngressPermission): string =>
  p.protocol === "all"
    ? "all traffic"
    : p.fromPort === p.toPort
      ? `${p.protocol} ${p.fromPort}`
      : `${p.protocol} ${p.fromPort}-${p.toPort}`;
