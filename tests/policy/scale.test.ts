// Issue 8 through the pack's policies (called directly, as the other policy unit tests do): a
// valid stack with 1, 2 and 4 Odoo hosts on either engine passes every policy of every area;
// then the RDS, EFS and cron-host policies each reject exactly the one thing broken. The gRPC
// route is covered by scale-mutations.test.ts against the real program and pack.
import { policies as auth } from "../../policy/auth";
import { policies as compute } from "../../policy/compute";
import { efsFileSystemEncrypted, efsFileSystemRequiresTls, efsMountTargetsOnlyFromOdoo, policies as efs } from "../../policy/efs";
import { policies as limits, odooExactlyOneCronHost } from "../../policy/limits";
import { policies as network } from "../../policy/network";
import { policies as odoo } from "../../policy/odoo";
import { policies as pool } from "../../policy/pool";
import { policies as postgres } from "../../policy/postgres";
import { policies as proxy } from "../../policy/proxy";
import {
  policies as rds,
  rdsInstanceBackupRetention,
  rdsInstanceDeletionProtection,
  rdsInstanceMultiAz,
  rdsInstanceNotPublic,
  rdsInstanceStorageEncrypted,
  rdsMaxConnectionsCoverPgbouncer,
  rdsParameterGroupChecklist,
} from "../../policy/rds";
import { policies as stack } from "../../policy/stack";
import { policies as storage } from "../../policy/storage";
import { certificateSansMatchClients, policies as tls } from "../../policy/tls";
import type { Policy, ResourceValidationPolicy, StackValidationPolicy } from "../../policy/lib/sdk";
import { PATHS } from "../../lib/model";
import { modelWith } from "../helpers/fixtures";
import { setLine, validateResource, validateStack, withContent, withProp, type FakeResource } from "./fakes";
import { replaced, sgName, stackFixture, T } from "./stack-fixture";

const EVERY_POLICY: readonly Policy[] = [
  ...network,
  ...proxy,
  ...odoo,
  ...limits,
  ...pool,
  ...auth,
  ...tls,
  ...postgres,
  ...compute,
  ...storage,
  ...rds,
  ...efs,
  ...stack,
];

/** Every finding of every policy on `resources`, as "policy: message". */
async function everyFinding(resources: readonly FakeResource[]): Promise<string[]> {
  const found: string[] = [];
  for (const policy of EVERY_POLICY) {
    if ("validateStack" in policy) {
      for (const v of await validateStack(policy as StackValidationPolicy, resources)) found.push(`${policy.name}: ${v.message}`);
    } else {
      for (const r of resources)
        for (const m of await validateResource(policy as ResourceValidationPolicy, r)) found.push(`${policy.name}: ${m}`);
    }
  }
  return found;
}

const ODOO_CONF = PATHS.odooConf;
const CASES = [1, 2, 4].flatMap((n) => (["ec2", "rds"] as const).map((engine) => [n, engine] as const));

