// cloud-init user data per role. User data only BOOTSTRAPS (DESIGN principle 6): a change of it
// stops or replaces the instance, so it holds no configuration, only names — the host id, the
// region, the config bucket, the stack's SSM prefix — and no secret (DESIGN principle 5).
// Everything a host runs with comes from s3://<bucket>/hosts/<hostId>/ through the apply script
// (templates/scripts/odoo-stack-apply.sh), first from runcmd with --bootstrap, later from an SSM
// association that re-runs `odoo-stack-apply` (no argument) when the configuration changes.
//
// Boot order (cloud-init 22.4 on Debian 12): write_files (init stage) → ntp, apt → packages
// (final stage) → runcmd (final stage, after packages). What must happen before a package
// installs is therefore not in `packages` but in runcmd, in order: PostgreSQL's data volume is
// mounted at PATHS.postgresDataMount BEFORE postgresql-15's postinst creates (or, on a volume that
// outlived an instance, adopts) the cluster there; Odoo comes from Odoo's repository, added first.
import { gzipSync } from "zlib";
import { PROJECT, type OdooVersion } from "../lib/config";
import { PATHS, type HostId, type HostRole, type StackModel } from "../lib/model";
import { GENERATED, yamlString } from "./format";
import { SCRIPT_PATHS, scriptText } from "./scripts";

/** EC2 rejects user data above 16 KB (before base64). */
export const USER_DATA_LIMIT_BYTES = 16 * 1024;

/** Settings file of the apply script (KEY=VALUE; names only, never a secret). */
export const APPLY_ENV_PATH = "/etc/odoo-stack/apply.env";

/** Debian's createcluster.conf includes this directory (postgresql-common 248). */
export const CREATECLUSTER_CONF_PATH = "/etc/postgresql-common/createcluster.d/odoo-stack.conf";

/** Amazon Time Sync Service: link-local, so no NTP egress is needed (WORLD_EGRESS_PORTS). */
export const AWS_TIME_SERVER = "169.254.169.123";

export interface AcmeInput {
  /** The public name the certificate is for (settings.domain). */
  readonly domain: string;
  readonly email: string;
  /** Let's Encrypt's staging CA (untrusted certificates, generous rate limits). */
  readonly staging: boolean;
}

export interface UserDataInput {
  readonly hostId: string;
  readonly role: HostRole;
  readonly region: string;
  readonly configBucket: string;
  readonly stack: string;
  readonly odooVersion: OdooVersion;
  /** Optional. The Pulumi project, first segment of SSM parameter paths. Defaults to "odoo-stack". */
  readonly project?: string;
  /** Optional. Extra Debian packages for this host. */
  readonly packages?: readonly string[];
  /** PostgreSQL host only, and required there: the EBS volume holding the data (vol-…). */
  readonly dataVolumeId?: string;
  /** Proxy only, optional: issue the public certificate with ACME DNS-01 on Route 53. */
  readonly acme?: AcmeInput;
  /**
   * Odoo only, optional: the EFS file system (fs-…) holding the shared filestore, mounted over
   * TLS at Odoo's data_dir before the odoo package is installed (issue 8).
   */
  readonly efsFileSystemId?: string;
  /** PgBouncer only, optional: PostgreSQL is RDS; fetch its regional CA bundle for verify-full. */
  readonly rdsCaBundle?: boolean;
}

/** What only the deployment knows: the bucket's name and, for PostgreSQL, the volume id. */
export interface Delivery {
  readonly configBucket: string;
  readonly region: string;
  readonly dataVolumeId?: string;
  readonly efsFileSystemId?: string;
}

