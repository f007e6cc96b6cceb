// Host, the building block every tier uses: hardened instance (IMDSv2, encrypted root, no SSH
// key, no public IP), a role that reads exactly what its files reference, files delivered as
// S3 objects, and an association whose command changes when — and only when — a file changes,
// so a config change is applied in place instead of replacing the instance (principle 6).
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { checkHostFiles, Host, hostPolicyDocument, referencedParameters, ssmParameterArn, type NetworkRef } from "../../components/host";
import { TAG_KEYS } from "../../components/tags";
import type { AwsFacts } from "../../lib/aws-specs";
import { secretRef } from "../../lib/model";
import { sha256, type HostFile } from "../../templates/format";
import { applyCommandLine, configObjectKey, parametersFingerprint } from "../../templates/hosts";
import { manifestObjectKey, renderManifest } from "../../templates/manifest";
import { modelWith, settingsWith } from "../helpers/fixtures";
import { named, ofType, runUnderMocks, type MockRun } from "../helpers/component-mocks";

const model = modelWith({ odooInstances: 2 });
const host = model.hosts.odoo[1];
const facts: AwsFacts = {
  region: "eu-west-1",
  partition: "aws",
  accountId: "123456789012",
  availabilityZones: ["eu-west-1a", "eu-west-1b"],
  amiIds: { "m6i.xlarge": "ami-0debian12", "t3.small": "ami-0debian12" },
  externalParameterVersions: {},
};
const network: NetworkRef = {
  availabilityZones: facts.availabilityZones,
  publicSubnetIds: ["subnet-public-a", "subnet-public-b"],
  privateSubnetIds: ["subnet-private-a", "subnet-private-b"],
  securityGroupIds: { proxy: "sg-proxy", odoo: "sg-odoo", pgbouncer: "sg-pgbouncer", postgres: "sg-postgres", endpoints: "sg-endpoints" },
  privateZoneId: "ZPRIVATE",
};
const BUCKET = "config-bucket";
const BUCKET_ARN = `arn:aws:s3:::${BUCKET}`;
const KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const files = (dbLine = "db_password = "): HostFile[] => [
  {
    path: "/etc/odoo/odoo.conf",
    content: `[options]\n${dbLine}${secretRef(model.parameters.odooDbPassword)}\nadmin_passwd = ${secretRef(model.parameters.odooAdminPassword)}\n`,
    mode: "0640",
    owner: "odoo",
    group: "odoo",
  },
  {
    path: "/etc/odoo/tls/client.key",
    content: `${secretRef(model.parameters.hostKey(host.id))}\n`,
    mode: "0600",
    owner: "odoo",
    group: "odoo",
  },
  { path: "/etc/logrotate.d/odoo", content: "/var/log/odoo/*.log {\n  daily\n}\n", mode: "0644", owner: "root", group: "root" },
];
const STACK_PARAMETERS = [
  model.parameters.odooDbPassword,
  model.parameters.odooAdminPassword,
  model.parameters.hostKey(host.id),
  model.parameters.monitorPassword,
];

/** Runs one Host with stand-in parameters (real resources, so dependencies are visible). */
async function runHost(hostFiles: HostFile[], external: Readonly<Record<string, number>> = {}): Promise<MockRun> {
  return runUnderMocks(() => {
    const parameters: Record<string, pulumi.Resource> = {};
    for (const name of STACK_PARAMETERS)
      parameters[name] = new aws.ssm.Parameter(`param${name.replace(/\//g, "-")}`, { name, type: "SecureString", value: "stand-in" });
    new Host("odoo-odoo-2", {
      model,
      aws: { ...facts, externalParameterVersions: external },
      network,
      configBucket: { bucketName: BUCKET, arn: BUCKET_ARN },
      stackKeyArn: KEY_ARN,
      parameters,
      host,
      files: hostFiles,
      instanceType: "m6i.xlarge",
      subnetId: network.privateSubnetIds[host.subnetIndex],
      securityGroupId: network.securityGroupIds.odoo,
      externalParameterNames: Object.keys(external),
    });
  });
}

