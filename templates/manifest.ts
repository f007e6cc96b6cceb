// The per-host manifest the apply script reads (templates/scripts/odoo-stack-apply.sh): which
// files the host gets, with what mode and owner, their sha256 (as uploaded, placeholders
// unresolved), and which service validates and reloads each. Pulumi uploads it beside the files:
//   s3://<config bucket>/hosts/<hostId>/manifest.json
//   s3://<config bucket>/hosts/<hostId>/<absolute path without its leading slash>
import { PATHS } from "../lib/model";
import { throwIfAny } from "../lib/problems";
import { scanSecretRefs, SECRET_REF_OPEN } from "../lib/secret-ref";
import { renderSortedJson, sha256, type HostFile } from "./format";

export const MANIFEST_FORMAT = 1;

/** The services of the manifest; the apply script's SERVICES_KNOWN lists the same. */
export const SERVICES = [
  "ca-certificates",
  "postgresql",
  "sql",
  "pgbouncer",
  "odoo",
  "odoo-release",
  "nginx",
  "logrotate",
  "cloudwatch-agent",
  "systemd",
  "none",
] as const;
export type ServiceName = (typeof SERVICES)[number];

/** How the apply script checks a service's staged files before it installs anything. */
export interface ServiceValidation {
  /** What is checked, for a reader. */
  readonly what: string;
  /** The command the script's validate_<service> function runs: the promise's evidence. */
  readonly runs: string;
}

/**
 * How the apply script validates and applies each service's files (see the script for details).
 * A promise, kept as data so tests/unit/script-contract.test.ts can hold the script to it: each
 * `validate` names the command the script's validate function for that service must run.
 */
export const SERVICE_STEPS: Readonly<Record<ServiceName, { readonly validate?: ServiceValidation; readonly apply: string }>> = {
  "ca-certificates": {
    validate: { what: "PEM certificates, every one of the bundle (a CA rotation trusts two)", runs: "openssl crl2pkcs7" },
    apply: "update-ca-certificates",
  },
  postgresql: {
    validate: { what: "GUC parsing as at server start, on the staged tree", runs: "--check" },
    apply: "install; pg_file_settings/pg_hba_file_rules (rolled back on error) → reload",
  },
  sql: { apply: "psql -v ON_ERROR_STOP=1 (from stdin), recorded only once it succeeded" },
  pgbouncer: {
    validate: { what: "a throwaway pgbouncer on the staged files must come up with no ERROR/FATAL", runs: "check.ini" },
    apply: "RELOAD (SIGHUP)",
  },
  odoo: {
    validate: { what: "odoo.conf parses as Odoo's ConfigParser reads it", runs: "configparser.RawConfigParser" },
    apply: "graceful restart (odoo.conf is read at start only)",
  },
  // The release script checks the artifact itself (checksum, manifests, compileall, requirements) while Odoo still serves.
  "odoo-release": {
    apply:
      "odoo-stack-odoo-release: the pinned package and the addons artifact, verified, switched with Odoo stopped, module update, rollback on failure",
  },
  nginx: { validate: { what: "nginx -t on a copy of /etc/nginx", runs: "-t -q -c" }, apply: "reload" },
  logrotate: {
    validate: { what: "logrotate's own parser", runs: "logrotate --debug" },
    apply: "installed (logrotate reads it at its next run)",
  },
  "cloudwatch-agent": { validate: { what: "valid JSON", runs: "jq empty" }, apply: "amazon-cloudwatch-agent-ctl fetch-config" },
  systemd: {
    validate: { what: "units and timers (backups, restore drill, metrics) pass systemd-analyze verify", runs: "verify --man=no" },
    apply: "daemon-reload → enable --now every delivered timer",
  },
  none: { apply: "installed only (scripts, data)" },
};

/**
 * Apply order: the internal CA first (every TLS client verifies against it, TLS-2), PostgreSQL
 * before its SQL, and the daemons before what only rotates logs or ships metrics.
 */
export const SERVICE_ORDER: readonly ServiceName[] = SERVICES;

export interface ManifestFile {
  readonly path: string;
  readonly mode: string;
  readonly owner: string;
  readonly group: string;
  /** sha256 of the uploaded content (placeholders unresolved). */
  readonly sha256: string;
  readonly service: ServiceName;
}

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly hostId: string;
  /** Sorted by path. */
  readonly files: readonly ManifestFile[];
  /** The services present in files, in SERVICE_ORDER: validated, then applied, in this order. */
  readonly services: readonly ServiceName[];
}

export interface ManifestActions {
  /** Optional. Per-path service, for a file whose location serviceForPath() does not know. */
  readonly services?: Readonly<Record<string, ServiceName>>;
}

