// Network and exposure policies (NET-1 … NET-6): a valid resource from the stack fixture passes;
// each case changes one field and expects the exact violation.
import {
  nginxListensOnlyTls443,
  odooHttpInterfacePrivate,
  pgHbaAdmitsOnlyPgbouncer,
  proxyPlainHttpOnlyRedirects,
  securityGroupInternalPortsAddressSources,
  securityGroupInternalPortsFromAllowedGroups,
  securityGroupWorldEgressKnownPorts,
  securityGroupWorldIngressOnly443OnProxy,
} from "../../policy/network";
import { setLine, validateResource, validateStack, withContent, withProp, type FakeResource } from "./fakes";
import { replaced, sgName, stackFixture, T } from "./stack-fixture";

const fixture = stackFixture();
const rule = (name: string) => fixture.get(`network-${name}`);

describe("security-group-world-ingress-only-443-on-proxy (NET-2, NET-3)", () => {
  const policy = securityGroupWorldIngressOnly443OnProxy;

  it("passes the proxy's public 443 rules (IPv4 and IPv6) and every internal rule", async () => {
    for (const r of fixture.resources.filter((x) => x.type === T.ingressRule || x.type === T.sg)) {
      expect(await validateResource(policy, r)).toEqual([]);
    }
  });

  it.each([
    ["0.0.0.0/0", "cidrIpv4"],
    ["::/0", "cidrIpv6"],
  ])("rejects 8069 opened to %s", async (cidr, field) => {
    const open = withProp(withProp(rule("odoo-in-8069-proxy"), "referencedSecurityGroupId", undefined), field, cidr);
    expect(await validateResource(policy, open)).toEqual([
      `Security group ingress rule (network-odoo-in-8069-proxy) must not open tcp 8069 to ${cidr}: nothing but tcp 443 (and 80 for a redirect to https://) on the reverse proxy may be reachable from the internet (NET-1, NET-3).`,
    ]);
  });

  // Issue 12 item 11: NET-3's exception, port 80 on the proxy, and nowhere else.
  it("passes 80 from the world on the proxy's group only, and refuses it when the policy config allows no redirect port", async () => {
    const http = rule("proxy-in-80-world-ipv4");
    expect(await validateResource(policy, http)).toEqual([]);
    expect(await validateResource(policy, http, { allowedRedirectPorts: [] })).toEqual([
      "Security group ingress rule (network-proxy-in-80-world-ipv4) must not open tcp 80 to 0.0.0.0/0: nothing but tcp 443 on the reverse proxy may be reachable from the internet (NET-3).",
    ]);
    expect(await validateResource(policy, withProp(http, "tags.odoo-stack:role", "odoo"))).toEqual([
      "Security group ingress rule (network-proxy-in-80-world-ipv4) must not open tcp 80 to 0.0.0.0/0: it has odoo-stack:role=odoo, and only the proxy's group may accept internet traffic (NET-1, NET-2, NET-3).",
    ]);
  });

  it("rejects 443 from the world on another tier's group", async () => {
    const r = withProp(rule("proxy-in-443-world-ipv4"), "tags.odoo-stack:role", "odoo");
    expect(await validateResource(policy, r)).toEqual([
      "Security group ingress rule (network-proxy-in-443-world-ipv4) must not open tcp 443 to 0.0.0.0/0: it has odoo-stack:role=odoo, and only the proxy's group may accept internet traffic (NET-1, NET-2, NET-3).",
    ]);
  });

  it("rejects inline ingress on a SecurityGroup and a SecurityGroupRule open to the world", async () => {
    const inline = withProp(fixture.get(sgName("postgres")), "ingress", [
      { protocol: "tcp", fromPort: 5432, toPort: 5432, cidrBlocks: ["0.0.0.0/0"] },
    ]);
    expect(await validateResource(policy, inline)).toEqual([
      "Security group (network-postgres-sg) must not open tcp 5432 to 0.0.0.0/0: nothing but tcp 443 (and 80 for a redirect to https://) on the reverse proxy may be reachable from the internet (NET-3, NET-6).",
    ]);
    const standalone: FakeResource = {
      type: T.sgRule,
      name: "hand-rule",
      props: { type: "ingress", protocol: "-1", fromPort: 0, toPort: 0, ipv6CidrBlocks: ["::/0"], securityGroupId: "sg-1" },
    };
    expect(await validateResource(policy, standalone)).toEqual([
      "Security group rule (hand-rule) must not open all traffic to ::/0: nothing but tcp 443 (and 80 for a redirect to https://) on the reverse proxy may be reachable from the internet (NET-3).",
    ]);
  });
});

