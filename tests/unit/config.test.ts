// parseSettings (lib/config.ts): every bad value fails with one ConfigError whose message names
// the key (odoo-stack:<key>), shows the bad value and says the fix (DESIGN principle 4), before
// any resource exists; the defaults Pulumi.yaml documents are the ones DEFAULTS resolves.
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import {
  ConfigError,
  DEFAULTS,
  odooPackageVersion,
  parseSettings,
  placeholderProblems,
  type RawConfig,
  type StackSettings,
} from "../../lib/config";
import { knownInstanceType } from "../../lib/instance-types";
import { BASE_CONFIG } from "../helpers/fixtures";
import { buildModel } from "../../lib/model";
import { renderAllHosts } from "../../templates/hosts";

const ROOT = path.resolve(__dirname, "..", "..");
const REGION = "eu-west-1";
const NS = "odoo-stack:";

const parse = (raw: RawConfig, region = REGION): StackSettings => parseSettings(raw, region, knownInstanceType);

/** The ConfigError parseSettings throws for `raw`; fails the test when it returns settings. */
function configErrorOf(raw: RawConfig, region = REGION): ConfigError {
  try {
    parse(raw, region);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`parseSettings accepted ${JSON.stringify(raw)}`);
}

const with_ = (overrides: RawConfig): RawConfig => ({ ...BASE_CONFIG, ...overrides });
const without = (key: string): RawConfig => Object.fromEntries(Object.entries(BASE_CONFIG).filter(([k]) => k !== key));

// [case, raw config, key named, value shown, distinctive part of the fix]
type BadCase = [string, RawConfig, string, unknown, string];

const ACME = BASE_CONFIG.tls as Record<string, unknown>;
const SIX_TAGS = { a: "1", b: "2", c: "3", d: "4", e: "5", f: "6" };

