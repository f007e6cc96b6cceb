// The Odoo hosts: N identical workers behind the proxy, spread over the private subnets
// (HostId.subnetIndex), exactly one of which runs the crons (LIMIT-2, OBS-6) so scheduled
// jobs never run twice.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackModel } from "../lib/model";
import { PORTS } from "../lib/ports";
import { throwIfAny } from "../lib/problems";
import { hostFiles } from "../templates/hosts";
import { mailPasswordParameter } from "../templates/odoo-conf";
import { odooAddonsStatements } from "../templates/odoo-release";
import { Host, type TierArgs } from "./host";
import { SharedFilestore } from "./shared-filestore";
import { hostTags } from "./tags";

/** Device name of the Odoo data volume; Nitro instances expose it as an NVMe device. */
export const ODOO_DATA_DEVICE = "/dev/sdf";

export type OdooAppArgs = TierArgs;

/** Every problem with the model's Odoo hosts (LIMIT-2: exactly one runs the crons); empty when valid. */
export function checkOdooAppModel(model: Pick<StackModel, "hosts">): string[] {
  const hosts = model.hosts.odoo;
  const cronHosts = hosts.filter((h) => h.runsCron);
  if (hosts.length > 0 && cronHosts.length === 1) return [];
  return [
    `the model must have at least one Odoo host and exactly one that runs crons; it has ${hosts.length} hosts and ${cronHosts.length} cron hosts (${cronHosts.map((h) => h.id).join(", ") || "none"}).`,
  ];
}

export class OdooApp extends pulumi.ComponentResource {
  /** HostId.id of every Odoo host, in model order. */
  readonly hostIds: string[];
  /** Private DNS names, in model order. */
  readonly fqdns: string[];
  readonly instanceIds: pulumi.Output<string>[];
  /** The one host whose max_cron_threads is above zero. */
  readonly cronHostId: string;
  readonly httpPort: number;
  readonly geventPort: number;
  readonly securityGroupId: pulumi.Output<string>;
  /** IAM role of each host, for grants made after the hosts exist (backups: filestore sync). */
  readonly roleNames: pulumi.Output<string>[];
  /** The EFS file system every host mounts at data_dir; undefined without a shared filestore. */
  readonly filestoreFileSystemId: pulumi.Output<string> | undefined;
  /** The volume holding data_dir of a single Odoo host; undefined with a shared filestore. */
  readonly dataVolumeId: pulumi.Output<string> | undefined;

  constructor(name: string, args: OdooAppArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:odoo-app:OdooApp", name, {}, opts);
    const { model } = args;
    throwIfAny(`OdooApp ${name}`, checkOdooAppModel(model));
    const hosts = model.hosts.odoo;
    const cronHosts = hosts.filter((h) => h.runsCron);
    // Several hosts share data_dir (filestore and sessions) on EFS, or an attachment uploaded
    // through one host is missing on the others (issue 8; lib/config.ts sharedFilestore).
    const filestore = model.settings.sharedFilestore
      ? new SharedFilestore(`${name}-filestore`, { model, network: args.network }, { parent: this })
      : undefined;
    // Parameters the operator created: odooOptions' {{ssm:…}} references and the SMTP password
    // (index.ts checks at preview that each exists). The hosts may read them; the stack does not own them.
    const mailParameter = mailPasswordParameter(model);
    const externalParameterNames = [
      ...model.settings.odooOptionParameters,
      ...(mailParameter !== undefined && model.settings.mail?.passwordParameter !== undefined ? [mailParameter] : []),
    ];
    // Without EFS, data_dir (the filestore: every attachment) lives on a volume of its own that
    // outlives the instance, as PostgreSQL's data does: protected, encrypted, a final snapshot if
    // it is ever deleted on purpose (issue 12). sharedFilestore is required with several hosts,
    // so this is the one-host case. The hourly copy to the backup bucket still applies (BACKUP-1).
    const volumes = new Map<string, aws.ebs.Volume>();
    if (!filestore) {
      for (const host of hosts) {
        volumes.set(
          host.id,
          new aws.ebs.Volume(
            `${name}-${host.id}-data`,
            {
              availabilityZone: args.network.availabilityZones[host.subnetIndex],
              size: model.settings.odooDataVolumeGiB,
              type: "gp3",
              encrypted: true,
              finalSnapshot: true,
              tags: hostTags(model, host, `${name}-${host.id}-data`),
            },
            { parent: this, protect: true },
          ),
        );
      }
    }
    const servers = hosts.map(
      (host) =>
        new Host(
          `${name}-${host.id}`,
          {
            ...args,
            host,
            files: hostFiles(model, host),
            instanceType: model.settings.instanceTypes.odoo,
            subnetId: args.network.privateSubnetIds[host.subnetIndex],
            securityGroupId: args.network.securityGroupIds.odoo,
            externalParameterNames,
            // The custom addons artifact: s3:GetObject on exactly that object (issue 12 item 7).
            extraPolicyStatements: odooAddonsStatements(args.aws.partition, model.settings),
            ...(filestore ? { efsFileSystemId: filestore.fileSystemId, bootDependencies: filestore.mountTargets } : {}),
            ...(volumes.has(host.id) ? { dataVolumeId: (volumes.get(host.id) as aws.ebs.Volume).id } : {}),
          },
          { parent: this },
        ),
    );
    servers.forEach((server, i) => {
      const volume = volumes.get(hosts[i].id);
      if (!volume) return;
      new aws.ec2.VolumeAttachment(
        `${name}-${hosts[i].id}-data-attachment`,
        {
          deviceName: ODOO_DATA_DEVICE,
          volumeId: volume.id,
          instanceId: server.instanceId,
          // Stop Odoo's instance before pulling its disk away, so the filesystem is clean.
          stopInstanceBeforeDetaching: true,
        },
        { parent: this, deleteBeforeReplace: true },
      );
    });

    this.hostIds = hosts.map((h) => h.id);
    this.fqdns = hosts.map((h) => h.fqdn);
    this.instanceIds = servers.map((s) => s.instanceId);
    this.cronHostId = cronHosts[0].id;
    this.roleNames = servers.map((s) => s.roleName);
    this.filestoreFileSystemId = filestore?.fileSystemId;
    this.dataVolumeId = volumes.size === 1 ? [...volumes.values()][0].id : undefined;
    this.httpPort = PORTS.odooHttp.port;
    this.geventPort = PORTS.odooGevent.port;
    this.securityGroupId = pulumi.output(args.network.securityGroupIds.odoo);
    this.registerOutputs({ hostIds: this.hostIds, fqdns: this.fqdns, instanceIds: this.instanceIds, cronHostId: this.cronHostId });
  }
}
