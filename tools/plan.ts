// The offline plan: `npm run plan [-- --stack NAME] [--program FILE] [--policy-config FILE] [--out DIR]`.
// Runs the program under mocks with the stack's settings (as `pulumi up` would: every output
// known), writes what it would deploy, sends every resource through the policy pack over the
// Analyzer gRPC protocol, and exits non-zero on any mandatory violation:
//   out/<stack>/resources.json   every resource: urn, type, parent, dependencies, inputs (secrets "[secret]")
//   out/<stack>/hosts/<hostId>/… every rendered file delivered as S3 object hosts/<hostId>/<path>,
//                                and each instance's user data at /var/lib/cloud/instance/user-data.txt
//   out/<stack>/policy.json      every diagnostic of Analyze and AnalyzeStack
//   out/<stack>/checklist.md     per checklist ID, the policies, files and resources that cite it
//   out/<stack>/runbooks/*.md    the operator runbooks (the program's `runbooks` output, templates/runbooks.ts),
//                                each marked as carrying the plan's stand-in names
//   out/<stack>/cost.md          the monthly cost estimate of the planned resources (tools/cost.ts)
// Before the program runs, tools/stack-config.ts applies the Pulumi CLI's config rules and fails
// the plan with everything the CLI would refuse. Warnings: what the CLI warns about, a stack file
// that shares its domain or environment tag with another, and placeholder values (example.com,
// …EXAMPLE zone ids), which the program accepts under these mocks and refuses under the real engine.
// Exit codes: 0 clean (advisories allowed), 1 mandatory violations, 2 the plan itself failed.
import * as fs from "fs";
import * as path from "path";
import { placeholderProblems } from "../lib/config";
import { hostOf, renderedFiles, TYPES } from "../policy/lib/resources";
import {
  analyzerResourcesFrom,
  buildPolicyConfig,
  readPolicyConfigFile,
  startPolicyPack,
  type AnalyzerInfo,
  type PolicyDiagnostic,
  type PolicyPackClient,
  type StackContext,
} from "./analyzer-client";
import type { StackModel } from "../lib/model";
import { operationalProcedures, type OperationalProcedure } from "../templates/procedures";
import { extractShellBlocks } from "../templates/runbook-blocks";
import { estimateMonthlyCost, readPriceTable, renderCostMarkdown } from "./cost";
import {
  CHECKLIST_FILE,
  collectEvidence,
  itemsWithGaps,
  parseChecklist,
  renderChecklist,
  uncitedMandatory,
  type HostFileText,
  type RenderedProcedure,
} from "./checklist";
import {
  isSecretWire,
  MOCK_ACCOUNT_ID,
  plainValue,
  redactSecrets,
  RESOURCE_SIG,
  runProgram,
  SIG_KEY,
  type CapturedResource,
  type ProgramResult,
  type WireValue,
} from "./mocks";
import { copiedStackWarnings, readStackConfig, stackModelOf, type StackConfig } from "./stack-config";

export const ROOT = path.resolve(__dirname, "..");
export const POLICY_DIR = path.join(ROOT, "policy");
/** Where cloud-init keeps the user data of the current boot; the plan writes it there per host. */
export const USER_DATA_PATH = "/var/lib/cloud/instance/user-data.txt";

export interface PlanOptions {
  readonly stack: string;
  /** The program's entry file. Optional. Defaults to index.ts at the repository root. */
  readonly program?: string;
  /** A --policy-pack-config file. Optional. */
  readonly policyConfig?: string;
  /** Optional. Defaults to out/ at the repository root. */
  readonly outDir?: string;
  /**
   * The directory holding Pulumi.yaml and Pulumi.<stack>.yaml. Optional. Defaults to the
   * repository root; the fleet suite plans a changed copy of a stack file from a scratch directory.
   */
  readonly projectDir?: string;
}

export interface HostFileWritten extends HostFileText {
  /** True when the content arrived marked secret: a rendered file should carry secretRef placeholders only. */
  readonly secretMarked: boolean;
}

export interface PlanResult {
  readonly stackDir: string;
  readonly resources: readonly CapturedResource[];
  readonly files: readonly HostFileWritten[];
  readonly info: AnalyzerInfo;
  readonly diagnostics: readonly PolicyDiagnostic[];
  readonly warnings: readonly string[];
  readonly checklist: { readonly items: number; readonly withGaps: number; readonly uncitedMandatory: number } | undefined;
  /** The monthly total of out/<stack>/cost.md; undefined without a price table for the region. */
  readonly monthlyCost: { readonly total: number; readonly currency: string } | undefined;
  readonly timings: { readonly programMs: number; readonly packStartupMs: number; readonly analysisMs: number; readonly totalMs: number };
}

