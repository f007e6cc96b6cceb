// The stack's settings: read from Pulumi config, validated as a whole, defaults resolved once.
// parseSettings() is pure: it takes the raw config map (key → JSON value) and the instance
// specs, and either returns settings or throws ConfigError listing every problem at once
// (DESIGN principle 4) — before index.ts registers a single resource.
import { cidrSize, contains, formatCidr, isPrivate, overlaps, parseCidr, subnet, type Cidr } from "./cidr";
import type { InstanceSpec } from "./instance-types";
import { SMTP_EGRESS_PORTS } from "./ports";
import { checkPasswordRotation, PASSWORD_ROTATION_KEY, type PasswordRotation } from "./rotation";
import { problemsMessage } from "./problems";
import { isSecretRef, isSecretRefPath, scanSecretRefs } from "./secret-ref";
import {
  isOptionalWithoutDefault,
  MAIL_FIELD_DEFAULTS,
  RDS_MAX_BACKUP_RETENTION_DAYS,
  SETTING_KEYS,
  SETTINGS,
  specOf,
  STATIC_DEFAULTS,
  TLS_FIELD_DEFAULTS,
  type SettingKey,
} from "./settings";
import {
  checkSizing,
  computeSizing,
  DEFAULT_MAX_CRON_THREADS,
  odooHostTooSmall,
  type OdooSizingOverrides,
  type PgbouncerSizingOverrides,
  type PostgresSizingOverrides,
  type Sizing,
} from "./sizing";

export const PROJECT = "odoo-stack";
export { RDS_MAX_BACKUP_RETENTION_DAYS, SETTINGS, type SettingKey };
export const SUPPORTED_ODOO_VERSIONS = SETTINGS.odooVersion.range.oneOf;
export type OdooVersion = (typeof SUPPORTED_ODOO_VERSIONS)[number];

export type TlsSettings =
  | { readonly mode: "acme"; readonly email: string; readonly hostedZoneId: string; readonly staging: boolean }
  | { readonly mode: "imported"; readonly certificateParameter: string; readonly privateKeyParameter: string };

/** Where PostgreSQL runs: an EC2 host the stack configures, or Amazon RDS (issue 8). */
export const POSTGRES_ENGINES = SETTINGS.postgresEngine.range.oneOf;
export type PostgresEngine = (typeof POSTGRES_ENGINES)[number];

/**
 * RDS instance classes (db.<type>) offered for PostgreSQL 15 that postgresInstanceType may name;
 * the class's vCPU and memory are the EC2 type's, so sizing reads the same spec table.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.Support.html
 */
export const RDS_POSTGRES_INSTANCE_TYPES: readonly string[] = [
  "m5.large",
  "m5.xlarge",
  "m5.2xlarge",
  "m5.4xlarge",
  "m5.8xlarge",
  "m6i.large",
  "m6i.xlarge",
  "m6i.2xlarge",
  "m6i.4xlarge",
  "m6i.8xlarge",
  "m7i.large",
  "m7i.xlarge",
  "m7i.2xlarge",
  "m7i.4xlarge",
  "m7i.8xlarge",
  "r5.large",
  "r5.xlarge",
  "r5.2xlarge",
  "r5.4xlarge",
  "r5.8xlarge",
  "r6i.large",
  "r6i.xlarge",
  "r6i.2xlarge",
  "r6i.4xlarge",
  "r6i.8xlarge",
  "r7i.large",
  "r7i.xlarge",
  "r7i.2xlarge",
  "r7i.4xlarge",
  "r7i.8xlarge",
  "t3.medium",
  "t3.large",
  "t3.xlarge",
  "t3.2xlarge",
];

/**
 * Outbound mail (issue 12 item 5): Odoo's SMTP settings in odoo.conf, and exactly that egress
 * in the Odoo hosts' security group.
 */
export interface MailSettings {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /**
   * The SSM parameter holding the SMTP password: one the operator created, or (absent from the
   * config) one the stack generates at model.parameters.mailPassword.
   */
  readonly passwordParameter?: string;
  /** Optional. Odoo's email_from default. */
  readonly from?: string;
}

/** The custom addons artifact (issue 12 item 7): an S3 object the operator owns, and its sha256. */
export interface OdooAddonsSettings {
  readonly bucket: string;
  readonly key: string;
  readonly sha256: string;
}

/** The Debian package version every Odoo host installs: nightly.odoo.com's `<series>.<YYYYMMDD>`. */
export const odooPackageVersion = (s: { readonly odooVersion: string; readonly odooBuild: string }): string =>
  `${s.odooVersion}.${s.odooBuild}`;

/**
 * SMTP ports odoo.conf can use. Odoo 17 speaks STARTTLS only from odoo.conf
 * (odoo/addons/base/models/ir_mail_server.py: smtp_ssl => 'starttls'), so 465 (implicit TLS)
 * needs a mail server record in the database instead.
 */
export const MAIL_PORTS: readonly number[] = SMTP_EGRESS_PORTS;
export const MAIL_DEFAULT_PORT: number = MAIL_FIELD_DEFAULTS.port;

export interface InstanceTypes {
  readonly proxy: string;
  readonly odoo: string;
  readonly pgbouncer: string;
  readonly postgres: string;
}

/** The config key naming each role's instance type. */
export const INSTANCE_TYPE_KEYS = {
  proxy: "proxyInstanceType",
  odoo: "odooInstanceType",
  pgbouncer: "pgbouncerInstanceType",
  postgres: "postgresInstanceType",
} as const satisfies Record<keyof InstanceTypes, SettingKey>;

/** The sizing override maps and the lib/sizing.ts interface each is typed from. */
interface OverrideShapes {
  readonly odoo: OdooSizingOverrides;
  readonly pgbouncer: PgbouncerSizingOverrides;
  readonly postgres: PostgresSizingOverrides;
}
type OverrideKey = keyof OverrideShapes;

/**
 * The TypeScript type of each "object" setting: the table states the kind, TypeScript needs the
 * shape. A new object key needs its entry here (the check below fails the build otherwise).
 */
interface ObjectShapes extends OverrideShapes {
  readonly tls: TlsSettings;
  readonly tags: Readonly<Record<string, string>>;
  readonly odooOptions: Readonly<Record<string, string | number | boolean>>;
  readonly mail: MailSettings;
  readonly odooAddons: OdooAddonsSettings;
  readonly passwordRotation: PasswordRotation;
}
type ObjectKey = { [K in SettingKey]: (typeof SETTINGS)[K]["kind"] extends "object" ? K : never }[SettingKey];
// Compile-time: ObjectShapes names exactly the object-kind keys of the table.
const objectShapesComplete: [ObjectKey, keyof ObjectShapes] extends [keyof ObjectShapes, ObjectKey] ? true : never = true;
void objectShapesComplete;

