// The whole production stack offline: tools/plan.ts runs index.ts under mocks with
// Pulumi.prod.yaml, writes out/<stack>/ (here into a temp dir), and sends every resource
// through the real policy pack over gRPC. Then the leak scan: every secret this very run
// generated (passwords, random bytes, private keys, and whatever is derived from them and
// marked secret, e.g. SCRAM verifiers) must not appear in any written file (DESIGN principle 5).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { isSecretWire, plainValue, type CapturedResource } from "../../tools/mocks";
import { plan, standInNotice, type PlanResult } from "../../tools/plan";
import { runbookProblems } from "../helpers/runbook-walk";

jest.setTimeout(120_000);

const STACK = "prod";
let outDir: string;
let result: PlanResult;

beforeAll(async () => {
  outDir = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-plan-"));
  result = await plan({ stack: STACK, outDir });
}, 120_000);

afterAll(() => {
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

const stackDir = () => path.join(outDir, STACK);

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : [p];
  });
}

// Outputs of the generators that are secret by nature, taken whether or not the run marked them.
const GENERATED_SECRET_OUTPUTS: Record<string, readonly string[]> = {
  "random:index/randomPassword:RandomPassword": ["result", "bcryptHash"],
  "random:index/randomString:RandomString": ["result"],
  "random:index/randomBytes:RandomBytes": ["base64", "hex"],
  "tls:index/privateKey:PrivateKey": ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"],
};

const SSM_PARAMETER = "aws:ssm/parameter:Parameter";
const isPublicParameter = (r: CapturedResource): boolean => r.type === SSM_PARAMETER && plainValue(r.inputs.type) !== "SecureString";
/** Names of the SSM parameters stored as plain String. */
const publicParameters = (resources: readonly CapturedResource[]): string[] =>
  resources.filter(isPublicParameter).map((r) => String(plainValue(r.inputs.name)));

/**
 * Every string the run generated as, or marked, secret, with where it came from: generator
 * outputs and secret-marked values of every resource.
 */
function generatedSecrets(resources: readonly CapturedResource[]): Map<string, string> {
  const out = new Map<string, string>();
  const add = (s: string, origin: string) => {
    // Short or structural strings (e.g. "true") would match by accident; every generated secret is long.
    if (s.trim().length >= 12 && !out.has(s)) out.set(s, origin);
  };
  const collectMarked = (v: unknown, inside: boolean, origin: string): void => {
    if (isSecretWire(v)) return collectMarked(v.value, true, origin);
    if (typeof v === "string") {
      if (inside) add(v, origin);
    } else if (Array.isArray(v)) v.forEach((x) => collectMarked(x, inside, origin));
    else if (typeof v === "object" && v !== null) Object.entries(v).forEach(([k, x]) => collectMarked(x, inside, `${origin}.${k}`));
  };
  for (const r of resources) {
    // The AWS provider marks every SSM parameter's value secret; a String parameter holds a
    // public value (a certificate, a bucket name) that resources.json shows elsewhere anyway.
    // publicParameters() below checks that only public things are stored that way.
    if (isPublicParameter(r)) continue;
    collectMarked(r.inputs, false, `${r.type} ${r.name} input`);
    collectMarked(r.outputs, false, `${r.type} ${r.name} output`);
    for (const field of GENERATED_SECRET_OUTPUTS[r.type] ?? []) {
      const v = plainValue(r.outputs[field]);
      if (typeof v === "string") add(v, `${r.type} ${r.name} output.${field}`);
    }
  }
  return out;
}

/** The forms a secret could be written in: as is, base64 (user data), and each PEM body line. */
function needlesOf(secret: string): string[] {
  const pemBody = secret.includes("-----BEGIN") ? secret.split("\n").filter((l) => l.length >= 32 && !l.startsWith("-----")) : [];
  return [secret, Buffer.from(secret, "utf8").toString("base64"), ...pemBody];
}

/** Each written file that contains a secret in one of its forms, naming the secret's origin (never its value). */
function leaks(files: readonly { file: string; text: string }[], secrets: ReadonlyMap<string, string>): string[] {
  const found: string[] = [];
  for (const [secret, origin] of secrets) {
    for (const needle of needlesOf(secret)) {
      for (const { file, text } of files)
        if (text.includes(needle)) found.push(`${file} contains ${origin}${needle === secret ? "" : " (encoded or in part)"}`);
    }
  }
  return found;
}

