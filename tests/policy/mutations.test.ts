// The pack against the whole production stack, over the Analyzer gRPC protocol: index.ts runs
// under mocks with Pulumi.prod.yaml's settings (as `npm run plan` runs it), every planned
// resource goes to the pack started as the CLI starts it, and the unmutated stack has no
// mandatory finding. Then each mutation breaks exactly one checklist item in the planned
// resources and must be rejected as mandatory by the named policy, with the item's ID in the
// message. Resource policies depend on their resource alone, so a mutation re-sends Analyze for
// the resources it changed, and AnalyzeStack for the whole mutated stack.
import { randomBytes } from "crypto";
import { parseSettings, type RawConfig } from "../../lib/config";
import { knownInstanceType } from "../../lib/instance-types";
import { buildModel, type StackModel } from "../../lib/model";
import type { PolicyDiagnostic } from "../../tools/analyzer-client";
import { runProgram } from "../../tools/mocks";
import { analyzeStack, mandatory, MutableStack, type Planned } from "./mutable-stack";
import { readStackConfig } from "../../tools/stack-config";
import { usePolicyPack } from "../helpers/policy-server";

jest.setTimeout(120_000);

const ROOT = `${__dirname}/../..`;
/**
 * How the engine marks an unknown value in what it sends analyzers during preview
 * (UnknownStringValue, sdk/go/common/resource/plugin/rpc.go; @pulumi/policy proxy.js).
 */
const UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const STACK = "prod";
const pack = usePolicyPack();

// ---------------------------------------------------------------------------------------------
// The planned stack

/** A captured resource we may edit: inputs (what Analyze gets) and outputs (what AnalyzeStack gets). */

/** The prod stack's model, from the same config the program reads. */
function prodModel(config: Readonly<Record<string, string>>): StackModel {
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) if (key.startsWith("odoo-stack:")) raw[key.slice("odoo-stack:".length)] = value;
  return buildModel(STACK, parseSettings(raw as RawConfig, config["aws:region"], knownInstanceType));
}

/** Plans the prod stack: index.ts under mocks with Pulumi.yaml + Pulumi.prod.yaml, as `npm run plan` does. */
async function planProd(): Promise<{ readonly resources: Planned[]; readonly model: StackModel }> {
  const config = readStackConfig(ROOT, STACK);
  const program = require("../../index") as () => Promise<Record<string, unknown>>;
  const run = await runProgram({ stack: STACK, project: config.project, config: config.config, secretKeys: config.secretKeys, program });
  return { resources: JSON.parse(JSON.stringify(run.resources)) as Planned[], model: prodModel(config.config) };
}

// Started at load, so the program runs while the pack process type-checks itself; awaited below.
const planning = planProd();
planning.catch(() => undefined); // reported by beforeAll, not as an unhandled rejection

let planned: Planned[] = [];
let model: StackModel;

beforeAll(async () => {
  ({ resources: planned, model } = await planning);
}, 120_000);

// ---------------------------------------------------------------------------------------------
// Mutations


const ODOO_CONF = "/etc/odoo/odoo.conf";
const SITE = "/etc/nginx/conf.d/odoo.conf";
const INI = "/etc/pgbouncer/pgbouncer.ini";
const USERLIST = "/etc/pgbouncer/userlist.txt";
const PG_CONF = "/etc/postgresql/15/main/conf.d/90-odoo-stack.conf";
const HBA = "/etc/postgresql/15/main/pg_hba.conf";
const BOOTSTRAP = "/etc/odoo-stack/bootstrap.sql";

/** Replaces text inside one `location <path> {…}` block of the site. */
const inLocation = (path: string, edit: (block: string) => string) => (t: string): string => {
  const start = t.indexOf(`    location ${path} {`);
  const end = t.indexOf("    }\n", start);
  if (start < 0 || end < 0) throw new Error(`the site has no location ${path}`);
  return t.slice(0, start) + edit(t.slice(start, end)) + t.slice(end);
};
const dropLine = (pattern: RegExp) => (block: string): string => block.replace(new RegExp(`\\n[^\\n]*${pattern.source}[^\\n]*`), "");
const pgbouncerEntry = (db: string, edit: (value: string) => string) => (t: string): string =>
  t.replace(new RegExp(`^${db} = (.*)$`, "m"), (_l, v: string) => `${db} = ${edit(v)}`);