const BAD_CASES: BadCase[] = [
  // Instances and sizing.
  [
    "unknown Odoo instance type",
    with_({ odooInstanceType: "m6i.huge" }),
    "odooInstanceType",
    "m6i.huge",
    "is not an EC2 instance type this region offers",
  ],
  [
    "unknown PostgreSQL instance type",
    with_({ postgresInstanceType: "db.r6g.large" }),
    "postgresInstanceType",
    "db.r6g.large",
    "is not an EC2 instance type",
  ],
  [
    "PostgreSQL instance type below 2 GiB",
    with_({ postgresInstanceType: "t3.micro" }),
    "postgresInstanceType",
    "t3.micro",
    "at least 2 GiB of memory",
  ],
  // Network (NET-*).
  [
    "overlapping subnets",
    with_({ publicSubnetCidrs: ["10.40.0.0/20", "10.40.16.0/20"], privateSubnetCidrs: ["10.40.16.0/24", "10.40.128.0/20"] }),
    "privateSubnetCidrs[0]",
    "10.40.16.0/24",
    "overlaps publicSubnetCidrs[1] (10.40.16.0/20); subnets must be disjoint",
  ],
  [
    "subnet outside the VPC",
    with_({ privateSubnetCidrs: ["10.41.0.0/20", "10.40.144.0/20"] }),
    "privateSubnetCidrs[0]",
    "10.41.0.0/20",
    "must lie inside vpcCidr 10.40.0.0/16",
  ],
  [
    "fewer subnets than AZs",
    with_({ publicSubnetCidrs: ["10.40.0.0/20"] }),
    "publicSubnetCidrs",
    ["10.40.0.0/20"],
    "exactly one CIDR per availability zone (availabilityZoneCount = 2)",
  ],
  [
    "two subnets for three AZs",
    with_({ availabilityZoneCount: 3, privateSubnetCidrs: ["10.40.128.0/20", "10.40.144.0/20"] }),
    "privateSubnetCidrs",
    ["10.40.128.0/20", "10.40.144.0/20"],
    "(availabilityZoneCount = 3)",
  ],
  [
    "subnet too small (/27)",
    with_({ publicSubnetCidrs: ["10.40.0.0/27", "10.40.16.0/20"] }),
    "publicSubnetCidrs[0]",
    "10.40.0.0/27",
    "must be /26 or larger",
  ],
  [
    "malformed subnet",
    with_({ publicSubnetCidrs: ["10.40.0.0/20", "10.40.16/20"] }),
    "publicSubnetCidrs[1]",
    "10.40.16/20",
    "must be an IPv4 CIDR with no host bits set",
  ],
  ["public VPC CIDR", with_({ vpcCidr: "8.8.0.0/16" }), "vpcCidr", "8.8.0.0/16", "RFC 1918 range"],
  ["VPC prefix too wide (/12)", with_({ vpcCidr: "10.0.0.0/12" }), "vpcCidr", "10.0.0.0/12", "prefix from /16 to /24"],
  ["VPC prefix too narrow (/26)", with_({ vpcCidr: "10.40.0.0/26" }), "vpcCidr", "10.40.0.0/26", "prefix from /16 to /24"],
  ["VPC CIDR with host bits set", with_({ vpcCidr: "10.40.0.1/16" }), "vpcCidr", "10.40.0.1/16", "no host bits set"],
  ["malformed VPC CIDR", with_({ vpcCidr: "10.40.0.0" }), "vpcCidr", "10.40.0.0", "must be an IPv4 CIDR"],
  ["one availability zone", with_({ availabilityZoneCount: 1 }), "availabilityZoneCount", 1, "at least 2 AZs"],
  ["unknown NAT layout", with_({ natGateways: "none" }), "natGateways", "none", 'must be "single" or "perAz"'],
  [
    "public CIDR allowed to reach 8069 (NET-4)",
    with_({ odooInternalCidrs: ["203.0.113.0/24"] }),
    "odooInternalCidrs[0]",
    "203.0.113.0/24",
    "8069/8072 accept only the proxy and the internal network (NET-4)",
  ],
  [
    "the whole internet allowed to reach 8069 (NET-4)",
    with_({ odooInternalCidrs: ["10.8.0.0/16", "0.0.0.0/0"] }),
    "odooInternalCidrs[1]",
    "0.0.0.0/0",
    "public users come through the proxy's https:// hostnames",
  ],
  [
    "bad bastion security group id (NET-6)",
    with_({ bastionSecurityGroupId: "sg-bastion" }),
    "bastionSecurityGroupId",
    "sg-bastion",
    "must be a security group id such as sg-",
  ],
  // Odoo.
  ["unsupported Odoo version", with_({ odooVersion: "15.0" }), "odooVersion", "15.0", "must be one of 16.0, 17.0, 18.0"],
  // An unquoted 17.0 in the stack file is a YAML number; the CLI hands the program "17".
  [
    "odooVersion: 17.0 unquoted, as the CLI passes it",
    with_({ odooVersion: "17" }),
    "odooVersion",
    "17",
    'must be one of 16.0, 17.0, 18.0; YAML reads an unquoted 17.0 as the number 17: quote it in the stack file, odooVersion: "17.0"',
  ],
  [
    "odooVersion: 16.0 unquoted, as YAML parses it",
    with_({ odooVersion: 16 }),
    "odooVersion",
    16,
    'quote it in the stack file, odooVersion: "16.0"',
  ],
  // The pinned build and the addons artifact (issue 12 item 7).
  [
    "odooBuild not a date",
    with_({ odooBuild: "latest" }),
    "odooBuild",
    "latest",
    'must be a nightly build date YYYYMMDD (a day of nightly.odoo.com/17.0/nightly/deb/), e.g. odooBuild: "20241201"',
  ],
  ["odooBuild not a calendar day", with_({ odooBuild: "20240231" }), "odooBuild", "20240231", "must be a nightly build date YYYYMMDD"],
  [
    "odooBuild with the series in it",
    with_({ odooBuild: "17.0.20241201" }),
    "odooBuild",
    "17.0.20241201",
    "must be a nightly build date YYYYMMDD",
  ],
  [
    "odooAddons not in S3",
    with_({ odooAddons: { s3Uri: "https://example.org/addons.tar.gz", sha256: "a".repeat(64) } }),
    "odooAddons.s3Uri",
    "https://example.org/addons.tar.gz",
    "must be the S3 URI of one .tar.gz object in a bucket you own",
  ],
  [
    "odooAddons a prefix, not an object",
    with_({ odooAddons: { s3Uri: "s3://my-artifacts/odoo/", sha256: "a".repeat(64) } }),
    "odooAddons.s3Uri",
    "s3://my-artifacts/odoo/",
    "one .tar.gz object",
  ],
  [
    "odooAddons without a checksum",
    with_({ odooAddons: { s3Uri: "s3://my-artifacts/odoo/addons.tar.gz" } }),
    "odooAddons.sha256",
    undefined,
    "must be the artifact's sha256 in hex (64 digits: sha256sum addons.tar.gz)",
  ],
  [
    "odooAddons with a short checksum",
    with_({ odooAddons: { s3Uri: "s3://my-artifacts/odoo/addons.tar.gz", sha256: "abc123" } }),
    "odooAddons.sha256",
    "abc123",
    "64 digits",
  ],
  [
    "odooAddons with a git ref (not supported)",
    with_({ odooAddons: { s3Uri: "s3://my-artifacts/odoo/addons.tar.gz", sha256: "a".repeat(64), gitRef: "main" } }),
    "odooAddons.gitRef",
    "main",
    "is not an odooAddons setting; allowed: s3Uri, sha256",
  ],
  ["no Odoo instance", with_({ odooInstances: 0 }), "odooInstances", 0, "whole number from 1 to 16"],
  ["17 Odoo instances", with_({ odooInstances: 17 }), "odooInstances", 17, "whole number from 1 to 16"],
  ["workers over (vCPU × 2) + 1 (LIMIT-1)", with_({ odoo: { workers: 10 } }), "odoo.workers", 10, "must not exceed (vCPU × 2) + 1 = 9"],
  ["1 worker (LIMIT-1)", with_({ odoo: { workers: 1 } }), "odoo.workers", 1, "must be at least 2 (multi-process mode"],
  [
    "no cron thread (LIMIT-2)",
    with_({ odoo: { maxCronThreads: 0 } }),
    "odoo.maxCronThreads",
    0,
    "must be 1 or 2 until cron load is measured",
  ],
  ["3 cron threads (LIMIT-2)", with_({ odoo: { maxCronThreads: 3 } }), "odoo.maxCronThreads", 3, "must be 1 or 2"],
  [
    "hard memory limit that does not fit RAM (LIMIT-3)",
    with_({ odoo: { limitMemoryHardMiB: 14000 } }),
    "odoo.limitMemoryHardMiB",
    14000,
    "must be at most 13405 MiB: one process at its limit plus the other 10 at rest",
  ],
  [
    "hard memory limit below what a worker maps (LIMIT-3)",
    with_({ odoo: { limitMemoryHardMiB: 1000 } }),
    "odoo.limitMemoryHardMiB",
    1000,
    "must be at least 1264 MiB: it limits each process's address space (RLIMIT_AS)",
  ],
  // Issue 12 item 10: t3.small used to get limit_memory_hard = 256 MiB, below a worker at rest.
  [
    "Odoo on t3.small (LIMIT-1, LIMIT-3)",
    with_({ odooInstanceType: "t3.small" }),
    "odooInstanceType",
    "t3.small",
    "has 2048 MiB of memory, too little for Odoo: after the OS reserve (1024 MiB) 1024 MiB remain, and one HTTP worker, 1 cron worker and the gevent worker need 1532 MiB",
  ],
  [
    "soft memory limit not below hard (LIMIT-3)",
    with_({ odoo: { limitMemorySoftMiB: 1200, limitMemoryHardMiB: 1200 } }),
    "odoo.limitMemorySoftMiB",
    1200,
    "must be below odoo.limitMemoryHardMiB (1200)",
  ],
  [
    "limit_time_cpu over limit_time_real",
    with_({ odoo: { limitTimeCpu: 1300 } }),
    "odoo.limitTimeCpu",
    1300,
    "at most odoo.limitTimeReal (1200)",
  ],
  ["db_maxconn of 1", with_({ odoo: { dbMaxconn: 1 } }), "odoo.dbMaxconn", 1, "must be at least 2"],
  ["database name reserved for the LISTEN pool", with_({ databases: ["postgres"] }), "databases[0]", "postgres", "is reserved"],
  [
    "database name not an identifier",
    with_({ databases: ["erp", "Erp-Prod"] }),
    "databases[1]",
    "Erp-Prod",
    "lower-case PostgreSQL identifier",
  ],
  ["database listed twice", with_({ databases: ["erp", "erp"] }), "databases[1]", "erp", "is listed twice"],
  ["no database", with_({ databases: [] }), "databases", [], "must name at least one Odoo database"],
  // Issue 16: several databases, each at its own hostname (ODOO-3).
  [
    "several databases in the list form, one domain",
    with_({ databases: ["erp", "erp_test"] }),
    "databases",
    ["erp", "erp_test"],
    "must name each database's hostname when there are several (one domain serves one database): databases: [{name: erp, domain: erp.example.com}, {name: erptest, domain: erptest.example.com}]",
  ],
  [
    "a database name that cannot be a hostname label",
    with_({
      domain: "",
      databases: [
        { name: "erp", domain: "erp.example.com" },
        { name: "erp_test", domain: "staging.example.com" },
      ],
    }),
    "databases[1].name",
    "erp_test",
    "cannot be a hostname label (only letters and digits are both a PostgreSQL name and a DNS label), and with several databases Odoo 17 picks the database from the hostname's first label (dbfilter %d, odoo/http.py db_filter); rename the database to erptest and serve it at erptest.example.com",
  ],
  [
    "a hostname whose first label is not the database",
    with_({
      domain: "",
      databases: [
        { name: "erp", domain: "erp.example.com" },
        { name: "staging", domain: "erp-staging.example.com" },
      ],
    }),
    "databases[1].domain",
    "erp-staging.example.com",
    "must be staging.example.com: with several databases Odoo 17 picks the database from the hostname's first label",
  ],
  [
    "a hostname under another parent domain",
    with_({
      domain: "",
      databases: [
        { name: "erp", domain: "erp.example.com" },
        { name: "shop", domain: "shop.acme.example.org" },
      ],
    }),
    "databases[1].domain",
    "shop.acme.example.org",
    "must be under example.com like erp.example.com",
  ],
  [
    "a www. hostname (Odoo drops www.)",
    with_({
      domain: "",
      databases: [
        { name: "erp", domain: "erp.example.com" },
        { name: "www", domain: "www.example.com" },
      ],
    }),
    "databases[1].domain",
    "www.example.com",
    "must not start with www.",
  ],
  [
    "one hostname for two databases",
    with_({
      domain: "",
      databases: [
        { name: "erp", domain: "erp.example.com" },
        { name: "shop", domain: "erp.example.com" },
      ],
    }),
    "databases[1].domain",
    "erp.example.com",
    "is already the hostname of database erp",
  ],
  [
    "a database map without its domain",
    with_({ domain: "", databases: [{ name: "erp" }] }),
    "databases[0].domain",
    undefined,
    "is required: the public hostname that serves this database",
  ],
  [
    "domain beside the object form",
    with_({ databases: [{ name: "erp", domain: "erp.example.com" }] }),
    "domain",
    "erp.example.com",
    "must be left out when databases names each database's domain",
  ],
  [
    "names and maps mixed",
    with_({ domain: "", databases: [{ name: "erp", domain: "erp.example.com" }, "shop"] }),
    "databases[1]",
    "shop",
    "must be a map {name, domain} like the other entries",
  ],
  ["the old dbfilter key (ODOO-3: the stack writes it)", with_({ dbfilter: "^%d$" }), "dbfilter", "^%d$", "is not a setting of odoo-stack"],
  // PgBouncer and PostgreSQL (POOL-*, PG-*).
  [
    "max_client_conn below processes × db_maxconn (POOL-4)",
    with_({ pgbouncer: { maxClientConn: 50 } }),
    "pgbouncer.maxClientConn",
    50,
    "must cover every Odoo process's pool (db_maxconn, db_maxconn_gevent for the gevent worker) on every host plus one CLI process = 152 (POOL-4)",
  ],
  [
    "default_pool_size 0 (POOL-2)",
    with_({ pgbouncer: { defaultPoolSize: 0 } }),
    "pgbouncer.defaultPoolSize",
    0,
    "must be at least 1 (POOL-2)",
  ],
  [
    "default_pool_size way too large (POOL-2)",
    with_({ pgbouncer: { defaultPoolSize: 500 } }),
    "pgbouncer.defaultPoolSize",
    500,
    "must not exceed twice the Odoo processes that can hold a transaction (11)",
  ],
  [
    "reserve_pool_size 0 (POOL-3)",
    with_({ pgbouncer: { reservePoolSize: 0 } }),
    "pgbouncer.reservePoolSize",
    0,
    "so short peaks do not queue (POOL-3)",
  ],
  [
    "max_db_connections below the pool (POOL-5)",
    with_({ pgbouncer: { maxDbConnections: 5 } }),
    "pgbouncer.maxDbConnections",
    5,
    "must be at least pgbouncer.defaultPoolSize (11) (POOL-5)",
  ],
  [
    "max_connections below the pools (PG-1)",
    with_({ postgres: { maxConnections: 20 } }),
    "postgres.maxConnections",
    20,
    "must cover PgBouncer's pools + reserves (14) + `postgres` session pool + reserve (16) + migration role (2)",
  ],
  [
    "max_connections absurdly high (PG-1)",
    with_({ postgres: { maxConnections: 6000 } }),
    "postgres.maxConnections",
    6000,
    "must stay at most 5000",
  ],
  [
    "statement_timeout 0 (PG-2)",
    with_({ postgres: { statementTimeoutMs: 0 } }),
    "postgres.statementTimeoutMs",
    0,
    "0 disables the timeout, which PG-2 forbids",
  ],
  [
    "idle_in_transaction_session_timeout 0 (PG-2)",
    with_({ postgres: { idleInTransactionSessionTimeoutMs: 0 } }),
    "postgres.idleInTransactionSessionTimeoutMs",
    0,
    "PG-2 forbids",
  ],
  // Names.
  ["no domain", without("domain"), "domain", undefined, "is required: the public hostname of Odoo"],
  [
    "domain with an underscore",
    with_({ domain: "erp_prod.example.com" }),
    "domain",
    "erp_prod.example.com",
    "must be a DNS hostname such as erp.example.com",
  ],
  ["domain with a trailing dot", with_({ domain: "erp.example.com." }), "domain", "erp.example.com.", "must be a DNS hostname"],
  ["single-label domain", with_({ domain: "erp" }), "domain", "erp", "must be a DNS hostname"],
  ["domain label starting with a hyphen", with_({ domain: "-erp.example.com" }), "domain", "-erp.example.com", "must be a DNS hostname"],
  ["domain that is a URL", with_({ domain: "https://erp.example.com" }), "domain", "https://erp.example.com", "must be a DNS hostname"],
  [
    "internal zone containing the public domain",
    with_({ internalZone: "example.com" }),
    "internalZone",
    "example.com",
    "must not contain the public hostname erp.example.com",
  ],
  [
    "internal zone equal to the public domain",
    with_({ internalZone: "erp.example.com" }),
    "internalZone",
    "erp.example.com",
    "pick a private name such as odoo.internal",
  ],
  // TLS.
  [
    "unknown tls mode",
    with_({ tls: { mode: "selfsigned" } }),
    "tls.mode",
    "selfsigned",
    '"acme" (Let\'s Encrypt via Route 53 DNS-01) or "imported"',
  ],
  [
    "ACME without an e-mail",
    with_({ tls: { mode: "acme", hostedZoneId: ACME.hostedZoneId } }),
    "tls.email",
    undefined,
    "is required for ACME",
  ],
  [
    "ACME without a hosted zone",
    with_({ tls: { mode: "acme", email: ACME.email } }),
    "tls.hostedZoneId",
    undefined,
    "is required for ACME DNS-01",
  ],
  [
    "ACME with a malformed hosted zone id",
    with_({ tls: { ...ACME, hostedZoneId: "example.com" } }),
    "tls.hostedZoneId",
    "example.com",
    "Route 53 public hosted zone id",
  ],
  ["ACME staging not a boolean", with_({ tls: { ...ACME, staging: "yes" } }), "tls.staging", "yes", "must be true or false"],
  [
    "imported without the certificate parameter",
    with_({ tls: { mode: "imported" } }),
    "tls.certificateParameter",
    undefined,
    "SSM parameter holding the PEM chain",
  ],
  [
    "imported without the key parameter",
    with_({ tls: { mode: "imported", certificateParameter: "/certs/erp/fullchain" } }),
    "tls.privateKeyParameter",
    undefined,
    "SecureString SSM parameter holding the PEM key",
  ],
  [
    "ACME key under imported mode",
    with_({ tls: { mode: "imported", certificateParameter: "/c/f", privateKeyParameter: "/c/k", email: "ops@example.com" } }),
    "tls.email",
    "ops@example.com",
    'is not a tls setting for mode "imported"',
  ],
  // Alarms, backups, tags.
  [
    "bad alarm e-mail",
    with_({ alarmEmail: "ops-at-example.com" }),
    "alarmEmail",
    "ops-at-example.com",
    "must be an e-mail address for the alarm topic",
  ],
  [
    "backup retention of 3 days (BACKUP-1)",
    with_({ backupRetentionDays: 3 }),
    "backupRetentionDays",
    3,
    "whole number from 7 to 3650 (BACKUP-1)",
  ],
  ["data volume too small", with_({ postgresDataVolumeGiB: 8 }), "postgresDataVolumeGiB", 8, "whole number from 20 to 16384"],
  ["too many tags", with_({ tags: SIX_TAGS }), "tags", SIX_TAGS, "must hold at most 5 tags"],
  ["aws: tag", with_({ tags: { "aws:owner": "me" } }), "tags.aws:owner", "me", "uses the reserved aws: prefix"],
  ["tag that is not a string", with_({ tags: { cost: 12 } }), "tags.cost", 12, "must be a string"],
  // Keys.
  ["unknown top-level key (typo)", with_({ odooInstance: 2 }), "odooInstance", 2, "is not a setting of odoo-stack; known keys:"],
  ["unknown override key (odoo.wokers)", with_({ odoo: { wokers: 4 } }), "odoo.wokers", 4, "is not a odoo setting; allowed:"],
  [
    "unknown PgBouncer override key",
    with_({ pgbouncer: { poolMode: 1 } }),
    "pgbouncer.poolMode",
    1,
    "allowed: defaultPoolSize, maxClientConn",
  ],
  ["non-integer override", with_({ odoo: { workers: 2.5 } }), "odoo.workers", 2.5, "must be a whole number ≥ 0"],
  ["override given as text", with_({ postgres: { maxConnections: "200" } }), "postgres.maxConnections", "200", "must be a whole number"],
  ["override map that is a list", with_({ odoo: "[4]" }), "odoo", [4], "must be a map"],
  ["list given as invalid JSON text", with_({ databases: "[erp" }), "databases", "[erp", "is not valid JSON"],
  // Password rotation keepers (AUTH-4, lib/rotation.ts).
  [
    "rotation date that is not a date",
    with_({ passwordRotation: { odoo: "next week" } }),
    "passwordRotation.odoo",
    "next week",
    "must be a date YYYY-MM-DD",
  ],
  [
    "rotation date that does not exist",
    with_({ passwordRotation: { odoo: "2026-02-30" } }),
    "passwordRotation.odoo",
    "2026-02-30",
    "must be a date YYYY-MM-DD",
  ],
  [
    "rotation of the backup cipher pass",
    with_({ passwordRotation: { backup: "2026-12-01" } }),
    "passwordRotation.backup",
    "2026-12-01",
    "existing backups could no longer be read",
  ],
  [
    "rotation of an unknown password",
    with_({ passwordRotation: { root: "2026-12-01" } }),
    "passwordRotation.root",
    "2026-12-01",
    "use odoo, stats, monitor, admin",
  ],
  ["rotation setting that is a list", with_({ passwordRotation: "[1]" }), "passwordRotation", [1], "must be a map of password to date"],
];

