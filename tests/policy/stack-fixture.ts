// A valid stack as the policy pack sees it, built without Pulumi: the resources the components
// register (names, types, tags, the inputs policies read, the engine's property dependencies),
// with every config file rendered by the real renderers. Unit tests take one resource (or the
// whole list) from here and change exactly one thing.
import { efsFileSystemPolicy, EFS_DEFAULTS } from "../../components/shared-filestore";
import type { HostId, StackModel } from "../../lib/model";
import { FLOWS, PORTS, PUBLIC_INGRESS, PUBLIC_REDIRECT, ROLES } from "../../lib/ports";
import type { HostFile } from "../../templates/format";
import { odooLogrotateFile } from "../../templates/logrotate";
import { renderManifest } from "../../templates/manifest";
import { nginxFiles } from "../../templates/nginx";
import { odooConfFile } from "../../templates/odoo-conf";
import { pgbouncerHostFiles } from "../../templates/pgbouncer";
import { postgresHostFiles } from "../../templates/postgresql";
import { RDS_POSTGRES, rdsParameters, rdsPgbouncerHostFiles } from "../../templates/rds";
import { modelWith } from "../helpers/fixtures";
import { configObject, hostComponentName, hostTags, type FakeResource } from "./fakes";

export const T = {
  sg: "aws:ec2/securityGroup:SecurityGroup",
  sgRule: "aws:ec2/securityGroupRule:SecurityGroupRule",
  ingressRule: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  instance: "aws:ec2/instance:Instance",
  subnet: "aws:ec2/subnet:Subnet",
  eip: "aws:ec2/eip:Eip",
  eipAssociation: "aws:ec2/eipAssociation:EipAssociation",
  volume: "aws:ebs/volume:Volume",
  bucket: "aws:s3/bucket:Bucket",
  publicAccessBlock: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  encryption: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  versioning: "aws:s3/bucketVersioning:BucketVersioning",
  bucketPolicy: "aws:s3/bucketPolicy:BucketPolicy",
  record: "aws:route53/record:Record",
  certRequest: "tls:index/certRequest:CertRequest",
  cert: "tls:index/locallySignedCert:LocallySignedCert",
  parameter: "aws:ssm/parameter:Parameter",
  rdsInstance: "aws:rds/instance:Instance",
  rdsParameterGroup: "aws:rds/parameterGroup:ParameterGroup",
  rdsSubnetGroup: "aws:rds/subnetGroup:SubnetGroup",
  efsFileSystem: "aws:efs/fileSystem:FileSystem",
  efsFileSystemPolicy: "aws:efs/fileSystemPolicy:FileSystemPolicy",
  efsBackupPolicy: "aws:efs/backupPolicy:BackupPolicy",
  efsMountTarget: "aws:efs/mountTarget:MountTarget",
} as const;

const stackTags = (role: string, name: string): Record<string, string> => ({
  Name: `odoo-stack-test-${name}`,
  "odoo-stack:stack": "test",
  "odoo-stack:role": role,
});

/**
 * The files of a host the policies read, from the renderers themselves (templates/hosts.ts adds
 * scripts, certificates and units no policy reads; the mutation suite plans the real program).
 */
export function filesOf(model: StackModel, host: HostId): HostFile[] {
  switch (host.role) {
    case "odoo":
      return [odooConfFile(model, host), odooLogrotateFile()];
    case "proxy":
      return nginxFiles(model);
    case "pgbouncer":
      return [...pgbouncerHostFiles(model), ...rdsPgbouncerHostFiles(model)];
    case "postgres":
      return postgresHostFiles(model);
  }
}

const hostComponent = (host: HostId): string => hostComponentName(host.id);

/** The stack key's ARN as the engine would report it. */
export const STACK_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

export const sgName = (group: string): string => `network-${group}-sg`;
export const instanceName = (host: HostId): string => `${hostComponent(host)}-instance`;

export interface StackFixture {
  readonly model: StackModel;
  readonly resources: FakeResource[];
  /** The one resource named `name`. */
  get(name: string): FakeResource;
  /** The config object carrying `path` on `hostId`. */
  file(hostId: string, path: string): FakeResource;
}

