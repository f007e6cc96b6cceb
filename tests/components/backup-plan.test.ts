// BackupPlan under Pulumi mocks (every invoke not mocked throws): exact resource counts, the
// DLM policy that snapshots the data volume by tag, least-privilege host policies, the bucket
// name parameter the hosts' placeholders read, and alarms that fire on silence as well as on
// bad values (BACKUP-1, BACKUP-2).
import * as pulumi from "@pulumi/pulumi";
import {
  BACKUP_AGE_LIMIT_SECONDS,
  BackupPlan,
  BACKUP_PLAN_DEFAULTS,
  checkBackupPlanArgs,
  dataVolumeSnapshotTag,
} from "../../components/backup-plan";
import { TAG_KEYS } from "../../components/tags";
import { backupAlarmEntries } from "../../templates/alarms";
import { odooFilestorePolicy, postgresBackupPolicy } from "../../templates/backup-iam";
import {
  BACKUP_METRIC_NAMESPACE,
  BACKUP_METRICS,
  backupBucketNameParameter,
  backupBucketRef,
  postgresBackupHostFiles,
} from "../../templates/backup-units";
import { modelWith } from "../helpers/fixtures";
import { countsByType, named, ofType, runUnderMocks, STACK, type MockRun } from "../helpers/component-mocks";

const model = modelWith({ odooInstances: 2 }, STACK);
const BUCKET = "odoo-stack-test-backups-4f2a9c1";
const BUCKET_ARN = `arn:aws:s3:::${BUCKET}`;
const TOPIC = "arn:aws:sns:eu-west-1:123456789012:odoo-stack-test-alarms";

async function runPlan(extra: Partial<ConstructorParameters<typeof BackupPlan>[1]> = {}): Promise<MockRun> {
  return runUnderMocks(() => {
    new BackupPlan("backups-plan", {
      model,
      bucket: { bucketName: BUCKET, arn: pulumi.output(BUCKET_ARN) },
      hostRoles: { postgres: "postgres-role", odoo: ["odoo-1-role", "odoo-2-role"] },
      alarmActions: [TOPIC],
      ...extra,
    });
  });
}

describe("BackupPlan under mocks", () => {
  let run: MockRun;
  beforeAll(async () => {
    run = await runPlan();
  }, 60_000);

  it("registers exactly the plan's resources, all children of the component, and calls no AWS API", () => {
    expect(countsByType(run)).toEqual({
      "aws:ssm/parameter:Parameter": 1,
      "aws:iam/role:Role": 1,
      "aws:iam/rolePolicy:RolePolicy": 4,
      "aws:dlm/lifecyclePolicy:LifecyclePolicy": 1,
      "aws:cloudwatch/metricAlarm:MetricAlarm": 5,
    });
    const component = named(run, "backups-plan", "odoo-stack:backups:BackupPlan");
    for (const r of run.resources.filter((r) => r.custom)) expect(r.parent).toBe(component.urn);
    for (const r of run.resources.filter((r) => r.custom)) expect(r.name.startsWith("backups-plan-")).toBe(true);
    expect(run.invokes).toEqual([]);
  });

  it("publishes the bucket name where the hosts' placeholders read it", () => {
    const parameter = named(run, "backups-plan-bucket-name");
    expect(parameter.inputs).toMatchObject({ name: backupBucketNameParameter(model), type: "String", value: BUCKET });
    // The placeholder in the rendered pgbackrest.conf names this very parameter.
    expect(postgresBackupHostFiles(model)[0].content).toContain(`repo1-s3-bucket=${backupBucketRef(model)}\n`);
  });

  it("snapshots the data volume daily through DLM, selected by its tag, with its own role", () => {
    const policy = named(run, "backups-plan-data-volume-snapshots");
    const tag = dataVolumeSnapshotTag(model);
    expect(policy.inputs.state).toBe("ENABLED");
    expect(policy.inputs.description).toMatch(/^[0-9A-Za-z _-]+$/);
    expect(policy.inputs.policyDetails).toMatchObject({
      resourceTypes: ["VOLUME"],
      targetTags: { [tag.key]: tag.value },
      schedules: [
        {
          createRule: { interval: 24, intervalUnit: "HOURS", times: BACKUP_PLAN_DEFAULTS.snapshotTime },
          retainRule: { count: BACKUP_PLAN_DEFAULTS.snapshotRetainCount },
          copyTags: true,
        },
      ],
    });
    const role = named(run, "backups-plan-dlm-role");
    expect(JSON.parse(role.inputs.assumeRolePolicy).Statement[0].Principal).toEqual({ Service: "dlm.amazonaws.com" });
    expect(policy.dependencies).toContain(named(run, "backups-plan-dlm-policy").urn);
    expect(policy.inputs.tags).toMatchObject({ [TAG_KEYS.stack]: STACK, [TAG_KEYS.role]: "backups" });
  });

  it("gives each host role its least-privilege policy on the real bucket ARN", () => {
    expect(named(run, "backups-plan-postgres-backup-policy").inputs).toEqual({
      role: "postgres-role",
      policy: JSON.stringify(postgresBackupPolicy({ bucketArn: BUCKET_ARN, stack: STACK, region: "eu-west-1" })),
    });
    ["odoo-1-role", "odoo-2-role"].forEach((role, i) => {
      expect(named(run, `backups-plan-odoo-${i + 1}-filestore-policy`).inputs).toEqual({
        role,
        policy: JSON.stringify(odooFilestorePolicy({ bucketArn: BUCKET_ARN, stack: STACK, region: "eu-west-1" })),
      });
    });
  });

  const alarm = (id: string) => named(run, `backups-plan-${id}`, "aws:cloudwatch/metricAlarm:MetricAlarm").inputs;

  it.each([
    // Silence is failure: a dead reporter or a drill that never ran must alarm (BACKUP-2).
    ["restore-drill-stale", BACKUP_METRICS.restoreDrillSuccess, "LessThanThreshold", 1, "breaching", 3600],
    [
      "restore-drill-rto",
      BACKUP_METRICS.restoreDrillRtoSeconds,
      "GreaterThanThreshold",
      BACKUP_PLAN_DEFAULTS.rtoTargetSeconds,
      "notBreaching",
      86400,
    ],
    ["backup-age", BACKUP_METRICS.lastBackupAgeSeconds, "GreaterThanThreshold", BACKUP_AGE_LIMIT_SECONDS, "breaching", 3600],
  ])("alarm %s watches %s (%s %p, missing data %s)", (id, metric, comparison, threshold, missing, period) => {
    expect(alarm(id)).toMatchObject({
      namespace: BACKUP_METRIC_NAMESPACE,
      metricName: metric,
      dimensions: { Stack: STACK },
      comparisonOperator: comparison,
      threshold,
      treatMissingData: missing,
      period,
      alarmActions: [TOPIC],
      okActions: [TOPIC],
    });
  });

  it("names every alarm as the runbook's list does, and creates exactly the listed ones (alarms.md, BACKUP-1, BACKUP-2)", () => {
    const created = ofType(run, "aws:cloudwatch/metricAlarm:MetricAlarm")
      .map((a) => a.inputs.name)
      .sort();
    expect(created).toEqual(
      backupAlarmEntries(model)
        .map((e) => e.name)
        .sort(),
    );
    expect(created).toContain(`odoo-stack-${STACK}-restore-drill-stale`);
  });

  it("keeps every alarm's evaluation range within CloudWatch's seven days", () => {
    for (const a of ofType(run, "aws:cloudwatch/metricAlarm:MetricAlarm")) {
      expect(a.inputs.period * a.inputs.evaluationPeriods).toBeLessThanOrEqual(7 * 86400);
    }
  });

  it("alarms per Odoo host when its filestore copy stops", () => {
    for (const host of model.hosts.odoo) {
      expect(alarm(`filestore-sync-${host.id}`)).toMatchObject({
        metricName: BACKUP_METRICS.filestoreSyncSuccess,
        dimensions: { Stack: STACK, Host: host.id },
        comparisonOperator: "LessThanThreshold",
        threshold: 1,
        treatMissingData: "breaching",
      });
    }
  });
});

