// Least-privilege IAM for backups (BACKUP-1): each host reaches only its stack's prefix, nobody
// can destroy object versions, metrics only in the backup namespace. Resource patterns are
// checked the way IAM matches them ('*' spans any characters, '/' included), against keys of
// this stack and of a neighbour whose name shares a prefix.
import {
  dlmAssumeRolePolicy,
  dlmServicePolicy,
  odooFilestorePolicy,
  partitionOf,
  postgresBackupPolicy,
  putBackupMetricsStatement,
  type IamPolicyDocument,
  type IamStatement,
} from "../../templates/backup-iam";
import { BACKUP_METRIC_NAMESPACE } from "../../templates/backup-units";

const BUCKET_ARN = "arn:aws:s3:::odoo-stack-prod-backups-4f2a9c1";
const input = { bucketArn: BUCKET_ARN, stack: "prod" };

/** IAM's ARN glob: '*' any run of characters, '?' one character. */
const globMatches = (pattern: string, value: string): boolean =>
  new RegExp(
    `^${pattern
      .split("")
      .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
      .join("")}$`,
  ).test(value);

const resources = (s: IamStatement): string[] => (typeof s.Resource === "string" ? [s.Resource] : [...s.Resource]);

/** May `action` be done on `arn` under this policy (ignoring conditions)? */
const allows = (doc: IamPolicyDocument, action: string, arn: string): boolean =>
  doc.Statement.some((s) => s.Action.includes(action) && resources(s).some((r) => globMatches(r, arn)));

const object = (key: string) => `${BUCKET_ARN}/${key}`;

describe("postgresBackupPolicy", () => {
  const doc = postgresBackupPolicy(input);

  it.each([
    ["s3:GetObject", "pgbackrest/prod/archive/main/15-1/000000010000000000000001-abc.zst", true],
    ["s3:PutObject", "pgbackrest/prod/backup/main/backup.info", true],
    ["s3:DeleteObject", "pgbackrest/prod/backup/main/20240101-010000F/pg_data/base/1/1249.zst", true],
    // Another stack whose name starts the same, the filestore, the bucket root: all out of reach.
    ["s3:GetObject", "pgbackrest/prod-old/backup/main/backup.info", false],
    ["s3:PutObject", "pgbackrest/prodx/archive/main/x", false],
    ["s3:GetObject", "filestore/prod/erp/ab/abcdef", false],
    ["s3:PutObject", "pgbackrest/prod", false],
  ])("%s on %s: %p", (action, key, allowed) => {
    expect(allows(doc, action, object(key))).toBe(allowed);
  });

  it("lists only the repository (pgBackRest's sample policy: the root with a delimiter, the path below)", () => {
    const lists = doc.Statement.filter((s) => s.Action.includes("s3:ListBucket"));
    expect(lists.map((s) => [s.Resource, s.Condition])).toEqual([
      [BUCKET_ARN, { StringEquals: { "s3:prefix": ["", "pgbackrest/prod"], "s3:delimiter": ["/"] } }],
      [BUCKET_ARN, { StringLike: { "s3:prefix": ["pgbackrest/prod/*"] } }],
    ]);
  });

  it("cannot destroy history or touch the bucket's settings", () => {
    const actions = doc.Statement.flatMap((s) => s.Action);
    for (const forbidden of [
      "s3:DeleteObjectVersion",
      "s3:PutLifecycleConfiguration",
      "s3:PutBucketVersioning",
      "s3:PutBucketPolicy",
      "s3:*",
    ]) {
      expect(actions).not.toContain(forbidden);
    }
    expect(actions.every((a) => !a.endsWith("*"))).toBe(true);
  });

  it("has a wildcard resource only for PutMetricData, scoped by namespace", () => {
    const wildcard = doc.Statement.filter((s) => resources(s).includes("*"));
    expect(wildcard).toEqual([putBackupMetricsStatement()]);
    expect(putBackupMetricsStatement().Condition).toEqual({ StringEquals: { "cloudwatch:namespace": BACKUP_METRIC_NAMESPACE } });
  });

  it("has unique statement ids", () => {
    const sids = doc.Statement.map((s) => s.Sid);
    expect(new Set(sids).size).toBe(sids.length);
  });
});

