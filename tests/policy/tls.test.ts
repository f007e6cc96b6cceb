// TLS (TLS-1 … TLS-3): each hop's file, and the certificates joined with the names clients dial.
import {
  certificateSansMatchClients,
  odooDbSslmodeVerified,
  odooDbSslmodeVerifyFull,
  pgbouncerClientTlsRequired,
  pgbouncerServerTlsVerified,
  pgHbaHostsslOnly,
  postgresSslOn,
} from "../../policy/tls";
import { setLine, validateResource, validateStack, withContent, withProp, type FakeResource } from "./fakes";
import { replaced, stackFixture } from "./stack-fixture";

const fixture = stackFixture();
const odooConf = fixture.file("odoo-1", "/etc/odoo/odoo.conf");
const ini = fixture.file("pgbouncer", "/etc/pgbouncer/pgbouncer.ini");
const pgConf = fixture.file("postgres", "/etc/postgresql/15/main/conf.d/90-odoo-stack.conf");
const hba = fixture.file("postgres", "/etc/postgresql/15/main/pg_hba.conf");
const odooLabel = `odoo.conf of odoo-1 (${odooConf.name})`;
const iniLabel = `pgbouncer.ini of pgbouncer (${ini.name})`;
const pgLabel = `90-odoo-stack.conf of postgres (${pgConf.name})`;

describe("every hop passes as rendered", () => {
  it.each([
    [odooDbSslmodeVerified, odooConf],
    [odooDbSslmodeVerifyFull, odooConf],
    [pgbouncerClientTlsRequired, ini],
    [pgbouncerServerTlsVerified, ini],
    [postgresSslOn, pgConf],
    [pgHbaHostsslOnly, hba],
  ])("%#: $name", async (policy, file) => {
    expect(await validateResource(policy, file)).toEqual([]);
  });
});

describe("odoo-db-sslmode-verified (TLS-1, TLS-2) and its advisory verify-full companion", () => {
  it.each(["disable", "require", "prefer"])("rejects db_sslmode = %s", async (mode) => {
    const r = withContent(odooConf, setLine("db_sslmode", `db_sslmode = ${mode}`));
    expect(await validateResource(odooDbSslmodeVerified, r)).toEqual([
      `${odooLabel} must set db_sslmode = verify-full (or verify-ca); it is "${mode}" (TLS-1, TLS-2).`,
    ]);
    expect(await validateResource(odooDbSslmodeVerifyFull, r)).toEqual([]);
  });

  it("accepts verify-ca as mandatory-compliant, with an advisory towards verify-full", async () => {
    const r = withContent(odooConf, setLine("db_sslmode", "db_sslmode = verify-ca"));
    expect(await validateResource(odooDbSslmodeVerified, r)).toEqual([]);
    expect(await validateResource(odooDbSslmodeVerifyFull, r)).toEqual([
      `${odooLabel} should set db_sslmode = verify-full: verify-ca accepts any certificate of the CA, whatever host presents it (TLS-2).`,
    ]);
    expect(odooDbSslmodeVerifyFull.enforcementLevel).toBe("advisory");
  });

  it("rejects an absent db_sslmode", async () => {
    expect(await validateResource(odooDbSslmodeVerified, withContent(odooConf, setLine("db_sslmode", undefined)))).toEqual([
      `${odooLabel} must set db_sslmode = verify-full (or verify-ca); it is absent (libpq's prefer: unverified, may be plain) (TLS-1, TLS-2).`,
    ]);
  });
});

describe("PgBouncer's TLS (TLS-1, TLS-2)", () => {
  it("rejects plain clients and a missing certificate", async () => {
    expect(
      await validateResource(pgbouncerClientTlsRequired, withContent(ini, setLine("client_tls_sslmode", "client_tls_sslmode = allow"))),
    ).toEqual([`${iniLabel} must set client_tls_sslmode = require (or verify-ca/verify-full); it is "allow" (TLS-1).`]);
    expect(await validateResource(pgbouncerClientTlsRequired, withContent(ini, setLine("client_tls_cert_file", undefined)))).toEqual([
      `${iniLabel} must set client_tls_cert_file to the host's TLS certificate (TLS-1).`,
    ]);
  });

  it("rejects an unverified server connection and a missing CA", async () => {
    expect(
      await validateResource(pgbouncerServerTlsVerified, withContent(ini, setLine("server_tls_sslmode", "server_tls_sslmode = require"))),
    ).toEqual([`${iniLabel} must set server_tls_sslmode = verify-full (or verify-ca); it is "require" (TLS-1, TLS-2).`]);
    expect(await validateResource(pgbouncerServerTlsVerified, withContent(ini, setLine("server_tls_ca_file", undefined)))).toEqual([
      `${iniLabel} must set server_tls_ca_file to the internal CA, or PostgreSQL's certificate cannot be verified (TLS-1, TLS-2).`,
    ]);
  });
});

