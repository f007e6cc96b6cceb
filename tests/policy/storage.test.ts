// Storage policies: the data volume (AUTH-2, BACKUP-1) and the buckets joined with their
// companion resources (BACKUP-1 for backups, ODOO-1 for the config bucket).
import { bucketPrivateEncryptedVersioned, ebsVolumeEncrypted } from "../../policy/storage";
import { validateResource, validateStack, withProp, type FakeResource } from "./fakes";
import { replaced, stackFixture, T } from "./stack-fixture";

const fixture = stackFixture();

describe("ebs-volume-encrypted (AUTH-2, BACKUP-1)", () => {
  it("passes the data volume and rejects it unencrypted", async () => {
    const volume = fixture.get("postgres-data");
    expect(await validateResource(ebsVolumeEncrypted, volume)).toEqual([]);
    expect(await validateResource(ebsVolumeEncrypted, withProp(volume, "encrypted", false))).toEqual([
      "EBS volume (postgres-data) must be encrypted (encrypted = true): it holds the database and its password verifiers (AUTH-2, BACKUP-1).",
    ]);
  });
});

describe("bucket-private-encrypted-versioned (BACKUP-1, ODOO-1)", () => {
  const policy = bucketPrivateEncryptedVersioned;
  const messages = async (resources: readonly FakeResource[]) => (await validateStack(policy, resources)).map((v) => v.message);
  const without = (name: string) => fixture.resources.filter((r) => r.name !== name);

  it("passes both buckets of the stack", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it("rejects a backup bucket without a public access block, or with one flag off", async () => {
    expect(await messages(without("backups-repository-public-access-block"))).toEqual([
      "S3 bucket (backups-repository-bucket) must block public access with all of blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets = true; it has no BucketPublicAccessBlock (BACKUP-1).",
    ]);
    const loose = withProp(fixture.get("backups-repository-public-access-block"), "restrictPublicBuckets", false);
    expect(await messages(replaced(fixture.resources, loose))).toEqual([
      "S3 bucket (backups-repository-bucket) must block public access with all of blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets = true; its BucketPublicAccessBlock leaves restrictPublicBuckets off (BACKUP-1).",
    ]);
  });

  it("rejects a config bucket without encryption", async () => {
    expect(await messages(without("config-encryption"))).toEqual([
      "S3 bucket (config-bucket) must encrypt objects by default (a BucketServerSideEncryptionConfiguration with sseAlgorithm aws:kms or aws:kms:dsse or AES256) (ODOO-1).",
    ]);
  });

  it("rejects suspended versioning", async () => {
    const suspended = withProp(fixture.get("backups-repository-versioning"), "versioningConfiguration.status", "Suspended");
    expect(await messages(replaced(fixture.resources, suspended))).toEqual([
      'S3 bucket (backups-repository-bucket) must keep object versions (a BucketVersioning with status "Enabled"), so an overwrite or a deletion can be undone (BACKUP-1).',
    ]);
  });

  it("rejects a public ACL and a bucket policy open to everyone", async () => {
    const acl: FakeResource = {
      type: "aws:s3/bucketAclV2:BucketAclV2",
      name: "backups-acl",
      props: { bucket: "backups-repository-bucket-id", acl: "public-read" },
      propertyDependencies: { bucket: ["backups-repository-bucket"] },
    };
    expect(await messages([...fixture.resources, acl])).toEqual([
      'S3 bucket (backups-repository-bucket) must not have the canned ACL "public-read": it would expose its objects (BACKUP-1).',
    ]);
    const open = withProp(
      fixture.get("backups-repository-policy"),
      "policy",
      JSON.stringify({ Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: "*" }] }),
    );
    expect(await messages(replaced(fixture.resources, open))).toEqual([
      'S3 bucket (backups-repository-bucket) must not have a bucket policy that allows Principal "*" without a condition (BACKUP-1).',
    ]);
  });

  it("joins companions that name the bucket by name when the engine recorded no dependency", async () => {
    const byName = fixture.resources.map((r) =>
      r.type === T.versioning && r.name.startsWith("backups")
        ? { ...withProp(r, "bucket", "backups-repository-bucket-1234567"), propertyDependencies: {} }
        : r,
    );
    expect(await validateStack(policy, byName)).toEqual([]);
  });
});
