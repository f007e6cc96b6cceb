// The stack model: validated settings plus every name derived from them (DNS names, SSM
// parameter paths, on-host paths). Pure: renderers, components, policies and tests all read
// names from here, so a name is spelled once.
import { hostAddress, parseCidr, type Cidr } from "./cidr";
import type { StackSettings } from "./config";

/** A host of the stack. Odoo hosts are numbered from 1; host 1 runs the crons. */
export type HostRole = "proxy" | "odoo" | "pgbouncer" | "postgres";

export interface HostId {
  readonly role: HostRole;
  /** Unique, stable id: "proxy", "odoo-1", "odoo-2", "pgbouncer", "postgres". */
  readonly id: string;
  /** Private DNS name in the internal zone; what TLS SANs carry (TLS-3). */
  readonly fqdn: string;
  /** Only odoo-1 runs crons (max_cron_threads > 0); every other Odoo host gets 0. */
  readonly runsCron: boolean;
  /**
   * Fixed private address, chosen here so that renderers know it before the instance exists:
   * Odoo binds http_interface to it (NET-1), nginx and pg_hba name it.
   */
  readonly privateIp: string;
  /** Index into the public (proxy) or private (others) subnet list: which AZ the host is in. */
  readonly subnetIndex: number;
}

/**
 * Host offsets inside a subnet. AWS reserves .0–.3 and the last address; the rest of the
 * subnet stays free for NAT, endpoints and load balancers.
 */
export const HOST_OFFSETS = { proxy: 10, pgbouncer: 11, postgres: 12, odooFirst: 20 } as const;

/** Database roles the stack creates on PostgreSQL. */
export const DB_ROLES = {
  /** Odoo's application role: owns the Odoo databases, per-role timeouts (PG-2). */
  odoo: "odoo",
  /**
   * `odoo -u` (migrations, templates/odoo-conf.ts odooMigrationCommand) and the databases' first
   * `odoo -i` (templates/scripts/odoo-stack-odoo-init.sh): a login role with the migration
   * timeouts (sizing.ts migrationTimeouts) that acts as the Odoo role (ALTER ROLE … SET role), so
   * what it creates belongs to the Odoo role. Same password as the Odoo role: a role's timeouts are defaults its
   * own sessions may change anyway, not a privilege boundary.
   */
  migrate: "odoo_migrate",
  /** PgBouncer's SHOW POOLS / SHOW STATS reader (OBS-1, OBS-2); admin console only. */
  stats: "pgbouncer_stats",
  /** The metrics collector on the database host (OBS-7): pg_monitor. */
  monitor: "odoo_stack_monitor",
  /** RDS only: the master user (rds_superuser) that creates the roles above; never used by Odoo. */
  rdsMaster: "odoo_stack_admin",
} as const;

/**
 * The PostgreSQL cluster every database host runs: Debian 12's postgresql-15 package and
 * postgresql-common's default cluster. Paths, units, pg_ctlcluster and the host scripts derive
 * from it (tests/unit/script-contract.test.ts holds the scripts to it).
 */
export const POSTGRES_CLUSTER = { version: "15", name: "main" } as const;
const PG_CLUSTER_PATH = `${POSTGRES_CLUSTER.version}/${POSTGRES_CLUSTER.name}`;

/**
 * The systemd units the program and the host scripts start, reload and order against (Debian's
 * packages' unit names); tests/unit/script-contract.test.ts holds the scripts to them.
 */
export const UNITS = {
  odoo: "odoo.service",
  pgbouncer: "pgbouncer.service",
  nginx: "nginx.service",
  postgres: `postgresql@${POSTGRES_CLUSTER.version}-${POSTGRES_CLUSTER.name}.service`,
} as const;

/** On-host paths (Debian 12 packages' layout), shared by renderers, cloud-init and tests. */
export const PATHS = {
  odooConf: "/etc/odoo/odoo.conf",
  odooLogDir: "/var/log/odoo",
  odooLogFile: "/var/log/odoo/odoo-server.log",
  odooDataDir: "/var/lib/odoo",
  /** stunnel's client config for the EFS mount (Debian's stunnel@.service reads /etc/stunnel/<name>.conf). */
  efsStunnelConf: "/etc/stunnel/odoo-stack-efs.conf",
  /** The RDS CA bundle PgBouncer verifies the RDS endpoint with (TLS-1, verify-full). */
  rdsCaBundle: "/etc/pgbouncer/tls/rds-ca-bundle.pem",
  /** libpq service file of the RDS master connection the bootstrap SQL runs through (RDS only). */
  rdsAdminServiceFile: "/etc/odoo-stack/rds-admin.pg_service.conf",
  /** libpq service file of the metrics collector's read-only connection to RDS (OBS-7; RDS only). */
  rdsMonitorServiceFile: "/etc/odoo-stack/rds-monitor.pg_service.conf",
  odooCoreAddons: "/usr/lib/python3/dist-packages/odoo/addons",
  odooCustomAddons: "/opt/odoo/custom-addons",
  /** Settings of the Odoo databases' first install (cron host; holds the admin user's password). */
  odooInitEnv: "/etc/odoo-stack/odoo-init.env",
  odooLogrotate: "/etc/logrotate.d/odoo",
  nginxConf: "/etc/nginx/nginx.conf",
  nginxSite: "/etc/nginx/conf.d/odoo.conf",
  nginxTlsDir: "/etc/nginx/tls",
  pgbouncerIni: "/etc/pgbouncer/pgbouncer.ini",
  pgbouncerUserlist: "/etc/pgbouncer/userlist.txt",
  pgbouncerTlsDir: "/etc/pgbouncer/tls",
  pgbouncerLimits: `/etc/systemd/system/${UNITS.pgbouncer}.d/odoo-stack.conf`,
  postgresConfDir: `/etc/postgresql/${PG_CLUSTER_PATH}`,
  postgresConf: `/etc/postgresql/${PG_CLUSTER_PATH}/conf.d/90-odoo-stack.conf`,
  postgresHba: `/etc/postgresql/${PG_CLUSTER_PATH}/pg_hba.conf`,
  postgresTlsDir: `/etc/postgresql/${PG_CLUSTER_PATH}/tls`,
  postgresBootstrapSql: "/etc/odoo-stack/bootstrap.sql",
  postgresDataMount: "/var/lib/postgresql",
  caCert: "/usr/local/share/ca-certificates/odoo-stack-internal-ca.crt",
  applyScript: "/usr/local/sbin/odoo-stack-apply",
  manifest: "/etc/odoo-stack/manifest.json",
} as const;

