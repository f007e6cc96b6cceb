// Secrets in reach: who can read the stack's SSM SecureStrings (ODOO-1's admin_passwd, AUTH-2's
// SCRAM verifiers, the database and backup passwords, TLS keys). Issue 12 item 8: with the
// account's aws/ssm key any role allowed ssm:GetParameter can decrypt, and AWS's
// AmazonSSMManagedInstanceCore allows it on every parameter, so every host (the internet-facing
// proxy too) could read every secret. These policies read the IAM and KMS resources themselves.
import type { Policies, ResourceValidationPolicy } from "@pulumi/policy";
import { booleanOf, isRecord } from "./lib/resources";

const SSM_PARAMETER = "aws:ssm/parameter:Parameter";
const KMS_KEY = "aws:kms/key:Key";
const ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy";
const ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment";

/** The account's default SSM key: its key policy lets every principal of the account decrypt through SSM. */
const AWS_SSM_KEY = /^(alias\/aws\/ssm|arn:[^:]+:kms:[^:]*:[^:]*:alias\/aws\/ssm)$/;

/** ODOO-1, AUTH-2: a SecureString names a customer-managed key, never the account's default. */
export const ssmSecureParameterCustomerKey: ResourceValidationPolicy = {
  name: "ssm-secure-parameter-customer-key",
  description:
    "Checks whether every SecureString SSM parameter is encrypted with a customer-managed KMS key (keyId) rather than the account's aws/ssm key, which any role allowed to read the parameter may decrypt (ODOO-1, AUTH-2).",
  validateResource: (args, reportViolation) => {
    if (args.type !== SSM_PARAMETER || args.props.type !== "SecureString") return;
    const keyId = args.props.keyId;
    if (typeof keyId !== "string" || keyId.trim() === "") {
      reportViolation(
        `SSM parameter (${args.name}) must set keyId to the stack's KMS key: without it the SecureString uses aws/ssm, which every role allowed ssm:GetParameter on it can decrypt (ODOO-1, AUTH-2).`,
      );
    } else if (AWS_SSM_KEY.test(keyId.trim())) {
      reportViolation(
        `SSM parameter (${args.name}) must not use the account's aws/ssm key (${keyId}): its key policy lets every principal of the account decrypt through SSM (ODOO-1, AUTH-2).`,
      );
    }
  },
};

/** ODOO-1, AUTH-2: the key protecting the secrets rotates its material. */
export const kmsKeyRotationEnabled: ResourceValidationPolicy = {
  name: "kms-key-rotation-enabled",
  description: "Checks whether every symmetric KMS key of the stack rotates its key material (enableKeyRotation) (ODOO-1, AUTH-2).",
  validateResource: (args, reportViolation) => {
    if (args.type !== KMS_KEY) return;
    const spec = args.props.customerMasterKeySpec ?? args.props.keySpec;
    if (spec !== undefined && spec !== "SYMMETRIC_DEFAULT") return; // KMS rotates only symmetric keys
    if (booleanOf(args.props.enableKeyRotation) !== true) {
      reportViolation(
        `KMS key (${args.name}) must rotate its key material (enableKeyRotation = true): it encrypts the stack's passwords and TLS keys (ODOO-1, AUTH-2).`,
      );
    }
  },
};

/** AWS managed policies that let a role read every SSM parameter. */
const READ_EVERY_PARAMETER =
  /:policy\/(service-role\/)?(AmazonSSMManagedInstanceCore|AmazonSSMReadOnlyAccess|AmazonSSMFullAccess|AmazonEC2RoleforSSM|AdministratorAccess|ReadOnlyAccess|PowerUserAccess)$/;

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);

/** Does an IAM action pattern cover `action` ("ssm:GetParameter", case-insensitive, * and ? wildcards)? */
const covers = (pattern: string, action: string): boolean =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
    "i",
  ).test(action);

