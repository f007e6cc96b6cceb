// The whole program (index.ts) under mocks, for a 1-host and a 3-host stack: exact counts per
// type, the edge (only the proxy is public, only 443 from the world), hardened instances and
// volumes, a protected data volume, secrets only in SecureStrings, parents and names, tags,
// and a bad config failing before any resource is registered.
import { dataVolumeSnapshotTag } from "../../components/backup-plan";
import { LOG_METRIC_FILTERS } from "../../components/monitoring";
import { referencedParameters } from "../../components/host";
import { importedTlsParameters } from "../../components/reverse-proxy";
import { TAG_KEYS } from "../../components/tags";
import { FLOWS, ROLES, WORLD_EGRESS_PORTS } from "../../lib/ports";
import { buildModel, PATHS, type StackModel } from "../../lib/model";
import { parseSettings } from "../../lib/config";
import { knownInstanceType } from "../../lib/instance-types";
import { odooFilestorePolicy, postgresBackupPolicy } from "../../templates/backup-iam";
import { monitoringAlarms } from "../../templates/alarms";
import { backupBucketNameParameter, backupBucketRef } from "../../templates/backup-units";
import { LOG_SOURCE_NAMES } from "../../templates/cloudwatch-agent";
import { configObjectKey, hostFiles } from "../../templates/hosts";
import { PGBACKREST_CONF_PATH, pgbackrestRepoPrefix } from "../../templates/pgbackrest";
import { byUrn, countsByType, named, ofType, runUnderMocks, REGION, STACK, type MockRun } from "../helpers/component-mocks";

// index.ts is a CommonJS `export =` module, as `pulumi up` loads it.
const program: () => Promise<Record<string, unknown>> = require("../../index");

type Config = Record<string, unknown>;

const BASE: Config = {
  domain: "erp.example.com",
  tls: { mode: "acme", email: "ops@example.com", hostedZoneId: "Z04417412S8KXAMPLE1" },
  databases: ["erp"],
};

const CASES: [string, Config][] = [
  ["1 Odoo host, 2 AZs, single NAT, ACME", { ...BASE, odooInstances: 1, backupRetentionDays: 35 }],
  [
    "3 Odoo hosts, 3 AZs, NAT per AZ, imported certificate, bastion, internal CIDRs",
    {
      ...BASE,
      odooInstances: 3,
      availabilityZoneCount: 3,
      natGateways: "perAz",
      tls: { mode: "imported", certificateParameter: "/certs/erp/fullchain", privateKeyParameter: "/certs/erp/privkey" },
      bastionSecurityGroupId: "sg-0123456789abcdef0",
      odooInternalCidrs: ["10.8.0.0/16"],
      tags: { owner: "platform-team" },
    },
  ],
];

/** Config as the CLI passes it: namespaced keys, objects and lists as JSON text. */
const cliConfig = (config: Config): Record<string, string> =>
  Object.fromEntries(Object.entries(config).map(([k, v]) => [`odoo-stack:${k}`, typeof v === "string" ? v : JSON.stringify(v)]));

const modelOf = (config: Config): StackModel => buildModel(STACK, parseSettings(config, REGION, knownInstanceType));

/** Resources that carry no tags in AWS (or in the provider), so the tag check skips them. */
const UNTAGGABLE = new Set([
  "aws:ec2/route:Route",
  "aws:ec2/routeTableAssociation:RouteTableAssociation",
  "aws:ec2/eipAssociation:EipAssociation",
  "aws:ec2/volumeAttachment:VolumeAttachment",
  "aws:iam/rolePolicy:RolePolicy",
  "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
  "aws:route53/record:Record",
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
  "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  "aws:s3/bucketVersioning:BucketVersioning",
  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  "aws:s3/bucketPolicy:BucketPolicy",
  "aws:efs/backupPolicy:BackupPolicy",
  "aws:efs/fileSystemPolicy:FileSystemPolicy",
  "aws:efs/mountTarget:MountTarget",
  // CloudWatch dashboards and metric filters take no tags; SNS subscriptions neither.
  "aws:cloudwatch/dashboard:Dashboard",
  "aws:cloudwatch/logMetricFilter:LogMetricFilter",
  "aws:sns/topicSubscription:TopicSubscription",
  "aws:kms/alias:Alias",
]);

