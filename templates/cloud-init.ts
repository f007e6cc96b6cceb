// cloud-init user data per role. User data only BOOTSTRAPS (DESIGN principle 6): a change of it
// stops or replaces the instance, so it holds no configuration, only names — the host id, the
// region, the config bucket, the stack's SSM prefix — and no secret (DESIGN principle 5).
// Everything a host runs with comes from s3://<bucket>/hosts/<hostId>/ through the apply script
// (templates/scripts/odoo-stack-apply.sh), first at first boot with --bootstrap, later from an SSM
// association that re-runs `odoo-stack-apply` (no argument) when the configuration changes.
//
// First boot is retried until it completes (issue 12): cloud-init writes the bootstrap script,
// the host's step list and odoo-stack-firstboot.service, and starts that service; nothing that
// needs the network runs inside cloud-init, whose modules run once and are never retried. The
// service runs each step of the list not yet done (odoo-stack-bootstrap firstboot) and systemd
// starts it again after a failure (an apt mirror, Odoo's repository, ACME rate limits, the RDS CA
// download, a database not up yet), until every step is done. Step order per role: packages
// (apt update + upgrade + the role's packages), the AWS agents, the role's steps — PostgreSQL's
// data volume is mounted BEFORE postgresql-15's postinst creates (or, on a volume that outlived an
// instance, adopts) the cluster there; Odoo comes from Odoo's repository, added first — then the
// apply script, its --bootstrap run, and on the cron host the Odoo database's first install.
import { gzipSync } from "zlib";
import { PROJECT, type OdooVersion } from "../lib/config";
import { PATHS, type HostId, type HostRole, type StackModel } from "../lib/model";
import { throwIfAny } from "../lib/problems";
import { GENERATED, yamlString } from "./format";
import { PGBACKREST_CONF_PATH, PGBACKREST_STANZA } from "./pgbackrest";
import { SCRIPT_PATHS, scriptText } from "./scripts";

/** EC2 rejects user data above 16 KB (before base64). */
export const USER_DATA_LIMIT_BYTES = 16 * 1024;

/** Settings file of the apply script (KEY=VALUE; names only, never a secret). */
export const APPLY_ENV_PATH = "/etc/odoo-stack/apply.env";

/** Debian's createcluster.conf includes this directory (postgresql-common 248). */
export const CREATECLUSTER_CONF_PATH = "/etc/postgresql-common/createcluster.d/odoo-stack.conf";
/** initdb's options for the cluster postgresql-15's postinst creates on the data volume. */
export const CREATECLUSTER_INITDB_OPTIONS = "initdb_options = '--data-checksums --encoding=UTF8 --locale=C.UTF-8'";

/** Amazon Time Sync Service: link-local, so no NTP egress is needed (WORLD_EGRESS_PORTS). */
export const AWS_TIME_SERVER = "169.254.169.123";

/** The step list odoo-stack-firstboot.service runs (one bootstrap subcommand per line). */
export const FIRSTBOOT_STEPS_PATH = "/etc/odoo-stack/firstboot.steps";
export const FIRSTBOOT_UNIT = "odoo-stack-firstboot.service";
export const FIRSTBOOT_UNIT_PATH = `/etc/systemd/system/${FIRSTBOOT_UNIT}`;
/** Written when every step is done; later boots skip the service (ConditionPathExists). */
export const FIRSTBOOT_COMPLETE_MARKER = "/var/lib/odoo-stack/firstboot/complete";
/** chrony reads *.sources there (Debian 12's chrony.conf: sourcedir /etc/chrony/sources.d). */
export const CHRONY_SOURCES_PATH = "/etc/chrony/sources.d/odoo-stack-aws.sources";
/** Seconds between two attempts of the first boot. */
export const FIRSTBOOT_RETRY_SECONDS = 30;

export interface AcmeInput {
  /** The public name the certificate is for (settings.domain); certbot names the lineage after it. */
  readonly domain: string;
  /**
   * The other hostnames the certificate carries as SANs, one per further database (issue 16,
   * TLS-3). Optional. Defaults to none.
   */
  readonly alsoDomains?: readonly string[];
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
  /** The nightly build date (odooBuild): the odoo package is pinned to odooVersion.odooBuild. */
  readonly odooBuild: string;
  /** Optional. The Pulumi project, first segment of SSM parameter paths. Defaults to "odoo-stack". */
  readonly project?: string;
  /** Optional. Extra Debian packages for this host. */
  readonly packages?: readonly string[];
  /**
   * The EBS volume holding the host's data (vol-…): required on the PostgreSQL host, and on an
   * Odoo host without a shared filestore (its data_dir).
   */
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
  /** Odoo only, optional: this host initializes the Odoo databases once (the cron host). */
  readonly odooInit?: boolean;
}