/** A parameter resource that names more than exact parameters: "*", or a path with a wildcard. */
const isWildcardParameterResource = (resource: string): boolean =>
  resource === "*" || (/:parameter\//.test(resource) && /[*?]/.test(resource)) || /^arn:[^:]+:ssm:[^:]*:[^:]*:\*$/.test(resource);

/** The problems of one inline policy document, each the tail of a "must not …" message. */
export function parameterReadProblems(document: unknown): string[] {
  if (!isRecord(document)) return [];
  const statements = Array.isArray(document.Statement)
    ? document.Statement.filter(isRecord)
    : isRecord(document.Statement)
      ? [document.Statement]
      : [];
  const problems: string[] = [];
  for (const s of statements) {
    if (s.Effect !== "Allow") continue;
    const actions = list(s.Action);
    const resources = list(s.Resource);
    const sid = typeof s.Sid === "string" ? ` (${s.Sid})` : "";
    if (
      actions.some((a) => covers(a, "ssm:GetParameter") || covers(a, "ssm:GetParameters")) &&
      resources.some(isWildcardParameterResource)
    ) {
      problems.push(
        `allow ssm:GetParameter on ${resources.filter(isWildcardParameterResource).join(", ")}${sid}: a host reads exactly the parameters its files name`,
      );
    }
    if (actions.some((a) => covers(a, "kms:Decrypt"))) {
      const condition = isRecord(s.Condition) ? s.Condition : {};
      const equals = isRecord(condition.StringEquals) ? condition.StringEquals : {};
      const viaService = list(equals["kms:ViaService"]);
      const throughSsm = viaService.length === 0 || viaService.some((v) => v.startsWith("ssm."));
      const perParameter = list(equals["kms:EncryptionContext:PARAMETER_ARN"]).length > 0;
      if (throughSsm && !perParameter) {
        problems.push(
          `allow kms:Decrypt${viaService.length === 0 ? "" : " through SSM"} on ${resources.join(", ")} without a kms:EncryptionContext:PARAMETER_ARN condition${sid}: it decrypts every SecureString the key protects`,
        );
      }
    }
  }
  return problems;
}

/**
 * ODOO-1, AUTH-2: no role of the stack may read or decrypt every parameter. A managed policy
 * that grants ssm:GetParameter on "*" is refused by name; an inline policy by its statements.
 */
export const rolesReadOnlyTheirOwnParameters: ResourceValidationPolicy = {
  name: "roles-read-only-their-own-parameters",
  description:
    "Checks whether an IAM role of the stack is allowed to read or decrypt SSM parameters beyond the ones it names: no AmazonSSMManagedInstanceCore (ssm:GetParameter on every parameter), no wildcard parameter resource, no kms:Decrypt through SSM without a per-parameter encryption-context condition (ODOO-1, AUTH-2).",
  validateResource: (args, reportViolation) => {
    if (args.type === ROLE_POLICY_ATTACHMENT) {
      const arn = String(args.props.policyArn ?? "");
      const m = READ_EVERY_PARAMETER.exec(arn);
      if (m) {
        reportViolation(
          `Role policy attachment (${args.name}) must not attach ${m[2]}: it allows ssm:GetParameter on every parameter, so the host could read every secret of the stack; grant the SSM agent's actions and the parameters the host's files name instead (ODOO-1, AUTH-2).`,
        );
      }
      return;
    }
    if (args.type !== ROLE_POLICY || typeof args.props.policy !== "string") return;
    let document: unknown;
    try {
      document = JSON.parse(args.props.policy);
    } catch {
      return;
    }
    for (const problem of parameterReadProblems(document))
      reportViolation(`Role policy (${args.name}) must not ${problem} (ODOO-1, AUTH-2).`);
  },
};

export const policies: Policies = [ssmSecureParameterCustomerKey, kmsKeyRotationEnabled, rolesReadOnlyTheirOwnParameters];