describe(`npm run plan, stack ${STACK}`, () => {
  it("has no mandatory policy violation (exit status 0)", () => {
    const mandatory = result.diagnostics.filter((d) => d.enforcementLevel === "mandatory");
    expect(mandatory.map((d) => `${d.policyName} on ${d.urn}: ${d.message}`)).toEqual([]);
    const policy = JSON.parse(fs.readFileSync(path.join(stackDir(), "policy.json"), "utf8"));
    expect(policy.mandatory).toBe(0);
    expect(policy.policies.length).toBeGreaterThan(10);
    expect(result.info.policies.length).toBe(policy.policies.length);
  });

  it("writes resources.json, policy.json and checklist.md", () => {
    for (const f of ["resources.json", "policy.json", "checklist.md"]) expect(fs.existsSync(path.join(stackDir(), f))).toBe(true);
    const resources = JSON.parse(fs.readFileSync(path.join(stackDir(), "resources.json"), "utf8"));
    expect(resources.stack).toBe(STACK);
    expect(resources.resources).toHaveLength(result.resources.length);
    for (const r of resources.resources)
      expect(Object.keys(r)).toEqual(expect.arrayContaining(["urn", "type", "name", "parent", "custom", "inputs"]));
    expect(result.checklist?.items).toBeGreaterThan(0);
  });

  it("writes cost.md: the monthly estimate of exactly the planned instances, from the committed price table", () => {
    const md = fs.readFileSync(path.join(stackDir(), "cost.md"), "utf8");
    expect(result.monthlyCost?.currency).toBe("USD");
    expect(md).toContain(`**${result.monthlyCost?.total.toFixed(2)} USD per month**`);
    const instances = result.resources.filter((r) => r.type === "aws:ec2/instance:Instance");
    const rows = [...md.matchAll(/^\| ([a-z0-9]+\.[a-z0-9]+) \| (\d+) \| instance-hour/gm)].map((m) => [m[1], Number(m[2])]);
    expect(rows.reduce((n, [, c]) => n + (c as number), 0)).toBe(instances.length);
  });

  it("writes every role's key files where they land on the host", () => {
    const has = (host: string, p: string) => fs.existsSync(path.join(stackDir(), "hosts", host, p));
    const expected: Record<string, string[]> = {
      proxy: ["etc/nginx/conf.d/odoo.conf", "etc/nginx/nginx.conf"],
      "odoo-1": ["etc/odoo/odoo.conf", "etc/logrotate.d/odoo"],
      pgbouncer: ["etc/pgbouncer/pgbouncer.ini", "etc/pgbouncer/userlist.txt"],
      postgres: ["etc/postgresql/15/main/conf.d/90-odoo-stack.conf", "etc/postgresql/15/main/pg_hba.conf", "etc/odoo-stack/bootstrap.sql"],
    };
    for (const [host, files] of Object.entries(expected)) {
      for (const f of [...files, "var/lib/cloud/instance/user-data.txt", "usr/local/share/ca-certificates/odoo-stack-internal-ca.crt"]) {
        expect([host, f, has(host, f)]).toEqual([host, f, true]);
      }
    }
    expect(fs.readdirSync(path.join(stackDir(), "hosts")).sort()).toEqual(["odoo-1", "pgbouncer", "postgres", "proxy"]);
  });

  it("accepts the example stack's placeholders with one warning each, and warns about nothing else", () => {
    expect(result.warnings.map((w) => w.slice(0, w.indexOf(" is a placeholder")))).toEqual([
      'odoo-stack:domain = "erp.example.com"',
      'odoo-stack:tls.email = "ops@example.com"',
      'odoo-stack:alarmEmail = "ops@example.com"',
      'odoo-stack:tls.hostedZoneId = "Z04417412EXAMPLE"',
    ]);
    for (const w of result.warnings) expect(w).toMatch(/; accepted by this offline plan, refused by a real pulumi preview or up$/);
  });

  it("delivers no file marked secret: rendered files carry placeholders only", () => {
    expect(result.files.filter((f) => f.secretMarked).map((f) => `${f.host}:${f.path}`)).toEqual([]);
    expect(result.warnings.filter((w) => w.includes("marked secret"))).toEqual([]);
  });

  describe("leak scan", () => {
    let secrets: Map<string, string>;
    let written: { file: string; text: string }[];
    beforeAll(() => {
      secrets = generatedSecrets(result.resources);
      written = filesUnder(outDir).map((file) => ({ file: path.relative(outDir, file), text: fs.readFileSync(file, "utf8") }));
      // Base64 blobs in resources.json (user data, S3 object bodies) are scanned decoded too: a
      // secret inside one is not aligned to be found by its own base64 form.
      const resourcesJson = written.find((w) => w.file === path.join(STACK, "resources.json"));
      const blobs: string[] = [];
      const walk = (v: unknown): void => {
        if (typeof v === "string" && v.length >= 40 && /^[A-Za-z0-9+/]+={0,2}$/.test(v))
          blobs.push(Buffer.from(v, "base64").toString("utf8"));
        else if (Array.isArray(v)) v.forEach(walk);
        else if (typeof v === "object" && v !== null) Object.values(v).forEach(walk);
      };
      walk(JSON.parse(resourcesJson?.text ?? "{}"));
      written.push(...blobs.map((text, i) => ({ file: `${STACK}/resources.json (base64 value ${i})`, text })));
    });

    it("found this run's generated secrets", () => {
      // Seven stack passwords and verifiers (model.parameters) plus the CA and host keys at least.
      expect(secrets.size).toBeGreaterThanOrEqual(10);
      const passwords = result.resources.filter((r) => r.type === "random:index/randomPassword:RandomPassword");
      expect(passwords.length).toBeGreaterThanOrEqual(4);
      for (const p of passwords) expect(secrets.has(plainValue(p.outputs.result) as string)).toBe(true);
      expect([...secrets.keys()].some((s) => s.startsWith("SCRAM-SHA-256$"))).toBe(true);
      expect([...secrets.keys()].some((s) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(s))).toBe(true);
    });

    it("stores only public values (certificates, bucket names) in plain String parameters", () => {
      const names = publicParameters(result.resources);
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect(name).toMatch(/\/(ca-cert|cert|bucket-name)$/);
    });

    it("the scanner finds a secret planted in a file (the scan can fail)", () => {
      const planted = [...secrets.keys()][0];
      expect(leaks([{ file: "planted", text: `value = ${planted}\n` }], secrets)).toHaveLength(1);
      expect(leaks([{ file: "planted", text: `x: ${Buffer.from(planted).toString("base64")}` }], secrets)).toHaveLength(1);
    });

    it("no generated secret appears in any written file", () => {
      expect(written.length).toBeGreaterThan(30);
      expect(leaks(written, secrets)).toEqual([]);
    });

    it("resources.json shows secrets as [secret]", () => {
      const text = fs.readFileSync(path.join(stackDir(), "resources.json"), "utf8");
      expect(text).toContain('"[secret]"');
    });

    it("no written file holds a SCRAM verifier or a private key", () => {
      for (const { file, text } of written) {
        expect([file, text.includes("SCRAM-SHA-256$")]).toEqual([file, false]);
        expect([file, /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)]).toEqual([file, false]);
      }
    });
  });
});

