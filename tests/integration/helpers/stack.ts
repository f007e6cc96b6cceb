// The database tier of the stack in one sandbox: PostgreSQL 15 from the rendered drop-in,
// pg_hba.conf and bootstrap SQL, and PgBouncer 1.18 from the rendered pgbouncer.ini and
// userlist.txt, both TLS with an internal CA (verify-full against the hosts' DNS names).
// Each "host" has its own root directory; every production path is remapped to
// <root><production path>, the layout the apply script's ODOO_STACK_ROOT override uses, so the
// rotation test can run the project's own scripts on the same files.
import * as fs from "fs";
import * as path from "path";
import { DB_ROLES, PATHS, type StackModel } from "../../../lib/model";
import {
  pgbouncerSettingsFor,
  pgbouncerUserlistSettingsFor,
  PGBOUNCER_DEBIAN,
  PGBOUNCER_TLS_FILES,
  renderPgbouncerIni,
  renderPgbouncerUserlist,
  type PgbouncerSettings,
  type PgbouncerValue,
} from "../../../templates/pgbouncer";
import {
  pgHbaSettingsFor,
  postgresBootstrapSettingsFor,
  postgresConfSettingsFor,
  POSTGRES_TLS_FILES,
  renderPgHba,
  renderPostgresBootstrap,
  renderPostgresConf,
  type PgHbaSettings,
  type PostgresConfSettings,
} from "../../../templates/postgresql";
import type { Endpoint, Login } from "./clients";
import { startPgbouncer, privateHostsSupported, type PgbouncerInstance } from "./pgbouncer";
import { startPostgres, type PostgresCluster } from "./postgres";
import { remapForSandbox } from "./remap";
import { generateSecrets, resolveSecretRefs, type SandboxSecrets } from "./secrets";
import { systemUser, withFreshPort, type Sandbox, type SystemUser } from "./sandbox";
import { createCertificateAuthority, installPem, issueHostCertificate, type CertificateAuthority } from "./tls";

/** The PgBouncer keys the sandbox remaps: where it listens, its files, PostgreSQL's port. */
export const PGBOUNCER_REMAPPED = [
  "listenAddresses",
  "listenPort",
  "unixSocketDir",
  "pidFile",
  "logFile",
  "authFile",
  "caFile",
  "clientTlsCertFile",
  "clientTlsKeyFile",
  "serverPort",
] as const satisfies readonly (keyof PgbouncerSettings)[];

export const POSTGRES_REMAPPED = [
  "listenAddresses",
  "port",
  "sslCertFile",
  "sslKeyFile",
  "sslCaFile",
] as const satisfies readonly (keyof PostgresConfSettings)[];
export const PG_HBA_REMAPPED = ["pgbouncerCidr"] as const satisfies readonly (keyof PgHbaSettings)[];

export interface DatabaseTier {
  readonly model: StackModel;
  readonly secrets: SandboxSecrets;
  readonly ca: CertificateAuthority;
  readonly postgresUser: SystemUser;
  readonly pg: PostgresCluster;
  /** The running PgBouncer (a new instance after restartPgbouncer). */
  readonly pgbouncer: PgbouncerInstance;
  /** Root directories standing for the two hosts' file systems. */
  readonly roots: { readonly postgres: string; readonly pgbouncer: string };
  /** PostgreSQL as PgBouncer and a bastion reach it (verify-full against postgres.<zone>). */
  readonly postgresEndpoint: Endpoint;
  /** PgBouncer as Odoo reaches it (verify-full against pgbouncer.<zone>). */
  readonly pgbouncerEndpoint: Endpoint;
  /** The rendered files as installed (secrets resolved), for assertions on their content. */
  readonly installed: {
    readonly postgresDropIn: string;
    readonly pgHba: string;
    readonly pgbouncerIni: string;
    readonly userlist: string;
  };
  readonly productionSettings: { readonly postgres: PostgresConfSettings; readonly pgbouncer: PgbouncerSettings };
  /**
   * True when PgBouncer resolves postgres.<zone> through a private /etc/hosts (mount
   * namespace) and verifies the real SAN; false on machines without namespaces, where the
   * sandbox falls back to an IP SAN and says so.
   */
  readonly verifiesPostgresByName: boolean;
  /**
   * Renders pgbouncer.ini for `model` with the sandbox's remapping (placeholders stay);
   * `overrides` are layered as a user's would be (the forced keys still win).
   */
  pgbouncerIniFor(model: StackModel, overrides?: Readonly<Record<string, PgbouncerValue>>): string;
  /** Stops PgBouncer and starts it again on the same port and files with `ini` (the benchmark's variants). */
  restartPgbouncer(ini: string): Promise<PgbouncerInstance>;
  /** Renders userlist.txt for `model` (placeholders unresolved, as uploaded). */
  userlistFor(model: StackModel): string;
  odooLogin(database?: string, password?: string): Login;
  statsLogin(): Login;
}

