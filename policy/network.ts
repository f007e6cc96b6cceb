// Network and exposure: CHECKLIST §1 (NET-1 … NET-6).
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import {
  FLOWS,
  PORTS,
  PUBLIC_INGRESS,
  PUBLIC_REDIRECT,
  SMTP_EGRESS_PORTS,
  SMTP_EGRESS_ROLE,
  WORLD_EGRESS_PORTS,
  type Role,
  type ServicePeer,
} from "../lib/ports";
import { nginxServers } from "./lib/nginx";
import { parseNginx, parseOdooConf, parsePgHba, type NginxDirective } from "./lib/parse";
import {
  booleanOf,
  isRecord,
  hostViews,
  hostByName,
  idOf,
  PRIVATE_TIER_ITEMS,
  referencedResources,
  renderedFileOfKind,
  renderedFiles,
  fileKindOf,
  roleOf,
  ROLE_TAG,
  stringList,
  TYPES,
  UnknownValues,
  validateRenderedFile,
  fileLabel,
  type StackResourceView,
} from "./lib/resources";
import {
  DEFAULT_SECURITY_GROUP,
  describePorts,
  normaliseProtocol,
  reachesInternet,
  securityGroupIngressOf,
  SECURITY_GROUP,
  SECURITY_GROUP_EGRESS_RULE,
  SECURITY_GROUP_INGRESS_RULE,
  SECURITY_GROUP_RULE,
  type IngressPermission,
  type SecurityGroupIngress,
} from "./lib/security-groups";

const PUBLIC_PORT = PORTS[PUBLIC_INGRESS.port].port;
/** NET-3's exception: plain HTTP on the proxy, answered by a redirect-only server. */
const REDIRECT_PORT = PORTS[PUBLIC_REDIRECT.port].port;

const isSinglePort = (p: IngressPermission, port: number): boolean => p.protocol === "tcp" && p.fromPort === port && p.toPort === port;

/** Settings shared by the policies that allow NET-3's redirect exception. */
interface RedirectPortsConfig {
  /** Plain-HTTP ports (e.g. [80]) on which a server that only redirects to https:// may listen. */
  readonly allowedRedirectPorts?: readonly number[];
}

const REDIRECT_PORTS_SETTING = {
  type: "array" as const,
  items: { type: "integer" as const },
  default: [REDIRECT_PORT],
  description: `Plain-HTTP ports on which the proxy may answer with nothing but a redirect to https:// (NET-3's exception). Defaults to [${REDIRECT_PORT}]; [] allows ${PUBLIC_PORT} alone.`,
};

/**
 * NET-3 (and NET-2's "only public ingress"): the internet may reach tcp 443 on the reverse
 * proxy's security group and nothing else. "The internet" is any source CIDR outside private
 * space (see reachesInternet), not only 0.0.0.0/0 and ::/0.
 *
 * Which group is the proxy's is read from the `odoo-stack:role` tag, per resource, so the check
 * runs in Analyze — before anything is created, in `pulumi up` as in `pulumi preview`. A
 * SecurityGroupRule has no tags and cannot show whose group it opens, so it may never admit the
 * internet: public 443 is declared inline on the proxy's SecurityGroup or as a
 * SecurityGroupIngressRule tagged odoo-stack:role=proxy.
 */
