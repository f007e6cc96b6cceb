// The backup plan around the bucket (BACKUP-1, BACKUP-2): EBS snapshots of PostgreSQL's data
// volume by Data Lifecycle Manager, the least-privilege policies of the host roles, the SSM
// parameter that tells hosts the bucket's name, and the alarms that turn "backups exist" into
// "backups are verified": no fresh successful restore drill, an RTO over target, no recent
// backup, a filestore copy that stopped.
//
// pgBackRest (templates/pgbackrest.ts) is the primary backup: encrypted, point-in-time, checked
// weekly by a real restore. The snapshots are a second, independent line: a whole-volume
// rollback in minutes (a botched upgrade, BACKUP-3), crash-consistent because pg_wal lives on
// the same volume.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackModel } from "../lib/model";
import { throwIfAny } from "../lib/problems";
import { backupAlarmEntries } from "../templates/alarms";
import { dlmAssumeRolePolicy, dlmServicePolicy, odooFilestorePolicy, postgresBackupPolicy } from "../templates/backup-iam";
import {
  BACKUP_METRIC_NAMESPACE,
  BACKUP_METRICS,
  BACKUP_SCHEDULES,
  backupBucketNameParameter,
  METRIC_DIMENSIONS,
} from "../templates/backup-units";
import { resourceTags } from "./tags";

/** Defaults of the optional BackupPlanArgs, stated once. */
export const BACKUP_PLAN_DEFAULTS = {
  /** One hour to a checked, promoted database: the target the drill's RTO is held to. */
  rtoTargetSeconds: 3600,
  /** A week of daily snapshots: pgBackRest covers the full retention window with PITR. */
  snapshotRetainCount: 7,
  /** UTC, an hour after the nightly backups start (BACKUP_SCHEDULES). */
  snapshotTime: "02:00",
} as const;

/** Daily backups plus two hours of slack for a slow run: older than this, backups stopped. */
export const BACKUP_AGE_LIMIT_SECONDS = 26 * 3600;

/** The tag DLM selects the data volume by; PostgresHost must put it on the volume. */
export function dataVolumeSnapshotTag(model: StackModel): { readonly key: string; readonly value: string } {
  return { key: "odoo-stack:snapshot", value: `${model.stack}-postgres-data` };
}

export interface BackupPlanArgs {
  readonly model: StackModel;
  /** The backup bucket (Backups component): its name for the hosts, its ARN for the policies. */
  readonly bucket: { readonly bucketName: pulumi.Input<string>; readonly arn: pulumi.Input<string> };
  /**
   * Host roles to give their backup policy: the PostgreSQL host's role name and every Odoo
   * host's. Optional. Defaults to none: call grantHostAccess() once the hosts exist (they need
   * bucketNameParameter before they are built), or attach the templates/backup-iam.ts documents.
   */
  readonly hostRoles?: { readonly postgres?: pulumi.Input<string>; readonly odoo: readonly pulumi.Input<string>[] };
  /** Customer-managed KMS key of the bucket, if any. Optional. Defaults to none (aws/s3 key). */
  readonly bucketKmsKeyArn?: string;
  /** SNS topics every alarm notifies (alarm and recovery). Optional. Defaults to none. */
  readonly alarmActions?: readonly pulumi.Input<string>[];
  /** RTO the drill must beat, in seconds. Optional. Defaults to 3600. */
  readonly rtoTargetSeconds?: number;
  /** Daily snapshots kept. Optional. Defaults to 7. */
  readonly snapshotRetainCount?: number;
  /** Daily snapshot time, "HH:MM" UTC. Optional. Defaults to "02:00". */
  readonly snapshotTime?: string;
}

