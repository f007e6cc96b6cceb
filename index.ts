// odoo-stack: read and validate the stack's config, ask AWS the few facts sizing and layout
// need, then compose the components. Every check runs before the first resource is
// registered, so a bad config fails `pulumi preview` with every problem listed and nothing
// created (DESIGN principle 4). Outputs carry names and addresses, never a secret value.
import * as pulumi from "@pulumi/pulumi";
import { BackupPlan, BACKUP_PLAN_DEFAULTS } from "./components/backup-plan";
import { Backups } from "./components/backups";
import { InternalCa } from "./components/internal-ca";
import { Monitoring } from "./components/monitoring";
import { Network } from "./components/network";
import { OdooApp } from "./components/odoo-app";
import { PgBouncer } from "./components/pgbouncer";
import { PostgresHost } from "./components/postgres-host";
import { PrivateBucket } from "./components/private-bucket";
import { ReverseProxy } from "./components/reverse-proxy";
import { Secrets } from "./components/secrets";
import { StackKey } from "./components/stack-key";
import {
  checkExternalParameters,
  externalParameters,
  instanceTypeNames,
  partitionOf,
  resolveAccountId,
  resolveAvailabilityZones,
  resolveDebianAmis,
  resolveInstanceSpecs,
  type AwsFacts,
} from "./lib/aws-specs";
import { ConfigError, parseSettings, type RawConfig } from "./lib/config";
import { buildModel } from "./lib/model";
import { runsUnderMocks } from "./lib/run-mode";
import { renderAllHosts } from "./templates/hosts";
import { backupBucketNameParameter } from "./templates/backup-units";
import { renderRunbooks } from "./templates/runbooks";

/** Every key of this project's config, without the "<project>:" namespace. */
function projectConfig(): RawConfig {
  const prefix = `${pulumi.getProject()}:`;
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (key.startsWith(prefix)) raw[key.slice(prefix.length)] = value;
  }
  return raw;
}

/** Awaits an AWS lookup; a failure says which lookup failed and what to check. */
async function lookup<T>(what: string, pending: Promise<T>): Promise<T> {
  try {
    return await pending;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`odoo-stack: could not look up ${what} (check AWS credentials and aws:region): ${reason}`);
  }
}

