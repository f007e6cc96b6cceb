// Where backups go: a private bucket (pgBackRest repository and the Odoo filestore). Jobs
// that fill and verify it (BACKUP-1, BACKUP-2) come with the backup issue; this component
// owns the bucket and the outputs those jobs need.
import * as pulumi from "@pulumi/pulumi";
import type { StackModel } from "../lib/model";
import { PrivateBucket } from "./private-bucket";

export interface BackupsArgs {
  readonly model: StackModel;
}

export class Backups extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;

  constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:backups:Backups", name, {}, opts);
    const repository = new PrivateBucket(
      `${name}-repository`,
      {
        model: args.model,
        role: "backups",
        // A deleted or overwritten backup stays recoverable for the whole retention window.
        noncurrentVersionExpirationDays: args.model.settings.backupRetentionDays,
      },
      { parent: this },
    );
    this.bucketName = repository.bucketName;
    this.bucketArn = repository.arn;
    this.registerOutputs({ bucketName: this.bucketName, bucketArn: this.bucketArn });
  }
}