/**
 * What `pulumi up` requires of an entry module (@pulumi/pulumi cmd/run, CommonJS): its exports
 * are the stack outputs, or, when it exports a function, what that function returns.
 */
function loadProgram(file: string): ProgramResult | Promise<ProgramResult> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the entry is a path chosen at run time, loaded as the CLI loads it
  const exported: unknown = require(file);
  return typeof exported === "function" ? (exported as () => ProgramResult | Promise<ProgramResult>)() : (exported as ProgramResult);
}

/** Readable JSON for resources.json: secrets redacted, resource references as their URN. */
function readable(value: unknown): unknown {
  const redacted = redactSecrets(value);
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v !== "object" || v === null) return v;
    const r = v as Record<string, unknown>;
    if (r[SIG_KEY] === RESOURCE_SIG) return r.urn;
    return Object.fromEntries(Object.entries(r).map(([k, x]) => [k, walk(x)]));
  };
  return walk(redacted);
}

const containsSecret = (v: unknown): boolean =>
  isSecretWire(v) ||
  (Array.isArray(v) ? v.some(containsSecret) : typeof v === "object" && v !== null && Object.values(v).some(containsSecret));

/** Rendered files and user data, as they would land on each host. */
export function hostFilesOf(resources: readonly CapturedResource[], warnings: string[]): HostFileWritten[] {
  const files: HostFileWritten[] = [];
  const views = resources
    .filter((r) => r.custom)
    .map((r) => ({ r, view: { type: r.type, urn: r.urn, name: r.name, props: plainValue(r.inputs) as Record<string, unknown> } }));
  const byUrn = new Map(views.map((v) => [v.r.urn, v.r]));
  for (const f of renderedFiles(views.map((v) => v.view))) {
    const source = byUrn.get(f.resource.urn) as CapturedResource;
    files.push({ host: f.host, path: f.path, content: f.content, secretMarked: containsSecret(source.inputs.content) });
  }
  for (const { r, view } of views) {
    const userData = r.type === TYPES.instance ? view.props.userData : r.type === TYPES.launchTemplate ? view.props.userData : undefined;
    const base64 = r.type === TYPES.instance ? view.props.userDataBase64 : undefined;
    if (userData === undefined && base64 === undefined) continue;
    const host = hostOf(view.props);
    if (host === undefined) {
      warnings.push(`${r.type} ${r.name} has user data but no odoo-stack:host tag; its user data was not written`);
      continue;
    }
    // Launch templates take user data base64-encoded; instances take it as text or in userDataBase64.
    const text =
      typeof base64 === "string"
        ? Buffer.from(base64, "base64").toString("utf8")
        : r.type === TYPES.launchTemplate
          ? Buffer.from(String(userData), "base64").toString("utf8")
          : String(userData);
    files.push({ host, path: USER_DATA_PATH, content: text, secretMarked: containsSecret(r.inputs.userData ?? r.inputs.userDataBase64) });
  }
  return files;
}

function writeHostFiles(stackDir: string, files: readonly HostFileWritten[]): void {
  const seen = new Map<string, string>();
  for (const f of files) {
    const hostDir = path.join(stackDir, "hosts", f.host);
    const target = path.resolve(hostDir, `.${path.posix.normalize(`/${f.path}`)}`);
    if (!target.startsWith(hostDir + path.sep)) throw new Error(`file ${f.path} of host ${f.host} would be written outside ${hostDir}`);
    const previous = seen.get(target);
    if (previous !== undefined && previous !== f.content) throw new Error(`two different files are delivered to ${f.host}:${f.path}`);
    seen.set(target, f.content);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, f.content);
  }
}

/** The stack output holding the runbooks: { "<file>.md": markdown }. */
export const RUNBOOKS_OUTPUT = "runbooks";

/**
 * The runbook files of a program's outputs (its `runbooks` output), checked: plain markdown file
 * names only, so nothing is written outside runbooks/. Empty when the program has no runbooks.
 */