/** What the program must create for `model`, counted by hand from the design. */
function expectedCounts(model: StackModel): Record<string, number> {
  const s = model.settings;
  const hosts = model.allHosts.length;
  const azs = s.availabilityZoneCount;
  const nats = s.natGateways === "perAz" ? azs : 1;
  const files = model.allHosts.reduce((n, h) => n + hostFiles(model, h).length, 0);
  const acme = s.tls.mode === "acme" ? 1 : 0;
  const odooPorts = FLOWS.filter((f) => f.to === "odoo").length;
  const odooHosts = model.hosts.odoo.length;
  // The EFS flow (odoo → efs) exists only with a shared filestore (issue 8).
  const efs = s.sharedFilestore ? 1 : 0;
  const flows = FLOWS.length - (efs ? 0 : FLOWS.filter((f) => f.to === "efs").length);
  return {
    // Network
    "aws:ec2/vpc:Vpc": 1,
    "aws:ec2/internetGateway:InternetGateway": 1,
    "aws:ec2/subnet:Subnet": 2 * azs,
    "aws:ec2/routeTable:RouteTable": 1 + azs,
    "aws:ec2/route:Route": 1 + azs,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": 2 * azs,
    "aws:ec2/eip:Eip": nats + 1,
    "aws:ec2/natGateway:NatGateway": nats,
    "aws:ec2/securityGroup:SecurityGroup": ROLES.length + 1 + efs,
    // world 443 ×2 and, for the redirect-only server, world 80 ×2 (NET-3)
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
      2 + (s.httpRedirect ? 2 : 0) + flows + odooPorts * s.odooInternalCidrs.length + (s.bastionSecurityGroupId ? 1 : 0) + 1,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": flows + ROLES.length * WORLD_EGRESS_PORTS.length,
    // The shared filestore (several Odoo hosts): file system, AWS Backup policy, TLS-only
    // file system policy, a mount target per private subnet
    ...(efs
      ? {
          "aws:efs/fileSystem:FileSystem": 1,
          "aws:efs/backupPolicy:BackupPolicy": 1,
          "aws:efs/fileSystemPolicy:FileSystemPolicy": 1,
          "aws:efs/mountTarget:MountTarget": azs,
        }
      : {}),
    "aws:ec2/vpcEndpoint:VpcEndpoint": 6,
    "aws:route53/zone:Zone": 1,
    // Secrets: 5 passwords, 2 SCRAM salts; 7 SecureStrings; CA + per-host certificates and keys;
    // the backup bucket's name (BackupPlan)
    "random:index/randomPassword:RandomPassword": 6,
    "random:index/randomBytes:RandomBytes": 2,
    "tls:index/privateKey:PrivateKey": 1 + hosts,
    "tls:index/selfSignedCert:SelfSignedCert": 1,
    "tls:index/certRequest:CertRequest": hosts,
    "tls:index/locallySignedCert:LocallySignedCert": hosts,
    "aws:ssm/parameter:Parameter": 8 + 1 + 2 * hosts + 1,
    // The stack key every SecureString is encrypted with, and its alias (issue 12 item 8)
    "aws:kms/key:Key": 1,
    "aws:kms/alias:Alias": 1,
    // Config and backup buckets
    "aws:s3/bucket:Bucket": 2,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 2,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 2,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 2,
    "aws:s3/bucketVersioning:BucketVersioning": 2,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 2,
    "aws:s3/bucketPolicy:BucketPolicy": 2,
    // Hosts (plus, in BackupPlan, DLM's role and the backup policies grantHostAccess gives the
    // PostgreSQL host and every Odoo host)
    "aws:iam/role:Role": hosts + 1,
    "aws:iam/rolePolicy:RolePolicy": hosts + 1 + 1 + odooHosts,
    // CloudWatchAgentServerPolicy only: AmazonSSMManagedInstanceCore reads every parameter
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": hosts,
    "aws:iam/instanceProfile:InstanceProfile": hosts,
    "aws:ec2/instance:Instance": hosts,
    "aws:s3/bucketObjectv2:BucketObjectv2": files + hosts,
    "aws:ssm/association:Association": hosts,
    "aws:route53/record:Record": hosts + acme,
    // PostgreSQL's data volume, and data_dir's on a single Odoo host (without EFS, issue 12).
    "aws:ebs/volume:Volume": 1 + (efs ? 0 : odooHosts),
    "aws:ec2/volumeAttachment:VolumeAttachment": 1 + (efs ? 0 : odooHosts),
    "aws:ec2/eipAssociation:EipAssociation": 1,
    // BackupPlan (BACKUP-1, BACKUP-2): daily data-volume snapshots; alarms on drill staleness,
    // drill RTO, backup age, and one per Odoo host on its filestore copy
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": 1,
    // Monitoring (§9): the alarm topic (e-mail subscription when alarmEmail is set), a log group
    // per shipped log, the metric filters, every alarm of templates/alarms.ts, the dashboard
    "aws:cloudwatch/metricAlarm:MetricAlarm": 3 + odooHosts + monitoringAlarms(model).length,
    "aws:sns/topic:Topic": 1,
    ...(s.alarmEmail !== undefined ? { "aws:sns/topicSubscription:TopicSubscription": 1 } : {}),
    "aws:cloudwatch/logGroup:LogGroup": LOG_SOURCE_NAMES.length,
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": LOG_METRIC_FILTERS.length,
    "aws:cloudwatch/dashboard:Dashboard": 1,
  };
}

const runs = new Map<string, MockRun>();
async function stackRun(label: string, config: Config): Promise<MockRun> {
  if (!runs.has(label)) runs.set(label, await runUnderMocks(program, cliConfig(config)));
  return runs.get(label) as MockRun;
}

/** What the mocked getAvailabilityZones answers for eu-west-1, in order. */
const ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"];

const instanceOf = (r: MockRun, hostId: string) =>
  ofType(r, "aws:ec2/instance:Instance").find((i) => i.inputs.tags[TAG_KEYS.host] === hostId);

/** A whole-stack mock run takes seconds, longer on a loaded CI machine. */
const RUN_TIMEOUT_MS = 60_000;

