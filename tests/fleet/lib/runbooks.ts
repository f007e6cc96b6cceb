// The runbooks as an operator runs them (issue 13): every block of a procedure, in the order the
// runbooks print it, read from the plan's runbooks (out/<stack>/runbooks/*.md). Host blocks run
// on their hosts as written (bash -e, as root, with the block's params set); a laptop block is
// done by the suite the way its commands would do it (an upload to the bucket, a new parameter
// value), and a laptop block the suite does not know fails the run, so a new one gets noticed.
import * as fs from "fs";
import * as path from "path";
import { blockScript, extractShellBlocks, type ShellBlock } from "../../../templates/runbook-blocks";
import type { Fleet } from "./fleet";
import type { PlanFacts } from "./plan-facts";

export interface StepOutcome {
  readonly step: string;
  readonly where: string;
  readonly ms: number;
  readonly output: string;
}

/** Every block of `procedure` across the plan's runbooks, in document order. */
export function procedureBlocks(stackDir: string, procedure: string): ShellBlock[] {
  const dir = path.join(stackDir, "runbooks");
  const found = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".md"))
    .map((f) => extractShellBlocks(fs.readFileSync(path.join(dir, f), "utf8")).filter((b) => b.procedure === procedure))
    .filter((blocks) => blocks.length > 0);
  if (found.length !== 1) throw new Error(`procedure ${procedure}: ${found.length === 0 ? "in no runbook" : "in several runbooks"}`);
  return found[0];
}

/** What the suite does for a laptop block: the AWS or Pulumi side the commands would change. */
export type LaptopActions = Readonly<Record<string, () => Promise<void>>>;

/**
 * Runs a procedure: host blocks on each host they name, in order; laptop blocks through
 * `laptop[step]`, from the runbooks of `facts` (a re-plan's; defaults to the fleet's own plan).
 * Throws with the block's output at the first failure.
 */
export async function runProcedure(
  fleet: Fleet,
  procedure: string,
  opts: { params?: Readonly<Record<string, string>>; laptop?: LaptopActions; skip?: readonly string[]; facts?: PlanFacts } = {},
): Promise<StepOutcome[]> {
  const outcomes: StepOutcome[] = [];
  for (const block of procedureBlocks((opts.facts ?? fleet.facts).stackDir, procedure)) {
    const step = block.step ?? `line-${block.line}`;
    if (opts.skip?.includes(step)) continue;
    const started = Date.now();
    if (block.target.kind === "laptop") {
      const action = opts.laptop?.[step];
      if (!action)
        throw new Error(`procedure ${procedure}: the suite has no stand-in for laptop step ${step}:\n${block.commands.join("\n")}`);
      await action();
      outcomes.push({ step, where: "laptop", ms: Date.now() - started, output: "" });
      continue;
    }
    for (const host of block.target.hosts) {
      const script = `set -euo pipefail\n${blockScript(block, opts.params ?? {})}`;
      const r = fleet.machine(host).exec(["bash", "-c", script], { timeoutMs: 20 * 60_000 });
      if (r.code !== 0)
        throw new Error(
          `procedure ${procedure}, step ${step} on ${host} exited ${r.code}:\n${script}\n--- output:\n${r.stdout}\n${r.stderr}`,
        );
      outcomes.push({ step, where: host, ms: Date.now() - started, output: r.stdout + r.stderr });
    }
  }
  return outcomes;
}

/** "step@host 1.2 s, …" for a measured line. */
export const describeOutcomes = (outcomes: readonly StepOutcome[]): string =>
  outcomes.map((o) => `${o.step}@${o.where} ${(o.ms / 1000).toFixed(1)} s`).join(", ");