/** The user data input of `host`, from the stack model (the components' entry point). */
export function userDataInputFor(model: StackModel, host: HostId, delivery: Delivery): UserDataInput {
  const { tls, domain, odooVersion } = model.settings;
  return {
    hostId: host.id,
    role: host.role,
    region: delivery.region,
    configBucket: delivery.configBucket,
    stack: model.stack,
    project: model.project,
    odooVersion,
    ...(delivery.dataVolumeId === undefined ? {} : { dataVolumeId: delivery.dataVolumeId }),
    ...(delivery.efsFileSystemId === undefined ? {} : { efsFileSystemId: delivery.efsFileSystemId }),
    ...(host.role === "pgbouncer" && model.settings.postgresEngine === "rds" ? { rdsCaBundle: true } : {}),
    ...(host.role === "proxy" && tls.mode === "acme" ? { acme: { domain, email: tls.email, staging: tls.staging } } : {}),
  };
}

/** Every host: the apply script's tools, time, logs, CA store. */
export const BASE_PACKAGES: readonly string[] = ["awscli", "ca-certificates", "chrony", "curl", "gnupg", "jq", "logrotate"];

/**
 * Packages installed by cloud-init's `packages` module, per role. PostgreSQL's server and Odoo
 * are installed by runcmd instead (see the order above).
 */
export const ROLE_PACKAGES: Readonly<Record<HostRole, readonly string[]>> = {
  // nginx-light has what the proxy uses (ssl, http2, proxy, map, realip); certbot's Route 53
  // plugin does DNS-01, so no port but 443 is ever open (NET-3).
  proxy: ["certbot", "nginx-light", "python3-certbot-dns-route53"],
  // wkhtmltopdf from Debian (0.12.6) renders Odoo 17's PDF reports; psql for `rotate check`.
  odoo: ["postgresql-client", "wkhtmltopdf"],
  pgbouncer: ["pgbouncer", "postgresql-client"],
  postgres: [],
};

/** The EFS mount over TLS (issue 8): the NFS client and the TLS tunnel, both from Debian 12. */
export const EFS_PACKAGES: readonly string[] = ["nfs-common", "stunnel4"];

/** Installed by runcmd, after the step that must precede them. */
export const RUNCMD_PACKAGES: Readonly<Record<HostRole, readonly string[]>> = {
  proxy: [],
  // --no-install-recommends: the odoo package recommends a local PostgreSQL server.
  odoo: ["odoo"],
  pgbouncer: [],
  postgres: ["postgresql-15", "pgbackrest"],
};

/** Where certbot keeps the certificate of `domain`; nginx's renderer points at these. */
export function acmeCertificatePaths(domain: string): { readonly fullchain: string; readonly privkey: string } {
  return { fullchain: `/etc/letsencrypt/live/${domain}/fullchain.pem`, privkey: `/etc/letsencrypt/live/${domain}/privkey.pem` };
}

type Command = readonly string[];

interface WriteFile {
  readonly path: string;
  readonly content: string;
  readonly encoding?: "gz+b64";
  readonly owner: string;
  readonly permissions: string;
}

/** The cloud-config document, before it is written as YAML. */
export interface CloudConfig {
  readonly ntp: { readonly enabled: boolean; readonly ntp_client: string; readonly servers: readonly string[] };
  readonly package_update: boolean;
  readonly package_upgrade: boolean;
  readonly packages: readonly string[];
  readonly runcmd: readonly (string | Command)[];
  readonly write_files: readonly WriteFile[];
}

