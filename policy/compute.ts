// Compute: what an EC2 instance shows about exposure (NET-1, NET-2, NET-5, NET-6) and about
// the secrets delivered to it at boot (ODOO-1, AUTH-2): its public address, its metadata
// service (the instance role reads admin_passwd and the SCRAM verifiers from SSM), its disks
// (where the resolved files land) and its user data (which must carry no secret).
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { gunzipSync } from "zlib";
import { PUBLIC_INGRESS } from "../lib/ports";
import { SECRET_REF_OPEN_SOURCE } from "../lib/secret-ref";
import {
  booleanOf,
  idOf,
  isRecord,
  numberOf,
  stringList,
  PRIVATE_TIER_ITEMS,
  referencedResources,
  roleOf,
  TYPES,
  UnknownValues,
  type ResourceView,
  type StackResourceView,
} from "./lib/resources";

const itemFor = (role: string | undefined): string => (role !== undefined && PRIVATE_TIER_ITEMS[role]) || "NET-2";
const describeRole = (role: string | undefined): string => (role === undefined ? "an untagged host" : `a ${role} host`);

const label = (r: Pick<ResourceView, "type" | "name">): string =>
  r.type === TYPES.launchTemplate ? `Launch template (${r.name})` : `EC2 instance (${r.name})`;

/** Network interfaces of a launch template (its only way to ask for a public address). */
const templateInterfaces = (props: Readonly<Record<string, unknown>>): Record<string, unknown>[] =>
  Array.isArray(props.networkInterfaces) ? props.networkInterfaces.filter(isRecord) : [];

/**
 * NET-1, NET-5, NET-6 (and NET-2: the proxy is the only host with a public address). The
 * proxy itself is reached through an Elastic IP, so it may ask for one; every other tier may not.
 */
export const instanceNoPublicIp: ResourceValidationPolicy = {
  name: "instance-no-public-ip",
  description: `Checks whether an EC2 instance or launch template outside the ${PUBLIC_INGRESS.role} tier asks for a public IPv4 address or any IPv6 address (NET-1, NET-2, NET-5, NET-6).`,
  validateResource: (args, reportViolation) => {
    if (args.type !== TYPES.instance && args.type !== TYPES.launchTemplate) return;
    const role = roleOf(args.props);
    if (role === PUBLIC_INGRESS.role) return;
    const asks =
      args.type === TYPES.instance
        ? booleanOf(args.props.associatePublicIpAddress) === true
        : templateInterfaces(args.props).some((n) => booleanOf(n.associatePublicIpAddress) === true);
    if (asks) {
      reportViolation(
        `${label(args)} must not have a public IP address: it is ${describeRole(role)}, and only the ${PUBLIC_INGRESS.role} is reachable from the internet (${itemFor(role)}).`,
      );
    }
    // IPv6 addresses from a VPC's Amazon-provided block are global unicast: public by nature.
    const ipv6 = [args.props, ...templateInterfaces(args.props)].some(
      (n) =>
        (numberOf(n.ipv6AddressCount) ?? 0) > 0 ||
        stringList(n.ipv6Addresses).length > 0 ||
        (Array.isArray(n.ipv6Addresses) && n.ipv6Addresses.length > 0),
    );
    if (ipv6) {
      reportViolation(
        `${label(args)} must not have an IPv6 address (ipv6AddressCount / ipv6Addresses): a VPC's IPv6 addresses are globally routable, and it is ${describeRole(role)} (${itemFor(role)}).`,
      );
    }
  },
};

/**
 * IMDSv2 only: with IMDSv1 any SSRF in Odoo (or a proxied request) can read the instance
 * role's credentials, and that role reads admin_passwd and the database passwords from SSM
 * (ODOO-1, AUTH-2). Disabling the metadata service altogether is as good.
 */