export const securityGroupWorldIngressOnly443OnProxy: ResourceValidationPolicy = {
  name: "security-group-world-ingress-only-443-on-proxy",
  description: `Checks whether a security group or rule admits the internet (or a prefix list, which may hold internet ranges) anywhere but tcp ${PUBLIC_PORT} on the reverse proxy (and the configured redirect-only plain-HTTP port, ${REDIRECT_PORT} by default) (NET-1, NET-2, NET-3, NET-5, NET-6).`,
  configSchema: { properties: { allowedRedirectPorts: REDIRECT_PORTS_SETTING } },
  validateResource: (args, reportViolation) => {
    const ingress = securityGroupIngressOf(args);
    if (!ingress) return;
    const redirectPorts = args.getConfig<RedirectPortsConfig>().allowedRedirectPorts ?? [];
    const publicPorts = [PUBLIC_PORT, ...redirectPorts];
    const publicPortOf = (p: IngressPermission): number | undefined => publicPorts.find((x) => isSinglePort(p, x));
    const also = redirectPorts.length > 0 ? ` (and ${redirectPorts.join(", ")} for a redirect to https://)` : "";
    // A private tier's group open to the internet breaks that tier's own item too.
    const tierItem = ingress.role === undefined ? undefined : PRIVATE_TIER_ITEMS[ingress.role];
    const cite = (...ids: string[]) => [...new Set([...(tierItem ? [tierItem] : []), ...ids])].sort().join(", ");
    const items = cite("NET-3");
    const onProxy = (p: IngressPermission) => publicPortOf(p) !== undefined && ingress.canCarryRole && ingress.role === PUBLIC_INGRESS.role;
    for (const p of ingress.permissions) {
      const internet = p.cidrs.filter(reachesInternet);
      if (internet.length > 0) {
        const what = `${ingress.label} must not open ${describePorts(p)} to ${internet.join(", ")}`;
        const port = publicPortOf(p);
        if (port === undefined) {
          reportViolation(
            `${what}: nothing but tcp ${PUBLIC_PORT}${also} on the reverse proxy may be reachable from the internet (${items}).`,
          );
        } else if (!ingress.canCarryRole) {
          reportViolation(
            `${what}: a SecurityGroupRule cannot show which tier's group it opens; declare public tcp ${port} inline on the ${PUBLIC_INGRESS.role}'s SecurityGroup or as a SecurityGroupIngressRule tagged ${ROLE_TAG}=${PUBLIC_INGRESS.role} (NET-3).`,
          );
        } else if (ingress.role !== PUBLIC_INGRESS.role) {
          const role = ingress.role === undefined ? `has no ${ROLE_TAG} tag` : `has ${ROLE_TAG}=${ingress.role}`;
          reportViolation(
            `${what}: it ${role}, and only the ${PUBLIC_INGRESS.role}'s group may accept internet traffic (${cite("NET-2", "NET-3")}).`,
          );
        }
      }
      // A prefix list's entries are not in the plan: an AWS-managed list (CloudFront's origin
      // ranges, say) is internet addresses under another name.
      if (p.prefixLists.length > 0 && !onProxy(p)) {
        reportViolation(
          `${ingress.label} must not admit prefix list ${p.prefixLists.join(", ")} to ${describePorts(p)}: its addresses are not in the plan and may be internet ranges; nothing but tcp ${PUBLIC_PORT}${also} on the reverse proxy may be reachable from the internet (${items}).`,
        );
      }
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Internal ports: 8069/8072 (NET-4), 6432 (NET-5), 5432 (NET-6)
// ---------------------------------------------------------------------------------------------

/** A port one tier serves to another, from the port catalog's FLOWS. */
interface InternalPort {
  readonly port: number;
  readonly description: string;
  readonly item: string;
  /** Tiers listening on it (EFS mount targets are a tier here: they serve 2049). */
  readonly servers: readonly (Role | ServicePeer)[];
  /** Tiers whose security group may reach it. */
  readonly sources: readonly Role[];
  /**
   * Whether private address ranges (VPN, office) may reach it too. NET-4 says "localhost or
   * internal network" and NET-5 "the Odoo hosts / internal network"; NET-6 names only
   * PgBouncer and a bastion.
   */
  readonly internalNetwork: boolean;
  /** Whether a bastion's security group (policy config) may reach it: NET-6 only. */
  readonly bastion: boolean;
}

const INTERNAL_NETWORK_ITEMS = new Set(["NET-4", "NET-5"]);
const BASTION_ITEMS = new Set(["NET-6"]);

const INTERNAL_PORTS: readonly InternalPort[] = [...new Set(FLOWS.map((f) => PORTS[f.port].port))].map((port) => {
  const flows = FLOWS.filter((f) => PORTS[f.port].port === port);
  const item = flows[0].checklist;
  return {
    port,
    description: PORTS[flows[0].port].description,
    item,
    servers: [...new Set(flows.map((f) => f.to))],
    sources: [...new Set(flows.map((f) => f.from))],
    internalNetwork: INTERNAL_NETWORK_ITEMS.has(item),
    bastion: BASTION_ITEMS.has(item),
  };
});

const covers = (p: IngressPermission, port: number): boolean =>
  (p.protocol === "all" || p.protocol === "tcp") && p.fromPort <= port && port <= p.toPort;

const whoMayReach = (ip: InternalPort): string =>
  [
    `the ${ip.sources.join(" or ")} tier's security group`,
    ...(ip.internalNetwork ? ["private address ranges"] : []),
    ...(ip.bastion ? ["a bastion security group listed in the policy config"] : []),
  ].join(ip.internalNetwork && ip.bastion ? ", " : " or ");

/** Settings a team may tune for the internal-port policies (policy config file). */
interface InternalPortsConfig {
  /** Security groups (ids) of bastions that may reach PostgreSQL (NET-6). */
  readonly bastionSecurityGroupIds?: readonly string[];
  /** Private CIDRs that may reach PostgreSQL directly (NET-6); none by default. */
  readonly postgresAllowedCidrs?: readonly string[];
}

const BASTION_SETTING = {
  type: "array" as const,
  items: { type: "string" as const },
  default: [],
  description: "Security group ids of bastions allowed to reach PostgreSQL on 5432 (NET-6); list the stack's bastionSecurityGroupId here.",
};
const POSTGRES_CIDRS_SETTING = {
  type: "array" as const,
  items: { type: "string" as const },
  default: [],
  description: "Private CIDRs allowed to reach PostgreSQL on 5432 directly (NET-6). Empty by default: only PgBouncer's security group may.",
};

/**
 * The checks a permission's address sources need, written once for both policies: private
 * ranges where the port does not accept the internal network, prefix lists (their contents
 * cannot be seen), and a group admitting itself when its tier may not reach the port. Internet
 * ranges are left to security-group-world-ingress-only-443-on-proxy.
 */
function addressSourceViolations(
  ingress: SecurityGroupIngress,
  p: IngressPermission,
  ip: InternalPort,
  groupRoles: readonly string[],
  config: InternalPortsConfig,
): string[] {
  const out: string[] = [];
  const subject = `${ingress.label} must not admit`;
  const reason = `only ${whoMayReach(ip)} may reach ${ip.description} on tcp ${ip.port} (${ip.item}).`;
  const allowedCidrs = config.postgresAllowedCidrs ?? [];
  for (const cidr of p.cidrs.filter((c) => !reachesInternet(c))) {
    if (!ip.internalNetwork && !(ip.bastion && allowedCidrs.includes(cidr))) out.push(`${subject} ${cidr} to tcp ${ip.port}: ${reason}`);
  }
  for (const list of p.prefixLists) {
    out.push(`${subject} prefix list ${list} to tcp ${ip.port}: a prefix list does not show which addresses it holds; ${reason}`);
  }
  if (p.self && groupRoles.some((r) => !(ip.sources as readonly string[]).includes(r))) {
    out.push(`${subject} its own members (self) to tcp ${ip.port}: they are ${groupRoles.join("/")} hosts; ${reason}`);
  }
  return out;
}

/** The internal ports a group of `roles` serves; every one when the roles are unknown. */
const portsServedBy = (roles: readonly string[]): InternalPort[] =>
  roles.length === 0 ? [...INTERNAL_PORTS] : INTERNAL_PORTS.filter((ip) => ip.servers.some((s) => roles.includes(s)));

/**
 * NET-4, NET-5, NET-6 for what one resource shows: a tagged group (or ingress rule) of a tier
 * that serves an internal port admits only what may reach that port. Which security group a
 * source group is needs the whole stack: see security-group-internal-ports-from-allowed-groups.
 */
export const securityGroupInternalPortsAddressSources: ResourceValidationPolicy = {
  name: "security-group-internal-ports-address-sources",
  description:
    "Checks whether a tier's security group admits address ranges, prefix lists or itself to the ports it serves (8069/8072 NET-4, 6432 NET-5, 5432 NET-6) beyond what the checklist allows.",
  configSchema: { properties: { postgresAllowedCidrs: POSTGRES_CIDRS_SETTING } },
  validateResource: (args, reportViolation) => {
    const ingress = securityGroupIngressOf(args);
    if (!ingress || ingress.role === undefined) return;
    const config = args.getConfig<InternalPortsConfig>();
    for (const p of ingress.permissions) {
      for (const ip of portsServedBy([ingress.role]).filter((ip) => covers(p, ip.port))) {
        for (const message of addressSourceViolations(ingress, p, ip, [ingress.role], config)) reportViolation(message);
      }
    }
  },
};

/** Which property of each shape names the group the rule belongs to, and its source group. */
const GROUP_PROPERTIES: Readonly<Record<string, { readonly target?: string; readonly source: string }>> = {
  [SECURITY_GROUP]: { source: "ingress" },
  [DEFAULT_SECURITY_GROUP]: { source: "ingress" },
  [SECURITY_GROUP_RULE]: { target: "securityGroupId", source: "sourceSecurityGroupId" },
  [SECURITY_GROUP_INGRESS_RULE]: { target: "securityGroupId", source: "referencedSecurityGroupId" },
};

/**
 * The tiers a security group serves: its role tag, or else the roles of the instances and
 * launch templates that use it (a hand-written group without tags still shows its tier this way).
 */
function groupRoles(group: StackResourceView, users: readonly StackResourceView[]): string[] {
  const tagged = roleOf(group.props);
  if (tagged !== undefined) return [tagged];
  const roles = new Set<string>();
  for (const user of users) {
    const role = roleOf(user.props);
    if (role === undefined) continue;
    for (const property of ["vpcSecurityGroupIds", "securityGroups"]) {
      if (referencedResources(user, property, [group], () => stringList(user.props[property])).length > 0) roles.add(role);
    }
  }
  return [...roles];
}

/**
 * NET-4, NET-5, NET-6 across resources: every security group a rule admits to an internal port
 * is the group of a tier FLOWS allows (or a configured bastion for 5432); rules that do not
 * show their own tier (a SecurityGroupRule, an untagged group) get the address checks here.
 */
export const securityGroupInternalPortsFromAllowedGroups: StackValidationPolicy = {
  name: "security-group-internal-ports-from-allowed-groups",
  description:
    "Checks whether only the tier in front may reach each internal port, by security group: the proxy for 8069/8072 (NET-4), Odoo for 6432 (NET-5), PgBouncer or a configured bastion for 5432 (NET-6).",
  configSchema: { properties: { bastionSecurityGroupIds: BASTION_SETTING, postgresAllowedCidrs: POSTGRES_CIDRS_SETTING } },
  validateStack: (args, reportViolation) => {
    const config = args.getConfig<InternalPortsConfig>();
    const bastions = config.bastionSecurityGroupIds ?? [];
    const resources = args.resources as unknown as StackResourceView[];
    const groups = resources.filter((r) => r.type === SECURITY_GROUP || r.type === DEFAULT_SECURITY_GROUP);
    const users = resources.filter((r) => r.type === TYPES.instance || r.type === TYPES.launchTemplate);
    const unknown = new UnknownValues();

    for (const r of resources) {
      unknown.run(() => {
        const ingress = securityGroupIngressOf(r);
        const properties = GROUP_PROPERTIES[r.type];
        if (!ingress || !properties) return;
        const targets = properties.target === undefined ? [r] : referencedResources(r, properties.target, groups);
        const ownTag = ingress.role !== undefined;
        const roles = ownTag ? [ingress.role as string] : [...new Set(targets.flatMap((g) => groupRoles(g, users)))];

        for (const p of ingress.permissions) {
          for (const ip of portsServedBy(roles).filter((ip) => covers(p, ip.port))) {
            if (!ownTag) for (const message of addressSourceViolations(ingress, p, ip, roles, config)) reportViolation(message, r.urn);

            // The source groups: by the engine's dependencies (known in preview), or by id.
            const values = p.sourceSecurityGroups.filter((id) => !(ip.bastion && bastions.includes(id)));
            if (values.length === 0) continue;
            const deps = r.propertyDependencies?.[properties.source] ?? [];
            let sources = groups.filter((g) => g !== r && deps.some((d) => d.urn === g.urn));
            if (sources.length === 0) sources = groups.filter((g) => values.includes(idOf(g) ?? "\u0000"));
            if (sources.length === 0) {
              reportViolation(
                `${ingress.label} must not admit security group ${values.join(", ")} to tcp ${ip.port}: it is not a group of this stack${ip.bastion ? " nor a bastion listed in the policy config (bastionSecurityGroupIds)" : ""}; only ${whoMayReach(ip)} may reach ${ip.description} (${ip.item}).`,
                r.urn,
              );
              continue;
            }
            for (const source of sources) {
              const sourceRoles = groupRoles(source, users);
              const wrong =
                sourceRoles.length === 0 ? ["an unknown"] : sourceRoles.filter((role) => !(ip.sources as readonly string[]).includes(role));
              if (wrong.length === 0) continue;
              const whose =
                sourceRoles.length === 0
                  ? `it shows no tier (no ${ROLE_TAG} tag, no tagged instance uses it)`
                  : `it is the ${wrong.join("/")} tier's`;
              reportViolation(
                `${ingress.label} must not admit security group (${source.name}) to tcp ${ip.port}: ${whose}; only ${whoMayReach(ip)} may reach ${ip.description} (${ip.item}).`,
                r.urn,
              );
            }
          }
        }
      });
    }
    unknown.finish();
  },
};

// ---------------------------------------------------------------------------------------------
// Rendered files: where Odoo binds (NET-1), where nginx listens (NET-2)
// ---------------------------------------------------------------------------------------------

const WILDCARD_ADDRESSES = new Set(["", "0.0.0.0", "::", "[::]", "*"]);
const PRIVATE_OR_LOOPBACK = /^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|::1$|\[::1\]$|localhost$)/;

/**
 * NET-1: Odoo binds its private address (or loopback), never every address and never a public
 * one. Odoo's default for an absent or empty http_interface is every address.
 */
export const odooHttpInterfacePrivate: ResourceValidationPolicy = {
  name: "odoo-http-interface-private",
  description:
    "Checks whether odoo.conf binds Odoo's HTTP and gevent ports to a private or loopback address, never to every address or a public one (NET-1).",
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const value = parseOdooConf(file.content).options.get("http_interface");
    if (value === undefined || WILDCARD_ADDRESSES.has(value.trim())) {
      const now = value === undefined ? "absent, so Odoo listens on every address" : `${JSON.stringify(value)}, every address`;
      report(`${fileLabel(file)} must set http_interface to the host's private address (or 127.0.0.1); it is ${now} (NET-1).`);
    } else if (!PRIVATE_OR_LOOPBACK.test(value.trim())) {
      report(`${fileLabel(file)} must set http_interface to a private or loopback address, not ${JSON.stringify(value)} (NET-1).`);
    }
  }),
};