// Rendered files carry secretRef() placeholders instead of secrets (DESIGN principle 5); the
// grammar lives in ./secret-ref, re-exported here where the renderers read their names.
export { SECRET_REF, secretRef } from "./secret-ref";

export interface StackModel {
  readonly project: string;
  readonly stack: string;
  readonly settings: StackSettings;
  readonly hosts: {
    readonly proxy: HostId;
    readonly odoo: readonly HostId[];
    readonly pgbouncer: HostId;
    readonly postgres: HostId;
  };
  /** SSM parameter paths; SecureString for secrets, String for certificates. */
  readonly parameters: {
    readonly odooAdminPassword: string;
    /** The password of Odoo's `admin` user, set by the databases' first install (never admin/admin). */
    readonly odooAdminUserPassword: string;
    readonly odooDbPassword: string;
    readonly odooDbScramVerifier: string;
    readonly statsPassword: string;
    readonly statsScramVerifier: string;
    readonly monitorPassword: string;
    readonly backupCipherPass: string;
    /** The SMTP password the stack generates when mail names no passwordParameter (SecureString). */
    readonly mailPassword: string;
    /** RDS only: the master user's password (SecureString). */
    readonly rdsMasterPassword: string;
    /** RDS only: the instance's endpoint address (String), known once RDS created it. */
    readonly rdsEndpoint: string;
    readonly caCert: string;
    readonly hostCert: (hostId: string) => string;
    readonly hostKey: (hostId: string) => string;
  };
  /** Every host, in a stable order. With postgresEngine "rds" there is no PostgreSQL host. */
  readonly allHosts: readonly HostId[];
  /** The host whose Odoo runs the crons (LIMIT-2): the stack exports it as cronHostId. */
  readonly cronHost: HostId;
}

export function buildModel(stack: string, settings: StackSettings, project = "odoo-stack"): StackModel {
  const zone = settings.internalZone;
  const pub = settings.publicSubnetCidrs.map((c) => parseCidr(c) as Cidr);
  const priv = settings.privateSubnetCidrs.map((c) => parseCidr(c) as Cidr);
  const host = (role: HostRole, id: string, subnets: Cidr[], subnetIndex: number, offset: number, runsCron = false): HostId => ({
    role,
    id,
    fqdn: `${id}.${zone}`,
    runsCron,
    privateIp: hostAddress(subnets[subnetIndex], offset),
    subnetIndex,
  });
  // Odoo hosts spread over the AZs round-robin (issue: several Odoo hosts); the database tier
  // sits in the first AZ with PostgreSQL's data volume.
  const odoo = Array.from({ length: settings.odooInstances }, (_, i) =>
    host("odoo", `odoo-${i + 1}`, priv, i % priv.length, HOST_OFFSETS.odooFirst + Math.floor(i / priv.length), i === 0),
  );
  const proxy = host("proxy", "proxy", pub, 0, HOST_OFFSETS.proxy);
  const pgbouncer = host("pgbouncer", "pgbouncer", priv, 0, HOST_OFFSETS.pgbouncer);
  const postgres = host("postgres", "postgres", priv, 0, HOST_OFFSETS.postgres);
  const p = (name: string) => `/${project}/${stack}/${name}`;
  return {
    project,
    stack,
    settings,
    hosts: { proxy, odoo, pgbouncer, postgres },
    parameters: {
      odooAdminPassword: p("odoo/admin-passwd"),
      odooAdminUserPassword: p("odoo/admin-user-password"),
      odooDbPassword: p("odoo/db-password"),
      odooDbScramVerifier: p("pgbouncer/odoo-scram-verifier"),
      statsPassword: p("pgbouncer/stats-password"),
      statsScramVerifier: p("pgbouncer/stats-scram-verifier"),
      monitorPassword: p("postgres/monitor-password"),
      backupCipherPass: p("backup/cipher-pass"),
      mailPassword: p("mail/smtp-password"),
      rdsMasterPassword: p("rds/master-password"),
      rdsEndpoint: p("rds/endpoint"),
      caCert: p("tls/ca-cert"),
      hostCert: (id) => p(`tls/${id}/cert`),
      hostKey: (id) => p(`tls/${id}/key`),
    },
    // hosts.postgres stays: its id and name label the database tier either way; with RDS no
    // instance, certificate or file exists for it.
    allHosts: settings.postgresEngine === "rds" ? [proxy, ...odoo, pgbouncer] : [proxy, ...odoo, pgbouncer, postgres],
    cronHost: odoo.filter((h) => h.runsCron)[0],
  };
}
