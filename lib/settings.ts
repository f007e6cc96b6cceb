// The settings table: every stack config key once, with its kind, default, range, meaning and
// whether it is required or secret (issue 17 item 1). Everything else derives from it:
// lib/config.ts's CONFIG_KEYS, DEFAULTS, StackSettings and the ranges parseSettings validates;
// Pulumi.yaml's `config:` block and the README's configuration reference, both written by
// `npm run settings` (tools/settings-docs.ts) and compared with the committed files by
// tests/unit/settings.test.ts. Pure data: no Pulumi, no I/O.
//
// Adding a key: one entry below (kind, description, and exactly one of required / default /
// derived / unset), its parsing in lib/config.ts parseSettings (read it with the helpers there,
// which take the range and default from this table), then `npm run settings`.
import { SMTP_EGRESS_PORTS } from "./ports";
import { ROTATABLE_PASSWORD_NAMES } from "./rotation";
import type { OdooSizingOverrides, PgbouncerSizingOverrides, PostgresSizingOverrides } from "./sizing";

/**
 * The config value's kind; Pulumi.yaml's `type` (stringList is `array` of `string`). databaseList
 * is a list of names or of {name, domain} maps: the CLI types an array's items with one type, so
 * Pulumi.yaml declares it without a type and lib/config.ts checks both forms.
 */
export type SettingKind = "string" | "integer" | "boolean" | "stringList" | "object" | "databaseList";

/** What parseSettings enforces beyond the kind; Pulumi.yaml and the README state the same. */
export type SettingRange =
  /** A whole number from min to max, inclusive. */
  | { readonly min: number; readonly max: number }
  /** Exactly one of these strings. */
  | { readonly oneOf: readonly string[] }
  /** IPv4 CIDR(s) whose prefix length is within [min, max] (each, for a list). */
  | { readonly prefix: { readonly min?: number; readonly max: number } }
  /** A map with at most this many entries. */
  | { readonly maxEntries: number }
  /** A map whose keys are these (the sizing override maps, typed from lib/sizing.ts). */
  | { readonly fields: readonly string[] };

export interface SettingSpec {
  readonly kind: SettingKind;
  /** Pulumi.yaml's description and the README's meaning column. */
  readonly description: string;
  /** The CLI refuses a stack that does not set it (Pulumi.yaml declares it without a default). */
  readonly required?: true;
  /** The value when the key is unset; Pulumi.yaml declares it. */
  readonly default?: string | number | boolean | readonly string[] | Readonly<Record<string, never>>;
  /** The key is unset by default and its value is computed from other keys, as said here. */
  readonly derived?: string;
  /** The key is unset by default and then absent from the settings, meaning what is said here. */
  readonly unset?: string;
  readonly range?: SettingRange;
  /** The stack file must hold it encrypted (`pulumi config set --secret`). */
  readonly secret?: true;
}

/** Keys of each sizing override map: exactly the fields of lib/sizing.ts's interface (the build fails otherwise). */
const fieldsOf = <T>(fields: { readonly [K in keyof Required<T>]: true }): readonly string[] => Object.keys(fields);

export const ODOO_OVERRIDE_FIELDS = fieldsOf<OdooSizingOverrides>({
  workers: true,
  maxCronThreads: true,
  limitMemorySoftMiB: true,
  limitMemoryHardMiB: true,
  limitTimeCpu: true,
  limitTimeReal: true,
  limitTimeRealCron: true,
  limitRequest: true,
  dbMaxconn: true,
  dbMaxconnGevent: true,
});
export const PGBOUNCER_OVERRIDE_FIELDS = fieldsOf<PgbouncerSizingOverrides>({
  defaultPoolSize: true,
  reservePoolSize: true,
  maxClientConn: true,
  maxDbConnections: true,
});
export const POSTGRES_OVERRIDE_FIELDS = fieldsOf<PostgresSizingOverrides>({
  maxConnections: true,
  statementTimeoutMs: true,
  lockTimeoutMs: true,
  idleInTransactionSessionTimeoutMs: true,
});

/** RDS keeps automated backups (and so PITR) for at most 35 days. */
export const RDS_MAX_BACKUP_RETENTION_DAYS = 35;

/** Defaults inside the `tls` map. */
export const TLS_FIELD_DEFAULTS = { mode: "acme", staging: false } as const;

/** Keys of the `mail` map (issue 12 item 5). */
export const MAIL_FIELDS: readonly string[] = ["host", "port", "user", "passwordParameter", "from"];
/** Keys of the `odooAddons` map (issue 12 item 7). */
export const ODOO_ADDONS_FIELDS: readonly string[] = ["s3Uri", "sha256"];

