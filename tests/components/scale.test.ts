// Issue 8 under mocks: the whole program (index.ts) with 1, 2 and 4 Odoo hosts on either
// PostgreSQL engine. The shared filestore (encrypted EFS, a mount target per private subnet
// behind a group that admits 2049 from Odoo only, mounted over TLS before Odoo installs) exists
// exactly with several hosts; exactly one cron host, exported; the proxy lists every host; RDS
// replaces the PostgreSQL host, its volume, pgBackRest and the snapshots, and PgBouncer reaches
// it through SSM-named endpoint and master password without a secret in plain text.
import { TAG_KEYS } from "../../components/tags";
import { EFS_DEFAULTS } from "../../components/shared-filestore";
import { parseSettings } from "../../lib/config";
import { knownInstanceType } from "../../lib/instance-types";
import { buildModel, PATHS, secretRef, type StackModel } from "../../lib/model";
import { configObjectKey } from "../../templates/hosts";
import { RDS_POSTGRES, rdsParameters } from "../../templates/rds";
import { named, ofType, runUnderMocks, REGION, STACK, type MockRun } from "../helpers/component-mocks";

const program: () => Promise<Record<string, unknown>> = require("../../index");

type Config = Record<string, unknown>;
const BASE: Config = {
  domain: "erp.example.com",
  tls: { mode: "acme", email: "ops@example.com", hostedZoneId: "Z04417412S8KXAMPLE1" },
  databases: ["erp"],
  availabilityZoneCount: 2,
  backupRetentionDays: 14,
};
const cliConfig = (config: Config): Record<string, string> =>
  Object.fromEntries(Object.entries(config).map(([k, v]) => [`odoo-stack:${k}`, typeof v === "string" ? v : JSON.stringify(v)]));

// Every N and both engines in three whole-program runs (each takes seconds on CI): stack.test.ts
// runs 1 and 3 hosts on EC2, tests/policy/scale.test.ts the full matrix on the pack's fixture.
const CASES = [
  [1, "rds"],
  [2, "ec2"],
  [4, "rds"],
] as const;
const RUN_TIMEOUT_MS = 60_000;

