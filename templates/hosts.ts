// Assembles what each host receives: every rendered file with its mode and owner. Pure, so
// the components upload exactly what the tests and the offline plan see.
import { ConfigError } from "../lib/config";
import { DB_ROLES, PATHS, secretRef, type HostId, type StackModel } from "../lib/model";
import { backupHostFiles } from "./backup-units";
import { cloudWatchAgentHostFile } from "./cloudwatch-agent";
import { acmeCertificatePaths } from "./cloud-init";
import { GENERATED, sha256, shellQuote, type HostFile } from "./format";
import { nginxMainSettings, nginxSiteSettingsFor, renderNginxConf, renderNginxSite } from "./nginx";
import { odooConfFile, odooServiceEnvironment, odooConfSettingsFor } from "./odoo-conf";
import { odooLogrotateFile } from "./logrotate";
import { odooReleaseFiles } from "./odoo-release";
import { metricsHostFiles } from "./metrics";
import { PGBOUNCER_DEBIAN, PGBOUNCER_TLS_FILES, pgbouncerHostFiles } from "./pgbouncer";
import { postgresHostFiles, POSTGRES_TLS_FILES } from "./postgresql";
import { rdsPgbouncerHostFiles } from "./rds";
import { hostScriptFiles, SCRIPT_PATHS, scriptText } from "./scripts";
import { systemdDropIn } from "./systemd";

/** S3 key of a host file in the config bucket: hosts/<hostId>/<path without leading slash>. */
export const configObjectKey = (hostId: string, path: string): string => `hosts/${hostId}/${path.replace(/^\/+/, "")}`;

const byPath = (a: HostFile, b: HostFile): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** A file whose whole content is one SSM parameter (a certificate or key), resolved on the host. */
const parameterFile = (path: string, parameter: string, mode: string, owner: string, group = owner): HostFile => ({
  path,
  content: `${secretRef(parameter)}\n`,
  mode,
  owner,
  group,
});

/** The proxy's public certificate: certbot's files (ACME) or the operator's SSM parameters. */
function proxyTlsPaths(model: StackModel): { certificate: string; key: string; files: HostFile[] } {
  const tls = model.settings.tls;
  if (tls.mode === "acme") {
    const acme = acmeCertificatePaths(model.settings.domain);
    return { certificate: acme.fullchain, key: acme.privkey, files: [] };
  }
  const certificate = `${PATHS.nginxTlsDir}/fullchain.pem`;
  const key = `${PATHS.nginxTlsDir}/privkey.pem`;
  return {
    certificate,
    key,
    files: [
      parameterFile(certificate, tls.certificateParameter, "0644", "root"),
      parameterFile(key, tls.privateKeyParameter, "0600", "root"),
    ],
  };
}

/** Modules the databases' first install installs (`odoo -i`); Odoo adds what they depend on. */
export const ODOO_INIT_MODULES: readonly string[] = ["base", "web"];

/**
 * The cron host initializes the stack's databases once (templates/scripts/odoo-stack-odoo-init.sh,
 * run by first boot): the script and its settings, the admin user's password as a placeholder.
 */
function odooInitFiles(model: StackModel): HostFile[] {
  const env = [
    `# ${GENERATED}`,
    `ODOO_STACK_DATABASES=${model.settings.databases.join(",")}`,
    `ODOO_STACK_ODOO_MODULES=${ODOO_INIT_MODULES.join(",")}`,
    `ODOO_STACK_ADMIN_PASSWORD=${secretRef(model.parameters.odooAdminUserPassword)}`,
    `ODOO_STACK_CA=${PATHS.caCert}`,
    // `odoo -i` logs in as the migration role, as `odoo -u` does (odooMigrationCommand).
    `ODOO_STACK_MIGRATION_ROLE=${DB_ROLES.migrate}`,
    "",
  ].join("\n");
  return [
    { path: SCRIPT_PATHS.odooInit, content: scriptText("odooInit"), mode: "0755", owner: "root", group: "root" },
    { path: PATHS.odooInitEnv, content: env, mode: "0600", owner: "root", group: "root" },
  ];
}

