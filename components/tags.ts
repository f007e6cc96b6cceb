// Tag keys, spelled once. The policy pack finds a resource's role and host by these tags, and
// operators find a stack's resources in the console by them, so a key written differently in
// one component would hide that resource from a policy.
import type { HostRole, StackModel } from "../lib/model";

export const TAG_KEYS = {
  name: "Name",
  stack: "odoo-stack:stack",
  role: "odoo-stack:role",
  /** HostId.id of the host a resource belongs to (instance, its role, its files, its cert). */
  host: "odoo-stack:host",
  /** On-host path of a config object in the config bucket. */
  path: "odoo-stack:path",
  /** Checklist IDs a security-group rule implements, space-separated (e.g. "NET-4"). */
  checklist: "odoo-stack:checklist",
} as const;

/**
 * What a resource is for. Host roles (proxy, odoo, pgbouncer, postgres) mark everything that
 * belongs to a host tier; the rest mark shared infrastructure. "nat" is egress-only: its
 * Elastic IPs never accept inbound connections.
 */
export type TagRole = HostRole | "network" | "nat" | "endpoints" | "secrets" | "tls" | "config" | "backups" | "efs";

/**
 * The tags of one resource: the user's `tags` setting first, then the stack's own keys, which
 * therefore win — a user tag cannot relabel a resource's role and slip it past a policy.
 */
export function resourceTags(
  model: StackModel,
  role: TagRole,
  resourceName: string,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return {
    ...model.settings.tags,
    [TAG_KEYS.name]: `${model.project}-${model.stack}-${resourceName}`,
    [TAG_KEYS.stack]: model.stack,
    [TAG_KEYS.role]: role,
    ...extra,
  };
}

/** resourceTags plus the host key, for everything that belongs to one host. */
export function hostTags(
  model: StackModel,
  host: { readonly role: HostRole; readonly id: string },
  resourceName: string,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return resourceTags(model, host.role, resourceName, { [TAG_KEYS.host]: host.id, ...extra });
}