/** Every problem with the plan's numbers, numbered in one message; empty when valid. */
export function checkBackupPlanArgs(args: Pick<BackupPlanArgs, "rtoTargetSeconds" | "snapshotRetainCount" | "snapshotTime">): string[] {
  const problems: string[] = [];
  const rto = args.rtoTargetSeconds ?? BACKUP_PLAN_DEFAULTS.rtoTargetSeconds;
  if (!Number.isInteger(rto) || rto < 60) problems.push(`'rtoTargetSeconds' must be a whole number of seconds ≥ 60, got ${rto}.`);
  const retain = args.snapshotRetainCount ?? BACKUP_PLAN_DEFAULTS.snapshotRetainCount;
  // DLM's limit for a count-based retain rule.
  if (!Number.isInteger(retain) || retain < 1 || retain > 1000)
    problems.push(`'snapshotRetainCount' must be a whole number from 1 to 1000, got ${retain}.`);
  const time = args.snapshotTime ?? BACKUP_PLAN_DEFAULTS.snapshotTime;
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(time))
    problems.push(`'snapshotTime' must be "HH:MM" in UTC, e.g. "02:00", got ${JSON.stringify(time)}.`);
  return problems;
}

export class BackupPlan extends pulumi.ComponentResource {
  /** The SSM parameter holding the bucket name; hosts' files reference it (pass it in TierArgs.parameters). */
  readonly bucketNameParameter: aws.ssm.Parameter;
  /** The DLM policy of the data volume; undefined with RDS (its automated backups replace it). */
  readonly snapshotPolicyArn: pulumi.Output<string> | undefined;
  /** Alarm names by purpose. */
  readonly alarmNames: Readonly<Record<string, pulumi.Output<string>>>;
  private readonly name: string;
  private readonly args: BackupPlanArgs;
  private granted = false;

  constructor(name: string, args: BackupPlanArgs, opts?: pulumi.ComponentResourceOptions) {
    // Before registering anything: a bad number fails the preview with every problem named.
    const problems = checkBackupPlanArgs(args);
    throwIfAny(`BackupPlan ${name}`, problems);
    super("odoo-stack:backups:BackupPlan", name, {}, opts);
    const { model } = args;
    const rtoTargetSeconds = args.rtoTargetSeconds ?? BACKUP_PLAN_DEFAULTS.rtoTargetSeconds;
    const snapshotRetainCount = args.snapshotRetainCount ?? BACKUP_PLAN_DEFAULTS.snapshotRetainCount;
    const snapshotTime = args.snapshotTime ?? BACKUP_PLAN_DEFAULTS.snapshotTime;
    const parent = { parent: this };
    const tags = (resource: string) => resourceTags(model, "backups", `${name}-${resource}`);

    // --- the bucket's name, for the hosts' placeholders ----------------------------------------
    this.bucketNameParameter = new aws.ssm.Parameter(
      `${name}-bucket-name`,
      {
        name: backupBucketNameParameter(model),
        type: "String",
        value: args.bucket.bucketName,
        description: "Backup bucket of the stack: pgBackRest repository and Odoo filestore copy",
        tags: tags("bucket-name"),
      },
      parent,
    );

    // With RDS (issue 8) there is no data volume and no pgBackRest: RDS's automated backups with
    // PITR for backupRetentionDays (BACKUP-1) replace the snapshots, the repository and the
    // drill's database part; the filestore copy below stays.
    const ec2 = model.settings.postgresEngine === "ec2";

    // --- EBS snapshots of the data volume -----------------------------------------------------
    this.snapshotPolicyArn = ec2 ? this.snapshotPolicy(name, model, snapshotRetainCount, snapshotTime) : undefined;

    // --- least privilege for the hosts ---------------------------------------------------------
    this.name = name;
    this.args = args;
    if (args.hostRoles) this.grantHostAccess(args.hostRoles);

    // --- alarms: verified, not just present ------------------------------------------------------
    const actions = args.alarmActions ? [...args.alarmActions] : [];
    const stackDimension = { [METRIC_DIMENSIONS.stack]: model.stack };
    // Named from the runbook's list (templates/alarms.ts backupAlarmEntries), like Monitoring's
    // alarms: the name in the SNS mail is the runbook's heading. An id missing there is an error.
    const entries = new Map(backupAlarmEntries(model).map((e) => [e.id, e]));
    const alarm = (id: string, a: Omit<aws.cloudwatch.MetricAlarmArgs, "namespace" | "alarmActions" | "okActions" | "tags" | "name">) =>
      new aws.cloudwatch.MetricAlarm(
        `${name}-${id}`,
        {
          name: (
            entries.get(id) ??
            (() => {
              throw new Error(`BackupPlan ${name}: alarm ${id} has no runbook entry (templates/alarms.ts backupAlarmEntries)`);
            })()
          ).name,
          namespace: BACKUP_METRIC_NAMESPACE,
          alarmActions: actions,
          okActions: actions,
          tags: tags(id),
          ...a,
        },
        parent,
      );

    const alarms: Record<string, aws.cloudwatch.MetricAlarm> = ec2 ? this.databaseAlarms(alarm, model, rtoTargetSeconds) : {};
    for (const host of model.hosts.odoo) {
      alarms[`filestoreSync-${host.id}`] = alarm(`filestore-sync-${host.id}`, {
        alarmDescription: `BACKUP-1: the hourly filestore copy of ${host.id} (${model.stack}) has not succeeded for 3 hours.`,
        metricName: BACKUP_METRICS.filestoreSyncSuccess,
        dimensions: { ...stackDimension, [METRIC_DIMENSIONS.host]: host.id },
        statistic: "Sum",
        period: 3600,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        threshold: 1,
        comparisonOperator: "LessThanThreshold",
        treatMissingData: "breaching",
      });
    }
    this.alarmNames = Object.fromEntries(Object.entries(alarms).map(([k, a]) => [k, a.name]));

    this.registerOutputs({
      bucketNameParameter: this.bucketNameParameter.name,
      snapshotPolicyArn: this.snapshotPolicyArn,
      drillSchedule: BACKUP_SCHEDULES.drill.onCalendar,
    });
  }

