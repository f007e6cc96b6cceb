// Every way the inventory (policy/README.md, "Where each item can be broken") says a checklist
// item can be broken, as a mutation of a planned stack: the prod suite (mutations.test.ts) and
// the scale suite (scale-mutations.test.ts) apply each to a fresh copy of their stack and send
// it through the real pack over gRPC; the named policy must reject it as mandatory, citing the
// item. inventory.test.ts checks that every row of the README's table names a mutation here
// with the same item and policy, and every mutation here is a row.
import { randomBytes } from "crypto";
import type { StackModel } from "../../lib/model";
import type { MutableStack } from "./mutable-stack";

export interface MutationContext {
  /** The planned stack's model (names, addresses). */
  readonly model: StackModel;
}

export interface Mutation {
  /** Unique over both suites; the inventory table names it. */
  readonly id: string;
  readonly title: string;
  /** The checklist item it breaks; the violation message must cite it. */
  readonly item: string;
  /** The policy that must reject it as mandatory. */
  readonly policy: string;
  readonly mutate: (s: MutableStack, ctx: MutationContext) => void;
}

const m = (id: string, title: string, item: string, policy: string, mutate: (s: MutableStack, ctx: MutationContext) => void): Mutation => ({
  id,
  title,
  item,
  policy,
  mutate,
});

// --- where things live -------------------------------------------------------------------------

const ODOO_CONF = "/etc/odoo/odoo.conf";
const ODOO_UNIT = "/etc/systemd/system/odoo.service.d/odoo-stack.conf";
const SITE = "/etc/nginx/conf.d/odoo.conf";
const NGINX_CONF = "/etc/nginx/nginx.conf";
const INI = "/etc/pgbouncer/pgbouncer.ini";
const PGBOUNCER_UNIT = "/etc/systemd/system/pgbouncer.service.d/odoo-stack.conf";
const USERLIST = "/etc/pgbouncer/userlist.txt";
const PG_CONF = "/etc/postgresql/15/main/conf.d/90-odoo-stack.conf";
const PG_LATER_CONF = "/etc/postgresql/15/main/conf.d/99-local.conf";
const PG_CTL_CONF = "/etc/postgresql/15/main/pg_ctl.conf";
const HBA = "/etc/postgresql/15/main/pg_hba.conf";
const BOOTSTRAP = "/etc/odoo-stack/bootstrap.sql";
const METRICS = "/etc/odoo-stack/metrics.json";
const LOGROTATE = "/etc/logrotate.d/odoo";

// --- text edits --------------------------------------------------------------------------------

/** Replaces text inside one `location <path> {…}` block of the site. */
const inLocation =
  (path: string, edit: (block: string) => string) =>
  (t: string): string => {
    const start = t.indexOf(`    location ${path} {`);
    const end = t.indexOf("    }\n", start);
    if (start < 0 || end < 0) throw new Error(`the site has no location ${path}`);
    return t.slice(0, start) + edit(t.slice(start, end)) + t.slice(end);
  };
/** Inserts a block before `location / {` of the serving server. */
const beforeRootLocation =
  (block: string) =>
  (t: string): string => {
    const at = t.indexOf("    location / {");
    if (at < 0) throw new Error("the site has no location /");
    return `${t.slice(0, at)}${block}\n${t.slice(at)}`;
  };
const dropLine =
  (pattern: RegExp) =>
  (block: string): string =>
    block.replace(new RegExp(`\\n[^\\n]*${pattern.source}[^\\n]*`), "");
const pgbouncerEntry =
  (db: string, edit: (value: string) => string) =>
  (t: string): string =>
    t.replace(new RegExp(`^${db} = (.*)$`, "m"), (_l, v: string) => `${db} = ${edit(v)}`);
/** Adds a line to the [databases] section, after its last entry. */
const addDatabaseLine =
  (line: string) =>
  (t: string): string =>
    t.replace(/^(postgres = .*)$/m, `$1\n${line}`);
const append =
  (text: string) =>
  (t: string): string =>
    `${t}${t.endsWith("\n") ? "" : "\n"}${text}\n`;
/** odoo.conf serving erp and shop (issue 16), with `dbfilter`. */
const MULTI_DBFILTER = "^(?=(?:erp|shop)$)%d$";
const twoDatabases =
  (dbfilter: string) =>
  (t: string): string =>
    t.replace(/^db_name = .*$/m, "db_name = erp,shop").replace("[options]\n", `[options]\ndbfilter = ${dbfilter}\n`);
/** The site with a copy of the serving server of `domain` for `other` (headers as they are). */
const withServerFor =
  (domain: string, other: string) =>
  (t: string): string => {
    const start = t.indexOf(`server {\n    listen 443 ssl http2;\n    server_name ${domain};`);
    if (start < 0) throw new Error(`the site has no server for ${domain}`);
    return `${t}\n${t.slice(start).replace(`server_name ${domain};`, `server_name ${other};`)}`;
  };
/** The headers and timeouts a proxied location of the site carries. */
const PROXIED = [
  "        proxy_set_header Host $host;",
  "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
  "        proxy_set_header X-Forwarded-Host $host;",
  "        proxy_set_header X-Forwarded-Proto $scheme;",
  "        proxy_read_timeout 1230s;",
  "        proxy_send_timeout 1230s;",
].join("\n");
/** Lines added to the drop-in's [Service] section (a key elsewhere is not the service's). */
const inService =
  (text: string) =>
  (t: string): string => {
    if (!/^\[Service\]$/m.test(t)) return `${append("[Service]")(t)}${text}\n`;
    return t.replace(/^\[Service\]$/m, `[Service]\n${text}`);
  };
const odooStart = (options: string) => inService(`ExecStart=\nExecStart=/usr/bin/odoo --config /etc/odoo/odoo.conf ${options}`);
const setMode =
  (path: string, mode: string) =>
  (t: string): string => {
    const doc = JSON.parse(t) as { files: { path: string; mode: string }[] };
    const entry = doc.files.find((f) => f.path === path);
    if (!entry) throw new Error(`the manifest has no ${path}`);
    entry.mode = mode;
    return `${JSON.stringify(doc, null, 2)}\n`;
  };
const toWorld = (field: "cidrIpv4" | "cidrIpv6", cidr: string) => (p: Record<string, any>) => {
  delete p.referencedSecurityGroupId;
  p[field] = cidr;
};
/** The tags a tier's resources carry, for resources a mutation adds. */
const tierTags = (role: string) => ({ "odoo-stack:role": role, "odoo-stack:stack": "prod" });

// --- the prod stack ----------------------------------------------------------------------------

const NET3 = "security-group-world-ingress-only-443-on-proxy";
const FROM_GROUPS = "security-group-internal-ports-from-allowed-groups";
const ADDRESS_SOURCES = "security-group-internal-ports-address-sources";
const NO_PUBLIC_ADDRESS = "private-hosts-have-no-public-address";
const OWN_TIER = "instance-security-groups-of-own-tier";
const UNITS = "service-units-keep-checked-config";
const OVERRIDES = "postgres-settings-not-overridden";
const ALARMS = "checklist-alarms-notify-topic";
const SECRETS = "secret-references-protected";
const REDIRECT_ONLY = "proxy-plain-http-only-redirects";
const EGRESS = "security-group-world-egress-known-ports";
const CUSTOMER_KEY = "ssm-secure-parameter-customer-key";
const OWN_PARAMETERS = "roles-read-only-their-own-parameters";
/** The account's default SSM key, which any role allowed to read a parameter may decrypt with. */
const AWS_SSM_KEY = "alias/aws/ssm";

/** Edits the statement `sid` of an IAM policy document held as JSON text in `policy`. */
const statement = (sid: string, edit: (s: Record<string, any>) => void) => (p: Record<string, any>) => {
  const doc = JSON.parse(p.policy) as { Statement: Record<string, any>[] };
  const found = doc.Statement.find((x) => x.Sid === sid);
  if (!found) throw new Error(`the policy has no statement ${sid}`);
  edit(found);
  p.policy = JSON.stringify(doc);
};
/** The site's plain-HTTP server (listen 80 + return 301), the one NET-3 allows. */
const REDIRECT_SERVER = /server \{\n {4}listen 80 default_server;\n {4}return 301 [^\n]*\n\}\n/;