const HOST_ID = /^[a-z0-9][a-z0-9-]*$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const NAME = /^[A-Za-z0-9_.-]+$/;
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const VOLUME_ID = /^vol-[0-9a-f]{8,17}$/;
const FILE_SYSTEM_ID = /^fs-[0-9a-f]{8,17}$/;
const DOMAIN = /^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$/;
const EMAIL = /^[^\s@"'\\]+@[^\s@"'\\]+$/;

function checkInput(input: UserDataInput): void {
  const problems: string[] = [];
  const bad = (key: string, value: unknown, fix: string) => problems.push(`${key} = ${JSON.stringify(value)}: ${fix}`);
  if (!HOST_ID.test(input.hostId)) bad("hostId", input.hostId, "lowercase letters, digits and '-'");
  if (!REGION.test(input.region)) bad("region", input.region, "an AWS region such as eu-west-1");
  if (!BUCKET.test(input.configBucket)) bad("configBucket", input.configBucket, "an S3 bucket name");
  if (!NAME.test(input.stack)) bad("stack", input.stack, "letters, digits, '_', '.', '-'");
  if (input.project !== undefined && !NAME.test(input.project)) bad("project", input.project, "letters, digits, '_', '.', '-'");
  for (const p of input.packages ?? []) if (!PACKAGE.test(p)) bad("packages", p, "a Debian package name");
  if (input.role === "postgres") {
    if (input.dataVolumeId === undefined) bad("dataVolumeId", undefined, "the PostgreSQL host needs its data volume id (DESIGN principle 6)");
    else if (!VOLUME_ID.test(input.dataVolumeId)) bad("dataVolumeId", input.dataVolumeId, "an EBS volume id such as vol-0123456789abcdef0");
  } else if (input.dataVolumeId !== undefined) {
    bad("dataVolumeId", input.dataVolumeId, "only the postgres role has a data volume");
  }
  if (input.efsFileSystemId !== undefined) {
    if (input.role !== "odoo") bad("efsFileSystemId", input.efsFileSystemId, "only Odoo hosts mount the shared filestore");
    else if (!FILE_SYSTEM_ID.test(input.efsFileSystemId)) bad("efsFileSystemId", input.efsFileSystemId, "an EFS file system id such as fs-0123456789abcdef0");
  }
  if (input.rdsCaBundle === true && input.role !== "pgbouncer") bad("rdsCaBundle", true, "only PgBouncer connects to RDS");
  if (input.acme !== undefined) {
    if (input.role !== "proxy") bad("acme", input.acme, "only the proxy requests the public certificate");
    if (!DOMAIN.test(input.acme.domain)) bad("acme.domain", input.acme.domain, "a DNS name");
    if (!EMAIL.test(input.acme.email)) bad("acme.email", input.acme.email, "an email address");
  }
  if (problems.length > 0) {
    throw new Error(`user data of host ${input.hostId}: ${problems.length} problem(s):\n${problems.map((p, i) => `  ${i + 1}. ${p}`).join("\n")}`);
  }
}

/** Packages of a host, sorted and without duplicates. */
export function packagesFor(role: HostRole, extra: readonly string[] = []): string[] {
  return [...new Set([...BASE_PACKAGES, ...ROLE_PACKAGES[role], ...extra])].sort();
}

function roleSteps(input: UserDataInput): Command[] {
  const bootstrap = SCRIPT_PATHS.bootstrap;
  switch (input.role) {
    case "proxy":
      return input.acme === undefined
        ? []
        : [[bootstrap, "acme", input.acme.domain, input.acme.email, ...(input.acme.staging ? ["--staging"] : [])]];
    case "odoo":
      return [
        // Before the odoo package: its postinst then finds data_dir mounted and the odoo user
        // with the uid every host shares.
        ...(input.efsFileSystemId === undefined ? [] : [[bootstrap, "efs-mount", input.efsFileSystemId, input.region, PATHS.odooDataDir]]),
        [bootstrap, "odoo-repo", input.odooVersion],
        [bootstrap, "install", ...RUNCMD_PACKAGES.odoo],
      ];
    case "pgbouncer":
      return input.rdsCaBundle === true ? [[bootstrap, "rds-ca-bundle", input.region, PATHS.rdsCaBundle]] : [];
    case "postgres":
      return [
        [bootstrap, "data-volume", input.dataVolumeId as string, PATHS.postgresDataMount],
        // The postgres user exists once postgresql-common is in; the mount is then given to it,
        // and only then does postgresql-15 create the cluster on the data volume.
        [bootstrap, "install", "postgresql-common"],
        [bootstrap, "postgres-owner", PATHS.postgresDataMount],
        [bootstrap, "install", ...RUNCMD_PACKAGES.postgres],
      ];
  }
}

const gzBase64 = (text: string): string => gzipSync(Buffer.from(text, "utf8"), { level: 9 }).toString("base64");

/** The cloud-config document of a host (see renderUserData). */
export function buildUserData(input: UserDataInput): CloudConfig {
  checkInput(input);
  const prefix = `/${input.project ?? PROJECT}/${input.stack}/`;
  const applyEnv = [
    `ODOO_STACK_HOST_ID=${input.hostId}`,
    `ODOO_STACK_REGION=${input.region}`,
    `ODOO_STACK_BUCKET=${input.configBucket}`,
    `ODOO_STACK_PARAMETER_PREFIX=${prefix}`,
  ].join("\n");
  const writeFiles: WriteFile[] = [
    { path: APPLY_ENV_PATH, content: `# ${GENERATED}\n${applyEnv}\n`, owner: "root:root", permissions: "0644" },
    {
      path: SCRIPT_PATHS.bootstrap,
      content: gzBase64(scriptText("bootstrap")),
      encoding: "gz+b64",
      owner: "root:root",
      permissions: "0755",
    },
  ];
  if (input.role === "postgres") {
    // Page checksums: storage corruption is detected on read and by pgBackRest (BACKUP-1).
    writeFiles.push({
      path: CREATECLUSTER_CONF_PATH,
      content: `# ${GENERATED}\ninitdb_options = '--data-checksums'\n`,
      owner: "root:root",
      permissions: "0644",
    });
  }
  const bootstrap = SCRIPT_PATHS.bootstrap;
  return {
    ntp: { enabled: true, ntp_client: "chrony", servers: [AWS_TIME_SERVER] },
    package_update: true,
    // Security updates before the host serves anything.
    package_upgrade: true,
    packages: packagesFor(input.role, [...(input.packages ?? []), ...(input.efsFileSystemId === undefined ? [] : EFS_PACKAGES)]),
    runcmd: [
      // runcmd runs as one /bin/sh script: stop at the first failed step, so a half-installed
      // host never runs the apply step (cloud-init then reports the failure).
      "set -e",
      [bootstrap, "aws-agents", input.region],
      ...roleSteps(input),
      [bootstrap, "fetch-apply", input.configBucket, input.hostId, input.region, SCRIPT_PATHS.apply],
      [SCRIPT_PATHS.apply, "--bootstrap"],
    ],
    write_files: writeFiles,
  };
}

// YAML writer: block mappings with sorted keys, block sequences, every scalar through yamlString
// (a JSON string is a valid YAML double-quoted scalar); a list of scalars is a flow sequence.
function yamlLines(value: unknown, indent: string): string[] {
  if (Array.isArray(value)) {
    return value.flatMap((item) => {
      if (Array.isArray(item)) return [`${indent}- [${item.map(yamlScalar).join(", ")}]`];
      if (item !== null && typeof item === "object") {
        const [first, ...rest] = yamlLines(item, `${indent}  `);
        return [`${indent}- ${first.trimStart()}`, ...rest];
      }
      return [`${indent}- ${yamlScalar(item)}`];
    });
  }
  return Object.keys(value as object)
    .sort()
    .flatMap((key) => {
      const v = (value as Record<string, unknown>)[key];
      if (v === undefined) return [];
      if (Array.isArray(v) && v.length === 0) return [`${indent}${key}: []`];
      if (v !== null && typeof v === "object") return [`${indent}${key}:`, ...yamlLines(v, Array.isArray(v) ? indent : `${indent}  `)];
      return [`${indent}${key}: ${yamlScalar(v)}`];
    });
}

function yamlScalar(value: unknown): string {
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return yamlString(value);
  throw new Error(`unsupported YAML scalar: ${JSON.stringify(value)}`);
}

/** `#cloud-config` user data of a host. Names only; no secret, no configuration. */
export function renderUserData(input: UserDataInput): string {
  const doc = buildUserData(input);
  const text = ["#cloud-config", `# ${GENERATED}`, ...yamlLines(doc, "")].join("\n") + "\n";
  const size = Buffer.byteLength(text, "utf8");
  if (size > USER_DATA_LIMIT_BYTES) throw new Error(`user data of host ${input.hostId} is ${size} bytes; EC2 accepts ${USER_DATA_LIMIT_BYTES}`);
  return text;
}
