// The building block of every tier: one EC2 host with its least-privilege role, its rendered
// files in the config bucket, and the SSM association that applies them in place.
//
// Config delivery (DESIGN principle 6): each HostFile becomes an S3 object (readable in the
// plan, checked by policies); a manifest lists them with their hashes; the association runs
// the apply script with the manifest's hash on its command line. A changed file changes the
// hash, AWS re-runs the association, and the script validates the new files on the host and
// reloads the service. The instance itself is never replaced for a config change: its user
// data only bootstraps (and is ignored after creation), its AMI is pinned at creation.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsFacts } from "../lib/aws-specs";
import { SECRET_REF, secretRef, type HostId, type StackModel } from "../lib/model";
import { throwIfAny } from "../lib/problems";
import { renderUserData, userDataInputFor } from "../templates/cloud-init";
import { sha256, type HostFile } from "../templates/format";
import { applyCommandLine, configObjectKey, parametersFingerprint } from "../templates/hosts";
import { manifestObjectKey, renderManifest } from "../templates/manifest";
import { hostTags, TAG_KEYS } from "./tags";
import type { SecurityGroupIds } from "./network";

/** An IAM policy statement, as written in the policy JSON. */
export interface PolicyStatement {
  readonly Sid: string;
  readonly Effect: "Allow";
  readonly Action: readonly string[];
  readonly Resource: string | readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
}

/** A bucket as hosts need it: its name for the apply command, its ARN for the policy. */
export interface BucketRef {
  readonly bucketName: pulumi.Input<string>;
  readonly arn: pulumi.Input<string>;
}

/** What the Network gives the tiers. Structural, so tests can pass a stand-in. */
export interface NetworkRef {
  readonly availabilityZones: readonly string[];
  readonly publicSubnetIds: readonly pulumi.Input<string>[];
  readonly privateSubnetIds: readonly pulumi.Input<string>[];
  readonly securityGroupIds: SecurityGroupIds<pulumi.Input<string>>;
  readonly privateZoneId: pulumi.Input<string>;
}

/** Arguments every tier component (PostgresHost, PgBouncer, OdooApp, ReverseProxy) takes. */
export interface TierArgs {
  readonly model: StackModel;
  readonly aws: AwsFacts;
  readonly network: NetworkRef;
  /** The bucket the hosts' rendered files are delivered through. */
  readonly configBucket: BucketRef;
  /** The stack's KMS key (StackKey): it encrypts the SecureStrings a host role may decrypt. */
  readonly stackKeyArn: pulumi.Input<string>;
  /**
   * Every SSM parameter the stack writes, by parameter name (Secrets and InternalCa). A host's
   * files may reference only these (or the host's externalParameterNames); its role may read
   * only the ones its files reference, and its first apply waits until they exist.
   */
  readonly parameters: Readonly<Record<string, pulumi.Resource>>;
}

export interface HostArgs extends TierArgs {
  readonly host: HostId;
  /** Every file the host receives (templates/hosts.ts hostFiles). */
  readonly files: readonly HostFile[];
  readonly instanceType: string;
  readonly subnetId: pulumi.Input<string>;
  readonly securityGroupId: pulumi.Input<string>;
  /**
   * SSM parameters the stack does not create but the host must read (an imported TLS
   * certificate). Optional. Defaults to none.
   */
  readonly externalParameterNames?: readonly string[];
  /** Statements added to the host's inline policy (e.g. ACME DNS-01). Optional. Defaults to none. */
  readonly extraPolicyStatements?: readonly PolicyStatement[];
  /** EBS volume the host mounts for its data (PostgreSQL). Optional. Defaults to none. */
  readonly dataVolumeId?: pulumi.Input<string>;
  /** EFS file system mounted over TLS at Odoo's data_dir (shared filestore). Optional. Defaults to none. */
  readonly efsFileSystemId?: pulumi.Input<string>;
  /** Resources that must exist before first boot (EFS mount targets). Optional. Defaults to none. */
  readonly bootDependencies?: readonly pulumi.Resource[];
  /** Size of the encrypted root volume in GiB. Optional. Defaults to 20. */
  readonly rootVolumeGiB?: number;
}