describe("parseSettings: bad config (DESIGN principle 4)", () => {
  it("has at least 35 cases", () => {
    expect(BAD_CASES.length).toBeGreaterThanOrEqual(35);
  });

  it.each(BAD_CASES)("%s", (_name, raw, key, value, fix) => {
    const err = configErrorOf(raw);
    expect(err.name).toBe("ConfigError");
    // The line names the key with its namespace, shows the value, then the fix.
    const line = err.message.split("\n").find((l) => l.includes(`${NS}${key} = `));
    expect(line).toBeDefined();
    expect(line).toContain(`${NS}${key} = ${JSON.stringify(value)}: `);
    expect(line).toContain(fix);
    expect(err.problems.some((p) => p.key === key)).toBe(true);
    expect(err.message).toMatch(/^odoo-stack: \d+ configuration problems?; nothing was created:\n/);
  });

  it("rejects a malformed region (aws:region)", () => {
    const err = configErrorOf(BASE_CONFIG, "Europe");
    expect(err.message).toContain(`${NS}aws:region = "Europe": must be an AWS region such as eu-west-1`);
  });

  it("lists several problems in ONE error, numbered", () => {
    const err = configErrorOf(with_({ odooVersion: "15.0", odooInstances: 0, domain: "erp_prod", odooInternalCidrs: ["0.0.0.0/0"] }));
    expect(err.problems.map((p) => p.key).sort()).toEqual(["domain", "odooInstances", "odooInternalCidrs[0]", "odooVersion"]);
    const lines = err.message.split("\n");
    expect(lines[0]).toBe("odoo-stack: 4 configuration problems; nothing was created:");
    expect(lines.slice(1).map((l) => /^ {2}(\d+)\. odoo-stack:/.exec(l)?.[1])).toEqual(["1", "2", "3", "4"]);
  });

  it("gives no quoting hint for a version that is no number of a supported one", () => {
    expect(configErrorOf(with_({ odooVersion: "15.0" })).message).not.toContain("quote it");
    expect(configErrorOf(with_({ odooVersion: 15 })).message).not.toContain("quote it");
  });

  it("says 'problem' for one and 'problems' for several", () => {
    expect(configErrorOf(with_({ odooVersion: "15.0" })).message).toMatch(/^odoo-stack: 1 configuration problem;/);
  });
});

