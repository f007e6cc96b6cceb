// templates/hosts.ts: what each host receives, for a 1-host and a 3-host stack in both TLS
// modes. Every host trusts the internal CA (TLS-1, TLS-2); paths are absolute and unique;
// rendered configs carry the generated header; files that reference a secret parameter are
// not world-readable (AUTH-2); no file carries anything that looks like a secret (DESIGN
// principle 5); a forbidden odooOptions entry fails as a ConfigError naming the key.
import { ConfigError, type RawConfig } from "../../lib/config";
import { PATHS, SECRET_REF, secretRef, type StackModel } from "../../lib/model";
import { isSecretRef } from "../../lib/secret-ref";
import { CLOUDWATCH_AGENT_CONFIG_PATH } from "../../templates/cloudwatch-agent";
import { GENERATED, type HostFile } from "../../templates/format";
import { hostFiles, parametersFingerprint, renderAllHosts } from "../../templates/hosts";
import { METRICS_CONFIG_PATH } from "../../templates/metrics";
import { modelWith } from "../helpers/fixtures";

const IMPORTED_TLS = { mode: "imported", certificateParameter: "/certs/erp/fullchain", privateKeyParameter: "/certs/erp/privkey" };
const THREE_HOSTS: RawConfig = { odooInstances: 3, availabilityZoneCount: 3 };

const MODELS: [string, RawConfig][] = [
  ["default model, ACME", {}],
  ["default model, imported certificate", { tls: IMPORTED_TLS }],
  ["3 Odoo hosts, ACME", THREE_HOSTS],
  ["3 Odoo hosts, imported certificate", { ...THREE_HOSTS, tls: IMPORTED_TLS }],
];

/** SSM parameters holding secrets: passwords, verifiers, the backup cipher, private keys. */
function secretParameters(model: StackModel): Set<string> {
  const p = model.parameters;
  const tls = model.settings.tls;
  return new Set([
    p.odooAdminPassword,
    p.odooDbPassword,
    p.odooDbScramVerifier,
    p.statsPassword,
    p.statsScramVerifier,
    p.monitorPassword,
    p.backupCipherPass,
    ...model.allHosts.map((h) => p.hostKey(h.id)),
    ...(tls.mode === "imported" ? [tls.privateKeyParameter] : []),
  ]);
}

const referenced = (f: HostFile): string[] => [...f.content.matchAll(SECRET_REF)].map((m) => m[1]);
const isScript = (f: HostFile): boolean => f.content.startsWith("#!");
/** A file whose whole content is one parameter (a certificate or key), resolved on the host. */
const isParameterOnly = (f: HostFile): boolean => f.content.endsWith("\n") && isSecretRef(f.content.slice(0, -1));
/** JSON has no comments: the collector's config carries the header as a key; the CloudWatch agent's schema allows none. */
const isJson = (f: HostFile): boolean => f.path.endsWith(".json");

// The comment marker each format reads; "#" for everything not listed.
const MARKER_BY_PATH: Record<string, string> = {
  [PATHS.odooConf]: ";",
  [PATHS.pgbouncerIni]: ";",
  [PATHS.pgbouncerUserlist]: ";",
  [PATHS.postgresBootstrapSql]: "--",
};