/** What only the deployment knows: the bucket's name and, for PostgreSQL, the volume id. */
export interface Delivery {
  readonly configBucket: string;
  readonly region: string;
  readonly dataVolumeId?: string;
  readonly efsFileSystemId?: string;
}

/**
 * `odoo-stack-bootstrap acme`'s words: every hostname in one list (the first names the lineage),
 * the email, --staging. First boot runs it; the add-database procedure runs it again with the
 * longer list (templates/procedures.ts), so both say the same.
 */
export function acmeArgs(acme: AcmeInput): string[] {
  return ["acme", [acme.domain, ...(acme.alsoDomains ?? [])].join(","), acme.email, ...(acme.staging ? ["--staging"] : [])];
}

/** The proxy's public certificate request with tls.mode acme: every database's hostname, the first naming it. */
export function acmeInputFor(model: StackModel): AcmeInput | undefined {
  const { tls, domain } = model.settings;
  if (tls.mode !== "acme") return undefined;
  const alsoDomains = model.settings.sites.map((s) => s.hostname).filter((h) => h !== domain);
  return { domain, ...(alsoDomains.length > 0 ? { alsoDomains } : {}), email: tls.email, staging: tls.staging };
}

/** The user data input of `host`, from the stack model (the components' entry point). */
export function userDataInputFor(model: StackModel, host: HostId, delivery: Delivery): UserDataInput {
  const { odooVersion, odooBuild } = model.settings;
  const acme = acmeInputFor(model);
  return {
    hostId: host.id,
    role: host.role,
    region: delivery.region,
    configBucket: delivery.configBucket,
    stack: model.stack,
    project: model.project,
    odooVersion,
    odooBuild,
    ...(delivery.dataVolumeId === undefined ? {} : { dataVolumeId: delivery.dataVolumeId }),
    ...(delivery.efsFileSystemId === undefined ? {} : { efsFileSystemId: delivery.efsFileSystemId }),
    ...(host.role === "pgbouncer" && model.settings.postgresEngine === "rds" ? { rdsCaBundle: true } : {}),
    ...(host.role === "proxy" && acme !== undefined ? { acme } : {}),
    ...(host.role === "odoo" && host.runsCron ? { odooInit: true } : {}),
  };
}

/** Every host: the apply script's tools, time, logs, CA store. */
export const BASE_PACKAGES: readonly string[] = ["awscli", "ca-certificates", "chrony", "curl", "gnupg", "jq", "logrotate"];

/**
 * Packages of the first step (`packages`), per role, with BASE_PACKAGES. PostgreSQL's server and
 * Odoo are installed by later steps (see the order above).
 */
export const ROLE_PACKAGES: Readonly<Record<HostRole, readonly string[]>> = {
  // nginx-light has what the proxy uses (ssl, http2, proxy, map, realip); certbot's Route 53
  // plugin does DNS-01, so no port but 443 is ever open (NET-3).
  proxy: ["certbot", "nginx-light", "python3-certbot-dns-route53"],
  // wkhtmltopdf from Debian (0.12.6) renders Odoo 17's PDF reports; psql for `rotate check`;
  // pip installs the custom addons' requirements into their release (--target: never into the
  // system Python, which Debian 12 marks externally managed, PEP 668; issue 12 item 7).
  odoo: ["postgresql-client", "python3-pip", "wkhtmltopdf"],
  pgbouncer: ["pgbouncer", "postgresql-client"],
  postgres: [],
};

/** The EFS mount over TLS (issue 8): the NFS client and the TLS tunnel, both from Debian 12. */
export const EFS_PACKAGES: readonly string[] = ["nfs-common", "stunnel4"];

/** Installed by a later first-boot step, after the step that must precede them. */
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
  readonly runcmd: readonly (string | Command)[];
  readonly write_files: readonly WriteFile[];
}