/** The resolved value of a key, from its kind (and its `oneOf` range, for strings). */
type ValueOf<K extends SettingKey> = K extends keyof ObjectShapes
  ? ObjectShapes[K]
  : (typeof SETTINGS)[K] extends { readonly range: { readonly oneOf: readonly (infer V)[] } }
    ? V
    : {
        string: string;
        integer: number;
        boolean: boolean;
        stringList: readonly string[];
        databaseList: readonly string[];
        object: never;
      }[(typeof SETTINGS)[K]["kind"]];

/** Keys that stay absent from the settings when unset (no default, nothing derived). */
type AbsentKey = { [K in SettingKey]: (typeof SETTINGS)[K] extends { readonly unset: string } ? K : never }[SettingKey];

/** Keys the settings group rather than carry as they are: instance types and sizing overrides. */
type GroupedKey = (typeof INSTANCE_TYPE_KEYS)[keyof InstanceTypes] | OverrideKey;

/**
 * Validated settings of one stack, every default resolved. Each key of lib/settings.ts SETTINGS
 * appears as itself (typed from its kind; absent when its `unset` applies), except the instance
 * types (grouped in `instanceTypes`) and the sizing overrides (in `overrides`).
 */
export type StackSettings = {
  readonly [K in Exclude<SettingKey, GroupedKey | AbsentKey>]: ValueOf<K>;
} & {
  readonly [K in Exclude<AbsentKey, GroupedKey>]?: ValueOf<K>;
} & {
  readonly region: string;
  readonly instanceTypes: InstanceTypes;
  readonly sizing: Sizing;
  readonly overrides: { readonly [K in OverrideKey]: ValueOf<K> };
  /**
   * Derived from odooOptions, not a config key: the SSM parameters the operator created that
   * odooOptions reference ({{ssm:/path}}), sorted; the Odoo hosts may read them, and the program
   * checks at preview that each exists.
   */
  readonly odooOptionParameters: readonly string[];
  /**
   * Derived from databases (and domain): each database with the public hostname that serves it,
   * in the order of the stack file; the first one's hostname is `domain`.
   */
  readonly sites: readonly Site[];
  /**
   * Derived from databases, not a config key: Odoo's dbfilter (ODOO-3). Absent with one database
   * (db_name alone restricts Odoo to it); with several, dbfilterFor(databases).
   */
  readonly dbfilter?: string;
};

/** A database and the one public hostname that serves it (issue 16). */
export interface Site {
  readonly database: string;
  readonly hostname: string;
}

/**
 * Odoo's dbfilter for several databases, each served at <name>.<parent domain> (ODOO-3).
 * Odoo 17 (odoo/http.py db_filter L357-373) replaces %d with the first label of the request's
 * host, which under proxy_mode is X-Forwarded-Host (http.py L2389, werkzeug ProxyFix), after
 * dropping a leading "www.", and keeps the databases the pattern re.match()es. `^%d$` alone
 * admits any database of the role whose name is the label; the lookahead also admits only the
 * stack's own databases, so the filter admits exactly one of them per hostname and never a
 * database the stack does not declare. Names are letters and digits only (validated), so they
 * need no escaping; they are escaped anyway.
 */
export function dbfilterFor(databases: readonly string[]): string {
  const names = [...databases].sort().map((d) => d.replace(/[^a-z0-9]/g, (c) => `\\${c}`));
  return `^(?=(?:${names.join("|")})$)%d$`;
}

/**
 * Defaults, each stated once in lib/settings.ts: every key's static default, plus the instance
 * types grouped by role and the defaults inside `tls`.
 */
export const DEFAULTS = {
  ...STATIC_DEFAULTS,
  instanceTypes: {
    proxy: STATIC_DEFAULTS.proxyInstanceType,
    odoo: STATIC_DEFAULTS.odooInstanceType,
    pgbouncer: STATIC_DEFAULTS.pgbouncerInstanceType,
    postgres: STATIC_DEFAULTS.postgresInstanceType,
  },
  tlsMode: TLS_FIELD_DEFAULTS.mode,
  acmeStaging: TLS_FIELD_DEFAULTS.staging,
} as const;

/** Every key the config may hold (without the "odoo-stack:" namespace). */
export const CONFIG_KEYS: readonly SettingKey[] = SETTING_KEYS;

const OVERRIDE_KEYS = {
  odoo: SETTINGS.odoo.range.fields,
  pgbouncer: SETTINGS.pgbouncer.range.fields,
  postgres: SETTINGS.postgres.range.fields,
} as const;

export interface ConfigProblem {
  readonly key: string;
  readonly value: unknown;
  readonly fix: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(formatProblems(problems));
    this.name = "ConfigError";
  }
}