/** <root><absolute production path>. */
export const under = (root: string, productionPath: string): string => path.join(root, productionPath);

export async function startDatabaseTier(sandbox: Sandbox, model: StackModel): Promise<DatabaseTier> {
  const postgresUser = systemUser("postgres");
  const secrets = generateSecrets(model);
  const byName = await privateHostsSupported(sandbox);
  const roots = {
    postgres: sandbox.mkdir("postgres-host", undefined, 0o755),
    pgbouncer: sandbox.mkdir("pgbouncer-host", undefined, 0o755),
  };
  const pgHost = model.hosts.postgres;
  const bouncerHost = model.hosts.pgbouncer;

  // --- TLS: one internal CA, a certificate per host carrying its DNS name (TLS-3) -----------
  const ca = await createCertificateAuthority(sandbox, sandbox.path("ca"));
  const issued = sandbox.mkdir("issued");
  const pgCert = await issueHostCertificate(sandbox, ca, issued, [pgHost.fqdn], undefined, byName ? [] : ["127.0.0.1"]);
  const bouncerCert = await issueHostCertificate(sandbox, ca, issued, [bouncerHost.fqdn]);

  // --- PostgreSQL ------------------------------------------------------------------------
  const pgProduction = postgresConfSettingsFor(model);
  const pgTls = {
    sslCertFile: installPem(pgCert.certPath, under(roots.postgres, POSTGRES_TLS_FILES.cert), postgresUser, 0o644),
    sslKeyFile: installPem(pgCert.keyPath, under(roots.postgres, POSTGRES_TLS_FILES.key), postgresUser, 0o600),
    sslCaFile: installPem(ca.certPath, under(roots.postgres, PATHS.caCert), postgresUser, 0o644),
  };
  // Every client of the sandbox comes from 127.0.0.1: PgBouncer's /32 becomes loopback's.
  const hbaSettings = remapForSandbox(pgHbaSettingsFor(model), PG_HBA_REMAPPED, { pgbouncerCidr: "127.0.0.1/32" });
  const pgHba = renderPgHba(hbaSettings);
  let dropIn = "";
  const pg = await withFreshPort(sandbox, (pgPort) => {
    dropIn = renderPostgresConf(
      remapForSandbox(pgProduction, POSTGRES_REMAPPED, { listenAddresses: ["127.0.0.1"], port: pgPort, ...pgTls }),
    );
    return startPostgres(
      sandbox,
      postgresUser,
      { dropIn: { fileName: path.basename(PATHS.postgresConf), content: dropIn }, pgHba },
      {
        port: pgPort,
        confDir: under(roots.postgres, PATHS.postgresConfDir),
        dataDir: under(roots.postgres, "/var/lib/postgresql/15/main"),
        socketDir: under(roots.postgres, PGBOUNCER_DEBIAN.unixSocketDir),
      },
    );
  });
  const pgPort = pg.port;
  // Bootstrap exactly as the apply script runs it: psql -v ON_ERROR_STOP=1 -d postgres, stdin.
  const bootstrap = resolveSecretRefs(renderPostgresBootstrap(postgresBootstrapSettingsFor(model)), secrets.byParameter);
  const boot = await pg.runScript(bootstrap);
  if (boot.code !== 0) throw new Error(`the rendered bootstrap SQL failed on PostgreSQL 15:\n${boot.stderr}`);

  // --- PgBouncer -------------------------------------------------------------------------
  const bouncerDirs = [
    PGBOUNCER_DEBIAN.unixSocketDir,
    path.dirname(PGBOUNCER_DEBIAN.logFile),
    PATHS.pgbouncerTlsDir,
    path.dirname(PATHS.pgbouncerIni),
  ];
  for (const dir of bouncerDirs) {
    const full = under(roots.pgbouncer, dir);
    fs.mkdirSync(full, { recursive: true });
    fs.chownSync(full, postgresUser.uid, postgresUser.gid);
  }
  const tlsFiles = {
    caFile: installPem(ca.certPath, under(roots.pgbouncer, PATHS.caCert), postgresUser, 0o644),
    clientTlsCertFile: installPem(bouncerCert.certPath, under(roots.pgbouncer, PGBOUNCER_TLS_FILES.cert), postgresUser, 0o644),
    clientTlsKeyFile: installPem(bouncerCert.keyPath, under(roots.pgbouncer, PGBOUNCER_TLS_FILES.key), postgresUser, 0o600),
  };
  let bouncerPort = 0; // chosen below; every later rendering uses the port PgBouncer got
  const bouncerSettingsFor = (m: StackModel): PgbouncerSettings => {
    const production = pgbouncerSettingsFor(m);
    return remapForSandbox(production, [...PGBOUNCER_REMAPPED, "serverHost"], {
      listenAddresses: ["127.0.0.1"],
      listenPort: bouncerPort,
      unixSocketDir: under(roots.pgbouncer, production.unixSocketDir),
      pidFile: under(roots.pgbouncer, production.pidFile),
      logFile: under(roots.pgbouncer, production.logFile),
      authFile: under(roots.pgbouncer, production.authFile),
      serverPort: pgPort,
      // PostgreSQL's DNS name stays (the private /etc/hosts maps it to 127.0.0.1); only the
      // declared fallback for machines without mount namespaces dials the address instead.
      serverHost: byName ? production.serverHost : "127.0.0.1",
      ...tlsFiles,
    });
  };
  const pgbouncerIniFor = (m: StackModel, overrides: Readonly<Record<string, PgbouncerValue>> = {}) =>
    renderPgbouncerIni({ ...bouncerSettingsFor(m), overrides });
  const userlistFor = (m: StackModel) => renderPgbouncerUserlist(pgbouncerUserlistSettingsFor(m));
  const userlist = resolveSecretRefs(userlistFor(model), secrets.byParameter);
  const hostsFile = sandbox.writeFile(under(roots.pgbouncer, "/etc/hosts"), `127.0.0.1\tlocalhost\n127.0.0.1\t${pgHost.fqdn}\n`);
  let ini = "";
  const startBouncer = (port: number, text: string) => {
    const settings = bouncerSettingsFor(model);
    const iniPath = sandbox.writeFile(under(roots.pgbouncer, PATHS.pgbouncerIni), text, { owner: postgresUser, mode: 0o640 });
    sandbox.writeFile(settings.authFile, userlist, { owner: postgresUser, mode: 0o600 });
    return startPgbouncer(sandbox, postgresUser, {
      iniPath,
      port,
      socketDir: settings.unixSocketDir,
      logFile: settings.logFile,
      pidFile: settings.pidFile,
      hostsFile: byName ? hostsFile : undefined,
    });
  };
  let pgbouncer = await withFreshPort(sandbox, (port) => {
    bouncerPort = port;
    ini = pgbouncerIniFor(model);
    return startBouncer(port, ini);
  });
  const restartPgbouncer = async (text: string): Promise<PgbouncerInstance> => {
    await pgbouncer.process.stop();
    pgbouncer = await startBouncer(bouncerPort, text);
    return pgbouncer;
  };

  const odooLogin = (database = model.settings.databases[0], password = secrets.odooDbPassword): Login => ({
    user: DB_ROLES.odoo,
    password,
    database,
  });
  return {
    model,
    secrets,
    ca,
    postgresUser,
    pg,
    get pgbouncer() {
      return pgbouncer;
    },
    roots,
    postgresEndpoint: { serverName: pgHost.fqdn, port: pgPort, caPem: ca.certPem },
    pgbouncerEndpoint: { serverName: bouncerHost.fqdn, port: bouncerPort, caPem: ca.certPem },
    installed: { postgresDropIn: dropIn, pgHba, pgbouncerIni: ini, userlist },
    productionSettings: { postgres: pgProduction, pgbouncer: pgbouncerSettingsFor(model) },
    verifiesPostgresByName: byName,
    pgbouncerIniFor,
    restartPgbouncer,
    userlistFor,
    odooLogin,
    statsLogin: () => ({ user: DB_ROLES.stats, password: secrets.statsPassword, database: "pgbouncer" }),
  };
}