export const HOST_DEFAULTS = { rootVolumeGiB: 20 } as const;

/** The SSM parameter names `files` reference through secretRef(), sorted, each once. */
export function referencedParameters(files: readonly HostFile[]): string[] {
  const names = new Set<string>();
  for (const file of files) for (const match of file.content.matchAll(SECRET_REF)) names.add(match[1]);
  return [...names].sort();
}

/** The ARN of an SSM parameter; `name` is a path starting with "/". */
export const ssmParameterArn = (facts: Pick<AwsFacts, "partition" | "region" | "accountId">, name: string): string =>
  `arn:${facts.partition}:ssm:${facts.region}:${facts.accountId}:parameter${name}`;

/**
 * What AWS's AmazonSSMManagedInstanceCore grants, less ssm:GetParameter and ssm:GetParameters on
 * every parameter (issue 12 item 8: with them any host read any parameter). Session Manager (no
 * SSH, principle 9) and the SSM association (Run Command) need only these.
 * https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonSSMManagedInstanceCore.html
 */
export const SSM_AGENT_STATEMENTS: readonly PolicyStatement[] = [
  {
    Sid: "SsmAgentCore",
    Effect: "Allow",
    Action: [
      "ssm:DescribeAssociation",
      "ssm:DescribeDocument",
      "ssm:GetDeployablePatchSnapshotForInstance",
      "ssm:GetDocument",
      "ssm:GetManifest",
      "ssm:ListAssociations",
      "ssm:ListInstanceAssociations",
      "ssm:PutComplianceItems",
      "ssm:PutConfigurePackageResult",
      "ssm:PutInventory",
      "ssm:UpdateAssociationStatus",
      "ssm:UpdateInstanceAssociationStatus",
      "ssm:UpdateInstanceInformation",
    ],
    Resource: "*",
  },
  {
    Sid: "SessionManagerChannels",
    Effect: "Allow",
    Action: [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ],
    Resource: "*",
  },
  {
    Sid: "RunCommandMessages",
    Effect: "Allow",
    Action: [
      "ec2messages:AcknowledgeMessage",
      "ec2messages:DeleteMessage",
      "ec2messages:FailMessage",
      "ec2messages:GetEndpoint",
      "ec2messages:GetMessages",
      "ec2messages:SendReply",
    ],
    Resource: "*",
  },
];

/**
 * The host role's inline policy: the SSM agent's actions (SSM_AGENT_STATEMENTS), list and read
 * its own config objects, read exactly the parameters its files name, and decrypt with the
 * stack key only through SSM and only those parameters (SSM encrypts a SecureString with the
 * encryption context PARAMETER_ARN = the parameter's ARN). Config objects are SSE-KMS with
 * S3's own key, decrypted through S3. Deterministic JSON (statements in a fixed order,
 * resources sorted) so an unchanged host shows no diff.
 * https://docs.aws.amazon.com/kms/latest/developerguide/services-parameter-store.html
 */
export function hostPolicyDocument(args: {
  readonly facts: Pick<AwsFacts, "partition" | "region" | "accountId">;
  readonly bucketArn: string;
  readonly hostId: string;
  readonly parameterNames: readonly string[];
  /** The stack key's ARN (StackKey). */
  readonly stackKeyArn: string;
  readonly extraStatements?: readonly PolicyStatement[];
}): string {
  const { facts } = args;
  const ownObjects = configObjectKey(args.hostId, "*");
  const statements: PolicyStatement[] = [
    {
      Sid: "ReadOwnConfigObjects",
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: `${args.bucketArn}/${ownObjects}`,
    },
    {
      // The apply script fetches its prefix with `aws s3 cp --recursive`, which lists it first.
      Sid: "ListOwnConfigObjects",
      Effect: "Allow",
      Action: ["s3:ListBucket"],
      Resource: args.bucketArn,
      Condition: { StringLike: { "s3:prefix": [ownObjects] } },
    },
  ];
  const parameterArns = [...new Set(args.parameterNames)].sort().map((n) => ssmParameterArn(facts, n));
  if (parameterArns.length > 0) {
    statements.push({
      Sid: "ReadReferencedParameters",
      Effect: "Allow",
      Action: ["ssm:GetParameter", "ssm:GetParameters"],
      Resource: parameterArns,
    });
    statements.push({
      Sid: "DecryptReferencedParametersWithStackKey",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: args.stackKeyArn,
      Condition: {
        StringEquals: {
          "kms:ViaService": `ssm.${facts.region}.amazonaws.com`,
          "kms:EncryptionContext:PARAMETER_ARN": parameterArns,
        },
      },
    });
  }
  statements.push({
    Sid: "DecryptConfigObjectsThroughS3",
    Effect: "Allow",
    Action: ["kms:Decrypt"],
    Resource: `arn:${facts.partition}:kms:${facts.region}:${facts.accountId}:key/*`,
    // SSE-KMS objects only: the role cannot use a key directly, nor through SSM.
    Condition: { StringEquals: { "kms:ViaService": `s3.${facts.region}.amazonaws.com` } },
  });
  statements.push(...SSM_AGENT_STATEMENTS, ...(args.extraStatements ?? []));
  return JSON.stringify({ Version: "2012-10-17", Statement: statements });
}