/** `listen` directives of a server block: port, and whether they carry ssl. */
function listens(server: readonly NginxDirective[]): { readonly port: number; readonly ssl: boolean; readonly text: string }[] {
  const written = server.filter((d) => d.name === "listen");
  // A server without `listen` listens on *:80 (nginx's default when run as root).
  if (written.length === 0) return [{ port: 80, ssl: false, text: "listen 80 (nginx's default: the server has no listen)" }];
  return written.map((d) => {
    const address = d.args[0] ?? "";
    const m = /(?:^|:)(\d+)$/.exec(address);
    // "listen 10.0.0.1;" or "listen unix:…" listen on 80 / a socket; only a number is a port.
    const port = m ? Number(m[1]) : /^unix:/.test(address) ? -1 : 80;
    return { port, ssl: d.args.slice(1).includes("ssl"), text: `listen ${d.args.join(" ")}` };
  });
}

/** A server that only redirects to HTTPS: `return 301|302|307|308 https://…` and nothing that proxies. */
function isRedirectOnly(server: readonly NginxDirective[]): boolean {
  const walk = (block: readonly NginxDirective[]): NginxDirective[] => block.flatMap((d) => [d, ...walk(d.block ?? [])]);
  const all = walk(server);
  const returns = all.filter((d) => d.name === "return");
  const proxies = all.some((d) => ["proxy_pass", "root", "alias", "fastcgi_pass", "uwsgi_pass", "grpc_pass"].includes(d.name));
  return !proxies && returns.length > 0 && returns.every((d) => /^30[1278]$/.test(d.args[0] ?? "") && /^https:\/\//.test(d.args[1] ?? ""));
}

/**
 * NET-2, NET-3: the proxy serves Odoo on 443 with TLS and nothing else. A plain-HTTP server is
 * allowed only on a redirect port of the policy config ([80] by default, NET-3's exception),
 * and then it may do nothing but redirect to https://.
 */
export const nginxListensOnlyTls443: ResourceValidationPolicy = {
  name: "nginx-listens-only-tls-443",
  description: `Checks whether every nginx server listens on ${PUBLIC_PORT} with ssl, allowing plain HTTP only for a redirect-only server on a configured port (${REDIRECT_PORT} by default) (NET-2, NET-3).`,
  configSchema: { properties: { allowedRedirectPorts: REDIRECT_PORTS_SETTING } },
  validateResource: (args, reportViolation) => {
    const file = renderedFileOfKind(args, "nginx-site") ?? renderedFileOfKind(args, "nginx.conf");
    if (!file) return;
    const allowed = args.getConfig<RedirectPortsConfig>().allowedRedirectPorts ?? [];
    for (const { directive: server } of nginxServers(file.content)) {
      const block = server.block ?? [];
      for (const l of listens(block)) {
        if (l.port === PUBLIC_PORT && l.ssl) continue;
        if (!l.ssl && allowed.includes(l.port) && isRedirectOnly(block)) continue;
        const why =
          l.port === PUBLIC_PORT
            ? `${PUBLIC_PORT} without ssl serves plain HTTP`
            : allowed.includes(l.port)
              ? `a plain-HTTP server on ${l.port} may only redirect to https://`
              : `only ${PUBLIC_PORT} with TLS is served`;
        reportViolation(`${fileLabel(file)} must not \`${l.text}\` (server at line ${server.line}): ${why} (NET-2, NET-3).`);
      }
    }
    for (const problem of listenersOutsideHttp(parseNginx(file.content)))
      reportViolation(`${fileLabel(file)} must not ${problem} (NET-2, NET-3).`);
  },
};

/**
 * Files nginx may include where servers are declared (main, http, server): Debian's MIME table
 * and module loaders, and conf.d — where the stack delivers its site. Anything else (Debian's
 * sites-enabled/default listens on 80 and serves files) is text the plan does not show.
 */
const ALLOWED_NGINX_INCLUDES = new Set([
  "mime.types",
  "/etc/nginx/mime.types",
  "/etc/nginx/conf.d/*.conf",
  "/etc/nginx/modules-enabled/*.conf",
]);

/** What listens outside the http servers the policy reads: stream/mail blocks, includes of unseen files. */
function listenersOutsideHttp(top: readonly NginxDirective[]): string[] {
  const out: string[] = [];
  const visit = (block: readonly NginxDirective[]) => {
    for (const d of block) {
      if (d.name === "stream" || d.name === "mail")
        out.push(`declare a ${d.name} block (line ${d.line}): its servers listen on ports of their own beside the https server`);
      else if (d.name === "include" && !ALLOWED_NGINX_INCLUDES.has(d.args[0] ?? ""))
        out.push(
          `include ${d.args[0] ?? ""} (line ${d.line}): a file the stack does not deliver may declare servers and listen where the plan cannot see`,
        );
      else if ((d.name === "http" || d.name === "server") && d.block) visit(d.block);
    }
  };
  visit(top);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Which security groups a tier runs in; who PostgreSQL itself admits; second public entries
// ---------------------------------------------------------------------------------------------

/** Properties that put a resource in security groups, per type (ids, or deps to the groups). */
const GROUP_USERS: Readonly<Record<string, readonly string[]>> = {
  [TYPES.instance]: ["vpcSecurityGroupIds", "securityGroups"],
  [TYPES.launchTemplate]: ["vpcSecurityGroupIds", "securityGroupNames", "networkInterfaces"],
  [TYPES.rdsInstance]: ["vpcSecurityGroupIds"],
};

/** Group ids a property holds; launch templates nest them in networkInterfaces[].securityGroups. */
function groupIdsOf(props: Readonly<Record<string, unknown>>, property: string): string[] {
  if (property === "networkInterfaces")
    return (Array.isArray(props.networkInterfaces) ? props.networkInterfaces : [])
      .filter(isRecord)
      .flatMap((n) => stringList(n.securityGroups));
  return stringList(props[property]);
}

const describeResource = (r: StackResourceView): string =>
  r.type === TYPES.rdsInstance
    ? `RDS instance (${r.name})`
    : r.type === TYPES.launchTemplate
      ? `Launch template (${r.name})`
      : `EC2 instance (${r.name})`;

/**
 * NET-1, NET-5, NET-6 (and NET-2 for the proxy): a host runs in its own tier's security group
 * only. Another tier's group brings that tier's openings with it — the proxy's group would open
 * 443 to the internet on Odoo, the Odoo group would let the proxy reach PostgreSQL — and a group
 * outside the stack (or none, which means the VPC's default group) opens what the plan cannot show.
 */
export const instanceSecurityGroupsOfOwnTier: StackValidationPolicy = {
  name: "instance-security-groups-of-own-tier",
  description:
    "Checks whether every tagged EC2 instance, launch template and RDS instance runs only in its own tier's security group (NET-1, NET-2, NET-5, NET-6).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const groups = resources.filter((r) => r.type === SECURITY_GROUP || r.type === DEFAULT_SECURITY_GROUP);
    const unknown = new UnknownValues();
    for (const r of resources.filter((x) => GROUP_USERS[x.type] !== undefined)) {
      unknown.run(() => {
        const role = roleOf(r.props);
        if (role === undefined) return;
        const item = PRIVATE_TIER_ITEMS[role] ?? "NET-2";
        const used = new Set<StackResourceView>();
        const strangers: string[] = [];
        for (const property of GROUP_USERS[r.type]) {
          const ids = groupIdsOf(r.props, property);
          const found = referencedResources(r, property, groups, () => ids);
          for (const g of found) used.add(g);
          if ((r.propertyDependencies?.[property] ?? []).length === 0) {
            strangers.push(...ids.filter((id) => !groups.some((g) => idOf(g) === id || g.props.name === id)));
          }
        }
        const subject = `${describeResource(r)} of the ${role} tier`;
        if (used.size === 0 && strangers.length === 0) {
          reportViolation(
            `${subject} must run in the ${role} tier's security group; it names none, so AWS puts it in the VPC's default group (${item}).`,
            r.urn,
          );
        }
        for (const id of strangers) {
          reportViolation(
            `${subject} must not run in security group ${id}: it is not a group of this stack, so the plan cannot show what it opens (${item}).`,
            r.urn,
          );
        }
        for (const g of used) {
          const groupRole = roleOf(g.props);
          if (groupRole === role) continue;
          const whose =
            groupRole === undefined
              ? `shows no tier (no ${ROLE_TAG} tag)`
              : `is the ${groupRole} tier's, and brings that tier's openings with it`;
          reportViolation(`${subject} must not run in security group (${g.name}): it ${whose} (${item}).`, r.urn);
        }
      });
    }
    unknown.finish();
  },
};

/** Addresses pg_hba.conf may admit besides PgBouncer: the server itself over loopback. */
const LOOPBACK = new Set(["127.0.0.1", "127.0.0.1/32", "::1", "::1/128", "localhost", "samehost"]);

/**
 * NET-6 inside PostgreSQL: the security group decides which packets arrive, pg_hba.conf which
 * logins PostgreSQL accepts. A record for the VPC (or 0.0.0.0/0, or samenet) lets any host the
 * group admits — a bastion, an Odoo host if the group widens — log in without PgBouncer.
 */
export const pgHbaAdmitsOnlyPgbouncer: StackValidationPolicy = {
  name: "pg-hba-admits-only-pgbouncer",
  description:
    "Checks whether pg_hba.conf accepts network logins only from the PgBouncer hosts (by address or name), loopback, the CIDRs listed in postgresAllowedCidrs, or — with a bastion configured — private ranges its security group narrows (NET-6).",
  configSchema: { properties: { bastionSecurityGroupIds: BASTION_SETTING, postgresAllowedCidrs: POSTGRES_CIDRS_SETTING } },
  validateStack: (args, reportViolation) => {
    const config = args.getConfig<InternalPortsConfig>();
    const allowedCidrs = config.postgresAllowedCidrs ?? [];
    // A bastion's address is not in the plan: with one configured, the stack admits its private
    // range here (templates/postgresql.ts) and the security group narrows it to PgBouncer and
    // the bastion (security-group-internal-ports-*).
    const bastion = (config.bastionSecurityGroupIds ?? []).length > 0;
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const hosts = hostViews(resources, unknown);
    const pgbouncers = hosts.filter((h) => h.role === "pgbouncer");
    const admitted = (address: string): boolean => {
      const a = address.trim().toLowerCase();
      const bare = a.replace(/\/(32|128)$/, "");
      return (
        LOOPBACK.has(a) ||
        allowedCidrs.includes(address) ||
        pgbouncers.some((h) => h.privateIp === bare) ||
        hostByName(hosts, bare)?.role === "pgbouncer" ||
        (bastion && /^[0-9a-f.:]+\/\d+$/.test(a) && !reachesInternet(a))
      );
    };
    for (const file of renderedFiles(resources, unknown).filter((f) => fileKindOf(f.path) === "pg_hba.conf")) {
      unknown.run(() => {
        for (const r of parsePgHba(file.content)) {
          if (r.type === "local" || r.method === "reject" || admitted(r.address ?? "")) continue;
          const who = pgbouncers.map((h) => h.privateIp ?? h.id).join(", ") || "none in this stack";
          reportViolation(
            `${fileLabel(file)} must not accept \`${r.type} ${r.database} ${r.user} ${r.address ?? ""}\` with ${r.method} on line ${r.line}: only the PgBouncer host (${who}), loopback or postgresAllowedCidrs may log in over the network (NET-6).`,
            file.resource.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

const LOAD_BALANCERS = ["aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer", "aws:elb/loadBalancer:LoadBalancer"];
const LISTENERS = ["aws:lb/listener:Listener", "aws:alb/listener:Listener"];
const ENCRYPTED_LISTENER_PROTOCOLS = new Set(["HTTPS", "TLS"]);

/**
 * NET-2, NET-3 beyond the instances: the stack has no load balancer, and one added in front of
 * Odoo would be a second public entry beside the proxy (with its own listeners on 80 or 8069).
 * A load balancer must be internal; a listener serves TLS or only redirects to https.
 */
export const loadBalancerNoPublicEntry: ResourceValidationPolicy = {
  name: "load-balancer-no-public-entry",
  description:
    "Checks whether every load balancer is internal and every listener serves TLS or only redirects to HTTPS, so the reverse proxy stays the only public entry (NET-2, NET-3).",
  validateResource: (args, reportViolation) => {
    if (LOAD_BALANCERS.includes(args.type)) {
      if (booleanOf(args.props.internal) !== true) {
        reportViolation(
          `Load balancer (${args.name}) must be internal (internal = true): only the reverse proxy may accept traffic from the internet (NET-2).`,
        );
      }
    } else if (LISTENERS.includes(args.type)) {
      const protocol = String(args.props.protocol ?? "HTTP").toUpperCase();
      if (ENCRYPTED_LISTENER_PROTOCOLS.has(protocol)) return;
      const actions = (Array.isArray(args.props.defaultActions) ? args.props.defaultActions : []).filter(isRecord);
      const redirectsToHttps =
        actions.length > 0 &&
        actions.every((a) => a.type === "redirect" && isRecord(a.redirect) && String(a.redirect.protocol).toUpperCase() === "HTTPS");
      if (!redirectsToHttps) {
        reportViolation(
          `Load balancer listener (${args.name}) must not serve ${protocol} on port ${String(args.props.port ?? "?")} except as a redirect to HTTPS: plain traffic may not reach Odoo (NET-3).`,
        );
      }
    }
  },
};

/**
 * NET-3's exception, across resources: the internet may reach a plain-HTTP port of the proxy only
 * while the proxy's nginx answers that port with a redirect-only server. nginx-listens-only-tls-443
 * keeps every server on the port redirect-only; this keeps the port closed when none exists (an
 * open port nothing is meant to answer is a hole waiting for a server).
 */
export const proxyPlainHttpOnlyRedirects: StackValidationPolicy = {
  name: "proxy-plain-http-only-redirects",
  description:
    "Checks whether every internet-facing plain-HTTP port of the proxy's security group is answered by an nginx server that only redirects to https:// (NET-3).",
  configSchema: { properties: { allowedRedirectPorts: REDIRECT_PORTS_SETTING } },
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const redirectPorts = args.getConfig<RedirectPortsConfig>().allowedRedirectPorts ?? [];
    const unknown = new UnknownValues();
    const sites = renderedFiles(resources, unknown).filter((f) => f.path.startsWith("/etc/nginx/"));
    const redirecting = new Set<number>();
    for (const site of sites) {
      unknown.run(() => {
        for (const { directive: server } of nginxServers(site.content)) {
          const block = server.block ?? [];
          if (!isRedirectOnly(block)) continue;
          for (const l of listens(block)) if (!l.ssl) redirecting.add(l.port);
        }
      });
    }
    for (const r of resources) {
      unknown.run(() => {
        const ingress = securityGroupIngressOf(r);
        if (!ingress || ingress.role !== PUBLIC_REDIRECT.role) return;
        for (const p of ingress.permissions) {
          const internet = p.cidrs.filter(reachesInternet);
          const port = redirectPorts.find((x) => isSinglePort(p, x));
          if (internet.length === 0 || port === undefined || redirecting.has(port)) continue;
          reportViolation(
            `${ingress.label} must not open tcp ${port} to ${internet.join(", ")}: no nginx server of the ${PUBLIC_REDIRECT.role} answers ${port} with only a redirect to https://, and the internet may reach plain HTTP for nothing else (NET-3).`,
            r.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

/** One internet-bound egress permission, from any of the three security-group shapes. */
interface WorldEgress {
  readonly label: string;
  readonly role: string | undefined;
  readonly protocol: string;
  readonly fromPort: number;
  readonly toPort: number;
  readonly cidrs: readonly string[];
}

function worldEgressOf(r: {
  readonly type: string;
  readonly name: string;
  readonly props: Readonly<Record<string, unknown>>;
}): WorldEgress[] {
  const { type, name, props } = r;
  const n = (v: unknown, d: number) => (typeof v === "number" ? v : typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : d);
  const proto = (v: unknown) => normaliseProtocol(v);
  const role = roleOf(props);
  if (type === SECURITY_GROUP_EGRESS_RULE) {
    const cidrs = [props.cidrIpv4, props.cidrIpv6].filter((c): c is string => typeof c === "string");
    return [
      {
        label: `Security group egress rule (${name})`,
        role,
        protocol: proto(props.ipProtocol),
        fromPort: n(props.fromPort, 0),
        toPort: n(props.toPort, 65535),
        cidrs,
      },
    ];
  }
  if (type === SECURITY_GROUP_RULE && props.type === "egress") {
    return [
      {
        label: `Security group rule (${name})`,
        role: undefined,
        protocol: proto(props.protocol),
        fromPort: n(props.fromPort, 0),
        toPort: n(props.toPort, 65535),
        cidrs: [...stringList(props.cidrBlocks), ...stringList(props.ipv6CidrBlocks)],
      },
    ];
  }
  if (type === SECURITY_GROUP && Array.isArray(props.egress)) {
    return props.egress
      .filter((b): b is Record<string, unknown> => typeof b === "object" && b !== null)
      .map((b) => ({
        label: `Security group (${name})`,
        role,
        protocol: proto(b.protocol),
        fromPort: n(b.fromPort, 0),
        toPort: n(b.toPort, 65535),
        cidrs: [...stringList(b.cidrBlocks), ...stringList(b.ipv6CidrBlocks)],
      }));
  }
  return [];
}

/**
 * Outbound to the internet, the mirror of NET-3: package mirrors (80) and AWS APIs, S3 and ACME
 * (443) for every tier, and one SMTP port (587, 25 or 2525, STARTTLS) for the Odoo hosts when the
 * stack sends mail (issue 12 item 5). A compromised host cannot open anything else outward, and
 * the internal tiers' ports stay between the stack's own groups.
 */
export const securityGroupWorldEgressKnownPorts: ResourceValidationPolicy = {
  name: "security-group-world-egress-known-ports",
  description: `Checks whether a security group lets a tier reach the internet on anything but tcp ${WORLD_EGRESS_PORTS.join("/")} (mirrors, AWS APIs), or, for the ${SMTP_EGRESS_ROLE} hosts, one SMTP port (${SMTP_EGRESS_PORTS.join("/")}) (NET-3).`,
  validateResource: (args, reportViolation) => {
    for (const e of worldEgressOf(args)) {
      const internet = e.cidrs.filter(reachesInternet);
      if (internet.length === 0) continue;
      const single = e.protocol === "tcp" && e.fromPort === e.toPort ? e.fromPort : undefined;
      if (single !== undefined && WORLD_EGRESS_PORTS.includes(single)) continue;
      if (single !== undefined && SMTP_EGRESS_PORTS.includes(single) && e.role === SMTP_EGRESS_ROLE) continue;
      const what =
        e.protocol === "all" || e.protocol === "-1"
          ? "all traffic"
          : e.fromPort === e.toPort
            ? `${e.protocol} ${e.fromPort}`
            : `${e.protocol} ${e.fromPort}-${e.toPort}`;
      const why =
        single !== undefined && SMTP_EGRESS_PORTS.includes(single)
          ? `SMTP leaves the stack from the ${SMTP_EGRESS_ROLE} hosts only${e.role === undefined ? ` (tag the rule ${ROLE_TAG}=${SMTP_EGRESS_ROLE})` : `, and this is the ${e.role} tier's`}`
          : `the internet is reached on tcp ${WORLD_EGRESS_PORTS.join("/")} only, plus one SMTP port (${SMTP_EGRESS_PORTS.join("/")}) from the ${SMTP_EGRESS_ROLE} hosts`;
      reportViolation(`${e.label} must not open ${what} to ${internet.join(", ")}: ${why} (NET-3).`);
    }
  },
};

export const policies: Policies = [
  securityGroupWorldIngressOnly443OnProxy,
  securityGroupWorldEgressKnownPorts,
  proxyPlainHttpOnlyRedirects,
  securityGroupInternalPortsAddressSources,
  securityGroupInternalPortsFromAllowedGroups,
  odooHttpInterfacePrivate,
  nginxListensOnlyTls443,
  instanceSecurityGroupsOfOwnTier,
  pgHbaAdmitsOnlyPgbouncer,
  loadBalancerNoPublicEntry,
];
