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
import { buildModel, type StackModel } from "../../lib/model";
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
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": 2 + flows + odooPorts * s.odooInternalCidrs.length + (s.bastionSecurityGroupId ? 1 : 0) + 1,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": flows + ROLES.length * WORLD_EGRESS_PORTS.length,
    // The shared filestore (several Odoo hosts): file system, AWS Backup policy, TLS-only
    // file system policy, a mount target per private subnet
    ...(efs ? { "aws:efs/fileSystem:FileSystem": 1, "aws:efs/backupPolicy:BackupPolicy": 1, "aws:efs/fileSystemPolicy:FileSystemPolicy": 1, "aws:efs/mountTarget:MountTarget": azs } : {}),
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
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 2 * hosts,
    "aws:iam/instanceProfile:InstanceProfile": hosts,
    "aws:ec2/instance:Instance": hosts,
    "aws:s3/bucketObjectv2:BucketObjectv2": files + hosts,
    "aws:ssm/association:Association": hosts,
    "aws:route53/record:Record": hosts + acme,
    "aws:ebs/volume:Volume": 1,
    "aws:ec2/volumeAttachment:VolumeAttachment": 1,
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

const instanceOf = (r: MockRun, hostId: string) => ofType(r, "aws:ec2/instance:Instance").find((i) => i.inputs.tags[TAG_KEYS.host] === hostId);

/** A whole-stack mock run takes seconds, longer on a loaded CI machine. */
const RUN_TIMEOUT_MS = 60_000;

