// Compiles the policy pack (policy/*.ts and the ../lib files it imports) into policy/bin with
// the TypeScript compiler and policy/tsconfig.json, type-checked: any error fails the build and
// leaves the previous bin/ untouched. It then records the SHA-256 of every source file the
// program read, so policy/pack.js runs the JavaScript only while the sources are unchanged.
// Run by `npm run build` and the root `npm ci` (postinstall).
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";

export const POLICY_DIR = path.resolve(__dirname, "..", "policy");
export const BIN_DIR = path.join(POLICY_DIR, "bin");
/** Where the compiled index.js lands: rootDir is the repository root (the pack imports ../lib). */
export const ENTRY = path.join("bin", "policy", "index.js");

export interface BuildResult {
  readonly errors: readonly string[];
  readonly sources: number;
  readonly ms: number;
}

export function buildPolicyPack(): BuildResult {
  const started = performance.now();
  const configPath = path.join(POLICY_DIR, "tsconfig.json");
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  if (config.error)
    return { errors: [ts.flattenDiagnosticMessageText(config.error.messageText, "\n")], sources: 0, ms: performance.now() - started };
  const staging = `${BIN_DIR}.tmp-${process.pid}`;
  const parsed = ts.parseJsonConfigFileContent(
    config.config,
    ts.sys,
    POLICY_DIR,
    { noEmit: false, outDir: staging, rootDir: path.resolve(POLICY_DIR, ".."), sourceMap: false, declaration: false },
    configPath,
  );
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
  const diagnostics = [...ts.getPreEmitDiagnostics(program)];
  const format = (d: ts.Diagnostic) =>
    ts.formatDiagnostic(d, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => POLICY_DIR, getNewLine: () => "\n" }).trim();
  if (diagnostics.length > 0) return { errors: diagnostics.map(format), sources: 0, ms: performance.now() - started };
  fs.rmSync(staging, { recursive: true, force: true });
  const emitted = program.emit();
  if (emitted.emitSkipped || emitted.diagnostics.length > 0) {
    fs.rmSync(staging, { recursive: true, force: true });
    return { errors: emitted.diagnostics.map(format), sources: 0, ms: performance.now() - started };
  }
  const sources: Record<string, string> = {};
  for (const file of program.getSourceFiles()) {
    if (file.isDeclarationFile || file.fileName.includes(`${path.sep}node_modules${path.sep}`)) continue;
    sources[path.relative(POLICY_DIR, file.fileName)] = crypto.createHash("sha256").update(fs.readFileSync(file.fileName)).digest("hex");
  }
  fs.writeFileSync(path.join(staging, "sources.json"), `${JSON.stringify({ entry: ENTRY, sources }, null, 2)}\n`);
  // Swap in the new build whole: pack.js never sees half of one.
  fs.rmSync(BIN_DIR, { recursive: true, force: true });
  fs.renameSync(staging, BIN_DIR);
  return { errors: [], sources: Object.keys(sources).length, ms: performance.now() - started };
}

if (require.main === module) {
  const r = buildPolicyPack();
  if (r.errors.length > 0) {
    console.error(r.errors.join("\n"));
    process.exit(1);
  }
  console.log(`policy pack compiled to ${path.relative(process.cwd(), BIN_DIR)}/ (${r.sources} sources, ${(r.ms / 1000).toFixed(1)} s)`);
}