const HOST_ID = /^[a-z0-9][a-z0-9-]*$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const NAME = /^[A-Za-z0-9_.-]+$/;
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const BUILD = /^20\d{6}$/;
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
  if (!BUILD.test(input.odooBuild)) bad("odooBuild", input.odooBuild, "a nightly build date YYYYMMDD");
  for (const p of input.packages ?? []) if (!PACKAGE.test(p)) bad("packages", p, "a Debian package name");
  if (input.role === "postgres" && input.dataVolumeId === undefined)
    bad("dataVolumeId", undefined, "the PostgreSQL host needs its data volume id (DESIGN principle 6)");
  if (input.dataVolumeId !== undefined) {
    if (input.role !== "postgres" && input.role !== "odoo")
      bad("dataVolumeId", input.dataVolumeId, "only the postgres host and an Odoo host have a data volume");
    else if (!VOLUME_ID.test(input.dataVolumeId)) bad("dataVolumeId", input.dataVolumeId, "an EBS volume id such as vol-0123456789abcdef0");
    if (input.efsFileSystemId !== undefined)
      bad("dataVolumeId", input.dataVolumeId, "an Odoo host keeps data_dir on EFS or on its own volume, not both");
  }
  if (input.efsFileSystemId !== undefined) {
    if (input.role !== "odoo") bad("efsFileSystemId", input.efsFileSystemId, "only Odoo hosts mount the shared filestore");
    else if (!FILE_SYSTEM_ID.test(input.efsFileSystemId))
      bad("efsFileSystemId", input.efsFileSystemId, "an EFS file system id such as fs-0123456789abcdef0");
  }
  if (input.rdsCaBundle === true && input.role !== "pgbouncer") bad("rdsCaBundle", true, "only PgBouncer connects to RDS");
  if (input.odooInit === true && input.role !== "odoo") bad("odooInit", true, "only an Odoo host initializes the Odoo databases");
  if (input.acme !== undefined) {
    if (input.role !== "proxy") bad("acme", input.acme, "only the proxy requests the public certificate");
    if (!DOMAIN.test(input.acme.domain)) bad("acme.domain", input.acme.domain, "a DNS name");
    (input.acme.alsoDomains ?? []).forEach((d, i) => {
      if (!DOMAIN.test(d) || d === input.acme?.domain) bad(`acme.alsoDomains[${i}]`, d, "a DNS name other than acme.domain");
    });
    if (!EMAIL.test(input.acme.email)) bad("acme.email", input.acme.email, "an email address");
  }
  throwIfAny(`user data of host ${input.hostId}`, problems);
}

/** Packages of a host, sorted and without duplicates. */
export function packagesFor(role: HostRole, extra: readonly string[] = []): string[] {
  return [...new Set([...BASE_PACKAGES, ...ROLE_PACKAGES[role], ...extra])].sort();
}

function roleSteps(input: UserDataInput): Command[] {
  switch (input.role) {
    case "proxy":
      // certbot's --domain takes a comma-separated list; the first name names the lineage
      // (/etc/letsencrypt/live/<first>/, acmeCertificatePaths).
      return input.acme === undefined ? [] : [acmeArgs(input.acme)];
    case "odoo":
      return [
        // Before the odoo package: its postinst then finds data_dir mounted and the odoo user
        // with the uid every host shares.
        ...(input.efsFileSystemId === undefined ? [] : [["efs-mount", input.efsFileSystemId, input.region, PATHS.odooDataDir]]),
        // One Odoo host: data_dir on its own volume, which outlives the instance (issue 12).
        ...(input.dataVolumeId === undefined
          ? []
          : [
              ["data-volume", input.dataVolumeId, PATHS.odooDataDir],
              ["odoo-owner", PATHS.odooDataDir],
            ]),
        // The exact build the stack names, pinned (issue 12 item 7); odoo-stack-odoo-release
        // moves it when the stack names another.
        ["odoo-repo", input.odooVersion, input.odooBuild],
        ["install", ...RUNCMD_PACKAGES.odoo.map((p) => (p === "odoo" ? `odoo=${input.odooVersion}.${input.odooBuild}` : p))],
      ];
    case "pgbouncer":
      return input.rdsCaBundle === true ? [["rds-ca-bundle", input.region, PATHS.rdsCaBundle]] : [];
    case "postgres":
      return [
        ["data-volume", input.dataVolumeId as string, PATHS.postgresDataMount],
        // The postgres user exists once postgresql-common is in; the mount is then given to it,
        // and only then does postgresql-15 create the cluster on the data volume.
        ["install", "postgresql-common"],
        ["postgres-owner", PATHS.postgresDataMount],
        ["install", ...RUNCMD_PACKAGES.postgres],
      ];
  }
}