/** Every resource of a valid stack for `model` (defaults: the test model, one Odoo host). */
export function stackFixture(model: StackModel = modelWith()): StackFixture {
  const resources: FakeResource[] = [];
  const add = (r: FakeResource) => {
    resources.push(r);
    return r;
  };

  // --- the stack key every SecureString is encrypted with (components/stack-key.ts) -------------
  add({
    type: "aws:kms/key:Key",
    name: "stack-key-key",
    props: {
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      keyUsage: "ENCRYPT_DECRYPT",
      customerMasterKeySpec: "SYMMETRIC_DEFAULT",
      arn: STACK_KEY_ARN,
      tags: stackTags("secrets", "stack-key-key"),
    },
  });

  // --- network: one group per role, rules from the port catalog (components/network.ts) ----------
  const shared = model.settings.sharedFilestore;
  for (const group of [...ROLES, "endpoints", ...(shared ? ["efs"] : [])]) {
    add({
      type: T.sg,
      name: sgName(group),
      props: { vpcId: "network-vpc-id", description: `odoo-stack ${group} hosts`, tags: stackTags(group, `network-${group}-sg`) },
    });
  }
  const rule = (
    group: string,
    key: string,
    port: number,
    peer: Record<string, string>,
    checklist: string,
    deps: Record<string, string[]> = {},
  ) =>
    add({
      type: T.ingressRule,
      name: `network-${key}`,
      props: {
        securityGroupId: `${sgName(group)}-id`,
        ipProtocol: "tcp",
        fromPort: port,
        toPort: port,
        description: key,
        tags: { ...stackTags(group, key), "odoo-stack:checklist": checklist },
        ...peer,
      },
      propertyDependencies: { securityGroupId: [sgName(group)], ...deps },
    });
  const https = PORTS[PUBLIC_INGRESS.port].port;
  rule(PUBLIC_INGRESS.role, `proxy-in-${https}-world-ipv4`, https, { cidrIpv4: "0.0.0.0/0" }, "NET-2 NET-3");
  rule(PUBLIC_INGRESS.role, `proxy-in-${https}-world-ipv6`, https, { cidrIpv6: "::/0" }, "NET-2 NET-3");
  if (model.settings.httpRedirect) {
    const http = PORTS[PUBLIC_REDIRECT.port].port;
    rule(PUBLIC_REDIRECT.role, `proxy-in-${http}-world-ipv4`, http, { cidrIpv4: "0.0.0.0/0" }, "NET-3");
    rule(PUBLIC_REDIRECT.role, `proxy-in-${http}-world-ipv6`, http, { cidrIpv6: "::/0" }, "NET-3");
  }
  for (const flow of FLOWS.filter((f) => shared || f.to !== "efs")) {
    const port = PORTS[flow.port].port;
    rule(flow.to, `${flow.to}-in-${port}-${flow.from}`, port, { referencedSecurityGroupId: `${sgName(flow.from)}-id` }, flow.checklist, {
      referencedSecurityGroupId: [sgName(flow.from)],
    });
  }
  rule("endpoints", "endpoints-in-443-10-40-0-0-16", https, { cidrIpv4: model.settings.vpcCidr }, "");
  model.settings.publicSubnetCidrs.forEach((cidr, i) =>
    add({
      type: T.subnet,
      name: `network-public-${i}`,
      props: { vpcId: "network-vpc-id", cidrBlock: cidr, mapPublicIpOnLaunch: false, tags: stackTags("network", `public-${i}`) },
    }),
  );
  model.settings.privateSubnetCidrs.forEach((cidr, i) =>
    add({
      type: T.subnet,
      name: `network-private-${i}`,
      props: { vpcId: "network-vpc-id", cidrBlock: cidr, mapPublicIpOnLaunch: false, tags: stackTags("network", `private-${i}`) },
    }),
  );

  // --- buckets (components/private-bucket.ts) ---------------------------------------------------
  for (const [name, role] of [
    ["config", "config"],
    ["backups-repository", "backups"],
  ] as const) {
    const bucket = `${name}-bucket`;
    add({ type: T.bucket, name: bucket, props: { forceDestroy: false, bucket: `${bucket}-1234567`, tags: stackTags(role, bucket) } });
    const companion = (type: string, part: string, props: Record<string, unknown>) =>
      add({ type, name: `${name}-${part}`, props: { bucket: `${bucket}-id`, ...props }, propertyDependencies: { bucket: [bucket] } });
    companion(T.publicAccessBlock, "public-access-block", {
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    companion(T.encryption, "encryption", {
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" }, bucketKeyEnabled: true }],
    });
    companion(T.versioning, "versioning", { versioningConfiguration: { status: "Enabled" } });
    companion(T.bucketPolicy, "policy", {
      policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "DenyInsecureTransport",
            Effect: "Deny",
            Principal: "*",
            Action: "s3:*",
            Resource: ["arn"],
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          },
        ],
      }),
    });
  }

  // --- internal CA: one certificate per host (components/internal-ca.ts) -------------------------
  for (const host of model.allHosts) {
    const part = (p: string) => `internal-ca-${host.id}-${p}`;
    add({
      type: T.certRequest,
      name: part("csr"),
      props: { subject: { commonName: host.fqdn, organization: "odoo-stack" }, dnsNames: [host.fqdn], ipAddresses: [host.privateIp] },
    });
    add({
      type: T.cert,
      name: part("cert"),
      props: { certRequestPem: "csr", validityPeriodHours: 8760, allowedUses: ["server_auth", "client_auth"] },
      propertyDependencies: { certRequestPem: [part("csr")] },
    });
    add({
      type: T.parameter,
      name: part("cert-parameter"),
      props: {
        name: model.parameters.hostCert(host.id),
        type: "String",
        value: "-----BEGIN CERTIFICATE-----",
        tags: hostTags(host.role, host.id),
      },
      propertyDependencies: { value: [part("cert")] },
    });
  }

  // --- hosts (components/host.ts and the tiers) -------------------------------------------------
  for (const host of model.allHosts) {
    const component = hostComponent(host);
    const files = filesOf(model, host);
    for (const file of files) add(configObject(host.id, file));
    add({ ...configObject(host.id, { path: "manifest.json", content: renderManifest(host.id, files) }), name: `${component}-manifest` });
    const subnet = host.role === "proxy" ? `network-public-${host.subnetIndex}` : `network-private-${host.subnetIndex}`;
    add({
      type: T.instance,
      name: instanceName(host),
      props: {
        ami: "ami-0123456789abcdef0",
        instanceType: model.settings.instanceTypes[host.role],
        subnetId: `${subnet}-id`,
        privateIp: host.privateIp,
        vpcSecurityGroupIds: [`${sgName(host.role)}-id`],
        associatePublicIpAddress: false,
        monitoring: true,
        iamInstanceProfile: `${component}-profile`,
        metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
        rootBlockDevice: { encrypted: true, volumeType: "gp3", volumeSize: 20, deleteOnTermination: true },
        userData: "#cloud-config\n# generated by odoo-stack — do not edit\npackage_update: true\n",
        tags: hostTags(host.role, host.id),
      },
      propertyDependencies: { subnetId: [subnet], vpcSecurityGroupIds: [sgName(host.role)] },
    });
    add({
      type: T.record,
      name: `${component}-dns`,
      props: { zoneId: "network-internal-zone-zone", name: host.fqdn, type: "A", ttl: 300, records: [host.privateIp] },
    });
  }
  const postgres = model.hosts.postgres;
  if (shared) addSharedFilestore(model, add);
  if (model.settings.postgresEngine === "rds") addRds(model, add);
  else
    add({
      type: T.volume,
      name: "postgres-data",
      props: {
        availabilityZone: "eu-west-1a",
        size: model.settings.postgresDataVolumeGiB,
        type: "gp3",
        encrypted: true,
        finalSnapshot: true,
        tags: hostTags("postgres", postgres.id),
      },
    });
  add({ type: T.eip, name: "proxy-eip", props: { domain: "vpc", tags: hostTags("proxy", "proxy") } });
  add({
    type: T.eipAssociation,
    name: "proxy-eip-association",
    props: { allocationId: "eipalloc-1", instanceId: `${instanceName(model.hosts.proxy)}-id` },
    propertyDependencies: { instanceId: [instanceName(model.hosts.proxy)] },
  });

  const byName = new Map(resources.map((r) => [r.name, r]));
  return {
    model,
    resources,
    get(name) {
      const r = byName.get(name);
      if (!r) throw new Error(`the fixture has no resource named ${name}`);
      return r;
    },
    file(hostId, path) {
      const found = resources.find((r) => r.props.key === `hosts/${hostId}/${path.replace(/^\//, "")}`);
      if (!found) throw new Error(`the fixture has no file ${path} on ${hostId}`);
      return found;
    },
  };
}