describe.each(CASES)("%i Odoo host(s), postgresEngine %s", (odooInstances, postgresEngine) => {
  const fixture = stackFixture(modelWith({ odooInstances, postgresEngine, availabilityZoneCount: 2 }));
  const { model } = fixture;

  it("passes every policy of the pack, whose sweep does find a broken item", async () => {
    expect(await everyFinding(fixture.resources)).toEqual([]);
    const broken = withContent(fixture.file(model.hosts.pgbouncer.id, PATHS.pgbouncerIni), setLine("auth_type", "auth_type = md5"));
    expect((await everyFinding(replaced(fixture.resources, broken))).some((f) => f.startsWith("pgbouncer-auth-scram: "))).toBe(true);
  });

  it("has a shared filestore exactly when there are several hosts, and an RDS instance exactly with rds", () => {
    const count = (type: string) => fixture.resources.filter((r) => r.type === type).length;
    expect([count(T.efsFileSystem), count(T.efsMountTarget)]).toEqual(odooInstances > 1 ? [1, 2] : [0, 0]);
    expect([count(T.rdsInstance), count(T.rdsParameterGroup), count(T.volume)]).toEqual(postgresEngine === "rds" ? [1, 1, 0] : [0, 0, 1]);
    expect(fixture.resources.filter((r) => r.type === T.instance && r.props.tags["odoo-stack:role"] === "postgres")).toHaveLength(
      postgresEngine === "rds" ? 0 : 1,
    );
  });

  it("odoo-exactly-one-cron-host rejects a stack whose cron host stops running crons (LIMIT-2)", async () => {
    const conf = withContent(fixture.file(model.cronHost.id, ODOO_CONF), setLine("max_cron_threads", "max_cron_threads = 0"));
    const violations = await validateStack(odooExactlyOneCronHost, replaced(fixture.resources, conf));
    expect(violations.map((v) => v.message)).toEqual([
      expect.stringMatching(/no Odoo host \(.*\) runs crons, so scheduled jobs never run \(LIMIT-2\)\.$/),
    ]);
  });

  if (odooInstances > 1) {
    it("odoo-exactly-one-cron-host rejects a second cron host, naming it (LIMIT-2)", async () => {
      const last = model.hosts.odoo[odooInstances - 1];
      const conf = withContent(fixture.file(last.id, ODOO_CONF), setLine("max_cron_threads", "max_cron_threads = 1"));
      const violations = await validateStack(odooExactlyOneCronHost, replaced(fixture.resources, conf));
      expect(violations).toEqual([{ message: expect.stringContaining(`of ${last.id} (`), urn: expect.stringContaining(conf.name) }]);
      expect(violations[0].message).toMatch(
        new RegExp(`${model.cronHost.id}, ${last.id} all run crons, so every scheduled job would run 2 times at once.*\\(LIMIT-2\\)\\.$`),
      );
    });
  }
});

describe("RDS instance policies", () => {
  const fixture = stackFixture(modelWith({ odooInstances: 2, postgresEngine: "rds" }));
  const instance = fixture.get("postgres-rds");

  it.each(
    [
      [
        rdsInstanceNotPublic,
        "publiclyAccessible",
        true,
        "RDS instance (postgres-rds) must not be publicly accessible (publiclyAccessible = false): PostgreSQL accepts only PgBouncer (NET-6).",
      ],
      [
        rdsInstanceStorageEncrypted,
        "storageEncrypted",
        false,
        "RDS instance (postgres-rds) must encrypt its storage (storageEncrypted = true): it holds the database and its password verifiers (AUTH-2, BACKUP-1).",
      ],
      [
        rdsInstanceDeletionProtection,
        "deletionProtection",
        false,
        "RDS instance (postgres-rds) must have deletion protection (deletionProtection = true), so no change or destroy can delete the database (BACKUP-1).",
      ],
      [
        rdsInstanceBackupRetention,
        "backupRetentionPeriod",
        3,
        "RDS instance (postgres-rds) must keep automated backups for at least 7 days (backupRetentionPeriod); it is 3 (BACKUP-1).",
      ],
      [
        rdsInstanceMultiAz,
        "multiAz",
        false,
        "RDS instance (postgres-rds) must run Multi-AZ (multiAz = true) in production; set requireMultiAz = false in the policy config for a test stack (BACKUP-1).",
      ],
    ].map(([policy, property, value, message]) => [(policy as ResourceValidationPolicy).name, property, value, policy, message] as const),
  )("%s passes the planned instance and rejects %s = %p", async (_name, property, value, policy, message) => {
    expect(await validateResource(policy as ResourceValidationPolicy, instance)).toEqual([]);
    expect(await validateResource(policy as ResourceValidationPolicy, withProp(instance, property as string, value))).toEqual([message]);
  });

  it("lets a test stack run single-AZ through the policy config, and reads the configured retention", async () => {
    expect(await validateResource(rdsInstanceMultiAz, withProp(instance, "multiAz", false), { requireMultiAz: false })).toEqual([]);
    expect(await validateResource(rdsInstanceBackupRetention, instance, { minimumBackupRetentionDays: 36 })).toEqual([
      "RDS instance (postgres-rds) must keep automated backups for at least 36 days (backupRetentionPeriod); it is 30 (BACKUP-1).",
    ]);
  });
});