describe("odooFilestorePolicy", () => {
  const doc = odooFilestorePolicy(input);

  it.each([
    ["s3:PutObject", "filestore/prod/erp/ab/abcdef0123", true],
    ["s3:GetObject", "filestore/prod/erp/ab/abcdef0123", true],
    ["s3:GetObjectVersion", "filestore/prod/erp/ab/abcdef0123", true],
    ["s3:DeleteObject", "filestore/prod/erp/ab/abcdef0123", false],
    ["s3:PutObject", "filestore/prod-old/erp/ab/abcdef0123", false],
    ["s3:GetObject", "pgbackrest/prod/backup/main/backup.info", false],
  ])("%s on %s: %p", (action, key, allowed) => {
    expect(allows(doc, action, object(key))).toBe(allowed);
  });

  it("lists objects and versions under the stack's filestore prefix only", () => {
    const lists = doc.Statement.filter((s) => s.Action.some((a) => a.startsWith("s3:List")));
    expect(lists).toHaveLength(1);
    expect(lists[0]).toMatchObject({
      Action: ["s3:ListBucket", "s3:ListBucketVersions"],
      Resource: BUCKET_ARN,
      Condition: { StringLike: { "s3:prefix": ["filestore/prod/*"] } },
    });
  });

  it("publishes backup metrics only", () => {
    expect(doc.Statement).toContainEqual(putBackupMetricsStatement());
  });
});

describe("a customer-managed bucket key", () => {
  const KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

  it("is usable through S3 only, and only when given", () => {
    for (const build of [postgresBackupPolicy, odooFilestorePolicy]) {
      expect(build(input).Statement.some((s) => s.Action.some((a) => a.startsWith("kms:")))).toBe(false);
      const kms = build({ ...input, kmsKeyArn: KEY, region: "eu-west-1" }).Statement.filter((s) =>
        s.Action.some((a) => a.startsWith("kms:")),
      );
      expect(kms).toEqual([
        {
          Sid: "UseBucketKeyThroughS3",
          Effect: "Allow",
          Action: ["kms:Decrypt", "kms:GenerateDataKey"],
          Resource: KEY,
          Condition: { StringEquals: { "kms:ViaService": "s3.eu-west-1.amazonaws.com" } },
        },
      ]);
    }
  });

  it("needs the region", () => {
    expect(() => postgresBackupPolicy({ ...input, kmsKeyArn: KEY })).toThrow(/'region' is required with 'kmsKeyArn'/);
  });
});

describe("Data Lifecycle Manager's role", () => {
  it("is assumable by DLM only", () => {
    expect(dlmAssumeRolePolicy()).toEqual({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { Service: "dlm.amazonaws.com" }, Action: "sts:AssumeRole" }],
    });
  });

  it.each([
    ["eu-west-1", "aws"],
    ["cn-north-1", "aws-cn"],
    ["us-gov-west-1", "aws-us-gov"],
  ])("tags snapshots only, in %s's partition", (region, partition) => {
    expect(partitionOf(region)).toBe(partition);
    const tagging = dlmServicePolicy(region).Statement.filter((s) => s.Action.includes("ec2:CreateTags"));
    expect(tagging).toEqual([expect.objectContaining({ Resource: `arn:${partition}:ec2:*::snapshot/*` })]);
  });

  it("may create and delete snapshots but not volumes or instances", () => {
    const actions = dlmServicePolicy("eu-west-1").Statement.flatMap((s) => s.Action);
    expect(actions).toEqual(expect.arrayContaining(["ec2:CreateSnapshot", "ec2:DeleteSnapshot"]));
    for (const a of ["ec2:DeleteVolume", "ec2:TerminateInstances", "ec2:CreateVolume", "ec2:*"]) expect(actions).not.toContain(a);
  });
});

describe("imports (the import-database procedure)", () => {
  it.each([
    ["postgres", postgresBackupPolicy(input)],
    ["odoo", odooFilestorePolicy(input)],
  ])("the %s host reads its stack's import prefix, and cannot write or delete there or read another stack's", (_host, doc) => {
    expect(allows(doc, "s3:GetObject", object("import/prod/erp.dump"))).toBe(true);
    expect(allows(doc, "s3:PutObject", object("import/prod/erp.dump"))).toBe(false);
    expect(allows(doc, "s3:DeleteObject", object("import/prod/erp.dump"))).toBe(false);
    expect(allows(doc, "s3:GetObject", object("import/prod-old/erp.dump"))).toBe(false);
  });
});