describe("PostgreSQL's TLS (TLS-1)", () => {
  it("rejects ssl = off and a missing certificate", async () => {
    expect(await validateResource(postgresSslOn, withContent(pgConf, setLine("ssl", "ssl = off")))).toEqual([
      `${pgLabel} must set ssl = on; it is "off" (TLS-1).`,
    ]);
    expect(await validateResource(postgresSslOn, withContent(pgConf, setLine("ssl_cert_file", undefined)))).toEqual([
      `${pgLabel} must set ssl_cert_file to the host's certificate files issued by the internal CA (TLS-1, TLS-3).`,
    ]);
  });

  it("rejects a plain `host` record that accepts logins", async () => {
    const r = withContent(hba, (t) => t.replace(/^hostssl(\s+erp)/m, "host   $1"));
    expect(await validateResource(pgHbaHostsslOnly, r)).toEqual([
      `pg_hba.conf of postgres (${hba.name}) must use hostssl, not host, for \`erp,postgres odoo,odoo_migrate 10.40.128.11/32\` on line 8: it accepts unencrypted connections (TLS-1).`,
    ]);
  });
});

describe("certificate-sans-match-clients (TLS-3)", () => {
  const policy = certificateSansMatchClients;
  const csr = (host: string) => fixture.get(`internal-ca-${host}-csr`);

  it("passes the stack: every name dialled is a SAN of the host it leads to", async () => {
    expect(await validateStack(policy, fixture.resources)).toEqual([]);
  });

  it("rejects PgBouncer's certificate without the name Odoo dials", async () => {
    const r = withProp(csr("pgbouncer"), "dnsNames", ["bouncer.odoo.internal"]);
    expect(await validateStack(policy, replaced(fixture.resources, r))).toEqual([
      {
        message: `Certificate request (internal-ca-pgbouncer-csr) of host pgbouncer must list pgbouncer.odoo.internal as a SAN: ${odooLabel} dials pgbouncer.odoo.internal (db_host) with verify-full, and the SANs are bouncer.odoo.internal, 10.40.128.11 (TLS-3).`,
        urn: expect.stringContaining("internal-ca-pgbouncer-csr"),
      },
    ]);
  });

  it("rejects PostgreSQL's certificate without the name PgBouncer dials", async () => {
    const r = withProp(csr("postgres"), "dnsNames", []);
    expect((await validateStack(policy, replaced(fixture.resources, r))).map((v) => v.message)).toEqual([
      `Certificate request (internal-ca-postgres-csr) of host postgres must list postgres.odoo.internal as a SAN: ${iniLabel} dials postgres.odoo.internal ([databases] erp host) with verify-full, and the SANs are 10.40.128.12 (TLS-3).`,
      `Certificate request (internal-ca-postgres-csr) of host postgres must list postgres.odoo.internal as a SAN: ${iniLabel} dials postgres.odoo.internal ([databases] postgres host) with verify-full, and the SANs are 10.40.128.12 (TLS-3).`,
    ]);
  });

  it("rejects a name that leads to no host of the stack, and a host without a certificate", async () => {
    const unknownName = withContent(odooConf, setLine("db_host", "db_host = db.example.net"));
    expect((await validateStack(policy, replaced(fixture.resources, unknownName))).map((v) => v.message)).toEqual([
      `${odooLabel} dials db.example.net (db_host), which must be a name of a host of the stack (a Route 53 record of its address) so its certificate can be checked (TLS-3).`,
    ]);
    const noCert = fixture.resources.filter((r) => !r.name.startsWith("internal-ca-pgbouncer-"));
    expect((await validateStack(policy, noCert)).map((v) => v.message)).toEqual([
      `EC2 instance (pgbouncer-host-instance) of host pgbouncer must have a certificate of the internal CA: ${odooLabel} dials it as pgbouncer.odoo.internal (db_host) with verify-full, and no certificate request leads to it (TLS-3).`,
    ]);
  });

  it("finds a host's certificate by its address when no parameter leads to it", async () => {
    const detached: FakeResource[] = fixture.resources.map((r) =>
      r.name === "internal-ca-pgbouncer-cert-parameter" ? { ...r, propertyDependencies: {} } : r,
    );
    expect(await validateStack(policy, detached)).toEqual([]);
  });
});