export const instanceImdsv2Required: ResourceValidationPolicy = {
  name: "instance-imdsv2-required",
  description:
    "Checks whether an EC2 instance or launch template requires IMDSv2 session tokens (httpTokens = required) with a hop limit of 1, protecting the role that reads the stack's secrets (ODOO-1, AUTH-2).",
  validateResource: (args, reportViolation) => {
    if (args.type !== TYPES.instance && args.type !== TYPES.launchTemplate) return;
    const options = isRecord(args.props.metadataOptions) ? args.props.metadataOptions : {};
    if (options.httpEndpoint === "disabled") return;
    if (options.httpTokens !== "required") {
      const now = options.httpTokens === undefined ? "not set (AWS then also accepts IMDSv1)" : JSON.stringify(options.httpTokens);
      reportViolation(`${label(args)} must set metadataOptions.httpTokens = "required" (IMDSv2); it is ${now} (ODOO-1, AUTH-2).`);
    }
    // A token answer crosses one hop only: a container or anything forwarding packets on the
    // host cannot fetch the role's credentials.
    const hops = numberOf(options.httpPutResponseHopLimit);
    if (hops !== undefined && hops > 1) {
      reportViolation(
        `${label(args)} must keep metadataOptions.httpPutResponseHopLimit at 1; it is ${hops}, so forwarded traffic can fetch the role that reads the stack's secrets (ODOO-1, AUTH-2).`,
      );
    }
  },
};

/**
 * The root volume holds odoo.conf and userlist.txt once the apply script has resolved their
 * secrets (ODOO-1, AUTH-2): every disk of a host is encrypted, stated on the resource (an
 * account-level default cannot be seen, and can be switched off).
 */
export const instanceVolumesEncrypted: ResourceValidationPolicy = {
  name: "instance-volumes-encrypted",
  description:
    "Checks whether every block device of an EC2 instance or launch template is encrypted, since resolved secrets land on them (ODOO-1, AUTH-2).",
  validateResource: (args, reportViolation) => {
    const { props } = args;
    const devices: { readonly what: string; readonly encrypted: unknown }[] = [];
    if (args.type === TYPES.instance) {
      const root = isRecord(props.rootBlockDevice) ? props.rootBlockDevice : {};
      devices.push({ what: "its root volume (rootBlockDevice.encrypted)", encrypted: root.encrypted });
      const ebs = Array.isArray(props.ebsBlockDevices) ? props.ebsBlockDevices.filter(isRecord) : [];
      for (const d of ebs)
        devices.push({ what: `its volume ${String(d.deviceName ?? "?")} (ebsBlockDevices[].encrypted)`, encrypted: d.encrypted });
    } else if (args.type === TYPES.launchTemplate) {
      const mappings = Array.isArray(props.blockDeviceMappings) ? props.blockDeviceMappings.filter(isRecord) : [];
      for (const m of mappings) {
        const ebs = isRecord(m.ebs) ? m.ebs : undefined;
        if (ebs)
          devices.push({
            what: `its volume ${String(m.deviceName ?? "?")} (blockDeviceMappings[].ebs.encrypted)`,
            encrypted: ebs.encrypted,
          });
      }
    } else {
      return;
    }
    for (const d of devices) {
      if (booleanOf(d.encrypted) !== true) reportViolation(`${label(args)} must encrypt ${d.what} (ODOO-1, AUTH-2).`);
    }
  },
};

/** Secrets that must never appear in user data, which any process on the host can read from IMDS. */
const USER_DATA_SECRETS: readonly { readonly pattern: RegExp; readonly what: string }[] = [
  { pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----/, what: "a private key" },
  { pattern: new RegExp(`\\badmin_passwd\\s*[=:]\\s*(?!${SECRET_REF_OPEN_SOURCE})\\S`), what: "a literal admin_passwd" },
  { pattern: new RegExp(`\\bdb_password\\s*[=:]\\s*(?!${SECRET_REF_OPEN_SOURCE})\\S`), what: "a literal db_password" },
  { pattern: new RegExp(`\\bPGPASSWORD\\s*=\\s*(?!${SECRET_REF_OPEN_SOURCE})\\S`), what: "a PGPASSWORD" },
  { pattern: /SCRAM-SHA-256\$\d+:/, what: "a SCRAM verifier" },
  { pattern: /\bmd5[0-9a-f]{32}\b/, what: "an MD5 password hash" },
];

