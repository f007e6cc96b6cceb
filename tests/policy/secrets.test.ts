// Secrets in reach (ODOO-1, AUTH-2; issue 12 item 8): SecureStrings under the stack's own key,
// a key that rotates, and no role allowed to read or decrypt every parameter. The happy paths are
// the host policy the program renders (components/host.ts) and the stack fixture; each case
// changes one thing.
import { hostPolicyDocument } from "../../components/host";
import { kmsKeyRotationEnabled, rolesReadOnlyTheirOwnParameters, ssmSecureParameterCustomerKey } from "../../policy/secrets";
import { validateResource, withProp, type FakeResource } from "./fakes";
import { STACK_KEY_ARN, stackFixture } from "./stack-fixture";
import { modelWith } from "../helpers/fixtures";

const facts = { partition: "aws", region: "eu-west-1", accountId: "123456789012" };
const fixture = stackFixture(modelWith({ postgresEngine: "rds", postgresInstanceType: "r6i.large", backupRetentionDays: 14 }));

const rolePolicy = (policy: unknown): FakeResource => ({
  type: "aws:iam/rolePolicy:RolePolicy",
  name: "proxy-host-policy",
  props: { role: "proxy-host-role", policy: JSON.stringify(policy) },
});
const rendered = JSON.parse(
  hostPolicyDocument({
    facts,
    bucketArn: "arn:aws:s3:::config",
    hostId: "proxy",
    parameterNames: ["/odoo-stack/prod/tls/ca-cert", "/odoo-stack/prod/tls/proxy/key"],
    stackKeyArn: STACK_KEY_ARN,
  }),
);

describe("ssm-secure-parameter-customer-key (ODOO-1, AUTH-2)", () => {
  const policy = ssmSecureParameterCustomerKey;
  const secure = fixture.get("postgres-master-password-parameter");

  it("passes a SecureString under the stack key and ignores String parameters", async () => {
    expect(await validateResource(policy, secure)).toEqual([]);
    expect(await validateResource(policy, withProp(fixture.get("postgres-endpoint-parameter"), "keyId", undefined))).toEqual([]);
  });

  it.each([
    ["no keyId (aws/ssm by default)", undefined, "must set keyId to the stack's KMS key: without it the SecureString uses aws/ssm"],
    ["the aws/ssm alias", "alias/aws/ssm", "must not use the account's aws/ssm key (alias/aws/ssm)"],
    ["the aws/ssm alias ARN", "arn:aws:kms:eu-west-1:123456789012:alias/aws/ssm", "must not use the account's aws/ssm key"],
  ])("rejects %s", async (_why, keyId, message) => {
    const [violation] = await validateResource(policy, withProp(secure, "keyId", keyId));
    expect(violation).toContain(`SSM parameter (postgres-master-password-parameter) ${message}`);
    expect(violation).toMatch(/\(ODOO-1, AUTH-2\)\.$/);
  });
});

describe("kms-key-rotation-enabled (ODOO-1, AUTH-2)", () => {
  const key = fixture.get("stack-key-key");

  it("passes the stack key and rejects it without rotation", async () => {
    expect(await validateResource(kmsKeyRotationEnabled, key)).toEqual([]);
    expect(await validateResource(kmsKeyRotationEnabled, withProp(key, "enableKeyRotation", false))).toEqual([
      "KMS key (stack-key-key) must rotate its key material (enableKeyRotation = true): it encrypts the stack's passwords and TLS keys (ODOO-1, AUTH-2).",
    ]);
  });
});

describe("roles-read-only-their-own-parameters (ODOO-1, AUTH-2)", () => {
  const policy = rolesReadOnlyTheirOwnParameters;

  it("passes the host policy the program renders", async () => {
    expect(await validateResource(policy, rolePolicy(rendered))).toEqual([]);
  });

  it("rejects AmazonSSMManagedInstanceCore, which reads every parameter, and passes the CloudWatch agent's policy", async () => {
    const attach = (arn: string): FakeResource => ({
      type: "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
      name: "proxy-host-ssm",
      props: { role: "r", policyArn: arn },
    });
    expect(await validateResource(policy, attach("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"))).toEqual([
      "Role policy attachment (proxy-host-ssm) must not attach AmazonSSMManagedInstanceCore: it allows ssm:GetParameter on every parameter, so the host could read every secret of the stack; grant the SSM agent's actions and the parameters the host's files name instead (ODOO-1, AUTH-2).",
    ]);
    expect(await validateResource(policy, attach("arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"))).toEqual([]);
  });

  it.each([
    [
      "ssm:GetParameter* on every parameter",
      { Sid: "Wide", Effect: "Allow", Action: ["ssm:GetParameter*"], Resource: "*" },
      "must not allow ssm:GetParameter on * (Wide): a host reads exactly the parameters its files name",
    ],
    [
      "ssm:Get* on the stack's whole path",
      { Sid: "Path", Effect: "Allow", Action: "ssm:Get*", Resource: "arn:aws:ssm:eu-west-1:123456789012:parameter/odoo-stack/prod/*" },
      "must not allow ssm:GetParameter on arn:aws:ssm:eu-west-1:123456789012:parameter/odoo-stack/prod/*",
    ],
    [
      "kms:Decrypt through SSM on every key",
      {
        Sid: "Old",
        Effect: "Allow",
        Action: ["kms:Decrypt"],
        Resource: "arn:aws:kms:eu-west-1:123456789012:key/*",
        Condition: { StringEquals: { "kms:ViaService": ["s3.eu-west-1.amazonaws.com", "ssm.eu-west-1.amazonaws.com"] } },
      },
      "must not allow kms:Decrypt through SSM on arn:aws:kms:eu-west-1:123456789012:key/* without a kms:EncryptionContext:PARAMETER_ARN condition (Old)",
    ],
    [
      "kms:Decrypt on the stack key without a condition",
      { Effect: "Allow", Action: "kms:*", Resource: STACK_KEY_ARN },
      `must not allow kms:Decrypt on ${STACK_KEY_ARN} without a kms:EncryptionContext:PARAMETER_ARN condition`,
    ],
  ])("rejects %s", async (_why, statement, message) => {
    const doc = { ...rendered, Statement: [...rendered.Statement, statement] };
    expect(await validateResource(policy, rolePolicy(doc))).toEqual([
      expect.stringContaining(`Role policy (proxy-host-policy) ${message}`),
    ]);
  });
});