describe("parseSettings: passwordRotation (AUTH-4)", () => {
  it("keeps the dates of the named passwords, as the CLI hands them (JSON text) or parsed", () => {
    expect(parse(with_({ passwordRotation: { odoo: "2026-12-01", stats: "2027-01-02" } })).passwordRotation).toEqual({
      odoo: "2026-12-01",
      stats: "2027-01-02",
    });
    expect(parse(with_({ passwordRotation: '{"monitor":"2026-03-31"}' })).passwordRotation).toEqual({ monitor: "2026-03-31" });
  });
});

describe("parseSettings: names", () => {
  it("lowers an upper-case domain and internal zone instead of refusing them", () => {
    const s = parse(with_({ domain: "ERP.Example.COM", internalZone: "Odoo.Internal" }));
    expect(s.domain).toBe("erp.example.com");
    expect(s.internalZone).toBe("odoo.internal");
  });

  it("trims surrounding blanks", () => {
    expect(parse(with_({ domain: "  erp.example.com " })).domain).toBe("erp.example.com");
  });

  it("accepts private odooInternalCidrs from each RFC 1918 range (NET-4)", () => {
    const cidrs = ["10.8.0.0/16", "172.16.0.0/12", "192.168.1.0/24"];
    expect(parse(with_({ odooInternalCidrs: cidrs })).odooInternalCidrs).toEqual(cidrs);
  });

  it("takes lists and maps as JSON text, as the Pulumi CLI passes them", () => {
    const s = parse({
      ...BASE_CONFIG,
      domain: "",
      databases: '[{"name":"erp","domain":"erp.example.com"},{"name":"erptest","domain":"erptest.example.com"}]',
      tls: JSON.stringify(BASE_CONFIG.tls),
      odooInstances: "2",
    });
    expect(s.databases).toEqual(["erp", "erptest"]);
    expect(s.domain).toBe("erp.example.com");
    expect(s.sites).toEqual([
      { database: "erp", hostname: "erp.example.com" },
      { database: "erptest", hostname: "erptest.example.com" },
    ]);
    // Exactly the declared databases, the one the hostname's first label names (ODOO-3).
    expect(s.dbfilter).toBe("^(?=(?:erp|erptest)$)%d$");
    expect(s.odooInstances).toBe(2);
  });
});