/** A real calendar day YYYYMMDD from 2017 (Odoo's nightly deb repository) to 2099. */
export function isBuildDate(text: string): boolean {
  const m = /^(20[1-9]\d)(\d\d)(\d\d)$/.exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return y >= 2017 && date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

const S3_URI = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/([A-Za-z0-9!_.*'()/-]{1,1024})$/;

/** odooAddons: {s3Uri, sha256}; undefined when unset. Every problem goes to `add`. */
export function parseOdooAddons(raw: unknown, add: (key: string, value: unknown, fix: string) => void): OdooAddonsSettings | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    add("odooAddons", raw, "must be a map {s3Uri, sha256}");
    return undefined;
  }
  const m = raw as Record<string, unknown>;
  const known = SETTINGS.odooAddons.range.fields;
  for (const k of Object.keys(m))
    if (!known.includes(k)) add(`odooAddons.${k}`, m[k], `is not an odooAddons setting; allowed: ${known.join(", ")}`);
  const uri = typeof m.s3Uri === "string" ? S3_URI.exec(m.s3Uri.trim()) : null;
  const key = uri?.[2];
  if (!uri || key === undefined || key.endsWith("/") || key.includes("//") || !/\.(tar\.gz|tgz)$/.test(key)) {
    add(
      "odooAddons.s3Uri",
      m.s3Uri,
      "must be the S3 URI of one .tar.gz object in a bucket you own, e.g. s3://my-artifacts/odoo/addons-2024-12-01.tar.gz",
    );
  }
  const sha = typeof m.sha256 === "string" ? m.sha256.trim().toLowerCase() : "";
  if (!/^[0-9a-f]{64}$/.test(sha))
    add("odooAddons.sha256", m.sha256, "must be the artifact's sha256 in hex (64 digits: sha256sum addons.tar.gz)");
  return uri && key !== undefined ? { bucket: uri[1], key, sha256: sha } : undefined;
}

/** Keys whose value is a secret: a rejected value under such a key is never echoed back. */
const SECRET_KEY = /(pass(word|wd)?|secret|token|credential|private[_-]?key|api[_-]?key)$/i;

/**
 * The value as a problem line shows it: a value under a secret-looking key (smtp_password,
 * mail.password …), at any depth, becomes "[redacted]" unless it is an {{ssm:…}} reference,
 * so a secret typed into the stack file by mistake never reaches a terminal or CI log.
 */
export function displayValue(key: string, value: unknown): unknown {
  const leaf =
    key
      .split(/[.[\]]/)
      .filter(Boolean)
      .pop() ?? key;
  if (SECRET_KEY.test(leaf) && value !== undefined && !(typeof value === "string" && isSecretRef(value))) return "[redacted]";
  if (Array.isArray(value)) return value.map((v, i) => displayValue(`${key}[${i}]`, v));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, displayValue(`${key}.${k}`, v)]));
  }
  return value;
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  const lines = problems.map((p) => `${PROJECT}:${p.key} = ${JSON.stringify(displayValue(p.key, p.value))}: ${p.fix}`);
  return problemsMessage(PROJECT, lines, { noun: "configuration problem", note: "nothing was created" });
}

/** Raw config: key (no namespace) → value as Pulumi gives it (strings; objects as JSON text or parsed). */
export type RawConfig = Readonly<Record<string, unknown>>;

/** Looks up instance specs by type name; undefined when the type does not exist. */
export type InstanceSpecLookup = (instanceType: string) => InstanceSpec | undefined;

// A DNS hostname: labels of 1–63 letters, digits and inner hyphens, at least two labels.
const HOSTNAME = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/;
const DB_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** A database name that is also a DNS label (no underscore): what %d can name (issue 16). */
const DB_LABEL = /^[a-z][a-z0-9]{0,62}$/;
const RESERVED_DB_NAMES = new Set(["postgres", "template0", "template1", "pgbouncer"]);
const MAX_USER_TAGS = SETTINGS.tags.range.maxEntries;
const VPC_PREFIX = SETTINGS.vpcCidr.range.prefix;

/** Keys holding a whole number with a range and a default. */
type IntegerKey = {
  [K in SettingKey]: (typeof SETTINGS)[K] extends {
    readonly kind: "integer";
    readonly default: number;
    readonly range: { readonly min: number };
  }
    ? K
    : never;
}[SettingKey];
/** Keys holding one of a list of strings. */
type OneOfKey = {
  [K in SettingKey]: (typeof SETTINGS)[K] extends { readonly range: { readonly oneOf: readonly string[] } } ? K : never;
}[SettingKey];
const oneOf = (key: OneOfKey, v: unknown): boolean => (SETTINGS[key].range.oneOf as readonly unknown[]).includes(v);

/** "", [] and {}: what Pulumi.yaml declares as the default of a key that has none of its own. */
export const isEmptyValue = (v: unknown): boolean =>
  v === "" ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);
const SG_ID = /^sg-[0-9a-f]{8,17}$/;
const ZONE_ID = /^Z[A-Z0-9]{1,31}$/;
/** The ids the fix messages show as examples; placeholders, like the documentation names below. */
const EXAMPLE_SG_ID = "sg-0123456789abcdef0";
const EXAMPLE_ZONE_ID = "Z0123456789ABCDEFGHIJ";
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const REGION = /^[a-z]{2}(-gov)?-[a-z]+-\d$/;

/**
 * Validates the raw config and resolves defaults. `specs` resolves instance types (AWS's
 * answer, or the static table). Throws ConfigError with every problem found.
 */
export interface ParseOptions {
  /**
   * What to do with placeholder values (placeholderProblems): "refuse" them, as index.ts does
   * when the program runs under the real engine (lib/run-mode.ts), or "accept" them, as under
   * the offline plan's mocks, where nothing is deployed and the plan warns instead. Optional.
   * Defaults to "accept".
   */
  readonly placeholders?: "refuse" | "accept";
}

// Names reserved for documentation and tests (RFC 2606, RFC 6761): nothing real answers there.
// Let's Encrypt refuses them as contact e-mails too ("contact email has forbidden domain").
const RESERVED_DOMAINS = ["example.com", "example.net", "example.org"];
const RESERVED_TLDS = ["example", "test", "invalid", "localhost"];
const isReservedName = (host: string): boolean => {
  const h = host.trim().toLowerCase().replace(/\.$/, "");
  return RESERVED_DOMAINS.some((d) => h === d || h.endsWith(`.${d}`)) || RESERVED_TLDS.some((t) => h === t || h.endsWith(`.${t}`));
};

/**
 * Values that stand in for real ones — documentation domains (example.com, .test, …), e-mail
 * addresses there, hosted zone ids in AWS's documentation style (…EXAMPLE…), the ids the fix
 * messages show as examples — each with the fix. Pure, on the raw config: the offline plan
 * reports them as warnings, parseSettings refuses them when asked to (a real engine run).
 */