/** [title, checklist item, policy that must reject it, the mutation]. */
type Mutation = readonly [string, string, string, (s: MutableStack) => void];

const NET3 = "security-group-world-ingress-only-443-on-proxy";
const FROM_GROUPS = "security-group-internal-ports-from-allowed-groups";
const toWorld = (field: "cidrIpv4" | "cidrIpv6", cidr: string) => (p: Record<string, any>) => {
  delete p.referencedSecurityGroupId;
  p[field] = cidr;
};

const MUTATIONS: readonly Mutation[] = [
  // --- NET ---------------------------------------------------------------------------------------
  ["open 8069 to 0.0.0.0/0", "NET-3", NET3, (s) => s.edit("network-odoo-in-8069-proxy", toWorld("cidrIpv4", "0.0.0.0/0"))],
  ["open 8072 to ::/0", "NET-3", NET3, (s) => s.edit("network-odoo-in-8072-proxy", toWorld("cidrIpv6", "::/0"))],
  ["open 5432 to the internet through an inline rule", "NET-3", NET3, (s) => s.edit("network-postgres-sg", (p) => (p.ingress = [{ protocol: "tcp", fromPort: 5432, toPort: 5432, cidrBlocks: ["0.0.0.0/0"] }]))],
  ["open SSH to the world on the Odoo group", "NET-3", NET3, (s) => s.edit("network-odoo-sg", (p) => (p.ingress = [{ protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: ["0.0.0.0/0"] }]))],
  ["tag the public 443 rule as the Odoo tier's", "NET-2", NET3, (s) => s.edit("network-proxy-in-443-world-ipv4", (p) => (p.tags["odoo-stack:role"] = "odoo"))],
  ["let the PgBouncer group reach 8069", "NET-4", FROM_GROUPS, (s) => s.refer("network-odoo-in-8069-proxy", "referencedSecurityGroupId", ["network-pgbouncer-sg"], "sg-pgbouncer")],
  ["let the proxy group reach PgBouncer's 6432", "NET-5", FROM_GROUPS, (s) => s.refer("network-pgbouncer-in-6432-odoo", "referencedSecurityGroupId", ["network-proxy-sg"], "sg-proxy")],
  ["let the Odoo group reach PostgreSQL's 5432 directly", "NET-6", FROM_GROUPS, (s) => s.refer("network-postgres-in-5432-pgbouncer", "referencedSecurityGroupId", ["network-odoo-sg"], "sg-odoo")],
  ["let an unknown security group reach 5432", "NET-6", FROM_GROUPS, (s) => s.refer("network-postgres-in-5432-pgbouncer", "referencedSecurityGroupId", [], "sg-0123456789abcdef0")],
  ["open 5432 to the whole VPC", "NET-6", "security-group-internal-ports-address-sources", (s) => s.edit("network-postgres-in-5432-pgbouncer", toWorld("cidrIpv4", "10.40.0.0/16"))],
  ["give the PostgreSQL host a public IP", "NET-6", "instance-no-public-ip", (s) => s.edit("postgres-host-instance", (p) => (p.associatePublicIpAddress = true))],
  ["give the Odoo host a public IP", "NET-1", "instance-no-public-ip", (s) => s.edit("odoo-odoo-1-instance", (p) => (p.associatePublicIpAddress = true))],
  ["attach the Elastic IP to PgBouncer", "NET-5", "private-hosts-have-no-public-address", (s) => s.refer("proxy-eip-association", "instanceId", ["pgbouncer-host-instance"], "i-pgbouncer")],
  ["bind Odoo to 0.0.0.0", "NET-1", "odoo-http-interface-private", (s) => s.line("odoo-1", ODOO_CONF, "http_interface", "http_interface = 0.0.0.0")],
  ["serve plain HTTP on 80", "NET-3", "nginx-listens-only-tls-443", (s) => s.file("proxy", SITE, (t) => `${t}\nserver {\n    listen 80;\n    location / { proxy_pass http://odoo; }\n}\n`)],
  // --- PROXY ---------------------------------------------------------------------------------------
  ["route / to the gevent port", "PROXY-1", "nginx-root-routes-to-odoo-http", (s) => s.file("proxy", SITE, inLocation("/", (b) => b.replace("proxy_pass http://odoo;", "proxy_pass http://odoochat;")))],
  ["route /websocket to 8069", "PROXY-2", "nginx-websocket-routes-to-gevent", (s) => s.file("proxy", SITE, inLocation("/websocket", (b) => b.replace("proxy_pass http://odoochat;", "proxy_pass http://odoo;")))],
  ["drop the Upgrade header", "PROXY-2", "nginx-websocket-routes-to-gevent", (s) => s.file("proxy", SITE, inLocation("/websocket", dropLine(/Upgrade \$http_upgrade/)))],
  ["drop proxy_http_version 1.1", "PROXY-2", "nginx-websocket-routes-to-gevent", (s) => s.file("proxy", SITE, inLocation("/websocket", dropLine(/proxy_http_version/)))],
  ["drop X-Forwarded-Proto", "PROXY-3", "nginx-forwarded-headers", (s) => s.file("proxy", SITE, inLocation("/", dropLine(/X-Forwarded-Proto/)))],
  ["drop X-Forwarded-For on /websocket", "PROXY-3", "nginx-forwarded-headers", (s) => s.file("proxy", SITE, inLocation("/websocket", dropLine(/X-Forwarded-For/)))],
  ["cut proxy_read_timeout to 5 s", "PROXY-5", "nginx-proxy-timeouts", (s) => s.file("proxy", SITE, inLocation("/", (b) => b.replace(/proxy_read_timeout \d+s;/, "proxy_read_timeout 5s;")))],
  ["proxy_mode = False", "PROXY-4", "odoo-proxy-mode-enabled", (s) => s.line("odoo-1", ODOO_CONF, "proxy_mode", "proxy_mode = False")],
  // --- ODOO ---------------------------------------------------------------------------------------
  ["admin_passwd as a literal", "ODOO-1", "odoo-admin-passwd-secret-reference", (s) => s.line("odoo-1", ODOO_CONF, "admin_passwd", `admin_passwd = ${randomBytes(12).toString("hex")}`)],
  ["list_db = True", "ODOO-2", "odoo-list-db-disabled", (s) => s.line("odoo-1", ODOO_CONF, "list_db", "list_db = True")],
  ["open the database manager on the proxy", "ODOO-2", "nginx-database-manager-blocked", (s) => s.file("proxy", SITE, (t) => t.replace(/\n\s*location ~ \^\/web\/database \{\n\s*return 404;\n\s*\}/, ""))],
  ["dbfilter = .*", "ODOO-3", "odoo-dbfilter-restricts", (s) => s.file("odoo-1", ODOO_CONF, (t) => t.replace("[options]\n", "[options]\ndbfilter = .*\n"))],
  ["neither db_name nor dbfilter", "ODOO-3", "odoo-dbfilter-restricts", (s) => s.line("odoo-1", ODOO_CONF, "db_name", undefined)],
  ["no logfile", "ODOO-5", "odoo-logfile-set", (s) => s.line("odoo-1", ODOO_CONF, "logfile", undefined)],
  ["log to a path logrotate does not rotate", "ODOO-5", "odoo-logfile-rotated", (s) => s.line("odoo-1", ODOO_CONF, "logfile", "logfile = /srv/odoo.log")],
  // --- LIMIT ---------------------------------------------------------------------------------------
  ["workers = 0 (threaded mode)", "LIMIT-1", "odoo-workers-multiprocess", (s) => s.line("odoo-1", ODOO_CONF, "workers", "workers = 0")],
  ["workers = 40 on an m6i.xlarge", "LIMIT-1", "odoo-workers-fit-instance", (s) => s.line("odoo-1", ODOO_CONF, "workers", "workers = 40")],
  ["max_cron_threads = 4", "LIMIT-2", "odoo-max-cron-threads-conservative", (s) => s.line("odoo-1", ODOO_CONF, "max_cron_threads", "max_cron_threads = 4")],
  ["no cron host at all", "LIMIT-2", "odoo-exactly-one-cron-host", (s) => s.line("odoo-1", ODOO_CONF, "max_cron_threads", "max_cron_threads = 0")],
  ["no limit_time_real", "LIMIT-3", "odoo-limits-set", (s) => s.line("odoo-1", ODOO_CONF, "limit_time_real", undefined)],
  ["limit_memory_soft above limit_memory_hard", "LIMIT-3", "odoo-limits-set", (s) => s.line("odoo-1", ODOO_CONF, "limit_memory_soft", "limit_memory_soft = 99999999999")],
  // --- POOL ---------------------------------------------------------------------------------------
  ["pool_mode = session for the Odoo database", "POOL-1", "pgbouncer-transaction-pooling", (s) => s.file("pgbouncer", INI, pgbouncerEntry("erp", (v) => v.replace("pool_mode=transaction", "pool_mode=session")))],
  ["global pool_mode = session inherited by the Odoo database", "POOL-1", "pgbouncer-transaction-pooling", (s) =>
    s.file("pgbouncer", INI, (t) => pgbouncerEntry("erp", (v) => v.replace(" pool_mode=transaction", ""))(t).replace(/^pool_mode = transaction$/m, "pool_mode = session"))],
  ["no default_pool_size", "POOL-2", "pgbouncer-default-pool-size-set", (s) => s.line("pgbouncer", INI, "default_pool_size", undefined)],
  ["reserve_pool_size = 0", "POOL-3", "pgbouncer-reserve-pool-set", (s) => s.line("pgbouncer", INI, "reserve_pool_size", "reserve_pool_size = 0")],
  ["the postgres session pool sized for LISTEN alone", "POOL-2", "pgbouncer-postgres-pool-covers-odoo", (s) =>
    s.file("pgbouncer", INI, pgbouncerEntry("postgres", (v) => v.replace(/pool_size=\d+/, "pool_size=4").replace(/reserve_pool=\d+/, "reserve_pool=0")))],
  ["TCP keepalive left to the kernel (two hours)", "POOL-3", "pgbouncer-dead-peers-freed", (s) => s.line("pgbouncer", INI, "tcp_keepidle", undefined)],
  ["max_client_conn below Odoo's processes × db_maxconn", "POOL-4", "pgbouncer-max-client-conn-covers-odoo", (s) => s.line("pgbouncer", INI, "max_client_conn", "max_client_conn = 20")],
  ["db_maxconn raised in odoo.conf only", "POOL-4", "pgbouncer-max-client-conn-covers-odoo", (s) => s.line("odoo-1", ODOO_CONF, "db_maxconn", "db_maxconn = 64")],
  ["no max_db_connections anywhere", "POOL-5", "pgbouncer-max-db-connections-set", (s) =>
    s.file("pgbouncer", INI, (t) => pgbouncerEntry("erp", (v) => v.replace(/ max_db_connections=\d+/, ""))(t).replace(/^max_db_connections = \d+\n/m, ""))],
  // --- AUTH ---------------------------------------------------------------------------------------
  ["auth_type = md5", "AUTH-1", "pgbouncer-auth-scram", (s) => s.line("pgbouncer", INI, "auth_type", "auth_type = md5")],
  ["md5 in pg_hba.conf", "AUTH-1", "pg-hba-no-weak-methods", (s) => s.file("postgres", HBA, (t) => t.replace(/(hostssl\s+\S+\s+odoo,odoo_migrate\s+\S+\s+)scram-sha-256/, "$1md5"))],
  ["password_encryption = md5", "AUTH-1", "postgres-password-encryption-scram", (s) => s.line("postgres", PG_CONF, "password_encryption", "password_encryption = 'md5'")],
  ["no auth_file", "AUTH-2", "pgbouncer-auth-file-set", (s) => s.line("pgbouncer", INI, "auth_file", undefined)],
  ["userlist installed 0644", "AUTH-2", "pgbouncer-auth-file-protected", (s) =>
    s.file("pgbouncer", "manifest.json", (t) => {
      const doc = JSON.parse(t) as { files: { path: string; mode: string }[] };
      for (const f of doc.files) if (f.path === USERLIST) f.mode = "0644";
      return `${JSON.stringify(doc, null, 2)}\n`;
    })],
  ["a plaintext password in the userlist", "AUTH-2", "pgbouncer-auth-file-protected", (s) => s.file("pgbouncer", USERLIST, (t) => t.replace(/^"odoo" .*$/m, `"odoo" "${randomBytes(12).toString("hex")}"`))],
  // --- TLS ---------------------------------------------------------------------------------------
  ["db_sslmode = disable", "TLS-2", "odoo-db-sslmode-verified", (s) => s.line("odoo-1", ODOO_CONF, "db_sslmode", "db_sslmode = disable")],
  ["PgBouncer accepts plain clients", "TLS-1", "pgbouncer-client-tls-required", (s) => s.line("pgbouncer", INI, "client_tls_sslmode", "client_tls_sslmode = disable")],
  ["PgBouncer does not verify PostgreSQL", "TLS-1", "pgbouncer-server-tls-verified", (s) => s.line("pgbouncer", INI, "server_tls_sslmode", "server_tls_sslmode = require")],
  ["ssl = off", "TLS-1", "postgres-ssl-on", (s) => s.line("postgres", PG_CONF, "ssl", "ssl = off")],
  ["a plain host record in pg_hba.conf", "TLS-1", "pg-hba-hostssl-only", (s) => s.file("postgres", HBA, (t) => t.replace(/^hostssl(\s+\S+\s+odoo)/m, "host   $1"))],
  ["PgBouncer's certificate without the name Odoo dials", "TLS-3", "certificate-sans-match-clients", (s) => s.edit("internal-ca-pgbouncer-csr", (p) => (p.dnsNames = ["bouncer.odoo.internal"]))],
  // --- PG ---------------------------------------------------------------------------------------
  ["max_connections below the pools", "PG-1", "postgres-max-connections-cover-pgbouncer", (s) => s.line("postgres", PG_CONF, "max_connections", "max_connections = 20")],
  ["no statement_timeout, per role or server-wide", "PG-2", "postgres-timeouts-set", (s) =>
    s.line("postgres", PG_CONF, "statement_timeout", undefined).file("postgres", BOOTSTRAP, (t) => t.replace(/^ALTER ROLE "odoo" SET statement_timeout = \d+;\n/m, ""))],
  ["lock_timeout = 0 for Odoo's role", "PG-2", "postgres-timeouts-set", (s) => s.file("postgres", BOOTSTRAP, (t) => t.replace(/^(ALTER ROLE "odoo" SET lock_timeout = )\d+;/m, "$10;"))],
  ["log_lock_waits = off", "PG-3", "postgres-log-lock-waits", (s) => s.line("postgres", PG_CONF, "log_lock_waits", "log_lock_waits = off")],
  // --- OBS ---------------------------------------------------------------------------------------
  ["log_pooler_errors = 0", "OBS-3", "pgbouncer-logging-enabled", (s) => s.line("pgbouncer", INI, "log_pooler_errors", "log_pooler_errors = 0")],
  // --- where the traffic goes, and what the hosts receive ----------------------------------------------
  ["Odoo pointed at PostgreSQL, not PgBouncer", "NET-5", "database-traffic-through-pgbouncer", (s) => s.line("odoo-1", ODOO_CONF, "db_host", `db_host = ${model.hosts.postgres.fqdn}`)],
  ["pgbouncer.ini not delivered", "POOL-1", "hosts-receive-checked-config-files", (s) => s.remove(s.fileName("pgbouncer", INI))],
  // --- the host itself ------------------------------------------------------------------------------
  ["IMDSv1 allowed", "AUTH-2", "instance-imdsv2-required", (s) => s.edit("postgres-host-instance", (p) => (p.metadataOptions.httpTokens = "optional"))],
  ["unencrypted PostgreSQL data volume", "BACKUP-1", "ebs-volume-encrypted", (s) => s.edit("postgres-data", (p) => (p.encrypted = false))],
  ["unencrypted root volume", "ODOO-1", "instance-volumes-encrypted", (s) => s.edit("odoo-odoo-1-instance", (p) => (p.rootBlockDevice.encrypted = false))],
  ["admin_passwd in user data", "ODOO-1", "instance-user-data-no-secrets", (s) => s.edit("odoo-odoo-1-instance", (p) => (p.userData = `${p.userData}# admin_passwd = ${randomBytes(12).toString("hex")}\n`))],
  ["backup bucket versioning suspended", "BACKUP-1", "bucket-private-encrypted-versioned", (s) => s.edit("backups-repository-versioning", (p) => (p.versioningConfiguration.status = "Suspended"))],
  ["backup bucket without its public access block", "BACKUP-1", "bucket-private-encrypted-versioned", (s) => s.remove("backups-repository-public-access-block")],
];

