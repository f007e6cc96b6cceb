// The pack's entry point (package.json "main"), for the Pulumi CLI and `npm run plan` alike: both
// start `run-policy-pack <engine> .`, which registers ts-node with type checking and requires
// this directory's main (@pulumi/pulumi cmd/run-policy-pack/run.js). Type-checking the pack and
// ../lib at every start took 5 s of a 10–12 s plan, so `npm run build` (and the root `npm ci`)
// compile it once into bin/ (tools/build-policy.ts). This file runs that JavaScript only while it
// was built from the sources on disk (compiled.js); after any edit it loads index.ts, which
// ts-node type-checks as before: a stale build never runs.
"use strict";
const { currentCompiledEntry } = require("./compiled");

const entry = currentCompiledEntry(__dirname);
if (entry !== undefined) {
  require(entry);
} else {
  process.stderr.write(
    "odoo-stack policy pack: bin/ is missing or older than the sources (npm run build compiles it); type-checking them with ts-node\n",
  );
  require("./index.ts");
}
