// Scenario 3 (issue 7): the tool itself. Wall time of the offline plan of the prod stack (in
// process through plan(), and once as the real `npm run plan` subprocess), and policy evaluation
// for synthetic stacks of growing size through the real pack over gRPC: one pack start-up,
// then per size Analyze for every resource and one AnalyzeStack. The cost must grow linearly.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  analyzerResourcesFrom,
  buildPolicyConfig,
  startPolicyPack,
  type AnalyzerResourceInput,
  type AnalyzerStackResourceInput,
  type PolicyPackClient,
} from "../analyzer-client";
import type { CapturedResource } from "../mocks";
import { plan, POLICY_DIR } from "../plan";
import type { PolicySize, ToolScenario } from "./results";
import { onInterrupt } from "./interrupt";
import { growthExponent, linearFit, LINEAR_MARGINAL_RATIO_LIMIT, marginalCosts, ratio } from "./stats";

export interface ToolOptions {
  readonly policySizes: readonly number[];
  readonly log: (line: string) => void;
}

export interface SyntheticStack {
  readonly analyze: AnalyzerResourceInput[];
  readonly stack: AnalyzerStackResourceInput[];
}

/**
 * `size` resources cycled from `template` (the planned prod stack, rendered files included):
 * copy k renames every URN and name with "-s<k>" and points its parent and dependencies at the
 * same copy, so each copy is a graph of the same shape. Host ids, tags and file contents stay
 * as they are: stack policies that group by host see every copy's files on the same hosts.
 */
export function syntheticStack(
  template: { readonly analyze: readonly AnalyzerResourceInput[]; readonly stack: readonly AnalyzerStackResourceInput[] },
  size: number,
): SyntheticStack {
  if (template.analyze.length === 0) throw new Error("the synthetic stack needs a non-empty template");
  const inTemplate = new Set(template.stack.map((r) => r.urn));
  const rename = (urn: string, copy: number) => (inTemplate.has(urn) ? `${urn}-s${copy}` : urn);
  const analyze: AnalyzerResourceInput[] = [];
  const stack: AnalyzerStackResourceInput[] = [];
  for (let i = 0; i < size; i++) {
    const copy = Math.floor(i / template.analyze.length);
    const a = template.analyze[i % template.analyze.length];
    const s = template.stack[i % template.stack.length];
    const options = a.options && {
      ...a.options,
      parent: a.options.parent && inTemplate.has(a.options.parent) ? rename(a.options.parent, copy) : undefined,
    };
    analyze.push({ ...a, urn: rename(a.urn, copy), name: `${a.name}-s${copy}`, options });
    stack.push({
      ...s,
      urn: rename(s.urn, copy),
      name: `${s.name}-s${copy}`,
      options,
      parent: s.parent && inTemplate.has(s.parent) ? rename(s.parent, copy) : undefined,
      dependencies: (s.dependencies ?? []).filter((d) => inTemplate.has(d)).map((d) => rename(d, copy)),
      propertyDependencies: Object.fromEntries(
        Object.entries(s.propertyDependencies ?? {}).map(([k, deps]) => [
          k,
          deps.filter((d) => inTemplate.has(d)).map((d) => rename(d, copy)),
        ]),
      ),
    });
  }
  return { analyze, stack };
}

/**
 * The template: every planned resource as the engine would send it, ordered so that any
 * prefix holds the types in the stack's proportions (the i-th of n resources of a type sorts at
 * (i + ½) / n); a size that is not a whole number of copies then has the same mix.
 */
export function templateFrom(resources: readonly CapturedResource[]): SyntheticStack {
  const { analyze, stack } = analyzerResourcesFrom(resources);
  const total = new Map<string, number>();
  for (const r of analyze) total.set(r.type, (total.get(r.type) ?? 0) + 1);
  const seen = new Map<string, number>();
  const keyed = analyze.map((a, i) => {
    const rank = seen.get(a.type) ?? 0;
    seen.set(a.type, rank + 1);
    return { key: (rank + 0.5) / (total.get(a.type) as number), i };
  });
  keyed.sort((x, y) => x.key - y.key || x.i - y.i);
  return { analyze: keyed.map(({ i }) => analyze[i]), stack: keyed.map(({ i }) => stack[i]) };
}

/** Runs `npm run plan -- --out <dir>` in its own process group; kills the group on timeout. */
function planSubprocess(
  root: string,
  outDir: string,
  timeoutMs = 180_000,
): Promise<{ wallMs: number; exitCode: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn("npm", ["run", "--silent", "plan", "--", "--out", outDir], {
      cwd: root,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")));
    const killGroup = async () => {
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        // already gone
      }
    };
    const unregister = onInterrupt(killGroup);
    const timer = setTimeout(() => void killGroup(), timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      unregister();
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      unregister();
      resolve({ wallMs: performance.now() - started, exitCode: code, output });
    });
  });
}