export const PROD_MUTATIONS: readonly Mutation[] = [
  // --- NET-1 ------------------------------------------------------------------------------------
  m("net1-http-interface-wildcard", "bind Odoo to 0.0.0.0", "NET-1", "odoo-http-interface-private", (s) =>
    s.line("odoo-1", ODOO_CONF, "http_interface", "http_interface = 0.0.0.0"),
  ),
  m("net1-http-interface-absent", "no http_interface (every address)", "NET-1", "odoo-http-interface-private", (s) =>
    s.line("odoo-1", ODOO_CONF, "http_interface", undefined),
  ),
  m(
    "net1-xmlrpc-interface-alias",
    "xmlrpc_interface = 0.0.0.0 after http_interface (Odoo's old name wins)",
    "NET-1",
    "odoo-http-interface-private",
    (s) => s.file("odoo-1", ODOO_CONF, append("xmlrpc_interface = 0.0.0.0")),
  ),
  m("net1-http-interface-twice", "http_interface written twice", "NET-1", "odoo-conf-keys-once", (s) =>
    s.file("odoo-1", ODOO_CONF, append("http_interface = 10.40.128.20")),
  ),
  m("net1-unit-http-interface", "odoo.service drop-in starts Odoo with --http-interface=0.0.0.0", "NET-1", UNITS, (s) =>
    s.file("odoo-1", ODOO_UNIT, odooStart("--http-interface=0.0.0.0")),
  ),
  m("net1-odoo-conf-elsewhere", "odoo.conf delivered beside the file Odoo reads", "NET-1", "hosts-receive-checked-config-files", (s) =>
    s.moveFile("odoo-1", ODOO_CONF, "/etc/odoo/odoo-next.conf"),
  ),
  m("net1-odoo-public-ip", "give the Odoo host a public IP", "NET-1", "instance-no-public-ip", (s) =>
    s.edit("odoo-odoo-1-instance", (p) => (p.associatePublicIpAddress = true)),
  ),
  m("net1-odoo-ipv6", "give the Odoo host an IPv6 address", "NET-1", "instance-no-public-ip", (s) =>
    s.edit("odoo-odoo-1-instance", (p) => (p.ipv6AddressCount = 1)),
  ),
  m("net1-launch-template-public-ip", "an Odoo launch template asking for a public IP", "NET-1", "instance-no-public-ip", (s) =>
    s.add("aws:ec2/launchTemplate:LaunchTemplate", "odoo-extra-template", {
      tags: tierTags("odoo"),
      networkInterfaces: [{ associatePublicIpAddress: "true" }],
      metadataOptions: { httpTokens: "required" },
      monitoring: { enabled: true },
    }),
  ),
  m("net1-odoo-public-subnet", "run the Odoo host in a public subnet", "NET-1", NO_PUBLIC_ADDRESS, (s) =>
    s.refer("odoo-odoo-1-instance", "subnetId", ["network-public-eu-west-1a"], "subnet-public"),
  ),
  m("net1-private-route-to-igw", "route the Odoo host's private subnet to the internet gateway", "NET-1", NO_PUBLIC_ADDRESS, (s) =>
    s
      .refer("network-private-default-route-eu-west-1a", "gatewayId", ["network-igw"], "igw-0123456789abcdef0")
      .edit("network-private-default-route-eu-west-1a", (p) => delete p.natGatewayId),
  ),
  m("net1-eip-on-odoo", "the Elastic IP names the Odoo instance", "NET-1", NO_PUBLIC_ADDRESS, (s) =>
    s.refer("proxy-eip", "instance", ["odoo-odoo-1-instance"], "i-odoo"),
  ),
  m(
    "net1-eip-by-network-interface",
    "the Elastic IP association names the Odoo host's network interface",
    "NET-1",
    NO_PUBLIC_ADDRESS,
    (s) =>
      s
        .refer("proxy-eip-association", "networkInterfaceId", ["odoo-odoo-1-instance"], "eni-odoo")
        .refer("proxy-eip-association", "instanceId", [], undefined),
  ),
  m("net1-odoo-public-ip-reported", "the engine reports a public IP on the Odoo host", "NET-1", NO_PUBLIC_ADDRESS, (s) =>
    s.edit("odoo-odoo-1-instance", (p) => (p.publicIp = "203.0.113.7")),
  ),
  m("net1-odoo-in-proxy-group", "run the Odoo host in the proxy's security group (public 443)", "NET-1", OWN_TIER, (s) =>
    s.refer("odoo-odoo-1-instance", "vpcSecurityGroupIds", ["network-proxy-sg"], ["sg-proxy"]),
  ),
  m("net1-odoo-group-8072-world", "open 8072 on the Odoo group to the world inline", "NET-1", NET3, (s) =>
    s.edit("network-odoo-sg", (p) => (p.ingress = [{ protocol: "tcp", fromPort: 8072, toPort: 8072, cidrBlocks: ["0.0.0.0/0"] }])),
  ),
  // --- NET-2 ------------------------------------------------------------------------------------
  m("net2-public-443-tagged-odoo", "tag the public 443 rule as the Odoo tier's", "NET-2", NET3, (s) =>
    s.edit("network-proxy-in-443-world-ipv4", (p) => (p.tags["odoo-stack:role"] = "odoo")),
  ),
  m("net2-listen-443-without-ssl", "listen on 443 without ssl", "NET-2", "nginx-listens-only-tls-443", (s) =>
    s.file("proxy", SITE, (t) => t.replace("listen 443 ssl http2;\n    server_name", "listen 443 http2;\n    server_name")),
  ),
  m(
    "net2-include-sites-enabled",
    "nginx.conf includes sites-enabled (Debian's default site on 80)",
    "NET-2",
    "nginx-listens-only-tls-443",
    (s) =>
      s.file("proxy", NGINX_CONF, (t) =>
        t.replace('include "/etc/nginx/conf.d/*.conf";', 'include "/etc/nginx/conf.d/*.conf";\n    include /etc/nginx/sites-enabled/*;'),
      ),
  ),
  m("net2-stream-block", "nginx.conf forwards raw TCP in a stream block", "NET-2", "nginx-listens-only-tls-443", (s) =>
    s.file("proxy", NGINX_CONF, append("stream {\n    server {\n        listen 6432;\n        proxy_pass 10.40.128.11:6432;\n    }\n}")),
  ),
  m(
    "net2-internet-facing-load-balancer",
    "an internet-facing load balancer beside the proxy",
    "NET-2",
    "load-balancer-no-public-entry",
    (s) => s.add("aws:lb/loadBalancer:LoadBalancer", "odoo-extra-alb", { internal: false, loadBalancerType: "application" }),
  ),
  m("net2-proxy-in-odoo-group", "run the proxy in the Odoo security group", "NET-2", OWN_TIER, (s) =>
    s.refer("proxy-host-instance", "vpcSecurityGroupIds", ["network-odoo-sg"], ["sg-odoo"]),
  ),
  // --- NET-3 ------------------------------------------------------------------------------------
  m("net3-8069-world-ipv4", "open 8069 to 0.0.0.0/0", "NET-3", NET3, (s) =>
    s.edit("network-odoo-in-8069-proxy", toWorld("cidrIpv4", "0.0.0.0/0")),
  ),
  m("net3-8072-world-ipv6", "open 8072 to ::/0", "NET-3", NET3, (s) => s.edit("network-odoo-in-8072-proxy", toWorld("cidrIpv6", "::/0"))),
  m("net3-8069-public-range", "open 8069 to a public range that is not 0.0.0.0/0", "NET-3", NET3, (s) =>
    s.edit("network-odoo-in-8069-proxy", toWorld("cidrIpv4", "8.8.8.0/24")),
  ),
  m("net3-inline-5432-world", "open 5432 to the internet through an inline rule", "NET-3", NET3, (s) =>
    s.edit("network-postgres-sg", (p) => (p.ingress = [{ protocol: "tcp", fromPort: 5432, toPort: 5432, cidrBlocks: ["0.0.0.0/0"] }])),
  ),
  m("net3-inline-ssh-world", "open SSH to the world on the Odoo group", "NET-3", NET3, (s) =>
    s.edit("network-odoo-sg", (p) => (p.ingress = [{ protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: ["0.0.0.0/0"] }])),
  ),
  m("net3-sg-rule-world", "a SecurityGroupRule opening SSH to the world", "NET-3", NET3, (s) =>
    s.add(
      "aws:ec2/securityGroupRule:SecurityGroupRule",
      "extra-ssh-rule",
      { type: "ingress", protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: ["0.0.0.0/0"], securityGroupId: "sg-proxy" },
      { securityGroupId: ["network-proxy-sg"] },
    ),
  ),
  m("net3-sg-rule-443-world", "public 443 as a SecurityGroupRule (cannot show its tier)", "NET-3", NET3, (s) =>
    s.add(
      "aws:ec2/securityGroupRule:SecurityGroupRule",
      "extra-443-rule",
      { type: "ingress", protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"], securityGroupId: "sg-odoo" },
      { securityGroupId: ["network-odoo-sg"] },
    ),
  ),
  m("net3-all-traffic-world", "all traffic from the world on the proxy", "NET-3", NET3, (s) =>
    s.add(
      "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
      "extra-all-world",
      { ipProtocol: "-1", cidrIpv4: "0.0.0.0/0", securityGroupId: "sg-proxy", tags: tierTags("proxy") },
      { securityGroupId: ["network-proxy-sg"] },
    ),
  ),
  m("net3-prefix-list-ssh", "SSH from a prefix list on the proxy", "NET-3", NET3, (s) =>
    s.add(
      "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
      "extra-ssh-prefix-list",
      {
        ipProtocol: "tcp",
        fromPort: 22,
        toPort: 22,
        prefixListId: "pl-0123456789abcdef0",
        securityGroupId: "sg-proxy",
        tags: tierTags("proxy"),
      },
      { securityGroupId: ["network-proxy-sg"] },
    ),
  ),
  m("net3-default-group-world", "the VPC's default group opened to the world", "NET-3", NET3, (s) =>
    s.add("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "network-default-sg", {
      vpcId: "vpc-1",
      ingress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
    }),
  ),
  m("net3-nginx-plain-http-80", "serve plain HTTP on 80", "NET-3", "nginx-listens-only-tls-443", (s) =>
    s.file("proxy", SITE, append("server {\n    listen 80;\n    location / { proxy_pass http://odoo; }\n}")),
  ),
  m("net3-load-balancer-http-forward", "a load balancer listener forwarding plain HTTP", "NET-3", "load-balancer-no-public-entry", (s) =>
    s.add("aws:lb/listener:Listener", "odoo-extra-listener", {
      protocol: "HTTP",
      port: 80,
      defaultActions: [{ type: "forward", targetGroupArn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/odoo/1" }],
    }),
  ),
  m("net3-redirect-server-removed", "port 80 left open on the proxy, its redirect-only server removed", "NET-3", REDIRECT_ONLY, (s) =>
    s.file("proxy", SITE, (t) => t.replace(REDIRECT_SERVER, "")),
  ),
  m("net3-redirect-server-proxies", "the port-80 server proxies to Odoo instead of redirecting", "NET-3", REDIRECT_ONLY, (s) =>
    s.file("proxy", SITE, (t) =>
      t.replace(/(listen 80 default_server;\n) {4}return 301 [^\n]*\n/, "$1    location / {\n        proxy_pass http://odoo;\n    }\n"),
    ),
  ),
  m("net3-egress-all-traffic-world", "the PostgreSQL group reaching the internet on every port", "NET-3", EGRESS, (s) =>
    s.edit("network-postgres-out-443-world-ipv4", (p) => {
      p.ipProtocol = "-1";
      delete p.fromPort;
      delete p.toPort;
    }),
  ),
  m("net3-egress-ssh-world", "an egress rule letting the Odoo group reach SSH on the internet", "NET-3", EGRESS, (s) =>
    s.add(
      "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
      "extra-ssh-out",
      { ipProtocol: "tcp", fromPort: 22, toPort: 22, cidrIpv4: "0.0.0.0/0", securityGroupId: "sg-odoo", tags: tierTags("odoo") },
      { securityGroupId: ["network-odoo-sg"] },
    ),
  ),
  m("net3-smtp-egress-from-proxy", "SMTP (587) to the internet from the proxy's group, not the Odoo hosts'", "NET-3", EGRESS, (s) =>
    s.add(
      "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
      "extra-smtp-out",
      { ipProtocol: "tcp", fromPort: 587, toPort: 587, cidrIpv4: "0.0.0.0/0", securityGroupId: "sg-proxy", tags: tierTags("proxy") },
      { securityGroupId: ["network-proxy-sg"] },
    ),
  ),
  // --- NET-4 ------------------------------------------------------------------------------------
  m("net4-8069-from-pgbouncer-group", "let the PgBouncer group reach 8069", "NET-4", FROM_GROUPS, (s) =>
    s.refer("network-odoo-in-8069-proxy", "referencedSecurityGroupId", ["network-pgbouncer-sg"], "sg-pgbouncer"),
  ),
  m("net4-8072-from-postgres-sg-rule", "a SecurityGroupRule letting the PostgreSQL group reach 8072", "NET-4", FROM_GROUPS, (s) =>
    s.add(
      "aws:ec2/securityGroupRule:SecurityGroupRule",
      "extra-8072-rule",
      { type: "ingress", protocol: "tcp", fromPort: 8072, toPort: 8072, securityGroupId: "sg-odoo", sourceSecurityGroupId: "sg-postgres" },
      { securityGroupId: ["network-odoo-sg"], sourceSecurityGroupId: ["network-postgres-sg"] },
    ),
  ),
  m(
    "net4-inline-from-pgbouncer-group",
    "an inline rule on the Odoo group admitting the PgBouncer group to 8069",
    "NET-4",
    FROM_GROUPS,
    (s) =>
      s.refer(
        "network-odoo-sg",
        "ingress",
        ["network-pgbouncer-sg"],
        [{ protocol: "tcp", fromPort: 8069, toPort: 8069, securityGroups: ["sg-pgbouncer"] }],
      ),
  ),
  m("net4-8069-from-prefix-list", "admit a prefix list to 8069", "NET-4", ADDRESS_SOURCES, (s) =>
    s.edit("network-odoo-in-8069-proxy", (p) => {
      delete p.referencedSecurityGroupId;
      p.prefixListId = "pl-0123456789abcdef0";
    }),
  ),
  m("net4-8069-self", "the Odoo group admitting itself to 8069", "NET-4", ADDRESS_SOURCES, (s) =>
    s.edit("network-odoo-sg", (p) => (p.ingress = [{ protocol: "tcp", fromPort: 8069, toPort: 8069, self: true }])),
  ),
  // --- NET-5 ------------------------------------------------------------------------------------
  m("net5-6432-from-proxy-group", "let the proxy group reach PgBouncer's 6432", "NET-5", FROM_GROUPS, (s) =>
    s.refer("network-pgbouncer-in-6432-odoo", "referencedSecurityGroupId", ["network-proxy-sg"], "sg-proxy"),
  ),
  m("net5-6432-world", "open 6432 to the world", "NET-5", NET3, (s) =>
    s.edit("network-pgbouncer-in-6432-odoo", toWorld("cidrIpv4", "0.0.0.0/0")),
  ),
  m("net5-pgbouncer-public-ip", "give the PgBouncer host a public IP", "NET-5", "instance-no-public-ip", (s) =>
    s.edit("pgbouncer-host-instance", (p) => (p.associatePublicIpAddress = true)),
  ),
  m("net5-eip-association-pgbouncer", "attach the Elastic IP to PgBouncer", "NET-5", NO_PUBLIC_ADDRESS, (s) =>
    s.refer("proxy-eip-association", "instanceId", ["pgbouncer-host-instance"], "i-pgbouncer"),
  ),
  m("net5-pgbouncer-public-subnet", "run PgBouncer in a public subnet", "NET-5", NO_PUBLIC_ADDRESS, (s) =>
    s.refer("pgbouncer-host-instance", "subnetId", ["network-public-eu-west-1b"], "subnet-public"),
  ),
  m("net5-pgbouncer-in-odoo-group", "run PgBouncer in the Odoo security group", "NET-5", OWN_TIER, (s) =>
    s.refer("pgbouncer-host-instance", "vpcSecurityGroupIds", ["network-odoo-sg"], ["sg-odoo"]),
  ),
  m(
    "net5-odoo-to-postgres-directly",
    "Odoo pointed at PostgreSQL, not PgBouncer",
    "NET-5",
    "database-traffic-through-pgbouncer",
    (s, { model }) => s.line("odoo-1", ODOO_CONF, "db_host", `db_host = ${model.hosts.postgres.fqdn}`),
  ),
  m("net5-db-port-5432", "Odoo dialling 5432 (PostgreSQL's port)", "NET-5", "database-traffic-through-pgbouncer", (s) =>
    s.line("odoo-1", ODOO_CONF, "db_port", "db_port = 5432"),
  ),
  m("net5-unit-db-host", "odoo.service drop-in starts Odoo with --db_host of PostgreSQL", "NET-5", UNITS, (s, { model }) =>
    s.file("odoo-1", ODOO_UNIT, odooStart(`--db_host=${model.hosts.postgres.fqdn}`)),
  ),
  // --- NET-6 ------------------------------------------------------------------------------------
  m("net6-5432-from-odoo-group", "let the Odoo group reach PostgreSQL's 5432 directly", "NET-6", FROM_GROUPS, (s) =>
    s.refer("network-postgres-in-5432-pgbouncer", "referencedSecurityGroupId", ["network-odoo-sg"], "sg-odoo"),
  ),
  m("net6-5432-from-unknown-group", "let an unknown security group reach 5432", "NET-6", FROM_GROUPS, (s) =>
    s.refer("network-postgres-in-5432-pgbouncer", "referencedSecurityGroupId", [], "sg-0123456789abcdef0"),
  ),
  m("net6-5432-from-vpc", "open 5432 to the whole VPC", "NET-6", ADDRESS_SOURCES, (s) =>
    s.edit("network-postgres-in-5432-pgbouncer", toWorld("cidrIpv4", "10.40.0.0/16")),
  ),
  m("net6-postgres-public-ip", "give the PostgreSQL host a public IP", "NET-6", "instance-no-public-ip", (s) =>
    s.edit("postgres-host-instance", (p) => (p.associatePublicIpAddress = true)),
  ),
  m("net6-postgres-in-pgbouncer-group", "run PostgreSQL in the PgBouncer security group", "NET-6", OWN_TIER, (s) =>
    s.refer("postgres-host-instance", "vpcSecurityGroupIds", ["network-pgbouncer-sg"], ["sg-pgbouncer"]),
  ),
  m("net6-hba-whole-vpc", "pg_hba.conf admits the whole VPC", "NET-6", "pg-hba-admits-only-pgbouncer", (s) =>
    s.file("postgres", HBA, (t) => t.replace(/(hostssl\s+\S+\s+odoo,odoo_migrate\s+)10\.40\.128\.11\/32/, "$110.40.0.0/16")),
  ),
  m("net6-hba-samenet", "pg_hba.conf admits samenet", "NET-6", "pg-hba-admits-only-pgbouncer", (s) =>
    s.file("postgres", HBA, (t) =>
      t.replace(/^(hostssl .*)$/m, "$1\nhostssl  all           odoo                samenet          scram-sha-256"),
    ),
  ),
  m("net6-pgbouncer-to-odoo-host", "PgBouncer sends erp to the Odoo host", "NET-6", "database-traffic-through-pgbouncer", (s, { model }) =>
    s.file(
      "pgbouncer",
      INI,
      pgbouncerEntry("erp", (v) => v.replace(/host=\S+/, `host=${model.hosts.odoo[0].fqdn}`)),
    ),
  ),
  // --- PROXY-1 ----------------------------------------------------------------------------------
  m("proxy1-root-to-gevent", "route / to the gevent port", "PROXY-1", "nginx-root-routes-to-odoo-http", (s) =>
    s.file(
      "proxy",
      SITE,
      inLocation("/", (b) => b.replace("proxy_pass http://odoo;", "proxy_pass http://odoochat;")),
    ),
  ),
  m("proxy1-upstream-port-8072", "the odoo upstream on 8072", "PROXY-1", "nginx-root-routes-to-odoo-http", (s) =>
    s.file("proxy", SITE, (t) => t.replace(/(upstream odoo \{[^}]*server [0-9.]+):8069( max_conns=\d+)?;/, "$1:8072$2;")),
  ),
  m("proxy1-regex-web-to-gevent", "a regex location sending /web to gevent", "PROXY-1", "nginx-root-routes-to-odoo-http", (s) =>
    s.file("proxy", SITE, beforeRootLocation(`    location ~ ^/web {\n        proxy_pass http://odoochat;\n${PROXIED}\n    }`)),
  ),
  m("proxy1-http-port-8080", "Odoo listening on 8080", "PROXY-1", "odoo-listens-on-catalog-ports", (s) =>
    s.line("odoo-1", ODOO_CONF, "http_port", "http_port = 8080"),
  ),
  m(
    "proxy1-xmlrpc-port-alias",
    "xmlrpc_port = 8080 after http_port (Odoo's old name wins)",
    "PROXY-1",
    "odoo-listens-on-catalog-ports",
    (s) => s.file("odoo-1", ODOO_CONF, append("xmlrpc_port = 8080")),
  ),
  m("proxy1-http-disabled", "http_enable = False", "PROXY-1", "odoo-listens-on-catalog-ports", (s) =>
    s.file("odoo-1", ODOO_CONF, append("http_enable = False")),
  ),
  m("proxy1-upstream-not-odoo", "the odoo upstream pointing at the PgBouncer host", "PROXY-1", "nginx-upstreams-are-odoo-hosts", (s) =>
    s.file("proxy", SITE, (t) => t.replace(/(upstream odoo \{[^}]*server )[0-9.]+:8069( max_conns=\d+)?;/, "$110.40.128.11:8069$2;")),
  ),
  // --- PROXY-2 ----------------------------------------------------------------------------------
  m("proxy2-websocket-to-http", "route /websocket to 8069", "PROXY-2", "nginx-websocket-routes-to-gevent", (s) =>
    s.file(
      "proxy",
      SITE,
      inLocation("/websocket", (b) => b.replace("proxy_pass http://odoochat;", "proxy_pass http://odoo;")),
    ),
  ),
  m("proxy2-no-upgrade-header", "drop the Upgrade header", "PROXY-2", "nginx-websocket-routes-to-gevent", (s) =>
    s.file("proxy", SITE, inLocation("/websocket", dropLine(/Upgrade \$http_upgrade/))),
  ),
  m("proxy2-no-http-1-1", "drop proxy_http_version 1.1", "PROXY-2", "nginx-websocket-routes-to-gevent", (s) =>
    s.file("proxy", SITE, inLocation("/websocket", dropLine(/proxy_http_version/))),
  ),
  m("proxy2-connection-close", "Connection: close on /websocket", "PROXY-2", "nginx-websocket-routes-to-gevent", (s) =>
    s.file(
      "proxy",
      SITE,
      inLocation("/websocket", (b) => b.replace("proxy_set_header Connection $connection_upgrade;", "proxy_set_header Connection close;")),
    ),
  ),
  m("proxy2-map-removed", "$connection_upgrade used, its map removed", "PROXY-2", "nginx-websocket-routes-to-gevent", (s) =>
    s.file("proxy", SITE, (t) => t.replace(/map \$http_upgrade \$connection_upgrade \{[^}]*\}\n/, "")),
  ),
  m("proxy2-upstream-port-8069", "the odoochat upstream on 8069", "PROXY-2", "nginx-websocket-routes-to-gevent", (s) =>
    s.file("proxy", SITE, (t) => t.replace(/(upstream odoochat \{[^}]*server [0-9.]+):8072;/, "$1:8069;")),
  ),
  m("proxy2-gevent-port-8073", "Odoo's gevent worker on 8073", "PROXY-2", "odoo-listens-on-catalog-ports", (s) =>
    s.line("odoo-1", ODOO_CONF, "gevent_port", "gevent_port = 8073"),
  ),
  m(
    "proxy2-longpolling-port",
    "longpolling_port = 8073 (Odoo copies it over gevent_port)",
    "PROXY-2",
    "odoo-listens-on-catalog-ports",
    (s) => s.file("odoo-1", ODOO_CONF, append("longpolling_port = 8073")),
  ),
  m("proxy2-workers-zero", "workers = 0: no gevent worker", "PROXY-2", "odoo-workers-multiprocess", (s) =>
    s.line("odoo-1", ODOO_CONF, "workers", "workers = 0"),
  ),
  m("proxy2-upstream-not-odoo", "the odoochat upstream pointing at the PostgreSQL host", "PROXY-2", "nginx-upstreams-are-odoo-hosts", (s) =>
    s.file("proxy", SITE, (t) => t.replace(/(upstream odoochat \{[^}]*server )[0-9.]+:8072;/, "$110.40.128.12:8072;")),
  ),
  // --- PROXY-3 ----------------------------------------------------------------------------------
  m("proxy3-no-x-forwarded-proto", "drop X-Forwarded-Proto", "PROXY-3", "nginx-forwarded-headers", (s) =>
    s.file("proxy", SITE, inLocation("/", dropLine(/X-Forwarded-Proto/))),
  ),
  m("proxy3-websocket-no-x-forwarded-for", "drop X-Forwarded-For on /websocket", "PROXY-3", "nginx-forwarded-headers", (s) =>
    s.file("proxy", SITE, inLocation("/websocket", dropLine(/X-Forwarded-For/))),
  ),
  m("proxy3-no-x-forwarded-host", "drop X-Forwarded-Host", "PROXY-3", "nginx-forwarded-headers", (s) =>
    s.file("proxy", SITE, inLocation("/", dropLine(/X-Forwarded-Host/))),
  ),
  m("proxy3-host-proxy-host", "Host $proxy_host (the upstream's name)", "PROXY-3", "nginx-forwarded-headers", (s) =>
    s.file(
      "proxy",
      SITE,
      inLocation("/", (b) => b.replace("proxy_set_header Host $host;", "proxy_set_header Host $proxy_host;")),
    ),
  ),
  m(
    "proxy3-location-drops-inherited",
    "a location setting one header loses the rest (inheritance)",
    "PROXY-3",
    "nginx-forwarded-headers",
    (s) =>
      s.file(
        "proxy",
        SITE,
        beforeRootLocation(
          "    location /web/ {\n        proxy_pass http://odoo;\n        proxy_set_header X-Real-IP $remote_addr;\n        proxy_read_timeout 1230s;\n        proxy_send_timeout 1230s;\n    }",
        ),
      ),
  ),
  // --- PROXY-4 ----------------------------------------------------------------------------------
  m("proxy4-proxy-mode-false", "proxy_mode = False", "PROXY-4", "odoo-proxy-mode-enabled", (s) =>
    s.line("odoo-1", ODOO_CONF, "proxy_mode", "proxy_mode = False"),
  ),
  m("proxy4-proxy-mode-absent", "no proxy_mode", "PROXY-4", "odoo-proxy-mode-enabled", (s) =>
    s.line("odoo-1", ODOO_CONF, "proxy_mode", undefined),
  ),
  m("proxy4-proxy-mode-twice", "proxy_mode written twice (Odoo does not start)", "PROXY-4", "odoo-conf-keys-once", (s) =>
    s.file("odoo-1", ODOO_CONF, append("proxy_mode = True")),
  ),
  m("proxy4-odoo-rc", "odoo.service drop-in sets ODOO_RC", "PROXY-4", UNITS, (s) =>
    s.file("odoo-1", ODOO_UNIT, inService('Environment="ODOO_RC=/etc/odoo/odoo-local.conf"')),
  ),
  // --- PROXY-5 ----------------------------------------------------------------------------------
  m("proxy5-read-timeout-5s", "cut proxy_read_timeout to 5 s", "PROXY-5", "nginx-proxy-timeouts", (s) =>
    s.file(
      "proxy",
      SITE,
      inLocation("/", (b) => b.replace(/proxy_read_timeout \d+s;/, "proxy_read_timeout 5s;")),
    ),
  ),
  m("proxy5-no-send-timeout", "no proxy_send_timeout (nginx's 60 s)", "PROXY-5", "nginx-proxy-timeouts", (s) =>
    s.file("proxy", SITE, inLocation("/", dropLine(/proxy_send_timeout/))),
  ),
  m("proxy5-websocket-read-timeout", "/websocket read timeout 10 s", "PROXY-5", "nginx-proxy-timeouts", (s) =>
    s.file(
      "proxy",
      SITE,
      inLocation("/websocket", (b) => b.replace(/proxy_read_timeout \d+s;/, "proxy_read_timeout 10s;")),
    ),
  ),
  m("proxy5-report-location-short", "a /report/ location with 30 s timeouts", "PROXY-5", "nginx-proxy-timeouts", (s) =>
    s.file(
      "proxy",
      SITE,
      beforeRootLocation(`    location /report/ {\n        proxy_pass http://odoo;\n${PROXIED.replace(/1230s/g, "30s")}\n    }`),
    ),
  ),
  m(
    "proxy5-below-limit-time-real",
    "Odoo's limit_time_real above nginx's read timeout",
    "PROXY-5",
    "nginx-timeouts-cover-odoo-limits",
    (s) => s.line("odoo-1", ODOO_CONF, "limit_time_real", "limit_time_real = 3000"),
  ),
  // --- ODOO-1 -----------------------------------------------------------------------------------
  m("odoo1-admin-passwd-literal", "admin_passwd as a literal", "ODOO-1", "odoo-admin-passwd-secret-reference", (s) =>
    s.line("odoo-1", ODOO_CONF, "admin_passwd", `admin_passwd = ${randomBytes(12).toString("hex")}`),
  ),
  m("odoo1-admin-passwd-absent", 'no admin_passwd (Odoo\'s default "admin")', "ODOO-1", "odoo-admin-passwd-secret-reference", (s) =>
    s.line("odoo-1", ODOO_CONF, "admin_passwd", undefined),
  ),
  m("odoo1-admin-passwd-in-user-data", "admin_passwd in user data", "ODOO-1", "instance-user-data-no-secrets", (s) =>
    s.edit("odoo-odoo-1-instance", (p) => (p.userData = `${p.userData}# admin_passwd = ${randomBytes(12).toString("hex")}\n`)),
  ),
  m("odoo1-root-volume-unencrypted", "unencrypted root volume", "ODOO-1", "instance-volumes-encrypted", (s) =>
    s.edit("odoo-odoo-1-instance", (p) => (p.rootBlockDevice.encrypted = false)),
  ),
  m(
    "odoo1-launch-template-unencrypted",
    "an Odoo launch template with an unencrypted volume",
    "ODOO-1",
    "instance-volumes-encrypted",
    (s) =>
      s.add("aws:ec2/launchTemplate:LaunchTemplate", "odoo-extra-template", {
        tags: tierTags("odoo"),
        blockDeviceMappings: [{ deviceName: "/dev/xvda", ebs: { encrypted: "false", volumeSize: 20 } }],
        metadataOptions: { httpTokens: "required" },
        monitoring: { enabled: true },
      }),
  ),
  m("odoo1-imds-hop-limit", "IMDS hop limit 2 on the Odoo host", "ODOO-1", "instance-imdsv2-required", (s) =>
    s.edit("odoo-odoo-1-instance", (p) => (p.metadataOptions.httpPutResponseHopLimit = 2)),
  ),
  m("odoo1-admin-parameter-string", "the admin password kept as a plain String parameter", "ODOO-1", SECRETS, (s) =>
    s.edit("secrets-odoo-admin-password-parameter", (p) => (p.type = "String")),
  ),
  m("odoo1-admin-password-short", "the admin password generated with 12 characters", "ODOO-1", SECRETS, (s) =>
    s.edit("secrets-odoo-admin-password", (p) => (p.length = 12)),
  ),
  m("odoo1-admin-password-in-program", "the admin password written in the program", "ODOO-1", SECRETS, (s) =>
    s.refer("secrets-odoo-admin-password-parameter", "value", [], randomBytes(12).toString("hex")),
  ),
  m("odoo1-odoo-conf-world-readable", "odoo.conf installed 0644", "ODOO-1", SECRETS, (s) =>
    s.file("odoo-1", "manifest.json", setMode(ODOO_CONF, "0644")),
  ),
  m(
    "odoo1-config-bucket-public-policy",
    "the config bucket's policy allows everyone",
    "ODOO-1",
    "bucket-private-encrypted-versioned",
    (s) =>
      s.edit("config-policy", (p) => {
        const doc = JSON.parse(p.policy);
        doc.Statement.push({ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: "arn:aws:s3:::config/*" });
        p.policy = JSON.stringify(doc);
      }),
  ),
  m("odoo1-admin-parameter-default-key", "the admin password's SecureString without the stack key (aws/ssm)", "ODOO-1", CUSTOMER_KEY, (s) =>
    s.refer("secrets-odoo-admin-password-parameter", "keyId", [], undefined),
  ),
  m(
    "odoo1-admin-user-parameter-aws-ssm-key",
    "the admin user's password (first install) under the account's aws/ssm key",
    "ODOO-1",
    CUSTOMER_KEY,
    (s) => s.refer("secrets-odoo-admin-user-password-parameter", "keyId", [], AWS_SSM_KEY),
  ),
  m("odoo1-stack-key-not-rotating", "the stack key without key rotation", "ODOO-1", "kms-key-rotation-enabled", (s) =>
    s.edit("stack-key-key", (p) => (p.enableKeyRotation = false)),
  ),
  m(
    "odoo1-proxy-ssm-managed-instance-core",
    "AmazonSSMManagedInstanceCore attached to the proxy's role (ssm:GetParameter on every parameter)",
    "ODOO-1",
    OWN_PARAMETERS,
    (s) =>
      s.add(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "proxy-host-AmazonSSMManagedInstanceCore",
        { role: "proxy-host-role", policyArn: "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" },
        { role: ["proxy-host-role"] },
      ),
  ),
  m(
    "odoo1-decrypt-without-parameter-condition",
    "the Odoo role decrypting with the stack key through SSM for any parameter",
    "ODOO-1",
    OWN_PARAMETERS,
    (s) =>
      s.edit(
        "odoo-odoo-1-policy",
        statement("DecryptReferencedParametersWithStackKey", (x) => delete x.Condition.StringEquals["kms:EncryptionContext:PARAMETER_ARN"]),
      ),
  ),
  // --- ODOO-2 -----------------------------------------------------------------------------------
  m("odoo2-list-db-true", "list_db = True", "ODOO-2", "odoo-list-db-disabled", (s) =>
    s.line("odoo-1", ODOO_CONF, "list_db", "list_db = True"),
  ),
  m("odoo2-list-db-absent", "no list_db (Odoo's default True)", "ODOO-2", "odoo-list-db-disabled", (s) =>
    s.line("odoo-1", ODOO_CONF, "list_db", undefined),
  ),
  m("odoo2-options-section-renamed", "[Options] instead of [options]: Odoo reads none of it", "ODOO-2", "odoo-list-db-disabled", (s) =>
    s.file("odoo-1", ODOO_CONF, (t) => t.replace("[options]", "[Options]")),
  ),
  m("odoo2-list-db-twice", "list_db written twice", "ODOO-2", "odoo-conf-keys-once", (s) =>
    s.file("odoo-1", ODOO_CONF, append("list_db = False")),
  ),
  m("odoo2-database-manager-open", "open the database manager on the proxy", "ODOO-2", "nginx-database-manager-blocked", (s) =>
    s.file("proxy", SITE, (t) => t.replace(/\n\s*location ~ \^\/web\/database \{\n\s*return 404;\n\s*\}/, "")),
  ),
  m(
    "odoo2-prefix-location-beats-block",
    "a ^~ /web/ location that wins over the database-manager block",
    "ODOO-2",
    "nginx-database-manager-blocked",
    (s) => s.file("proxy", SITE, beforeRootLocation(`    location ^~ /web/ {\n        proxy_pass http://odoo;\n${PROXIED}\n    }`)),
  ),
  // --- ODOO-3 -----------------------------------------------------------------------------------
  // One database: odoo.conf has db_name and no dbfilter (db_name alone restricts Odoo to it), so a
  // filter is added, not edited.
  m("odoo3-dbfilter-any", "dbfilter = .* added beside db_name", "ODOO-3", "odoo-dbfilter-restricts", (s) =>
    s.file("odoo-1", ODOO_CONF, (t) => t.replace("[options]\n", "[options]\ndbfilter = .*\n")),
  ),
  m("odoo3-no-db-name", "neither db_name nor dbfilter (every database the role sees)", "ODOO-3", "odoo-dbfilter-restricts", (s) =>
    s.line("odoo-1", ODOO_CONF, "db_name", undefined),
  ),
  m("odoo3-db-name-several-no-filter", "db_name lists two databases, no dbfilter picks one", "ODOO-3", "odoo-dbfilter-restricts", (s) =>
    s.line("odoo-1", ODOO_CONF, "db_name", "db_name = erp,erp_test"),
  ),
  // Several databases (issue 16): odoo-1 serves erp and shop, each at its own hostname.
  m(
    "odoo3-database-without-hostname",
    "db_name = erp,shop with its dbfilter, and no nginx server for shop",
    "ODOO-3",
    "odoo-hostnames-pin-databases",
    (s) => s.file("odoo-1", ODOO_CONF, twoDatabases(MULTI_DBFILTER)),
  ),
  m(
    "odoo3-hostname-not-pinned",
    "a shop server beside erp's, both forwarding the client's $host",
    "ODOO-3",
    "odoo-hostnames-pin-databases",
    (s, { model }) => {
      s.file("odoo-1", ODOO_CONF, twoDatabases(MULTI_DBFILTER));
      s.file("proxy", SITE, withServerFor(model.settings.domain, `shop.${model.settings.domain.split(".").slice(1).join(".")}`));
    },
  ),
  m(
    "odoo3-dbfilter-admits-undeclared",
    "dbfilter = ^%d (no $: admits erpx, erp_old beside erp)",
    "ODOO-3",
    "odoo-hostnames-pin-databases",
    (s) => s.file("odoo-1", ODOO_CONF, twoDatabases("^%d")),
  ),
  m("odoo3-unit-db-filter", "odoo.service drop-in starts Odoo with --db-filter=.*", "ODOO-3", UNITS, (s) =>
    s.file("odoo-1", ODOO_UNIT, odooStart("--db-filter=.*")),
  ),
  // --- ODOO-5 -----------------------------------------------------------------------------------
  m("odoo5-no-logfile", "no logfile", "ODOO-5", "odoo-logfile-set", (s) => s.line("odoo-1", ODOO_CONF, "logfile", undefined)),
  m("odoo5-logfile-relative", "a relative logfile", "ODOO-5", "odoo-logfile-set", (s) =>
    s.line("odoo-1", ODOO_CONF, "logfile", "logfile = odoo.log"),
  ),
  m("odoo5-logfile-not-rotated", "log to a path logrotate does not rotate", "ODOO-5", "odoo-logfile-rotated", (s) =>
    s.line("odoo-1", ODOO_CONF, "logfile", "logfile = /srv/odoo.log"),
  ),
  m("odoo5-logrotate-not-delivered", "the logrotate stanza not delivered", "ODOO-5", "odoo-logfile-rotated", (s) =>
    s.remove(s.fileName("odoo-1", LOGROTATE)),
  ),
  m("odoo5-unit-logfile", "odoo.service drop-in starts Odoo with another --logfile", "ODOO-5", UNITS, (s) =>
    s.file("odoo-1", ODOO_UNIT, odooStart("--logfile=/srv/odoo.log")),
  ),
  // --- LIMIT-1 ----------------------------------------------------------------------------------
  m("limit1-workers-zero", "workers = 0 (threaded mode)", "LIMIT-1", "odoo-workers-multiprocess", (s) =>
    s.line("odoo-1", ODOO_CONF, "workers", "workers = 0"),
  ),
  m("limit1-workers-40", "workers = 40 on an m6i.xlarge", "LIMIT-1", "odoo-workers-fit-instance", (s) =>
    s.line("odoo-1", ODOO_CONF, "workers", "workers = 40"),
  ),
  m("limit1-smaller-instance", "the Odoo host resized to a t3.small", "LIMIT-1", "odoo-workers-fit-instance", (s) =>
    s.edit("odoo-odoo-1-instance", (p) => (p.instanceType = "t3.small")),
  ),
  // limit_memory_hard caps one process's address space (lib/sizing.ts odooMemoryBudget): the
  // m6i.xlarge's 16 GiB for one process leaves nothing for the others at rest.
  m(
    "limit1-memory-beyond-ram",
    "limit_memory_hard of 16 GiB (all of the host's RAM) per process",
    "LIMIT-1",
    "odoo-workers-fit-instance",
    (s) => s.line("odoo-1", ODOO_CONF, "limit_memory_hard", "limit_memory_hard = 17179869184"),
  ),
  m("limit1-unit-workers", "odoo.service drop-in starts Odoo with --workers=40", "LIMIT-1", UNITS, (s) =>
    s.file("odoo-1", ODOO_UNIT, odooStart("--workers=40")),
  ),
  // --- LIMIT-2 ----------------------------------------------------------------------------------
  m("limit2-cron-threads-4", "max_cron_threads = 4", "LIMIT-2", "odoo-max-cron-threads-conservative", (s) =>
    s.line("odoo-1", ODOO_CONF, "max_cron_threads", "max_cron_threads = 4"),
  ),
  m("limit2-cron-threads-absent", "no max_cron_threads (Odoo's 2 on every host)", "LIMIT-2", "odoo-max-cron-threads-conservative", (s) =>
    s.line("odoo-1", ODOO_CONF, "max_cron_threads", undefined),
  ),
  m("limit2-no-cron-host", "no cron host at all", "LIMIT-2", "odoo-exactly-one-cron-host", (s) =>
    s.line("odoo-1", ODOO_CONF, "max_cron_threads", "max_cron_threads = 0"),
  ),
  m("limit2-unit-cron-threads", "odoo.service drop-in starts Odoo with --max-cron-threads=8", "LIMIT-2", UNITS, (s) =>
    s.file("odoo-1", ODOO_UNIT, odooStart("--max-cron-threads=8")),
  ),
  // --- LIMIT-3 ----------------------------------------------------------------------------------
  m("limit3-no-limit-time-real", "no limit_time_real", "LIMIT-3", "odoo-limits-set", (s) =>
    s.line("odoo-1", ODOO_CONF, "limit_time_real", undefined),
  ),
  m("limit3-soft-above-hard", "limit_memory_soft above limit_memory_hard", "LIMIT-3", "odoo-limits-set", (s) =>
    s.line("odoo-1", ODOO_CONF, "limit_memory_soft", "limit_memory_soft = 99999999999"),
  ),
  m("limit3-cpu-above-real", "limit_time_cpu above limit_time_real", "LIMIT-3", "odoo-limits-set", (s) =>
    s.line("odoo-1", ODOO_CONF, "limit_time_cpu", "limit_time_cpu = 5000"),
  ),
  m("limit3-memory-hard-zero", "limit_memory_hard = 0", "LIMIT-3", "odoo-limits-set", (s) =>
    s.line("odoo-1", ODOO_CONF, "limit_memory_hard", "limit_memory_hard = 0"),
  ),
  m("limit3-cron-unlimited", "limit_time_real_cron = 0 (no limit for crons)", "LIMIT-3", "odoo-limits-set", (s) =>
    s.line("odoo-1", ODOO_CONF, "limit_time_real_cron", "limit_time_real_cron = 0"),
  ),
  m("limit3-unit-limit-time-real", "odoo.service drop-in starts Odoo with --limit-time-real=0", "LIMIT-3", UNITS, (s) =>
    s.file("odoo-1", ODOO_UNIT, odooStart("--limit-time-real=0")),
  ),
  // --- POOL-1 -----------------------------------------------------------------------------------
  m("pool1-erp-session", "pool_mode = session for the Odoo database", "POOL-1", "pgbouncer-transaction-pooling", (s) =>
    s.file(
      "pgbouncer",
      INI,
      pgbouncerEntry("erp", (v) => v.replace("pool_mode=transaction", "pool_mode=session")),
    ),
  ),
  m(
    "pool1-global-session-inherited",
    "global pool_mode = session inherited by the Odoo database",
    "POOL-1",
    "pgbouncer-transaction-pooling",
    (s) =>
      s.file("pgbouncer", INI, (t) =>
        pgbouncerEntry("erp", (v) => v.replace(" pool_mode=transaction", ""))(t).replace(
          /^pool_mode = transaction$/m,
          "pool_mode = session",
        ),
      ),
  ),
  m("pool1-users-session", "[users] odoo pool_mode=session", "POOL-1", "pgbouncer-transaction-pooling", (s) =>
    s.file("pgbouncer", INI, append("[users]\nodoo = pool_mode=session")),
  ),
  m(
    "pool1-erp-entry-twice",
    "a second erp entry in session mode (the later one wins)",
    "POOL-1",
    "pgbouncer-transaction-pooling",
    (s, { model }) =>
      s.file("pgbouncer", INI, addDatabaseLine(`erp = dbname=erp host=${model.hosts.postgres.fqdn} port=5432 pool_mode=session`)),
  ),
  m("pool1-fallback-session", "a * fallback entry in session mode", "POOL-1", "pgbouncer-transaction-pooling", (s, { model }) =>
    s.file("pgbouncer", INI, addDatabaseLine(`* = host=${model.hosts.postgres.fqdn} port=5432 pool_mode=session`)),
  ),
  m("pool1-listen-pool-missing", "no postgres (LISTEN) pool", "POOL-1", "pgbouncer-transaction-pooling", (s) =>
    s.file("pgbouncer", INI, (t) => t.replace(/^postgres = .*\n/m, "")),
  ),
  m("pool1-listen-pool-transaction", "the LISTEN pool in transaction mode", "POOL-1", "pgbouncer-transaction-pooling", (s) =>
    s.file(
      "pgbouncer",
      INI,
      pgbouncerEntry("postgres", (v) => v.replace("pool_mode=session", "pool_mode=transaction")),
    ),
  ),
  m(
    "pool1-listen-pool-inherits-transaction",
    "the LISTEN pool without pool_mode (inherits transaction)",
    "POOL-1",
    "pgbouncer-transaction-pooling",
    (s) =>
      s.file(
        "pgbouncer",
        INI,
        pgbouncerEntry("postgres", (v) => v.replace(" pool_mode=session", "")),
      ),
  ),
  m("pool1-users-transaction", "[users] odoo pool_mode=transaction (the LISTEN pool too)", "POOL-1", "pgbouncer-transaction-pooling", (s) =>
    s.file("pgbouncer", INI, append("[users]\nodoo = pool_mode=transaction")),
  ),
  m("pool1-listen-pool-to-erp", "the session exception pointed at erp", "POOL-1", "pgbouncer-transaction-pooling", (s) =>
    s.file(
      "pgbouncer",
      INI,
      pgbouncerEntry("postgres", (v) => v.replace("dbname=postgres", "dbname=erp")),
    ),
  ),
  m("pool1-include", "pgbouncer.ini %includes another file", "POOL-1", "pgbouncer-ini-self-contained", (s) =>
    s.file("pgbouncer", INI, append("%include /etc/pgbouncer/local.ini")),
  ),
  m("pool1-ini-not-delivered", "pgbouncer.ini not delivered", "POOL-1", "hosts-receive-checked-config-files", (s) =>
    s.remove(s.fileName("pgbouncer", INI)),
  ),
  m("pool1-unit-other-ini", "pgbouncer.service drop-in starts PgBouncer with another ini", "POOL-1", UNITS, (s) =>
    s.file("pgbouncer", PGBOUNCER_UNIT, append("ExecStart=\nExecStart=/usr/sbin/pgbouncer /etc/pgbouncer/local.ini")),
  ),
  // --- POOL-2 -----------------------------------------------------------------------------------
  m("pool2-no-default-pool-size", "no default_pool_size", "POOL-2", "pgbouncer-default-pool-size-set", (s) =>
    s.line("pgbouncer", INI, "default_pool_size", undefined),
  ),
  m(
    "pool2-postgres-pool-listen-only",
    "the postgres session pool sized for the LISTENers alone",
    "POOL-2",
    "pgbouncer-postgres-pool-covers-odoo",
    (s) =>
      s.file(
        "pgbouncer",
        INI,
        pgbouncerEntry("postgres", (v) => v.replace(/\bpool_size=\d+/, "pool_size=4")),
      ),
  ),
  m("pool2-erp-pool-size-zero", "erp pool_size=0", "POOL-2", "pgbouncer-default-pool-size-set", (s) =>
    s.file(
      "pgbouncer",
      INI,
      pgbouncerEntry("erp", (v) => v.replace(/pool_size=\d+/, "pool_size=0")),
    ),
  ),
  // --- POOL-3 -----------------------------------------------------------------------------------
  m("pool3-reserve-zero", "reserve_pool_size = 0", "POOL-3", "pgbouncer-reserve-pool-set", (s) =>
    s.line("pgbouncer", INI, "reserve_pool_size", "reserve_pool_size = 0"),
  ),
  m("pool3-reserve-timeout-zero", "reserve_pool_timeout = 0", "POOL-3", "pgbouncer-reserve-pool-set", (s) =>
    s.line("pgbouncer", INI, "reserve_pool_timeout", "reserve_pool_timeout = 0"),
  ),
  m("pool3-erp-reserve-pool-zero", "erp reserve_pool=0 beats reserve_pool_size", "POOL-3", "pgbouncer-reserve-pool-set", (s) =>
    s.file(
      "pgbouncer",
      INI,
      pgbouncerEntry("erp", (v) => `${v} reserve_pool=0`),
    ),
  ),
  m(
    "pool3-postgres-reserve-zero",
    "the postgres session pool without a reserve (reserve_pool=0)",
    "POOL-3",
    "pgbouncer-postgres-pool-covers-odoo",
    (s) =>
      s.file(
        "pgbouncer",
        INI,
        pgbouncerEntry("postgres", (v) => v.replace(/\breserve_pool=\d+/, "reserve_pool=0")),
      ),
  ),
  m(
    "pool3-postgres-cap-hides-reserve",
    "the postgres entry's max_db_connections = pool_size (the reserve never used)",
    "POOL-3",
    "pgbouncer-postgres-pool-covers-odoo",
    (s) =>
      s.file(
        "pgbouncer",
        INI,
        pgbouncerEntry("postgres", (v) => v.replace(/\bmax_db_connections=\d+/, `max_db_connections=${/\bpool_size=(\d+)/.exec(v)?.[1]}`)),
      ),
  ),
  m("pool3-keepidle-kernel", "no tcp_keepidle (the kernel's two hours)", "POOL-3", "pgbouncer-dead-peers-freed", (s) =>
    s.line("pgbouncer", INI, "tcp_keepidle", undefined),
  ),
  m("pool3-keepalive-off", "tcp_keepalive = 0", "POOL-3", "pgbouncer-dead-peers-freed", (s) =>
    s.line("pgbouncer", INI, "tcp_keepalive", "tcp_keepalive = 0"),
  ),
  m(
    "pool3-no-tcp-user-timeout",
    "no tcp_user_timeout (~15 minutes of retransmissions to a dead LISTENer)",
    "POOL-3",
    "pgbouncer-dead-peers-freed",
    (s) => s.line("pgbouncer", INI, "tcp_user_timeout", undefined),
  ),
  // --- POOL-4 -----------------------------------------------------------------------------------
  m(
    "pool4-max-client-conn-20",
    "max_client_conn below Odoo's processes × db_maxconn",
    "POOL-4",
    "pgbouncer-max-client-conn-covers-odoo",
    (s) => s.line("pgbouncer", INI, "max_client_conn", "max_client_conn = 20"),
  ),
  m("pool4-db-maxconn-raised", "db_maxconn raised in odoo.conf only", "POOL-4", "pgbouncer-max-client-conn-covers-odoo", (s) =>
    s.line("odoo-1", ODOO_CONF, "db_maxconn", "db_maxconn = 64"),
  ),
  m(
    "pool4-db-maxconn-gevent-raised",
    "db_maxconn_gevent raised in odoo.conf only",
    "POOL-4",
    "pgbouncer-max-client-conn-covers-odoo",
    (s) => s.line("odoo-1", ODOO_CONF, "db_maxconn_gevent", "db_maxconn_gevent = 2000"),
  ),
  m("pool4-max-client-conn-absent", "no max_client_conn", "POOL-4", "pgbouncer-max-client-conn-set", (s) =>
    s.line("pgbouncer", INI, "max_client_conn", undefined),
  ),
  m("pool4-below-pools", "max_client_conn below the pool plus its reserve", "POOL-4", "pgbouncer-max-client-conn-set", (s) =>
    s.line("pgbouncer", INI, "max_client_conn", "max_client_conn = 12"),
  ),
  // --- POOL-5 -----------------------------------------------------------------------------------
  m("pool5-no-max-db-connections", "no max_db_connections anywhere", "POOL-5", "pgbouncer-max-db-connections-set", (s) =>
    s.file("pgbouncer", INI, (t) =>
      pgbouncerEntry("erp", (v) => v.replace(/ max_db_connections=\d+/, ""))(t).replace(/^max_db_connections = \d+\n/m, ""),
    ),
  ),
  m("pool5-erp-cap-below-pool", "erp max_db_connections below its pool_size", "POOL-5", "pgbouncer-max-db-connections-set", (s) =>
    s.file(
      "pgbouncer",
      INI,
      pgbouncerEntry("erp", (v) => v.replace(/max_db_connections=\d+/, "max_db_connections=5")),
    ),
  ),
  m("pool5-erp-cap-unlimited", "erp max_db_connections=0 beats the global cap", "POOL-5", "pgbouncer-max-db-connections-set", (s) =>
    s.file(
      "pgbouncer",
      INI,
      pgbouncerEntry("erp", (v) => v.replace(/max_db_connections=\d+/, "max_db_connections=0")),
    ),
  ),
  // --- AUTH-1 -----------------------------------------------------------------------------------
  m("auth1-pgbouncer-md5", "auth_type = md5", "AUTH-1", "pgbouncer-auth-scram", (s) =>
    s.line("pgbouncer", INI, "auth_type", "auth_type = md5"),
  ),
  m("auth1-auth-type-absent", "no auth_type (PgBouncer's md5)", "AUTH-1", "pgbouncer-auth-scram", (s) =>
    s.line("pgbouncer", INI, "auth_type", undefined),
  ),
  m("auth1-hba-md5", "md5 in pg_hba.conf", "AUTH-1", "pg-hba-no-weak-methods", (s) =>
    s.file("postgres", HBA, (t) => t.replace(/(hostssl\s+\S+\s+odoo,odoo_migrate\s+\S+\s+)scram-sha-256/, "$1md5")),
  ),
  m("auth1-hba-trust", "trust in pg_hba.conf", "AUTH-1", "pg-hba-no-weak-methods", (s) =>
    s.file("postgres", HBA, (t) => t.replace(/(hostssl\s+\S+\s+odoo,odoo_migrate\s+\S+\s+)scram-sha-256/, "$1trust")),
  ),
  m("auth1-password-encryption-md5", "password_encryption = md5", "AUTH-1", "postgres-password-encryption-scram", (s) =>
    s.line("postgres", PG_CONF, "password_encryption", "password_encryption = 'md5'"),
  ),
  m("auth1-later-conf-password-encryption", "a later conf.d file sets password_encryption", "AUTH-1", OVERRIDES, (s) =>
    s.addFile("postgres", PG_LATER_CONF, "password_encryption = 'md5'\n"),
  ),
  m("auth1-alter-system-password-encryption", "ALTER SYSTEM SET password_encryption", "AUTH-1", OVERRIDES, (s) =>
    s.file("postgres", BOOTSTRAP, append("ALTER SYSTEM SET password_encryption = 'md5';")),
  ),
  m("auth1-role-password-encryption", "ALTER ROLE odoo SET password_encryption = md5", "AUTH-1", OVERRIDES, (s) =>
    s.file("postgres", BOOTSTRAP, append(`ALTER ROLE "odoo" SET password_encryption = 'md5';`)),
  ),
  // --- AUTH-2 -----------------------------------------------------------------------------------
  m("auth2-no-auth-file", "no auth_file", "AUTH-2", "pgbouncer-auth-file-set", (s) => s.line("pgbouncer", INI, "auth_file", undefined)),
  m("auth2-userlist-0644", "userlist installed 0644", "AUTH-2", "pgbouncer-auth-file-protected", (s) =>
    s.file("pgbouncer", "manifest.json", setMode(USERLIST, "0644")),
  ),
  m("auth2-userlist-plaintext", "a plaintext password in the userlist", "AUTH-2", "pgbouncer-auth-file-protected", (s) =>
    s.file("pgbouncer", USERLIST, (t) => t.replace(/^"odoo" .*$/m, `"odoo" "${randomBytes(12).toString("hex")}"`)),
  ),
  m("auth2-userlist-not-delivered", "the userlist not delivered", "AUTH-2", "pgbouncer-auth-file-protected", (s) =>
    s.remove(s.fileName("pgbouncer", USERLIST)),
  ),
  m("auth2-auth-file-elsewhere", "auth_file naming a file the host does not receive", "AUTH-2", "pgbouncer-auth-file-protected", (s) =>
    s.line("pgbouncer", INI, "auth_file", "auth_file = /tmp/users.txt"),
  ),
  m("auth2-userlist-malformed", "a userlist line PgBouncer stops at", "AUTH-2", "pgbouncer-auth-file-protected", (s) =>
    s.file("pgbouncer", USERLIST, (t) => t.replace(/^"odoo" (.*)$/m, "odoo $1")),
  ),
  m("auth2-imdsv1", "IMDSv1 allowed", "AUTH-2", "instance-imdsv2-required", (s) =>
    s.edit("postgres-host-instance", (p) => (p.metadataOptions.httpTokens = "optional")),
  ),
  m("auth2-launch-template-imdsv1", "a PgBouncer launch template allowing IMDSv1", "AUTH-2", "instance-imdsv2-required", (s) =>
    s.add("aws:ec2/launchTemplate:LaunchTemplate", "pgbouncer-extra-template", {
      tags: tierTags("pgbouncer"),
      metadataOptions: { httpTokens: "optional" },
      monitoring: { enabled: true },
    }),
  ),
  m("auth2-verifier-parameter-string", "the SCRAM verifier kept as a plain String parameter", "AUTH-2", SECRETS, (s) =>
    s.edit("secrets-odoo-db-scram-verifier-parameter", (p) => (p.type = "String")),
  ),
  m("auth2-db-password-parameter-string", "Odoo's database password kept as a plain String parameter", "AUTH-2", SECRETS, (s) =>
    s.edit("secrets-odoo-db-password-parameter", (p) => (p.type = "String")),
  ),
  m(
    "auth2-verifier-parameter-aws-ssm-key",
    "the SCRAM verifier's SecureString under the account's aws/ssm key",
    "AUTH-2",
    CUSTOMER_KEY,
    (s) => s.refer("secrets-odoo-db-scram-verifier-parameter", "keyId", [], AWS_SSM_KEY),
  ),
  m(
    "auth2-pgbouncer-reads-every-parameter",
    "the PgBouncer role allowed ssm:GetParameter on every parameter",
    "AUTH-2",
    OWN_PARAMETERS,
    (s) =>
      s.edit(
        "pgbouncer-host-policy",
        statement("ReadReferencedParameters", (x) => (x.Resource = "*")),
      ),
  ),
  // --- TLS-1 ------------------------------------------------------------------------------------
  m("tls1-pgbouncer-client-tls-disable", "PgBouncer accepts plain clients", "TLS-1", "pgbouncer-client-tls-required", (s) =>
    s.line("pgbouncer", INI, "client_tls_sslmode", "client_tls_sslmode = disable"),
  ),
  m("tls1-pgbouncer-client-key-absent", "no client_tls_key_file", "TLS-1", "pgbouncer-client-tls-required", (s) =>
    s.line("pgbouncer", INI, "client_tls_key_file", undefined),
  ),
  m("tls1-pgbouncer-server-tls-require", "PgBouncer does not verify PostgreSQL", "TLS-1", "pgbouncer-server-tls-verified", (s) =>
    s.line("pgbouncer", INI, "server_tls_sslmode", "server_tls_sslmode = require"),
  ),
  m("tls1-pgbouncer-server-ca-absent", "no server_tls_ca_file", "TLS-1", "pgbouncer-server-tls-verified", (s) =>
    s.line("pgbouncer", INI, "server_tls_ca_file", undefined),
  ),
  m("tls1-pgbouncer-include", "pgbouncer.ini %includes a file that could turn TLS off", "TLS-1", "pgbouncer-ini-self-contained", (s) =>
    s.file("pgbouncer", INI, append("%include /etc/pgbouncer/tls.ini")),
  ),
  m("tls1-ssl-off", "ssl = off", "TLS-1", "postgres-ssl-on", (s) => s.line("postgres", PG_CONF, "ssl", "ssl = off")),
  m("tls1-later-conf-ssl-off", "a later conf.d file sets ssl = off", "TLS-1", OVERRIDES, (s) =>
    s.addFile("postgres", PG_LATER_CONF, "ssl = off\n"),
  ),
  m("tls1-alter-system-ssl-off", "ALTER SYSTEM SET ssl = off", "TLS-1", OVERRIDES, (s) =>
    s.file("postgres", BOOTSTRAP, append("ALTER SYSTEM SET ssl = off;")),
  ),
  m("tls1-pg-ctl-ssl-off", "pg_ctl.conf starts the server with -c ssl=off", "TLS-1", OVERRIDES, (s) =>
    s.addFile("postgres", PG_CTL_CONF, "pg_ctl_options = '-o \"-c ssl=off\"'\n"),
  ),
  m("tls1-postgres-include", "the drop-in includes a file the plan does not show", "TLS-1", OVERRIDES, (s) =>
    s.file("postgres", PG_CONF, append("include_if_exists = '/etc/postgresql/15/main/local.conf'")),
  ),
  m("tls1-hba-host-record", "a plain host record in pg_hba.conf", "TLS-1", "pg-hba-hostssl-only", (s) =>
    s.file("postgres", HBA, (t) => t.replace(/^hostssl(\s+\S+\s+odoo)/m, "host   $1")),
  ),
  m("tls1-hba-hostnossl", "a hostnossl record in pg_hba.conf", "TLS-1", "pg-hba-hostssl-only", (s) =>
    s.file("postgres", HBA, (t) => t.replace(/^hostssl(\s+\S+\s+odoo)/m, "hostnossl$1")),
  ),
  m("tls1-key-parameter-string", "PostgreSQL's TLS key kept as a plain String parameter", "TLS-1", SECRETS, (s) =>
    s.edit("internal-ca-postgres-key-parameter", (p) => (p.type = "String")),
  ),
  // --- TLS-2 ------------------------------------------------------------------------------------
  m("tls2-db-sslmode-disable", "db_sslmode = disable", "TLS-2", "odoo-db-sslmode-verified", (s) =>
    s.line("odoo-1", ODOO_CONF, "db_sslmode", "db_sslmode = disable"),
  ),
  m("tls2-db-sslmode-absent", "no db_sslmode (libpq's prefer)", "TLS-2", "odoo-db-sslmode-verified", (s) =>
    s.line("odoo-1", ODOO_CONF, "db_sslmode", undefined),
  ),
  m("tls2-db-sslmode-require", "db_sslmode = require (unverified)", "TLS-2", "odoo-db-sslmode-verified", (s) =>
    s.line("odoo-1", ODOO_CONF, "db_sslmode", "db_sslmode = require"),
  ),
  m("tls2-unit-db-sslmode", "odoo.service drop-in starts Odoo with --db_sslmode=disable", "TLS-2", UNITS, (s) =>
    s.file("odoo-1", ODOO_UNIT, odooStart("--db_sslmode=disable")),
  ),
  m("tls2-db-host-outside", "db_host naming an address outside the stack", "TLS-2", "database-traffic-through-pgbouncer", (s) =>
    s.line("odoo-1", ODOO_CONF, "db_host", "db_host = 203.0.113.5"),
  ),
  // --- TLS-3 ------------------------------------------------------------------------------------
  m("tls3-pgbouncer-san", "PgBouncer's certificate without the name Odoo dials", "TLS-3", "certificate-sans-match-clients", (s) =>
    s.edit("internal-ca-pgbouncer-csr", (p) => (p.dnsNames = ["bouncer.odoo.internal"])),
  ),
  m("tls3-postgres-san", "PostgreSQL's certificate without the name PgBouncer dials", "TLS-3", "certificate-sans-match-clients", (s) =>
    s.edit("internal-ca-postgres-csr", (p) => (p.dnsNames = ["db.odoo.internal"])),
  ),
  m("tls3-dns-record-elsewhere", "PgBouncer's DNS name pointing at another address", "TLS-3", "certificate-sans-match-clients", (s) =>
    s.edit("pgbouncer-host-dns", (p) => (p.records = ["10.40.128.99"])),
  ),
  m(
    "tls3-certificate-from-other-request",
    "PgBouncer's certificate signed from Odoo's request",
    "TLS-3",
    "certificate-sans-match-clients",
    (s) => s.refer("internal-ca-pgbouncer-cert", "certRequestPem", ["internal-ca-odoo-1-csr"], "csr"),
  ),
  // --- PG-1 -------------------------------------------------------------------------------------
  m("pg1-max-connections-20", "max_connections below the pools", "PG-1", "postgres-max-connections-cover-pgbouncer", (s) =>
    s.line("postgres", PG_CONF, "max_connections", "max_connections = 20"),
  ),
  m(
    "pg1-migration-role-cap-raised",
    "the migration role's max_user_connections beyond what max_connections counts",
    "PG-1",
    "postgres-max-connections-cover-pgbouncer",
    (s) =>
      s.file("pgbouncer", INI, (t) => t.replace(/^odoo_migrate = max_user_connections=\d+$/m, "odoo_migrate = max_user_connections=500")),
  ),
  m("pg1-max-connections-absent", "no max_connections (PostgreSQL's 100)", "PG-1", "postgres-max-connections-set", (s) =>
    s.line("postgres", PG_CONF, "max_connections", undefined),
  ),
  m("pg1-later-conf-max-connections", "a later conf.d file sets max_connections", "PG-1", OVERRIDES, (s) =>
    s.addFile("postgres", PG_LATER_CONF, "max_connections = 500\n"),
  ),
  m("pg1-alter-system-max-connections", "ALTER SYSTEM SET max_connections", "PG-1", OVERRIDES, (s) =>
    s.file("postgres", BOOTSTRAP, append("ALTER SYSTEM SET max_connections = 500;")),
  ),
  // --- PG-2 -------------------------------------------------------------------------------------
  m("pg2-no-statement-timeout", "no statement_timeout, per role or server-wide", "PG-2", "postgres-timeouts-set", (s) =>
    s
      .line("postgres", PG_CONF, "statement_timeout", undefined)
      .file("postgres", BOOTSTRAP, (t) => t.replace(/^ALTER ROLE "odoo" SET statement_timeout = \d+;\n/m, "")),
  ),
  m("pg2-role-lock-timeout-zero", "lock_timeout = 0 for Odoo's role", "PG-2", "postgres-timeouts-set", (s) =>
    s.file("postgres", BOOTSTRAP, (t) => t.replace(/^(ALTER ROLE "odoo" SET lock_timeout = )\d+;/m, "$10;")),
  ),
  m("pg2-role-in-database-zero", "ALTER ROLE odoo IN DATABASE erp SET statement_timeout = 0", "PG-2", "postgres-timeouts-set", (s) =>
    s.file("postgres", BOOTSTRAP, append(`ALTER ROLE "odoo" IN DATABASE "erp" SET statement_timeout = 0;`)),
  ),
  m("pg2-connect-query", "PgBouncer's connect_query resets statement_timeout", "PG-2", "pgbouncer-queries-keep-timeouts", (s) =>
    s.file(
      "pgbouncer",
      INI,
      pgbouncerEntry("erp", (v) => `${v} connect_query='SET statement_timeout = 0'`),
    ),
  ),
  // --- PG-3 -------------------------------------------------------------------------------------
  m("pg3-log-lock-waits-off", "log_lock_waits = off", "PG-3", "postgres-log-lock-waits", (s) =>
    s.line("postgres", PG_CONF, "log_lock_waits", "log_lock_waits = off"),
  ),
  m("pg3-log-lock-waits-absent", "no log_lock_waits (off)", "PG-3", "postgres-log-lock-waits", (s) =>
    s.line("postgres", PG_CONF, "log_lock_waits", undefined),
  ),
  m(
    "pg3-deadlock-timeout-beyond-lock-timeout",
    "deadlock_timeout above lock_timeout (waits cancelled unlogged)",
    "PG-3",
    "postgres-log-lock-waits",
    (s) => s.line("postgres", PG_CONF, "deadlock_timeout", "deadlock_timeout = '60s'"),
  ),
  m("pg3-later-conf-off", "a later conf.d file sets log_lock_waits = off", "PG-3", OVERRIDES, (s) =>
    s.addFile("postgres", PG_LATER_CONF, "log_lock_waits = off\n"),
  ),
  m("pg3-alter-system-off", "ALTER SYSTEM SET log_lock_waits = off", "PG-3", OVERRIDES, (s) =>
    s.file("postgres", BOOTSTRAP, append("ALTER SYSTEM SET log_lock_waits = off;")),
  ),
  m("pg3-role-off", "ALTER ROLE odoo SET log_lock_waits = off", "PG-3", OVERRIDES, (s) =>
    s.file("postgres", BOOTSTRAP, append(`ALTER ROLE "odoo" SET log_lock_waits = off;`)),
  ),
  // --- OBS-3 ------------------------------------------------------------------------------------
  m("obs3-log-pooler-errors-0", "log_pooler_errors = 0", "OBS-3", "pgbouncer-logging-enabled", (s) =>
    s.line("pgbouncer", INI, "log_pooler_errors", "log_pooler_errors = 0"),
  ),
  m("obs3-log-connections-absent", "no log_connections", "OBS-3", "pgbouncer-logging-enabled", (s) =>
    s.line("pgbouncer", INI, "log_connections", undefined),
  ),
  m("obs3-include", "pgbouncer.ini %includes a file that could turn logging off", "OBS-3", "pgbouncer-ini-self-contained", (s) =>
    s.file("pgbouncer", INI, append("%include /etc/pgbouncer/logging.ini")),
  ),
  // --- alarms the checklist's observability and TLS items need (OBS-1, OBS-4…8, PG-4, TLS-4) -----
  m("obs1-listen-pool-queue-alarm-missing", "no cl_waiting alarm for the LISTEN pool", "OBS-1", ALARMS, (s) =>
    s.remove("monitoring-pgbouncer-clients-waiting-postgres"),
  ),
  m("obs1-maxwait-alarm-other-dimensions", "the maxwait alarm on a dimension set the collector does not publish", "OBS-1", ALARMS, (s) =>
    s.edit("monitoring-pgbouncer-maxwait-erp", (p) => (p.dimensions = { ...p.dimensions, Host: "pgbouncer" })),
  ),
  m("obs1-alarm-topic-removed", "no alarm topic", "OBS-1", ALARMS, (s) => s.remove("monitoring-alarms")),
  m("obs4-p99-report-alarm-missing", "no p99 alarm for reports", "OBS-4", ALARMS, (s) => s.remove("monitoring-odoo-p99-report")),
  m("obs5-5xx-alarm-silent", "the 5xx alarm notifies nobody", "OBS-5", ALARMS, (s) =>
    s.refer("monitoring-odoo-5xx-rate", "alarmActions", [], []),
  ),
  m("obs6-cron-overlap-actions-disabled", "the cron overlap alarm with actions disabled", "OBS-6", ALARMS, (s) =>
    s.edit("monitoring-odoo-cron-overlap", (p) => (p.actionsEnabled = false)),
  ),
  m("obs7-long-transaction-other-topic", "the long-transaction alarm notifying a topic outside the stack", "OBS-7", ALARMS, (s) =>
    s.refer("monitoring-postgres-long-transaction", "alarmActions", [], ["arn:aws:sns:eu-west-1:999999999999:someone-else"]),
  ),
  m("obs8-collector-silent-alarm-missing", "no alarm when the PostgreSQL host's collector goes silent", "OBS-8", ALARMS, (s) =>
    s.remove("monitoring-collector-silent-postgres"),
  ),
  m("obs8-pgbouncer-fds-alarm-missing", "no file-descriptor alarm for PgBouncer", "OBS-8", ALARMS, (s) =>
    s.remove("monitoring-host-fds-pgbouncer-pgbouncer"),
  ),
  m("obs8-detailed-monitoring-off", "detailed monitoring off on the PostgreSQL host", "OBS-8", "instance-detailed-monitoring", (s) =>
    s.edit("postgres-host-instance", (p) => (p.monitoring = false)),
  ),
  m(
    "obs8-launch-template-basic-monitoring",
    "a launch template without detailed monitoring",
    "OBS-8",
    "instance-detailed-monitoring",
    (s) =>
      s.add("aws:ec2/launchTemplate:LaunchTemplate", "odoo-extra-template", {
        tags: tierTags("odoo"),
        metadataOptions: { httpTokens: "required" },
      }),
  ),
  m("pg4-dead-tuples-alarm-missing", "no dead-tuples alarm for erp", "PG-4", ALARMS, (s) =>
    s.remove("monitoring-postgres-dead-tuples-erp"),
  ),
  m("tls4-expiry-alarm-missing", "no expiry alarm for the public certificate", "TLS-4", ALARMS, (s) =>
    s.remove("monitoring-tls-expiry-proxy-public"),
  ),
  m("tls4-certificate-not-watched", "the collector does not watch PgBouncer's certificate", "TLS-4", ALARMS, (s) =>
    s.file("pgbouncer", METRICS, (t) => {
      const doc = JSON.parse(t) as { certificates: { name: string }[] };
      doc.certificates = doc.certificates.filter((c) => c.name !== "pgbouncer");
      return `${JSON.stringify(doc, null, 2)}\n`;
    }),
  ),
  // --- beyond the P items: what the hosts keep their data on --------------------------------------
  m("backup1-data-volume-unencrypted", "unencrypted PostgreSQL data volume", "BACKUP-1", "ebs-volume-encrypted", (s) =>
    s.edit("postgres-data", (p) => (p.encrypted = false)),
  ),
  m("backup1-bucket-versioning-suspended", "backup bucket versioning suspended", "BACKUP-1", "bucket-private-encrypted-versioned", (s) =>
    s.edit("backups-repository-versioning", (p) => (p.versioningConfiguration.status = "Suspended")),
  ),
  m(
    "backup1-bucket-no-public-access-block",
    "backup bucket without its public access block",
    "BACKUP-1",
    "bucket-private-encrypted-versioned",
    (s) => s.remove("backups-repository-public-access-block"),
  ),
];

// --- the scale stack (3 Odoo hosts on EFS, RDS Multi-AZ) --------------------------------------------

const withoutParameter = (name: string) => (p: Record<string, any>) => {
  const before = p.parameters.length;
  p.parameters = p.parameters.filter((x: { name: string }) => x.name !== name);
  if (p.parameters.length === before) throw new Error(`the parameter group has no ${name}`);
};
const setParameter = (name: string, value: string) => (p: Record<string, any>) => {
  const found = p.parameters.find((x: { name: string }) => x.name === name);
  if (!found) throw new Error(`the parameter group has no ${name}`);
  found.value = value;
};

export const SCALE_MUTATIONS: readonly Mutation[] = [
  m("limit2-two-cron-hosts", "two cron hosts", "LIMIT-2", "odoo-exactly-one-cron-host", (s) =>
    s.line("odoo-2", ODOO_CONF, "max_cron_threads", "max_cron_threads = 1"),
  ),
  m("net6-rds-public", "RDS publicly accessible", "NET-6", "rds-instance-not-public", (s) =>
    s.edit("postgres-rds", (p) => (p.publiclyAccessible = true)),
  ),
  m("net6-rds-in-odoo-group", "RDS in the Odoo security group", "NET-6", OWN_TIER, (s) =>
    s.refer("postgres-rds", "vpcSecurityGroupIds", ["network-odoo-sg"], ["sg-odoo"]),
  ),
  m("pg2-rds-no-statement-timeout", "parameter group without statement_timeout", "PG-2", "rds-parameter-group-checklist", (s) =>
    s.edit("postgres-parameters", withoutParameter("statement_timeout")),
  ),
  m(
    "pg2-rds-role-statement-timeout-zero",
    "RDS bootstrap SQL sets statement_timeout = 0 for Odoo's role",
    "PG-2",
    "postgres-timeouts-set",
    (s) => s.file("pgbouncer", BOOTSTRAP, (t) => t.replace(/^(ALTER ROLE "odoo" SET statement_timeout = )\d+;/m, "$10;")),
  ),
  m("pg2-rds-default-parameter-group", "RDS on the default parameter group", "PG-2", "rds-max-connections-cover-pgbouncer", (s) =>
    s.refer("postgres-rds", "parameterGroupName", [], "default.postgres15"),
  ),
  m("tls1-rds-force-ssl-0", "rds.force_ssl = 0", "TLS-1", "rds-parameter-group-checklist", (s) =>
    s.edit("postgres-parameters", setParameter("rds.force_ssl", "0")),
  ),
  m("auth1-rds-password-encryption-md5", "RDS password_encryption = md5", "AUTH-1", "rds-parameter-group-checklist", (s) =>
    s.edit("postgres-parameters", setParameter("password_encryption", "md5")),
  ),
  m("pg3-rds-log-lock-waits-0", "log_lock_waits = 0", "PG-3", "rds-parameter-group-checklist", (s) =>
    s.edit("postgres-parameters", setParameter("log_lock_waits", "0")),
  ),
  m("pg1-rds-max-connections-20", "max_connections below PgBouncer's pools", "PG-1", "rds-max-connections-cover-pgbouncer", (s) =>
    s.edit("postgres-parameters", setParameter("max_connections", "20")),
  ),
  m(
    "tls3-rds-endpoint-elsewhere",
    "PgBouncer dials an RDS endpoint parameter that names another host",
    "TLS-3",
    "certificate-sans-match-clients",
    (s) => s.refer("postgres-endpoint-parameter", "value", [], "db.example.net"),
  ),
  m("net1-odoo-2-public-ip", "give the second Odoo host a public IP", "NET-1", "instance-no-public-ip", (s) =>
    s.edit("odoo-odoo-2-instance", (p) => (p.associatePublicIpAddress = true)),
  ),
  m("net1-efs-mount-from-vpc", "EFS mount targets open to the whole VPC", "NET-1", "efs-mount-targets-only-from-odoo", (s) =>
    s.edit("network-efs-in-2049-odoo", (p) => {
      delete p.referencedSecurityGroupId;
      p.cidrIpv4 = "10.42.0.0/16";
    }),
  ),
  m("net1-efs-plain-nfs", "EFS accepts plain NFS", "NET-1", "efs-file-system-requires-tls", (s) =>
    s.edit("odoo-filestore-policy", (p) => {
      const doc = JSON.parse(p.policy);
      p.policy = JSON.stringify({ ...doc, Statement: doc.Statement.filter((x: { Effect: string }) => x.Effect !== "Deny") });
    }),
  ),
  m(
    "pool2-postgres-pool-one-short",
    "the postgres session pool one session short of three hosts' Odoo processes",
    "POOL-2",
    "pgbouncer-postgres-pool-covers-odoo",
    (s) =>
      s.file(
        "pgbouncer",
        INI,
        pgbouncerEntry("postgres", (v) => v.replace(/\bpool_size=(\d+)/, (_m, n: string) => `pool_size=${Number(n) - 1}`)),
      ),
  ),
  m(
    "pg1-rds-migration-role-cap-raised",
    "the migration role's max_user_connections beyond RDS's max_connections",
    "PG-1",
    "rds-max-connections-cover-pgbouncer",
    (s) =>
      s.file("pgbouncer", INI, (t) => t.replace(/^odoo_migrate = max_user_connections=\d+$/m, "odoo_migrate = max_user_connections=5000")),
  ),
  m(
    "pool4-odoo-3-db-maxconn-raised",
    "db_maxconn raised on the third Odoo host only",
    "POOL-4",
    "pgbouncer-max-client-conn-covers-odoo",
    (s) => s.line("odoo-3", ODOO_CONF, "db_maxconn", "db_maxconn = 64"),
  ),
  m(
    "proxy5-odoo-2-limit-time-real",
    "the second Odoo host's limit_time_real above nginx's read timeout",
    "PROXY-5",
    "nginx-timeouts-cover-odoo-limits",
    (s) => s.line("odoo-2", ODOO_CONF, "limit_time_real", "limit_time_real = 3000"),
  ),
  m("obs7-rds-lock-waiters-alarm-missing", "no lock-waiters alarm for RDS", "OBS-7", ALARMS, (s) =>
    s.remove("monitoring-postgres-lock-waiters"),
  ),
  m("backup1-efs-unencrypted", "EFS unencrypted", "BACKUP-1", "efs-file-system-encrypted", (s) =>
    s.edit("odoo-filestore-fs", (p) => (p.encrypted = false)),
  ),
  m("backup1-rds-unencrypted", "RDS storage unencrypted", "BACKUP-1", "rds-instance-storage-encrypted", (s) =>
    s.edit("postgres-rds", (p) => (p.storageEncrypted = false)),
  ),
  m("backup1-rds-no-deletion-protection", "RDS without deletion protection", "BACKUP-1", "rds-instance-deletion-protection", (s) =>
    s.edit("postgres-rds", (p) => (p.deletionProtection = false)),
  ),
  m("backup1-rds-retention-1-day", "RDS backups kept 1 day", "BACKUP-1", "rds-instance-backup-retention", (s) =>
    s.edit("postgres-rds", (p) => (p.backupRetentionPeriod = 1)),
  ),
  m("backup1-rds-single-az", "RDS single-AZ in production", "BACKUP-1", "rds-instance-multi-az", (s) =>
    s.edit("postgres-rds", (p) => (p.multiAz = false)),
  ),
];
