// The component tests' view of tools/mocks.ts runProgram: every registration with its inputs
// decoded (secrets unwrapped, and where each secret was), its parent and options, plus every
// value the mocks generated for a secret output (RandomPassword.result, RandomBytes.base64,
// PrivateKey.privateKeyPem), so tests can hunt for those values in places they must not be.
// runProgram answers the invokes the stack makes (region, account, AZs, Debian AMI, instance
// types) and THROWS on any other.
import { isSecretWire, plainValue, runProgram, type CapturedResource, type ProgramResult } from "../../tools/mocks";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  /** The id the mocked provider gave it ("" for components). */
  readonly id: string;
  /** URN of the parent ("" only for the stack). */
  readonly parent: string;
  readonly custom: boolean;
  /** Inputs with secret markers removed. */
  readonly inputs: Record<string, any>;
  /** Top-level input keys whose value is, or contains, a secret. */
  readonly secretInputs: ReadonlySet<string>;
  /** Every string in the inputs outside a secret, with its property path. */
  readonly plainStrings: readonly { readonly path: string; readonly value: string }[];
  readonly protect: boolean;
  readonly deleteBeforeReplace: boolean;
  readonly ignoreChanges: readonly string[];
  readonly dependencies: readonly string[];
  /** What the mocked provider returned (custom resources), secret markers removed. */
  readonly outputs: Record<string, any>;
}

export interface MockRun {
  readonly resources: readonly RecordedResource[];
  readonly outputs: Record<string, any>;
  /** Stack outputs that are secrets. */
  readonly secretOutputs: ReadonlySet<string>;
  /** Every value the mocks generated for a random or tls secret output. */
  readonly generatedSecrets: readonly string[];
  readonly invokes: readonly { readonly token: string; readonly inputs: Readonly<Record<string, unknown>> }[];
}

export const STACK = "test";
export const PROJECT = "odoo-stack";
export const REGION = "eu-west-1";

/** Providers whose secret outputs are values the program generated (passwords, salts, keys). */
const GENERATOR_PACKAGES = ["random:", "tls:"];

/** Walks a wire value, collecting strings that are not inside a secret. */
function plainStringsOf(value: unknown, path: string, out: { path: string; value: string }[]): boolean {
  if (isSecretWire(value)) return true;
  if (typeof value === "string") out.push({ path, value });
  let sawSecret = false;
  if (Array.isArray(value)) value.forEach((v, i) => (sawSecret = plainStringsOf(v, `${path}[${i}]`, out) || sawSecret));
  else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) sawSecret = plainStringsOf(v, path ? `${path}.${k}` : k, out) || sawSecret;
  }
  return sawSecret;
}

const stringsIn = (value: unknown): string[] =>
  typeof value === "string"
    ? [value]
    : Array.isArray(value)
      ? value.flatMap(stringsIn)
      : typeof value === "object" && value !== null
        ? Object.values(value).flatMap(stringsIn)
        : [];

function record(r: CapturedResource): RecordedResource {
  const plainStrings: { path: string; value: string }[] = [];
  const secretInputs = new Set<string>();
  for (const [key, value] of Object.entries(r.inputs)) if (plainStringsOf(value, key, plainStrings)) secretInputs.add(key);
  return {
    type: r.type,
    name: r.name,
    urn: r.urn,
    id: r.id,
    parent: r.parent,
    custom: r.custom,
    inputs: plainValue(r.inputs) as Record<string, any>,
    secretInputs,
    plainStrings,
    protect: r.protect,
    deleteBeforeReplace: r.deleteBeforeReplace === true,
    ignoreChanges: r.ignoreChanges,
    dependencies: r.dependencies,
    outputs: plainValue(r.outputs) as Record<string, any>,
  };
}

/**
 * Runs `program` as stack "test" of project "odoo-stack" in eu-west-1 (plus `config`, keys with
 * namespace) and returns what it registered.
 */
export async function runUnderMocks(
  program: () => ProgramResult | Promise<ProgramResult>,
  config: Readonly<Record<string, string>> = {},
): Promise<MockRun> {
  // tools/mocks.ts gives AWS-shaped ids (vol-…, i-…; mockId) where a renderer validates one.
  const run = await runProgram({ stack: STACK, project: PROJECT, config: { "aws:region": REGION, ...config }, program });
  // Generators only: aws.ssm.Parameter also lists `value` as a secret output, but a String
  // parameter's value (a certificate) is public by design.
  const generatedSecrets = run.resources
    .filter((r) => GENERATOR_PACKAGES.some((p) => r.type.startsWith(p)))
    .flatMap((r) => r.additionalSecretOutputs.flatMap((key) => stringsIn(plainValue(r.outputs[key]))));
  const secretOutputs = new Set(
    Object.entries(run.outputs)
      .filter(([, v]) => plainStringsOf(v, "", []))
      .map(([k]) => k),
  );
  return {
    resources: run.resources.map(record),
    outputs: plainValue(run.outputs) as Record<string, any>,
    secretOutputs,
    generatedSecrets: generatedSecrets.filter((s) => s.length >= 8),
    invokes: run.calls,
  };
}

/** Resources of one type token. */
export const ofType = (run: MockRun, type: string): RecordedResource[] => run.resources.filter((r) => r.type === type);

/** The one resource named `name` (optionally of `type`); throws when there is not exactly one. */
export function named(run: MockRun, name: string, type?: string): RecordedResource {
  const found = run.resources.filter((r) => r.name === name && (type === undefined || r.type === type));
  if (found.length !== 1) throw new Error(`expected one resource named ${name}${type ? ` of type ${type}` : ""}, found ${found.length}`);
  return found[0];
}

/** Count of custom resources per type token, for exact-count assertions. */
export function countsByType(run: MockRun): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of run.resources) if (r.custom) counts[r.type] = (counts[r.type] ?? 0) + 1;
  return counts;
}

/** The resource a URN names. */
export function byUrn(run: MockRun, urn: string): RecordedResource | undefined {
  return run.resources.find((r) => r.urn === urn);
}