describe("security-group-internal-ports-address-sources (NET-4, NET-5, NET-6)", () => {
  const policy = securityGroupInternalPortsAddressSources;

  it("passes every rule of the stack", async () => {
    for (const r of fixture.resources.filter((x) => x.type === T.ingressRule)) expect(await validateResource(policy, r)).toEqual([]);
  });

  it("lets Odoo's ports accept a private range (NET-4's internal network)", async () => {
    const r = withProp(withProp(rule("odoo-in-8069-proxy"), "referencedSecurityGroupId", undefined), "cidrIpv4", "10.8.0.0/16");
    expect(await validateResource(policy, r)).toEqual([]);
  });

  it("rejects a private range on PostgreSQL's port unless the policy config allows it", async () => {
    const r = withProp(withProp(rule("postgres-in-5432-pgbouncer"), "referencedSecurityGroupId", undefined), "cidrIpv4", "10.40.0.0/16");
    const message =
      "Security group ingress rule (network-postgres-in-5432-pgbouncer) must not admit 10.40.0.0/16 to tcp 5432: only the pgbouncer tier's security group or a bastion security group listed in the policy config may reach PostgreSQL on tcp 5432 (NET-6).";
    expect(await validateResource(policy, r)).toEqual([message]);
    expect(await validateResource(policy, r, { postgresAllowedCidrs: ["10.40.0.0/16"] })).toEqual([]);
  });

  it("rejects all traffic from the VPC into PostgreSQL's group, which covers 5432", async () => {
    const r = withProp(
      withProp(withProp(rule("postgres-in-5432-pgbouncer"), "referencedSecurityGroupId", undefined), "cidrIpv4", "10.40.0.0/16"),
      "ipProtocol",
      "-1",
    );
    expect(await validateResource(policy, r)).toHaveLength(1);
  });

  it("rejects a prefix list on PgBouncer's port and a group admitting itself", async () => {
    const prefix = withProp(withProp(rule("pgbouncer-in-6432-odoo"), "referencedSecurityGroupId", undefined), "prefixListId", "pl-123");
    expect(await validateResource(policy, prefix)).toEqual([
      "Security group ingress rule (network-pgbouncer-in-6432-odoo) must not admit prefix list pl-123 to tcp 6432: a prefix list does not show which addresses it holds; only the odoo tier's security group or private address ranges may reach PgBouncer on tcp 6432 (NET-5).",
    ]);
    const self = withProp(fixture.get(sgName("odoo")), "ingress", [{ protocol: "tcp", fromPort: 8069, toPort: 8072, self: true }]);
    expect(await validateResource(policy, self)).toEqual([
      "Security group (network-odoo-sg) must not admit its own members (self) to tcp 8069: they are odoo hosts; only the proxy tier's security group or private address ranges may reach Odoo HTTP (workers) on tcp 8069 (NET-4).",
      "Security group (network-odoo-sg) must not admit its own members (self) to tcp 8072: they are odoo hosts; only the proxy tier's security group or private address ranges may reach Odoo gevent / websocket on tcp 8072 (NET-4).",
    ]);
  });
});