  /** Daily DLM snapshots of the PostgreSQL data volume (ec2 only). */
  private snapshotPolicy(name: string, model: StackModel, snapshotRetainCount: number, snapshotTime: string): pulumi.Output<string> {
    const region = model.settings.region;
    const parent = { parent: this };
    const tags = (resource: string) => resourceTags(model, "backups", `${name}-${resource}`);
    const dlmRole = new aws.iam.Role(
      `${name}-dlm-role`,
      {
        assumeRolePolicy: JSON.stringify(dlmAssumeRolePolicy()),
        tags: tags("dlm-role"),
      },
      parent,
    );
    const dlmPolicy = new aws.iam.RolePolicy(
      `${name}-dlm-policy`,
      {
        role: dlmRole.id,
        policy: JSON.stringify(dlmServicePolicy(region)),
      },
      parent,
    );
    const target = dataVolumeSnapshotTag(model);
    const snapshots = new aws.dlm.LifecyclePolicy(
      `${name}-data-volume-snapshots`,
      {
        // DLM descriptions allow letters, digits, spaces, '-' and '_' only.
        description: `odoo-stack ${model.stack} PostgreSQL data volume daily snapshots`,
        executionRoleArn: dlmRole.arn,
        state: "ENABLED",
        policyDetails: {
          resourceTypes: ["VOLUME"],
          targetTags: { [target.key]: target.value },
          schedules: [
            {
              name: `daily ${snapshotRetainCount} kept`,
              createRule: { interval: 24, intervalUnit: "HOURS", times: snapshotTime },
              retainRule: { count: snapshotRetainCount },
              // The volume's stack, role and host tags follow the snapshot: policies and operators find it.
              copyTags: true,
              tagsToAdd: { "odoo-stack:snapshot-of": target.value },
            },
          ],
        },
        tags: tags("data-volume-snapshots"),
      },
      { parent: this, dependsOn: [dlmPolicy] },
    );
    return snapshots.arn;
  }