/**
 * AWS managed policies every host role gets: the CloudWatch agent's (its ssm:GetParameter is
 * limited to parameter/AmazonCloudWatch-*). Not AmazonSSMManagedInstanceCore: its ssm:GetParameter
 * on every parameter is what SSM_AGENT_STATEMENTS leaves out.
 */
export const MANAGED_POLICIES = ["CloudWatchAgentServerPolicy"] as const;

const fileResourceSuffix = (path: string): string => path.replace(/^\/+/, "").replace(/[^A-Za-z0-9._-]/g, "-");

/**
 * Every problem with a host's files that would otherwise fail on the host, long after
 * `pulumi up`; empty when they can be delivered. The manifest the apply script reads
 * (templates/manifest.ts) checks paths, modes, owners, placeholders and that no file holding a
 * secret is world-readable; two paths must not map to one object resource; and every
 * secretRef() must name a parameter the stack creates or the operator named (`parameters`).
 */
export function checkHostFiles(hostId: string, files: readonly HostFile[], parameters: readonly string[]): string[] {
  const problems: string[] = [];
  try {
    renderManifest(hostId, files);
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err));
  }
  const seenPaths = new Map<string, string>();
  for (const file of files) {
    const suffix = fileResourceSuffix(file.path);
    const previous = seenPaths.get(suffix);
    if (previous !== undefined) problems.push(`files ${previous} and ${file.path} map to the same resource name; rename one`);
    seenPaths.set(suffix, file.path);
  }
  const known = new Set(parameters);
  for (const parameterName of referencedParameters(files)) {
    if (!known.has(parameterName)) {
      const where = files.filter((f) => f.content.includes(secretRef(parameterName))).map((f) => f.path);
      problems.push(
        `${where.join(", ")} reference${where.length === 1 ? "s" : ""} SSM parameter ${parameterName}, which the stack does not create`,
      );
    }
  }
  return problems;
}

export class Host extends pulumi.ComponentResource {
  readonly hostId: string;
  readonly fqdn: string;
  readonly privateIp: string;
  readonly instanceId: pulumi.Output<string>;
  readonly roleName: pulumi.Output<string>;
  readonly roleArn: pulumi.Output<string>;
  /** SHA-256 of the manifest: changes exactly when a delivered file changes. */
  readonly manifestSha256: string;

  constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:host:Host", name, {}, opts);
    const { model, host, files, aws: facts } = args;
    const rootVolumeGiB = args.rootVolumeGiB ?? HOST_DEFAULTS.rootVolumeGiB;
    const externalParameterNames = args.externalParameterNames ?? [];
    const parent = { parent: this };
    const tags = (part: string, extra: Record<string, string> = {}) => hostTags(model, host, `${name}-${part}`, extra);

    // --- checks that would otherwise fail on the host, long after `pulumi up` -----------------
    throwIfAny(`Host ${host.id}`, checkHostFiles(host.id, files, [...Object.keys(args.parameters), ...externalParameterNames]));
    const manifest = renderManifest(host.id, files);
    const referenced = referencedParameters(files);
    const readableParameters = [...new Set([...referenced, ...externalParameterNames])].sort();
    const parametersToWaitFor = referenced.filter((n) => n in args.parameters).map((n) => args.parameters[n]);

