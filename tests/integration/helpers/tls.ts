// An internal CA and host certificates made at test time with the openssl CLI (node's crypto
// cannot issue X.509 certificates). Like production's internal CA (DESIGN principle 8), each
// host certificate carries the host's private DNS name as its SAN (TLS-3) and no IP address:
// clients reach 127.0.0.1 but verify the certificate against the fqdn (TLS-2, verify-full).
import * as fs from "fs";
import * as path from "path";
import { BIN, type Sandbox, type SystemUser } from "./sandbox";

export interface CertificateAuthority {
  readonly certPath: string;
  readonly keyPath: string;
  readonly certPem: string;
}

export interface HostCertificate {
  readonly certPath: string;
  readonly keyPath: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly dnsNames: readonly string[];
}

/** Creates a self-signed CA (ECDSA P-256, 2 days) in `dir`. */
export async function createCertificateAuthority(
  sandbox: Sandbox,
  dir: string,
  commonName = "odoo-stack test internal CA",
): Promise<CertificateAuthority> {
  fs.mkdirSync(dir, { recursive: true });
  const certPath = path.join(dir, "ca.crt");
  const keyPath = path.join(dir, "ca.key");
  await sandbox.runOk(BIN.openssl, [
    "req",
    "-x509",
    "-new",
    "-nodes",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-keyout",
    keyPath,
    "-out",
    certPath,
    "-days",
    "2",
    "-subj",
    `/CN=${commonName}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return { certPath, keyPath, certPem: fs.readFileSync(certPath, "utf8") };
}

/**
 * Issues a server certificate for `dnsNames` (the first is the CN; `ipAddresses` only as a
 * declared fallback, never by default) signed by `ca`, written to
 * `<dir>/<first name>.{crt,key}`; the key is 0600 and owned by `owner` (PostgreSQL refuses a
 * key file that group or others can read).
 */
export async function issueHostCertificate(
  sandbox: Sandbox,
  ca: CertificateAuthority,
  dir: string,
  dnsNames: readonly string[],
  owner?: SystemUser,
  ipAddresses: readonly string[] = [],
): Promise<HostCertificate> {
  if (dnsNames.length === 0) throw new Error("a host certificate needs at least one DNS name");
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, dnsNames[0]);
  const keyPath = `${base}.key`;
  const csrPath = `${base}.csr`;
  const certPath = `${base}.crt`;
  const extPath = `${base}.ext`;
  await sandbox.runOk(BIN.openssl, [
    "req",
    "-new",
    "-nodes",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-keyout",
    keyPath,
    "-out",
    csrPath,
    "-subj",
    `/CN=${dnsNames[0]}`,
  ]);
  fs.writeFileSync(
    extPath,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth,clientAuth",
      `subjectAltName=${[...dnsNames.map((n) => `DNS:${n}`), ...ipAddresses.map((a) => `IP:${a}`)].join(",")}`,
      "",
    ].join("\n"),
  );
  await sandbox.runOk(BIN.openssl, [
    "x509",
    "-req",
    "-in",
    csrPath,
    "-CA",
    ca.certPath,
    "-CAkey",
    ca.keyPath,
    "-CAcreateserial",
    "-out",
    certPath,
    "-days",
    "2",
    "-sha256",
    "-extfile",
    extPath,
  ]);
  fs.chmodSync(keyPath, 0o600);
  fs.chmodSync(certPath, 0o644);
  if (owner) {
    fs.chownSync(keyPath, owner.uid, owner.gid);
    fs.chownSync(certPath, owner.uid, owner.gid);
  }
  return {
    certPath,
    keyPath,
    certPem: fs.readFileSync(certPath, "utf8"),
    keyPem: fs.readFileSync(keyPath, "utf8"),
    dnsNames,
  };
}

/** Copies a PEM file into a daemon's directory with the daemon's ownership. */
export function installPem(source: string, target: string, owner: SystemUser, mode: number): string {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(source, target);
  fs.chmodSync(target, mode);
  fs.chownSync(target, owner.uid, owner.gid);
  return target;
}
