// The stack's generated secrets (DESIGN principle 5): passwords from @pulumi/random, SCRAM
// verifiers derived from them, each stored once as an SSM SecureString (KMS-encrypted) at the
// path lib/model.ts names. Rendered files carry secretRef(path); hosts read the values at apply
// time with a role that may read only the paths their files name. No value leaves this file
// except as a Pulumi secret.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DB_ROLES, type StackModel } from "../lib/model";
import { ROTATABLE_PASSWORD_NAMES, ROTATABLE_PASSWORDS } from "../lib/rotation";
import { SCRAM_SALT_BYTES, scramSha256Verifier } from "../lib/scram";
import { resourceTags, type TagRole } from "./tags";

/**
 * Password length: 40 alphanumerics ≈ 238 bits, above the 32 characters the checklist's
 * "strong" asks for (ODOO-1). No special characters: the values go into odoo.conf, SQL and
 * userlist.txt, and an alphabet that never needs escaping cannot be escaped wrongly.
 */
export const PASSWORD_LENGTH = 40;

export interface SecretsArgs {
  readonly model: StackModel;
  /** The stack's KMS key (StackKey): every SecureString here is encrypted with it, never aws/ssm. */
  readonly kmsKeyArn: pulumi.Input<string>;
}

export class Secrets extends pulumi.ComponentResource {
  /** Every parameter this component writes, by parameter name. Hosts wait for the ones they read. */
  readonly parameters: Readonly<Record<string, aws.ssm.Parameter>>;

  constructor(name: string, args: SecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:secrets:Secrets", name, {}, opts);
    const { model } = args;
    const paths = model.parameters;
    const parameters: Record<string, aws.ssm.Parameter> = {};

    // AUTH-4: a password (and its SCRAM salt) gets a keeper only once the stack sets
    // passwordRotation.<name>: a keeper appearing on an existing resource replaces it, so a stack
    // that never rotated keeps its passwords, and a new date is a new password at `pulumi up`.
    const keepers = (part: string): { keepers?: Record<string, string> } => {
      const rotated = ROTATABLE_PASSWORD_NAMES.find((n) => ROTATABLE_PASSWORDS[n].secret === part || ROTATABLE_PASSWORDS[n].salt === part);
      const date = rotated === undefined ? undefined : model.settings.passwordRotation[rotated];
      return date === undefined ? {} : { keepers: { rotation: date } };
    };
    const password = (part: string) =>
      new random.RandomPassword(`${name}-${part}`, { length: PASSWORD_LENGTH, special: false, ...keepers(part) }, { parent: this });
    const salt = (part: string) =>
      new random.RandomBytes(`${name}-${part}`, { length: SCRAM_SALT_BYTES, ...keepers(part) }, { parent: this });
    const store = (part: string, parameterName: string, role: TagRole, description: string, value: pulumi.Input<string>) => {
      parameters[parameterName] = new aws.ssm.Parameter(
        `${name}-${part}`,
        {
          name: parameterName,
          type: "SecureString",
          // The stack key: only the roles whose files name this parameter may decrypt it (issue 12 item 8).
          keyId: args.kmsKeyArn,
          description,
          // pulumi.secret: the value is encrypted in the state and masked in every diff.
          value: pulumi.secret(value),
          tags: resourceTags(model, role, `${name}-${part}`),
        },
        { parent: this },
      );
    };
    /**
     * SCRAM-SHA-256 verifier of `pw` with `saltBytes`: the same string PostgreSQL stores, so
     * PgBouncer can hold it in userlist.txt instead of the password (AUTH-1, principle 5).
     */
    const verifier = (pw: random.RandomPassword, saltBytes: random.RandomBytes): pulumi.Output<string> =>
      pulumi.secret(pulumi.all([pw.result, saltBytes.base64]).apply(([p, s]) => scramSha256Verifier(p, Buffer.from(s, "base64"))));

    // ODOO-1: Odoo's master password, delivered to odoo.conf at apply time.
    const odooAdmin = password("odoo-admin-password");
    store(
      "odoo-admin-password-parameter",
      paths.odooAdminPassword,
      "odoo",
      "Odoo admin_passwd (database manager master password)",
      odooAdmin.result,
    );

    // The `admin` user of each Odoo database, set by the first install on the cron host.
    const odooAdminUser = password("odoo-admin-user-password");
    store(
      "odoo-admin-user-password-parameter",
      paths.odooAdminUserPassword,
      "odoo",
      "Password of Odoo's admin user, set by the databases' first install",
      odooAdminUser.result,
    );

    // Odoo's database role: the password for Odoo's db_password, its verifier for PostgreSQL
    // (CREATE ROLE ... PASSWORD '<verifier>') and PgBouncer's auth_file (AUTH-2).
    const odooDb = password("odoo-db-password");
    const odooDbSalt = salt("odoo-db-scram-salt");
    store("odoo-db-password-parameter", paths.odooDbPassword, "odoo", `Password of database role ${DB_ROLES.odoo}`, odooDb.result);
    store(
      "odoo-db-scram-verifier-parameter",
      paths.odooDbScramVerifier,
      "pgbouncer",
      `SCRAM-SHA-256 verifier of database role ${DB_ROLES.odoo}`,
      verifier(odooDb, odooDbSalt),
    );

    // PgBouncer's SHOW POOLS / SHOW STATS reader (OBS-1, OBS-2).
    const stats = password("stats-password");
    const statsSalt = salt("stats-scram-salt");
    store("stats-password-parameter", paths.statsPassword, "pgbouncer", `Password of PgBouncer stats user ${DB_ROLES.stats}`, stats.result);
    store(
      "stats-scram-verifier-parameter",
      paths.statsScramVerifier,
      "pgbouncer",
      `SCRAM-SHA-256 verifier of PgBouncer stats user ${DB_ROLES.stats}`,
      verifier(stats, statsSalt),
    );

    // The metrics collector's pg_monitor role: on the database host, or for RDS on the PgBouncer host (OBS-7).
    const monitor = password("monitor-password");
    store("monitor-password-parameter", paths.monitorPassword, "postgres", `Password of database role ${DB_ROLES.monitor}`, monitor.result);

    // pgBackRest's repository encryption passphrase (BACKUP-1).
    const cipher = password("backup-cipher-pass");
    store("backup-cipher-pass-parameter", paths.backupCipherPass, "backups", "pgBackRest repo1-cipher-pass", cipher.result);

    // Outbound mail without an operator-made password parameter: the stack generates the password
    // (for a relay the operator configures with it). ignoreChanges: an operator may overwrite it
    // with the provider's credential (aws ssm put-parameter --overwrite) and `pulumi up` keeps it.
    if (model.settings.mail !== undefined && model.settings.mail.passwordParameter === undefined) {
      const mail = password("mail-password");
      parameters[paths.mailPassword] = new aws.ssm.Parameter(
        `${name}-mail-password-parameter`,
        {
          name: paths.mailPassword,
          type: "SecureString",
          keyId: args.kmsKeyArn,
          description: `SMTP password of ${model.settings.mail.user}@${model.settings.mail.host} (odoo.conf smtp_password)`,
          value: pulumi.secret(mail.result),
          tags: resourceTags(model, "odoo", `${name}-mail-password-parameter`),
        },
        { parent: this, ignoreChanges: ["value"] },
      );
    }

    this.parameters = parameters;
    this.registerOutputs({ parameterNames: Object.keys(parameters).sort() });
  }
}