describe("pure helpers", () => {
  it("referencedParameters lists each SSM reference once, sorted", () => {
    expect(referencedParameters(files())).toEqual(
      [model.parameters.odooAdminPassword, model.parameters.odooDbPassword, model.parameters.hostKey(host.id)].sort(),
    );
    expect(referencedParameters([])).toEqual([]);
  });

  it.each([
    [
      "no parameters: no SSM statement (an empty Resource list is invalid IAM)",
      [] as string[],
      [
        "ReadOwnConfigObjects",
        "ListOwnConfigObjects",
        "DecryptConfigObjectsThroughS3",
        "SsmAgentCore",
        "SessionManagerChannels",
        "RunCommandMessages",
      ],
    ],
    [
      "two parameters",
      ["/b", "/a"],
      [
        "ReadOwnConfigObjects",
        "ListOwnConfigObjects",
        "ReadReferencedParameters",
        "DecryptReferencedParametersWithStackKey",
        "DecryptConfigObjectsThroughS3",
        "SsmAgentCore",
        "SessionManagerChannels",
        "RunCommandMessages",
      ],
    ],
  ])("hostPolicyDocument, %s", (_why, parameterNames, sids) => {
    const doc = JSON.parse(hostPolicyDocument({ facts, bucketArn: BUCKET_ARN, hostId: "odoo-2", parameterNames, stackKeyArn: KEY_ARN }));
    expect(doc.Statement.map((s: { Sid: string }) => s.Sid)).toEqual(sids);
    if (parameterNames.length > 0) expect(doc.Statement[2].Resource).toEqual([ssmParameterArn(facts, "/a"), ssmParameterArn(facts, "/b")]);
  });
});

