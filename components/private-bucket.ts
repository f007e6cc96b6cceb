// A bucket no one outside the account can read: public access blocked four ways, objects
// owned by the bucket owner (no ACLs), KMS encryption by default, versioning, old versions
// expired, TLS required. The config bucket and the backup bucket are both this.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackModel } from "../lib/model";
import { throwIfAny } from "../lib/problems";
import { resourceTags, type TagRole } from "./tags";

/** Defaults of the optional PrivateBucketArgs, stated once. */
export const PRIVATE_BUCKET_DEFAULTS = {
  noncurrentVersionExpirationDays: 30,
  abortIncompleteMultipartUploadDays: 7,
} as const;

export interface PrivateBucketArgs {
  readonly model: StackModel;
  /** Tag role of the bucket and everything about it, e.g. "config" or "backups". */
  readonly role: TagRole;
  /** Days an overwritten or deleted object version is kept. Optional. Defaults to 30. */
  readonly noncurrentVersionExpirationDays?: number;
  /** Days before an unfinished multipart upload is discarded. Optional. Defaults to 7. */
  readonly abortIncompleteMultipartUploadDays?: number;
}

/** Every problem with the bucket's numbers, defaults applied; empty when valid. */
export function checkPrivateBucketArgs(args: Pick<PrivateBucketArgs, "noncurrentVersionExpirationDays">): string[] {
  const noncurrentDays = args.noncurrentVersionExpirationDays ?? PRIVATE_BUCKET_DEFAULTS.noncurrentVersionExpirationDays;
  if (Number.isInteger(noncurrentDays) && noncurrentDays >= 1) return [];
  return [`'noncurrentVersionExpirationDays' must be a whole number of days ≥ 1, got ${noncurrentDays}.`];
}

export class PrivateBucket extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  readonly arn: pulumi.Output<string>;
  /** The bucket itself, for resources that must wait for it. */
  readonly bucket: aws.s3.Bucket;

  constructor(name: string, args: PrivateBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:private-bucket:PrivateBucket", name, {}, opts);
    const noncurrentDays = args.noncurrentVersionExpirationDays ?? PRIVATE_BUCKET_DEFAULTS.noncurrentVersionExpirationDays;
    const abortDays = args.abortIncompleteMultipartUploadDays ?? PRIVATE_BUCKET_DEFAULTS.abortIncompleteMultipartUploadDays;
    throwIfAny(`PrivateBucket ${name}`, checkPrivateBucketArgs(args));
    const parent = { parent: this };

    // @pulumi/aws 7: aws.s3.Bucket is the current resource (BucketV2 is its deprecated alias);
    // every setting below is its own resource, as the provider recommends.
    const bucket = new aws.s3.Bucket(
      `${name}-bucket`,
      {
        // A stack's data is never deleted by `pulumi destroy` while objects remain.
        forceDestroy: false,
        tags: resourceTags(args.model, args.role, `${name}-bucket`),
      },
      parent,
    );

    const publicAccessBlock = new aws.s3.BucketPublicAccessBlock(
      `${name}-public-access-block`,
      {
        bucket: bucket.id,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
      parent,
    );

    new aws.s3.BucketOwnershipControls(
      `${name}-ownership`,
      {
        bucket: bucket.id,
        rule: { objectOwnership: "BucketOwnerEnforced" },
      },
      parent,
    );

    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}-encryption`,
      {
        bucket: bucket.id,
        rules: [
          {
            applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" },
            // One KMS data key per bucket instead of per object: fewer KMS calls, same protection.
            bucketKeyEnabled: true,
          },
        ],
      },
      parent,
    );

    const versioning = new aws.s3.BucketVersioning(
      `${name}-versioning`,
      {
        bucket: bucket.id,
        versioningConfiguration: { status: "Enabled" },
      },
      parent,
    );

    new aws.s3.BucketLifecycleConfiguration(
      `${name}-lifecycle`,
      {
        bucket: bucket.id,
        rules: [
          {
            id: "expire-noncurrent-versions",
            status: "Enabled",
            filter: {},
            noncurrentVersionExpiration: { noncurrentDays },
            expiration: { expiredObjectDeleteMarker: true },
            abortIncompleteMultipartUpload: { daysAfterInitiation: abortDays },
          },
        ],
      },
      { parent: this, dependsOn: [versioning] },
    );

    new aws.s3.BucketPolicy(
      `${name}-policy`,
      {
        bucket: bucket.id,
        policy: bucket.arn.apply((arn) =>
          JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "DenyInsecureTransport",
                Effect: "Deny",
                Principal: "*",
                Action: "s3:*",
                Resource: [arn, `${arn}/*`],
                Condition: { Bool: { "aws:SecureTransport": "false" } },
              },
            ],
          }),
        ),
      },
      { parent: this, dependsOn: [publicAccessBlock] },
    );

    this.bucket = bucket;
    this.bucketName = bucket.bucket;
    this.arn = bucket.arn;
    this.registerOutputs({ bucketName: this.bucketName, arn: this.arn });
  }
}
