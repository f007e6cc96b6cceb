// The public edge (DESIGN principle 9): nginx on the only host with a public address, an
// Elastic IP, reachable on 443 alone (NET-2, NET-3). Public TLS comes from Let's Encrypt via
// Route 53 DNS-01 — the proxy may write only the _acme-challenge TXT record of the domain — or
// from a certificate the operator keeps in SSM.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { TlsSettings } from "../lib/config";
import { hostFiles } from "../templates/hosts";
import { Host, type PolicyStatement, type TierArgs } from "./host";
import { hostTags } from "./tags";

export type ReverseProxyArgs = TierArgs;

/** The DNS-01 challenge name for `domain`, normalised as Route 53's condition keys expect. */
export const acmeChallengeName = (domain: string): string => `_acme-challenge.${domain.toLowerCase().replace(/\.$/, "")}`;

/**
 * What an ACME DNS-01 client (certbot's dns-route53 plugin) needs: find the zone, write and
 * remove the challenge TXT record — and only that record, through Route 53's record-set
 * condition keys — and poll the change until it is in sync.
 * https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/specifying-rrset-conditions.html
 */
export function acmeDnsStatements(partition: string, hostedZoneId: string, domains: readonly string[]): PolicyStatement[] {
  return [
    {
      Sid: "AcmeChallengeRecordOnly",
      Effect: "Allow",
      Action: ["route53:ChangeResourceRecordSets"],
      Resource: `arn:${partition}:route53:::hostedzone/${hostedZoneId}`,
      Condition: {
        "ForAllValues:StringEquals": {
          "route53:ChangeResourceRecordSetsNormalizedRecordNames": domains.map(acmeChallengeName),
          "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
          "route53:ChangeResourceRecordSetsActions": ["UPSERT", "DELETE"],
        },
      },
    },
    { Sid: "AcmeWaitForChange", Effect: "Allow", Action: ["route53:GetChange"], Resource: `arn:${partition}:route53:::change/*` },
    // ListHostedZones has no resource-level permissions: "*" is the only valid resource.
    { Sid: "AcmeFindZone", Effect: "Allow", Action: ["route53:ListHostedZones"], Resource: "*" },
  ];
}

/** SSM parameters an imported certificate lives in; none for ACME. */
export const importedTlsParameters = (tls: TlsSettings): string[] =>
  tls.mode === "imported" ? [tls.certificateParameter, tls.privateKeyParameter] : [];

export class ReverseProxy extends pulumi.ComponentResource {
  /** The stack's one public address. */
  readonly publicIp: pulumi.Output<string>;
  readonly url: string;
  readonly hostId: string;
  readonly instanceId: pulumi.Output<string>;
  readonly securityGroupId: pulumi.Output<string>;

  constructor(name: string, args: ReverseProxyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:reverse-proxy:ReverseProxy", name, {}, opts);
    const { model, aws: facts } = args;
    const { settings } = model;
    const host = model.hosts.proxy;
    const tls = settings.tls;

    const server = new Host(
      `${name}-host`,
      {
        ...args,
        host,
        files: hostFiles(model, host),
        instanceType: settings.instanceTypes.proxy,
        // The public subnet, but still no auto-assigned public IP: the Elastic IP below is it.
        subnetId: args.network.publicSubnetIds[host.subnetIndex],
        securityGroupId: args.network.securityGroupIds.proxy,
        externalParameterNames: importedTlsParameters(tls),
        extraPolicyStatements:
          tls.mode === "acme"
            ? acmeDnsStatements(
                facts.partition,
                tls.hostedZoneId,
                settings.sites.map((s) => s.hostname),
              )
            : [],
      },
      { parent: this },
    );

    const eip = new aws.ec2.Eip(`${name}-eip`, { domain: "vpc", tags: hostTags(model, host, `${name}-eip`) }, { parent: this });
    new aws.ec2.EipAssociation(
      `${name}-eip-association`,
      { allocationId: eip.allocationId, instanceId: server.instanceId },
      { parent: this },
    );

    // With ACME the stack knows the public zone, so it also points the domain at the proxy.
    // An imported certificate's zone may live anywhere: the operator points the domain at
    // the `proxyPublicIp` output.
    // One record per database's hostname (issue 16); the first keeps the name it had with one
    // database, so adding a database does not replace the record users already resolve.
    if (tls.mode === "acme") {
      settings.sites.forEach((site, i) => {
        new aws.route53.Record(
          i === 0 ? `${name}-public-dns` : `${name}-public-dns-${site.database}`,
          {
            zoneId: tls.hostedZoneId,
            name: site.hostname,
            type: "A",
            ttl: 300,
            records: [eip.publicIp],
          },
          { parent: this },
        );
      });
    }

    this.publicIp = eip.publicIp;
    this.url = `https://${settings.domain}`;
    this.hostId = host.id;
    this.instanceId = server.instanceId;
    this.securityGroupId = pulumi.output(args.network.securityGroupIds.proxy);
    this.registerOutputs({ publicIp: this.publicIp, url: this.url, instanceId: this.instanceId, securityGroupId: this.securityGroupId });
  }
}
