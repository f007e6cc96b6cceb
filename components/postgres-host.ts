// PostgreSQL on its own host, with its data on a separate encrypted gp3 volume that outlives
// the instance (DESIGN principle 6): replacing the instance detaches the volume and attaches
// it to the new one; nothing in the stack can delete it without an operator first removing
// the protection. Or (issue 8) Amazon RDS for PostgreSQL: Multi-AZ, encrypted, protected, its
// parameter group carrying the same checklist values the EC2 drop-in forces.
import * as aws from "@pulumi/aws";
import * as random from "@pulumi/random";
import * as pulumi from "@pulumi/pulumi";
import type { PostgresEngine } from "../lib/config";
import { DB_ROLES, type StackModel } from "../lib/model";
import { PORTS } from "../lib/ports";
import { throwIfAny } from "../lib/problems";
import { hostFiles } from "../templates/hosts";
import { RDS_POSTGRES, rdsInstanceIdentifier, rdsParameters } from "../templates/rds";
import { Host, type TierArgs } from "./host";
import { dataVolumeSnapshotTag } from "./backup-plan";
import { hostTags, resourceTags } from "./tags";

/**
 * Where PostgreSQL runs: "ec2" (a host of the stack) or "rds". The outputs (endpoint, port,
 * security group) are the same for both, so consumers never depend on the engine.
 */
export type { PostgresEngine } from "../lib/config";

/** The RDS instance class of an EC2-style type name (lib/config.ts validates the table). */
export const rdsInstanceClass = (instanceType: string): string => `db.${instanceType}`;

export interface PostgresHostArgs extends TierArgs {
  /** Optional. Defaults to the settings' postgresEngine. */
  readonly engine?: PostgresEngine;
  /**
   * rds: the log group RDS exports PostgreSQL's log to (Monitoring's, named by
   * rdsPostgresqlLogGroupName). Optional. Without it RDS creates the group itself, kept forever.
   */
  readonly rdsLogGroup?: pulumi.Resource;
}

/** Device name the data volume is attached as; Nitro instances expose it as an NVMe device. */
export const POSTGRES_DATA_DEVICE = "/dev/sdf";

/** Every problem with the engine asked for; empty when it is the settings' postgresEngine. */
export function checkPostgresHostEngine(model: Pick<StackModel, "settings">, engine: PostgresEngine): string[] {
  if (engine === model.settings.postgresEngine) return [];
  return [
    `engine "${engine}" differs from the settings' postgresEngine "${model.settings.postgresEngine}"; the other tiers render their files for the latter.`,
  ];
}

export class PostgresHost extends pulumi.ComponentResource {
  readonly engine: PostgresEngine;
  /** The name clients connect to and verify (TLS-2, TLS-3): the host's private DNS name, or the RDS endpoint address. */
  readonly endpoint: pulumi.Output<string>;
  readonly port: number;
  readonly securityGroupId: pulumi.Output<string>;
  readonly hostId: string;
  /** The EC2 instance (ec2) or the RDS instance's id (rds). */
  readonly instanceId: pulumi.Output<string>;
  /** ec2 only: the data volume; RDS owns its storage. */
  readonly dataVolumeId: pulumi.Output<string> | undefined;
  /** ec2 only: the host's IAM role, for grants made after it exists (backups: pgBackRest repository). */
  readonly roleName: pulumi.Output<string> | undefined;
  /**
   * SSM parameters this component writes that other hosts' files reference (rds: the endpoint
   * address and the master password the PgBouncer host's bootstrap step reads). Empty for ec2.
   */
  readonly parameters: Readonly<Record<string, aws.ssm.Parameter>>;