export function placeholderProblems(raw: RawConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const why = "is a placeholder: nothing real answers there";
  const text = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
  let tls: unknown = raw.tls;
  if (typeof tls === "string") {
    try {
      tls = JSON.parse(tls);
    } catch {
      tls = undefined;
    }
  }
  const tlsMap = typeof tls === "object" && tls !== null ? (tls as Record<string, unknown>) : {};
  const domain = text(raw.domain);
  if (domain !== undefined && isReservedName(domain))
    problems.push({
      key: "domain",
      value: domain,
      fix: `${why} (a documentation domain, RFC 2606); set the public hostname users will open, in a zone you own`,
    });
  let databases: unknown = raw.databases;
  if (typeof databases === "string") {
    try {
      databases = JSON.parse(databases);
    } catch {
      databases = undefined;
    }
  }
  if (Array.isArray(databases)) {
    databases.forEach((d, i) => {
      const hostname = typeof d === "object" && d !== null ? text((d as Record<string, unknown>).domain) : undefined;
      if (hostname !== undefined && isReservedName(hostname))
        problems.push({
          key: `databases[${i}].domain`,
          value: hostname,
          fix: `${why} (a documentation domain, RFC 2606); set the public hostname users will open, in a zone you own`,
        });
    });
  }
  const emails = [
    ["tls.email", tlsMap.email, "Let's Encrypt refuses such a contact"],
    ["alarmEmail", raw.alarmEmail, "the alarm topic's subscription confirmation would go nowhere"],
  ] as const;
  for (const [key, value, consequence] of emails) {
    const address = text(value);
    if (address !== undefined && address.includes("@") && isReservedName(address.slice(address.lastIndexOf("@") + 1))) {
      problems.push({ key, value: address, fix: `${why} (a documentation domain; ${consequence}); set an address that reads mail` });
    }
  }
  const zone = text(tlsMap.hostedZoneId);
  if (zone !== undefined && (/EXAMPLE/i.test(zone) || zone === EXAMPLE_ZONE_ID)) {
    problems.push({
      key: "tls.hostedZoneId",
      value: zone,
      fix: `${why} (an example id); set the id of the domain's public hosted zone: aws route53 list-hosted-zones-by-name --dns-name <domain>`,
    });
  }
  const sg = text(raw.bastionSecurityGroupId);
  if (sg === EXAMPLE_SG_ID)
    problems.push({
      key: "bastionSecurityGroupId",
      value: sg,
      fix: `${why} (the example id); set your bastion's security group id, or leave the key unset`,
    });
  return problems;
}