export = async () => {
  const raw = projectConfig();
  const region = new pulumi.Config("aws").get("region") ?? process.env.AWS_REGION ?? "";

  const specs = await resolveInstanceSpecs(instanceTypeNames(raw));
  // Throws ConfigError listing every problem; nothing has been registered yet. Placeholder
  // values (example.com, …EXAMPLE zone ids) are refused unless nothing can be deployed (mocks).
  const settings = parseSettings(raw, region, specs, { placeholders: runsUnderMocks() ? "accept" : "refuse" });
  const model = buildModel(pulumi.getStack(), settings);
  // Renders every host's files once, before any resource: a renderer's refusal (an odooOptions
  // key the checklist forces, say) fails the preview with the key to fix, and nothing is created.
  renderAllHosts(model);

  // The EC2 hosts' instance types (RDS runs no AMI); each boots Debian for its architecture.
  const types = settings.instanceTypes;
  const ec2Types = [types.proxy, types.odoo, types.pgbouncer, ...(settings.postgresEngine === "ec2" ? [types.postgres] : [])];
  const [availabilityZones, amiIds, accountId] = await Promise.all([
    lookup(`the availability zones of ${region}`, resolveAvailabilityZones(settings.availabilityZoneCount, region)),
    lookup("the Debian 12 AMIs", resolveDebianAmis(ec2Types, specs)),
    lookup("the AWS account id", resolveAccountId()),
  ]);
  // Parameters the operator created (odooOptions' {{ssm:…}}, mail.passwordParameter, an imported
  // certificate): a missing one is a config problem with the command that creates it, before any
  // resource exists.
  const externalParameterVersions = await checkExternalParameters(externalParameters(settings), {
    project: model.project,
    stack: model.stack,
    region,
  });
  const facts: AwsFacts = { region, partition: partitionOf(region), accountId, availabilityZones, amiIds, externalParameterVersions };

  const network = new Network("network", { model, availabilityZones });
  // Every SecureString of the stack is encrypted with the stack's own key (issue 12 item 8).
  const stackKey = new StackKey("stack-key", { model, aws: facts });
  const secrets = new Secrets("secrets", { model, kmsKeyArn: stackKey.keyArn });
  const ca = new InternalCa("internal-ca", { model, kmsKeyArn: stackKey.keyArn });
  const config = new PrivateBucket("config", { model, role: "config" });
  const backups = new Backups("backups", { model });

  // Every alarm of the stack, the backup plan's included, notifies one topic (§9, BACKUP-1/2).
  const monitoring = new Monitoring("monitoring", { model });
  const backupPlan = new BackupPlan("backup-plan", {
    model,
    bucket: { bucketName: backups.bucketName, arn: backups.bucketArn },
    alarmActions: [monitoring.topicArn],
  });

  const tier = {
    model,
    aws: facts,
    network,
    configBucket: config,
    stackKeyArn: stackKey.keyArn,
    parameters: { ...secrets.parameters, ...ca.parameters, [backupBucketNameParameter(model)]: backupPlan.bucketNameParameter },
  };
  const postgres = new PostgresHost("postgres", { ...tier, engine: settings.postgresEngine, rdsLogGroup: monitoring.postgresqlLogGroup });
  // With RDS, PgBouncer's files name the endpoint and master-password parameters PostgresHost writes.
  const pgbouncer = new PgBouncer("pgbouncer", { ...tier, parameters: { ...tier.parameters, ...postgres.parameters } });
  const odoo = new OdooApp("odoo", tier);
  const proxy = new ReverseProxy("proxy", tier);
  backupPlan.grantHostAccess({ postgres: postgres.roleName, odoo: odoo.roleNames });

  return {
    url: proxy.url,
    proxyPublicIp: proxy.publicIp,
    natPublicIps: network.natPublicIps,
    vpcId: network.vpcId,
    internalNames: Object.fromEntries(model.allHosts.map((h) => [h.id, h.fqdn])),
    cronHostId: odoo.cronHostId,
    pgbouncerEndpoint: `${pgbouncer.endpoint}:${pgbouncer.port}`,
    postgresEngine: postgres.engine,
    postgresEndpoint: pulumi.interpolate`${postgres.endpoint}:${postgres.port}`,
    // ec2 only: RDS owns its storage.
    ...(postgres.dataVolumeId === undefined ? {} : { postgresDataVolumeId: postgres.dataVolumeId }),
    // One Odoo host without EFS: the volume holding data_dir (the filestore).
    ...(odoo.dataVolumeId === undefined ? {} : { odooDataVolumeId: odoo.dataVolumeId }),
    configBucketName: config.bucketName,
    backupBucketName: backups.bucketName,
    alarmTopicArn: monitoring.topicArn,
    dashboardName: monitoring.dashboardName,
    // Operator docs with this stack's names (BACKUP-3, BACKUP-4): `pulumi stack output runbooks`;
    // `npm run plan` writes them to out/<stack>/runbooks/ (with the plan's stand-in names). The
    // backup runbook needs the bucket's name; it is pgBackRest's (ec2) or RDS's (rds).
    runbooks: backups.bucketName.apply((bucket) =>
      renderRunbooks(model, { alarms: monitoring.alarms, backup: { bucket, ...BACKUP_PLAN_DEFAULTS } }),
    ),
    ...(odoo.filestoreFileSystemId === undefined ? {} : { filestoreFileSystemId: odoo.filestoreFileSystemId }),
    parameterNames: Object.keys({ ...tier.parameters, ...postgres.parameters }).sort(),
  };
};
