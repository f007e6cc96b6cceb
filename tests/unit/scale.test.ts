// Issue 8, the pure parts: the settings (postgresEngine, sharedFilestore, RDS classes and
// retention), the sizing over 1, 2 and 4 Odoo hosts (PgBouncer's client side follows N, the
// server side stays bounded by the pools), one cron host, the proxy's upstreams, the RDS
// parameter group from the same tables as the EC2 drop-in, the RDS bootstrap and service file,
// PgBouncer in front of RDS, and the user data that mounts EFS over TLS.
import * as fs from "fs";
import * as path from "path";
import { ConfigError, RDS_POSTGRES_INSTANCE_TYPES } from "../../lib/config";
import { knownInstanceType } from "../../lib/instance-types";
import { PATHS, secretRef } from "../../lib/model";
import { odooRoleConnectionLimit, POSTGRES_RESERVED } from "../../lib/sizing";
import { buildUserData, EFS_PACKAGES, firstBootSteps } from "../../templates/cloud-init";
import { renderNginxSite, nginxSiteSettingsFor } from "../../templates/nginx";
import { odooConfSettingsFor } from "../../templates/odoo-conf";
import { pgbouncerSettingsFor, renderPgbouncerIni } from "../../templates/pgbouncer";
import { staticForced } from "../../lib/layering";
import { POSTGRES_CONF, postgresConfSettingsFor } from "../../templates/postgresql";
import { logGroupName } from "../../templates/cloudwatch-agent";
import {
  rdsAdminServiceSettingsFor,
  rdsBootstrapSettingsFor,
  rdsInstanceIdentifier,
  rdsMonitorServiceSettingsFor,
  rdsParameters,
  rdsPgbouncerHostFiles,
  renderRdsBootstrap,
  renderRdsService,
} from "../../templates/rds";
import { hostFiles } from "../../templates/hosts";
import { modelWith, settingsWith } from "../helpers/fixtures";

const problemsOf = (overrides: Record<string, unknown>): { key: string; fix: string }[] => {
  try {
    settingsWith(overrides);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => ({ key: p.key, fix: p.fix }));
    throw e;
  }
  return [];
};

describe("settings", () => {
  it("defaults to PostgreSQL on EC2, Multi-AZ for RDS, and a shared filestore from the second Odoo host on", () => {
    expect(settingsWith()).toEqual(expect.objectContaining({ postgresEngine: "ec2", rdsMultiAz: true, sharedFilestore: false }));
    expect(settingsWith({ odooInstances: 2 }).sharedFilestore).toBe(true);
    expect(settingsWith({ odooInstances: 1, sharedFilestore: true }).sharedFilestore).toBe(true);
    expect(settingsWith({ postgresEngine: "rds", rdsMultiAz: "false" })).toEqual(
      expect.objectContaining({ postgresEngine: "rds", rdsMultiAz: false }),
    );
  });

  it.each([
    ["an unknown engine", { postgresEngine: "aurora" }, "postgresEngine", /must be "ec2" .* or "rds"/],
    [
      "several Odoo hosts without a shared filestore",
      { odooInstances: 3, sharedFilestore: false },
      "sharedFilestore",
      /must be true with odooInstances = 3: .*attachments uploaded through one host 404 on the others/,
    ],
    [
      "a class RDS does not offer",
      { postgresEngine: "rds", postgresInstanceType: "c6i.large" },
      "postgresInstanceType",
      /is not an RDS for PostgreSQL 15 class .*\(used as db\.c6i\.large\); pick one of /,
    ],
    [
      "RDS retention beyond 35 days",
      { postgresEngine: "rds", backupRetentionDays: 36 },
      "backupRetentionDays",
      /must be at most 35 with postgresEngine = "rds"/,
    ],
    ["rdsMultiAz that is not a boolean", { postgresEngine: "rds", rdsMultiAz: "twice" }, "rdsMultiAz", /must be true or false/],
    ["sharedFilestore that is not a boolean", { sharedFilestore: "yes" }, "sharedFilestore", /must be true or false/],
  ])("refuses %s with the key and the fix", (_why, overrides, key, fix) => {
    const problems = problemsOf(overrides);
    expect(problems).toEqual([{ key, fix: expect.stringMatching(fix) }]);
  });

  it("accepts 36 days of retention on EC2 (pgBackRest has no such limit)", () => {
    expect(settingsWith({ backupRetentionDays: 36 }).backupRetentionDays).toBe(36);
  });

  it("lists only RDS classes whose EC2 shape the sizing knows and that have at least 2 GiB", () => {
    for (const type of RDS_POSTGRES_INSTANCE_TYPES) {
      const spec = knownInstanceType(type);
      expect([type, spec !== undefined && spec.memoryMiB >= 2048]).toEqual([type, true]);
    }
  });
});