describe.each(MODELS)("%s", (_name, overrides) => {
  const model = modelWith(overrides);
  const all = renderAllHosts(model);
  const files = [...all.values()].flat();
  const secrets = secretParameters(model);

  it("renders every host of the model, and hostFiles agrees with renderAllHosts", () => {
    expect([...all.keys()]).toEqual(model.allHosts.map((h) => h.id));
    for (const host of model.allHosts) expect(hostFiles(model, host)).toEqual(all.get(host.id));
  });

  it("gives every host the internal CA (TLS-1, TLS-2)", () => {
    for (const [hostId, hf] of all) {
      const ca = hf.find((f) => f.path === PATHS.caCert);
      expect([hostId, ca?.content]).toEqual([hostId, `${secretRef(model.parameters.caCert)}\n`]);
    }
  });

  it("gives each role its key files", () => {
    const paths = (id: string) => (all.get(id) ?? []).map((f) => f.path);
    expect(paths("proxy")).toEqual(expect.arrayContaining([PATHS.nginxConf, PATHS.nginxSite]));
    for (const h of model.hosts.odoo) expect(paths(h.id)).toEqual(expect.arrayContaining([PATHS.odooConf, PATHS.odooLogrotate]));
    expect(paths("pgbouncer")).toEqual(expect.arrayContaining([PATHS.pgbouncerIni, PATHS.pgbouncerUserlist, PATHS.pgbouncerLimits]));
    expect(paths("postgres")).toEqual(expect.arrayContaining([PATHS.postgresConf, PATHS.postgresHba, PATHS.postgresBootstrapSql]));
  });

  it("renders JSON configs as parseable JSON; the collector's config marked generated (§9)", () => {
    const json = files.filter(isJson);
    expect(json.length).toBe(2 * model.allHosts.length);
    for (const f of json) expect(() => JSON.parse(f.content)).not.toThrow();
    for (const f of json.filter((x) => x.path === METRICS_CONFIG_PATH)) expect(JSON.parse(f.content).generated).toBe(GENERATED);
    for (const f of json.filter((x) => x.path !== METRICS_CONFIG_PATH)) expect(f.path).toBe(CLOUDWATCH_AGENT_CONFIG_PATH);
  });

  it("uses absolute, normalised paths, unique per host, sorted", () => {
    for (const [hostId, hf] of all) {
      const paths = hf.map((f) => f.path);
      for (const p of paths) expect(p).toMatch(/^(\/[A-Za-z0-9._@+-]+)+$/);
      for (const p of paths) expect(p).not.toMatch(/\/\.\.?(\/|$)/);
      expect([hostId, new Set(paths).size]).toEqual([hostId, paths.length]);
      expect(paths).toEqual([...paths].sort());
    }
  });

  it("starts every rendered config with the generated header in its format's comment marker", () => {
    const configs = files.filter((f) => !isScript(f) && !isParameterOnly(f) && !isJson(f));
    expect(configs.length).toBeGreaterThan(10);
    for (const f of configs) {
      const marker = MARKER_BY_PATH[f.path] ?? "#";
      expect([f.path, f.content.split("\n")[0]]).toEqual([f.path, `${marker} ${GENERATED}`]);
    }
  });

  it("keeps every file that references a secret parameter at 0600 or 0640 (AUTH-2)", () => {
    const carrying = files.filter((f) => referenced(f).some((p) => secrets.has(p)));
    // odoo.conf (admin_passwd, db_password), userlist.txt, bootstrap.sql, pgbackrest.conf, TLS keys.
    expect(carrying.map((f) => f.path)).toEqual(
      expect.arrayContaining([PATHS.odooConf, PATHS.pgbouncerUserlist, PATHS.postgresBootstrapSql]),
    );
    for (const f of carrying) expect([f.path, f.mode]).toEqual([f.path, expect.stringMatching(/^06[04]0$/)]);
  });

  it("references only parameters of this stack, or the operator's imported certificate", () => {
    const allowed = new Set(
      model.settings.tls.mode === "imported" ? [model.settings.tls.certificateParameter, model.settings.tls.privateKeyParameter] : [],
    );
    for (const f of files) {
      for (const p of referenced(f)) if (!allowed.has(p)) expect(p.startsWith(`/${model.project}/${model.stack}/`)).toBe(true);
    }
  });

  it("carries no secret in plain text", () => {
    for (const f of files) {
      expect([f.path, f.content.includes("SCRAM-SHA-256$")]).toEqual([f.path, false]);
      expect([f.path, /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(f.content)]).toEqual([f.path, false]);
      // In configs (scripts only parse these keys), a password key is always a placeholder.
      if (isScript(f)) continue;
      for (const line of f.content.split("\n").filter((l) => /^\s*(admin_passwd|db_password)\b/.test(l))) {
        expect(isSecretRef(line.replace(/^\s*(admin_passwd|db_password)\s*=\s*/, ""))).toBe(true);
      }
    }
    const odooConfs = files.filter((f) => f.path === PATHS.odooConf);
    expect(odooConfs).toHaveLength(model.hosts.odoo.length);
    for (const f of odooConfs) expect(f.content).toContain(`admin_passwd = ${secretRef(model.parameters.odooAdminPassword)}`);
  });

  it("delivers the proxy certificate according to the TLS mode", () => {
    const proxyPaths = (all.get("proxy") ?? []).map((f) => f.path);
    const imported = model.settings.tls.mode === "imported";
    expect(proxyPaths.includes(`${PATHS.nginxTlsDir}/privkey.pem`)).toBe(imported);
    expect(proxyPaths.includes(`${PATHS.nginxTlsDir}/fullchain.pem`)).toBe(imported);
  });
});