describe("rds-parameter-group-checklist (PG-2, PG-3, TLS-1, AUTH-1)", () => {
  const fixture = stackFixture(modelWith({ postgresEngine: "rds" }));
  const group = fixture.get("postgres-parameters");
  const withParameters = (edit: (ps: { name: string; value: string }[]) => { name: string; value: string }[]) =>
    withProp(group, "parameters", edit(group.props.parameters.map((p: { name: string; value: string }) => ({ ...p }))));
  const set = (name: string, value: string) => withParameters((ps) => ps.map((p) => (p.name === name ? { ...p, value } : p)));
  const drop = (name: string) => withParameters((ps) => ps.filter((p) => p.name !== name));

  it("passes the planned group", async () => {
    expect(await validateResource(rdsParameterGroupChecklist, group)).toEqual([]);
  });

  it.each([
    [
      "without statement_timeout",
      drop("statement_timeout"),
      "RDS parameter group (postgres-parameters) must set statement_timeout to a non-zero value; it is absent (RDS's default 0 disables it) (PG-2).",
    ],
    [
      "with lock_timeout = 0",
      set("lock_timeout", "0"),
      'RDS parameter group (postgres-parameters) must set lock_timeout to a non-zero value; it is "0" (PG-2).',
    ],
    [
      "without idle_in_transaction_session_timeout",
      drop("idle_in_transaction_session_timeout"),
      "RDS parameter group (postgres-parameters) must set idle_in_transaction_session_timeout to a non-zero value; it is absent (RDS's default 0 disables it) (PG-2).",
    ],
    [
      "with log_lock_waits = 0",
      set("log_lock_waits", "0"),
      "RDS parameter group (postgres-parameters) must set log_lock_waits = 1; it is 0 (PG-3).",
    ],
    [
      "with rds.force_ssl = 0",
      set("rds.force_ssl", "0"),
      "RDS parameter group (postgres-parameters) must set rds.force_ssl = 1 so PostgreSQL refuses connections without TLS; it is 0 (TLS-1).",
    ],
    [
      "with password_encryption = md5",
      set("password_encryption", "md5"),
      'RDS parameter group (postgres-parameters) must keep password_encryption = scram-sha-256; it is "md5" (AUTH-1).',
    ],
  ])("rejects a group %s", async (_title, broken, message) => {
    expect(await validateResource(rdsParameterGroupChecklist, broken)).toEqual([message]);
  });

  it("ignores parameter groups of other engines", async () => {
    expect(await validateResource(rdsParameterGroupChecklist, withProp(drop("statement_timeout"), "family", "mysql8.0"))).toEqual([]);
  });
});

describe("rds-max-connections-cover-pgbouncer (PG-1, PG-2)", () => {
  it.each([1, 2, 4])(
    "passes with %i Odoo host(s) and rejects max_connections one below the pools + admin + superuser slots",
    async (odooInstances) => {
      const fixture = stackFixture(modelWith({ odooInstances, postgresEngine: "rds" }));
      const { sizing } = fixture.model.settings;
      expect(await validateStack(rdsMaxConnectionsCoverPgbouncer, fixture.resources)).toEqual([]);
      // What PgBouncer may open on RDS: pools + reserves + the `postgres` pool (the Odoo role's
      // max_user_connections) + the migration role's cap, plus admin and superuser slots.
      const p = sizing.pgbouncer;
      const needed = p.maxUserConnections + p.postgresPoolSize + p.postgresReservePoolSize + p.migrationConnections + 3 + 3;
      const group = fixture.get("postgres-parameters");
      const low = withProp(
        group,
        "parameters",
        group.props.parameters.map((p: { name: string; value: string }) =>
          p.name === "max_connections" ? { ...p, value: String(needed - 1) } : p,
        ),
      );
      const violations = await validateStack(rdsMaxConnectionsCoverPgbouncer, replaced(fixture.resources, low));
      expect(violations.map((v) => v.message)).toEqual([
        expect.stringMatching(
          new RegExp(
            `^RDS parameter group \\(postgres-parameters\\) must set max_connections \\(${needed - 1}\\) at least ${needed}: .*\\(PG-1\\)\\.$`,
          ),
        ),
      ]);
    },
  );

  it("rejects an instance on RDS's default parameter group", async () => {
    const fixture = stackFixture(modelWith({ postgresEngine: "rds" }));
    const instance = fixture.get("postgres-rds");
    const onDefault: FakeResource = {
      ...withProp(instance, "parameterGroupName", "default.postgres15"),
      propertyDependencies: { vpcSecurityGroupIds: [sgName("postgres")] },
    };
    expect((await validateStack(rdsMaxConnectionsCoverPgbouncer, replaced(fixture.resources, onDefault))).map((v) => v.message)).toEqual([
      expect.stringMatching(
        /^RDS instance \(postgres-rds\) must use a parameter group of this stack \(parameterGroupName\).*\(PG-1, PG-2\)\.$/,
      ),
    ]);
  });
});