export function runbookFiles(outputs: Readonly<Record<string, WireValue>>): { readonly name: string; readonly content: string }[] {
  const value = outputs[RUNBOOKS_OUTPUT] === undefined ? undefined : plainValue(outputs[RUNBOOKS_OUTPUT]);
  if (value === undefined || value === null) return [];
  if (typeof value !== "object" || Array.isArray(value)) throw new Error(`the '${RUNBOOKS_OUTPUT}' output must map file names to markdown`);
  return Object.entries(value as Record<string, unknown>)
    .map(([name, content]) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*\.md$/.test(name))
        throw new Error(`runbook file name ${JSON.stringify(name)} must be a plain *.md name`);
      if (typeof content !== "string") throw new Error(`runbook ${name} must be markdown text`);
      return { name, content };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The line the plan puts under every runbook's title: the names in it are the mocks' (issue 13).
 * The program's `runbooks` output of a deployed stack carries the real ones; `pulumi stack output`
 * prints them.
 */
export function standInNotice(file: string): string {
  return (
    `> **Offline plan: the names here are stand-ins.** \`npm run plan\` runs the program under mocks, so generated names (buckets such as \`…-5041f2c\`), ids and the account (\`${MOCK_ACCOUNT_ID}\`) are the plan's, not your stack's. ` +
    `The deployed stack's runbooks carry its real names: \`pulumi stack output ${RUNBOOKS_OUTPUT} --json | jq -r '.["${file}"]'\`.`
  );
}

/** A runbook as the plan writes it: the stand-in notice under its title (the first "# " line). */
export function withStandInNotice(file: string, markdown: string): string {
  const lines = markdown.split("\n");
  const title = lines.findIndex((l) => l.startsWith("# "));
  if (title < 0) throw new Error(`runbook ${file} has no title line`);
  return [...lines.slice(0, title + 1), "", standInNotice(file), ...lines.slice(title + 1)].join("\n");
}

/** The procedure table's procedures the runbooks render as marked blocks, with the items each declares. */
export function renderedProcedures(
  model: StackModel,
  runbooks: readonly { readonly name: string; readonly content: string }[],
): RenderedProcedure[] {
  const table = new Map(operationalProcedures(model).map((p) => [p.id, p]));
  const out: RenderedProcedure[] = [];
  for (const r of runbooks) {
    const ids = new Set(
      extractShellBlocks(r.content)
        .map((b) => b.procedure)
        .filter((p): p is string => p !== undefined && table.has(p)),
    );
    for (const id of [...ids].sort())
      out.push({ where: `runbooks/${r.name}#${id}`, checklist: (table.get(id) as OperationalProcedure).checklist });
  }
  return out;
}

/**
 * The stack's placeholder values (lib/config.ts placeholderProblems): the program accepts them
 * under the plan's mocks, where nothing is deployed, and refuses them under the real engine.
 */
export function placeholderWarnings(settings: StackConfig): string[] {
  const prefix = `${settings.project}:`;
  const raw = Object.fromEntries(
    Object.entries(settings.config)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [k.slice(prefix.length), v]),
  );
  return placeholderProblems(raw).map(
    (p) => `${prefix}${p.key} = ${JSON.stringify(p.value)} ${p.fix}; accepted by this offline plan, refused by a real pulumi preview or up`,
  );
}