// Issue 13: the runbooks the plan wrote, walked against the plan itself; and marked as stand-ins.
describe(`runbooks of stack ${STACK}`, () => {
  const runbooks = () =>
    Object.fromEntries(
      fs.readdirSync(path.join(stackDir(), "runbooks")).map((f) => [f, fs.readFileSync(path.join(stackDir(), "runbooks", f), "utf8")]),
    );

  it("link only to anchors that exist, and name only hosts, outputs, alarms, URNs and parameters the plan has", () => {
    const outputs = JSON.parse(fs.readFileSync(path.join(stackDir(), "resources.json"), "utf8")).outputs as Record<string, unknown>;
    const { problems, checked } = runbookProblems(runbooks(), { resources: result.resources, outputs: { ...outputs, runbooks: "" } });
    expect(problems).toEqual([]);
    expect(checked.links).toBeGreaterThan(50);
    expect(checked.hosts).toBeGreaterThan(30);
    expect(checked.alarms).toBeGreaterThan(40);
    // The internal CA rotation is three config changes (lib/internal-ca.ts), not a --replace.
    expect(checked.urns).toBe(0);
    // 4 password keepers, 4 for the CA rotation's three steps, 6 for an Odoo release and its rollback.
    expect(checked.configKeys).toBe(14);
  });

  it("say that their names are the plan's stand-ins, and where the deployed stack's runbooks are", () => {
    for (const [file, text] of Object.entries(runbooks())) {
      expect(text.split("\n").slice(0, 5).join("\n")).toContain(standInNotice(file));
      expect(standInNotice(file)).toContain(`pulumi stack output runbooks --json | jq -r '.["${file}"]'`);
    }
  });
});