describe("certificate-sans-match-clients with RDS (TLS-3)", () => {
  const fixture = stackFixture(modelWith({ postgresEngine: "rds" }));

  it("accepts PgBouncer dialling the RDS endpoint through the parameter holding its address", async () => {
    expect(await validateStack(certificateSansMatchClients, fixture.resources)).toEqual([]);
  });

  it("rejects it when that parameter does not hold an RDS instance's address", async () => {
    const parameter = fixture.get("postgres-endpoint-parameter");
    const elsewhere: FakeResource = { ...withProp(parameter, "value", "db.example.com"), propertyDependencies: {} };
    const messages = (await validateStack(certificateSansMatchClients, replaced(fixture.resources, elsewhere))).map((v) => v.message);
    expect(messages.length).toBeGreaterThan(0);
    expect(messages.every((m) => /dials \{\{ssm:\/odoo-stack\/test\/rds\/endpoint\}\} .*\(TLS-3\)\.$/.test(m))).toBe(true);
  });
});

describe("EFS policies (NET-1, BACKUP-1)", () => {
  const fixture = stackFixture(modelWith({ odooInstances: 4 }));
  const fs = fixture.get("odoo-filestore-fs");

  it("efs-file-system-encrypted rejects an unencrypted file system", async () => {
    expect(await validateResource(efsFileSystemEncrypted, fs)).toEqual([]);
    expect(await validateResource(efsFileSystemEncrypted, withProp(fs, "encrypted", false))).toEqual([
      "EFS file system (odoo-filestore-fs) must be encrypted (encrypted = true): it holds Odoo's attachments and sessions (BACKUP-1).",
    ]);
  });

  it("efs-file-system-requires-tls rejects a file system without the TLS-only policy, or with a policy that allows plain NFS", async () => {
    expect(await validateStack(efsFileSystemRequiresTls, fixture.resources)).toEqual([]);
    const message =
      "EFS file system (odoo-filestore-fs) must have a file system policy that denies every request with aws:SecureTransport = false, so the filestore only travels over TLS (NET-1).";
    expect(
      (
        await validateStack(
          efsFileSystemRequiresTls,
          fixture.resources.filter((r) => r.name !== "odoo-filestore-policy"),
        )
      ).map((v) => v.message),
    ).toEqual([message]);
    const policy = fixture.get("odoo-filestore-policy");
    const doc = JSON.parse(policy.props.policy);
    const allowing = withProp(
      policy,
      "policy",
      JSON.stringify({ ...doc, Statement: doc.Statement.filter((s: { Sid: string }) => s.Sid !== "DenyWithoutTls") }),
    );
    expect((await validateStack(efsFileSystemRequiresTls, replaced(fixture.resources, allowing))).map((v) => v.message)).toEqual([message]);
  });

  it("efs-mount-targets-only-from-odoo passes 2049 from the Odoo group and rejects any other source or port", async () => {
    const policy = efsMountTargetsOnlyFromOdoo;
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
    const rule = fixture.get("network-efs-in-2049-odoo");
    const fromVpc = {
      ...withProp(withProp(rule, "referencedSecurityGroupId", undefined), "cidrIpv4", "10.40.0.0/16"),
      propertyDependencies: { securityGroupId: [sgName("efs")] },
    };
    const fromPgbouncer = {
      ...withProp(rule, "referencedSecurityGroupId", `${sgName("pgbouncer")}-id`),
      propertyDependencies: { securityGroupId: [sgName("efs")], referencedSecurityGroupId: [sgName("pgbouncer")] },
    };
    const widened = withProp(rule, "toPort", 2050);
    for (const broken of [fromVpc, fromPgbouncer, widened]) {
      const messages = (await validateStack(policy, replaced(fixture.resources, broken))).map((v) => v.message);
      expect(messages).toEqual([
        expect.stringMatching(
          /^Security group ingress rule .* must admit only tcp 2049 from the Odoo hosts' security group to the EFS mount targets; it admits .* \(NET-1\)\.$/,
        ),
      ]);
    }
  });
});
