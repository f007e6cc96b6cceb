// The stack's own KMS key (issue 12 item 8): every SecureString parameter of the stack is
// encrypted with it instead of the account's aws/ssm key. aws/ssm's key policy lets any principal
// of the account decrypt through SSM, so with it the only gate was ssm:GetParameter, which
// AmazonSSMManagedInstanceCore grants on every parameter: the internet-facing proxy could read
// the database master password. With this key, the key policy delegates to IAM (no principal is
// named in it), and each host role may decrypt only through SSM and only the parameters its own
// files reference (components/host.ts hostPolicyDocument, kms:EncryptionContext:PARAMETER_ARN).
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsFacts } from "../lib/aws-specs";
import type { StackModel } from "../lib/model";
import { resourceTags } from "./tags";

/** AWS's default for a scheduled key deletion, and its maximum: a month to notice a mistake. */
export const STACK_KEY_DELETION_WINDOW_DAYS = 30;

/** The alias operators name when they create parameters the stack reads (`--key-id`). */
export const stackKeyAlias = (model: Pick<StackModel, "project" | "stack">): string => `alias/${model.project}-${model.stack}`;

/**
 * The key policy: the account's IAM policies decide who may use the key (AWS's default key
 * policy statement), so grants stay in the roles where the plan shows them. Without this
 * statement nobody, the account root included, could manage the key.
 * https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
 */
export function stackKeyPolicy(facts: Pick<AwsFacts, "partition" | "accountId">): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "EnableIamPolicies",
        Effect: "Allow",
        Principal: { AWS: `arn:${facts.partition}:iam::${facts.accountId}:root` },
        Action: "kms:*",
        Resource: "*",
      },
    ],
  });
}

export interface StackKeyArgs {
  readonly model: StackModel;
  readonly aws: Pick<AwsFacts, "partition" | "accountId">;
}

export class StackKey extends pulumi.ComponentResource {
  readonly keyArn: pulumi.Output<string>;
  readonly keyId: pulumi.Output<string>;
  readonly aliasName: string;

  constructor(name: string, args: StackKeyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:stack-key:StackKey", name, {}, opts);
    const { model } = args;
    const key = new aws.kms.Key(
      `${name}-key`,
      {
        description: `odoo-stack ${model.stack}: encrypts the stack's SecureString parameters (passwords, TLS keys, backup cipher)`,
        keyUsage: "ENCRYPT_DECRYPT",
        customerMasterKeySpec: "SYMMETRIC_DEFAULT",
        // Yearly rotation of the key material; old material stays to decrypt older versions.
        enableKeyRotation: true,
        deletionWindowInDays: STACK_KEY_DELETION_WINDOW_DAYS,
        policy: stackKeyPolicy(args.aws),
        tags: resourceTags(model, "secrets", `${name}-key`),
      },
      { parent: this },
    );
    const alias = new aws.kms.Alias(`${name}-alias`, { name: stackKeyAlias(model), targetKeyId: key.keyId }, { parent: this });
    this.keyArn = key.arn;
    this.keyId = key.keyId;
    this.aliasName = stackKeyAlias(model);
    this.registerOutputs({ keyArn: this.keyArn, aliasName: alias.name });
  }
}