  /** The drill and backup-age alarms of pgBackRest on the PostgreSQL host (ec2 only). */
  private databaseAlarms(
    alarm: (
      id: string,
      a: Omit<aws.cloudwatch.MetricAlarmArgs, "namespace" | "alarmActions" | "okActions" | "tags" | "name">,
    ) => aws.cloudwatch.MetricAlarm,
    model: StackModel,
    rtoTargetSeconds: number,
  ): Record<string, aws.cloudwatch.MetricAlarm> {
    const stackDimension = { [METRIC_DIMENSIONS.stack]: model.stack };
    return {
      // The host republishes RestoreDrillSuccess hourly: 1 only while the last drill succeeded
      // within its stale window (a week and a day). Three empty or zero hours: the drill failed,
      // went stale, or the reporter itself is dead — all mean "restores are not proven" (BACKUP-2).
      restoreDrillStale: alarm("restore-drill-stale", {
        alarmDescription: `BACKUP-2: no successful restore drill within the window on the ${model.stack} PostgreSQL host (or the hourly report stopped). Runbook: "Restore drill".`,
        metricName: BACKUP_METRICS.restoreDrillSuccess,
        dimensions: stackDimension,
        statistic: "Maximum",
        period: 3600,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        threshold: 1,
        comparisonOperator: "LessThanThreshold",
        treatMissingData: "breaching",
      }),
      // Each drill's measured RTO; a missing datum is the stale alarm's business.
      restoreDrillRto: alarm("restore-drill-rto", {
        alarmDescription: `BACKUP-2: the last restore drill of ${model.stack} took longer than the RTO target of ${rtoTargetSeconds} s.`,
        metricName: BACKUP_METRICS.restoreDrillRtoSeconds,
        dimensions: stackDimension,
        statistic: "Maximum",
        period: 86400,
        evaluationPeriods: 1,
        threshold: rtoTargetSeconds,
        comparisonOperator: "GreaterThanThreshold",
        treatMissingData: "notBreaching",
      }),
      backupAge: alarm("backup-age", {
        alarmDescription: `BACKUP-1: the newest pgBackRest backup of ${model.stack} is older than 26 h (daily backups stopped), or the hourly report stopped.`,
        metricName: BACKUP_METRICS.lastBackupAgeSeconds,
        dimensions: stackDimension,
        statistic: "Maximum",
        period: 3600,
        evaluationPeriods: 2,
        datapointsToAlarm: 2,
        threshold: BACKUP_AGE_LIMIT_SECONDS,
        comparisonOperator: "GreaterThanThreshold",
        treatMissingData: "breaching",
      }),
    };
  }

  /**
   * Gives the PostgreSQL host's role its pgBackRest policy and each Odoo host's role its
   * filestore policy (children of this plan). For when the hosts are built after the plan —
   * they need bucketNameParameter first — instead of passing `hostRoles`. Once only.
   */
  grantHostAccess(hostRoles: NonNullable<BackupPlanArgs["hostRoles"]>): aws.iam.RolePolicy[] {
    if (this.granted) throw new Error(`BackupPlan ${this.name}: host access was already granted.`);
    this.granted = true;
    const { model, bucket, bucketKmsKeyArn } = this.args;
    const iamInput = (bucketArn: string) => ({ bucketArn, stack: model.stack, kmsKeyArn: bucketKmsKeyArn, region: model.settings.region });
    const parent = { parent: this };
    const postgresRole = hostRoles.postgres;
    return [
      ...(postgresRole === undefined
        ? []
        : [
            new aws.iam.RolePolicy(
              `${this.name}-postgres-backup-policy`,
              {
                role: postgresRole,
                policy: pulumi.output(bucket.arn).apply((arn) => JSON.stringify(postgresBackupPolicy(iamInput(arn)))),
              },
              parent,
            ),
          ]),
      ...hostRoles.odoo.map(
        (role, i) =>
          new aws.iam.RolePolicy(
            `${this.name}-odoo-${i + 1}-filestore-policy`,
            {
              role,
              policy: pulumi.output(bucket.arn).apply((arn) => JSON.stringify(odooFilestorePolicy(iamInput(arn)))),
            },
            parent,
          ),
      ),
    ];
  }
}
