// PgBouncer on its own host between Odoo and PostgreSQL: it holds SCRAM verifiers only (no
// plaintext password, principle 5) and reloads a changed pgbouncer.ini or userlist.txt without
// dropping clients (AUTH-4, principle 6).
import * as pulumi from "@pulumi/pulumi";
import { PORTS } from "../lib/ports";
import { hostFiles } from "../templates/hosts";
import { Host, type TierArgs } from "./host";

export type PgBouncerArgs = TierArgs;

export class PgBouncer extends pulumi.ComponentResource {
  /** Private DNS name Odoo connects to and verifies (TLS-2, TLS-3). */
  readonly endpoint: string;
  readonly port: number;
  readonly securityGroupId: pulumi.Output<string>;
  readonly hostId: string;
  readonly instanceId: pulumi.Output<string>;

  constructor(name: string, args: PgBouncerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:pgbouncer:PgBouncer", name, {}, opts);
    const { model } = args;
    const host = model.hosts.pgbouncer;
    const server = new Host(
      `${name}-host`,
      {
        ...args,
        host,
        files: hostFiles(model, host),
        instanceType: model.settings.instanceTypes.pgbouncer,
        subnetId: args.network.privateSubnetIds[host.subnetIndex],
        securityGroupId: args.network.securityGroupIds.pgbouncer,
        // RDS: verify-full needs RDS's regional CA bundle on the host (issue 8).
      },
      { parent: this },
    );

    this.endpoint = host.fqdn;
    this.port = PORTS.pgbouncer.port;
    this.securityGroupId = pulumi.output(args.network.securityGroupIds.pgbouncer);
    this.hostId = host.id;
    this.instanceId = server.instanceId;
    this.registerOutputs({ endpoint: this.endpoint, port: this.port, securityGroupId: this.securityGroupId, instanceId: this.instanceId });
  }
}
