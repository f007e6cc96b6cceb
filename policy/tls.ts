// TLS where it applies: CHECKLIST §7 (TLS-1 … TLS-3). Odoo → PgBouncer → PostgreSQL cross the
// VPC, which the stack treats as untrusted (DESIGN principle 8): each hop is TLS, verified
// against the internal CA, to a certificate whose SANs carry the name the client dials.
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { parseOdooConf, parsePgbouncerIni, parsePgBool, parsePgHba, parsePostgresConf } from "./lib/parse";
import {
  certRequestsOf,
  fileKindOf,
  fileLabel,
  hostByName,
  hostViews,
  rdsInstanceByReference,
  renderedFiles,
  sanCovers,
  sansOf,
  UnknownValues,
  validateRenderedFile,
  type RenderedFile,
  type StackResourceView,
} from "./lib/resources";

const VERIFYING_MODES = ["verify-ca", "verify-full"];

/**
 * TLS-1, TLS-2: Odoo's connection to PgBouncer is encrypted AND verified. verify-ca proves the
 * server holds a certificate of the internal CA; verify-full also proves it is the host Odoo
 * meant (see odoo-db-sslmode-verify-full). Anything weaker can be intercepted inside the VPC.
 */
export const odooDbSslmodeVerified: ResourceValidationPolicy = {
  name: "odoo-db-sslmode-verified",
  description:
    "Checks whether odoo.conf sets db_sslmode to verify-ca or verify-full, so Odoo's database connection is encrypted and the server verified (TLS-1, TLS-2).",
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    const mode = parseOdooConf(file.content).options.get("db_sslmode");
    if (mode === undefined || !VERIFYING_MODES.includes(mode)) {
      report(
        `${fileLabel(file)} must set db_sslmode = verify-full (or verify-ca); it is ${mode === undefined ? "absent (libpq's prefer: unverified, may be plain)" : JSON.stringify(mode)} (TLS-1, TLS-2).`,
      );
    }
  }),
};

/** TLS-2's "ideally verify-full": advisory, since verify-ca still authenticates the CA. */
export const odooDbSslmodeVerifyFull: ResourceValidationPolicy = {
  name: "odoo-db-sslmode-verify-full",
  description:
    "Checks whether odoo.conf's db_sslmode is verify-full rather than verify-ca, so the certificate's name is checked too (TLS-2).",
  enforcementLevel: "advisory",
  validateResource: validateRenderedFile("odoo.conf", (file, report) => {
    if (parseOdooConf(file.content).options.get("db_sslmode") === "verify-ca") {
      report(
        `${fileLabel(file)} should set db_sslmode = verify-full: verify-ca accepts any certificate of the CA, whatever host presents it (TLS-2).`,
      );
    }
  }),
};

const CLIENT_TLS_MODES = ["require", "verify-ca", "verify-full"];

/** TLS-1 at PgBouncer's front: clients must use TLS, with the host's key and certificate. */
export const pgbouncerClientTlsRequired: ResourceValidationPolicy = {
  name: "pgbouncer-client-tls-required",
  description:
    "Checks whether pgbouncer.ini requires TLS from clients (client_tls_sslmode require or stricter) with client_tls_key_file and client_tls_cert_file set (TLS-1).",
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const s = parsePgbouncerIni(file.content).settings;
    const mode = s.get("client_tls_sslmode");
    if (mode === undefined || !CLIENT_TLS_MODES.includes(mode.toLowerCase())) {
      report(
        `${fileLabel(file)} must set client_tls_sslmode = require (or verify-ca/verify-full); it is ${mode === undefined ? "absent (disable)" : JSON.stringify(mode)} (TLS-1).`,
      );
    }
    for (const key of ["client_tls_key_file", "client_tls_cert_file"]) {
      if (!s.get(key))
        report(`${fileLabel(file)} must set ${key} to the host's TLS ${key.includes("key") ? "key" : "certificate"} (TLS-1).`);
    }
  }),
};

/** TLS-1 at PgBouncer's back: connections to PostgreSQL are TLS, verified against the CA. */
export const pgbouncerServerTlsVerified: ResourceValidationPolicy = {
  name: "pgbouncer-server-tls-verified",
  description:
    "Checks whether pgbouncer.ini connects to PostgreSQL with server_tls_sslmode verify-full (or verify-ca) and a server_tls_ca_file (TLS-1, TLS-2).",
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const s = parsePgbouncerIni(file.content).settings;
    const mode = s.get("server_tls_sslmode");
    if (mode === undefined || !VERIFYING_MODES.includes(mode.toLowerCase())) {
      report(
        `${fileLabel(file)} must set server_tls_sslmode = verify-full (or verify-ca); it is ${mode === undefined ? "absent (prefer: unverified)" : JSON.stringify(mode)} (TLS-1, TLS-2).`,
      );
    }
    if (!s.get("server_tls_ca_file"))
      report(
        `${fileLabel(file)} must set server_tls_ca_file to the internal CA, or PostgreSQL's certificate cannot be verified (TLS-1, TLS-2).`,
      );
  }),
};