// Pulumi.yaml's `config:` block and DEFAULTS both come from lib/settings.ts; tests/unit/settings.test.ts
// proves the block is generated from it and resolves, through the CLI's rules, to these defaults.
describe("defaults", () => {
  it("an absent key resolves to the documented default", () => {
    const s = parse({ domain: "erp.example.com", tls: BASE_CONFIG.tls });
    expect(s.internalZone).toBe(DEFAULTS.internalZone);
    expect(s.vpcCidr).toBe(DEFAULTS.vpcCidr);
    expect(s.availabilityZoneCount).toBe(DEFAULTS.availabilityZoneCount);
    expect(s.natGateways).toBe(DEFAULTS.natGateways);
    expect(s.odooVersion).toBe(DEFAULTS.odooVersion);
    expect(s.odooInstances).toBe(DEFAULTS.odooInstances);
    expect(s.instanceTypes).toEqual(DEFAULTS.instanceTypes);
    expect(s.databases).toEqual(DEFAULTS.databases);
    expect(s.postgresDataVolumeGiB).toBe(DEFAULTS.postgresDataVolumeGiB);
    expect(s.odooInternalCidrs).toEqual(DEFAULTS.odooInternalCidrs);
    expect(s.backupRetentionDays).toBe(DEFAULTS.backupRetentionDays);
    expect(s.tls).toEqual({ ...ACME, mode: DEFAULTS.tlsMode, staging: DEFAULTS.acmeStaging });
    // Derived defaults: /20 subnets carved from the VPC (public from index 0, private from 8),
    // and no dbfilter: with one database db_name alone restricts Odoo to it (ODOO-3).
    expect(s.publicSubnetCidrs).toEqual(["10.40.0.0/20", "10.40.16.0/20"]);
    expect(s.privateSubnetCidrs).toEqual(["10.40.128.0/20", "10.40.144.0/20"]);
    expect(s.dbfilter).toBeUndefined();
    expect(s.bastionSecurityGroupId).toBeUndefined();
    expect(s.alarmEmail).toBeUndefined();
    expect(s.tags).toEqual({});
    expect(s.odooOptions).toEqual({});
    expect(s.overrides).toEqual({ odoo: {}, pgbouncer: {}, postgres: {} });
    expect(s.passwordRotation).toEqual({});
    expect(s.odooBuild).toBe(DEFAULTS.odooBuild);
    expect(s.odooAddons).toBeUndefined();
  });

  it("odooBuild and odooAddons (issue 12 item 7): a quoted or unquoted build date; the artifact's bucket, key and checksum", () => {
    const sha = "0123456789abcdef".repeat(4);
    const s = parse(
      with_({ odooBuild: 20250115, odooAddons: { s3Uri: "s3://my-artifacts/odoo/addons-2025.tar.gz", sha256: sha.toUpperCase() } }),
    );
    expect(s.odooBuild).toBe("20250115");
    expect(s.odooAddons).toEqual({ bucket: "my-artifacts", key: "odoo/addons-2025.tar.gz", sha256: sha });
    expect(odooPackageVersion(s)).toBe("17.0.20250115");
    // Pulumi.yaml declares the unset map as {}: that is "no addons".
    expect(parse(with_({ odooAddons: {} })).odooAddons).toBeUndefined();
  });
});