describe.each([1, 2, 4])("%i Odoo host(s)", (n) => {
  const model = modelWith({ odooInstances: n });
  const { odoo, pgbouncer, postgres } = model.settings.sizing;

  it("sizes PgBouncer's client side for every process of every host (POOL-4)", () => {
    expect(pgbouncer.maxClientConn).toBeGreaterThanOrEqual(
      n * (odoo.workers * odoo.dbMaxconn + odoo.dbMaxconnGevent) + odoo.maxCronThreads * odoo.dbMaxconn,
    );
    expect(pgbouncer.defaultPoolSize).toBe((odoo.workers + 1) * n + odoo.maxCronThreads);
    // DESIGN 7: every host's bus and cron LISTENer, every process's short-lived session.
    expect(pgbouncer.postgresPoolSize).toBe(n + odoo.maxCronThreads + (odoo.workers + 1) * n + odoo.maxCronThreads);
    expect(pgbouncer.postgresReservePoolSize).toBe(1 + odoo.maxCronThreads + 1);
  });

  it("keeps PostgreSQL's server connections bounded by the pools, not by the clients (PG-1)", () => {
    const s = postgres.slots;
    const postgresPool = pgbouncer.postgresPoolSize + pgbouncer.postgresReservePoolSize;
    expect(postgres.maxConnections).toBe(
      pgbouncer.maxUserConnections +
        postgresPool +
        pgbouncer.migrationConnections +
        s.stats +
        s.backup +
        s.monitoring +
        s.admin +
        s.superuserReserved,
    );
    expect(postgres.maxConnections).toBeLessThan(pgbouncer.maxClientConn);
    expect(odooRoleConnectionLimit(pgbouncer)).toBe(pgbouncer.maxUserConnections + postgresPool);
  });

  it("lets exactly one host run crons, and the model names it", () => {
    const threads = model.hosts.odoo.map((h) => odooConfSettingsFor(model, h).maxCronThreads);
    expect(threads.filter((t) => t > 0)).toEqual([odoo.maxCronThreads]);
    expect(model.cronHost.id).toBe("odoo-1");
    expect(threads[0]).toBeGreaterThan(0);
  });

  it("lists every Odoo host in both upstreams of the proxy (8069 and 8072)", () => {
    const site = renderNginxSite(nginxSiteSettingsFor(model));
    for (const port of [8069, 8072]) {
      const servers = [...site.matchAll(new RegExp(`server (\\S+):${port}\\b`, "g"))].map((m) => m[1]).sort();
      expect(servers).toEqual(model.hosts.odoo.map((h) => h.privateIp).sort());
    }
  });
});

describe("server connections as N grows", () => {
  it("grow by exactly the new hosts' workers and listeners, while clients grow by their connection pools", () => {
    const [one, two, four] = [1, 2, 4].map((n) => modelWith({ odooInstances: n }).settings.sizing);
    const perHostPool = one.odoo.workers + 1; // the HTTP workers and the gevent worker
    expect(two.pgbouncer.postgresPoolSize - one.pgbouncer.postgresPoolSize).toBe(perHostPool + 1); // + the host's bus LISTENer
    expect(two.pgbouncer.defaultPoolSize - one.pgbouncer.defaultPoolSize).toBe(perHostPool);
    expect(four.pgbouncer.defaultPoolSize - two.pgbouncer.defaultPoolSize).toBe(2 * perHostPool);
    expect(four.pgbouncer.maxClientConn - one.pgbouncer.maxClientConn).toBeGreaterThan(
      four.postgres.maxConnections - one.postgres.maxConnections,
    );
  });
});

