// PostgreSQL on its own host, with its data on a separate encrypted gp3 volume that outlives
// the instance (DESIGN principle 6): replacing the instance detaches the volume and attaches
// it to the new one; nothing in the stack can delete it without an operator first removing
// the protection.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { PORTS } from "../lib/ports";
import { hostFiles } from "../templates/hosts";
import { Host, type TierArgs } from "./host";
import { dataVolumeSnapshotTag } from "./backup-plan";
import { hostTags } from "./tags";

/**
 * Where PostgreSQL runs. Only "ec2" exists; "rds" is issue 8. The outputs (endpoint, port,
 * security group) are the same for both, so consumers never depend on the engine.
 */
export type PostgresEngine = "ec2";

export interface PostgresHostArgs extends TierArgs {
  /** Optional. Defaults to "ec2". */
  readonly engine?: PostgresEngine;
}

/** Device name the data volume is attached as; Nitro instances expose it as an NVMe device. */
export const POSTGRES_DATA_DEVICE = "/dev/sdf";

export class PostgresHost extends pulumi.ComponentResource {
  readonly engine: PostgresEngine;
  /** Private DNS name clients connect to and verify (TLS-2, TLS-3). */
  readonly endpoint: string;
  readonly port: number;
  readonly securityGroupId: pulumi.Output<string>;
  readonly hostId: string;
  readonly instanceId: pulumi.Output<string>;
  readonly dataVolumeId: pulumi.Output<string>;
  /** The host's IAM role, for grants made after it exists (backups: pgBackRest repository). */
  readonly roleName: pulumi.Output<string>;

  constructor(name: string, args: PostgresHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:postgres-host:PostgresHost", name, {}, opts);
    const engine = args.engine ?? "ec2";
    const { model } = args;
    const host = model.hosts.postgres;
    const availabilityZone = args.network.availabilityZones[host.subnetIndex];

    // protect, not retainOnDelete: a change that would replace or delete the volume (AZ, size
    // shrink, a destroy) stops with an error the operator must read, instead of silently
    // orphaning the data and creating an empty volume. finalSnapshot still keeps a copy if the
    // protection is lifted and the volume deleted on purpose.
    const snapshot = dataVolumeSnapshotTag(model);
    const volume = new aws.ebs.Volume(`${name}-data`, {
      availabilityZone,
      size: model.settings.postgresDataVolumeGiB,
      type: "gp3",
      encrypted: true,
      finalSnapshot: true,
      // Data Lifecycle Manager selects the volume by this tag for daily snapshots (BACKUP-1).
      tags: hostTags(model, host, `${name}-data`, { [snapshot.key]: snapshot.value }),
    }, { parent: this, protect: true });

    const server = new Host(`${name}-host`, {
      ...args,
      host,
      files: hostFiles(model, host),
      instanceType: model.settings.instanceTypes.postgres,
      subnetId: args.network.privateSubnetIds[host.subnetIndex],
      securityGroupId: args.network.securityGroupIds.postgres,
      dataVolumeId: volume.id,
    }, { parent: this });

    new aws.ec2.VolumeAttachment(`${name}-data-attachment`, {
      deviceName: POSTGRES_DATA_DEVICE,
      volumeId: volume.id,
      instanceId: server.instanceId,
      // Stop PostgreSQL's instance before pulling its disk away, so the filesystem is clean.
      stopInstanceBeforeDetaching: true,
    }, {
      parent: this,
      // A volume attaches to one instance at a time: detach from the old host first.
      deleteBeforeReplace: true,
    });

    this.engine = engine;
    this.endpoint = host.fqdn;
    this.port = PORTS.postgres.port;
    this.securityGroupId = pulumi.output(args.network.securityGroupIds.postgres);
    this.hostId = host.id;
    this.instanceId = server.instanceId;
    this.dataVolumeId = volume.id;
    this.roleName = server.roleName;
    this.registerOutputs({
      engine: this.engine,
      endpoint: this.endpoint,
      port: this.port,
      securityGroupId: this.securityGroupId,
      instanceId: this.instanceId,
      dataVolumeId: this.dataVolumeId,
    });
  }
}