describe.each(CASES)("%s", (label, config) => {
  const model = modelOf(config);
  beforeAll(() => stackRun(label, config), RUN_TIMEOUT_MS);
  const run = () => stackRun(label, config);

  it("creates exactly the expected resources per type", async () => {
    expect(countsByType(await run())).toEqual(expectedCounts(model));
  });

  it("asks AWS only for instance types, zones, the Debian AMI and the account", async () => {
    const tokens = new Set((await run()).invokes.map((c) => c.token));
    expect([...tokens].sort()).toEqual([
      "aws:ec2/getAmi:getAmi",
      "aws:ec2/getInstanceType:getInstanceType",
      "aws:index/getAvailabilityZones:getAvailabilityZones",
      "aws:index/getCallerIdentity:getCallerIdentity",
    ]);
  });

  it("gives no instance a public IP; Elastic IPs exist only for the proxy and the NATs (NET-1, NET-2)", async () => {
    const r = await run();
    for (const instance of ofType(r, "aws:ec2/instance:Instance")) expect(instance.inputs.associatePublicIpAddress).toBe(false);
    const eipRoles = ofType(r, "aws:ec2/eip:Eip").map((e) => e.inputs.tags[TAG_KEYS.role]).sort();
    expect(eipRoles).toEqual([...Array(model.settings.natGateways === "perAz" ? model.settings.availabilityZoneCount : 1).fill("nat"), "proxy"].sort());
    const association = ofType(r, "aws:ec2/eipAssociation:EipAssociation")[0];
    expect(association.inputs.instanceId).toBe(instanceOf(r, "proxy")?.id);
    expect(association.inputs.allocationId).toBe(ofType(r, "aws:ec2/eip:Eip").find((e) => e.inputs.tags[TAG_KEYS.role] === "proxy")?.outputs.allocationId);
  });

  it("opens nothing to 0.0.0.0/0 or ::/0 except 443 on the proxy (NET-3)", async () => {
    const r = await run();
    const world = ofType(r, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").filter((rule) => rule.inputs.cidrIpv4 === "0.0.0.0/0" || rule.inputs.cidrIpv6 === "::/0");
    expect(world.map((rule) => `${rule.inputs.tags[TAG_KEYS.role]}:${rule.inputs.fromPort}-${rule.inputs.toPort}`)).toEqual(["proxy:443-443", "proxy:443-443"]);
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
    expect(volume.inputs).toEqual(expect.objectContaining({ encrypted: true, type: "gp3", size: model.settings.postgresDataVolumeGiB, availabilityZone: "eu-west-1a" }));
    expect(volume.protect).toBe(true);
    for (const v of ofType(r, "aws:ebs/volume:Volume")) expect(v.inputs.encrypted).toBe(true);
    const attachment = named(r, "postgres-data-attachment");
    expect(attachment.inputs).toEqual(expect.objectContaining({ volumeId: volume.id, instanceId: instanceOf(r, "postgres")?.id, deviceName: "/dev/sdf", stopInstanceBeforeDetaching: true }));
    expect(attachment.deleteBeforeReplace).toBe(true);
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
    const plain = [model.parameters.caCert, ...model.allHosts.map((h) => model.parameters.hostCert(h.id)), backupBucketNameParameter(model)];
    const types = Object.fromEntries(ofType(r, "aws:ssm/parameter:Parameter").map((p) => [p.inputs.name, p.inputs.type]));
    expect(types).toEqual({ ...Object.fromEntries(secure.map((n) => [n, "SecureString"])), ...Object.fromEntries(plain.map((n) => [n, "String"])) });
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
      const objects = ofType(r, "aws:s3/bucketObjectv2:BucketObjectv2").filter((o) => o.inputs.tags[TAG_KEYS.host] === host.id && !o.name.endsWith("-manifest"));
      expect(objects.map((o) => [o.inputs.key, o.inputs.content]).sort()).toEqual(files.map((f) => [configObjectKey(host.id, f.path), f.content]).sort());
      const role = ofType(r, "aws:iam/role:Role").find((x) => x.inputs.tags[TAG_KEYS.host] === host.id);
      const policy = ofType(r, "aws:iam/rolePolicy:RolePolicy").find((p) => p.inputs.role === role?.id);
      const statements: { Sid: string; Resource: string | string[] }[] = JSON.parse(policy?.inputs.policy).Statement;
      const readable = statements.find((s) => s.Sid === "ReadReferencedParameters")?.Resource ?? [];
      const expected = [...new Set([...referencedParameters(files), ...(host.role === "proxy" ? importedTlsParameters(model.settings.tls) : [])])]
        .sort()
        .map((n) => `arn:aws:ssm:${REGION}:123456789012:parameter${n}`);
      expect(readable).toEqual(expected);
      expect(statements.find((s) => s.Sid === "ReadOwnConfigObjects")?.Resource).toMatch(new RegExp(`/hosts/${host.id}/\\*$`));
    }
  });

  it("gives the proxy Route 53 rights only for the ACME challenge record, and only in ACME mode", async () => {
    const r = await run();
    const statements: { Sid: string; Action: string[]; Resource: string; Condition?: Record<string, Record<string, string[]>> }[] = JSON.parse(named(r, "proxy-host-policy").inputs.policy).Statement;
    const change = statements.find((s) => s.Action.includes("route53:ChangeResourceRecordSets"));
    if (model.settings.tls.mode === "acme") {
      expect(change?.Resource).toBe(`arn:aws:route53:::hostedzone/${model.settings.tls.hostedZoneId}`);
      expect(change?.Condition?.["ForAllValues:StringEquals"]).toEqual({
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.erp.example.com"],
        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
        "route53:ChangeResourceRecordSetsActions": ["UPSERT", "DELETE"],
      });
      expect(named(r, "proxy-public-dns").inputs).toEqual(expect.objectContaining({ zoneId: model.settings.tls.hostedZoneId, name: "erp.example.com", type: "A" }));
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
        expect.objectContaining({ Name: expect.stringMatching(/^odoo-stack-test-/), [TAG_KEYS.stack]: STACK, [TAG_KEYS.role]: expect.any(String), ...model.settings.tags }),
      ]);
    }
    for (const type of ["aws:ec2/instance:Instance", "aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile", "aws:s3/bucketObjectv2:BucketObjectv2", "aws:ssm/association:Association"]) {
      const [hostResources, shared] = [ofType(r, type).filter((x) => TAG_KEYS.host in x.inputs.tags), ofType(r, type).filter((x) => !(TAG_KEYS.host in x.inputs.tags))];
      // Each host resource names a real host, and its role tag is that host's role.
      for (const x of hostResources) expect([x.name, x.inputs.tags[TAG_KEYS.role]]).toEqual([x.name, model.allHosts.find((h) => h.id === x.inputs.tags[TAG_KEYS.host])?.role]);
      // The one shared resource of these types: Data Lifecycle Manager's service role.
      expect(shared.map((x) => [x.name, x.inputs.tags[TAG_KEYS.role]])).toEqual(type === "aws:iam/role:Role" ? [["backup-plan-dlm-role", "backups"]] : []);
    }
  });

  it("publishes the backup bucket's name as a String parameter that the PostgreSQL host's pgbackrest.conf reads (BACKUP-1)", async () => {
    const r = await run();
    const name = backupBucketNameParameter(model);
    const parameter = named(r, "backup-plan-bucket-name");
    expect(parameter.inputs).toEqual(expect.objectContaining({ name, type: "String", value: named(r, "backups-repository-bucket").outputs.bucket }));
    const postgres = model.hosts.postgres;
    const conf = ofType(r, "aws:s3/bucketObjectv2:BucketObjectv2").find((o) => o.inputs.key === configObjectKey(postgres.id, PGBACKREST_CONF_PATH));
    expect(conf?.inputs.content).toContain(backupBucketRef(model));
    // The host may read it, and its first apply waits until it exists.
    const role = ofType(r, "aws:iam/role:Role").find((x) => x.inputs.tags[TAG_KEYS.host] === postgres.id);
    const policy = ofType(r, "aws:iam/rolePolicy:RolePolicy").find((p) => p.inputs.role === role?.id);
    const readable = JSON.parse(policy?.inputs.policy).Statement.find((s: { Sid: string }) => s.Sid === "ReadReferencedParameters")?.Resource;
    expect(readable).toContain(`arn:aws:ssm:${REGION}:123456789012:parameter${name}`);
    const association = ofType(r, "aws:ssm/association:Association").find((a) => a.inputs.tags[TAG_KEYS.host] === postgres.id);
    expect(association?.dependencies).toContain(parameter.urn);
  });

  it("gives the PostgreSQL host's role the pgBackRest policy and each Odoo host's role the filestore policy, on the backup bucket (BACKUP-1)", async () => {
    const r = await run();
    const bucketArn = named(r, "backups-repository-bucket").outputs.arn;
    expect(bucketArn).toMatch(/^arn:aws:s3:::/);
    const roleNameOf = (hostId: string) => ofType(r, "aws:iam/role:Role").find((x) => x.inputs.tags[TAG_KEYS.host] === hostId)?.outputs.name;
    const iamInput = { bucketArn, stack: STACK, region: REGION };

    // Role names as the mocked provider returned them: real strings, so the equalities below bite.
    for (const h of [model.hosts.postgres, ...model.hosts.odoo]) expect(roleNameOf(h.id)).toMatch(new RegExp(`^${h.role === "postgres" ? "postgres-host" : `odoo-${h.id}`}-role`));
    const postgresPolicy = named(r, "backup-plan-postgres-backup-policy");
    expect(postgresPolicy.inputs.role).toBe(roleNameOf(model.hosts.postgres.id));
    expect(JSON.parse(postgresPolicy.inputs.policy)).toEqual(postgresBackupPolicy(iamInput));
    expect(postgresPolicy.inputs.policy).toContain(`${bucketArn}/${pgbackrestRepoPrefix(STACK)}`);

    const filestorePolicies = model.hosts.odoo.map((h, i) => named(r, `backup-plan-odoo-${i + 1}-filestore-policy`));
    expect(filestorePolicies.map((p) => p.inputs.role)).toEqual(model.hosts.odoo.map((h) => roleNameOf(h.id)));
    for (const p of filestorePolicies) expect(JSON.parse(p.inputs.policy)).toEqual(odooFilestorePolicy(iamInput));

    // No other host role touches the backup bucket.
    const onBucket = ofType(r, "aws:iam/rolePolicy:RolePolicy").filter((p) => p.inputs.policy.includes(bucketArn)).map((p) => p.name).sort();
    expect(onBucket).toEqual([postgresPolicy.name, ...filestorePolicies.map((p) => p.name)].sort());
  });

  it("tags the PostgreSQL data volume, and only it, with the tag the DLM snapshot policy targets (BACKUP-1, BACKUP-3)", async () => {
    const r = await run();
    const { key, value } = dataVolumeSnapshotTag(model);
    expect(named(r, "postgres-data").inputs.tags[key]).toBe(value);
    expect(ofType(r, "aws:ebs/volume:Volume").filter((v) => v.inputs.tags[key] === value).map((v) => v.name)).toEqual(["postgres-data"]);
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
        parameterNames: ofType(r, "aws:ssm/parameter:Parameter").map((p) => p.inputs.name).sort(),
      }),
    );
    expect(r.outputs.configBucketName).toBe(named(r, "config-bucket").outputs.bucket);
    expect(r.outputs.backupBucketName).toBe(named(r, "backups-repository-bucket").outputs.bucket);
  });
});