describe("security-group-internal-ports-from-allowed-groups (NET-4, NET-5, NET-6)", () => {
  const policy = securityGroupInternalPortsFromAllowedGroups;

  it("passes the stack", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  const fromGroup = (ruleName: string, group: string): FakeResource => {
    const r = rule(ruleName);
    return {
      ...withProp(r, "referencedSecurityGroupId", `${sgName(group)}-id`),
      propertyDependencies: { ...r.propertyDependencies, referencedSecurityGroupId: [sgName(group)] },
    };
  };

  it.each([
    [
      "odoo-in-8069-proxy",
      "pgbouncer",
      "8069",
      "pgbouncer",
      "proxy tier's security group or private address ranges",
      "Odoo HTTP (workers)",
      "NET-4",
    ],
    [
      "odoo-in-8072-proxy",
      "postgres",
      "8072",
      "postgres",
      "proxy tier's security group or private address ranges",
      "Odoo gevent / websocket",
      "NET-4",
    ],
    ["pgbouncer-in-6432-odoo", "proxy", "6432", "proxy", "odoo tier's security group or private address ranges", "PgBouncer", "NET-5"],
    [
      "postgres-in-5432-pgbouncer",
      "odoo",
      "5432",
      "odoo",
      "pgbouncer tier's security group or a bastion security group listed in the policy config",
      "PostgreSQL",
      "NET-6",
    ],
  ])("rejects %s opened to the %s group", async (ruleName, group, port, role, who, what, item) => {
    const mutated = fromGroup(ruleName, group);
    expect(await validateStack(policy, replaced(fixture.resources, mutated))).toEqual([
      {
        message: `Security group ingress rule (network-${ruleName}) must not admit security group (${sgName(group)}) to tcp ${port}: it is the ${role} tier's; only the ${who} may reach ${what} (${item}).`,
        urn: expect.stringContaining(`network-${ruleName}`),
      },
    ]);
  });

  it("accepts a bastion group on 5432 only when the policy config lists it", async () => {
    const r = rule("postgres-in-5432-pgbouncer");
    const bastion: FakeResource = {
      ...withProp(r, "referencedSecurityGroupId", "sg-0b0a57104a11"),
      name: "network-postgres-in-5432-bastion",
      propertyDependencies: { securityGroupId: [sgName("postgres")] },
    };
    const resources = [...fixture.resources, bastion];
    expect((await validateStack(policy, resources)).map((v) => v.message)).toEqual([
      "Security group ingress rule (network-postgres-in-5432-bastion) must not admit security group sg-0b0a57104a11 to tcp 5432: it is not a group of this stack nor a bastion listed in the policy config (bastionSecurityGroupIds); only the pgbouncer tier's security group or a bastion security group listed in the policy config may reach PostgreSQL (NET-6).",
    ]);
    expect(await validateStack(policy, resources, { bastionSecurityGroupIds: ["sg-0b0a57104a11"] })).toEqual([]);
  });

  it("finds the tier of a SecurityGroupRule through the group it belongs to", async () => {
    const handRule: FakeResource = {
      type: T.sgRule,
      name: "hand-rule",
      props: {
        type: "ingress",
        protocol: "tcp",
        fromPort: 6432,
        toPort: 6432,
        securityGroupId: `${sgName("pgbouncer")}-id`,
        sourceSecurityGroupId: `${sgName("proxy")}-id`,
      },
      propertyDependencies: { securityGroupId: [sgName("pgbouncer")], sourceSecurityGroupId: [sgName("proxy")] },
    };
    expect((await validateStack(policy, [...fixture.resources, handRule])).map((v) => v.message)).toEqual([
      "Security group rule (hand-rule) must not admit security group (network-proxy-sg) to tcp 6432: it is the proxy tier's; only the odoo tier's security group or private address ranges may reach PgBouncer (NET-5).",
    ]);
  });

  it("finds the tier of an untagged group through the instances that use it", async () => {
    const dbGroup: FakeResource = {
      type: T.sg,
      name: "hand-db-sg",
      props: { ingress: [{ protocol: "tcp", fromPort: 5432, toPort: 5432, cidrBlocks: ["10.0.0.0/8"] }] },
    };
    const instance = fixture.resources.find((r) => r.type === T.instance && r.props.tags["odoo-stack:role"] === "postgres") as FakeResource;
    const usesIt = {
      ...instance,
      propertyDependencies: { ...instance.propertyDependencies, vpcSecurityGroupIds: [sgName("postgres"), "hand-db-sg"] },
    };
    const resources = [...replaced(fixture.resources, usesIt), dbGroup];
    expect((await validateStack(policy, resources)).map((v) => v.message)).toEqual([
      "Security group (hand-db-sg) must not admit 10.0.0.0/8 to tcp 5432: only the pgbouncer tier's security group or a bastion security group listed in the policy config may reach PostgreSQL on tcp 5432 (NET-6).",
    ]);
  });
});

describe("odoo-http-interface-private (NET-1)", () => {
  const policy = odooHttpInterfacePrivate;
  const conf = fixture.file("odoo-1", "/etc/odoo/odoo.conf");
  const label = `odoo.conf of odoo-1 (${conf.name})`;

  it("passes the rendered odoo.conf", async () => {
    expect(await validateResource(policy, conf)).toEqual([]);
  });

  it.each([
    [
      "http_interface = 0.0.0.0",
      `${label} must set http_interface to the host's private address (or 127.0.0.1); it is "0.0.0.0", every address (NET-1).`,
    ],
    [
      undefined,
      `${label} must set http_interface to the host's private address (or 127.0.0.1); it is absent, so Odoo listens on every address (NET-1).`,
    ],
    ["http_interface = 203.0.113.7", `${label} must set http_interface to a private or loopback address, not "203.0.113.7" (NET-1).`],
  ])("rejects %s", async (line, message) => {
    expect(await validateResource(policy, withContent(conf, setLine("http_interface", line)))).toEqual([message]);
  });
});

describe("nginx-listens-only-tls-443 (NET-2, NET-3)", () => {
  const policy = nginxListensOnlyTls443;
  const site = fixture.file("proxy", "/etc/nginx/conf.d/odoo.conf");
  const label = `odoo.conf of proxy (${site.name})`;
  /** 1-based line of the last `server {` before the first line containing `marker`. */
  const serverLine = (r: FakeResource, marker: string): number => {
    const lines = String(r.props.content).split("\n");
    const at = lines.findIndex((l) => l.includes(marker));
    for (let i = at; i >= 0; i--) if (/^\s*server\s*\{/.test(lines[i])) return i + 1;
    throw new Error(`no server before ${marker}`);
  };
  const redirect = (text: string) => `${text}\nserver {\n    listen 80;\n    return 301 https://$host$request_uri;\n}\n`;

  it("passes the rendered site and nginx.conf", async () => {
    expect(await validateResource(policy, site)).toEqual([]);
    expect(await validateResource(policy, fixture.file("proxy", "/etc/nginx/nginx.conf"))).toEqual([]);
  });

  it("rejects 443 without ssl", async () => {
    const plain = withContent(site, (t) => t.replace(/listen 443 ssl http2;/, "listen 443;"));
    expect(await validateResource(policy, plain)).toEqual([
      `${label} must not \`listen 443\` (server at line ${serverLine(plain, "listen 443;")}): 443 without ssl serves plain HTTP (NET-2, NET-3).`,
    ]);
  });

  it("allows a redirect server on 80 by default (NET-3's exception), refuses it when the config allows no port, and then only a redirect", async () => {
    const withRedirect = withContent(site, redirect);
    const line = serverLine(withRedirect, "listen 80;");
    expect(await validateResource(policy, withRedirect)).toEqual([]);
    const rendered = serverLine(site, "listen 80 default_server;");
    expect(await validateResource(policy, withRedirect, { allowedRedirectPorts: [] })).toEqual([
      `${label} must not \`listen 80 default_server\` (server at line ${rendered}): only 443 with TLS is served (NET-2, NET-3).`,
      `${label} must not \`listen 80\` (server at line ${line}): only 443 with TLS is served (NET-2, NET-3).`,
    ]);
    const serving = withContent(site, (t) => `${t}\nserver {\n    listen 80;\n    location / { proxy_pass http://odoo; }\n}\n`);
    expect(await validateResource(policy, serving)).toEqual([
      `${label} must not \`listen 80\` (server at line ${line}): a plain-HTTP server on 80 may only redirect to https:// (NET-2, NET-3).`,
    ]);
    // The rendered redirect server itself, edited to proxy as well.
    const proxying = withContent(site, (t) =>
      t.replace(
        "    return 301 https://erp.example.com$request_uri;\n",
        "    return 301 https://erp.example.com$request_uri;\n    location /web { proxy_pass http://odoo; }\n",
      ),
    );
    expect(await validateResource(policy, proxying)).toEqual([
      `${label} must not \`listen 80 default_server\` (server at line ${rendered}): a plain-HTTP server on 80 may only redirect to https:// (NET-2, NET-3).`,
    ]);
  });
});

describe("proxy-plain-http-only-redirects (NET-3)", () => {
  const policy = proxyPlainHttpOnlyRedirects;
  const site = fixture.file("proxy", "/etc/nginx/conf.d/odoo.conf");

  it("passes port 80 open while the proxy's nginx answers it with a redirect only", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it("rejects port 80 open to the world when no nginx server of the proxy only redirects there", async () => {
    const noRedirect = withContent(site, (t) => t.replace(/# Plain HTTP answers only[^\n]*\nserver \{\n[^}]*\}\n\n/, ""));
    expect(String(noRedirect.props.content)).not.toContain("listen 80");
    expect((await validateStack(policy, replaced(fixture.resources, noRedirect))).map((v) => v.message)).toEqual([
      "Security group ingress rule (network-proxy-in-80-world-ipv4) must not open tcp 80 to 0.0.0.0/0: no nginx server of the proxy answers 80 with only a redirect to https://, and the internet may reach plain HTTP for nothing else (NET-3).",
      "Security group ingress rule (network-proxy-in-80-world-ipv6) must not open tcp 80 to ::/0: no nginx server of the proxy answers 80 with only a redirect to https://, and the internet may reach plain HTTP for nothing else (NET-3).",
    ]);
  });
});

// Issue 12 item 5: the egress the stack opens (80/443 everywhere, one SMTP port from Odoo) and nothing else.
describe("security-group-world-egress-known-ports (NET-3)", () => {
  const policy = securityGroupWorldEgressKnownPorts;
  const egress = (role: string, port: number, extra: Record<string, unknown> = {}): FakeResource => ({
    type: "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    name: `network-${role}-out-${port}-world-ipv4`,
    props: {
      securityGroupId: `${sgName(role)}-id`,
      ipProtocol: "tcp",
      fromPort: port,
      toPort: port,
      cidrIpv4: "0.0.0.0/0",
      tags: { "odoo-stack:role": role },
      ...extra,
    },
  });

  it("passes 80 and 443 from every tier and the SMTP port from the Odoo hosts", async () => {
    for (const r of [egress("proxy", 443), egress("pgbouncer", 80), egress("odoo", 587), egress("odoo", 25), egress("odoo", 2525)])
      expect(await validateResource(policy, r)).toEqual([]);
  });

  it.each([
    [
      "SMTP from the proxy",
      egress("proxy", 587),
      "Security group egress rule (network-proxy-out-587-world-ipv4) must not open tcp 587 to 0.0.0.0/0: SMTP leaves the stack from the odoo hosts only, and this is the proxy tier's (NET-3).",
    ],
    [
      "465 from Odoo",
      egress("odoo", 465),
      "Security group egress rule (network-odoo-out-465-world-ipv4) must not open tcp 465 to 0.0.0.0/0: the internet is reached on tcp 80/443 only, plus one SMTP port (587/25/2525) from the odoo hosts (NET-3).",
    ],
    [
      "all traffic from PgBouncer",
      egress("pgbouncer", 0, { ipProtocol: "-1", toPort: 0 }),
      "Security group egress rule (network-pgbouncer-out-0-world-ipv4) must not open all traffic to 0.0.0.0/0: the internet is reached on tcp 80/443 only, plus one SMTP port (587/25/2525) from the odoo hosts (NET-3).",
    ],
  ])("rejects %s", async (_why, r, message) => {
    expect(await validateResource(policy, r)).toEqual([message]);
  });

  it("ignores egress inside the VPC", async () => {
    expect(await validateResource(policy, egress("odoo", 6432, { cidrIpv4: "10.40.0.0/16" }))).toEqual([]);
  });
});

describe("pg-hba-admits-only-pgbouncer (NET-6)", () => {
  const policy = pgHbaAdmitsOnlyPgbouncer;
  const hba = fixture.file("postgres", "/etc/postgresql/15/main/pg_hba.conf");
  const wide = withContent(hba, (t) => t.replace(/^(hostssl\s+\S+\s+odoo,odoo_migrate\s+)\S+/m, "$110.40.0.0/16"));

  it("passes the rendered pg_hba.conf: PgBouncer's address, local records, rejects", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it("rejects a record for the VPC, unless a bastion is configured (its group narrows the range) or the range is allowed", async () => {
    const violations = await validateStack(policy, replaced(fixture.resources, wide));
    expect(violations.map((v) => v.message)).toEqual([
      expect.stringMatching(
        /^pg_hba\.conf of postgres .* must not accept `hostssl .* odoo,odoo_migrate 10\.40\.0\.0\/16` with scram-sha-256 on line \d+: only the PgBouncer host \(.*\), loopback or postgresAllowedCidrs may log in over the network \(NET-6\)\.$/,
      ),
    ]);
    expect(await validateStack(policy, replaced(fixture.resources, wide), { bastionSecurityGroupIds: ["sg-bastion"] })).toEqual([]);
    expect(await validateStack(policy, replaced(fixture.resources, wide), { postgresAllowedCidrs: ["10.40.0.0/16"] })).toEqual([]);
  });

  it("rejects samenet and all even with a bastion", async () => {
    for (const address of ["samenet", "all", "0.0.0.0/0"]) {
      const r = withContent(hba, (t) => t.replace(/^(hostssl\s+\S+\s+odoo,odoo_migrate\s+)\S+/m, `$1${address}`));
      expect([
        address,
        (await validateStack(policy, replaced(fixture.resources, r), { bastionSecurityGroupIds: ["sg-bastion"] })).length,
      ]).toEqual([address, 1]);
    }
  });
});
