// A copy of a planned stack that a mutation edits, shared by the prod and scale mutation suites:
// each mutation breaks one checklist item and goes through the pack over gRPC.
import { analyzerResourcesFrom, type PolicyDiagnostic, type PolicyPackClient } from "../../tools/analyzer-client";
import type { RunningPack } from "../helpers/policy-server";
import type { CapturedResource } from "../../tools/mocks";

export type Planned = { -readonly [K in keyof CapturedResource]: CapturedResource[K] } & {
  inputs: Record<string, any>;
  outputs: Record<string, any>;
  propertyDependencies: Record<string, string[]>;
};

/**
 * A copy of the planned stack that a mutation edits, remembering what it touched. Copied on
 * write: a resource is cloned the first time a mutation reaches it, so the plan itself is never
 * edited and the hundreds of mutations do not each copy the whole stack.
 */
export class MutableStack {
  readonly resources: Planned[];
  readonly touched = new Set<string>();
  private readonly own = new Set<Planned>();

  constructor(base: readonly Planned[]) {
    this.resources = [...base];
  }

  /** The resource named `name`, as this stack's own copy (safe to edit). */
  get(name: string): Planned {
    const found = this.resources.filter((r) => r.name === name && r.custom);
    if (found.length !== 1) throw new Error(`expected one resource named ${name}, found ${found.length}`);
    if (this.own.has(found[0])) return found[0];
    const copy = JSON.parse(JSON.stringify(found[0])) as Planned;
    this.resources[this.resources.indexOf(found[0])] = copy;
    this.own.add(copy);
    return copy;
  }

  /** Edits a resource's inputs and outputs alike. */
  edit(name: string, change: (props: Record<string, any>) => void): this {
    const r = this.get(name);
    change(r.inputs);
    change(r.outputs);
    this.touched.add(r.urn);
    return this;
  }

  /** Points a property at other resources, value and engine dependencies together (`undefined` removes the value). */
  refer(name: string, property: string, targets: readonly string[], value: unknown): this {
    const r = this.get(name);
    r.propertyDependencies[property] = targets.map((t) => this.get(t).urn);
    return this.edit(name, (p) => {
      if (value === undefined) delete p[property];
      else p[property] = value;
    });
  }

  /**
   * Adds a custom resource the program never declared (a launch template, a load balancer, a
   * rule of another shape), under the stack, its inputs as its outputs; `refer` maps a property
   * to the resources it was computed from.
   */
  add(type: string, name: string, props: Record<string, any>, refer: Readonly<Record<string, readonly string[]>> = {}): this {
    const stack = this.resources.find((r) => r.type === "pulumi:pulumi:Stack");
    if (!stack) throw new Error("the planned stack has no stack resource");
    const [prefix, project] = stack.urn.split("::");
    const propertyDependencies = Object.fromEntries(Object.entries(refer).map(([k, names]) => [k, names.map((n) => this.get(n).urn)]));
    const urn = `${prefix}::${project}::${type}::${name}`;
    const added: Planned = {
      urn,
      type,
      name,
      custom: true,
      read: false,
      parent: stack.urn,
      id: `${name}-id`,
      dependencies: [...new Set(Object.values(propertyDependencies).flat())],
      propertyDependencies,
      provider: "",
      protect: false,
      ignoreChanges: [],
      deleteBeforeReplace: undefined,
      additionalSecretOutputs: [],
      aliases: [],
      customTimeouts: undefined,
      inputs: JSON.parse(JSON.stringify(props)),
      outputs: JSON.parse(JSON.stringify(props)),
    };
    this.resources.push(added);
    this.own.add(added);
    this.touched.add(urn);
    return this;
  }

  /** Delivers one more file to a host: a config object like the host's others, listed in its manifest with `mode`. */
  addFile(hostId: string, path: string, content: string, mode = "0644"): this {
    const like = this.get(this.fileName(hostId, "manifest.json"));
    const name = `${like.name.replace(/-manifest$/, "")}-file-${path.replace(/^\/+/, "").replace(/[^A-Za-z0-9._-]/g, "-")}`;
    const props = JSON.parse(JSON.stringify(like.inputs)) as Record<string, any>;
    props.key = `hosts/${hostId}/${path.replace(/^\//, "")}`;
    props.content = content;
    if (props.tags) props.tags["odoo-stack:path"] = path;
    this.add(like.type, name, props);
    Object.assign(this.get(name), { parent: like.parent, propertyDependencies: { bucket: [...(like.propertyDependencies.bucket ?? [])] } });
    return this.file(hostId, "manifest.json", (t) => {
      const doc = JSON.parse(t) as { files: Record<string, string>[] };
      doc.files.push({ group: "root", mode, owner: "root", path, service: "none", sha256: "0".repeat(64) });
      return `${JSON.stringify(doc, null, 2)}\n`;
    });
  }

  /** Moves a delivered file to another path on the same host (object key and path tag). */
  moveFile(hostId: string, path: string, to: string): this {
    return this.edit(this.fileName(hostId, path), (p) => {
      p.key = `hosts/${hostId}/${to.replace(/^\//, "")}`;
      if (p.tags) p.tags["odoo-stack:path"] = to;
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
export async function analyzeStack(
  client: PolicyPackClient,
  resources: readonly Planned[],
  urns?: ReadonlySet<string>,
  withStack = true,
): Promise<PolicyDiagnostic[]> {
  const { analyze: perResource, stack } = analyzerResourcesFrom(resources);
  const chosen = urns === undefined ? perResource : perResource.filter((r) => urns.has(r.urn));
  const found = (await Promise.all(chosen.map((r) => client.analyze(r)))).flat();
  return withStack ? [...found, ...(await client.analyzeStack(stack))] : found;
}

/**
 * Runs only `policy`, at its own level, for the next analyses: a mutation's verdict is that
 * policy's alone (policies are evaluated independently), and the pack then deserializes the
 * stack once per AnalyzeStack instead of once per stack policy. Reconfigures only on change.
 */
export function onlyPolicy(pack: () => RunningPack): (policy: string) => Promise<void> {
  let current: string | undefined;
  return async (policy) => {
    if (current === policy) return;
    const own = pack().info.policies.find((p) => p.name === policy);
    if (!own) throw new Error(`the pack has no policy ${policy}`);
    await pack().reconfigure({ all: "disabled", [policy]: own.enforcementLevel });
    current = policy;
  };
}

export const mandatory = (diagnostics: readonly PolicyDiagnostic[]): PolicyDiagnostic[] =>
  diagnostics.filter((d) => d.enforcementLevel === "mandatory");
