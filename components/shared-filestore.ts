// The shared filestore (issue 8): with several Odoo hosts, Odoo's data_dir (filestore and
// sessions) lives on one encrypted EFS file system that every Odoo host mounts over TLS
// (templates/scripts/odoo-stack-bootstrap.sh efs-mount: NFS 4.1 inside a stunnel client, since
// amazon-efs-utils is not in Debian 12). A mount target sits in every private subnet, so each
// AZ mounts locally; their security group accepts 2049 from the Odoo hosts' group only (FLOWS).
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackModel } from "../lib/model";
import { throwIfAny } from "../lib/problems";
import type { NetworkRef } from "./host";
import { resourceTags } from "./tags";

/**
 * Choices made once:
 * - generalPurpose: the lowest latency per operation (Odoo reads many small attachments and
 *   session files); maxIO trades latency for aggregate parallelism Odoo does not need.
 * - elastic throughput: throughput follows the load and is billed per use; "bursting" ties it to
 *   the stored size, and a young, small filestore would run out of burst credits.
 * - lifecycle: attachments are written once and rarely read again; after 30 days without
 *   access they move to Infrequent Access, and back on their first read.
 */
export const EFS_DEFAULTS = {
  performanceMode: "generalPurpose",
  throughputMode: "elastic",
  transitionToIa: "AFTER_30_DAYS",
  transitionToPrimaryStorageClass: "AFTER_1_ACCESS",
} as const;

/**
 * The file system policy: refuse every request not made over TLS (the server side of the
 * stunnel mount, so a plain NFS mount fails even from the Odoo group), and let clients that
 * come through a mount target mount, write and act as root (the bootstrap chowns data_dir).
 * https://docs.aws.amazon.com/efs/latest/ug/encryption-in-transit.html
 */
export function efsFileSystemPolicy(fileSystemArn: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "DenyWithoutTls",
        Effect: "Deny",
        Principal: { AWS: "*" },
        Action: "*",
        Resource: fileSystemArn,
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
      {
        Sid: "MountThroughMountTargets",
        Effect: "Allow",
        Principal: { AWS: "*" },
        Action: ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite", "elasticfilesystem:ClientRootAccess"],
        Resource: fileSystemArn,
        Condition: { Bool: { "elasticfilesystem:AccessedViaMountTarget": "true" } },
      },
    ],
  });
}

export interface SharedFilestoreArgs {
  readonly model: StackModel;
  readonly network: NetworkRef;
}

/** Every problem with the network the file system joins; empty when it has an efs security group. */
export function checkSharedFilestoreNetwork(network: Pick<NetworkRef, "securityGroupIds">): string[] {
  if (network.securityGroupIds.efs !== undefined) return [];
  return ["the network has no efs security group; it creates one when sharedFilestore is true."];
}

export class SharedFilestore extends pulumi.ComponentResource {
  readonly fileSystemId: pulumi.Output<string>;
  readonly dnsName: pulumi.Output<string>;
  /** The mount targets; hosts boot after them, so their first mount finds one in their AZ. */
  readonly mountTargets: aws.efs.MountTarget[];

  constructor(name: string, args: SharedFilestoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:shared-filestore:SharedFilestore", name, {}, opts);
    const { model, network } = args;
    throwIfAny(`SharedFilestore ${name}`, checkSharedFilestoreNetwork(network));
    const securityGroupId = network.securityGroupIds.efs as string; // checked just above
    const parent = { parent: this };
    const tags = (part: string) => resourceTags(model, "efs", `${name}-${part}`);

    // protect: the filestore is half of the business data (attachments); a replacement would
    // start empty. Deleting it takes an operator lifting the protection first (principle 6).
    const fs = new aws.efs.FileSystem(
      `${name}-fs`,
      {
        encrypted: true,
        performanceMode: EFS_DEFAULTS.performanceMode,
        throughputMode: EFS_DEFAULTS.throughputMode,
        lifecyclePolicies: [
          { transitionToIa: EFS_DEFAULTS.transitionToIa },
          { transitionToPrimaryStorageClass: EFS_DEFAULTS.transitionToPrimaryStorageClass },
        ],
        tags: tags("fs"),
      },
      { parent: this, protect: true },
    );

    // AWS Backup's default plan for EFS (daily, 35 days) on top of the hourly copy to S3 (BACKUP-1).
    new aws.efs.BackupPolicy(
      `${name}-backup-policy`,
      {
        fileSystemId: fs.id,
        backupPolicy: { status: "ENABLED" },
      },
      parent,
    );

    new aws.efs.FileSystemPolicy(
      `${name}-policy`,
      {
        fileSystemId: fs.id,
        policy: fs.arn.apply(efsFileSystemPolicy),
      },
      parent,
    );

    this.mountTargets = network.privateSubnetIds.map(
      (subnetId, i) =>
        new aws.efs.MountTarget(
          `${name}-mount-${network.availabilityZones[i]}`,
          {
            fileSystemId: fs.id,
            subnetId,
            securityGroups: [securityGroupId],
          },
          parent,
        ),
    );

    this.fileSystemId = fs.id;
    this.dnsName = fs.dnsName;
    this.registerOutputs({ fileSystemId: this.fileSystemId, dnsName: this.dnsName });
  }
}