describe("Pulumi.prod.yaml", () => {
  it("parses cleanly into the production settings", () => {
    const doc = yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8")) as { config: Record<string, unknown> };
    const raw: Record<string, unknown> = {};
    let region = "";
    for (const [key, value] of Object.entries(doc.config)) {
      if (key === "aws:region") region = String(value);
      else {
        expect(key.startsWith(NS)).toBe(true);
        raw[key.slice(NS.length)] = value;
      }
    }
    const s = parse(raw, region);
    expect(s.region).toBe("eu-west-1");
    expect(s.domain).toBe("erp.example.com");
    expect(s.odooVersion).toBe("17.0");
    expect(s.tls.mode).toBe("acme");
    expect(s.databases).toEqual(["erp"]);
    // No plaintext secret in the stack file: nothing in it looks like a `secure:` value or a password key.
    expect(JSON.stringify(doc)).not.toMatch(/secure|password|passwd|secret/i);
  });
});

// Placeholders: refused when the program runs under the real engine (index.ts asks for
// "refuse"), accepted otherwise; the offline plan prints placeholderProblems as warnings.
describe("placeholders", () => {
  const REAL: RawConfig = {
    domain: "erp.acme-corp.eu",
    tls: { mode: "acme", email: "ops@acme-corp.eu", hostedZoneId: "Z04417412S8KQ3PL1" },
    alarmEmail: "alarms@acme-corp.eu",
    bastionSecurityGroupId: "sg-0a1b2c3d4e5f60718",
  };
  const refuse = (raw: RawConfig) => parseSettings(raw, REGION, knownInstanceType, { placeholders: "refuse" });

  it("accepts real-looking values when refusing placeholders", () => {
    expect(refuse(REAL).domain).toBe("erp.acme-corp.eu");
    expect(placeholderProblems(REAL)).toEqual([]);
  });

  it.each([
    ["a documentation domain", { domain: "erp.example.com" }, "domain", "erp.example.com", "(a documentation domain, RFC 2606)"],
    ["example.org itself", { domain: "example.org" }, "domain", "example.org", "RFC 2606"],
    ["a .test name", { domain: "erp.acme.test" }, "domain", "erp.acme.test", "RFC 2606"],
    [
      "an ACME contact at example.net",
      { tls: { ...(REAL.tls as object), email: "ops@example.net" } },
      "tls.email",
      "ops@example.net",
      "Let's Encrypt refuses such a contact",
    ],
    [
      "an alarm address at example.com",
      { alarmEmail: "a@sub.example.com" },
      "alarmEmail",
      "a@sub.example.com",
      "subscription confirmation would go nowhere",
    ],
    [
      "an AWS-documentation zone id",
      { tls: { ...(REAL.tls as object), hostedZoneId: "Z3M3LMPEXAMPLE" } },
      "tls.hostedZoneId",
      "Z3M3LMPEXAMPLE",
      "(an example id)",
    ],
    [
      "the zone id the fix message shows",
      { tls: { ...(REAL.tls as object), hostedZoneId: "Z0123456789ABCDEFGHIJ" } },
      "tls.hostedZoneId",
      "Z0123456789ABCDEFGHIJ",
      "(an example id)",
    ],
    [
      "the security group id the fix message shows",
      { bastionSecurityGroupId: "sg-0123456789abcdef0" },
      "bastionSecurityGroupId",
      "sg-0123456789abcdef0",
      "or leave the key unset",
    ],
  ] as [string, RawConfig, string, string, string][])(
    "refuses %s under the real engine, accepts it otherwise",
    (_name, override, key, value, fix) => {
      const raw = { ...REAL, ...override };
      expect(() => parse(raw)).not.toThrow();
      const err = (() => {
        try {
          refuse(raw);
        } catch (e) {
          return e as ConfigError;
        }
        throw new Error("accepted");
      })();
      expect(err.problems.map((p) => p.key)).toEqual([key]);
      expect(err.message).toContain(`${NS}${key} = ${JSON.stringify(value)}: is a placeholder: nothing real answers there`);
      expect(err.message).toContain(fix);
      expect(err.message).toContain("(a real pulumi preview or up refuses placeholders; the offline plan only warns)");
      expect(placeholderProblems(raw).map((p) => p.key)).toEqual([key]);
    },
  );

  it("reads tls given as JSON text, as the CLI passes it", () => {
    expect(
      placeholderProblems({ ...REAL, tls: JSON.stringify({ mode: "acme", email: "x@example.com", hostedZoneId: "ZEXAMPLE" }) }).map(
        (p) => p.key,
      ),
    ).toEqual(["tls.email", "tls.hostedZoneId"]);
  });
});

