// The reproduction of Pulumi's awsguard 0.3.1 rules (awsguard.ts): each rule reports what the
// package reports, on the property it reads, and nothing on a compliant resource. The planned
// prod and scale stacks are checked against them in the mutation suites, which plan them anyway.
import { AWSGUARD_EXCEPTIONS, AWSGUARD_RULES, awsguardFindings, type GuardedResource } from "./awsguard";

const instance = (props: Record<string, unknown>): GuardedResource => ({
  type: "aws:ec2/instance:Instance",
  name: "i",
  props: {
    monitoring: true,
    associatePublicIpAddress: false,
    rootBlockDevice: { encrypted: true },
    ebsBlockDevices: [{ volumeId: "vol-1", encrypted: true, deleteOnTermination: true }],
    ...props,
  },
});
const rds = (props: Record<string, unknown>): GuardedResource => ({
  type: "aws:rds/instance:Instance",
  name: "db",
  props: { backupRetentionPeriod: 7, multiAz: true, publiclyAccessible: false, storageEncrypted: true, ...props },
});

describe("awsguard 0.3.1's rules, reproduced", () => {
  it("finds nothing on compliant resources", () => {
    expect(
      awsguardFindings([
        instance({}),
        rds({}),
        { type: "aws:efs/fileSystem:FileSystem", name: "fs", props: { kmsKeyId: "k" } },
        { type: "aws:s3/bucket:Bucket", name: "b", props: { loggings: [{ targetBucket: "logs" }] } },
        { type: "aws:kms/key:Key", name: "k", props: { enableKeyRotation: true } },
      ]),
    ).toEqual([]);
  });

  it.each([
    ["ec2-instance-detailed-monitoring-enabled", instance({ monitoring: false }), "EC2 instances must have detailed monitoring enabled."],
    [
      "ec2-instance-detailed-monitoring-enabled",
      instance({ monitoring: undefined }),
      "EC2 instances must have detailed monitoring enabled.",
    ],
    ["ec2-instance-no-public-ip", instance({ associatePublicIpAddress: true }), "EC2 instance must not have a public IP."],
    ["ec2-volume-inuse", instance({ ebsBlockDevices: [] }), "EC2 instance must have an EBS volume attached."],
    [
      "ec2-volume-inuse",
      instance({ ebsBlockDevices: [{ volumeId: "vol-2", encrypted: true }] }),
      "ECS instance's EBS volume (vol-2) must be marked for termination on delete.",
    ],
    ["encrypted-volumes", instance({ rootBlockDevice: { encrypted: false } }), "The EC2 instance root block device must be encrypted."],
    [
      "encrypted-volumes",
      instance({ ebsBlockDevices: [{ volumeId: "vol-3", deleteOnTermination: true }] }),
      "EBS volume (vol-3) must be encrypted.",
    ],
    ["rds-instance-backup-enabled", rds({ backupRetentionPeriod: 0 }), "RDS Instances must have backups enabled."],
    ["rds-instance-multi-az-enabled", rds({ multiAz: false }), "RDS Instances must be configured with multiple AZs for highly available."],
    ["rds-instance-public-access", rds({ publiclyAccessible: true }), "RDS Instance must not be publicly accessible."],
    ["rds-storage-encrypted", rds({ storageEncrypted: undefined }), "RDS Instance must have storage encryption enabled."],
    [
      "cmk-backing-key-rotation-enabled",
      { type: "aws:kms/key:Key", name: "k", props: { enableKeyRotation: false } },
      "CMK does not have the key rotation setting enabled",
    ],
    [
      "efs-encrypted",
      { type: "aws:efs/fileSystem:FileSystem", name: "fs", props: { encrypted: true } },
      "Amazon Elastic File System must have a KMS Key defined.",
    ],
    ["s3-bucket-logging-enabled", { type: "aws:s3/bucket:Bucket", name: "b", props: {} }, "Bucket logging must be defined."],
  ] as const)("%s reports its message", (policy, resource, message) => {
    expect(awsguardFindings([resource])).toEqual([{ policy, resource: resource.name, message }]);
  });

  it("explains every exception, for rules it has", () => {
    const names = AWSGUARD_RULES.map((r) => r.name);
    for (const [policy, reason] of Object.entries(AWSGUARD_EXCEPTIONS))
      expect([policy, names.includes(policy), reason.length > 40]).toEqual([policy, true, true]);
    expect(Object.keys(AWSGUARD_EXCEPTIONS)).not.toContain("ec2-instance-detailed-monitoring-enabled");
  });
});
