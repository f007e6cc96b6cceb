// Secrets and InternalCa: every generated secret lands in SSM as a SecureString at the model's
// path and nowhere in plain text; SCRAM verifiers are PostgreSQL's format for the generated
// password and salt; host certificates carry the private DNS name and address (TLS-3) and
// renew early (TLS-4).
import { InternalCa, CERTIFICATE_LIFETIMES } from "../../components/internal-ca";
import { PASSWORD_LENGTH, Secrets } from "../../components/secrets";
import { TAG_KEYS } from "../../components/tags";
import { parseScramVerifier, scramSha256Verifier } from "../../lib/scram";
import { modelWith } from "../helpers/fixtures";
import { countsByType, named, ofType, runUnderMocks, type MockRun } from "../helpers/component-mocks";

const PARAMETER = "aws:ssm/parameter:Parameter";
const model = modelWith({ odooInstances: 2 });
const KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

let run: MockRun;
beforeAll(async () => {
  run = await runUnderMocks(() => {
    const secrets = new Secrets("secrets", { model, kmsKeyArn: KEY_ARN });
    const ca = new InternalCa("internal-ca", { model, kmsKeyArn: KEY_ARN });
    return { parameterNames: [...Object.keys(secrets.parameters), ...Object.keys(ca.parameters)].sort(), caCertPem: ca.caCertPem };
  });
}, 60_000);

const parameter = (name: string) => {
  const found = ofType(run, PARAMETER).filter((p) => p.inputs.name === name);
  if (found.length !== 1) throw new Error(`expected one parameter ${name}, found ${found.length}`);
  return found[0];
};

describe("Secrets", () => {
  it.each([
    ["odooAdminPassword", model.parameters.odooAdminPassword],
    ["odooDbPassword", model.parameters.odooDbPassword],
    ["odooDbScramVerifier", model.parameters.odooDbScramVerifier],
    ["statsPassword", model.parameters.statsPassword],
    ["statsScramVerifier", model.parameters.statsScramVerifier],
    ["monitorPassword", model.parameters.monitorPassword],
    ["backupCipherPass", model.parameters.backupCipherPass],
  ])("%s is a SecureString at %s whose value is a Pulumi secret (principle 5)", (_key, path) => {
    const p = parameter(path);
    expect(p.inputs.type).toBe("SecureString");
    // Issue 12 item 8: the stack key, never the account's aws/ssm key.
    expect(p.inputs.keyId).toBe(KEY_ARN);
    expect(p.secretInputs.has("value")).toBe(true);
    expect(p.inputs.tags).toEqual(expect.objectContaining({ [TAG_KEYS.stack]: "test", [TAG_KEYS.role]: expect.any(String) }));
  });

  it("generates long alphanumeric passwords: nothing to escape in ini, SQL or userlist (ODOO-1)", () => {
    const passwords = ofType(run, "random:index/randomPassword:RandomPassword");
    expect(passwords).toHaveLength(6);
    for (const p of passwords) {
      expect(p.inputs).toEqual(expect.objectContaining({ length: PASSWORD_LENGTH, special: false }));
      expect(PASSWORD_LENGTH).toBeGreaterThanOrEqual(32);
      expect(p.outputs.result).toMatch(new RegExp(`^[A-Za-z0-9]{${PASSWORD_LENGTH}}$`));
    }
  });

  it.each([
    ["odoo-db", model.parameters.odooDbPassword, model.parameters.odooDbScramVerifier],
    ["stats", model.parameters.statsPassword, model.parameters.statsScramVerifier],
  ])("stores the %s SCRAM verifier of exactly the stored password and its own 16-byte salt", (part, passwordPath, verifierPath) => {
    const password = parameter(passwordPath).inputs.value as string;
    const salt = Buffer.from(named(run, `secrets-${part}-scram-salt`).outputs.base64, "base64");
    expect(salt).toHaveLength(16);
    const stored = parameter(verifierPath).inputs.value as string;
    expect(stored).toBe(scramSha256Verifier(password, salt));
    expect(parseScramVerifier(stored)?.iterations).toBe(4096);
  });

  it("gives each secret its own value", () => {
    const secretPaths = [
      model.parameters.odooAdminPassword,
      model.parameters.odooAdminUserPassword,
      model.parameters.odooDbPassword,
      model.parameters.statsPassword,
      model.parameters.monitorPassword,
      model.parameters.backupCipherPass,
    ];
    expect(new Set(secretPaths.map((p) => parameter(p).inputs.value)).size).toBe(secretPaths.length);
  });
});

