// A custom addons artifact as odooAddons names one (issue 12 item 7): a .tar.gz with addon
// directories at its top level, optionally requirements.txt and wheels/ holding a wheel made by
// hand (no index needed: pip installs it with --no-index). Shared by the release script's unit
// test and the fleet's release runbook test.
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";

/** A wheel by hand (a zip with its dist-info): pip installs it with --no-index like any other. */
export function writeWheel(dir: string, name: string, version: string): void {
  const py = spawnSync(
    "python3",
    [
      "-c",
      `
import base64, hashlib, sys, zipfile
name, version, out = sys.argv[1:4]
files = {f"{name}/__init__.py": f"VERSION = {version!r}\\n", f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n",
         f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: odoo-stack-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
record = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b'=').decode()},{len(c.encode())}" for p, c in files.items()]
files[f"{name}-{version}.dist-info/RECORD"] = "\\n".join(record + [f"{name}-{version}.dist-info/RECORD,,"]) + "\\n"
with zipfile.ZipFile(f"{out}/{name}-{version}-py3-none-any.whl", "w") as z:
    for p, c in files.items(): z.writestr(p, c)
`,
      name,
      version,
      dir,
    ],
    { encoding: "utf8" },
  );
  if (py.status !== 0) throw new Error(py.stderr);
}

export interface Artifact {
  readonly file: string;
  readonly sha256: string;
}

/** An addons .tar.gz: the addons (name → manifest text, extra files), requirements and wheels. */
export function makeArtifact(dir: string, name: string, addons: Record<string, Record<string, string>>, requirements?: string): Artifact {
  const src = fs.mkdtempSync(path.join(dir, "src-"));
  for (const [addon, files] of Object.entries(addons)) {
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(src, addon, f)), { recursive: true });
      fs.writeFileSync(path.join(src, addon, f), text);
    }
  }
  if (requirements !== undefined) {
    fs.writeFileSync(path.join(src, "requirements.txt"), requirements);
    fs.mkdirSync(path.join(src, "wheels"));
    writeWheel(path.join(src, "wheels"), "odoo_stack_tinydep", "1.2.3");
  }
  const file = path.join(dir, name);
  const tar = spawnSync("tar", ["-czf", file, "-C", src, "."], { encoding: "utf8" });
  if (tar.status !== 0) throw new Error(tar.stderr);
  return { file, sha256: createHash("sha256").update(fs.readFileSync(file)).digest("hex") };
}
