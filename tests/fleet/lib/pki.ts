// Certificates for the fleet, made with the openssl CLI: the stack's internal CA and host
// certificates (what @pulumi/tls issues in production, with the plan's SANs), and a separate test
// CA standing in for the public CAs the hosts trust (AWS endpoints, Odoo's archive, Let's
// Encrypt's API and the certificates it issues).
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface Ca {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
}

export interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

const openssl = (args: readonly string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });

export function createCa(dir: string, commonName: string): Ca {
  fs.mkdirSync(dir, { recursive: true });
  const certFile = path.join(dir, "ca.crt");
  const keyFile = path.join(dir, "ca.key");
  openssl([
    "req",
    "-x509",
    "-new",
    "-nodes",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "30",
    "-subj",
    `/CN=${commonName}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  fs.chmodSync(keyFile, 0o600);
  return { certFile, keyFile, certPem: fs.readFileSync(certFile, "utf8") };
}

/** A server certificate for `dnsNames` (and `ipAddresses`), signed by `ca`. */
export function issue(ca: Ca, dir: string, name: string, dnsNames: readonly string[], ipAddresses: readonly string[] = []): Issued {
  fs.mkdirSync(dir, { recursive: true });
  const keyFile = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const certFile = path.join(dir, `${name}.crt`);
  const ext = path.join(dir, `${name}.ext`);
  openssl([
    "req",
    "-new",
    "-nodes",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-keyout",
    keyFile,
    "-out",
    csr,
    "-subj",
    `/CN=${dnsNames[0]}`,
  ]);
  const sans = [...dnsNames.map((d) => `DNS:${d}`), ...ipAddresses.map((i) => `IP:${i}`)].join(",");
  fs.writeFileSync(
    ext,
    `subjectAltName=${sans}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.certFile,
    "-CAkey",
    ca.keyFile,
    "-CAcreateserial",
    "-days",
    "30",
    "-extfile",
    ext,
    "-out",
    certFile,
  ]);
  fs.chmodSync(keyFile, 0o600);
  return { certFile, keyFile, certPem: fs.readFileSync(certFile, "utf8"), keyPem: fs.readFileSync(keyFile, "utf8") };
}