describe("InternalCa", () => {
  const hosts = model.allHosts;

  it("issues one key, request and certificate per host, and one CA", () => {
    const counts = countsByType(run);
    expect([
      counts["tls:index/privateKey:PrivateKey"],
      counts["tls:index/selfSignedCert:SelfSignedCert"],
      counts["tls:index/certRequest:CertRequest"],
      counts["tls:index/locallySignedCert:LocallySignedCert"],
      counts[PARAMETER],
    ]).toEqual([hosts.length + 1, 1, hosts.length, hosts.length, 8 + 1 + 2 * hosts.length]);
  });

  it("makes a CA that can sign and nothing else, renewed a year early", () => {
    const ca = named(run, "internal-ca-ca-cert");
    expect(ca.inputs).toEqual(
      expect.objectContaining({
        isCaCertificate: true,
        allowedUses: ["cert_signing", "crl_signing"],
        validityPeriodHours: CERTIFICATE_LIFETIMES.caValidityHours,
        earlyRenewalHours: CERTIFICATE_LIFETIMES.caEarlyRenewalHours,
      }),
    );
    expect(named(run, "internal-ca-ca-key").inputs).toEqual(expect.objectContaining({ algorithm: "ECDSA", ecdsaCurve: "P256" }));
    expect(parameter(model.parameters.caCert).inputs.type).toBe("String");
  });

  it.each(hosts.map((h) => [h.id, h] as const))(
    "%s: SANs are its private name and address (TLS-3); renewed 30 days early (TLS-4)",
    (_id, host) => {
      const csr = named(run, `internal-ca-${host.id}-csr`);
      expect(csr.inputs.dnsNames).toEqual([host.fqdn]);
      expect(csr.inputs.ipAddresses).toEqual([host.privateIp]);
      expect(csr.inputs.subject.commonName).toBe(host.fqdn);
      const cert = named(run, `internal-ca-${host.id}-cert`);
      expect(cert.inputs).toEqual(
        expect.objectContaining({
          validityPeriodHours: 365 * 24,
          earlyRenewalHours: 30 * 24,
          allowedUses: ["digital_signature", "server_auth", "client_auth"],
        }),
      );
      expect(cert.secretInputs.has("caPrivateKeyPem")).toBe(true);
      const certParameter = parameter(model.parameters.hostCert(host.id));
      const keyParameter = parameter(model.parameters.hostKey(host.id));
      expect([certParameter.inputs.type, keyParameter.inputs.type]).toEqual(["String", "SecureString"]);
      expect(keyParameter.secretInputs.has("value")).toBe(true);
      expect(keyParameter.inputs.keyId).toBe(KEY_ARN);
      expect(keyParameter.inputs.tags[TAG_KEYS.host]).toBe(host.id);
    },
  );
});

describe("Secrets and InternalCa together", () => {
  it("never put a generated secret into a plain input or output", () => {
    expect(run.generatedSecrets.length).toBeGreaterThanOrEqual(5 + 2 + model.allHosts.length + 1);
    for (const r of run.resources) {
      for (const { path, value } of r.plainStrings) {
        for (const secret of run.generatedSecrets) {
          if (value.includes(secret))
            throw new Error(`${r.type} ${r.name}.${path} holds a generated secret (${secret.length} characters) in plain text`);
        }
      }
    }
    const outputs = JSON.stringify(run.outputs);
    for (const secret of run.generatedSecrets) expect(outputs.includes(secret)).toBe(false);
  });

  it("parents every resource to its component with the component's name as prefix", () => {
    const components = new Map(run.resources.filter((r) => !r.custom && r.type.startsWith("odoo-stack:")).map((c) => [c.urn, c.name]));
    for (const r of run.resources.filter((x) => x.custom)) {
      const parentName = components.get(r.parent);
      expect(parentName).toBeDefined();
      expect(r.name.startsWith(`${parentName}-`)).toBe(true);
    }
  });
});

