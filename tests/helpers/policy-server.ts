// One policy-pack process per test file, started the way the Pulumi CLI starts it (see
// tools/analyzer-client.ts), configured with every policy at its own level, stopped after the
// file. Never construct the PolicyPack inside jest: the pack runs in its own process, type-checked
// by ts-node, exactly as in `pulumi preview --policy-pack policy`.
//
//   const pack = usePolicyPack();
//   it("…", async () => { const diags = await pack().client.analyze(resource(…)); … });
import * as path from "path";
import {
  buildPolicyConfig,
  startPolicyPack,
  type AnalyzerInfo,
  type AnalyzerStackResourceInput,
  type PolicyConfigFile,
  type PolicyDiagnostic,
  type PolicyPackClient,
} from "../../tools/analyzer-client";

export const POLICY_DIR = path.resolve(__dirname, "..", "..", "policy");
export const TEST_STACK = "test";
export const TEST_PROJECT = "odoo-stack";

/** Startup (ts-node type-checks the pack) takes seconds; a cold CI machine may take many more. */
export const PACK_STARTUP_TIMEOUT_MS = 120_000;

export interface RunningPack {
  readonly client: PolicyPackClient;
  readonly info: AnalyzerInfo;
  /** Milliseconds from spawn to the printed port. */
  readonly startupMs: number;
  /** Sends the policies' own levels again, with `overrides` (a policy-config file's shape) on top. */
  reconfigure(overrides?: PolicyConfigFile): Promise<void>;
}

/**
 * Starts the pack in beforeAll and stops it in afterAll of the calling test file; returns an
 * accessor for use inside tests.
 */
export function usePolicyPack(): () => RunningPack {
  let running: RunningPack | undefined;
  let client: PolicyPackClient | undefined;
  beforeAll(async () => {
    client = await startPolicyPack(POLICY_DIR, {
      startupTimeoutMs: PACK_STARTUP_TIMEOUT_MS,
      context: { stack: TEST_STACK, project: TEST_PROJECT, dryRun: false },
    });
    const c = client;
    await c.configureStack({ stack: TEST_STACK, project: TEST_PROJECT, dryRun: false });
    const info = await c.getAnalyzerInfo();
    const reconfigure = (overrides: PolicyConfigFile = {}) => c.configure(buildPolicyConfig(info, overrides));
    await reconfigure();
    running = { client: c, info, startupMs: c.startupMs, reconfigure };
  }, PACK_STARTUP_TIMEOUT_MS + 10_000);
  afterAll(async () => {
    await client?.close();
  });
  return () => {
    if (!running) throw new Error("the policy pack is not running (did beforeAll fail?)");
    return running;
  };
}

/** The URN the engine gives a resource of `type` named `name` directly under the test stack. */
export const testUrn = (type: string, name: string): string => `urn:pulumi:${TEST_STACK}::${TEST_PROJECT}::${type}::${name}`;

/**
 * A hand-written resource as Analyze/AnalyzeStack receive it, for the "valid resource, change one
 * field" style of policy test. `properties` are plain values (wrap secrets with mocks' wire form).
 */
export function resource(
  type: string,
  name: string,
  properties: Readonly<Record<string, unknown>>,
  extra: Partial<AnalyzerStackResourceInput> = {},
): AnalyzerStackResourceInput {
  return { urn: testUrn(type, name), type, name, properties, ...extra };
}

/** The diagnostics of one policy. */
export const ofPolicy = (diagnostics: readonly PolicyDiagnostic[], policyName: string): PolicyDiagnostic[] =>
  diagnostics.filter((d) => d.policyName === policyName);