/** components/shared-filestore.ts: the file system, its TLS-only policy, backups, a mount target per private subnet. */
function addSharedFilestore(model: StackModel, add: (r: FakeResource) => FakeResource): void {
  const fsArn = "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-0123456789abcdef0";
  add({
    type: T.efsFileSystem,
    name: "odoo-filestore-fs",
    props: {
      encrypted: true,
      performanceMode: EFS_DEFAULTS.performanceMode,
      throughputMode: EFS_DEFAULTS.throughputMode,
      tags: stackTags("efs", "odoo-filestore-fs"),
    },
  });
  add({
    type: T.efsBackupPolicy,
    name: "odoo-filestore-backup-policy",
    props: { fileSystemId: "fs-0123456789abcdef0", backupPolicy: { status: "ENABLED" } },
    propertyDependencies: { fileSystemId: ["odoo-filestore-fs"] },
  });
  add({
    type: T.efsFileSystemPolicy,
    name: "odoo-filestore-policy",
    props: { fileSystemId: "fs-0123456789abcdef0", policy: efsFileSystemPolicy(fsArn) },
    propertyDependencies: { fileSystemId: ["odoo-filestore-fs"] },
  });
  model.settings.privateSubnetCidrs.forEach((_cidr, i) =>
    add({
      type: T.efsMountTarget,
      name: `odoo-filestore-mount-${i}`,
      props: { fileSystemId: "fs-0123456789abcdef0", subnetId: `network-private-${i}-id`, securityGroups: [`${sgName("efs")}-id`] },
      propertyDependencies: { fileSystemId: ["odoo-filestore-fs"], subnetId: [`network-private-${i}`], securityGroups: [sgName("efs")] },
    }),
  );
}