// Issue 12 item 5: outbound mail as a setting, and secrets never echoed back.
describe("mail and secrets in problem messages", () => {
  const errorOf = (raw: RawConfig): ConfigError => {
    try {
      parseSettings(raw, "eu-west-1", knownInstanceType);
    } catch (err) {
      return err as ConfigError;
    }
    throw new Error("expected a ConfigError");
  };
  const MAIL = { host: "email-smtp.eu-west-1.amazonaws.com", user: "AKIAEXAMPLE" };

  it("resolves mail with the default STARTTLS port and no password parameter (the stack generates one)", () => {
    const s = parseSettings(with_({ mail: MAIL }), "eu-west-1", knownInstanceType);
    expect(s.mail).toEqual({ host: MAIL.host, port: 587, user: MAIL.user });
    expect(parseSettings(with_({}), "eu-west-1", knownInstanceType).mail).toBeUndefined();
  });

  it("refuses 465 with the reason: odoo.conf's SMTP speaks STARTTLS only", () => {
    const err = errorOf(with_({ mail: { ...MAIL, port: 465 } }));
    expect(err.problems).toEqual([
      expect.objectContaining({
        key: "mail.port",
        value: 465,
        fix: expect.stringContaining("STARTTLS only (odoo/addons/base/models/ir_mail_server.py)"),
      }),
    ]);
  });

  it("refuses a password typed into the mail setting without echoing it", () => {
    const secret = `pw-${Date.now().toString(36)}-not-echoed`;
    const err = errorOf(with_({ mail: { ...MAIL, password: secret } }));
    expect(err.problems.map((p) => p.key)).toEqual(["mail.password"]);
    expect(err.message).toContain('mail.password = "[redacted]": the SMTP password never goes in the stack file');
    expect(err.message).not.toContain(secret);
  });

  it("never echoes a secret-looking odooOptions value, at any depth, and keeps {{ssm:…}} references readable", () => {
    const secret = `pw-${Date.now().toString(36)}-plain`;
    // The renderer refuses a literal smtp_password; its problem used to carry the whole odooOptions map.
    const model = buildModel("test", parseSettings(with_({ odooOptions: { smtp_password: secret } }), "eu-west-1", knownInstanceType));
    let err: unknown;
    try {
      renderAllHosts(model);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain("smtp_password: is a secret");
    expect((err as ConfigError).message).not.toContain(secret);
    const shown = new ConfigError([
      { key: "odooOptions", value: { smtp_password: secret, smtp_user: "u", token: "{{ssm:/a/b}}" }, fix: "x" },
    ]).message;
    expect(shown).toContain('{"smtp_password":"[redacted]","smtp_user":"u","token":"{{ssm:/a/b}}"}');
  });

  it("keeps odoo.conf's SMTP keys to the mail setting when it is set", () => {
    const err = errorOf(with_({ mail: MAIL, odooOptions: { smtp_server: "other.example.com" } }));
    expect(err.problems).toEqual([
      expect.objectContaining({ key: "odooOptions.smtp_server", fix: expect.stringContaining("is set by the mail setting") }),
    ]);
  });

  it("lists the parameters odooOptions reference, for the hosts to read and the preview to check", () => {
    const s = parseSettings(
      with_({ odooOptions: { smtp_password: "{{ssm:/mail/smtp}}", smtp_server: "smtp.example.com" } }),
      "eu-west-1",
      knownInstanceType,
    );
    expect(s.odooOptionParameters).toEqual(["/mail/smtp"]);
  });
});