describe("BackupPlan options", () => {
  it("without host roles, attaches no host policy (the lead attaches the JSON builders itself)", async () => {
    const run = await runPlan({ hostRoles: undefined });
    expect(ofType(run, "aws:iam/rolePolicy:RolePolicy").map((r) => r.name)).toEqual(["backups-plan-dlm-policy"]);
  }, 60_000);

  it("grants host access after construction, for hosts built after the plan, and only once", async () => {
    let second: Error | undefined;
    const run = await runUnderMocks(() => {
      const plan = new BackupPlan("backups-plan", { model, bucket: { bucketName: BUCKET, arn: BUCKET_ARN } });
      plan.grantHostAccess({ postgres: "postgres-role", odoo: ["odoo-1-role"] });
      try {
        plan.grantHostAccess({ postgres: "postgres-role", odoo: [] });
      } catch (e) {
        second = e as Error;
      }
    });
    expect(second?.message).toMatch(/already granted/);
    const policies = ofType(run, "aws:iam/rolePolicy:RolePolicy");
    expect(policies.map((r) => r.name).sort()).toEqual([
      "backups-plan-dlm-policy",
      "backups-plan-odoo-1-filestore-policy",
      "backups-plan-postgres-backup-policy",
    ]);
    const component = named(run, "backups-plan", "odoo-stack:backups:BackupPlan");
    for (const p of policies) expect(p.parent).toBe(component.urn);
  }, 60_000);

  it("follows the RTO target and the snapshot settings", async () => {
    const run = await runPlan({ rtoTargetSeconds: 900, snapshotRetainCount: 14, snapshotTime: "23:30" });
    expect(named(run, "backups-plan-restore-drill-rto").inputs.threshold).toBe(900);
    expect(named(run, "backups-plan-data-volume-snapshots").inputs.policyDetails.schedules[0]).toMatchObject({
      createRule: { times: "23:30" },
      retainRule: { count: 14 },
    });
  }, 60_000);

  it("refuses bad numbers before registering anything, all problems in one message", () => {
    expect(checkBackupPlanArgs({})).toEqual([]);
    const problems = checkBackupPlanArgs({ rtoTargetSeconds: 10, snapshotRetainCount: 0, snapshotTime: "2am" });
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/'rtoTargetSeconds' must be a whole number of seconds ≥ 60, got 10/);
    expect(problems[1]).toMatch(/'snapshotRetainCount'/);
    expect(problems[2]).toMatch(/'snapshotTime' must be "HH:MM"/);
    expect(() => new BackupPlan("bad", { model, bucket: { bucketName: BUCKET, arn: BUCKET_ARN }, rtoTargetSeconds: 10 })).toThrow(
      /BackupPlan bad: 1 problem:\n {2}1\. 'rtoTargetSeconds'/,
    );
  });
});