describe("private buckets", () => {
  it.each([
    ["config", 30],
    ["backups-repository", 35],
  ])("%s: private, versioned, KMS-encrypted, TLS-only, old versions expire after %i days", async (name, days) => {
    const [label, config] = CASES[0];
    expect(config.backupRetentionDays).toBe(35);
    const r = await stackRun(label, config);
    expect(named(r, `${name}-public-access-block`).inputs).toEqual(expect.objectContaining({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true }));
    expect(named(r, `${name}-versioning`).inputs.versioningConfiguration.status).toBe("Enabled");
    expect(named(r, `${name}-ownership`).inputs.rule.objectOwnership).toBe("BucketOwnerEnforced");
    expect(named(r, `${name}-encryption`).inputs.rules).toEqual([expect.objectContaining({ applyServerSideEncryptionByDefault: expect.objectContaining({ sseAlgorithm: "aws:kms" }), bucketKeyEnabled: true })]);
    expect(named(r, `${name}-lifecycle`).inputs.rules[0]).toEqual(expect.objectContaining({ status: "Enabled", noncurrentVersionExpiration: expect.objectContaining({ noncurrentDays: days }), abortIncompleteMultipartUpload: expect.objectContaining({ daysAfterInitiation: 7 }) }));
    const policy = JSON.parse(named(r, `${name}-policy`).inputs.policy);
    expect(policy.Statement).toEqual([expect.objectContaining({ Effect: "Deny", Principal: "*", Condition: { Bool: { "aws:SecureTransport": "false" } } })]);
    expect(named(r, `${name}-bucket`).inputs.forceDestroy).toBe(false);
  }, RUN_TIMEOUT_MS);
});

describe("bad config", () => {
  it.each([
    ["a missing domain and a bad CIDR", { ...BASE, domain: undefined, vpcCidr: "8.8.0.0/16" }, ["odoo-stack:domain", "odoo-stack:vpcCidr"]],
    ["an instance type neither AWS nor the table knows", { ...BASE, odooInstanceType: "m6i.gigantic" }, ["odoo-stack:odooInstanceType = \"m6i.gigantic\""]],
    ["an odoo.conf option the checklist forces (ODOO-2), on 2 Odoo hosts", { ...BASE, odooInstances: 2, odooOptions: { list_db: true } }, ["1 configuration problem;", "odoo-stack:odooOptions", "list_db"]],
  ])("%s fails the program with every problem and registers nothing", async (_why, config, mentions) => {
    let error: unknown;
    const r = await runUnderMocks(async () => {
      try {
        await program();
      } catch (err) {
        error = err;
      }
    }, cliConfig(Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined))));
    expect((error as Error)?.name).toBe("ConfigError");
    for (const m of mentions) expect((error as Error).message).toContain(m);
    expect(r.resources.filter((x) => x.type !== "pulumi:pulumi:Stack")).toEqual([]);
  }, RUN_TIMEOUT_MS);
});