// Longest prefix wins; a path that matches none is installed only ("none").
const SERVICE_BY_PREFIX: readonly (readonly [string, ServiceName])[] = [
  ["/usr/local/share/ca-certificates/", "ca-certificates"],
  ["/etc/postgresql/", "postgresql"],
  [PATHS.postgresBootstrapSql, "sql"],
  ["/etc/pgbouncer/", "pgbouncer"],
  // The systemd drop-in (LimitNOFILE, OBS-8) belongs to PgBouncer: daemon-reload, and a restart
  // is reported as pending.
  [PATHS.pgbouncerLimits.slice(0, PATHS.pgbouncerLimits.lastIndexOf("/") + 1), "pgbouncer"],
  ["/etc/odoo/", "odoo"],
  // The script with its settings: installed right before it runs, so a fix of it is what runs.
  ["/etc/odoo-stack/odoo-release.env", "odoo-release"],
  ["/usr/local/sbin/odoo-stack-odoo-release", "odoo-release"],
  ["/etc/nginx/", "nginx"],
  ["/etc/logrotate.d/", "logrotate"],
  ["/opt/aws/amazon-cloudwatch-agent/etc/", "cloudwatch-agent"],
  // Units and timers of the stack's jobs; a timer that is only installed never runs, so the
  // apply step enables it (BACKUP-1, BACKUP-2, OBS-*).
  ["/etc/systemd/system/", "systemd"],
  // Odoo's drop-in (PGSSLROOTCERT, TLS-2) belongs to Odoo: daemon-reload, then its restart.
  ["/etc/systemd/system/odoo.service.d/", "odoo"],
];

/** The service that validates and applies the file at `path`. */
export function serviceForPath(path: string): ServiceName {
  let best: readonly [string, ServiceName] | undefined;
  for (const entry of SERVICE_BY_PREFIX) {
    const [prefix] = entry;
    const matches = prefix.endsWith("/") ? path.startsWith(prefix) : path === prefix;
    if (matches && (best === undefined || prefix.length > best[0].length)) best = entry;
  }
  return best?.[1] ?? "none";
}

/** The S3 key of a host's manifest (files: configObjectKey in templates/hosts.ts). */
export const manifestObjectKey = (hostId: string): string => `hosts/${hostId}/manifest.json`;

// Same rules as the apply script's checks, so a bad entry fails at preview, not on the host.
const HOST_ID = /^[a-z0-9][a-z0-9-]*$/;
const PATH = /^(\/[A-Za-z0-9._@+-]+)+$/;
const MODE = /^0[0-7]{3}$/;
const ACCOUNT = /^[a-z_][a-z0-9_-]*$/;
// Parameters whose last segment names a secret: passwords, passphrases, private keys, SCRAM
// verifiers, tokens. Anything else (a CA or host certificate, an imported fullchain, a bucket
// name) is public and may sit in a world-readable file.
const SECRET_PARAMETER = /(pass|key|secret|token|verifier|credential)[^/]*$/i;

function problemsOf(hostId: string, files: readonly HostFile[], actions: ManifestActions): string[] {
  const problems: string[] = [];
  if (!HOST_ID.test(hostId)) problems.push(`host id ${JSON.stringify(hostId)} must be lowercase letters, digits and '-'`);
  const seen = new Set<string>();
  for (const f of files) {
    const where = JSON.stringify(f.path);
    if (!PATH.test(f.path) || /\/\.\.?(\/|$)/.test(f.path))
      problems.push(`${where} must be an absolute path without '.', '..', '//' or unusual characters`);
    if (seen.has(f.path)) problems.push(`${where} is listed twice`);
    seen.add(f.path);
    if (!MODE.test(f.mode)) problems.push(`${where}: mode ${JSON.stringify(f.mode)} must be 4 octal digits, e.g. "0640"`);
    if (!ACCOUNT.test(f.owner) || !ACCOUNT.test(f.group))
      problems.push(`${where}: owner/group ${JSON.stringify(`${f.owner}:${f.group}`)} is not a valid account name`);
    const refs = scanSecretRefs(f.content);
    if (refs.malformed) problems.push(`${where} has a malformed ${SECRET_REF_OPEN}...}} placeholder`);
    const secret = refs.paths.find((p) => SECRET_PARAMETER.test(p));
    if (secret && MODE.test(f.mode) && (parseInt(f.mode, 8) & 0o007) !== 0) {
      problems.push(`${where} carries the secret ${secret} and must not be readable by others (mode ${f.mode}; use 0600 or 0640)`);
    }
  }
  for (const [path, service] of Object.entries(actions.services ?? {})) {
    if (!seen.has(path)) problems.push(`actions.services names ${JSON.stringify(path)}, which is not among the files`);
    if (!(SERVICES as readonly string[]).includes(service)) problems.push(`actions.services: unknown service ${JSON.stringify(service)}`);
  }
  return problems;
}

/** Builds and checks a host's manifest; throws listing every problem at once. */
export function buildManifest(hostId: string, files: readonly HostFile[], actions: ManifestActions = {}): Manifest {
  const problems = problemsOf(hostId, files, actions);
  throwIfAny(`manifest of host ${hostId}`, problems);
  const entries: ManifestFile[] = [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => ({
      path: f.path,
      mode: f.mode,
      owner: f.owner,
      group: f.group,
      sha256: sha256(f.content),
      service: actions.services?.[f.path] ?? serviceForPath(f.path),
    }));
  const present = new Set(entries.map((e) => e.service));
  return { format: MANIFEST_FORMAT, hostId, files: entries, services: SERVICE_ORDER.filter((s) => present.has(s)) };
}

/** The manifest as uploaded: JSON, keys sorted, two-space indent, one trailing newline. */
export function renderManifest(hostId: string, files: readonly HostFile[], actions: ManifestActions = {}): string {
  return renderSortedJson(buildManifest(hostId, files, actions));
}