describe("RDS parameter group (PG-1, PG-2, PG-3, AUTH-1, TLS-1, OBS-7)", () => {
  const model = modelWith({ odooInstances: 2, postgresEngine: "rds" });
  const parameters = rdsParameters(model);
  const byName = Object.fromEntries(parameters.map((p) => [p.name, p]));
  const ec2Forced = postgresConfSettingsFor(modelWith({ odooInstances: 2 })).sizing;

  it("carries the EC2 drop-in's checklist values, from the same sizing and forced table", () => {
    const pg = model.settings.sizing.postgres;
    expect(Object.fromEntries(parameters.map((p) => [p.name, p.value]))).toEqual({
      idle_in_transaction_session_timeout: String(pg.idleInTransactionSessionTimeoutMs),
      lock_timeout: String(pg.lockTimeoutMs),
      log_lock_waits: "1",
      max_connections: String(pg.maxConnections),
      password_encryption: staticForced(POSTGRES_CONF, "password_encryption"),
      "rds.force_ssl": "1",
      shared_preload_libraries: staticForced(POSTGRES_CONF, "shared_preload_libraries"),
      ssl_min_protocol_version: staticForced(POSTGRES_CONF, "ssl_min_protocol_version"),
      statement_timeout: String(pg.statementTimeoutMs),
    });
    expect(byName.max_connections.value).toBe(String(ec2Forced.maxConnections));
  });

  it("applies the static parameters at the next reboot and the rest immediately, sorted by name", () => {
    expect(parameters.filter((p) => p.applyMethod === "pending-reboot").map((p) => p.name)).toEqual([
      "max_connections",
      "shared_preload_libraries",
    ]);
    expect(parameters.map((p) => p.name)).toEqual([...parameters.map((p) => p.name)].sort());
  });

  it("follows a postgres override of a timeout (the sizing is the one source)", () => {
    const custom = rdsParameters(modelWith({ postgresEngine: "rds", postgres: { statementTimeoutMs: 60000 } }));
    expect(custom.find((p) => p.name === "statement_timeout")?.value).toBe("60000");
  });
});