describe.each(CASES)("%s", (label, config) => {
  const model = modelOf(config);
  beforeAll(() => stackRun(label, config), RUN_TIMEOUT_MS);
  const run = () => stackRun(label, config);

  it("creates exactly the expected resources per type", async () => {
    expect(countsByType(await run())).toEqual(expectedCounts(model));
  });

  it("asks AWS only for instance types, zones, the Debian AMI, the account, and whether the operator's parameters exist", async () => {
    const tokens = new Set((await run()).invokes.map((c) => c.token));
    expect([...tokens].sort()).toEqual([
      "aws:ec2/getAmi:getAmi",
      "aws:ec2/getInstanceType:getInstanceType",
      "aws:index/getAvailabilityZones:getAvailabilityZones",
      "aws:index/getCallerIdentity:getCallerIdentity",
      // An imported certificate lives in parameters the operator created: checked at preview.
      ...(model.settings.tls.mode === "imported" ? ["aws:ssm/getParameter:getParameter"] : []),
    ]);
  });

  it("gives no instance a public IP; Elastic IPs exist only for the proxy and the NATs (NET-1, NET-2)", async () => {
    const r = await run();
    for (const instance of ofType(r, "aws:ec2/instance:Instance")) expect(instance.inputs.associatePublicIpAddress).toBe(false);
    const eipRoles = ofType(r, "aws:ec2/eip:Eip")
      .map((e) => e.inputs.tags[TAG_KEYS.role])
      .sort();
    expect(eipRoles).toEqual(
      [...Array(model.settings.natGateways === "perAz" ? model.settings.availabilityZoneCount : 1).fill("nat"), "proxy"].sort(),
    );
    const association = ofType(r, "aws:ec2/eipAssociation:EipAssociation")[0];
    expect(association.inputs.instanceId).toBe(instanceOf(r, "proxy")?.id);
    expect(association.inputs.allocationId).toBe(
      ofType(r, "aws:ec2/eip:Eip").find((e) => e.inputs.tags[TAG_KEYS.role] === "proxy")?.outputs.allocationId,
    );
  });

  it("opens nothing to 0.0.0.0/0 or ::/0 except 443 on the proxy, and 80 there for the redirect (NET-3)", async () => {
    const r = await run();
    const world = ofType(r, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").filter(
      (rule) => rule.inputs.cidrIpv4 === "0.0.0.0/0" || rule.inputs.cidrIpv6 === "::/0",
    );
    expect(world.map((rule) => `${rule.inputs.tags[TAG_KEYS.role]}:${rule.inputs.fromPort}-${rule.inputs.toPort}`).sort()).toEqual([
      "proxy:443-443",
      "proxy:443-443",
      "proxy:80-80",
      "proxy:80-80",
    ]);
    expect(world.every((rule) => rule.inputs.securityGroupId === named(r, "network-proxy-sg").id)).toBe(true);
  });

  it("hardens every instance: IMDSv2 with hop limit 1, encrypted root, no key pair, right subnet and group", async () => {
    const r = await run();
    for (const host of model.allHosts) {
      const instance = instanceOf(r, host.id);
      expect(instance?.inputs).toEqual(
        expect.objectContaining({
          privateIp: host.privateIp,
          instanceType: model.settings.instanceTypes[host.role],
          metadataOptions: expect.objectContaining({ httpTokens: "required", httpPutResponseHopLimit: 1 }),
          rootBlockDevice: expect.objectContaining({ encrypted: true }),
          vpcSecurityGroupIds: [named(r, `network-${host.role}-sg`).id],
        }),
      );
      expect(instance?.inputs.keyName).toBeUndefined();
      const subnet = byUrn(r, r.resources.find((x) => x.id === instance?.inputs.subnetId)?.urn ?? "");
      expect(subnet?.name).toBe(`network-${host.role === "proxy" ? "public" : "private"}-${ZONES[host.subnetIndex]}`);
    }
  });

  it("keeps PostgreSQL's data on an encrypted gp3 volume in its AZ, protected, attached by device name", async () => {
    const r = await run();
    const volume = named(r, "postgres-data");
    expect(volume.inputs).toEqual(
      expect.objectContaining({ encrypted: true, type: "gp3", size: model.settings.postgresDataVolumeGiB, availabilityZone: "eu-west-1a" }),
    );
    expect(volume.protect).toBe(true);
    for (const v of ofType(r, "aws:ebs/volume:Volume")) expect(v.inputs.encrypted).toBe(true);
    const attachment = named(r, "postgres-data-attachment");
    expect(attachment.inputs).toEqual(
      expect.objectContaining({
        volumeId: volume.id,
        instanceId: instanceOf(r, "postgres")?.id,
        deviceName: "/dev/sdf",
        stopInstanceBeforeDetaching: true,
      }),
    );
    expect(attachment.deleteBeforeReplace).toBe(true);
  });

  it("keeps a single Odoo host's data_dir on its own protected volume, mounted before Odoo installs; none with EFS (issue 12)", async () => {
    const r = await run();
    const odooVolumes = ofType(r, "aws:ebs/volume:Volume").filter((v) => v.name.startsWith("odoo-"));
    if (model.settings.sharedFilestore) {
      expect(odooVolumes).toEqual([]);
      return;
    }
    const host = model.hosts.odoo[0];
    const volume = named(r, `odoo-${host.id}-data`);
    expect(odooVolumes.map((v) => v.name)).toEqual([`odoo-${host.id}-data`]);
    expect(volume.inputs).toEqual(
      expect.objectContaining({
        encrypted: true,
        type: "gp3",
        size: model.settings.odooDataVolumeGiB,
        finalSnapshot: true,
        availabilityZone: "eu-west-1a",
      }),
    );
    expect(volume.protect).toBe(true);
    const attachment = named(r, `odoo-${host.id}-data-attachment`);
    expect(attachment.inputs).toEqual(
      expect.objectContaining({
        volumeId: volume.id,
        instanceId: instanceOf(r, host.id)?.id,
        deviceName: "/dev/sdf",
        stopInstanceBeforeDetaching: true,
      }),
    );
    const userData = String(instanceOf(r, host.id)?.inputs.userData);
    const mount = userData.indexOf(`\\ndata-volume ${volume.id} ${PATHS.odooDataDir}\\nodoo-owner ${PATHS.odooDataDir}\\n`);
    expect(mount).toBeGreaterThan(0);
    expect(mount).toBeLessThan(userData.indexOf("\\ninstall odoo=17.0.20241201\\n"));
  });

  it("stores every generated secret as a SecureString and every certificate as a String", async () => {
    const r = await run();
    const secure = [
      model.parameters.odooAdminPassword,
      model.parameters.odooDbPassword,
      model.parameters.odooDbScramVerifier,
      model.parameters.odooAdminUserPassword,
      model.parameters.statsPassword,
      model.parameters.statsScramVerifier,
      model.parameters.monitorPassword,
      model.parameters.backupCipherPass,
      ...model.allHosts.map((h) => model.parameters.hostKey(h.id)),
    ];
    // The backup bucket's name is no secret: a String, so hosts read it without kms:Decrypt.
    const plain = [
      model.parameters.caCert,
      ...model.allHosts.map((h) => model.parameters.hostCert(h.id)),
      backupBucketNameParameter(model),
    ];
    const types = Object.fromEntries(ofType(r, "aws:ssm/parameter:Parameter").map((p) => [p.inputs.name, p.inputs.type]));
    expect(types).toEqual({
      ...Object.fromEntries(secure.map((n) => [n, "SecureString"])),
      ...Object.fromEntries(plain.map((n) => [n, "String"])),
    });
  });

  it("never puts a generated secret into a plain input, user data or a stack output (principle 5)", async () => {
    const r = await run();
    expect(r.generatedSecrets.length).toBeGreaterThan(0);
    const leaks: string[] = [];
    for (const res of r.resources) {
      for (const { path, value } of res.plainStrings) {
        if (r.generatedSecrets.some((secret) => value.includes(secret))) leaks.push(`${res.name}.${path}`);
      }
    }
    expect(leaks).toEqual([]);
    const outputs = JSON.stringify(r.outputs);
    expect(r.generatedSecrets.filter((secret) => outputs.includes(secret))).toEqual([]);
    expect([...r.secretOutputs]).toEqual([]);
    for (const instance of ofType(r, "aws:ec2/instance:Instance")) {
      expect(instance.secretInputs.has("userData")).toBe(false);
      expect(instance.inputs.userData).not.toContain("{{ssm:");
    }
  });

  it("bootstraps each host from the config bucket; PostgreSQL mounts its data volume; the proxy requests its certificate only with ACME", async () => {
    const r = await run();
    const bucket = named(r, "config-bucket").outputs.bucket;
    for (const host of model.allHosts) {
      const userData: string = instanceOf(r, host.id)?.inputs.userData;
      expect(userData.startsWith("#cloud-config\n")).toBe(true);
      expect(userData).toContain(`ODOO_STACK_BUCKET=${bucket}`);
      expect(userData).toContain(`ODOO_STACK_HOST_ID=${host.id}`);
      expect(userData.includes(named(r, "postgres-data").id)).toBe(host.role === "postgres");
      // The first-boot steps file inside the user data: one step per line ("\n" escaped in YAML).
      expect(userData.includes("\\nacme ")).toBe(host.role === "proxy" && model.settings.tls.mode === "acme");
    }
  });

  it("delivers exactly hostFiles() to each host, and lets each role read exactly the parameters those files reference", async () => {
    const r = await run();
    for (const host of model.allHosts) {
      const files = hostFiles(model, host);
      const objects = ofType(r, "aws:s3/bucketObjectv2:BucketObjectv2").filter(
        (o) => o.inputs.tags[TAG_KEYS.host] === host.id && !o.name.endsWith("-manifest"),
      );
      expect(objects.map((o) => [o.inputs.key, o.inputs.content]).sort()).toEqual(
        files.map((f) => [configObjectKey(host.id, f.path), f.content]).sort(),
      );
      const role = ofType(r, "aws:iam/role:Role").find((x) => x.inputs.tags[TAG_KEYS.host] === host.id);
      const policy = ofType(r, "aws:iam/rolePolicy:RolePolicy").find((p) => p.inputs.role === role?.id);
      const statements: { Sid: string; Resource: string | string[] }[] = JSON.parse(policy?.inputs.policy).Statement;
      const readable = statements.find((s) => s.Sid === "ReadReferencedParameters")?.Resource ?? [];
      const expected = [
        ...new Set([...referencedParameters(files), ...(host.role === "proxy" ? importedTlsParameters(model.settings.tls) : [])]),
      ]
        .sort()
        .map((n) => `arn:aws:ssm:${REGION}:123456789012:parameter${n}`);
      expect(readable).toEqual(expected);
      expect(statements.find((s) => s.Sid === "ReadOwnConfigObjects")?.Resource).toMatch(new RegExp(`/hosts/${host.id}/\\*$`));
      // Issue 12 item 8: the role decrypts with the stack key, through SSM, exactly these parameters.
      expect(statements.find((s) => s.Sid === "DecryptReferencedParametersWithStackKey")).toEqual({
        Sid: "DecryptReferencedParametersWithStackKey",
        Effect: "Allow",
        Action: ["kms:Decrypt"],
        Resource: named(r, "stack-key-key").outputs.arn,
        Condition: { StringEquals: { "kms:ViaService": `ssm.${REGION}.amazonaws.com`, "kms:EncryptionContext:PARAMETER_ARN": expected } },
      });
    }
  });

  it("encrypts every SecureString with the stack's own rotating key, and attaches no policy that reads every parameter (issue 12 item 8)", async () => {
    const r = await run();
    const key = named(r, "stack-key-key");
    expect(key.inputs).toEqual(expect.objectContaining({ enableKeyRotation: true, deletionWindowInDays: 30, keyUsage: "ENCRYPT_DECRYPT" }));
    expect(JSON.parse(key.inputs.policy).Statement).toEqual([
      { Sid: "EnableIamPolicies", Effect: "Allow", Principal: { AWS: "arn:aws:iam::123456789012:root" }, Action: "kms:*", Resource: "*" },
    ]);
    expect(named(r, "stack-key-alias").inputs).toEqual(
      expect.objectContaining({ name: `alias/odoo-stack-${STACK}`, targetKeyId: key.outputs.keyId }),
    );
    const secure = ofType(r, "aws:ssm/parameter:Parameter").filter((p) => p.inputs.type === "SecureString");
    expect(secure.length).toBeGreaterThanOrEqual(6 + model.allHosts.length);
    for (const p of secure) expect([p.inputs.name, p.inputs.keyId]).toEqual([p.inputs.name, key.outputs.arn]);
    for (const a of ofType(r, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")) expect(a.inputs.policyArn).not.toMatch(/AmazonSSM/);
  });

  it("lets the cron host alone read and decrypt the admin user's password, which the first install reads through odoo-init.env", async () => {
    const r = await run();
    const name = model.parameters.odooAdminUserPassword;
    expect(ofType(r, "aws:ssm/parameter:Parameter").find((p) => p.inputs.name === name)?.inputs).toEqual(
      expect.objectContaining({ type: "SecureString", keyId: named(r, "stack-key-key").outputs.arn }),
    );
    const arn = `arn:aws:ssm:${REGION}:123456789012:parameter${name}`;
    const readers = model.allHosts.filter((host) => {
      const role = ofType(r, "aws:iam/role:Role").find((x) => x.inputs.tags[TAG_KEYS.host] === host.id);
      const statements: { Sid: string; Resource: unknown; Condition?: Record<string, Record<string, unknown>> }[] = JSON.parse(
        ofType(r, "aws:iam/rolePolicy:RolePolicy").find((p) => p.inputs.role === role?.id)?.inputs.policy,
      ).Statement;
      const read = (statements.find((s) => s.Sid === "ReadReferencedParameters")?.Resource ?? []) as string[];
      const decrypt = (statements.find((s) => s.Sid === "DecryptReferencedParametersWithStackKey")?.Condition?.StringEquals[
        "kms:EncryptionContext:PARAMETER_ARN"
      ] ?? []) as string[];
      expect([host.id, read.includes(arn)]).toEqual([host.id, decrypt.includes(arn)]);
      return read.includes(arn);
    });
    expect(readers.map((h) => h.id)).toEqual(model.hosts.odoo.filter((h) => h.runsCron).map((h) => h.id));
    expect(readers).toHaveLength(1);
  });

  it("gives the proxy Route 53 rights only for the ACME challenge record, and only in ACME mode", async () => {
    const r = await run();
    const statements: { Sid: string; Action: string[]; Resource: string; Condition?: Record<string, Record<string, string[]>> }[] =
      JSON.parse(named(r, "proxy-host-policy").inputs.policy).Statement;
    const change = statements.find((s) => s.Action.includes("route53:ChangeResourceRecordSets"));
    if (model.settings.tls.mode === "acme") {
      expect(change?.Resource).toBe(`arn:aws:route53:::hostedzone/${model.settings.tls.hostedZoneId}`);
      expect(change?.Condition?.["ForAllValues:StringEquals"]).toEqual({
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.erp.example.com"],
        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
        "route53:ChangeResourceRecordSetsActions": ["UPSERT", "DELETE"],
      });
      expect(named(r, "proxy-public-dns").inputs).toEqual(
        expect.objectContaining({ zoneId: model.settings.tls.hostedZoneId, name: "erp.example.com", type: "A" }),
      );
    } else {
      expect(change).toBeUndefined();
      expect(statements.some((s) => s.Action.some((a) => a.startsWith("route53:")))).toBe(false);
    }
    for (const other of ofType(r, "aws:iam/rolePolicy:RolePolicy").filter((p) => p.name !== "proxy-host-policy")) {
      expect(other.inputs.policy).not.toContain("route53:");
    }
  });

  it("parents every resource to a component of this stack and prefixes its name with the parent's", async () => {
    const r = await run();
    const stack = r.resources.find((x) => x.type === "pulumi:pulumi:Stack");
    for (const res of r.resources.filter((x) => x !== stack)) {
      const parent = byUrn(r, res.parent);
      if (parent === stack) {
        expect(res.custom).toBe(false);
        expect(res.type).toMatch(/^odoo-stack:[a-z-]+:[A-Z][A-Za-z]+$/);
      } else {
        expect(parent?.type).toMatch(/^odoo-stack:/);
        expect(res.name.startsWith(`${parent?.name}-`)).toBe(true);
      }
    }
  });

  it("tags every taggable resource with Name, stack and role (and host for host resources), user tags included", async () => {
    const r = await run();
    for (const res of r.resources.filter((x) => x.custom && x.type.startsWith("aws:") && !UNTAGGABLE.has(x.type))) {
      expect([res.name, res.inputs.tags]).toEqual([
        res.name,
        expect.objectContaining({
          Name: expect.stringMatching(/^odoo-stack-test-/),
          [TAG_KEYS.stack]: STACK,
          [TAG_KEYS.role]: expect.any(String),
          ...model.settings.tags,
        }),
      ]);
    }
    for (const type of [
      "aws:ec2/instance:Instance",
      "aws:iam/role:Role",
      "aws:iam/instanceProfile:InstanceProfile",
      "aws:s3/bucketObjectv2:BucketObjectv2",
      "aws:ssm/association:Association",
    ]) {
      const [hostResources, shared] = [
        ofType(r, type).filter((x) => TAG_KEYS.host in x.inputs.tags),
        ofType(r, type).filter((x) => !(TAG_KEYS.host in x.inputs.tags)),
      ];
      // Each host resource names a real host, and its role tag is that host's role.
      for (const x of hostResources)
        expect([x.name, x.inputs.tags[TAG_KEYS.role]]).toEqual([
          x.name,
          model.allHosts.find((h) => h.id === x.inputs.tags[TAG_KEYS.host])?.role,
        ]);
      // The one shared resource of these types: Data Lifecycle Manager's service role.
      expect(shared.map((x) => [x.name, x.inputs.tags[TAG_KEYS.role]])).toEqual(
        type === "aws:iam/role:Role" ? [["backup-plan-dlm-role", "backups"]] : [],
      );
    }
  });

  it("publishes the backup bucket's name as a String parameter that the PostgreSQL host's pgbackrest.conf reads (BACKUP-1)", async () => {
    const r = await run();
    const name = backupBucketNameParameter(model);
    const parameter = named(r, "backup-plan-bucket-name");
    expect(parameter.inputs).toEqual(
      expect.objectContaining({ name, type: "String", value: named(r, "backups-repository-bucket").outputs.bucket }),
    );
    const postgres = model.hosts.postgres;
    const conf = ofType(r, "aws:s3/bucketObjectv2:BucketObjectv2").find(
      (o) => o.inputs.key === configObjectKey(postgres.id, PGBACKREST_CONF_PATH),
    );
    expect(conf?.inputs.content).toContain(backupBucketRef(model));
    // The host may read it, and its first apply waits until it exists.
    const role = ofType(r, "aws:iam/role:Role").find((x) => x.inputs.tags[TAG_KEYS.host] === postgres.id);
    const policy = ofType(r, "aws:iam/rolePolicy:RolePolicy").find((p) => p.inputs.role === role?.id);
    const readable = JSON.parse(policy?.inputs.policy).Statement.find(
      (s: { Sid: string }) => s.Sid === "ReadReferencedParameters",
    )?.Resource;
    expect(readable).toContain(`arn:aws:ssm:${REGION}:123456789012:parameter${name}`);
    const association = ofType(r, "aws:ssm/association:Association").find((a) => a.inputs.tags[TAG_KEYS.host] === postgres.id);
    expect(association?.dependencies).toContain(parameter.urn);
  });

  it("gives the PostgreSQL host's role the pgBackRest policy and each Odoo host's role the filestore policy, on the backup bucket (BACKUP-1)", async () => {
    const r = await run();
    const bucketArn = named(r, "backups-repository-bucket").outputs.arn;
    expect(bucketArn).toMatch(/^arn:aws:s3:::/);
    const roleNameOf = (hostId: string) =>
      ofType(r, "aws:iam/role:Role").find((x) => x.inputs.tags[TAG_KEYS.host] === hostId)?.outputs.name;
    const iamInput = { bucketArn, stack: STACK, region: REGION };

    // Role names as the mocked provider returned them: real strings, so the equalities below bite.
    for (const h of [model.hosts.postgres, ...model.hosts.odoo])
      expect(roleNameOf(h.id)).toMatch(new RegExp(`^${h.role === "postgres" ? "postgres-host" : `odoo-${h.id}`}-role`));
    const postgresPolicy = named(r, "backup-plan-postgres-backup-policy");
    expect(postgresPolicy.inputs.role).toBe(roleNameOf(model.hosts.postgres.id));
    expect(JSON.parse(postgresPolicy.inputs.policy)).toEqual(postgresBackupPolicy(iamInput));
    expect(postgresPolicy.inputs.policy).toContain(`${bucketArn}/${pgbackrestRepoPrefix(STACK)}`);

    const filestorePolicies = model.hosts.odoo.map((h, i) => named(r, `backup-plan-odoo-${i + 1}-filestore-policy`));
    expect(filestorePolicies.map((p) => p.inputs.role)).toEqual(model.hosts.odoo.map((h) => roleNameOf(h.id)));
    for (const p of filestorePolicies) expect(JSON.parse(p.inputs.policy)).toEqual(odooFilestorePolicy(iamInput));

    // No other host role touches the backup bucket.
    const onBucket = ofType(r, "aws:iam/rolePolicy:RolePolicy")
      .filter((p) => p.inputs.policy.includes(bucketArn))
      .map((p) => p.name)
      .sort();
    expect(onBucket).toEqual([postgresPolicy.name, ...filestorePolicies.map((p) => p.name)].sort());
  });

  it("tags the PostgreSQL data volume, and only it, with the tag the DLM snapshot policy targets (BACKUP-1, BACKUP-3)", async () => {
    const r = await run();
    const { key, value } = dataVolumeSnapshotTag(model);
    expect(named(r, "postgres-data").inputs.tags[key]).toBe(value);
    expect(
      ofType(r, "aws:ebs/volume:Volume")
        .filter((v) => v.inputs.tags[key] === value)
        .map((v) => v.name),
    ).toEqual(["postgres-data"]);
    const policy = named(r, "backup-plan-data-volume-snapshots", "aws:dlm/lifecyclePolicy:LifecyclePolicy");
    expect(policy.inputs.policyDetails).toEqual(expect.objectContaining({ resourceTypes: ["VOLUME"], targetTags: { [key]: value } }));
    expect(policy.inputs.state).toBe("ENABLED");
  });

  it("exports names and addresses, with odoo-1 as the cron host", async () => {
    const r = await run();
    expect(r.outputs).toEqual(
      expect.objectContaining({
        url: "https://erp.example.com",
        cronHostId: "odoo-1",
        proxyPublicIp: ofType(r, "aws:ec2/eip:Eip").find((e) => e.inputs.tags[TAG_KEYS.role] === "proxy")?.outputs.publicIp,
        internalNames: Object.fromEntries(model.allHosts.map((h) => [h.id, h.fqdn])),
        pgbouncerEndpoint: "pgbouncer.odoo.internal:6432",
        postgresEndpoint: "postgres.odoo.internal:5432",
        parameterNames: ofType(r, "aws:ssm/parameter:Parameter")
          .map((p) => p.inputs.name)
          .sort(),
      }),
    );
    expect(r.outputs.configBucketName).toBe(named(r, "config-bucket").outputs.bucket);
    expect(r.outputs.backupBucketName).toBe(named(r, "backups-repository-bucket").outputs.bucket);
  });
});

// Issue 12 item 11: a Graviton type boots Debian's arm64 AMI, the others keep amd64; the AMI is
// looked up once per architecture the stack uses.
describe("Graviton (arm64) instance types", () => {
  const config: Config = { ...BASE, odooInstanceType: "m7g.xlarge", pgbouncerInstanceType: "t4g.small" };
  const run = () => stackRun("graviton", config);
  beforeAll(() => run(), RUN_TIMEOUT_MS);

  it("boots each host from the Debian 12 AMI of its instance type's architecture", async () => {
    const r = await run();
    const amiLookups = r.invokes.filter((c) => c.token === "aws:ec2/getAmi:getAmi");
    const filter = (c: (typeof amiLookups)[number], name: string) =>
      (c.inputs.filters as { name: string; values: string[] }[]).find((f) => f.name === name)?.values;
    expect(amiLookups.map((c) => [filter(c, "architecture"), filter(c, "name")]).sort()).toEqual([
      [["arm64"], ["debian-12-arm64-*"]],
      [["x86_64"], ["debian-12-amd64-*"]],
    ]);
    const amis = Object.fromEntries(
      ofType(r, "aws:ec2/instance:Instance").map((i) => [i.inputs.tags[TAG_KEYS.host], [i.inputs.instanceType, i.inputs.ami]]),
    );
    const arm = amis["odoo-1"][1];
    const amd = amis.proxy[1];
    expect(arm).not.toBe(amd);
    expect(amis).toEqual({
      proxy: ["t3.small", amd],
      "odoo-1": ["m7g.xlarge", arm],
      pgbouncer: ["t4g.small", arm],
      postgres: ["r6i.large", amd],
    });
  });
});

// Issue 12 item 5: outbound mail, and odooOptions naming a parameter the operator created. The
// reference used to fail the program in Host ("which the stack does not create") with a stack trace.
describe("outbound mail and operator-made parameters", () => {
  const config: Config = {
    ...BASE,
    mail: { host: "email-smtp.eu-west-1.amazonaws.com", user: "AKIAEXAMPLE", from: "erp@example.com" },
    odooOptions: { geoip_city_db: "{{ssm:/odoo/geoip-path}}" },
  };
  const run = () => stackRun("mail", config);
  beforeAll(() => run(), RUN_TIMEOUT_MS);

  it("checks the operator's parameter at preview, lets the Odoo role read and decrypt it, and generates the SMTP password under the stack key", async () => {
    const r = await run();
    expect(
      r.invokes.filter((c) => c.token === "aws:ssm/getParameter:getParameter").map((c) => [c.inputs.name, c.inputs.withDecryption]),
    ).toEqual([["/odoo/geoip-path", false]]);
    const statements: { Sid: string; Resource: unknown; Condition?: Record<string, Record<string, unknown>> }[] = JSON.parse(
      named(r, "odoo-odoo-1-policy").inputs.policy,
    ).Statement;
    const arn = (n: string) => `arn:aws:ssm:${REGION}:123456789012:parameter${n}`;
    const read = statements.find((s) => s.Sid === "ReadReferencedParameters")?.Resource as string[];
    expect(read).toEqual(expect.arrayContaining([arn("/odoo/geoip-path"), arn(`/odoo-stack/${STACK}/mail/smtp-password`)]));
    expect(
      statements.find((s) => s.Sid === "DecryptReferencedParametersWithStackKey")?.Condition?.StringEquals[
        "kms:EncryptionContext:PARAMETER_ARN"
      ],
    ).toEqual(read);
    // The proxy reads neither.
    expect(named(r, "proxy-host-policy").inputs.policy).not.toContain("mail/smtp-password");
    const generated = ofType(r, "aws:ssm/parameter:Parameter").find((p) => p.inputs.name === `/odoo-stack/${STACK}/mail/smtp-password`);
    expect(generated?.inputs).toEqual(expect.objectContaining({ type: "SecureString", keyId: named(r, "stack-key-key").outputs.arn }));
    expect(generated?.secretInputs.has("value")).toBe(true);
    expect(generated?.ignoreChanges).toEqual(["value"]);
  });

  it("opens exactly the SMTP port outward, from the Odoo hosts only", async () => {
    const r = await run();
    const smtp = ofType(r, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule").filter(
      (e) => ![80, 443].includes(e.inputs.fromPort) && e.inputs.cidrIpv4 === "0.0.0.0/0",
    );
    expect(smtp.map((e) => [e.inputs.fromPort, e.inputs.toPort, e.inputs.tags[TAG_KEYS.role], e.inputs.securityGroupId])).toEqual([
      [587, 587, "odoo", named(r, "network-odoo-sg").id],
    ]);
    const conf = ofType(r, "aws:s3/bucketObjectv2:BucketObjectv2").find((o) => o.inputs.key === "hosts/odoo-1/etc/odoo/odoo.conf");
    expect(conf?.inputs.content).toContain("smtp_server = email-smtp.eu-west-1.amazonaws.com\nsmtp_ssl = True\nsmtp_user = AKIAEXAMPLE");
  });
});

describe("private buckets", () => {
  it.each([
    ["config", 30],
    ["backups-repository", 35],
  ])(
    "%s: private, versioned, KMS-encrypted, TLS-only, old versions expire after %i days",
    async (name, days) => {
      const [label, config] = CASES[0];
      expect(config.backupRetentionDays).toBe(35);
      const r = await stackRun(label, config);
      expect(named(r, `${name}-public-access-block`).inputs).toEqual(
        expect.objectContaining({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true }),
      );
      expect(named(r, `${name}-versioning`).inputs.versioningConfiguration.status).toBe("Enabled");
      expect(named(r, `${name}-ownership`).inputs.rule.objectOwnership).toBe("BucketOwnerEnforced");
      expect(named(r, `${name}-encryption`).inputs.rules).toEqual([
        expect.objectContaining({
          applyServerSideEncryptionByDefault: expect.objectContaining({ sseAlgorithm: "aws:kms" }),
          bucketKeyEnabled: true,
        }),
      ]);
      expect(named(r, `${name}-lifecycle`).inputs.rules[0]).toEqual(
        expect.objectContaining({
          status: "Enabled",
          noncurrentVersionExpiration: expect.objectContaining({ noncurrentDays: days }),
          abortIncompleteMultipartUpload: expect.objectContaining({ daysAfterInitiation: 7 }),
        }),
      );
      const policy = JSON.parse(named(r, `${name}-policy`).inputs.policy);
      expect(policy.Statement).toEqual([
        expect.objectContaining({ Effect: "Deny", Principal: "*", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
      ]);
      expect(named(r, `${name}-bucket`).inputs.forceDestroy).toBe(false);
    },
    RUN_TIMEOUT_MS,
  );
});

describe("bad config", () => {
  it.each([
    ["a missing domain and a bad CIDR", { ...BASE, domain: undefined, vpcCidr: "8.8.0.0/16" }, ["odoo-stack:domain", "odoo-stack:vpcCidr"]],
    [
      "an instance type neither AWS nor the table knows",
      { ...BASE, odooInstanceType: "m6i.gigantic" },
      ['odoo-stack:odooInstanceType = "m6i.gigantic"'],
    ],
    [
      "an odoo.conf option the checklist forces (ODOO-2), on 2 Odoo hosts",
      { ...BASE, odooInstances: 2, odooOptions: { list_db: true } },
      ["1 configuration problem;", "odoo-stack:odooOptions", "list_db"],
    ],
  ])(
    "%s fails the program with every problem and registers nothing",
    async (_why, config, mentions) => {
      let error: unknown;
      const r = await runUnderMocks(
        async () => {
          try {
            await program();
          } catch (err) {
            error = err;
          }
        },
        cliConfig(Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined))),
      );
      expect((error as Error)?.name).toBe("ConfigError");
      for (const m of mentions) expect((error as Error).message).toContain(m);
      expect(r.resources.filter((x) => x.type !== "pulumi:pulumi:Stack")).toEqual([]);
    },
    RUN_TIMEOUT_MS,
  );
});