  constructor(name: string, args: PostgresHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:postgres-host:PostgresHost", name, {}, opts);
    const { model } = args;
    const engine = args.engine ?? model.settings.postgresEngine;
    throwIfAny(`PostgresHost ${name}`, checkPostgresHostEngine(model, engine));
    const host = model.hosts.postgres;
    this.engine = engine;
    this.port = PORTS.postgres.port;
    this.securityGroupId = pulumi.output(args.network.securityGroupIds.postgres);
    this.hostId = host.id;
    if (engine === "rds") {
      const rds = this.createRds(name, args);
      this.endpoint = rds.instance.address;
      this.instanceId = rds.instance.id;
      this.dataVolumeId = undefined;
      this.roleName = undefined;
      this.parameters = rds.parameters;
      this.registerOutputs({
        engine,
        endpoint: this.endpoint,
        port: this.port,
        securityGroupId: this.securityGroupId,
        instanceId: this.instanceId,
      });
      return;
    }
    this.parameters = {};
    const availabilityZone = args.network.availabilityZones[host.subnetIndex];

    // protect, not retainOnDelete: a change that would replace or delete the volume (AZ, size
    // shrink, a destroy) stops with an error the operator must read, instead of silently
    // orphaning the data and creating an empty volume. finalSnapshot still keeps a copy if the
    // protection is lifted and the volume deleted on purpose.
    const snapshot = dataVolumeSnapshotTag(model);
    const volume = new aws.ebs.Volume(
      `${name}-data`,
      {
        availabilityZone,
        size: model.settings.postgresDataVolumeGiB,
        type: "gp3",
        encrypted: true,
        finalSnapshot: true,
        // Data Lifecycle Manager selects the volume by this tag for daily snapshots (BACKUP-1).
        tags: hostTags(model, host, `${name}-data`, { [snapshot.key]: snapshot.value }),
      },
      { parent: this, protect: true },
    );

    const server = new Host(
      `${name}-host`,
      {
        ...args,
        host,
        files: hostFiles(model, host),
        instanceType: model.settings.instanceTypes.postgres,
        subnetId: args.network.privateSubnetIds[host.subnetIndex],
        securityGroupId: args.network.securityGroupIds.postgres,
        dataVolumeId: volume.id,
      },
      { parent: this },
    );

    new aws.ec2.VolumeAttachment(
      `${name}-data-attachment`,
      {
        deviceName: POSTGRES_DATA_DEVICE,
        volumeId: volume.id,
        instanceId: server.instanceId,
        // Stop PostgreSQL's instance before pulling its disk away, so the filesystem is clean.
        stopInstanceBeforeDetaching: true,
      },
      {
        parent: this,
        // A volume attaches to one instance at a time: detach from the old host first.
        deleteBeforeReplace: true,
      },
    );

    this.endpoint = pulumi.output(host.fqdn);
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

  /**
   * RDS for PostgreSQL 15: private (no public address, a subnet group over the private subnets,
   * the postgres security group that FLOWS opens to PgBouncer only, NET-6), Multi-AZ, encrypted
   * gp3, deletion protection, automated backups with PITR for backupRetentionDays (BACKUP-1),
   * Performance Insights (OBS-7), and the checklist's settings in its parameter group.
   */
  private createRds(name: string, args: PostgresHostArgs): { instance: aws.rds.Instance; parameters: Record<string, aws.ssm.Parameter> } {
    const { model } = args;
    const settings = model.settings;
    const parent = { parent: this };
    const tags = (part: string) => resourceTags(model, "postgres", `${name}-${part}`);

    const subnets = new aws.rds.SubnetGroup(
      `${name}-subnets`,
      {
        description: `odoo-stack ${model.stack}: private subnets of the RDS instance`,
        subnetIds: [...args.network.privateSubnetIds],
        tags: tags("subnets"),
      },
      parent,
    );

    const parameterGroup = new aws.rds.ParameterGroup(
      `${name}-parameters`,
      {
        family: RDS_POSTGRES.parameterGroupFamily,
        description: `odoo-stack ${model.stack}: checklist settings (PG-1, PG-2, PG-3, AUTH-1, TLS-1, OBS-7)`,
        parameters: rdsParameters(model).map((p) => ({ name: p.name, value: p.value, applyMethod: p.applyMethod })),
        tags: tags("parameters"),
      },
      parent,
    );

    // Alphanumeric: it travels through the libpq service file unquoted (templates/rds.ts).
    const masterPassword = new random.RandomPassword(`${name}-master-password`, { length: 40, special: false }, parent);
    const passwordParameter = new aws.ssm.Parameter(
      `${name}-master-password-parameter`,
      {
        name: model.parameters.rdsMasterPassword,
        type: "SecureString",
        keyId: args.stackKeyArn,
        value: masterPassword.result,
        description: `Password of the RDS master user ${DB_ROLES.rdsMaster} (bootstrap only; Odoo never uses it)`,
        tags: tags("master-password-parameter"),
      },
      parent,
    );

    const instance = new aws.rds.Instance(
      `${name}-rds`,
      {
        // Fixed, so the log group below it is named before it exists (templates/rds.ts).
        identifier: rdsInstanceIdentifier(model),
        engine: RDS_POSTGRES.engine,
        engineVersion: RDS_POSTGRES.engineVersion,
        autoMinorVersionUpgrade: RDS_POSTGRES.autoMinorVersionUpgrade,
        instanceClass: rdsInstanceClass(settings.instanceTypes.postgres),
        allocatedStorage: settings.postgresDataVolumeGiB,
        storageType: RDS_POSTGRES.storageType,
        storageEncrypted: true,
        multiAz: settings.rdsMultiAz,
        publiclyAccessible: false,
        dbSubnetGroupName: subnets.name,
        vpcSecurityGroupIds: [args.network.securityGroupIds.postgres],
        port: PORTS.postgres.port,
        parameterGroupName: parameterGroup.name,
        caCertIdentifier: RDS_POSTGRES.caCertIdentifier,
        username: DB_ROLES.rdsMaster,
        password: masterPassword.result,
        iamDatabaseAuthenticationEnabled: false,
        backupRetentionPeriod: settings.backupRetentionDays,
        backupWindow: RDS_POSTGRES.backupWindow,
        maintenanceWindow: RDS_POSTGRES.maintenanceWindow,
        copyTagsToSnapshot: true,
        deletionProtection: true,
        skipFinalSnapshot: false,
        finalSnapshotIdentifier: rdsInstanceIdentifier(model, "postgres-final"),
        performanceInsightsEnabled: true,
        performanceInsightsRetentionPeriod: RDS_POSTGRES.performanceInsightsRetentionDays,
        enabledCloudwatchLogsExports: ["postgresql"],
        // Static parameters and class changes wait for the maintenance window unless an operator
        // applies them: a plan never restarts the database by itself.
        applyImmediately: false,
        tags: tags("rds"),
      },
      { parent: this, protect: true, dependsOn: args.rdsLogGroup ? [args.rdsLogGroup] : [] },
    );

    // The endpoint exists only once RDS made it: PgBouncer's files name this parameter instead.
    const endpointParameter = new aws.ssm.Parameter(
      `${name}-endpoint-parameter`,
      {
        name: model.parameters.rdsEndpoint,
        type: "String",
        value: instance.address,
        description: "Endpoint address of the RDS instance (PgBouncer's server host)",
        tags: tags("endpoint-parameter"),
      },
      parent,
    );

    return {
      instance,
      parameters: { [model.parameters.rdsMasterPassword]: passwordParameter, [model.parameters.rdsEndpoint]: endpointParameter },
    };
  }
}