describe("Host under mocks", () => {
  let run: MockRun;
  beforeAll(async () => {
    run = await runHost(files());
  }, 60_000);

  it("delivers one encrypted object per file, keyed by configObjectKey, with the rendered text", () => {
    const objects = ofType(run, "aws:s3/bucketObjectv2:BucketObjectv2").filter((o) => o.name !== "odoo-odoo-2-manifest");
    expect(objects.map((o) => [o.inputs.key, o.inputs.content]).sort()).toEqual(
      files()
        .map((f) => [configObjectKey(host.id, f.path), f.content])
        .sort(),
    );
    for (const o of objects) {
      expect([o.inputs.bucket, o.inputs.serverSideEncryption]).toEqual([BUCKET, "aws:kms"]);
      expect(o.inputs.tags).toEqual(
        expect.objectContaining({ [TAG_KEYS.host]: host.id, [TAG_KEYS.role]: "odoo", [TAG_KEYS.path]: expect.stringMatching(/^\/etc\//) }),
      );
    }
  });

  it("writes the manifest and puts its hash on the association's command line", () => {
    const manifest = named(run, "odoo-odoo-2-manifest");
    expect([manifest.inputs.key, manifest.inputs.content]).toEqual([manifestObjectKey(host.id), renderManifest(host.id, files())]);
    const association = named(run, "odoo-odoo-2-apply");
    expect(association.inputs.name).toBe("AWS-RunShellScript");
    // Every parameter the files reference, at the version AWS reports (1 for a new parameter).
    const parametersSha256 = parametersFingerprint(referencedParameters(files()).map((n) => [n, 1] as const));
    expect(association.inputs.parameters.commands).toBe(
      applyCommandLine({
        bucket: BUCKET,
        hostId: host.id,
        region: "eu-west-1",
        manifestSha256: sha256(renderManifest(host.id, files())),
        parametersSha256,
      }),
    );
    expect(association.inputs.targets).toEqual([{ key: "InstanceIds", values: [named(run, "odoo-odoo-2-instance").id] }]);
  });

  // Issue 12 item 9: a parameter the operator created (odooOptions' {{ssm:…}}) changes only its
  // version when overwritten; the preview reads that version, so the next `pulumi up` re-applies.
  it("re-applies when a parameter the operator created gets a new version, and only then", async () => {
    const smtp = "/mail/smtp-password";
    const withSmtp = (): HostFile[] =>
      files().map((f) => (f.path === "/etc/odoo/odoo.conf" ? { ...f, content: `${f.content}smtp_password = ${secretRef(smtp)}\n` } : f));
    const commandAt = async (version: number) =>
      named(await runHost(withSmtp(), { [smtp]: version }), "odoo-odoo-2-apply").inputs.parameters.commands as string;
    const [v1, v1again, v2] = [await commandAt(1), await commandAt(1), await commandAt(2)];
    const expected = (version: number) =>
      applyCommandLine({
        bucket: BUCKET,
        hostId: host.id,
        region: "eu-west-1",
        manifestSha256: sha256(renderManifest(host.id, withSmtp())),
        parametersSha256: parametersFingerprint([...referencedParameters(files()).map((n) => [n, 1] as const), [smtp, version] as const]),
      });
    expect([v1, v2]).toEqual([expected(1), expected(2)]);
    expect(v1again).toBe(v1);
    expect(v2).not.toBe(v1);
  }, 60_000);

  it("applies only after every object and referenced parameter exists", () => {
    const association = named(run, "odoo-odoo-2-apply");
    const objects = ofType(run, "aws:s3/bucketObjectv2:BucketObjectv2").map((o) => o.urn);
    const referenced = ofType(run, "aws:ssm/parameter:Parameter")
      .filter((p) => referencedParameters(files()).includes(p.inputs.name))
      .map((p) => p.urn);
    expect(association.dependencies).toEqual(expect.arrayContaining([...objects, ...referenced]));
    const unreferenced = ofType(run, "aws:ssm/parameter:Parameter").find((p) => p.inputs.name === model.parameters.monitorPassword);
    expect(association.dependencies).not.toContain(unreferenced?.urn);
  });

  it("lets the role list and read its own objects and read exactly the parameters its files reference", () => {
    const policy = JSON.parse(named(run, "odoo-odoo-2-policy").inputs.policy);
    const bySid = Object.fromEntries(policy.Statement.map((s: { Sid: string }) => [s.Sid, s]));
    expect(bySid.ReadOwnConfigObjects).toEqual({
      Sid: "ReadOwnConfigObjects",
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: `${BUCKET_ARN}/hosts/odoo-2/*`,
    });
    expect(bySid.ListOwnConfigObjects).toEqual({
      Sid: "ListOwnConfigObjects",
      Effect: "Allow",
      Action: ["s3:ListBucket"],
      Resource: BUCKET_ARN,
      Condition: { StringLike: { "s3:prefix": ["hosts/odoo-2/*"] } },
    });
    const arns = referencedParameters(files()).map((n) => `arn:aws:ssm:eu-west-1:123456789012:parameter${n}`);
    expect(bySid.ReadReferencedParameters).toEqual({
      Sid: "ReadReferencedParameters",
      Effect: "Allow",
      Action: ["ssm:GetParameter", "ssm:GetParameters"],
      Resource: arns,
    });
    // Issue 12 item 8: decrypt with the stack key only, only through SSM, only these parameters.
    expect(bySid.DecryptReferencedParametersWithStackKey).toEqual({
      Sid: "DecryptReferencedParametersWithStackKey",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: KEY_ARN,
      Condition: { StringEquals: { "kms:ViaService": "ssm.eu-west-1.amazonaws.com", "kms:EncryptionContext:PARAMETER_ARN": arns } },
    });
    expect(bySid.DecryptConfigObjectsThroughS3).toEqual({
      Sid: "DecryptConfigObjectsThroughS3",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: "arn:aws:kms:eu-west-1:123456789012:key/*",
      Condition: { StringEquals: { "kms:ViaService": "s3.eu-west-1.amazonaws.com" } },
    });
    // No statement grants ssm:GetParameter* beyond the referenced ARNs, nor kms:Decrypt through SSM beyond them.
    const ssmReads = policy.Statement.filter((s: { Action: string[] }) => s.Action.some((a) => /^ssm:(GetParameter|\*|Get\*)/.test(a)));
    expect(ssmReads.map((s: { Sid: string }) => s.Sid)).toEqual(["ReadReferencedParameters"]);
    expect(Object.keys(bySid)).toEqual([
      "ReadOwnConfigObjects",
      "ListOwnConfigObjects",
      "ReadReferencedParameters",
      "DecryptReferencedParametersWithStackKey",
      "DecryptConfigObjectsThroughS3",
      "SsmAgentCore",
      "SessionManagerChannels",
      "RunCommandMessages",
    ]);
    // AmazonSSMManagedInstanceCore grants ssm:GetParameter on every parameter: not attached.
    const attachments = ofType(run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
      .map((a) => a.inputs.policyArn)
      .sort();
    expect(attachments).toEqual(["arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"]);
    expect(JSON.parse(named(run, "odoo-odoo-2-role").inputs.assumeRolePolicy).Statement).toEqual([
      { Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" },
    ]);
  });

  it("hardens the instance: IMDSv2, encrypted gp3 root, no key pair, no public IP, fixed private IP (NET-1), one-minute EC2 metrics (OBS-8)", () => {
    const instance = named(run, "odoo-odoo-2-instance");
    expect(instance.inputs).toEqual(
      expect.objectContaining({
        ami: "ami-0debian12",
        instanceType: "m6i.xlarge",
        subnetId: "subnet-private-b",
        privateIp: host.privateIp,
        vpcSecurityGroupIds: ["sg-odoo"],
        associatePublicIpAddress: false,
        monitoring: true,
        userDataReplaceOnChange: false,
        metadataOptions: expect.objectContaining({ httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1 }),
        rootBlockDevice: expect.objectContaining({ encrypted: true, volumeType: "gp3" }),
      }),
    );
    expect(instance.inputs.keyName).toBeUndefined();
    expect(instance.ignoreChanges).toEqual(expect.arrayContaining(["ami", "userData"]));
    expect(instance.deleteBeforeReplace).toBe(true);
    expect(instance.inputs.tags).toEqual(
      expect.objectContaining({ [TAG_KEYS.host]: "odoo-2", [TAG_KEYS.role]: "odoo", Name: "odoo-stack-test-odoo-2" }),
    );
    expect(instance.inputs.userData).not.toContain("{{ssm:");
  });

  it("registers the private DNS name the certificates carry (TLS-3)", () => {
    const record = named(run, "odoo-odoo-2-dns");
    expect(record.inputs).toEqual(expect.objectContaining({ zoneId: "ZPRIVATE", name: host.fqdn, type: "A", records: [host.privateIp] }));
  });

  it("parents every resource to the Host and prefixes its name", () => {
    const component = run.resources.find((r) => r.type === "odoo-stack:host:Host");
    for (const r of run.resources.filter((x) => x.custom && !x.name.startsWith("param"))) {
      expect([r.name.startsWith("odoo-odoo-2-"), r.parent]).toEqual([true, component?.urn]);
    }
  });

  it("applies a changed file in place: same instance inputs, new object content, new association command (principle 6)", async () => {
    const changed = await runHost(files("db_password  = "));
    const instanceInputs = (r: MockRun) => named(r, "odoo-odoo-2-instance").inputs;
    expect(instanceInputs(changed)).toEqual(instanceInputs(run));
    const command = (r: MockRun) => named(r, "odoo-odoo-2-apply").inputs.parameters.commands;
    expect(command(changed)).not.toBe(command(run));
    const conf = (r: MockRun) =>
      ofType(r, "aws:s3/bucketObjectv2:BucketObjectv2").find((o) => o.inputs.key === configObjectKey(host.id, "/etc/odoo/odoo.conf"))
        ?.inputs.content;
    expect(conf(changed)).not.toBe(conf(run));
  }, 60_000);

  it.each([
    [
      "a parameter the stack does not create",
      [{ path: "/etc/x.conf", content: "k = {{ssm:/odoo-stack/test/nope}}\n", mode: "0600", owner: "root", group: "root" }],
      /\/etc\/x\.conf references SSM parameter \/odoo-stack\/test\/nope, which the stack does not create/,
    ],
    [
      "a relative path",
      [{ path: "etc/x.conf", content: "x\n", mode: "0600", owner: "root", group: "root" }],
      /"etc\/x\.conf" must be an absolute path/,
    ],
    [
      "a secret in a world-readable file",
      [{ path: "/etc/x.conf", content: `k = ${secretRef(model.parameters.odooDbPassword)}\n`, mode: "0644", owner: "root", group: "root" }],
      /must not be readable by others/,
    ],
  ])(
    "refuses files with %s before creating anything",
    async (_why, badFiles, message) => {
      let error: unknown;
      const r = await runUnderMocks(() => {
        try {
          new Host("bad", {
            model,
            aws: facts,
            network,
            configBucket: { bucketName: BUCKET, arn: BUCKET_ARN },
            stackKeyArn: KEY_ARN,
            parameters: {},
            host,
            files: badFiles,
            instanceType: "m6i.xlarge",
            subnetId: "s",
            securityGroupId: "g",
          });
        } catch (err) {
          error = err;
        }
      });
      expect(String(error)).toMatch(message);
      expect(r.resources.filter((x) => x.custom)).toEqual([]);
    },
    60_000,
  );

  it("refuses more user tags than an S3 object can carry, at config time, naming the key and the limit", () => {
    const userTags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, "v"]));
    let error: unknown;
    try {
      settingsWith({ tags: userTags(6) });
    } catch (err) {
      error = err;
    }
    expect((error as Error)?.name).toBe("ConfigError");
    expect((error as Error).message).toMatch(/odoo-stack:tags = .*: must hold at most 5 tags: S3 objects allow 10/);
    expect(() => settingsWith({ tags: userTags(5) })).not.toThrow();
  });

  it("keeps config objects within S3's 10 tags with the most user tags the config allows", async () => {
    const crowded = modelWith({ tags: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`t${i}`, "v"])) });
    const r = await runUnderMocks(() => {
      new Host("crowded", {
        model: crowded,
        aws: facts,
        network,
        configBucket: { bucketName: BUCKET, arn: BUCKET_ARN },
        stackKeyArn: KEY_ARN,
        parameters: {},
        host: crowded.hosts.proxy,
        files: files().slice(2),
        instanceType: "t3.small",
        subnetId: "s",
        securityGroupId: "g",
      });
    });
    const objects = ofType(r, "aws:s3/bucketObjectv2:BucketObjectv2");
    expect(objects).toHaveLength(2);
    for (const o of objects) expect([o.name, Object.keys(o.inputs.tags).length]).toEqual([o.name, 10]);
  }, 60_000);
});