export async function plan(opts: PlanOptions): Promise<PlanResult> {
  const started = Date.now();
  const warnings: string[] = [];
  const projectDir = opts.projectDir ?? ROOT;
  const settings = readStackConfig(projectDir, opts.stack);
  warnings.push(...settings.warnings, ...copiedStackWarnings(projectDir, opts.stack), ...placeholderWarnings(settings));
  const programFile = path.resolve(opts.program ?? path.join(ROOT, "index.ts"));
  if (!fs.existsSync(programFile)) throw new Error(`program ${programFile} does not exist`);
  const policyConfig = opts.policyConfig ? readPolicyConfigFile(path.resolve(opts.policyConfig)) : {};
  const context: StackContext = {
    stack: settings.stack,
    project: settings.project,
    // The mocks run the program as `pulumi up` does: every value known.
    dryRun: false,
    config: settings.config,
    secretKeys: settings.secretKeys,
  };

  // The pack type-checks itself for a few seconds; start it while the program runs.
  const packStarting = startPolicyPack(POLICY_DIR, { context });
  let pack: PolicyPackClient | undefined;
  try {
    const programStarted = Date.now();
    const run = await runProgram({
      stack: settings.stack,
      project: settings.project,
      config: settings.config,
      secretKeys: settings.secretKeys,
      program: () => loadProgram(programFile),
    });
    const programMs = Date.now() - programStarted;

    const stackDir = path.join(path.resolve(opts.outDir ?? path.join(ROOT, "out")), settings.stack);
    fs.rmSync(stackDir, { recursive: true, force: true });
    fs.mkdirSync(stackDir, { recursive: true });
    const resourcesJson = {
      stack: settings.stack,
      project: settings.project,
      resources: run.resources.map((r) => ({
        urn: r.urn,
        type: r.type,
        name: r.name,
        parent: r.parent,
        custom: r.custom,
        protect: r.protect,
        dependencies: r.dependencies,
        inputs: readable(r.inputs),
      })),
      // The runbooks are written as files below, not repeated here.
      outputs: readable(Object.fromEntries(Object.entries(run.outputs).filter(([k]) => k !== RUNBOOKS_OUTPUT))),
    };
    fs.writeFileSync(path.join(stackDir, "resources.json"), `${JSON.stringify(resourcesJson, null, 2)}\n`);
    // The monthly cost of what would be deployed, from the committed price table of the region.
    const region = settings.config["aws:region"] ?? "";
    const prices = readPriceTable(region);
    const estimate = prices
      ? estimateMonthlyCost(
          run.resources
            .filter((r) => r.custom)
            .map((r) => ({ type: r.type, name: r.name, inputs: plainValue(r.inputs) as Record<string, unknown> })),
          prices,
        )
      : undefined;
    fs.writeFileSync(path.join(stackDir, "cost.md"), renderCostMarkdown(settings.stack, region, prices, estimate));
    if (estimate && estimate.unpriced.length > 0)
      warnings.push(`cost.md leaves out what the price table has no price for: ${estimate.unpriced.join(", ")}`);
    const files = hostFilesOf(run.resources, warnings);
    writeHostFiles(stackDir, files);
    const runbooks = runbookFiles(run.outputs);
    if (runbooks.length > 0) fs.mkdirSync(path.join(stackDir, "runbooks"), { recursive: true });
    for (const r of runbooks) fs.writeFileSync(path.join(stackDir, "runbooks", r.name), withStandInNotice(r.name, r.content));
    for (const f of files.filter((x) => x.secretMarked)) {
      warnings.push(`${f.host}:${f.path} arrived marked secret; rendered files should carry secretRef placeholders, not secrets`);
    }

    pack = await packStarting;
    const analysisStarted = Date.now();
    await pack.configureStack(context);
    const info = await pack.getAnalyzerInfo();
    await pack.configure(buildPolicyConfig(info, policyConfig));
    const { analyze, stack } = analyzerResourcesFrom(run.resources);
    const perResource = await Promise.all(analyze.map((r) => pack!.analyze(r)));
    const diagnostics = [...perResource.flat(), ...(await pack.analyzeStack(stack))];
    const analysisMs = Date.now() - analysisStarted;
    fs.writeFileSync(
      path.join(stackDir, "policy.json"),
      `${JSON.stringify(
        {
          pack: { name: info.name, version: info.version },
          policies: info.policies.map((p) => ({ name: p.name, type: p.type, enforcementLevel: p.enforcementLevel })),
          mandatory: diagnostics.filter((d) => d.enforcementLevel === "mandatory").length,
          advisory: diagnostics.filter((d) => d.enforcementLevel === "advisory").length,
          diagnostics,
          packOutput: pack.output,
          packLogs: pack.logs,
        },
        null,
        2,
      )}\n`,
    );

    let checklist: PlanResult["checklist"];
    if (fs.existsSync(CHECKLIST_FILE)) {
      const items = parseChecklist(fs.readFileSync(CHECKLIST_FILE, "utf8"));
      const model = stackModelOf(settings);
      const evidence = collectEvidence(items, {
        info,
        diagnostics,
        files,
        resources: run.resources.map((r) => ({ name: r.name, type: r.type, inputs: readable(r.inputs) as Record<string, unknown> })),
        // The "R" items' evidence (BACKUP-3, BACKUP-4, AUTH-4): procedures of the table the
        // program's runbooks render as runnable blocks, not text that names an ID.
        procedures: renderedProcedures(model, runbooks),
        engine: model.settings.postgresEngine,
      });
      fs.writeFileSync(
        path.join(stackDir, "checklist.md"),
        renderChecklist(settings.stack, items, evidence, model.settings.postgresEngine),
      );
      checklist = {
        items: items.length,
        withGaps: itemsWithGaps(items, evidence).length,
        uncitedMandatory: uncitedMandatory(items, diagnostics).length,
      };
    } else {
      warnings.push(`${CHECKLIST_FILE} not found (CI checks out shared/ beside the repository); checklist.md was not written`);
    }

    return {
      stackDir,
      resources: run.resources,
      files,
      info,
      diagnostics,
      warnings,
      checklist,
      monthlyCost: estimate && prices ? { total: estimate.total, currency: prices.currency } : undefined,
      timings: { programMs, packStartupMs: pack.startupMs, analysisMs, totalMs: Date.now() - started },
    };
  } finally {
    // Close the pack on every path, including a program that failed while it was starting.
    await (pack ?? (await packStarting.catch(() => undefined)))?.close();
  }
}