// AUTH-4: a rotation is `passwordRotation.<name>: <date>` + `pulumi up`. The keeper is on exactly
// the named password (and its SCRAM salt), so that password alone is regenerated; without the
// setting no resource has keepers, so a stack that never rotated keeps every password.
describe("password keepers from passwordRotation (AUTH-4)", () => {
  let rotated: MockRun;
  beforeAll(async () => {
    const m = modelWith({ passwordRotation: { odoo: "2026-12-01", admin: "2027-01-15" } });
    rotated = await runUnderMocks(() => {
      new Secrets("secrets", { model: m, kmsKeyArn: KEY_ARN });
      return {};
    });
  }, 60_000);

  const keepersByName = (r: MockRun) =>
    Object.fromEntries(
      [...ofType(r, "random:index/randomPassword:RandomPassword"), ...ofType(r, "random:index/randomBytes:RandomBytes")]
        .map((x) => [x.name, x.inputs.keepers ?? null])
        .sort(([a], [b]) => String(a).localeCompare(String(b))),
    );

  it("puts the date on the rotated passwords and the odoo role's salt, and on nothing else", () => {
    expect(keepersByName(rotated)).toEqual({
      "secrets-backup-cipher-pass": null,
      "secrets-monitor-password": null,
      "secrets-odoo-admin-password": { rotation: "2027-01-15" },
      // Odoo's admin user: set once by the databases' first install, not a rotatable password.
      "secrets-odoo-admin-user-password": null,
      "secrets-odoo-db-password": { rotation: "2026-12-01" },
      "secrets-odoo-db-scram-salt": { rotation: "2026-12-01" },
      "secrets-stats-password": null,
      "secrets-stats-scram-salt": null,
    });
  });

  it("gives no resource a keeper when the stack sets no rotation", () => {
    expect(Object.values(keepersByName(run)).every((k) => k === null)).toBe(true);
  });
});

describe("InternalCa generations: a CA rotation that never breaks verify-full (TLS-2, TLS-4)", () => {
  // The mocks' PEMs carry their resource's name, so a PEM says which CA it is.
  const caOf = (pem: string): string =>
    Buffer.from(pem.split("\n").slice(1, -2).join(""), "base64")
      .toString("utf8")
      .replace(/^.*not key material: ([^;]+).*$/s, "$1");
  const phase = async (settings: Record<string, unknown>) => {
    const m = modelWith({ ...settings });
    const r = await runUnderMocks(() => ({ caCertPem: new InternalCa("internal-ca", { model: m, kmsKeyArn: KEY_ARN }).caCertPem }));
    const bundle = String(r.resources.find((x) => x.type === PARAMETER && x.inputs.name === m.parameters.caCert)?.inputs.value);
    const certs = bundle
      .split(/(?<=-----END CERTIFICATE-----\n)/)
      .filter(Boolean)
      .map(caOf);
    const signers = [...new Set(ofType(r, "tls:index/locallySignedCert:LocallySignedCert").map((c) => caOf(String(c.inputs.caCertPem))))];
    const cas = ofType(r, "tls:index/selfSignedCert:SelfSignedCert").map((c) => ({
      name: c.name,
      commonName: c.inputs.subject.commonName,
      earlyRenewalHours: c.inputs.earlyRenewalHours,
    }));
    return { trusted: certs, signers, cas };
  };

  it.each([
    [
      "steady state: generation 1 alone, under the names it always had",
      { internalCaGeneration: 1, internalCaNext: "none" },
      ["internal-ca-ca-cert"],
      ["internal-ca-ca-cert"],
    ],
    [
      "step 1: the next CA trusted beside the current one, which still signs",
      { internalCaGeneration: 1, internalCaNext: "trusted" },
      ["internal-ca-ca-cert", "internal-ca-ca2-cert"],
      ["internal-ca-ca-cert"],
    ],
    [
      "step 2: the next CA signs every host certificate, both trusted, the issuing one first",
      { internalCaGeneration: 1, internalCaNext: "issuing" },
      ["internal-ca-ca2-cert", "internal-ca-ca-cert"],
      ["internal-ca-ca2-cert"],
    ],
    ["step 3: generation 2 alone", { internalCaGeneration: 2, internalCaNext: "none" }, ["internal-ca-ca2-cert"], ["internal-ca-ca2-cert"]],
  ])("%s", async (_what, settings, trusted, signers) => {
    const got = await phase(settings);
    expect({ trusted: got.trusted, signers: got.signers }).toEqual({ trusted, signers });
    expect(got.cas.map((c) => c.name).sort()).toEqual([...trusted].sort());
    // Never renewed in place: a renewal would reach the hosts one at a time (the alarm asks for a rotation).
    expect(got.cas.every((c) => c.earlyRenewalHours === 0)).toBe(true);
    expect(new Set(got.cas.map((c) => c.commonName)).size).toBe(got.cas.length);
  });

  it("refuses a generation or a step that does not exist, naming the key and the way out", () => {
    expect(() => modelWith({ internalCaGeneration: 0, internalCaNext: "later" })).toThrow(
      /internalCaGeneration[\s\S]*internalCaNext = "later": must be "none", "trusted" \(every host trusts the next CA beside the current one\) or "issuing"/,
    );
  });
});