// The Host's file checks as a pure function: no mocks, no resources (issue 17).
describe("checkHostFiles", () => {
  const stack = [model.parameters.odooDbPassword, model.parameters.odooAdminPassword, model.parameters.hostKey(host.id)];

  it("accepts files whose parameters the stack creates", () => {
    expect(checkHostFiles(host.id, files(), stack)).toEqual([]);
  });

  it("names each file that references a parameter nobody creates, once per parameter", () => {
    const missing = model.parameters.odooAdminPassword;
    const extra: HostFile = {
      path: "/etc/odoo/second.conf",
      content: `a = ${secretRef(missing)}\n`,
      mode: "0600",
      owner: "odoo",
      group: "odoo",
    };
    expect(
      checkHostFiles(
        host.id,
        [...files(), extra],
        stack.filter((p) => p !== missing),
      ),
    ).toEqual([`/etc/odoo/odoo.conf, /etc/odoo/second.conf reference SSM parameter ${missing}, which the stack does not create`]);
    expect(checkHostFiles(host.id, [...files(), extra], stack.filter((p) => p !== missing).concat(missing))).toEqual([]);
  });

  it("reports the manifest's problems and colliding resource names together", () => {
    const problems = checkHostFiles(
      host.id,
      [
        ...files(),
        { path: "/etc/a b", content: "x\n", mode: "0644", owner: "root", group: "root" },
        { path: "/etc/a-b", content: "x\n", mode: "644", owner: "root", group: "root" },
      ],
      stack,
    );
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(
      /^manifest of host odoo-2: 2 problems:\n {2}1\. "\/etc\/a b" must be an absolute path.*\n {2}2\. "\/etc\/a-b": mode "644" must be 4 octal digits/,
    );
    expect(problems[1]).toBe("files /etc/a b and /etc/a-b map to the same resource name; rename one");
  });
});
