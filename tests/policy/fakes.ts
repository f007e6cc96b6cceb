// Unit-test doubles for the policy SDK's arguments: a policy's validateResource/validateStack
// is called directly with these (never a PolicyPack inside jest), with config defaults
// applied from the policy's configSchema as the CLI applies them. The gRPC route is tested in
// mutations.test.ts against the real pack process.
import type {
  Policy,
  PolicyResource,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "../../policy/lib/sdk";
import type { HostFile } from "../../templates/format";

export interface FakeResource {
  readonly type: string;
  readonly name: string;
  readonly props: Record<string, any>;
  readonly urn?: string;
  /** Property → names of the resources it was computed from (resolved to resources for stack policies). */
  readonly propertyDependencies?: Readonly<Record<string, readonly string[]>>;
}

export interface Violation {
  readonly message: string;
  readonly urn?: string;
}

export const urnOf = (r: Pick<FakeResource, "type" | "name" | "urn">): string =>
  r.urn ?? `urn:pulumi:test::odoo-stack::${r.type}::${r.name}`;

function configOf(policy: Policy, config: Record<string, unknown>): () => any {
  const defaults = Object.fromEntries(
    Object.entries(policy.configSchema?.properties ?? {})
      .filter(([, s]) => (s as { default?: unknown }).default !== undefined)
      .map(([k, s]) => [k, (s as { default?: unknown }).default]),
  );
  return () => ({ ...defaults, ...config });
}

const notApplicable = (reason?: string): never => {
  throw new Error(`notApplicable: ${reason ?? ""}`);
};

/** Runs a resource policy on one resource; returns the violation messages. */
export async function validateResource(
  policy: ResourceValidationPolicy,
  r: FakeResource,
  config: Record<string, unknown> = {},
): Promise<string[]> {
  const messages: string[] = [];
  const args = {
    type: r.type,
    props: r.props,
    urn: urnOf(r),
    name: r.name,
    opts: {
      protect: false,
      ignoreChanges: [],
      aliases: [],
      customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
      additionalSecretOutputs: [],
    },
    stackTags: new Map<string, string>(),
    isType: () => false,
    asType: () => undefined,
    getConfig: configOf(policy, config),
    notApplicable,
  } as unknown as ResourceValidationArgs;
  const validations =
    policy.validateResource === undefined
      ? []
      : Array.isArray(policy.validateResource)
        ? policy.validateResource
        : [policy.validateResource];
  for (const v of validations) await v(args, (message) => messages.push(message));
  return messages;
}

/** Runs a stack policy on a set of resources; dependencies name other fake resources. */
export async function validateStack(
  policy: StackValidationPolicy,
  resources: readonly FakeResource[],
  config: Record<string, unknown> = {},
): Promise<Violation[]> {
  const violations: Violation[] = [];
  const byName = new Map<string, PolicyResource>();
  const views = resources.map((r) => {
    const view = {
      type: r.type,
      name: r.name,
      urn: urnOf(r),
      props: r.props,
      opts: {},
      dependencies: [] as PolicyResource[],
      propertyDependencies: {} as Record<string, PolicyResource[]>,
      isType: () => false,
      asType: () => undefined,
    } as unknown as PolicyResource;
    byName.set(r.name, view);
    return view;
  });
  resources.forEach((r, i) => {
    for (const [property, names] of Object.entries(r.propertyDependencies ?? {})) {
      const deps = names.map((n) => {
        const d = byName.get(n);
        if (!d) throw new Error(`fake resource ${r.name}: dependency ${n} is not among the resources`);
        return d;
      });
      views[i].propertyDependencies[property] = deps;
      views[i].dependencies.push(...deps.filter((d) => !views[i].dependencies.includes(d)));
    }
  });
  const args = {
    resources: views,
    stackTags: new Map<string, string>(),
    getConfig: configOf(policy, config),
    notApplicable,
  } as unknown as StackValidationArgs;
  await policy.validateStack(args, (message, urn) => violations.push({ message, urn }));
  return violations;
}

/** Tags the components put on everything of a host (components/tags.ts hostTags). */
export function hostTags(role: string, hostId: string, extra: Record<string, string> = {}): Record<string, string> {
  return { Name: `odoo-stack-test-${hostId}`, "odoo-stack:stack": "test", "odoo-stack:role": role, "odoo-stack:host": hostId, ...extra };
}

const roleOfHost = (hostId: string): string => hostId.replace(/-\d+$/, "");

/** The Host component's name for a host (index.ts: "postgres" → "postgres-host", "odoo-1" → "odoo-odoo-1"). */
export const hostComponentName = (hostId: string): string => (/^odoo-\d+$/.test(hostId) ? `odoo-${hostId}` : `${hostId}-host`);

/**
 * The config object a host file travels as (components/host.ts): key hosts/<hostId>/<path without
 * its leading slash>, named as the component names it.
 */
export function configObject(hostId: string, file: Pick<HostFile, "path" | "content">): FakeResource {
  const suffix = file.path.replace(/^\/+/, "").replace(/[^A-Za-z0-9._-]/g, "-");
  return {
    type: "aws:s3/bucketObjectv2:BucketObjectv2",
    name: `${hostComponentName(hostId)}-file-${suffix}`,
    props: {
      bucket: "config-bucket-1234567",
      key: `hosts/${hostId}/${file.path.replace(/^\/+/, "")}`,
      content: file.content,
      contentType: "text/plain; charset=utf-8",
      serverSideEncryption: "aws:kms",
      tags: hostTags(roleOfHost(hostId), hostId, { "odoo-stack:path": file.path }),
    },
  };
}

/** A resource's props with one field replaced (a deep path "a.b.0.c" or a top-level key). */
export function withProp(r: FakeResource, path: string, value: unknown): FakeResource {
  const props = structuredClone(r.props);
  const keys = path.split(".");
  let cursor: any = props;
  for (const k of keys.slice(0, -1)) cursor = cursor[k];
  const last = keys[keys.length - 1];
  if (value === undefined) delete cursor[last];
  else cursor[last] = value;
  return { ...r, props };
}

/** A config object whose file text is changed by `edit`. */
export function withContent(r: FakeResource, edit: (text: string) => string): FakeResource {
  const next = edit(String(r.props.content));
  if (next === r.props.content) throw new Error(`the edit did not change ${r.name}: the mutation would prove nothing`);
  return withProp(r, "content", next);
}

/** Replaces the line holding `key = …` in an ini-style file (the whole line). */
export const setLine =
  (key: string, line: string | undefined) =>
  (text: string): string => {
    const re = new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*=.*$`, "m");
    if (!re.test(text)) throw new Error(`no line for ${key}`);
    return line === undefined ? text.replace(new RegExp(`${re.source}\\n?`, "m"), "") : text.replace(re, line);
  };