/** components/postgres-host.ts with engine "rds": parameter group, subnet group, instance, its two parameters. */
function addRds(model: StackModel, add: (r: FakeResource) => FakeResource): void {
  const s = model.settings;
  add({
    type: T.rdsParameterGroup,
    name: "postgres-parameters",
    props: {
      name: "postgres-parameters-1a2b3c4",
      family: RDS_POSTGRES.parameterGroupFamily,
      parameters: rdsParameters(model).map((p) => ({ name: p.name, value: p.value, applyMethod: p.applyMethod })),
      tags: stackTags("postgres", "postgres-parameters"),
    },
  });
  add({
    type: T.rdsSubnetGroup,
    name: "postgres-subnets",
    props: {
      name: "postgres-subnets-1a2b3c4",
      subnetIds: s.privateSubnetCidrs.map((_c, i) => `network-private-${i}-id`),
      tags: stackTags("postgres", "postgres-subnets"),
    },
  });
  const address = "postgres-rds-1a2b3c4.cabcdefghijk.eu-west-1.rds.amazonaws.com";
  add({
    type: T.rdsInstance,
    name: "postgres-rds",
    props: {
      engine: RDS_POSTGRES.engine,
      engineVersion: RDS_POSTGRES.engineVersion,
      instanceClass: `db.${s.instanceTypes.postgres}`,
      allocatedStorage: s.postgresDataVolumeGiB,
      storageType: "gp3",
      storageEncrypted: true,
      multiAz: s.rdsMultiAz,
      publiclyAccessible: false,
      dbSubnetGroupName: "postgres-subnets-1a2b3c4",
      vpcSecurityGroupIds: [`${sgName("postgres")}-id`],
      parameterGroupName: "postgres-parameters-1a2b3c4",
      deletionProtection: true,
      backupRetentionPeriod: s.backupRetentionDays,
      performanceInsightsEnabled: true,
      address,
      tags: stackTags("postgres", "postgres-rds"),
    },
    propertyDependencies: {
      parameterGroupName: ["postgres-parameters"],
      dbSubnetGroupName: ["postgres-subnets"],
      vpcSecurityGroupIds: [sgName("postgres")],
    },
  });
  add({
    type: T.parameter,
    name: "postgres-endpoint-parameter",
    props: {
      name: model.parameters.rdsEndpoint,
      type: "String",
      value: address,
      tags: stackTags("postgres", "postgres-endpoint-parameter"),
    },
    propertyDependencies: { value: ["postgres-rds"] },
  });
  add({
    type: T.parameter,
    name: "postgres-master-password-parameter",
    props: {
      name: model.parameters.rdsMasterPassword,
      type: "SecureString",
      keyId: STACK_KEY_ARN,
      value: "[secret]",
      tags: stackTags("postgres", "postgres-master-password-parameter"),
    },
    propertyDependencies: { keyId: ["stack-key-key"] },
  });
}

/** The fixture's resources with `replacement` in place of the resource of the same name. */
export const replaced = (resources: readonly FakeResource[], replacement: FakeResource): FakeResource[] =>
  resources.map((r) => (r.name === replacement.name ? replacement : r));