    // --- identity: a role that can read this host's files and secrets and nothing else -------
    const role = new aws.iam.Role(
      `${name}-role`,
      {
        description: `odoo-stack ${model.stack} ${host.id}: reads its own config objects and parameters`,
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
        tags: tags("role"),
      },
      parent,
    );
    const policy = new aws.iam.RolePolicy(
      `${name}-policy`,
      {
        role: role.id,
        policy: pulumi.all([args.configBucket.arn, args.stackKeyArn]).apply(([bucketArn, stackKeyArn]) =>
          hostPolicyDocument({
            facts,
            bucketArn,
            hostId: host.id,
            parameterNames: readableParameters,
            stackKeyArn,
            extraStatements: args.extraPolicyStatements,
          }),
        ),
      },
      parent,
    );
    const attachments = MANAGED_POLICIES.map(
      (managed) =>
        new aws.iam.RolePolicyAttachment(
          `${name}-${managed}`,
          {
            role: role.name,
            policyArn: `arn:${facts.partition}:iam::aws:policy/${managed}`,
          },
          parent,
        ),
    );
    const profile = new aws.iam.InstanceProfile(`${name}-profile`, { role: role.name, tags: tags("profile") }, parent);

    // --- files: one object per file, plus the manifest -----------------------------------------
    const objects = files.map(
      (file) =>
        new aws.s3.BucketObjectv2(
          `${name}-file-${fileResourceSuffix(file.path)}`,
          {
            bucket: args.configBucket.bucketName,
            key: configObjectKey(host.id, file.path),
            // The rendered text itself, so reviewers see it in the plan and policies can read it;
            // it holds only secretRef() placeholders, never a secret (principle 5).
            content: file.content,
            contentType: "text/plain; charset=utf-8",
            serverSideEncryption: "aws:kms",
            // 5 stack tags + at most 5 user tags (lib/config.ts refuses more): S3's limit is 10.
            tags: tags(`file-${fileResourceSuffix(file.path)}`, { [TAG_KEYS.path]: file.path }),
          },
          parent,
        ),
    );
    const manifestSha256 = sha256(manifest);
    const manifestObject = new aws.s3.BucketObjectv2(
      `${name}-manifest`,
      {
        bucket: args.configBucket.bucketName,
        key: manifestObjectKey(host.id),
        content: manifest,
        contentType: "application/json",
        serverSideEncryption: "aws:kms",
        tags: tags("manifest", { [TAG_KEYS.path]: "manifest.json" }),
      },
      parent,
    );
    const delivered: pulumi.Resource[] = [...objects, manifestObject, ...parametersToWaitFor];

