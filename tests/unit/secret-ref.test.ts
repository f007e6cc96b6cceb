// The secret placeholder grammar (lib/secret-ref.ts) and the apply script's resolver
// (templates/scripts/odoo-stack-apply.sh, resolve_file) on one corpus of accepted and rejected
// texts (tests/fixtures/ssm-placeholders.json): what TypeScript renders and checks is what the
// host resolves (DESIGN principle 5; ODOO-1, AUTH-2).
import { spawnSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  isSecretRef,
  isSecretRefPath,
  parseSecretRef,
  resolveSecretRefs,
  scanSecretRefs,
  secretRef,
  SECRET_REF,
} from "../../lib/secret-ref";
import { buildManifest } from "../../templates/manifest";
import { SCRIPTS, SCRIPTS_DIR } from "../../templates/scripts";

interface Corpus {
  readonly accepted: readonly { readonly text: string; readonly paths: readonly string[] }[];
  readonly rejected: readonly string[];
}
const corpus = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "fixtures", "ssm-placeholders.json"), "utf8")) as Corpus;
const accepted = corpus.accepted.map((a) => [JSON.stringify(a.text), a] as const);
const rejected = corpus.rejected.map((text) => [JSON.stringify(text), text] as const);

describe("the corpus", () => {
  it("holds both kinds, each text once", () => {
    const texts = [...corpus.accepted.map((a) => a.text), ...corpus.rejected];
    expect(corpus.accepted.filter((a) => a.paths.length > 0).length).toBeGreaterThanOrEqual(5);
    expect(corpus.rejected.length).toBeGreaterThanOrEqual(5);
    expect(new Set(texts).size).toBe(texts.length);
  });
});

describe("the TypeScript parser", () => {
  it.each(accepted)("accepts %s", (_label, { text, paths }) => {
    expect(scanSecretRefs(text)).toEqual({ paths, malformed: false });
    const whole = paths.length === 1 && text === secretRef(paths[0]);
    expect(isSecretRef(text)).toBe(whole);
    expect(parseSecretRef(text)).toBe(whole ? paths[0] : undefined);
    expect(() =>
      buildManifest("proxy", [{ path: "/etc/odoo-stack/x", content: text, mode: "0600", owner: "root", group: "root" }]),
    ).not.toThrow();
  });

  it.each(rejected)("rejects %s", (_label, text) => {
    expect(scanSecretRefs(text).malformed).toBe(true);
    expect(isSecretRef(text)).toBe(false);
    expect(parseSecretRef(text)).toBeUndefined();
    expect(() =>
      buildManifest("proxy", [{ path: "/etc/odoo-stack/x", content: text, mode: "0600", owner: "root", group: "root" }]),
    ).toThrow('"/etc/odoo-stack/x" has a malformed {{ssm:...}} placeholder');
  });

  it("secretRef() writes what parseSecretRef() reads back", () => {
    for (const p of ["/a", "/odoo-stack/prod/odoo/admin-passwd", "/x_y.z-1/2"]) expect(parseSecretRef(secretRef(p))).toBe(p);
  });

  it("SECRET_REF stays global, so matchAll and replace see every placeholder", () => {
    expect(SECRET_REF.flags).toContain("g");
    expect(resolveSecretRefs("{{ssm:/a}} {{ssm:/b}} {{ssm:/a}}", (p) => `<${p}>`)).toBe("</a> </b> </a>");
  });
});

describe("the apply script's resolver (resolve_file, with the script's ODOO_STACK_SSM_DIR override)", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-secret-ref-"));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const ssmDir = path.join(tmp, "ssm");
  // Per-run values; '&' and '\1' would be special to a naive ${var//…} or sed replacement.
  const values = new Map<string, string>();
  const allPaths = [...corpus.accepted.flatMap((a) => a.paths), ...corpus.rejected.flatMap((t) => scanSecretRefs(t).paths)];
  for (const p of new Set(allPaths)) {
    const value = `${randomBytes(9).toString("base64url")}&\\1`;
    values.set(p, value);
    fs.mkdirSync(path.dirname(path.join(ssmDir, p)), { recursive: true });
    fs.writeFileSync(path.join(ssmDir, p), `${value}\n`);
  }
  let n = 0;
  const resolve = (text: string) => {
    const src = path.join(tmp, `in-${n}`);
    const dest = path.join(tmp, `out-${n++}`);
    fs.writeFileSync(src, text);
    const result = spawnSync(
      "bash",
      [
        "--norc",
        "-c",
        'source "$1" && init_settings && init_commands && resolve_file "$2" "$3" corpus',
        "resolve",
        path.join(SCRIPTS_DIR, SCRIPTS.apply),
        src,
        dest,
      ],
      {
        encoding: "utf8",
        env: {
          PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
          ODOO_STACK_SSM_DIR: ssmDir,
          ODOO_STACK_PARAMETER_PREFIX: "/",
          ODOO_STACK_CONFIG: path.join(tmp, "none.env"),
        },
        timeout: 30_000,
      },
    );
    return { status: result.status, stderr: result.stderr, out: fs.existsSync(dest) ? fs.readFileSync(dest, "utf8") : undefined };
  };

  it.each(accepted)("resolves %s as the TypeScript parser reads it", (_label, { text }) => {
    const r = resolve(text);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.out).toBe(resolveSecretRefs(text, (p) => values.get(p) as string));
  });

  it.each(rejected)("refuses %s", (_label, text) => {
    const r = resolve(text);
    expect(r.stderr).toBe("odoo-stack-apply: ERROR: corpus: malformed secret placeholder (see lib/secret-ref.ts)\n");
    expect(r.status).toBe(1);
    expect(r.out).toBeUndefined();
  });
});

describe("isSecretRefPath (the settings that name a parameter: mail.passwordParameter, tls.*Parameter)", () => {
  it.each(["/a", "/odoo/prod/tls/fullchain", "/mail/smtp-password"])("accepts %s", (p) => expect(isSecretRefPath(p)).toBe(true));
  it.each(["", "/", "a/b", "/a b", "/a}}", "/a{{ssm:/b", "/ä"])("refuses %j", (p) => expect(isSecretRefPath(p)).toBe(false));
});
