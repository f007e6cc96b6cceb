// A copy of a planned stack that a mutation edits, shared by the prod and scale mutation suites:
// each mutation breaks one checklist item and goes through the pack over gRPC.
import { analyzerResourcesFrom, type PolicyDiagnostic, type PolicyPackClient } from "../../tools/analyzer-client";
import type { CapturedResource } from "../../tools/mocks";

export type Planned = { -readonly [K in keyof CapturedResource]: CapturedResource[K] } & {
  inputs: Record<string, any>;
  outputs: Record<string, any>;
  propertyDependencies: Record<string, string[]>;
};

/** A copy of the planned stack that a mutation edits, remembering what it touched. */
export class MutableStack {
  readonly resources: Planned[];
  readonly touched = new Set<string>();

  constructor(base: readonly Planned[]) {
    this.resources = JSON.parse(JSON.stringify(base)) as Planned[];
  }

  get(name: string): Planned {
    const found = this.resources.filter((r) => r.name === name && r.custom);
    if (found.length !== 1) throw new Error(`expected one resource named ${name}, found ${found.length}`);
    return found[0];
  }

  /** Edits a resource's inputs and outputs alike. */
  edit(name: string, change: (props: Record<string, any>) => void): this {
    const r = this.get(name);
    change(r.inputs);
    change(r.outputs);
    this.touched.add(r.urn);
    return this;
  }

  /** Points a property at other resources, value and engine dependencies together. */
  refer(name: string, property: string, targets: readonly string[], value: unknown): this {
    const r = this.get(name);
    r.propertyDependencies[property] = targets.map((t) => this.get(t).urn);
    return this.edit(name, (p) => {
      p[property] = value;
    });
  }

  remove(name: string): this {
    const r = this.get(name);
    this.resources.splice(this.resources.indexOf(r), 1);
    return this;
  }

  /** The config object carrying `path` on `hostId`. */
  fileName(hostId: string, path: string): string {
    const key = `hosts/${hostId}/${path.replace(/^\//, "")}`;
    const found = this.resources.find((r) => r.inputs.key === key);
    if (!found) throw new Error(`no config object ${key}`);
    return found.name;
  }

  /** Edits a delivered file's text; the edit must change it. */
  file(hostId: string, path: string, edit: (text: string) => string): this {
    return this.edit(this.fileName(hostId, path), (p) => {
      const next = edit(String(p.content));
      if (next === p.content) throw new Error(`the mutation did not change ${path} on ${hostId}`);
      p.content = next;
    });
  }

  /** Sets (or with `undefined` removes) an ini-style `key = value` line of a delivered file. */
  line(hostId: string, path: string, key: string, line: string | undefined): this {
    return this.file(hostId, path, (t) => {
      const re = new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*=.*(\\n|$)`, "m");
      if (!re.test(t)) throw new Error(`${path} on ${hostId} has no ${key} line`);
      return t.replace(re, line === undefined ? "" : `${line}\n`);
    });
  }
}

/**
 * Every diagnostic of a (mutated) stack: Analyze for `urns` (all when undefined), then
 * AnalyzeStack for the whole stack unless `withStack` is false (a resource policy's finding
 * needs only its resource).
 */
export async function analyzeStack(client: PolicyPackClient, resources: readonly Planned[], urns?: ReadonlySet<string>, withStack = true): Promise<PolicyDiagnostic[]> {
  const { analyze: perResource, stack } = analyzerResourcesFrom(resources);
  const chosen = urns === undefined ? perResource : perResource.filter((r) => urns.has(r.urn));
  const found = (await Promise.all(chosen.map((r) => client.analyze(r)))).flat();
  return withStack ? [...found, ...(await client.analyzeStack(stack))] : found;
}

export const mandatory = (diagnostics: readonly PolicyDiagnostic[]): PolicyDiagnostic[] => diagnostics.filter((d) => d.enforcementLevel === "mandatory");
