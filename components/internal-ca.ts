// TLS inside the VPC (DESIGN principle 8): a private CA and one certificate per host whose SANs
// are the host's private DNS name and address (TLS-3), so Odoo→PgBouncer and
// PgBouncer→PostgreSQL can use verify-full (TLS-2). Certificates are re-issued by `pulumi up`
// once inside their early-renewal window (TLS-4); the new files reach the hosts through the
// config bucket and are applied with a reload. The CA itself is never re-issued in place: a new
// generation is trusted everywhere before it signs anything (lib/internal-ca.ts).
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { internalCaBundle, internalCaGenerations, internalCaResourceName } from "../lib/internal-ca";
import type { HostId, StackModel } from "../lib/model";
import { hostTags, resourceTags } from "./tags";

const HOURS_PER_DAY = 24;

/** Lifetimes in hours, stated once. */
export const CERTIFICATE_LIFETIMES = {
  /**
   * CA: 5 years, never renewed in place (a renewal would reach the hosts one by one and break
   * verify-full between them): the expiry alarm asks for a rotation to the next generation.
   */
  caValidityHours: 5 * 365 * HOURS_PER_DAY,
  caEarlyRenewalHours: 0,
  /** Hosts: 1 year; re-issued in the last 30 days, long before clients see an expired cert. */
  hostValidityHours: 365 * HOURS_PER_DAY,
  hostEarlyRenewalHours: 30 * HOURS_PER_DAY,
} as const;

export interface InternalCaArgs {
  readonly model: StackModel;
  /** The stack's KMS key (StackKey), for the private keys' SecureStrings. */
  readonly kmsKeyArn: pulumi.Input<string>;
  /** Hosts to issue certificates for. Optional. Defaults to every host of the model. */
  readonly hosts?: readonly HostId[];
}

export class InternalCa extends pulumi.ComponentResource {
  /** The trusted CA certificates (public), the issuing one first. */
  readonly caCertPem: pulumi.Output<string>;
  /** Every parameter this component writes, by parameter name. */
  readonly parameters: Readonly<Record<string, aws.ssm.Parameter>>;

  constructor(name: string, args: InternalCaArgs, opts?: pulumi.ComponentResourceOptions) {
    super("odoo-stack:internal-ca:InternalCa", name, {}, opts);
    const { model } = args;
    const hosts = args.hosts ?? model.allHosts;
    const parent = { parent: this };
    const parameters: Record<string, aws.ssm.Parameter> = {};

    // ECDSA P-256: supported by OpenSSL in PostgreSQL 15, PgBouncer 1.18, nginx and libpq.
    const generations = internalCaGenerations(model.settings);
    const cas = new Map(
      [...generations.trusted]
        .sort((a, b) => a - b)
        .map((generation) => {
          const key = new tls.PrivateKey(
            internalCaResourceName(name, generation, "key"),
            { algorithm: "ECDSA", ecdsaCurve: "P256" },
            parent,
          );
          const cert = new tls.SelfSignedCert(
            internalCaResourceName(name, generation, "cert"),
            {
              privateKeyPem: key.privateKeyPem,
              // The generation in the name tells two CAs of one stack apart in a trust store.
              subject: {
                commonName: `${model.project} ${model.stack} internal CA${generation === 1 ? "" : ` ${generation}`}`,
                organization: model.project,
              },
              isCaCertificate: true,
              allowedUses: ["cert_signing", "crl_signing"],
              validityPeriodHours: CERTIFICATE_LIFETIMES.caValidityHours,
              earlyRenewalHours: CERTIFICATE_LIFETIMES.caEarlyRenewalHours,
            },
            parent,
          );
          return [generation, { key, cert }] as const;
        }),
    );
    const issuer = cas.get(generations.issuing)!;
    const trustBundle = pulumi.all(generations.trusted.map((g) => cas.get(g)!.cert.certPem)).apply(internalCaBundle);
    parameters[model.parameters.caCert] = new aws.ssm.Parameter(
      `${name}-ca-cert-parameter`,
      {
        name: model.parameters.caCert,
        type: "String",
        description: "Internal CA certificates (PEM): what every host trusts for verify-full (TLS-2), the issuing one first",
        value: trustBundle,
        tags: resourceTags(model, "tls", `${name}-ca-cert-parameter`),
      },
      parent,
    );

    for (const host of hosts) {
      const part = (p: string) => `${name}-${host.id}-${p}`;
      const key = new tls.PrivateKey(part("key"), { algorithm: "ECDSA", ecdsaCurve: "P256" }, parent);
      const request = new tls.CertRequest(
        part("csr"),
        {
          privateKeyPem: key.privateKeyPem,
          subject: { commonName: host.fqdn, organization: model.project },
          // TLS-3: clients verify the name they connect to (the private zone's fqdn) and, for
          // tools that connect by address, the fixed private address.
          dnsNames: [host.fqdn],
          ipAddresses: [host.privateIp],
        },
        parent,
      );
      const cert = new tls.LocallySignedCert(
        part("cert"),
        {
          certRequestPem: request.certRequestPem,
          caPrivateKeyPem: issuer.key.privateKeyPem,
          caCertPem: issuer.cert.certPem,
          validityPeriodHours: CERTIFICATE_LIFETIMES.hostValidityHours,
          earlyRenewalHours: CERTIFICATE_LIFETIMES.hostEarlyRenewalHours,
          allowedUses: ["digital_signature", "server_auth", "client_auth"],
        },
        parent,
      );
      const certName = model.parameters.hostCert(host.id);
      const keyName = model.parameters.hostKey(host.id);
      parameters[certName] = new aws.ssm.Parameter(
        part("cert-parameter"),
        {
          name: certName,
          type: "String",
          description: `TLS certificate of ${host.fqdn} (PEM), issued by the internal CA`,
          value: cert.certPem,
          tags: hostTags(model, host, part("cert-parameter")),
        },
        parent,
      );
      parameters[keyName] = new aws.ssm.Parameter(
        part("key-parameter"),
        {
          name: keyName,
          type: "SecureString",
          keyId: args.kmsKeyArn,
          description: `TLS private key of ${host.fqdn} (PEM)`,
          value: pulumi.secret(key.privateKeyPem),
          tags: hostTags(model, host, part("key-parameter")),
        },
        parent,
      );
    }

    this.caCertPem = trustBundle;
    this.parameters = parameters;
    this.registerOutputs({ caCertPem: this.caCertPem, parameterNames: Object.keys(parameters).sort() });
  }
}