/** Text of a base64 blob, gunzipped when it is gzip (cloud-init's gz+b64 write_files). */
function decodeBlob(blob: string): string {
  const bytes = Buffer.from(blob, "base64");
  try {
    return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString("utf8") : bytes.toString("utf8");
  } catch {
    return "";
  }
}

/**
 * Plain text of user data: as given or base64 (userDataBase64), plus the decoded text of every
 * base64 blob inside it (write_files with encoding b64 / gz+b64), so nothing hides in encoding.
 */
function userDataText(props: Readonly<Record<string, unknown>>): string {
  const parts: string[] = [];
  if (typeof props.userData === "string") parts.push(props.userData);
  if (typeof props.userDataBase64 === "string") parts.push(decodeBlob(props.userDataBase64));
  const blobs = parts.flatMap((p) => p.match(/[A-Za-z0-9+/]{40,}={0,2}/g) ?? []);
  return [...parts, ...blobs.map(decodeBlob)].join("\n");
}

/**
 * ODOO-1: user data only bootstraps. It is readable by every process on the host through the
 * metadata service and shown in the console; secrets reach the host from SSM at apply time.
 */
export const instanceUserDataNoSecrets: ResourceValidationPolicy = {
  name: "instance-user-data-no-secrets",
  description:
    "Checks whether an EC2 instance's user data carries a secret (a password, a private key, a password hash) instead of fetching it from SSM at apply time (ODOO-1).",
  validateResource: (args, reportViolation) => {
    if (args.type !== TYPES.instance) return;
    const text = userDataText(args.props);
    for (const s of USER_DATA_SECRETS) {
      if (s.pattern.test(text)) {
        reportViolation(
          `${label(args)} must not carry ${s.what} in its user data; deliver secrets as {{ssm:…}} references resolved on the host (ODOO-1).`,
        );
      }
    }
  },
};

/** Route tables a subnet uses, through its RouteTableAssociation resources. */
function routeTablesOf(subnet: StackResourceView, resources: readonly StackResourceView[]): StackResourceView[] {
  const tables = resources.filter((r) => r.type === ROUTE_TABLE);
  return resources
    .filter((r) => r.type === ROUTE_TABLE_ASSOCIATION && referencedResources(r, "subnetId", [subnet]).length > 0)
    .flatMap((a) => referencedResources(a, "routeTableId", tables));
}

/** The internet gateway a route table sends traffic to, by a Route resource or an inline route; undefined when none. */
function internetGatewayRoute(table: StackResourceView, resources: readonly StackResourceView[]): string | undefined {
  const gateways = resources.filter((r) => r.type === INTERNET_GATEWAY);
  const isIgw = (holder: StackResourceView, value: unknown, property: string): boolean =>
    (typeof value === "string" && value.startsWith("igw-")) || referencedResources(holder, property, gateways, () => value).length > 0;
  for (const route of resources.filter((r) => r.type === ROUTE && referencedResources(r, "routeTableId", [table]).length > 0)) {
    if (isIgw(route, route.props.gatewayId, "gatewayId")) return `route (${route.name})`;
  }
  const inline = (Array.isArray(table.props.routes) ? table.props.routes : []).filter(isRecord);
  if (
    inline.some((r) => typeof r.gatewayId === "string" && (r.gatewayId.startsWith("igw-") || gateways.some((g) => idOf(g) === r.gatewayId)))
  )
    return "an inline route";
  return undefined;
}