/** The violation without the policy's description, which the SDK puts on the message's first line. */
const violationText = (d: PolicyDiagnostic): string =>
  d.message.startsWith(`${d.description}\n`) ? d.message.slice(d.description.length + 1) : d.message;

export function summary(result: PlanResult, stack: string): string {
  const rel = (p: string) => path.relative(process.cwd(), p) || ".";
  const byType = new Map<string, number>();
  for (const r of result.resources) byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
  const hosts = new Map<string, number>();
  for (const f of result.files) hosts.set(f.host, (hosts.get(f.host) ?? 0) + 1);
  const mandatory = result.diagnostics.filter((d) => d.enforcementLevel === "mandatory");
  const advisory = result.diagnostics.filter((d) => d.enforcementLevel === "advisory");
  const nameOf = (urn: string) => (urn ? urn.slice(urn.lastIndexOf("::") + 2) : "(stack)");
  const t = result.timings;
  const lines = [
    `odoo-stack plan, stack ${stack}`,
    `  resources: ${result.resources.length} (${result.resources.filter((r) => r.custom).length} custom) → ${rel(path.join(result.stackDir, "resources.json"))}`,
    ...[...byType].sort(([a], [b]) => a.localeCompare(b)).map(([type, n]) => `    ${String(n).padStart(4)}  ${type}`),
    `  hosts: ${
      [...hosts]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([h, n]) => `${h} (${n} file${n === 1 ? "" : "s"})`)
        .join(", ") || "none"
    } → ${rel(path.join(result.stackDir, "hosts"))}`,
    `  policy pack ${result.info.name} ${result.info.version}: ${result.info.policies.length} policies; ${mandatory.length} mandatory, ${advisory.length} advisory violation${advisory.length === 1 ? "" : "s"} → ${rel(path.join(result.stackDir, "policy.json"))}`,
    ...[...mandatory, ...advisory].map((d) => `    [${d.enforcementLevel}] ${d.policyName} on ${nameOf(d.urn)}: ${violationText(d)}`),
    result.checklist
      ? `  checklist: ${result.checklist.items} items, ${result.checklist.withGaps} with gaps${result.checklist.uncitedMandatory > 0 ? `, and ${result.checklist.uncitedMandatory} mandatory violation(s) naming no item` : ""} → ${rel(path.join(result.stackDir, "checklist.md"))}`
      : "  checklist: not written",
    result.monthlyCost
      ? `  cost: ${result.monthlyCost.total.toFixed(2)} ${result.monthlyCost.currency} per month (On-Demand list prices, usage extra) → ${rel(path.join(result.stackDir, "cost.md"))}`
      : `  cost: no price table for the region → ${rel(path.join(result.stackDir, "cost.md"))}`,
    ...result.warnings.map((w) => `  warning: ${w}`),
    `  time: ${t.totalMs} ms (program ${t.programMs} ms; pack startup ${t.packStartupMs} ms, alongside the program; analysis ${t.analysisMs} ms)`,
  ];
  return lines.join("\n");
}

const USAGE = "usage: npm run plan -- [--stack NAME] [--program FILE] [--policy-config FILE] [--out DIR]";

export function parseArgs(argv: readonly string[]): PlanOptions {
  const values: Record<string, string> = {};
  const flags = new Set(["--stack", "--program", "--policy-config", "--out"]);
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    if (!flags.has(flag)) throw new Error(`unknown argument ${argv[i]}\n${USAGE}`);
    const value = inline ?? argv[++i];
    if (value === undefined || value === "") throw new Error(`${flag} needs a value\n${USAGE}`);
    values[flag] = value;
  }
  return {
    stack: values["--stack"] ?? "prod",
    program: values["--program"],
    policyConfig: values["--policy-config"],
    outDir: values["--out"],
  };
}

async function main(): Promise<number> {
  let opts: PlanOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  try {
    const result = await plan(opts);
    console.log(summary(result, opts.stack));
    return result.diagnostics.some((d) => d.enforcementLevel === "mandatory") ? 1 : 0;
  } catch (err) {
    // The message says what is wrong; the stack of what the program threw says where (a
    // ConfigError's message is complete on its own).
    const cause = err instanceof Error ? err.cause : undefined;
    const where = cause instanceof Error && cause.name !== "ConfigError" && cause.stack ? `\n${cause.stack}` : "";
    console.error(`odoo-stack plan, stack ${opts.stack}: failed\n${err instanceof Error ? err.message : String(err)}${where}`);
    return 2;
  }
}

if (require.main === module) {
  main().then((code) => process.exit(code));
}
