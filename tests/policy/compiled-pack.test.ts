// The compiled pack (issue 15: `npm run plan` under 10 s): policy/pack.js, the package's main
// for the CLI's run-policy-pack and the plan alike, runs bin/ only when tools/build-policy.ts
// built it from the sources on disk; any edit, new file or missing build falls back to index.ts,
// which ts-node type-checks. These cases drive policy/compiled.js on a throwaway pack directory.
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const { currentCompiledEntry } = require("../../policy/compiled") as { currentCompiledEntry: (dir: string) => string | undefined };

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function fakePack(): { readonly dir: string; build(): void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-compiled-pack-"));
  roots.push(root);
  const dir = path.join(root, "policy");
  fs.mkdirSync(path.join(dir, "lib"), { recursive: true });
  fs.mkdirSync(path.join(root, "lib"), { recursive: true });
  fs.writeFileSync(path.join(dir, "index.ts"), "import './net';\n");
  fs.writeFileSync(path.join(dir, "net.ts"), "export const a = 1;\n");
  fs.writeFileSync(path.join(dir, "lib", "parse.ts"), "export const b = 2;\n");
  fs.writeFileSync(path.join(root, "lib", "ports.ts"), "export const c = 3;\n");
  return {
    dir,
    build: () => {
      const sources: Record<string, string> = {};
      for (const rel of ["index.ts", "net.ts", "lib/parse.ts", "../lib/ports.ts"])
        sources[rel] = sha(fs.readFileSync(path.join(dir, rel), "utf8"));
      fs.mkdirSync(path.join(dir, "bin", "policy"), { recursive: true });
      fs.writeFileSync(path.join(dir, "bin", "policy", "index.js"), "");
      fs.writeFileSync(path.join(dir, "bin", "sources.json"), JSON.stringify({ entry: "bin/policy/index.js", sources }));
    },
  };
}

describe("policy/pack.js runs the compiled pack only when it is current", () => {
  it("is the pack's main, for the CLI and the plan alike", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "policy", "package.json"), "utf8")) as { main: string };
    expect(pkg.main).toBe("pack.js");
  });

  it("uses bin/ built from the sources on disk", () => {
    const pack = fakePack();
    pack.build();
    expect(currentCompiledEntry(pack.dir)).toBe(path.join(pack.dir, "bin", "policy", "index.js"));
  });

  it.each([
    ["no build", (_dir: string) => fs.rmSync(path.join(_dir, "bin"), { recursive: true })],
    ["an edited area file", (dir: string) => fs.appendFileSync(path.join(dir, "net.ts"), "export const d = 4;\n")],
    ["an edited shared ../lib file", (dir: string) => fs.appendFileSync(path.join(dir, "..", "lib", "ports.ts"), "// changed\n")],
    ["a new area file the build never saw", (dir: string) => fs.writeFileSync(path.join(dir, "storage.ts"), "export const e = 5;\n")],
    ["a deleted source", (dir: string) => fs.rmSync(path.join(dir, "lib", "parse.ts"))],
    ["a missing entry", (dir: string) => fs.rmSync(path.join(dir, "bin", "policy", "index.js"))],
    ["an unreadable manifest", (dir: string) => fs.writeFileSync(path.join(dir, "bin", "sources.json"), "{")],
  ])("falls back to index.ts (type-checked by ts-node) after %s", (_name, change) => {
    const pack = fakePack();
    pack.build();
    change(pack.dir);
    expect(currentCompiledEntry(pack.dir)).toBeUndefined();
  });
});
