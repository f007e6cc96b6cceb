// Whether policy/bin (tools/build-policy.ts) was compiled from exactly the pack's sources on
// disk now: every source the build read has the SHA-256 it recorded, no area or lib file was
// added since, and the entry exists. policy/pack.js runs the JavaScript only then.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

/** The compiled entry (absolute path) when bin/ is current for `packDir`, else undefined. */
function currentCompiledEntry(packDir) {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(packDir, "bin", "sources.json"), "utf8"));
  } catch {
    return undefined;
  }
  if (!manifest || typeof manifest.sources !== "object" || manifest.sources === null || typeof manifest.entry !== "string")
    return undefined;
  for (const [relative, hash] of Object.entries(manifest.sources)) {
    let text;
    try {
      text = fs.readFileSync(path.join(packDir, relative));
    } catch {
      return undefined;
    }
    if (crypto.createHash("sha256").update(text).digest("hex") !== hash) return undefined;
  }
  const listed = new Set(Object.keys(manifest.sources).map((r) => path.resolve(packDir, r)));
  const ts = (dir) =>
    fs.existsSync(dir)
      ? fs
          .readdirSync(dir)
          .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
          .map((f) => path.join(dir, f))
      : [];
  if (![...ts(packDir), ...ts(path.join(packDir, "lib"))].every((f) => listed.has(f))) return undefined;
  const entry = path.resolve(packDir, manifest.entry);
  return fs.existsSync(entry) ? entry : undefined;
}

module.exports = { currentCompiledEntry };