describe("renderAllHosts: forbidden odooOptions", () => {
  it.each([
    ["list_db: true (ODOO-2)", { list_db: true }, "list_db"],
    ["admin_passwd literal (ODOO-1)", { admin_passwd: "not-a-secret-just-a-test" }, "admin_passwd"],
    ["workers, which sizing owns (LIMIT-1)", { workers: 3 }, "workers"],
    ["an option that is not allowlisted", { bogus_option: 1 }, "bogus_option"],
  ])("%s fails as a ConfigError naming odoo-stack:odooOptions", (_name, options, option) => {
    const model = modelWith({ odooOptions: options });
    let error: unknown;
    try {
      renderAllHosts(model);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const err = error as ConfigError;
    expect(err.problems.map((p) => p.key)).toEqual(["odooOptions"]);
    // A secret-looking value is never echoed back (issue 12 item 5); the others are.
    const shown = option === "admin_passwd" ? { admin_passwd: "[redacted]" } : options;
    expect(err.message).toContain(`odoo-stack:odooOptions = ${JSON.stringify(shown)}: `);
    expect(err.message).not.toContain("not-a-secret-just-a-test");
    expect(err.message).toContain(`${option}: `);
  });

  it("fails for a 3-host stack too", () => {
    const model = modelWith({ ...THREE_HOSTS, odooOptions: { list_db: true } });
    expect(() => renderAllHosts(model)).toThrow(ConfigError);
    try {
      renderAllHosts(model);
    } catch (e) {
      expect((e as ConfigError).problems.every((p) => p.key === "odooOptions")).toBe(true);
    }
  });

  it("accepts an allowlisted option", () => {
    const model = modelWith({ odooOptions: { log_level: "warn" } });
    const conf = renderAllHosts(model)
      .get("odoo-1")
      ?.find((f) => f.path === PATHS.odooConf);
    expect(conf?.content).toMatch(/^log_level = warn$/m);
  });
});

describe("parametersFingerprint: the association's re-run trigger for changed values (issue 12)", () => {
  it("changes with any parameter's version, not with the order of the list", () => {
    const base = parametersFingerprint([
      ["/odoo-stack/t/a", 1],
      ["/odoo-stack/t/b", 3],
    ]);
    expect(
      parametersFingerprint([
        ["/odoo-stack/t/b", 3],
        ["/odoo-stack/t/a", 1],
      ]),
    ).toBe(base);
    expect(
      parametersFingerprint([
        ["/odoo-stack/t/a", 2],
        ["/odoo-stack/t/b", 3],
      ]),
    ).not.toBe(base);
    expect(parametersFingerprint([["/odoo-stack/t/a", 1]])).not.toBe(base);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
  });
});
