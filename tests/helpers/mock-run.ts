// Policy tests that build resources with the real SDK classes: run a small program under mocks
// (tools/mocks.ts) and send what it registered through the running pack, Analyze per resource
// and AnalyzeStack, exactly as tools/plan.ts does. Component tests use component-mocks.ts.
import type { RawConfig } from "../../lib/config";
import { analyzerResourcesFrom, type PolicyDiagnostic, type PolicyPackClient } from "../../tools/analyzer-client";
import { runProgram, type ProgramResult, type ProgramRun } from "../../tools/mocks";
import { configString } from "../../tools/stack-config";
import { TEST_PROJECT, TEST_STACK } from "./policy-server";

export const TEST_REGION = "eu-west-1";

/** A raw odoo-stack config (tests/helpers/fixtures.ts BASE_CONFIG) as the CLI passes it to a program. */
export function cliConfig(raw: RawConfig, region = TEST_REGION): Record<string, string> {
  const config: Record<string, string> = { "aws:region": region };
  for (const [key, value] of Object.entries(raw)) config[`${TEST_PROJECT}:${key}`] = configString(value);
  return config;
}

export interface AnalyzedProgram {
  readonly run: ProgramRun;
  /** Analyze's diagnostics, each under the URN of the resource analyzed. */
  readonly perResource: readonly PolicyDiagnostic[];
  /** AnalyzeStack's diagnostics. */
  readonly stack: readonly PolicyDiagnostic[];
  /** The URN of the one resource named `name`; throws when there is not exactly one. */
  urnOf(name: string): string;
}

/** Runs `program` under mocks as stack "test" and analyzes everything it registered. */
export async function analyzeProgram(
  client: PolicyPackClient,
  program: () => ProgramResult | Promise<ProgramResult>,
  config: Readonly<Record<string, string>> = { "aws:region": TEST_REGION },
): Promise<AnalyzedProgram> {
  const run = await runProgram({ stack: TEST_STACK, project: TEST_PROJECT, config, program });
  const { analyze, stack } = analyzerResourcesFrom(run.resources);
  const perResource = (await Promise.all(analyze.map((r) => client.analyze(r)))).flat();
  const stackDiagnostics = await client.analyzeStack(stack);
  return {
    run,
    perResource,
    stack: stackDiagnostics,
    urnOf(name) {
      const found = run.resources.filter((r) => r.name === name);
      if (found.length !== 1) throw new Error(`expected one resource named ${name}, found ${found.length}`);
      return found[0].urn;
    },
  };
}