    // --- the machine ---------------------------------------------------------------------------
    const userData = pulumi
      .all([args.configBucket.bucketName, args.dataVolumeId, args.efsFileSystemId])
      .apply(([bucket, dataVolumeId, efsFileSystemId]) =>
        // Names only — no file content, no hash: user data must not change when a file does.
        renderUserData(
          userDataInputFor(model, host, {
            configBucket: bucket,
            region: facts.region,
            ...(dataVolumeId === undefined ? {} : { dataVolumeId }),
            ...(efsFileSystemId === undefined ? {} : { efsFileSystemId }),
          }),
        ),
      );
    const ami = facts.amiIds[args.instanceType];
    if (ami === undefined) {
      throw new Error(
        `Host ${host.id}: no AMI was resolved for instance type ${args.instanceType} (AwsFacts.amiIds has ${Object.keys(facts.amiIds).join(", ") || "none"})`,
      );
    }
    const instance = new aws.ec2.Instance(
      `${name}-instance`,
      {
        // Debian 12 for the type's architecture: amd64, or arm64 on Graviton (issue 12 item 11).
        ami,
        instanceType: args.instanceType,
        subnetId: args.subnetId,
        // Fixed: renderers write it into odoo.conf, nginx and pg_hba before the instance exists.
        privateIp: host.privateIp,
        vpcSecurityGroupIds: [args.securityGroupId],
        // NET-1: no host has a public address; the proxy is reached through its Elastic IP.
        associatePublicIpAddress: false,
        iamInstanceProfile: profile.name,
        // OBS-8: detailed monitoring publishes EC2's own metrics (CPU, CPU credits of the t3 hosts,
        // network, status checks) every minute instead of every five, the period of the stack's
        // host alarms and dashboard; the pack requires it (instance-detailed-monitoring).
        monitoring: true,
        // No keyName: no SSH anywhere; operators use Session Manager (principle 9).
        metadataOptions: {
          httpEndpoint: "enabled",
          // IMDSv2 only; hop limit 1 keeps the credentials away from anything forwarding packets.
          httpTokens: "required",
          httpPutResponseHopLimit: 1,
        },
        rootBlockDevice: {
          encrypted: true,
          volumeType: "gp3",
          volumeSize: rootVolumeGiB,
          deleteOnTermination: true,
          tags: tags("root-volume"),
        },
        userData,
        userDataReplaceOnChange: false,
        tags: hostTags(model, host, host.id),
      },
      {
        parent: this,
        // The files and parameters exist before first boot, so bootstrap's first apply finds them;
        // so do the resources the host's bootstrap needs (EFS mount targets).
        dependsOn: [policy, ...attachments, ...delivered, ...(args.bootDependencies ?? [])],
        // A newer AMI must not replace a running host; changing user data would stop and start
        // the instance — after bootstrap, every change travels through the association instead.
        ignoreChanges: ["ami", "userData"],
        // The fixed private address cannot be held by two instances: delete, then create.
        deleteBeforeReplace: true,
      },
    );

    // --- in-place apply: re-runs whenever the manifest (any file) or a parameter's value changes
    // The manifest hashes the files with their placeholders, not the values: a rotated password,
    // a re-issued certificate or a new RDS endpoint changes only the parameter's version, which
    // the command carries, so AWS runs the association again (issue 12).
    // The operator's own parameters count too, with the version this preview read: after an
    // `aws ssm put-parameter --overwrite`, the next `pulumi up` runs the association again.
    const versioned = referenced.filter((n) => n in args.parameters);
    const external = readableParameters.filter((n) => !(n in args.parameters) && n in facts.externalParameterVersions);
    const parametersSha256 = pulumi
      .all(versioned.map((n) => pulumi.output((args.parameters[n] as Partial<aws.ssm.Parameter>).version ?? 0)))
      .apply((versions) =>
        parametersFingerprint([
          ...versioned.map((n, i) => [n, versions[i]] as const),
          ...external.map((n) => [n, facts.externalParameterVersions[n]] as const),
        ]),
      );
    new aws.ssm.Association(
      `${name}-apply`,
      {
        name: "AWS-RunShellScript",
        associationName: `${model.project}-${model.stack}-${host.id}-apply`,
        targets: [{ key: "InstanceIds", values: [instance.id] }],
        parameters: {
          commands: pulumi
            .all([args.configBucket.bucketName, parametersSha256])
            .apply(([bucket, parameters]) =>
              applyCommandLine({ bucket, hostId: host.id, region: facts.region, manifestSha256, parametersSha256: parameters }),
            ),
        },
        tags: tags("apply"),
      },
      { parent: this, dependsOn: delivered },
    );

    new aws.route53.Record(
      `${name}-dns`,
      {
        zoneId: args.network.privateZoneId,
        name: host.fqdn,
        type: "A",
        ttl: 300,
        records: [host.privateIp],
      },
      parent,
    );

    this.hostId = host.id;
    this.fqdn = host.fqdn;
    this.privateIp = host.privateIp;
    this.instanceId = instance.id;
    this.roleName = role.name;
    this.roleArn = role.arn;
    this.manifestSha256 = manifestSha256;
    this.registerOutputs({
      hostId: this.hostId,
      fqdn: this.fqdn,
      privateIp: this.privateIp,
      instanceId: this.instanceId,
      roleArn: this.roleArn,
      manifestSha256: this.manifestSha256,
    });
  }
}