describe("PgBouncer in front of RDS (TLS-1, TLS-2, TLS-3)", () => {
  const model = modelWith({ odooInstances: 2, postgresEngine: "rds" });
  const ini = renderPgbouncerIni(pgbouncerSettingsFor(model));

  it("dials the endpoint named through its SSM parameter, verify-full against the RDS bundle; clients still use the internal CA", () => {
    const endpoint = secretRef(model.parameters.rdsEndpoint);
    const databaseLines = ini.split("\n").filter((l) => /^(erp|postgres) = /.test(l));
    expect(databaseLines).toHaveLength(2);
    for (const line of databaseLines) expect(line).toContain(`host=${endpoint}`);
    expect(ini).toMatch(new RegExp(`^server_tls_ca_file = ${PATHS.rdsCaBundle}$`, "m"));
    expect(ini).toMatch(new RegExp(`^client_tls_ca_file = ${PATHS.caCert}$`, "m"));
    expect(ini).toMatch(/^server_tls_sslmode = verify-full$/m);
  });

  it("keeps the EC2 engine's PgBouncer file unchanged: the PostgreSQL host's name and the internal CA", () => {
    const ec2 = renderPgbouncerIni(pgbouncerSettingsFor(modelWith({ odooInstances: 2 })));
    expect(ec2).toContain("host=postgres.odoo.internal");
    expect(ec2).toMatch(new RegExp(`^server_tls_ca_file = ${PATHS.caCert}$`, "m"));
  });

  it("gives the PgBouncer host the RDS bootstrap and the master's and the collector's service files, 0600 root, and no host any PostgreSQL file", () => {
    const files = hostFiles(model, model.hosts.pgbouncer);
    const extra = files.filter((f) =>
      ([PATHS.postgresBootstrapSql, PATHS.rdsAdminServiceFile, PATHS.rdsMonitorServiceFile] as string[]).includes(f.path),
    );
    expect(extra.map((f) => [f.path, f.mode, f.owner])).toEqual([
      [PATHS.postgresBootstrapSql, "0600", "root"],
      [PATHS.rdsAdminServiceFile, "0600", "root"],
      [PATHS.rdsMonitorServiceFile, "0600", "root"],
    ]);
    expect(model.allHosts.map((h) => h.id)).not.toContain("postgres");
    for (const host of model.allHosts) {
      expect([
        host.id,
        hostFiles(model, host)
          .filter((f) => f.path.startsWith("/etc/postgresql/") || f.path.includes("pgbackrest"))
          .map((f) => f.path),
      ]).toEqual([host.id, []]);
    }
    expect(rdsPgbouncerHostFiles(modelWith())).toEqual([]);
  });

  it("bootstraps the Odoo role with the same limits and timeouts as on EC2, without superuser-only statements", () => {
    const sql = renderRdsBootstrap(rdsBootstrapSettingsFor(model));
    const pg = model.settings.sizing.postgres;
    expect(sql).toContain(
      `ALTER ROLE "odoo" WITH LOGIN NOCREATEDB NOCREATEROLE INHERIT CONNECTION LIMIT ${odooRoleConnectionLimit(model.settings.sizing.pgbouncer)};`,
    );
    for (const line of [
      `ALTER ROLE "odoo" SET statement_timeout = ${pg.statementTimeoutMs};`,
      `ALTER ROLE "odoo" SET lock_timeout = ${pg.lockTimeoutMs};`,
      `ALTER ROLE "odoo" SET idle_in_transaction_session_timeout = ${pg.idleInTransactionSessionTimeoutMs};`,
      'GRANT "odoo" TO "odoo_stack_admin";',
    ]) {
      expect(sql.split("\n").filter((l) => l === line)).toHaveLength(1);
    }
    expect(sql).not.toMatch(/NOSUPERUSER|NOREPLICATION|NOBYPASSRLS|SET log_statement/);
    // The verifier only when the role is created: a rotation's new verifier reaches RDS through
    // odoo-stack-rotate postgres once PgBouncer re-opened its connections, never in the apply run
    // that RELOADs PgBouncer (AUTH-4, templates/procedures.ts).
    expect(sql).toContain(
      `SELECT 'CREATE ROLE "odoo" PASSWORD ''${secretRef(model.parameters.odooDbScramVerifier)}''' WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'odoo')\\gexec`,
    );
    expect(sql).not.toMatch(/ALTER ROLE "odoo" WITH PASSWORD/);
    expect(() => renderRdsBootstrap({ ...rdsBootstrapSettingsFor(model), odooPasswordVerifier: "hunter2" })).toThrow(/never plaintext/);
  });

  it("creates the collector's monitor role with pg_monitor only, its password a reference (OBS-7, PG-4)", () => {
    const sql = renderRdsBootstrap(rdsBootstrapSettingsFor(model));
    for (const line of [
      `ALTER ROLE "odoo_stack_monitor" WITH LOGIN NOCREATEDB NOCREATEROLE INHERIT CONNECTION LIMIT ${POSTGRES_RESERVED.monitoring};`,
      `ALTER ROLE "odoo_stack_monitor" WITH PASSWORD '${secretRef(model.parameters.monitorPassword)}';`,
      'GRANT pg_monitor TO "odoo_stack_monitor";',
    ]) {
      expect(sql.split("\n").filter((l) => l === line)).toHaveLength(1);
    }
    // CREATE ROLE, two ALTER ROLEs and the GRANT: no other privilege, no other role change.
    expect(sql.match(/"odoo_stack_monitor"/g)).toHaveLength(4);
    expect(() => renderRdsBootstrap({ ...rdsBootstrapSettingsFor(model), monitorPassword: "hunter2" })).toThrow(/never a literal/);
    expect(() => renderRdsBootstrap({ ...rdsBootstrapSettingsFor(model), monitorConnectionLimit: 0 })).toThrow(
      /monitorConnectionLimit must be a positive whole number/,
    );
  });

  it("connects the collector as the monitor role, never the master, with the same verify-full", () => {
    const text = renderRdsService(rdsMonitorServiceSettingsFor(model));
    const admin = renderRdsService(rdsAdminServiceSettingsFor(model));
    expect(text).toContain("[odoo-stack-rds-monitor]\n");
    expect(text).toContain("\nuser=odoo_stack_monitor\n");
    expect(text).toContain(`\npassword=${secretRef(model.parameters.monitorPassword)}\n`);
    expect(text).not.toContain(secretRef(model.parameters.rdsMasterPassword));
    // Everything else (endpoint, port, TLS) is the master's.
    const rest = (t: string) => t.split("\n").filter((l) => !/^(\[|user=|password=)/.test(l));
    expect(rest(text)).toEqual(rest(admin));
  });

  it("connects the bootstrap as the master with verify-full, the password only as a reference", () => {
    const text = renderRdsService(rdsAdminServiceSettingsFor(model));
    expect(text).toContain("[odoo-stack-rds-admin]\n");
    expect(text).toContain(`\nhost=${secretRef(model.parameters.rdsEndpoint)}\n`);
    expect(text).toContain(`\npassword=${secretRef(model.parameters.rdsMasterPassword)}\n`);
    expect(text).toContain("\nsslmode=verify-full\n");
    expect(text).toContain(`\nsslrootcert=${PATHS.rdsCaBundle}\n`);
    expect(() => renderRdsService({ ...rdsAdminServiceSettingsFor(model), password: "s3cret" })).toThrow(/never a literal/);
    expect(() => renderRdsService({ ...rdsAdminServiceSettingsFor(model), host: "evil host\nuser=postgres" })).toThrow(/may hold only/);
  });

  it("names the RDS instance from the project and stack as RDS allows (lower-case, single hyphens, ≤ 63), and its log group after it", () => {
    expect(rdsInstanceIdentifier(modelWith({ postgresEngine: "rds" }, "prod"))).toBe("odoo-stack-prod-postgres");
    expect(rdsInstanceIdentifier(modelWith({ postgresEngine: "rds" }, "Prod_EU.2"))).toBe("odoo-stack-prod-eu-2-postgres");
    expect(rdsInstanceIdentifier(modelWith({ postgresEngine: "rds" }, "a--b"), "postgres-final")).toBe("odoo-stack-a-b-postgres-final");
    const long = rdsInstanceIdentifier(modelWith({ postgresEngine: "rds" }, `${"x".repeat(44)}-yy`));
    // The stack part is cut to fit 63 characters; the suffix stays whole.
    expect(long).toBe(`odoo-stack-${"x".repeat(43)}-postgres`);
    expect(long).toHaveLength(63);
    expect(long).toMatch(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
    const rds = modelWith({ postgresEngine: "rds" }, "prod");
    expect(logGroupName(rds, "postgresql")).toBe("/aws/rds/instance/odoo-stack-prod-postgres/postgresql");
    expect(logGroupName(modelWith({}, "prod"), "postgresql")).toBe("/odoo-stack/prod/postgresql");
    expect(logGroupName(rds, "pgbouncer")).toBe("/odoo-stack/prod/pgbouncer");
  });

  it("names the same service file and service in the apply script", () => {
    const script = fs.readFileSync(path.join(__dirname, "../../templates/scripts/odoo-stack-apply.sh"), "utf8");
    expect(script).toContain(`readonly RDS_ADMIN_SERVICE_FILE=${PATHS.rdsAdminServiceFile}`);
    expect(script).toContain("readonly RDS_ADMIN_SERVICE=odoo-stack-rds-admin");
  });
});

describe("user data of the shared filestore and of PgBouncer on RDS", () => {
  const base = {
    region: "eu-west-1",
    configBucket: "config-bucket-1234567",
    stack: "test",
    odooVersion: "17.0" as const,
    odooBuild: "20241201",
  };

  it("mounts EFS over TLS at data_dir before the odoo package, with the NFS client and stunnel installed", () => {
    const doc = firstBootSteps({ ...base, hostId: "odoo-2", role: "odoo", efsFileSystemId: "fs-0123456789abcdef0" });
    const steps = doc.map((c) => c.join(" "));
    const mount = steps.indexOf(`efs-mount fs-0123456789abcdef0 eu-west-1 ${PATHS.odooDataDir}`);
    const install = steps.findIndex((step) => step === "install odoo=17.0.20241201");
    expect(mount).toBeGreaterThan(0);
    expect(mount).toBeLessThan(install);
    for (const p of EFS_PACKAGES) expect(doc.find((c) => c[0] === "packages")).toContain(p);
    const single = firstBootSteps({ ...base, hostId: "odoo-1", role: "odoo" });
    expect(single.some((c) => c.includes("efs-mount"))).toBe(false);
    expect(single.find((c) => c[0] === "packages")).not.toContain("stunnel4");
  });

  it("fetches the RDS CA bundle on the PgBouncer host only", () => {
    expect(firstBootSteps({ ...base, hostId: "pgbouncer", role: "pgbouncer", rdsCaBundle: true })).toContainEqual([
      "rds-ca-bundle",
      "eu-west-1",
      PATHS.rdsCaBundle,
    ]);
    expect(() => buildUserData({ ...base, hostId: "odoo-1", role: "odoo", rdsCaBundle: true })).toThrow(/only PgBouncer connects to RDS/);
    expect(() => buildUserData({ ...base, hostId: "pgbouncer", role: "pgbouncer", efsFileSystemId: "fs-0123456789abcdef0" })).toThrow(
      /only Odoo hosts mount the shared filestore/,
    );
    expect(() => buildUserData({ ...base, hostId: "odoo-1", role: "odoo", efsFileSystemId: "fs-1; rm -rf /" })).toThrow(
      /an EFS file system id/,
    );
  });
});