function roleFiles(model: StackModel, host: HostId): HostFile[] {
  switch (host.role) {
    case "proxy": {
      const tls = proxyTlsPaths(model);
      const site = { ...nginxSiteSettingsFor(model), tlsCertificatePath: tls.certificate, tlsCertificateKeyPath: tls.key };
      return [
        { path: PATHS.nginxConf, content: renderNginxConf(nginxMainSettings()), mode: "0644", owner: "root", group: "root" },
        { path: PATHS.nginxSite, content: renderNginxSite(site), mode: "0644", owner: "root", group: "root" },
        ...tls.files,
      ];
    }
    case "odoo":
      return [
        ...(host.runsCron ? odooInitFiles(model) : []),
        odooConfFile(model, host, model.settings.odooOptions),
        odooLogrotateFile(),
        // The pinned package and the custom addons release (issue 12 item 7).
        ...odooReleaseFiles(model, host),
        // libpq finds the internal CA through PGSSLROOTCERT: odoo.conf has no CA key in every
        // supported version, and verify-full needs it (TLS-2). data_dir is a mount (its own
        // volume, or EFS), `nofail` so a missing one cannot stop the boot: Odoo then must not
        // start and write attachments to the empty mount point on the root disk.
        systemdDropIn("odoo", {
          Unit: { RequiresMountsFor: PATHS.odooDataDir },
          Service: { Environment: odooServiceEnvironment(odooConfSettingsFor(model, host)) },
        }),
      ];
    case "pgbouncer": {
      const user = PGBOUNCER_DEBIAN.serviceUser;
      return [
        ...pgbouncerHostFiles(model),
        // RDS: the bootstrap SQL runs from here against the endpoint (issue 8).
        ...rdsPgbouncerHostFiles(model),
        parameterFile(PGBOUNCER_TLS_FILES.cert, model.parameters.hostCert(host.id), "0644", user),
        parameterFile(PGBOUNCER_TLS_FILES.key, model.parameters.hostKey(host.id), "0600", user),
      ];
    }
    case "postgres":
      return [
        ...postgresHostFiles(model),
        // The cluster lives on the data volume, mounted `nofail` so a missing volume cannot drop
        // the host into emergency mode; PostgreSQL then must not start on the empty mount point
        // of the root disk. RequiresMountsFor orders the start after the mount and skips it without.
        systemdDropIn("postgresql@", { Unit: { RequiresMountsFor: PATHS.postgresDataMount } }),
        parameterFile(POSTGRES_TLS_FILES.cert, model.parameters.hostCert(host.id), "0644", "postgres"),
        parameterFile(POSTGRES_TLS_FILES.key, model.parameters.hostKey(host.id), "0600", "postgres"),
      ];
  }
}

/** Every file `host` receives, sorted by path. */
export function hostFiles(model: StackModel, host: HostId): HostFile[] {
  return [
    // Every host trusts the internal CA (TLS-1, TLS-2): the system store and libpq read it.
    parameterFile(PATHS.caCert, model.parameters.caCert, "0644", "root"),
    ...hostScriptFiles(),
    ...roleFiles(model, host),
    // pgBackRest, timers, restore drill (postgres); filestore sync (odoo) — BACKUP-1, BACKUP-2.
    ...backupHostFiles(model, host),
    // Host metrics and shipped logs (CloudWatch agent), the stack's own metrics collector (§9).
    cloudWatchAgentHostFile(model, host),
    ...metricsHostFiles(model, host),
  ].sort(byPath);
}

/**
 * Renders every host's files once, before any resource exists, so that an odooOptions (or any
 * renderer) refusal fails the preview with the config key to fix (DESIGN principle 4).
 */
export function renderAllHosts(model: StackModel): ReadonlyMap<string, HostFile[]> {
  const out = new Map<string, HostFile[]>();
  const problems = new Map<string, { key: string; value: unknown; fix: string }>();
  for (const host of model.allHosts) {
    try {
      out.set(host.id, hostFiles(model, host));
    } catch (e) {
      const key = host.role === "odoo" ? "odooOptions" : host.role;
      const fix = (e as Error).message;
      // Every Odoo host renders the same options: report a refusal once, not once per host.
      problems.set(`${key}\0${fix}`, { key, value: host.role === "odoo" ? model.settings.odooOptions : host.id, fix });
    }
  }
  if (problems.size > 0) throw new ConfigError([...problems.values()]);
  return out;
}

/**
 * The command the SSM association runs on the host to apply its files in place. It carries
 * the manifest's hash, so a changed file changes the association and AWS runs it again.
 */
/** SHA-256 of the parameters a host reads and their versions: changes when any value changes. */
export function parametersFingerprint(entries: readonly (readonly [string, number | string])[]): string {
  const lines = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, version]) => `${name}=${version}\n`);
  return sha256(lines.join(""));
}

export function applyCommandLine(args: {
  bucket: string;
  hostId: string;
  region: string;
  manifestSha256: string;
  parametersSha256?: string;
}): string {
  // State Manager runs the association as soon as the SSM agent registers, which first boot
  // installs before the apply script: that run is a clean no-op (first boot applies the files).
  const firstBoot = `if [ ! -x ${PATHS.applyScript} ]; then echo 'odoo-stack: first boot in progress; odoo-stack-firstboot.service applies this configuration'; exit 0; fi;`;
  return (
    firstBoot +
    " " +
    [
      PATHS.applyScript,
      "--bucket",
      shellQuote(args.bucket),
      "--host",
      shellQuote(args.hostId),
      "--region",
      shellQuote(args.region),
      "--manifest-sha256",
      shellQuote(args.manifestSha256),
      ...(args.parametersSha256 === undefined ? [] : ["--parameters-sha256", shellQuote(args.parametersSha256)]),
    ].join(" ")
  );
}