async function evaluate(pack: PolicyPackClient, synthetic: SyntheticStack): Promise<Omit<PolicySize, "resources" | "perResourceMs">> {
  const started = performance.now();
  // As the CLI does during a preview: resources are analysed as they are registered (many in
  // flight at once), then the whole stack.
  const perResource = await Promise.all(synthetic.analyze.map((r) => pack.analyze(r)));
  const analyzed = performance.now();
  const stackDiagnostics = await pack.analyzeStack(synthetic.stack);
  const finished = performance.now();
  return {
    analyzeMs: analyzed - started,
    analyzeStackMs: finished - analyzed,
    totalMs: finished - started,
    diagnostics: perResource.reduce((s, d) => s + d.length, 0) + stackDiagnostics.length,
  };
}

export async function runToolScenario(root: string, opts: ToolOptions): Promise<ToolScenario> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-bench-plan-"));
  try {
    opts.log("tool: plan() in process …");
    const planned = await plan({ stack: "prod", outDir: path.join(tmp, "in-process") });
    const mandatory = planned.diagnostics.filter((d) => d.enforcementLevel === "mandatory").length;
    opts.log(`tool: plan() ${planned.timings.totalMs} ms; npm run plan …`);
    const sub = await planSubprocess(root, path.join(tmp, "subprocess"));
    if (sub.exitCode !== 0) opts.log(`tool: npm run plan exited ${sub.exitCode}:\n${sub.output.slice(-2_000)}`);

    const template = templateFrom(planned.resources);
    const context = { stack: "prod", project: "odoo-stack", dryRun: false };
    const pack = await startPolicyPack(POLICY_DIR, { context, callTimeoutMs: 300_000 });
    const unregister = onInterrupt(() => pack.close());
    try {
      await pack.configureStack(context);
      const info = await pack.getAnalyzerInfo();
      await pack.configure(buildPolicyConfig(info, {}));
      // Warm the pack's JIT and caches on the smallest size before anything is measured.
      await evaluate(pack, syntheticStack(template, opts.policySizes[0]));
      const sizes: PolicySize[] = [];
      for (const size of opts.policySizes) {
        // Small sizes are quick and noisy: the fastest of three; the largest once. The minimum
        // flatters the small sizes, so it can only make growth look worse than it is.
        const repeats = size === Math.max(...opts.policySizes) ? 1 : 3;
        const synthetic = syntheticStack(template, size);
        let r = await evaluate(pack, synthetic);
        for (let i = 1; i < repeats; i++) {
          const again = await evaluate(pack, synthetic);
          if (again.totalMs < r.totalMs) r = again;
        }
        sizes.push({ resources: size, ...r, perResourceMs: r.totalMs / size });
        opts.log(
          `tool: ${size} resources: ${r.totalMs.toFixed(0)} ms (Analyze ${r.analyzeMs.toFixed(0)}, AnalyzeStack ${r.analyzeStackMs.toFixed(0)}), ${r.diagnostics} diagnostics`,
        );
      }
      const first = sizes[0];
      const last = sizes[sizes.length - 1];
      const exponent = growthExponent([first.resources, first.totalMs], [last.resources, last.totalMs]);
      const marginal = marginalCosts(sizes.map((s) => [s.resources, s.totalMs] as const));
      const marginalRatio = ratio(marginal[marginal.length - 1], marginal[0]);
      const counts = new Map<string, number>();
      for (const r of template.analyze) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
      return {
        planInProcess: {
          totalMs: planned.timings.totalMs,
          programMs: planned.timings.programMs,
          packStartupMs: planned.timings.packStartupMs,
          analysisMs: planned.timings.analysisMs,
          resources: planned.resources.length,
          mandatory,
        },
        planSubprocess: { wallMs: sub.wallMs, exitCode: sub.exitCode },
        policy: {
          packStartupMs: pack.startupMs,
          template:
            `the planned prod stack (${template.analyze.length} resources, ${counts.get("aws:s3/bucketObjectv2:BucketObjectv2") ?? 0} of them S3 objects carrying rendered files the policies parse, ` +
            `${counts.get("aws:ec2/instance:Instance") ?? 0} instances, ${counts.get("aws:ec2/securityGroup:SecurityGroup") ?? 0} security groups) repeated with renamed URNs, dependencies within each copy, ` +
            "types in the stack's proportions at every size. Copies keep their host ids, so stack policies that group by host see each host's files several times: the diagnostics count those findings. " +
            "Sizes up to 1,000 are the fastest of three evaluations, the largest a single one.",
          sizes,
          fit: linearFit(sizes.map((s) => [s.resources, s.totalMs] as const)),
          exponent,
          perResourceRatio: ratio(last.perResourceMs, first.perResourceMs),
          marginalMsPerResource: marginal,
          marginalRatio,
          linear: marginalRatio <= LINEAR_MARGINAL_RATIO_LIMIT,
        },
      };
    } finally {
      unregister();
      await pack.close();
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
