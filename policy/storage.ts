// Storage: the PostgreSQL data volume and the stack's buckets (backups, config delivery).
// A bucket's protections are separate resources in @pulumi/aws 7 (public access block,
// encryption, versioning), so the bucket policy is a stack policy that joins a bucket with
// its companions (BACKUP-1: a backup that anyone can read, or that one overwrite destroys, is
// not a backup).
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { isOneOf, isRecord, referencedResources, roleOf, TYPES, UnknownValues, type StackResourceView } from "./lib/resources";

/**
 * PostgreSQL's data volume holds every database, including the SCRAM verifiers in pg_authid
 * (AUTH-2) and the business data the backups protect (BACKUP-1).
 */
export const ebsVolumeEncrypted: ResourceValidationPolicy = {
  name: "ebs-volume-encrypted",
  description: "Checks whether an EBS volume is encrypted (AUTH-2, BACKUP-1).",
  validateResource: (args, reportViolation) => {
    if (args.type !== TYPES.ebsVolume) return;
    if (args.props.encrypted !== true) {
      reportViolation(
        `EBS volume (${args.name}) must be encrypted (encrypted = true): it holds the database and its password verifiers (AUTH-2, BACKUP-1).`,
      );
    }
  },
};

/** The checklist item a bucket of each role serves. */
const bucketItem = (role: string | undefined): string => (role === "backups" ? "BACKUP-1" : "ODOO-1");

const PUBLIC_ACLS = ["public-read", "public-read-write", "authenticated-read"];
const PUBLIC_ACCESS_BLOCK_FLAGS = ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"] as const;
const SSE_ALGORITHMS = ["aws:kms", "aws:kms:dsse", "AES256"];

/** Statements that allow anyone ("*") without a condition narrowing who. */
function publicAllowStatements(policy: unknown): number {
  let doc: unknown = policy;
  if (typeof policy === "string") {
    try {
      doc = JSON.parse(policy);
    } catch {
      return 0;
    }
  }
  if (!isRecord(doc)) return 0;
  const statements = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
  return statements.filter((s) => {
    if (!isRecord(s) || s.Effect !== "Allow" || s.Condition !== undefined) return false;
    const p = s.Principal;
    return p === "*" || (isRecord(p) && (p.AWS === "*" || (Array.isArray(p.AWS) && p.AWS.includes("*"))));
  }).length;
}

/** Encryption rules declare a default algorithm AWS accepts. */
function encryptsByDefault(rules: unknown): boolean {
  const list = Array.isArray(rules) ? rules : [rules];
  return list.some((rule) => {
    if (!isRecord(rule)) return false;
    const d = rule.applyServerSideEncryptionByDefault;
    const byDefault = Array.isArray(d) ? d[0] : d;
    return isRecord(byDefault) && SSE_ALGORITHMS.includes(String(byDefault.sseAlgorithm));
  });
}

function versioningEnabled(config: unknown): boolean {
  const c = Array.isArray(config) ? config[0] : config;
  return isRecord(c) && (c.status === "Enabled" || c.enabled === true);
}

/**
 * BACKUP-1 (and ODOO-1 for the config bucket, which carries every host's rendered files):
 * every bucket blocks public access four ways, encrypts by default and keeps versions; no ACL
 * or bucket policy opens it to everyone.
 */
export const bucketPrivateEncryptedVersioned: StackValidationPolicy = {
  name: "bucket-private-encrypted-versioned",
  description:
    "Checks whether every S3 bucket blocks public access, encrypts objects by default and keeps versions, joining the bucket with its companion resources (BACKUP-1, ODOO-1).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const buckets = resources.filter((r) => isOneOf(r.type, TYPES.buckets));
    const companions = (types: string | readonly string[]) => resources.filter((r) => isOneOf(r.type, types));
    const ofBucket = (bucket: StackResourceView, types: string | readonly string[]) =>
      companions(types).filter(
        (c) => unknown.run(() => referencedResources(c, "bucket", [bucket]).length > 0 || sameBucketName(c, bucket)) === true,
      );

    for (const bucket of buckets) {
      unknown.run(() => {
        const role = roleOf(bucket.props);
        const subject = `S3 bucket (${bucket.name})`;
        const item = bucketItem(role);

        const blocks = ofBucket(bucket, TYPES.publicAccessBlock);
        const fullyBlocked = blocks.some((b) => PUBLIC_ACCESS_BLOCK_FLAGS.every((f) => b.props[f] === true));
        if (!fullyBlocked) {
          const missing =
            blocks.length === 0
              ? "it has no BucketPublicAccessBlock"
              : `its BucketPublicAccessBlock leaves ${PUBLIC_ACCESS_BLOCK_FLAGS.filter((f) => !blocks.some((b) => b.props[f] === true)).join(", ")} off`;
          reportViolation(
            `${subject} must block public access with all of ${PUBLIC_ACCESS_BLOCK_FLAGS.join(", ")} = true; ${missing} (${item}).`,
            bucket.urn,
          );
        }

        const inlineEncryption = isRecord(bucket.props.serverSideEncryptionConfiguration)
          ? (bucket.props.serverSideEncryptionConfiguration.rule ?? bucket.props.serverSideEncryptionConfiguration.rules)
          : undefined;
        const encrypted =
          encryptsByDefault(inlineEncryption) || ofBucket(bucket, TYPES.encryption).some((e) => encryptsByDefault(e.props.rules));
        if (!encrypted) {
          reportViolation(
            `${subject} must encrypt objects by default (a BucketServerSideEncryptionConfiguration with sseAlgorithm ${SSE_ALGORITHMS.join(" or ")}) (${item}).`,
            bucket.urn,
          );
        }

        const versioned =
          versioningEnabled(bucket.props.versioning) ||
          ofBucket(bucket, TYPES.versioning).some((v) => versioningEnabled(v.props.versioningConfiguration));
        if (!versioned) {
          reportViolation(
            `${subject} must keep object versions (a BucketVersioning with status "Enabled"), so an overwrite or a deletion can be undone (${item}).`,
            bucket.urn,
          );
        }

        const acls = [bucket.props.acl, ...ofBucket(bucket, TYPES.bucketAcl).map((a) => a.props.acl)];
        const publicAcl = acls.find((a) => typeof a === "string" && PUBLIC_ACLS.includes(a));
        if (publicAcl !== undefined) {
          reportViolation(
            `${subject} must not have the canned ACL ${JSON.stringify(publicAcl)}: it would expose its objects (${item}).`,
            bucket.urn,
          );
        }

        const policies = [bucket.props.policy, ...ofBucket(bucket, TYPES.bucketPolicy).map((p) => p.props.policy)];
        if (policies.some((p) => publicAllowStatements(p) > 0)) {
          reportViolation(`${subject} must not have a bucket policy that allows Principal "*" without a condition (${item}).`, bucket.urn);
        }
      });
    }
    unknown.finish();
  },
};

/** A companion that names the bucket by its name rather than through a reference. */
function sameBucketName(companion: StackResourceView, bucket: StackResourceView): boolean {
  const name = bucket.props.bucket;
  return typeof name === "string" && name !== "" && companion.props.bucket === name;
}

export const policies: Policies = [ebsVolumeEncrypted, bucketPrivateEncryptedVersioned];