const analyze = (resources: readonly Planned[], urns?: ReadonlySet<string>, withStack = true): Promise<PolicyDiagnostic[]> =>
  analyzeStack(pack().client, resources, urns, withStack);

describe("the production stack through the policy pack (gRPC)", () => {
  it("plans the whole prod stack, every host receiving its config files", () => {
    expect(planned.length).toBeGreaterThan(100);
    for (const host of model.allHosts) {
      const keys = planned.map((r) => String(r.inputs.key ?? "")).filter((k) => k.startsWith(`hosts/${host.id}/`));
      expect([host.id, keys.includes(`hosts/${host.id}/manifest.json`), keys.length > 1]).toEqual([host.id, true, true]);
    }
  });

  it("has no mandatory finding unmutated", async () => {
    const diagnostics = await analyze(planned);
    expect(mandatory(diagnostics).map((d) => `${d.policyName}: ${d.message}`)).toEqual([]);
  });

  it(`covers at least 40 mutations and every checklist item marked P`, () => {
    expect(MUTATIONS.length).toBeGreaterThanOrEqual(40);
    const items = new Set(MUTATIONS.map((m) => m[1]));
    for (const id of ["NET-1", "NET-2", "NET-3", "NET-4", "NET-5", "NET-6", "PROXY-1", "PROXY-2", "PROXY-3", "PROXY-4", "PROXY-5", "ODOO-1", "ODOO-2", "ODOO-3", "ODOO-5",
      "LIMIT-1", "LIMIT-2", "LIMIT-3", "POOL-1", "POOL-2", "POOL-3", "POOL-4", "POOL-5", "AUTH-1", "AUTH-2", "TLS-1", "TLS-2", "TLS-3", "PG-1", "PG-2", "PG-3", "OBS-3"]) {
      expect([id, items.has(id)]).toEqual([id, true]);
    }
  });

  it("during preview, unknown values give advisories, never a crash or a mandatory finding", async () => {
    // What a first `pulumi preview` sends: ids and everything computed from them unknown.
    const preview = new MutableStack(planned);
    const conf = preview.fileName("odoo-1", ODOO_CONF);
    preview.edit(conf, (p) => (p.content = UNKNOWN_VALUE));
    for (const r of preview.resources.filter((x) => x.custom)) {
      preview.edit(r.name, (p) => {
        for (const key of ["securityGroupId", "referencedSecurityGroupId", "bucket", "userData", "instanceId", "subnetId", "vpcId"]) if (key in p) p[key] = UNKNOWN_VALUE;
      });
    }
    const diagnostics = await analyze(preview.resources);
    expect(mandatory(diagnostics).map((d) => `${d.policyName}: ${d.message}`)).toEqual([]);
    const advisories = diagnostics.filter((d) => d.enforcementLevel === "advisory").map((d) => d.policyName);
    // odoo.conf's own policies could not run, and said so.
    for (const policy of ["odoo-list-db-disabled", "odoo-proxy-mode-enabled", "odoo-exactly-one-cron-host", "instance-user-data-no-secrets"]) {
      expect([policy, advisories.includes(policy)]).toEqual([policy, true]);
    }
    expect(diagnostics.find((d) => d.policyName === "odoo-list-db-disabled")?.message).toMatch(/can't run policy 'odoo-list-db-disabled' .* during preview/);
  });

  it.each(MUTATIONS)("%s (%s) is rejected by %s", async (_title, item, policy, mutate) => {
    const stack = new MutableStack(planned);
    mutate(stack);
    const type = pack().info.policies.find((p) => p.name === policy)?.type;
    expect([policy, type]).toEqual([policy, expect.stringMatching(/^(resource|stack)$/)]);
    const findings = mandatory(await analyze(stack.resources, stack.touched, type === "stack")).filter((d) => d.policyName === policy);
    expect(findings.length).toBeGreaterThan(0);
    // The message names the checklist item (the SDK prefixes the policy's description).
    expect(findings.map((d) => d.message.split("\n").slice(1).join("\n")).join("\n")).toMatch(new RegExp(`\\b${item}\\b`));
  });
});
