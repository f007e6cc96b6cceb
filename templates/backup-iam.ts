// Least-privilege IAM for the backup jobs, as pure JSON builders: each host role may touch its
// own prefix of the backup bucket and publish backup metrics, nothing more. None of them may
// delete object versions: with versioning on, a compromised host can add delete markers but
// cannot destroy history, and the bucket's lifecycle rule expires old versions on schedule.
import { BACKUP_METRIC_NAMESPACE, filestorePrefix, importPrefix } from "./backup-units";
import { pgbackrestRepoPrefix } from "./pgbackrest";

/** An IAM policy statement (structurally the same as components/host.ts PolicyStatement). */
export interface IamStatement {
  readonly Sid: string;
  readonly Effect: "Allow";
  readonly Action: readonly string[];
  readonly Resource: string | readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
}

export interface IamPolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: readonly IamStatement[];
}

export interface BackupIamInput {
  readonly bucketArn: string;
  readonly stack: string;
  /**
   * A customer-managed KMS key encrypting the bucket, if any. Optional. Defaults to none: with
   * the AWS-managed aws/s3 key, S3 grants the key's use to the account's principals itself.
   */
  readonly kmsKeyArn?: string;
  /** Region of the bucket (kms:ViaService). Needed only with kmsKeyArn. */
  readonly region?: string;
}

/** The AWS partition of a region: the first field of every ARN. */
export const partitionOf = (region: string): string =>
  region.startsWith("cn-") ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws";

/** cloudwatch:PutMetricData has no resource ARN; the namespace condition is its only scope. */
export function putBackupMetricsStatement(): IamStatement {
  return {
    Sid: "PutBackupMetrics",
    Effect: "Allow",
    Action: ["cloudwatch:PutMetricData"],
    Resource: "*",
    Condition: { StringEquals: { "cloudwatch:namespace": BACKUP_METRIC_NAMESPACE } },
  };
}

function kmsStatement(input: BackupIamInput, actions: readonly string[]): IamStatement[] {
  if (input.kmsKeyArn === undefined) return [];
  if (input.region === undefined)
    throw new Error("backup IAM: 'region' is required with 'kmsKeyArn' (kms:ViaService names the regional S3 endpoint).");
  return [
    {
      Sid: "UseBucketKeyThroughS3",
      Effect: "Allow",
      Action: actions,
      Resource: input.kmsKeyArn,
      Condition: { StringEquals: { "kms:ViaService": `s3.${input.region}.amazonaws.com` } },
    },
  ];
}

/**
 * A dump and a filestore the operator uploaded to import an existing Odoo database (the
 * import-database procedure): read only, the stack's import prefix only.
 */
function readImportsStatement(input: BackupIamInput) {
  return {
    Sid: "ReadImports",
    Effect: "Allow" as const,
    Action: ["s3:GetObject"],
    Resource: `${input.bucketArn}/${importPrefix(input.stack)}*`,
  };
}

/**
 * The PostgreSQL host: pgBackRest's repository prefix only. pgBackRest lists the repository
 * path's parent with a delimiter, then everything below the path; the two ListBucket
 * statements follow pgBackRest's own sample policy.
 * https://pgbackrest.org/user-guide.html#s3-support
 */
export function postgresBackupPolicy(input: BackupIamInput): IamPolicyDocument {
  const prefix = pgbackrestRepoPrefix(input.stack);
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ListRepositoryRoot",
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: input.bucketArn,
        Condition: { StringEquals: { "s3:prefix": ["", prefix], "s3:delimiter": ["/"] } },
      },
      {
        Sid: "ListRepository",
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: input.bucketArn,
        Condition: { StringLike: { "s3:prefix": [`${prefix}/*`] } },
      },
      {
        // Delete: pgBackRest expires old backups and WAL (retention); versions stay until the lifecycle rule.
        Sid: "ReadWriteRepository",
        Effect: "Allow",
        Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        Resource: `${input.bucketArn}/${prefix}/*`,
      },
      readImportsStatement(input),
      ...kmsStatement(input, ["kms:Decrypt", "kms:GenerateDataKey"]),
      putBackupMetricsStatement(),
    ],
  };
}

/**
 * An Odoo host: its stack's filestore prefix only — write for the hourly sync, read and list
 * versions for a restore (runbook). No delete: the sync runs without --delete.
 */
export function odooFilestorePolicy(input: BackupIamInput): IamPolicyDocument {
  const prefix = filestorePrefix(input.stack);
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ListFilestore",
        Effect: "Allow",
        Action: ["s3:ListBucket", "s3:ListBucketVersions"],
        Resource: input.bucketArn,
        Condition: { StringLike: { "s3:prefix": [`${prefix}*`] } },
      },
      {
        Sid: "ReadWriteFilestore",
        Effect: "Allow",
        Action: ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
        Resource: `${input.bucketArn}/${prefix}*`,
      },
      readImportsStatement(input),
      ...kmsStatement(input, ["kms:Decrypt", "kms:GenerateDataKey"]),
      putBackupMetricsStatement(),
    ],
  };
}

/** Trust policy of the role Data Lifecycle Manager assumes. */
export function dlmAssumeRolePolicy(): {
  readonly Version: "2012-10-17";
  readonly Statement: readonly Readonly<Record<string, unknown>>[];
} {
  return {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: "dlm.amazonaws.com" }, Action: "sts:AssumeRole" }],
  };
}

/**
 * What DLM needs to snapshot volumes and expire its snapshots: the actions of AWS's
 * AWSDataLifecycleManagerServiceRole, with tagging limited to snapshots.
 * https://docs.aws.amazon.com/ebs/latest/userguide/service-role.html
 */
export function dlmServicePolicy(region: string): IamPolicyDocument {
  const partition = partitionOf(region);
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ManageSnapshots",
        Effect: "Allow",
        Action: [
          "ec2:CreateSnapshot",
          "ec2:CreateSnapshots",
          "ec2:DeleteSnapshot",
          "ec2:DescribeInstances",
          "ec2:DescribeVolumes",
          "ec2:DescribeSnapshots",
        ],
        Resource: "*",
      },
      {
        Sid: "TagSnapshots",
        Effect: "Allow",
        Action: ["ec2:CreateTags"],
        Resource: `arn:${partition}:ec2:*::snapshot/*`,
      },
    ],
  };
}