/** TLS-1 at PostgreSQL: TLS on, with the host's own key and certificate (not Debian's snakeoil). */
export const postgresSslOn: ResourceValidationPolicy = {
  name: "postgres-ssl-on",
  description: "Checks whether postgresql.conf sets ssl = on with ssl_cert_file and ssl_key_file (TLS-1).",
  validateResource: validateRenderedFile("postgresql.conf", (file, report) => {
    const conf = parsePostgresConf(file.content);
    if (parsePgBool(conf.get("ssl")) !== true) {
      report(`${fileLabel(file)} must set ssl = on; it is ${conf.has("ssl") ? JSON.stringify(conf.get("ssl")) : "absent"} (TLS-1).`);
    }
    for (const key of ["ssl_cert_file", "ssl_key_file"]) {
      if (!conf.get(key))
        report(`${fileLabel(file)} must set ${key} to the host's certificate files issued by the internal CA (TLS-1, TLS-3).`);
    }
  }),
};

/** TLS-1: every network record of pg_hba.conf is hostssl (a plain `host` record accepts unencrypted logins). */
export const pgHbaHostsslOnly: ResourceValidationPolicy = {
  name: "pg-hba-hostssl-only",
  description:
    "Checks whether pg_hba.conf accepts network connections only over TLS (hostssl records; host/hostnossl only to reject) (TLS-1).",
  validateResource: validateRenderedFile("pg_hba.conf", (file, report) => {
    for (const r of parsePgHba(file.content)) {
      if ((r.type === "host" || r.type === "hostnossl") && r.method !== "reject") {
        report(
          `${fileLabel(file)} must use hostssl, not ${r.type}, for \`${r.database} ${r.user} ${r.address ?? ""}\` on line ${r.line}: it accepts unencrypted connections (TLS-1).`,
        );
      }
    }
  }),
};

/** Who dials whom, by name: the client's file, the name it uses, and what the name should lead to. */
interface Dial {
  readonly client: RenderedFile;
  readonly setting: string;
  readonly name: string;
}

function dialsOf(files: readonly RenderedFile[]): Dial[] {
  const dials: Dial[] = [];
  for (const f of files) {
    const kind = fileKindOf(f.path);
    if (kind === "odoo.conf") {
      const host = parseOdooConf(f.content).options.get("db_host");
      if (host) dials.push({ client: f, setting: "db_host", name: host });
    } else if (kind === "pgbouncer.ini") {
      for (const d of parsePgbouncerIni(f.content).databases) {
        const host = d.params.get("host");
        // A host starting with "/" is a Unix socket: no TLS, no certificate.
        if (host && !host.startsWith("/")) dials.push({ client: f, setting: `[databases] ${d.name} host`, name: host });
      }
    }
  }
  return dials;
}

/**
 * TLS-3: verify-full checks the name the client dials against the server certificate's SANs.
 * For every name a client uses (odoo.conf db_host, pgbouncer.ini [databases] host=), the host
 * it leads to (Route 53 record → instance address) presents a certificate whose request lists
 * that name. A name that leads to no host of the stack cannot be checked and is reported.
 */
export const certificateSansMatchClients: StackValidationPolicy = {
  name: "certificate-sans-match-clients",
  description:
    "Checks whether the certificate of every host a client connects to carries, as a SAN, the name the client uses (odoo.conf db_host, pgbouncer.ini host=) (TLS-3).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const hosts = hostViews(resources, unknown);
    if (hosts.length === 0) return unknown.finish(); // not this stack's shape: nothing to join
    for (const dial of dialsOf(renderedFiles(resources, unknown))) {
      unknown.run(() => {
        const subject = `${fileLabel(dial.client)} dials ${dial.name} (${dial.setting}), which`;
        const server = hostByName(hosts, dial.name);
        // PostgreSQL on RDS: its endpoint, named through the parameter that holds its address,
        // carries RDS's certificate for exactly that address (issue 8).
        if (!server && rdsInstanceByReference(resources, dial.name) !== undefined) return;
        if (!server) {
          reportViolation(
            `${subject} must be a name of a host of the stack (a Route 53 record of its address) so its certificate can be checked (TLS-3).`,
            dial.client.resource.urn,
          );
          return;
        }
        const requests = certRequestsOf(resources, server);
        if (requests.length === 0) {
          reportViolation(
            `EC2 instance (${server.instance.name}) of host ${server.id} must have a certificate of the internal CA: ${fileLabel(dial.client)} dials it as ${dial.name} (${dial.setting}) with verify-full, and no certificate request leads to it (TLS-3).`,
            server.instance.urn,
          );
          return;
        }
        for (const request of requests) {
          const sans = sansOf(request);
          if (!sanCovers(sans, dial.name)) {
            reportViolation(
              `Certificate request (${request.name}) of host ${server.id} must list ${dial.name} as a SAN: ${subject.replace(/, which$/, "")} with verify-full, and the SANs are ${sans.join(", ") || "none"} (TLS-3).`,
              request.urn,
            );
          }
        }
      });
    }
    unknown.finish();
  },
};

export const policies: Policies = [
  odooDbSslmodeVerified,
  odooDbSslmodeVerifyFull,
  pgbouncerClientTlsRequired,
  pgbouncerServerTlsVerified,
  postgresSslOn,
  pgHbaHostsslOnly,
  certificateSansMatchClients,
];