describe.each(CASES)("%i Odoo host(s), postgresEngine %s", (odooInstances, postgresEngine) => {
  const config: Config = { ...BASE, odooInstances, postgresEngine };
  const model: StackModel = buildModel(STACK, parseSettings(config, REGION, knownInstanceType));
  const shared = odooInstances > 1;
  const rds = postgresEngine === "rds";
  let run: MockRun;
  beforeAll(async () => {
    run = await runUnderMocks(program, cliConfig(config));
  }, RUN_TIMEOUT_MS);

  const fileOf = (hostId: string, path: string): string => {
    const object = ofType(run, "aws:s3/bucketObjectv2:BucketObjectv2").find((o) => o.inputs.key === configObjectKey(hostId, path));
    if (!object) throw new Error(`no ${path} on ${hostId}`);
    return String(object.inputs.content);
  };
  const instance = (hostId: string) => ofType(run, "aws:ec2/instance:Instance").find((i) => i.inputs.tags[TAG_KEYS.host] === hostId);

  it("creates one instance per host of the model, and none for PostgreSQL on RDS", () => {
    const hosts = ofType(run, "aws:ec2/instance:Instance")
      .map((i) => i.inputs.tags[TAG_KEYS.host])
      .sort();
    expect(hosts).toEqual(model.allHosts.map((h) => h.id).sort());
    expect(hosts.includes("postgres")).toBe(!rds);
  });

  it("exports the one cron host, whose odoo.conf alone runs crons (LIMIT-2)", () => {
    expect(run.outputs.cronHostId).toBe("odoo-1");
    const threads = model.hosts.odoo.map((h) => Number(/^max_cron_threads = (\d+)$/m.exec(fileOf(h.id, PATHS.odooConf))?.[1]));
    expect(threads.map((t) => t > 0)).toEqual(model.hosts.odoo.map((h) => h.id === "odoo-1"));
  });

  it("lists every Odoo host in the proxy's upstreams for 8069 and 8072 (PROXY-1, PROXY-2)", () => {
    const site = fileOf("proxy", PATHS.nginxSite);
    for (const port of [8069, 8072]) {
      expect([...site.matchAll(new RegExp(`server (\\S+):${port}\\b`, "g"))].map((m) => m[1]).sort()).toEqual(
        model.hosts.odoo.map((h) => h.privateIp).sort(),
      );
    }
  });

  it(
    shared
      ? "shares data_dir on one encrypted, protected EFS with TLS-only access and AWS Backup"
      : "keeps data_dir on the host: no EFS at all",
    () => {
      const fileSystems = ofType(run, "aws:efs/fileSystem:FileSystem");
      expect(fileSystems).toHaveLength(shared ? 1 : 0);
      expect(ofType(run, "aws:ec2/securityGroup:SecurityGroup").filter((g) => g.inputs.tags[TAG_KEYS.role] === "efs")).toHaveLength(
        shared ? 1 : 0,
      );
      if (!shared) return;
      const fs = fileSystems[0];
      expect(fs.inputs).toEqual(
        expect.objectContaining({
          encrypted: true,
          performanceMode: EFS_DEFAULTS.performanceMode,
          throughputMode: EFS_DEFAULTS.throughputMode,
        }),
      );
      expect(fs.protect).toBe(true);
      expect(named(run, "odoo-filestore-backup-policy").inputs.backupPolicy).toEqual({ status: "ENABLED" });
      const policy = JSON.parse(named(run, "odoo-filestore-policy").inputs.policy);
      expect(policy.Statement[0]).toEqual(
        expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
      );
    },
  );

  if (shared) {
    it("puts a mount target in every private subnet behind the EFS group, which admits only 2049 from the Odoo group", () => {
      const efsGroup = ofType(run, "aws:ec2/securityGroup:SecurityGroup").find((g) => g.inputs.tags[TAG_KEYS.role] === "efs");
      const odooGroup = named(run, "network-odoo-sg");
      const targets = ofType(run, "aws:efs/mountTarget:MountTarget");
      expect(targets.map((t) => t.inputs.subnetId).sort()).toEqual(
        ofType(run, "aws:ec2/subnet:Subnet")
          .filter((s) => s.name.startsWith("network-private-"))
          .map((s) => s.id)
          .sort(),
      );
      for (const t of targets) expect(t.inputs.securityGroups).toEqual([efsGroup?.id]);
      const ingress = ofType(run, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").filter(
        (r) => r.inputs.securityGroupId === efsGroup?.id,
      );
      expect(ingress.map((r) => [r.inputs.fromPort, r.inputs.toPort, r.inputs.referencedSecurityGroupId, r.inputs.cidrIpv4])).toEqual([
        [2049, 2049, odooGroup.id, undefined],
      ]);
      expect(
        ofType(run, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule").filter((r) => r.inputs.securityGroupId === efsGroup?.id),
      ).toEqual([]);
    });

    it("mounts the file system over TLS on every Odoo host before Odoo installs, booting after the mount targets", () => {
      const fs = ofType(run, "aws:efs/fileSystem:FileSystem")[0];
      const targets = ofType(run, "aws:efs/mountTarget:MountTarget").map((t) => t.urn);
      for (const host of model.hosts.odoo) {
        const i = instance(host.id);
        const userData = String(i?.inputs.userData);
        // The first-boot steps file, as the user data's write_files carries it (one step per line).
        expect(userData).toContain(`\\nefs-mount ${fs.id} ${REGION} ${PATHS.odooDataDir}\\n`);
        expect(userData.indexOf("efs-mount")).toBeLessThan(userData.indexOf("\\ninstall odoo=17.0.20241201\\n"));
        for (const t of targets) expect(i?.dependencies).toContain(t);
      }
      expect(run.outputs.filestoreFileSystemId).toBe(fs.id);
    });
  }

  it(
    rds
      ? "runs PostgreSQL on RDS: private, Multi-AZ, encrypted gp3, protected, PITR, the checklist's parameter group"
      : "runs PostgreSQL on its host with its data volume and snapshots, and no RDS",
    () => {
      const instances = ofType(run, "aws:rds/instance:Instance");
      expect(instances).toHaveLength(rds ? 1 : 0);
      expect(ofType(run, "aws:ebs/volume:Volume").filter((v) => v.name === "postgres-data")).toHaveLength(rds ? 0 : 1);
      expect(ofType(run, "aws:dlm/lifecyclePolicy:LifecyclePolicy")).toHaveLength(rds ? 0 : 1);
      expect(ofType(run, "aws:iam/rolePolicy:RolePolicy").filter((p) => p.name === "backup-plan-postgres-backup-policy")).toHaveLength(
        rds ? 0 : 1,
      );
      if (!rds) return;
      const db = instances[0];
      expect(db.inputs).toEqual(
        expect.objectContaining({
          engine: "postgres",
          // Issue 12 item 2: the major only, minors applied by AWS, so a forced minor upgrade
          // never turns the next `pulumi up` into a downgrade.
          engineVersion: "15",
          autoMinorVersionUpgrade: true,
          instanceClass: `db.${model.settings.instanceTypes.postgres}`,
          storageType: "gp3",
          storageEncrypted: true,
          multiAz: true,
          publiclyAccessible: false,
          deletionProtection: true,
          backupRetentionPeriod: 14,
          performanceInsightsEnabled: true,
          skipFinalSnapshot: false,
          vpcSecurityGroupIds: [named(run, "network-postgres-sg").id],
          username: "odoo_stack_admin",
          dbSubnetGroupName: named(run, "postgres-subnets").outputs.name,
          parameterGroupName: named(run, "postgres-parameters").outputs.name,
        }),
      );
      expect(db.protect).toBe(true);
      expect(db.secretInputs.has("password")).toBe(true);
      const group = named(run, "postgres-parameters");
      expect(group.inputs.family).toBe(RDS_POSTGRES.parameterGroupFamily);
      // The parameter group's family is the same major the instance runs.
      expect(group.inputs.family).toBe(`postgres${db.inputs.engineVersion}`);
      expect(group.inputs.parameters).toEqual(
        rdsParameters(model).map((p) => ({ name: p.name, value: p.value, applyMethod: p.applyMethod })),
      );
      expect(named(run, "postgres-subnets").inputs.subnetIds.sort()).toEqual(
        ofType(run, "aws:ec2/subnet:Subnet")
          .filter((s) => s.name.startsWith("network-private-"))
          .map((s) => s.id)
          .sort(),
      );
    },
  );

  if (rds) {
    it("exports PostgreSQL's log to a log group the stack created first, with its retention, where the log metric filters look", () => {
      const db = ofType(run, "aws:rds/instance:Instance")[0];
      expect(db.inputs.identifier).toBe(`odoo-stack-${STACK}-postgres`.toLowerCase());
      expect(db.inputs.enabledCloudwatchLogsExports).toEqual(["postgresql"]);
      const group = named(run, "monitoring-postgresql-logs");
      expect(group.inputs).toEqual(
        expect.objectContaining({ name: `/aws/rds/instance/${db.inputs.identifier}/postgresql`, retentionInDays: 30 }),
      );
      expect(db.dependencies).toContain(group.urn);
      const filters = ofType(run, "aws:cloudwatch/logMetricFilter:LogMetricFilter").filter(
        (f) => f.inputs.logGroupName === group.outputs.name,
      );
      expect(filters.map((f) => f.inputs.metricTransformation.name).sort()).toEqual([
        "DeadlocksLogged",
        "IdleInTransactionTimeouts",
        "LockWaitsLogged",
        "StatementTimeouts",
      ]);
    });

    it("names the endpoint and the master password in SSM, lets PgBouncer read them, and never puts the password in plain text", () => {
      const db = ofType(run, "aws:rds/instance:Instance")[0];
      const endpoint = named(run, "postgres-endpoint-parameter");
      const password = named(run, "postgres-master-password-parameter");
      expect(endpoint.inputs).toEqual(
        expect.objectContaining({ name: model.parameters.rdsEndpoint, type: "String", value: db.outputs.address }),
      );
      expect(password.inputs).toEqual(expect.objectContaining({ name: model.parameters.rdsMasterPassword, type: "SecureString" }));
      expect(password.secretInputs.has("value")).toBe(true);
      const policy = JSON.parse(named(run, "pgbouncer-host-policy").inputs.policy);
      const readable = policy.Statement.find((s: { Sid: string }) => s.Sid === "ReadReferencedParameters").Resource as string[];
      for (const p of [model.parameters.rdsEndpoint, model.parameters.rdsMasterPassword])
        expect(readable.some((arn) => arn.endsWith(`parameter${p}`))).toBe(true);
      const plain = run.resources.flatMap((r) => r.plainStrings.map((s) => `${r.name}.${s.path}=${s.value}`)).join("\n");
      expect(run.generatedSecrets.length).toBeGreaterThan(0);
      expect(run.generatedSecrets.filter((secret) => plain.includes(secret))).toEqual([]);
      expect(fileOf("pgbouncer", PATHS.pgbouncerIni)).toContain(`host=${secretRef(model.parameters.rdsEndpoint)}`);
      expect(String(instance("pgbouncer")?.inputs.userData)).toContain(`\\nrds-ca-bundle ${REGION} ${PATHS.rdsCaBundle}\\n`);
      expect(instance("pgbouncer")?.dependencies).toContain(endpoint.urn);
      expect(run.outputs.postgresEndpoint).toBe(`${db.outputs.address}:5432`);
    });
  }
});