/** Defaults inside the `mail` map: submission with STARTTLS. */
export const MAIL_FIELD_DEFAULTS = { port: 587 } as const;

export const SETTINGS = {
  domain: {
    kind: "string",
    derived:
      "the hostname of the first database of `databases` in its {name, domain} form (leave domain out then); with `databases` as a list of one name, domain is required",
    description: "Public hostname users open, e.g. erp.example.com, for a stack with one database.",
  },
  tls: {
    kind: "object",
    required: true,
    description: `Public TLS on the proxy: {mode: acme, email, hostedZoneId, staging} (Let's Encrypt via Route 53 DNS-01; mode defaults to ${TLS_FIELD_DEFAULTS.mode}, staging to ${TLS_FIELD_DEFAULTS.staging}) or {mode: imported, certificateParameter, privateKeyParameter} (SSM parameter names).`,
  },
  internalZone: {
    kind: "string",
    default: "odoo.internal",
    description: "Private Route 53 zone for internal names; TLS certificates carry these SANs (TLS-3).",
  },
  vpcCidr: {
    kind: "string",
    default: "10.40.0.0/16",
    range: { prefix: { min: 16, max: 24 } },
    description: "VPC range, inside RFC 1918.",
  },
  availabilityZoneCount: {
    kind: "integer",
    default: 2,
    range: { min: 2, max: 6 },
    description: "Availability zones to spread subnets over.",
  },
  publicSubnetCidrs: {
    kind: "stringList",
    derived: "/20s carved from vpcCidr (index 0..)",
    range: { prefix: { max: 26 } },
    description: "One CIDR per AZ for public subnets (proxy, NAT), inside vpcCidr, disjoint.",
  },
  privateSubnetCidrs: {
    kind: "stringList",
    derived: "/20s carved from vpcCidr (index 8..)",
    range: { prefix: { max: 26 } },
    description: "One CIDR per AZ for private subnets (Odoo, PgBouncer, PostgreSQL), inside vpcCidr, disjoint.",
  },
  natGateways: {
    kind: "string",
    default: "single",
    range: { oneOf: ["single", "perAz"] },
    description: "single: one NAT gateway (cheaper); perAz: one per AZ (no cross-AZ dependency).",
  },
  odooVersion: {
    kind: "string",
    default: "17.0",
    range: { oneOf: ["16.0", "17.0", "18.0"] },
    description: 'Odoo series. Quote it in the stack file ("17.0"): unquoted, YAML reads the number 17.',
  },
  odooBuild: {
    kind: "string",
    default: "20241201",
    description:
      'Odoo nightly build date (YYYYMMDD) of odooVersion: every Odoo host installs exactly the package odoo=<odooVersion>.<odooBuild>, held by an apt pin so no upgrade moves it. A new value reaches existing hosts at the next pulumi up (odoo-stack-odoo-release; runbook release-odoo). Quote it ("20241201").',
  },
  odooAddons: {
    kind: "object",
    unset: "no custom addons: /opt/odoo/custom-addons stays empty",
    range: { fields: ODOO_ADDONS_FIELDS },
    description:
      "Custom addons: {s3Uri, sha256}, a .tar.gz in a bucket you own (s3://bucket/key) and its sha256. Addon directories at its top level, optionally requirements.txt and wheels/ (pip installs from those wheels only). The Odoo hosts may read exactly that object; a new value is verified, unpacked to a release directory and switched to with a module update at the next pulumi up, and rolled back on failure.",
  },
  odooInstances: {
    kind: "integer",
    default: 1,
    range: { min: 1, max: 16 },
    description: "Number of Odoo hosts; host odoo-1 runs the crons.",
  },
  sharedFilestore: {
    kind: "boolean",
    derived: "true with several Odoo hosts (where false is an error), false with one",
    description: "Odoo's data_dir (filestore and sessions) on encrypted EFS, mounted over TLS (stunnel) on every Odoo host.",
  },
  postgresEngine: {
    kind: "string",
    default: "ec2",
    range: { oneOf: ["ec2", "rds"] },
    description: `ec2: PostgreSQL 15 on its own host, pgBackRest. rds: Amazon RDS for PostgreSQL 15 with automatic minor upgrades, Multi-AZ, automated backups with PITR; postgresInstanceType becomes \`db.<type>\`, backupRetentionDays at most ${RDS_MAX_BACKUP_RETENTION_DAYS}; the PgBouncer host collects PostgreSQL's metrics as a pg_monitor role over verify-full, so the same alarms apply.`,
  },
  rdsMultiAz: {
    kind: "boolean",
    default: true,
    description:
      'With postgresEngine "rds", a standby in a second AZ (ignored with "ec2"). The policy pack requires it unless its config sets requireMultiAz to false.',
  },
  proxyInstanceType: {
    kind: "string",
    default: "t3.small",
    description: "Instance type of the nginx reverse proxy.",
  },
  odooInstanceType: {
    kind: "string",
    default: "m6i.xlarge",
    description:
      "Instance type of each Odoo host; workers and memory limits are sized from it (LIMIT-1). Odoo's limits are address-space limits, so a type needs RAM for one worker, the cron and the gevent worker (at least 4 GiB; t3.small is refused). Graviton types (m7g, t4g, …) boot Debian's arm64 AMI.",
  },
  pgbouncerInstanceType: {
    kind: "string",
    default: "t3.small",
    description: "Instance type of the PgBouncer host.",
  },
  postgresInstanceType: {
    kind: "string",
    default: "r6i.large",
    description:
      'Instance type of the PostgreSQL host; shared_buffers and work_mem are sized from it. With postgresEngine "rds", the RDS class `db.<type>` (one of lib/config.ts RDS_POSTGRES_INSTANCE_TYPES).',
  },
  databases: {
    kind: "databaseList",
    default: ["odoo"],
    description:
      'Odoo databases, each in its own transaction pool (POOL-1, POOL-5): a list of one name served at `domain`, or a list of {name, domain} maps, one hostname per database. Names are lower-case PostgreSQL identifiers; "postgres" is reserved for Odoo\'s LISTEN session pool. With several databases Odoo picks the database from the first label of the hostname (dbfilter, ODOO-3), so each hostname is <name>.<parent domain>, every database under the same parent domain, and a name is letters and digits only.',
  },
  postgresDataVolumeGiB: {
    kind: "integer",
    default: 100,
    range: { min: 20, max: 16384 },
    description: "Size of PostgreSQL's encrypted gp3 data volume, which outlives the instance (RDS: allocated storage).",
  },
  odooDataVolumeGiB: {
    kind: "integer",
    default: 50,
    range: { min: 10, max: 16384 },
    description:
      "Size of the encrypted gp3 volume holding Odoo's data_dir (filestore, sessions) on a stack with one Odoo host; it outlives the instance. Ignored with sharedFilestore (EFS).",
  },
  bastionSecurityGroupId: {
    kind: "string",
    unset: "no bastion",
    description: "Security group allowed to reach PostgreSQL on 5432 besides PgBouncer (NET-6).",
  },
  odooInternalCidrs: {
    kind: "stringList",
    default: [],
    description: "Private CIDRs (VPN, office) allowed to reach 8069/8072 besides the proxy (NET-4). Public ranges are refused.",
  },
  alarmEmail: {
    kind: "string",
    unset: "no e-mail subscription",
    description: "E-mail address subscribed to the alarm topic.",
  },
  backupRetentionDays: {
    kind: "integer",
    default: 30,
    range: { min: 7, max: 3650 },
    description: `Days of backups kept (BACKUP-1); at most ${RDS_MAX_BACKUP_RETENTION_DAYS} with postgresEngine "rds".`,
  },
  odoo: {
    kind: "object",
    default: {},
    range: { fields: ODOO_OVERRIDE_FIELDS },
    description:
      "Overrides of the Odoo sizing computed from odooInstanceType (lib/sizing.ts); an override that breaks an invariant is an error.",
  },
  pgbouncer: {
    kind: "object",
    default: {},
    range: { fields: PGBOUNCER_OVERRIDE_FIELDS },
    description: "Overrides of the PgBouncer sizing (lib/sizing.ts); an override that breaks an invariant is an error.",
  },
  postgres: {
    kind: "object",
    default: {},
    range: { fields: POSTGRES_OVERRIDE_FIELDS },
    description: "Overrides of the PostgreSQL limits and timeouts (lib/sizing.ts); an override that breaks an invariant is an error.",
  },
  tags: {
    kind: "object",
    default: {},
    range: { maxEntries: 5 },
    description: "Tags added to every resource (S3 objects carry 10 tags and the stack uses 5); no aws: prefix.",
  },
  httpRedirect: {
    kind: "boolean",
    default: true,
    description:
      "Port 80 on the proxy answers only a permanent redirect to https://<domain> (it proxies nothing, NET-3); false closes port 80.",
  },
  mail: {
    kind: "object",
    unset: "Odoo sends no mail and no SMTP egress is open",
    range: { fields: MAIL_FIELDS },
    description: `Outbound mail: {host, port, user, passwordParameter, from}. port is ${MAIL_FIELD_DEFAULTS.port} (default), ${SMTP_EGRESS_PORTS.filter((p) => p !== MAIL_FIELD_DEFAULTS.port).join(" or ")} (STARTTLS; Odoo's odoo.conf SMTP has no implicit TLS, so not 465). passwordParameter names an SSM SecureString you created; without it the stack generates one at /odoo-stack/<stack>/mail/smtp-password. The Odoo hosts may then reach exactly that port outside the VPC.`,
  },
  odooOptions: {
    kind: "object",
    default: {},
    description:
      "Extra odoo.conf options, allowlisted per Odoo version (e.g. log_level, smtp_server). Checklist keys (proxy_mode, list_db, dbfilter, limits, workers, …) are refused; a secret is an `{{ssm:/path}}` reference to a parameter you created, checked at preview. With mail set, the smtp_* keys come from it.",
  },
  internalCaGeneration: {
    kind: "integer",
    default: 1,
    range: { min: 1, max: 99 },
    description:
      "The internal CA generation that signs the hosts' certificates (TLS-2, TLS-4). A CA is never re-issued in place: rotating it means a new generation, trusted beside the old one before it signs anything (internalCaNext), so no TLS connection between two hosts fails at any step (procedure rotate-internal-ca).",
  },
  internalCaNext: {
    kind: "string",
    default: "none",
    range: { oneOf: ["none", "trusted", "issuing"] },
    description:
      "Rotating the internal CA to generation internalCaGeneration + 1: none (no rotation), trusted (the next CA exists and every host trusts it beside the current one), issuing (the next CA signs every host certificate; both still trusted). The rotation ends with internalCaGeneration raised by one and this back to none, which drops the old CA.",
  },
  passwordRotation: {
    kind: "object",
    default: {},
    range: { fields: ROTATABLE_PASSWORD_NAMES },
    description: `Keepers of the generated passwords (AUTH-4): {${ROTATABLE_PASSWORD_NAMES.join(", ")}} each a date YYYY-MM-DD. A new date generates that password anew at the next pulumi up; then run \`odoo-stack rotate <name>\` (tools/odoo-stack.ts), which applies it on the hosts in the proven order. The backup cipher pass is never rotated.`,
  },
} as const satisfies Readonly<Record<string, SettingSpec>>;