export function parseSettings(raw: RawConfig, region: string, specs: InstanceSpecLookup, options: ParseOptions = {}): StackSettings {
  const problems: ConfigProblem[] = [];
  const add = (key: string, value: unknown, fix: string) => problems.push({ key, value, fix });

  for (const key of Object.keys(raw)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
      add(key, raw[key], `is not a setting of odoo-stack; known keys: ${[...CONFIG_KEYS].sort().join(", ")}`);
    }
  }
  if (!REGION.test(region)) add("aws:region", region, "must be an AWS region such as eu-west-1 (set aws:region)");

  const parsed = (key: SettingKey): unknown => {
    const v = raw[key];
    if (typeof v !== "string") return v;
    const t = v.trim();
    if (t.startsWith("{") || t.startsWith("[")) {
      try {
        return JSON.parse(t);
      } catch {
        add(key, v, "is not valid JSON; write it as a YAML list or map in the stack file");
        return undefined;
      }
    }
    return v;
  };
  // A key without a default of its own is declared in Pulumi.yaml with the empty value of its
  // kind as default (so the CLI does not require it): that value means unset.
  const value = (key: SettingKey): unknown => {
    const v = parsed(key);
    return isOptionalWithoutDefault(specOf(key)) && isEmptyValue(v) ? undefined : v;
  };
  const str = (key: SettingKey, fallback?: string): string | undefined => {
    const v = value(key);
    if (v === undefined) return fallback;
    if (typeof v !== "string" || v.trim() === "") {
      add(key, v, "must be a non-empty string");
      return fallback;
    }
    return v.trim();
  };
  // The default and the range come from the settings table, so what Pulumi.yaml and the README
  // state is what is validated.
  const int = (key: IntegerKey, why = ""): number => {
    const {
      default: fallback,
      range: { min, max },
    } = SETTINGS[key];
    const v = value(key);
    if (v === undefined) return fallback;
    const n = typeof v === "number" ? v : typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      add(key, v, `must be a whole number from ${min} to ${max}${why}`);
      return fallback;
    }
    return n;
  };
  const list = (key: SettingKey, fallback: readonly string[]): string[] => {
    const v = value(key);
    if (v === undefined) return [...fallback];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      add(key, v, "must be a list of strings");
      return [...fallback];
    }
    return v as string[];
  };
  const object = (key: SettingKey): Record<string, unknown> => {
    const v = value(key);
    if (v === undefined) return {};
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      add(key, v, "must be a map");
      return {};
    }
    return v as Record<string, unknown>;
  };
  const overrides = <K extends string>(key: SettingKey, allowed: readonly K[], min = 0): Partial<Record<K, number>> => {
    const o = object(key);
    const out: Partial<Record<K, number>> = {};
    for (const [k, v] of Object.entries(o)) {
      if (!(allowed as readonly string[]).includes(k)) {
        add(`${key}.${k}`, v, `is not a ${key} setting; allowed: ${[...allowed].sort().join(", ")}`);
        continue;
      }
      if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
        add(`${key}.${k}`, v, `must be a whole number ≥ ${min}`);
        continue;
      }
      out[k as K] = v;
    }
    return out;
  };

  // --- names -------------------------------------------------------------------------------
  const internalZone = (str("internalZone", DEFAULTS.internalZone) ?? DEFAULTS.internalZone).toLowerCase();
  if (!HOSTNAME.test(internalZone)) add("internalZone", internalZone, "must be a DNS zone name such as odoo.internal");

  // --- network -----------------------------------------------------------------------------
  const vpcCidrText = str("vpcCidr", DEFAULTS.vpcCidr) ?? DEFAULTS.vpcCidr;
  const vpc = parseCidr(vpcCidrText);
  if (!vpc) add("vpcCidr", vpcCidrText, "must be an IPv4 CIDR with no host bits set, e.g. 10.40.0.0/16");
  else if (!isPrivate(vpc)) add("vpcCidr", vpcCidrText, "must be inside an RFC 1918 range (10/8, 172.16/12, 192.168/16)");
  else if (vpc.prefix < VPC_PREFIX.min || vpc.prefix > VPC_PREFIX.max) {
    add("vpcCidr", vpcCidrText, `must have a prefix from /${VPC_PREFIX.min} to /${VPC_PREFIX.max} (AWS VPC limits, room for subnets)`);
  }

  const azCount = int("availabilityZoneCount", " (at least 2 AZs for the subnets; at most the region's)");
  const natGateways = str("natGateways", DEFAULTS.natGateways);
  if (!oneOf("natGateways", natGateways))
    add("natGateways", natGateways, `must be ${SETTINGS.natGateways.range.oneOf.map((x) => JSON.stringify(x)).join(" or ")}`);

  const defaultSubnets = (offset: number): string[] =>
    vpc && vpc.prefix <= 22 ? Array.from({ length: azCount }, (_, i) => formatCidr(subnet(vpc, vpc.prefix + 4, offset + i))) : [];
  const publicSubnetCidrs = list("publicSubnetCidrs", defaultSubnets(0));
  const privateSubnetCidrs = list("privateSubnetCidrs", defaultSubnets(8));
  const parsedSubnets: { key: string; text: string; cidr: Cidr }[] = [];
  for (const [key, cidrs] of [
    ["publicSubnetCidrs", publicSubnetCidrs],
    ["privateSubnetCidrs", privateSubnetCidrs],
  ] as const) {
    if (cidrs.length !== azCount) {
      add(key, cidrs, `must list exactly one CIDR per availability zone (availabilityZoneCount = ${azCount})`);
    }
    cidrs.forEach((text, i) => {
      const c = parseCidr(text);
      if (!c) add(`${key}[${i}]`, text, "must be an IPv4 CIDR with no host bits set, e.g. 10.40.16.0/20");
      else if (vpc && !contains(vpc, c)) add(`${key}[${i}]`, text, `must lie inside vpcCidr ${vpcCidrText}`);
      else if (c.prefix > SETTINGS[key].range.prefix.max) {
        add(
          `${key}[${i}]`,
          text,
          `must be /${SETTINGS[key].range.prefix.max} or larger: hosts sit at fixed offsets (.10 to .40) so renderers know their addresses`,
        );
      } else parsedSubnets.push({ key: `${key}[${i}]`, text, cidr: c });
    });
  }
  for (let i = 0; i < parsedSubnets.length; i++) {
    for (let j = i + 1; j < parsedSubnets.length; j++) {
      if (overlaps(parsedSubnets[i].cidr, parsedSubnets[j].cidr)) {
        add(
          parsedSubnets[j].key,
          parsedSubnets[j].text,
          `overlaps ${parsedSubnets[i].key} (${parsedSubnets[i].text}); subnets must be disjoint`,
        );
      }
    }
  }
  if (!vpc && publicSubnetCidrs.length === 0) add("vpcCidr", vpcCidrText, "is needed to derive default subnets");

  const odooInternalCidrs = list("odooInternalCidrs", DEFAULTS.odooInternalCidrs);
  odooInternalCidrs.forEach((text, i) => {
    const c = parseCidr(text);
    if (!c) add(`odooInternalCidrs[${i}]`, text, "must be an IPv4 CIDR with no host bits set");
    else if (!isPrivate(c) || cidrSize(c) > 2 ** 24) {
      add(
        `odooInternalCidrs[${i}]`,
        text,
        "must be a private (RFC 1918) range: 8069/8072 accept only the proxy and the internal network (NET-4); public users come through the proxy's https:// hostnames",
      );
    }
  });

  const bastion = str("bastionSecurityGroupId");
  if (bastion !== undefined && !SG_ID.test(bastion))
    add("bastionSecurityGroupId", bastion, `must be a security group id such as ${EXAMPLE_SG_ID} (NET-6)`);

  // --- Odoo --------------------------------------------------------------------------------
  // An unquoted 17.0 is a YAML number: the CLI hands the program "17" (its JSON form).
  const odooVersionValue = value("odooVersion");
  const odooVersion =
    typeof odooVersionValue === "number" ? String(odooVersionValue) : (str("odooVersion", DEFAULTS.odooVersion) ?? DEFAULTS.odooVersion);
  if (!oneOf("odooVersion", odooVersion)) {
    const meant = /^\d+(\.\d+)?$/.test(odooVersion) ? SUPPORTED_ODOO_VERSIONS.find((v) => Number(v) === Number(odooVersion)) : undefined;
    const hint =
      meant === undefined
        ? ""
        : `; YAML reads an unquoted ${meant} as the number ${Number(meant)}: quote it in the stack file, odooVersion: "${meant}"`;
    add("odooVersion", odooVersionValue ?? odooVersion, `must be one of ${SUPPORTED_ODOO_VERSIONS.join(", ")}${hint}`);
  }
  // A nightly build date; YAML reads an unquoted 20241201 as a number, which is accepted as its text.
  const odooBuildValue = value("odooBuild");
  const odooBuild =
    typeof odooBuildValue === "number" ? String(odooBuildValue) : (str("odooBuild", DEFAULTS.odooBuild) ?? DEFAULTS.odooBuild);
  if (!isBuildDate(odooBuild)) {
    add(
      "odooBuild",
      odooBuildValue ?? odooBuild,
      `must be a nightly build date YYYYMMDD (a day of nightly.odoo.com/${odooVersion}/nightly/deb/), e.g. odooBuild: "${DEFAULTS.odooBuild}"`,
    );
  }
  const odooAddons = parseOdooAddons(value("odooAddons"), add);
  const odooInstances = int("odooInstances");
  const bool = (key: SettingKey, fallback: boolean): boolean => {
    const v = value(key);
    if (v === undefined) return fallback;
    if (v === true || v === "true") return true;
    if (v === false || v === "false") return false;
    add(key, v, "must be true or false");
    return fallback;
  };
  // Default: shared as soon as there is a second host; one host keeps its data_dir on its root
  // volume unless asked (EFS costs more and adds a network hop to every attachment read).
  const sharedFilestore = bool("sharedFilestore", odooInstances > 1);
  if (!sharedFilestore && odooInstances > 1) {
    add(
      "sharedFilestore",
      false,
      `must be true with odooInstances = ${odooInstances}: each Odoo host would keep its own filestore and sessions, so attachments uploaded through one host 404 on the others and users are logged out when the proxy picks another host`,
    );
  }
  const postgresEngine = str("postgresEngine", DEFAULTS.postgresEngine) ?? DEFAULTS.postgresEngine;
  if (!oneOf("postgresEngine", postgresEngine)) {
    add("postgresEngine", postgresEngine, 'must be "ec2" (PostgreSQL on its own EC2 host) or "rds" (Amazon RDS for PostgreSQL, Multi-AZ)');
  }
  const rdsMultiAz = bool("rdsMultiAz", DEFAULTS.rdsMultiAz);
  // Read, and ignored, with the ec2 engine: the CLI fills Pulumi.yaml's default into every stack.

  // Issue 16: a list of one name served at `domain`, or {name, domain} maps, one per database.
  const databasesValue = value("databases");
  const databaseEntries: { name: string; hostname?: string; key: string }[] = [];
  if (databasesValue === undefined) DEFAULTS.databases.forEach((name, i) => databaseEntries.push({ name, key: `databases[${i}]` }));
  else if (!Array.isArray(databasesValue))
    add(
      "databases",
      databasesValue,
      "must be a list: [erp] with domain set, or [{name: erp, domain: erp.example.com}, …], one hostname per database",
    );
  else {
    const objectForm = databasesValue.some((d) => typeof d === "object" && d !== null);
    databasesValue.forEach((d, i) => {
      const key = `databases[${i}]`;
      if (typeof d === "string" && !objectForm) databaseEntries.push({ name: d, key });
      else if (typeof d === "object" && d !== null && !Array.isArray(d)) {
        const entry = d as Record<string, unknown>;
        for (const k of Object.keys(entry))
          if (k !== "name" && k !== "domain") add(`${key}.${k}`, entry[k], "is not a database setting; allowed: name, domain");
        if (typeof entry.name !== "string") add(`${key}.name`, entry.name, "is required: the database's name, e.g. erp");
        if (typeof entry.domain !== "string")
          add(`${key}.domain`, entry.domain, "is required: the public hostname that serves this database, e.g. erp.example.com");
        if (typeof entry.name === "string") {
          databaseEntries.push({
            name: entry.name,
            key: `${key}.name`,
            ...(typeof entry.domain === "string" ? { hostname: entry.domain.trim().toLowerCase() } : {}),
          });
        }
      } else add(key, d, objectForm ? "must be a map {name, domain} like the other entries" : "must be a database name");
    });
    if (databasesValue.length === 0) add("databases", databasesValue, "must name at least one Odoo database");
  }
  const databases = databaseEntries.map((e) => e.name);
  const seen = new Set<string>();
  for (const { name: db, key } of databaseEntries) {
    if (!DB_NAME.test(db))
      add(
        key,
        db,
        "must be a lower-case PostgreSQL identifier: letters, digits, underscores, not starting with a digit, at most 63 characters",
      );
    else if (RESERVED_DB_NAMES.has(db))
      add(key, db, "is reserved (postgres carries Odoo's LISTEN session pool; pgbouncer is the admin console); pick another name");
    if (seen.has(db)) add(key, db, "is listed twice");
    seen.add(db);
  }
  const objectForm = databaseEntries.some((e) => e.hostname !== undefined);
  const domainValue = (str("domain") ?? "").toLowerCase();
  if (objectForm && domainValue)
    add("domain", domainValue, "must be left out when databases names each database's domain ({name, domain}); each hostname is set there");
  if (!objectForm && !domainValue && databaseEntries.length > 0)
    add(
      "domain",
      raw["domain"],
      "is required: the public hostname of Odoo, e.g. erp.example.com (or give each database its own: databases: [{name: erp, domain: erp.example.com}])",
    );
  if (!objectForm && databaseEntries.length > 1) {
    const parent = domainValue.split(".").slice(1).join(".") || "example.com";
    add(
      "databases",
      databases,
      `must name each database's hostname when there are several (one domain serves one database): databases: [${databases.map((d) => `{name: ${d.replace(/[^a-z0-9]/g, "")}, domain: ${d.replace(/[^a-z0-9]/g, "")}.${parent}}`).join(", ")}]; Odoo picks the database from the hostname's first label, so a name is letters and digits only`,
    );
  }
  const sites: Site[] = databaseEntries.map((e) => ({ database: e.name, hostname: e.hostname ?? domainValue }));
  const domain = sites[0]?.hostname ?? domainValue;
  const hostSeen = new Map<string, string>();
  for (const [i, e] of databaseEntries.entries()) {
    const hostname = e.hostname ?? domainValue;
    const key = e.hostname === undefined ? "domain" : `databases[${i}].domain`;
    if (!hostname) continue;
    if (!HOSTNAME.test(hostname)) {
      add(key, hostname, "must be a DNS hostname such as erp.example.com (letters, digits, hyphens, dots)");
      continue;
    }
    const other = hostSeen.get(hostname);
    if (other !== undefined && objectForm)
      add(key, hostname, `is already the hostname of database ${other}: each database needs its own hostname`);
    hostSeen.set(hostname, e.name);
  }
  // Several databases: Odoo 17 picks the database from the first label of the hostname (%d,
  // dbfilterFor), so the hostname is <name>.<parent>. One parent for all: the certificate's
  // names must all lie in the one Route 53 zone DNS-01 writes (tls.hostedZoneId).
  if (databaseEntries.length > 1 && objectForm) {
    const parentOf = (h: string) => h.split(".").slice(1).join(".");
    const parent = parentOf(sites[0].hostname);
    databaseEntries.forEach((e, i) => {
      const hostname = e.hostname;
      if (hostname === undefined || !HOSTNAME.test(hostname) || !DB_NAME.test(e.name)) return;
      const label = e.name.replace(/[^a-z0-9]/g, "");
      const use = `${label}.${parentOf(hostname) || parent}`;
      if (!DB_LABEL.test(e.name)) {
        add(
          `databases[${i}].name`,
          e.name,
          `cannot be a hostname label (only letters and digits are both a PostgreSQL name and a DNS label), and with several databases Odoo 17 picks the database from the hostname's first label (dbfilter %d, odoo/http.py db_filter); rename the database to ${label} and serve it at ${use}`,
        );
      } else if (hostname.startsWith("www.")) {
        add(
          `databases[${i}].domain`,
          hostname,
          `must not start with www.: Odoo 17 drops a leading www. before it reads the database from the first label (odoo/http.py db_filter); use ${use}`,
        );
      } else if (hostname.split(".")[0] !== e.name) {
        add(
          `databases[${i}].domain`,
          hostname,
          `must be ${use}: with several databases Odoo 17 picks the database from the hostname's first label (dbfilter %d, odoo/http.py db_filter), so the first label is the database's name`,
        );
      } else if (parentOf(hostname) !== parent) {
        add(
          `databases[${i}].domain`,
          hostname,
          `must be under ${parent} like ${sites[0].hostname}: every hostname is <database>.${parent}, in the one public zone the certificate is issued for; use ${e.name}.${parent}`,
        );
      }
    });
  }
  // ODOO-3: with one database, db_name alone restricts Odoo to it and no filter is written (a
  // filter makes every request without a session open a connection to database `postgres`:
  // templates/odoo-conf.ts); with several, the filter picks one per request from the hostname.
  const dbfilter = databases.length > 1 ? dbfilterFor(databases) : undefined;

  // --- instances and sizing -------------------------------------------------------------------
  const instanceTypes: InstanceTypes = {
    proxy: str("proxyInstanceType", DEFAULTS.instanceTypes.proxy) ?? DEFAULTS.instanceTypes.proxy,
    odoo: str("odooInstanceType", DEFAULTS.instanceTypes.odoo) ?? DEFAULTS.instanceTypes.odoo,
    pgbouncer: str("pgbouncerInstanceType", DEFAULTS.instanceTypes.pgbouncer) ?? DEFAULTS.instanceTypes.pgbouncer,
    postgres: str("postgresInstanceType", DEFAULTS.instanceTypes.postgres) ?? DEFAULTS.instanceTypes.postgres,
  };
  const resolved: Partial<Record<keyof InstanceTypes, InstanceSpec>> = {};
  for (const role of Object.keys(instanceTypes) as (keyof InstanceTypes)[]) {
    const spec = specs(instanceTypes[role]);
    if (!spec)
      add(
        `${role}InstanceType`,
        instanceTypes[role],
        "is not an EC2 instance type this region offers; use e.g. m6i.xlarge (Odoo), r6i.large (PostgreSQL), t3.small (proxy, PgBouncer)",
      );
    else resolved[role] = spec;
  }
  if (postgresEngine === "rds" && !RDS_POSTGRES_INSTANCE_TYPES.includes(instanceTypes.postgres)) {
    add(
      "postgresInstanceType",
      instanceTypes.postgres,
      `is not an RDS for PostgreSQL 15 class odoo-stack knows (used as db.${instanceTypes.postgres}); pick one of ${RDS_POSTGRES_INSTANCE_TYPES.join(", ")}`,
    );
  }
  if (resolved.postgres && resolved.postgres.memoryMiB < 2048) {
    add("postgresInstanceType", instanceTypes.postgres, "must have at least 2 GiB of memory for PostgreSQL; use e.g. r6i.large");
  }

  const postgresDataVolumeGiB = int("postgresDataVolumeGiB");
  const odooDataVolumeGiB = int("odooDataVolumeGiB");
  const internalCaGeneration = int("internalCaGeneration", " (TLS-4)");
  const internalCaNext = str("internalCaNext", DEFAULTS.internalCaNext) ?? DEFAULTS.internalCaNext;
  if (!oneOf("internalCaNext", internalCaNext)) {
    add(
      "internalCaNext",
      internalCaNext,
      'must be "none", "trusted" (every host trusts the next CA beside the current one) or "issuing" (the next CA signs the host certificates; both trusted): see procedure rotate-internal-ca',
    );
  }
  const backupRetentionDays = int("backupRetentionDays", " (BACKUP-1)");
  if (postgresEngine === "rds" && backupRetentionDays > RDS_MAX_BACKUP_RETENTION_DAYS) {
    add(
      "backupRetentionDays",
      backupRetentionDays,
      `must be at most ${RDS_MAX_BACKUP_RETENTION_DAYS} with postgresEngine = "rds": RDS keeps automated backups (PITR) for at most ${RDS_MAX_BACKUP_RETENTION_DAYS} days (BACKUP-1)`,
    );
  }

  const odooOverrides = overrides("odoo", OVERRIDE_KEYS.odoo);
  const pgbouncerOverrides = overrides("pgbouncer", OVERRIDE_KEYS.pgbouncer);
  const postgresOverrides = overrides("postgres", OVERRIDE_KEYS.postgres);

  // Odoo's memory limits bound address space, not RAM shares: a host too small for one worker
  // plus the cron and gevent workers is refused by name (lib/sizing.ts odooHostTooSmall).
  const odooTooSmall = resolved.odoo && odooHostTooSmall(resolved.odoo, odooOverrides.maxCronThreads ?? DEFAULT_MAX_CRON_THREADS);
  if (odooTooSmall) add("odooInstanceType", instanceTypes.odoo, odooTooSmall);

  let sizing: Sizing | undefined;
  if (resolved.odoo && resolved.postgres) {
    const input = {
      odoo: resolved.odoo,
      postgres: resolved.postgres,
      odooInstances,
      databaseCount: Math.max(1, databases.length),
      odooOverrides,
      pgbouncerOverrides,
      postgresOverrides,
    };
    sizing = computeSizing(input);
    for (const p of checkSizing(sizing, input)) add(p.key, p.value, p.message);
  }

  // --- TLS, alarms, tags ----------------------------------------------------------------------
  const tlsRaw = object("tls");
  const tlsMode = tlsRaw.mode ?? DEFAULTS.tlsMode;
  let tls: TlsSettings | undefined;
  const tlsKnown =
    tlsMode === "acme" ? ["mode", "email", "hostedZoneId", "staging"] : ["mode", "certificateParameter", "privateKeyParameter"];
  for (const k of Object.keys(tlsRaw))
    if (!tlsKnown.includes(k))
      add(`tls.${k}`, tlsRaw[k], `is not a tls setting for mode ${JSON.stringify(tlsMode)}; allowed: ${tlsKnown.join(", ")}`);
  if (tlsMode === "acme") {
    const email = tlsRaw.email;
    const zone = tlsRaw.hostedZoneId;
    if (typeof email !== "string" || !EMAIL.test(email))
      add("tls.email", email, "is required for ACME: the address Let's Encrypt writes to about expiry");
    if (typeof zone !== "string" || !ZONE_ID.test(zone))
      add(
        "tls.hostedZoneId",
        zone,
        `is required for ACME DNS-01: the Route 53 public hosted zone id of the domain, e.g. ${EXAMPLE_ZONE_ID}`,
      );
    const staging = tlsRaw.staging ?? DEFAULTS.acmeStaging;
    if (typeof staging !== "boolean") add("tls.staging", staging, "must be true or false");
    tls = { mode: "acme", email: String(email), hostedZoneId: String(zone), staging: staging === true };
  } else if (tlsMode === "imported") {
    const cert = tlsRaw.certificateParameter;
    const key = tlsRaw.privateKeyParameter;
    if (typeof cert !== "string" || !isSecretRefPath(cert))
      add("tls.certificateParameter", cert, "must name the SSM parameter holding the PEM chain, e.g. /odoo/prod/tls/fullchain");
    if (typeof key !== "string" || !isSecretRefPath(key))
      add("tls.privateKeyParameter", key, "must name the SecureString SSM parameter holding the PEM key, e.g. /odoo/prod/tls/privkey");
    tls = { mode: "imported", certificateParameter: String(cert), privateKeyParameter: String(key) };
  } else {
    add("tls.mode", tlsMode, 'must be "acme" (Let\'s Encrypt via Route 53 DNS-01) or "imported" (a certificate you keep in SSM)');
  }

  const alarmEmail = str("alarmEmail");
  if (alarmEmail !== undefined && !EMAIL.test(alarmEmail))
    add("alarmEmail", alarmEmail, "must be an e-mail address for the alarm topic (OBS-1)");

  const tagsRaw = object("tags");
  // S3 objects carry at most 10 tags and the stack's own take 5 (components/tags.ts).
  if (Object.keys(tagsRaw).length > MAX_USER_TAGS)
    add("tags", tagsRaw, `must hold at most ${MAX_USER_TAGS} tags: S3 objects allow 10 and odoo-stack uses 5`);
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(tagsRaw)) {
    if (typeof v !== "string") add(`tags.${k}`, v, "must be a string");
    else if (k.toLowerCase().startsWith("aws:")) add(`tags.${k}`, v, "uses the reserved aws: prefix");
    else tags[k] = v;
  }

  const odooOptionsRaw = object("odooOptions");
  const odooOptions: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(odooOptionsRaw)) {
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean")
      add(`odooOptions.${k}`, v, "must be a string, number or boolean");
    else odooOptions[k] = v;
  }

  const httpRedirect = bool("httpRedirect", DEFAULTS.httpRedirect);

  // Outbound mail: host, port, user, and the password as an SSM parameter (never its value).
  const mailRaw = value("mail");
  let mail: MailSettings | undefined;
  if (mailRaw !== undefined) {
    const m = object("mail");
    const known = SETTINGS.mail.range.fields;
    for (const k of Object.keys(m)) {
      if (!known.includes(k)) {
        add(
          `mail.${k}`,
          m[k],
          SECRET_KEY.test(k)
            ? "the SMTP password never goes in the stack file: name the SSM SecureString parameter that holds it as mail.passwordParameter, or leave it out and the stack generates one"
            : `is not a mail setting; allowed: ${known.join(", ")}`,
        );
      }
    }
    const host = typeof m.host === "string" ? m.host.trim().toLowerCase() : "";
    if (!HOSTNAME.test(host)) add("mail.host", m.host, "must be the SMTP server's DNS name, e.g. email-smtp.eu-west-1.amazonaws.com");
    const port = m.port === undefined ? MAIL_DEFAULT_PORT : m.port;
    if (!(MAIL_PORTS as readonly unknown[]).includes(port)) {
      add(
        "mail.port",
        port,
        `must be one of ${MAIL_PORTS.join(", ")} (STARTTLS): Odoo's odoo.conf SMTP settings speak STARTTLS only (odoo/addons/base/models/ir_mail_server.py), so 465 (implicit TLS) needs an outgoing mail server record in Odoo instead`,
      );
    }
    if (typeof m.user !== "string" || m.user.trim() === "" || /[\r\n]/.test(m.user))
      add("mail.user", m.user, "must be the SMTP user name (one line)");
    if (m.passwordParameter !== undefined && (typeof m.passwordParameter !== "string" || !isSecretRefPath(m.passwordParameter))) {
      add(
        "mail.passwordParameter",
        m.passwordParameter,
        "must name an SSM SecureString parameter, e.g. /mail/smtp-password (create it with aws ssm put-parameter --type SecureString)",
      );
    }
    if (m.from !== undefined && (typeof m.from !== "string" || !EMAIL.test(m.from)))
      add("mail.from", m.from, "must be an e-mail address (Odoo's email_from)");
    mail = {
      host,
      port: Number(port),
      user: typeof m.user === "string" ? m.user.trim() : "",
      ...(typeof m.passwordParameter === "string" ? { passwordParameter: m.passwordParameter } : {}),
      ...(typeof m.from === "string" ? { from: m.from } : {}),
    };
    const smtpOptions = Object.keys(odooOptions).filter((k) => k.startsWith("smtp_") || k === "email_from");
    for (const k of smtpOptions)
      add(
        `odooOptions.${k}`,
        odooOptions[k],
        "is set by the mail setting; set it there (mail.host, mail.port, mail.user, mail.passwordParameter, mail.from)",
      );
  }

  // {{ssm:/…}} references in odooOptions name parameters the operator created.
  const odooOptionParameters = [
    ...new Set(
      Object.values(odooOptions)
        .filter((v): v is string => typeof v === "string")
        .flatMap((v) => scanSecretRefs(v).paths),
    ),
  ].sort();

  for (const { hostname } of sites) {
    if (hostname && internalZone && (hostname === internalZone || hostname.endsWith(`.${internalZone}`))) {
      add("internalZone", internalZone, `must not contain the public hostname ${hostname}; pick a private name such as odoo.internal`);
    }
  }

  const rotation = checkPasswordRotation(value(PASSWORD_ROTATION_KEY));
  problems.push(...rotation.problems);

  if ((options.placeholders ?? "accept") === "refuse") {
    for (const p of placeholderProblems(raw))
      add(p.key, p.value, `${p.fix} (a real pulumi preview or up refuses placeholders; the offline plan only warns)`);
  }

  if (problems.length > 0 || !sizing || !tls || !vpc) throw new ConfigError(problems);

  return {
    region,
    domain,
    internalZone,
    vpcCidr: vpcCidrText,
    publicSubnetCidrs,
    privateSubnetCidrs,
    availabilityZoneCount: azCount,
    natGateways: natGateways as "single" | "perAz",
    odooVersion: odooVersion as OdooVersion,
    odooInstances,
    sharedFilestore,
    postgresEngine: postgresEngine as PostgresEngine,
    rdsMultiAz,
    instanceTypes,
    databases,
    dbfilter,
    postgresDataVolumeGiB,
    odooDataVolumeGiB,
    internalCaGeneration,
    internalCaNext: internalCaNext as StackSettings["internalCaNext"],
    bastionSecurityGroupId: bastion,
    odooInternalCidrs,
    tls,
    alarmEmail,
    backupRetentionDays,
    sizing,
    overrides: { odoo: odooOverrides, pgbouncer: pgbouncerOverrides, postgres: postgresOverrides },
    tags,
    odooOptions,
    httpRedirect,
    ...(mail === undefined ? {} : { mail }),
    odooBuild,
    ...(odooAddons === undefined ? {} : { odooAddons }),
    odooOptionParameters,
    sites,
    passwordRotation: rotation.rotation,
  };
}