/** The instances a property of an Elastic IP (association) reaches: by instance or by network interface. */
function attachedInstances(
  r: StackResourceView,
  properties: readonly string[],
  instances: readonly StackResourceView[],
): StackResourceView[] {
  const out = new Set<StackResourceView>();
  for (const property of properties) {
    for (const i of referencedResources(r, property, instances)) out.add(i);
    const value = r.props[property];
    if (typeof value === "string" && value !== "")
      for (const i of instances.filter((x) => x.props.primaryNetworkInterfaceId === value)) out.add(i);
  }
  return [...out];
}

const ROUTE = "aws:ec2/route:Route";
const ROUTE_TABLE = "aws:ec2/routeTable:RouteTable";
const ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation";
const INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway";

/**
 * What a single instance cannot show: a subnet that hands out public addresses by default or
 * routes to the internet gateway (a public subnet), an Elastic IP attached to a private tier
 * (by instance or by its network interface), or a public address the engine reports anyway
 * (NET-1, NET-2, NET-5, NET-6).
 */
export const privateHostsHaveNoPublicAddress: StackValidationPolicy = {
  name: "private-hosts-have-no-public-address",
  description: `Checks whether an instance outside the ${PUBLIC_INGRESS.role} tier runs in a public subnet (mapPublicIpOnLaunch, a route to the internet gateway), gets an Elastic IP, or shows a public IP (NET-1, NET-2, NET-5, NET-6).`,
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const instances = resources.filter((r) => r.type === TYPES.instance);
    const subnets = resources.filter((r) => r.type === TYPES.subnet);
    const unknown = new UnknownValues();
    for (const instance of instances) {
      unknown.run(() => {
        const role = roleOf(instance.props);
        if (role === PUBLIC_INGRESS.role) return;
        const subject = `EC2 instance (${instance.name})`;
        const publicIp = instance.props.publicIp;
        if (typeof publicIp === "string" && publicIp !== "") {
          reportViolation(
            `${subject} must have no public IP; the engine reports ${publicIp}, and it is ${describeRole(role)} (${itemFor(role)}).`,
            instance.urn,
          );
        }
        for (const subnet of referencedResources(instance, "subnetId", subnets)) {
          if (booleanOf(instance.props.associatePublicIpAddress) === undefined && booleanOf(subnet.props.mapPublicIpOnLaunch) === true) {
            reportViolation(
              `${subject} must set associatePublicIpAddress = false: its subnet (${subnet.name}) maps public IPs on launch, and it is ${describeRole(role)} (${itemFor(role)}).`,
              instance.urn,
            );
          }
          for (const table of routeTablesOf(subnet, resources)) {
            const via = internetGatewayRoute(table, resources);
            if (via !== undefined) {
              reportViolation(
                `${subject} must run in a private subnet: its subnet (${subnet.name}) routes to the internet gateway through route table (${table.name}), ${via}; it is ${describeRole(role)} (${itemFor(role)}).`,
                instance.urn,
              );
            }
          }
        }
      });
    }
    const attachments: { readonly r: StackResourceView; readonly properties: readonly string[] }[] = [
      ...resources.filter((r) => r.type === TYPES.eip).map((r) => ({ r, properties: ["instance", "networkInterface"] })),
      ...resources.filter((r) => r.type === TYPES.eipAssociation).map((r) => ({ r, properties: ["instanceId", "networkInterfaceId"] })),
    ];
    for (const { r, properties } of attachments) {
      unknown.run(() => {
        for (const instance of attachedInstances(r, properties, instances)) {
          const role = roleOf(instance.props);
          if (role === PUBLIC_INGRESS.role) continue;
          const what = r.type === TYPES.eip ? "Elastic IP" : "Elastic IP association";
          reportViolation(
            `${what} (${r.name}) must not attach a public address to EC2 instance (${instance.name}): it is ${describeRole(role)}, and only the ${PUBLIC_INGRESS.role} is reachable from the internet (${itemFor(role)}).`,
            r.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

export const policies: Policies = [
  instanceNoPublicIp,
  instanceImdsv2Required,
  instanceVolumesEncrypted,
  instanceUserDataNoSecrets,
  privateHostsHaveNoPublicAddress,
];