export type SettingKey = keyof typeof SETTINGS;
export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

/** The spec of `key`, widened to SettingSpec for code that reads any key. */
export const specOf = (key: SettingKey): SettingSpec => SETTINGS[key];

/** Keys with a default value (what Pulumi.yaml declares as `default`). */
type StaticDefaultKey = { [K in SettingKey]: (typeof SETTINGS)[K] extends { readonly default: unknown } ? K : never }[SettingKey];
export type StaticDefaults = { readonly [K in StaticDefaultKey]: (typeof SETTINGS)[K]["default"] };

export const STATIC_DEFAULTS = Object.fromEntries(
  SETTING_KEYS.filter((k) => specOf(k).default !== undefined).map((k) => [k, specOf(k).default]),
) as StaticDefaults;

/**
 * True when the key has no value of its own by default (derived or unset): for such a key the
 * empty value of its kind ("", [], {}) means "unset", which is what Pulumi.yaml declares as its
 * default so the CLI does not require it (see tools/settings-docs.ts).
 */
export const isOptionalWithoutDefault = (spec: SettingSpec): boolean => spec.required !== true && spec.default === undefined;

/** The range as text: "2 to 6", "single or perAz", "/16 to /24", … (markdown when `md`). */
export function rangeText(range: SettingRange | undefined, md = false): string {
  if (range === undefined) return "";
  const code = (s: string) => (md ? `\`${s}\`` : s);
  const list = (xs: readonly string[], last: string) =>
    xs.length === 1 ? xs[0] : `${xs.slice(0, -1).join(", ")} ${last} ${xs[xs.length - 1]}`;
  if ("min" in range) return `${range.min} to ${range.max}`;
  if ("oneOf" in range) return list(range.oneOf.map(code), "or");
  if ("prefix" in range) {
    return range.prefix.min === undefined ? `/${range.prefix.max} or larger` : `/${range.prefix.min} to /${range.prefix.max}`;
  }
  if ("maxEntries" in range) return `at most ${range.maxEntries} entries`;
  return `keys ${list(range.fields.map(code), "and")}`;
}