/** The first-boot steps of a host, in order: what odoo-stack-firstboot.service runs. */
export function firstBootSteps(input: UserDataInput): Command[] {
  return [
    // The proxy's Elastic IP is associated after launch: every step below needs the internet.
    ...(input.role === "proxy" ? [["public-ip"]] : []),
    ["packages", ...packagesFor(input.role, [...(input.packages ?? []), ...(input.efsFileSystemId === undefined ? [] : EFS_PACKAGES)])],
    ["aws-agents", input.region],
    ...roleSteps(input),
    ["fetch-apply", input.configBucket, input.hostId, input.region, SCRIPT_PATHS.apply],
    ["apply"],
    // PostgreSQL runs with archive_mode on from the apply step: the stanza, at once (BACKUP-1).
    ...(input.role === "postgres" ? [["pgbackrest-stanza", PGBACKREST_CONF_PATH, PGBACKREST_STANZA]] : []),
    // After the apply step installed odoo.conf and the script: the databases' first install
    // (idempotent; it waits for nothing and fails until PgBouncer and PostgreSQL answer, so the
    // service retries it).
    ...(input.odooInit === true ? [["run", SCRIPT_PATHS.odooInit]] : []),
  ];
}

/** odoo-stack-firstboot.service: the steps, started again after a failure until all are done. */
export function firstBootUnit(): string {
  return [
    `# ${GENERATED}`,
    "[Unit]",
    "Description=odoo-stack first boot: packages, agents, role steps, configuration (retried until done)",
    `Documentation=file:${FIRSTBOOT_STEPS_PATH}`,
    "Wants=network-online.target",
    // cloud-init has finished: this service is the rest of first boot, not a part of cloud-init.
    "After=network-online.target cloud-final.service",
    `ConditionPathExists=!${FIRSTBOOT_COMPLETE_MARKER}`,
    // Retried without limit: a step that cannot succeed shows in `systemctl status` and the log.
    "StartLimitIntervalSec=0",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStart=${SCRIPT_PATHS.bootstrap} firstboot ${FIRSTBOOT_STEPS_PATH}`,
    `ExecStartPost=/usr/bin/touch ${FIRSTBOOT_COMPLETE_MARKER}`,
    "Restart=on-failure",
    `RestartSec=${FIRSTBOOT_RETRY_SECONDS}`,
    "TimeoutStartSec=3600",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
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
  const steps = firstBootSteps(input).map((words) => words.join(" "));
  const writeFiles: WriteFile[] = [
    { path: APPLY_ENV_PATH, content: `# ${GENERATED}\n${applyEnv}\n`, owner: "root:root", permissions: "0644" },
    {
      path: SCRIPT_PATHS.bootstrap,
      content: gzBase64(scriptText("bootstrap")),
      encoding: "gz+b64",
      owner: "root:root",
      permissions: "0755",
    },
    {
      path: FIRSTBOOT_STEPS_PATH,
      content: `# ${GENERATED}\n# odoo-stack-bootstrap subcommands, in order (odoo-stack-firstboot.service)\n${steps.join("\n")}\n`,
      owner: "root:root",
      permissions: "0644",
    },
    { path: FIRSTBOOT_UNIT_PATH, content: firstBootUnit(), owner: "root:root", permissions: "0644" },
    // The Amazon Time Sync Service, read by chrony once the packages step installed it.
    {
      path: CHRONY_SOURCES_PATH,
      content: `# ${GENERATED}\nserver ${AWS_TIME_SERVER} prefer iburst minpoll 4 maxpoll 4\n`,
      owner: "root:root",
      permissions: "0644",
    },
  ];
  if (input.role === "postgres") {
    // Page checksums: storage corruption is detected on read and by pgBackRest (BACKUP-1).
    // UTF8 with the C.UTF-8 locale whatever the bootstrap's environment (it runs with LC_ALL=C,
    // which would make the cluster SQL_ASCII): Odoo needs UTF8 databases (issue 12).
    writeFiles.push({
      path: CREATECLUSTER_CONF_PATH,
      content: `# ${GENERATED}\n${CREATECLUSTER_INITDB_OPTIONS}\n`,
      owner: "root:root",
      permissions: "0644",
    });
  }
  return {
    runcmd: [
      // Queued behind cloud-final (After=): cloud-init ends, then first boot runs and retries.
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", "--now", "--no-block", FIRSTBOOT_UNIT],
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
  if (size > USER_DATA_LIMIT_BYTES)
    throw new Error(`user data of host ${input.hostId} is ${size} bytes; EC2 accepts ${USER_DATA_LIMIT_BYTES}`);
  return text;
}
