// The shared filestore (issue 8): Odoo's attachments and sessions on EFS. The file system is
// encrypted at rest, refuses requests that do not come over TLS, and its mount targets admit
// NFS (2049) from the Odoo hosts' security group and nothing else (NET-1: only Odoo reaches its
// data; BACKUP-1: the filestore is half of what the backups protect).
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { PORTS } from "../lib/ports";
import { idOf, isRecord, referencedResources, roleOf, stringList, TYPES, UnknownValues, type StackResourceView } from "./lib/resources";
import {
  describePorts,
  SECURITY_GROUP,
  SECURITY_GROUP_INGRESS_RULE,
  SECURITY_GROUP_RULE,
  securityGroupIngressOf,
} from "./lib/security-groups";

const EFS_FILE_SYSTEM_POLICY = "aws:efs/fileSystemPolicy:FileSystemPolicy";
const NFS_PORT = PORTS.efs.port;

/** BACKUP-1 (and AUTH-2: sessions hold login tokens): the filestore is encrypted at rest. */
export const efsFileSystemEncrypted: ResourceValidationPolicy = {
  name: "efs-file-system-encrypted",
  description: "Checks whether an EFS file system is encrypted at rest (BACKUP-1).",
  validateResource: (args, reportViolation) => {
    if (args.type !== TYPES.efsFileSystem) return;
    if (args.props.encrypted !== true) {
      reportViolation(
        `EFS file system (${args.name}) must be encrypted (encrypted = true): it holds Odoo's attachments and sessions (BACKUP-1).`,
      );
    }
  },
};

/** A policy document's statements, from JSON text or an object. */
function statementsOf(policy: unknown): Record<string, unknown>[] {
  let doc: unknown = policy;
  if (typeof policy === "string") {
    try {
      doc = JSON.parse(policy);
    } catch {
      return [];
    }
  }
  if (!isRecord(doc)) return [];
  const list = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
  return list.filter(isRecord);
}

/** A Deny of every principal whenever aws:SecureTransport is false. */
const deniesPlainTransport = (s: Record<string, unknown>): boolean => {
  if (s.Effect !== "Deny") return false;
  const condition = isRecord(s.Condition) && isRecord(s.Condition.Bool) ? s.Condition.Bool : undefined;
  return condition !== undefined && String(condition["aws:SecureTransport"]).toLowerCase() === "false";
};

/**
 * The server side of the TLS mount: a file system policy that denies any request made without
 * TLS. Without it, a host (or an operator) mounting plain NFS would carry the filestore in
 * clear text through the VPC.
 */
export const efsFileSystemRequiresTls: StackValidationPolicy = {
  name: "efs-file-system-requires-tls",
  description:
    "Checks whether every EFS file system has a file system policy that denies requests without TLS (aws:SecureTransport = false) (NET-1).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const policies = resources.filter((r) => r.type === EFS_FILE_SYSTEM_POLICY);
    for (const fs of resources.filter((r) => r.type === TYPES.efsFileSystem)) {
      unknown.run(() => {
        const own = policies.filter((p) => referencedResources(p, "fileSystemId", [fs]).length > 0);
        if (!own.some((p) => statementsOf(p.props.policy).some(deniesPlainTransport))) {
          reportViolation(
            `EFS file system (${fs.name}) must have a file system policy that denies every request with aws:SecureTransport = false, so the filestore only travels over TLS (NET-1).`,
            fs.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

/** The properties naming a rule's own group and its source group, per resource type. */
const RULE_PROPERTIES: Readonly<Record<string, { readonly target: string; readonly source: string }>> = {
  [SECURITY_GROUP_RULE]: { target: "securityGroupId", source: "sourceSecurityGroupId" },
  [SECURITY_GROUP_INGRESS_RULE]: { target: "securityGroupId", source: "referencedSecurityGroupId" },
};

/**
 * NET-1 for the data: the security groups of the mount targets admit tcp 2049 and nothing else,
 * from the Odoo hosts' group and no other source (no address range, no other tier).
 */
export const efsMountTargetsOnlyFromOdoo: StackValidationPolicy = {
  name: "efs-mount-targets-only-from-odoo",
  description: `Checks whether the security groups of EFS mount targets admit only tcp ${NFS_PORT} from the Odoo hosts' security group (NET-1).`,
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const groups = resources.filter((r) => r.type === SECURITY_GROUP);
    const mountGroups = new Set<StackResourceView>();
    for (const target of resources.filter((r) => r.type === TYPES.efsMountTarget)) {
      unknown.run(() => {
        const found = referencedResources(target, "securityGroups", groups, () => stringList(target.props.securityGroups));
        if (found.length === 0) {
          reportViolation(
            `EFS mount target (${target.name}) must use a security group of this stack (tagged odoo-stack:role = efs), so the pack can check who reaches ${NFS_PORT} (NET-1).`,
            target.urn,
          );
        }
        for (const g of found) mountGroups.add(g);
      });
    }
    for (const r of resources) {
      unknown.run(() => {
        const ingress = securityGroupIngressOf(r);
        if (!ingress) return;
        const properties = RULE_PROPERTIES[r.type];
        const owners = properties === undefined ? [r] : referencedResources(r, properties.target, groups);
        if (!owners.some((g) => mountGroups.has(g))) return;
        for (const p of ingress.permissions) {
          const nfsOnly = p.protocol === "tcp" && p.fromPort === NFS_PORT && p.toPort === NFS_PORT;
          const sourceGroups =
            properties === undefined
              ? groups.filter((g) => p.sourceSecurityGroups.includes(idOf(g) ?? "\u0000"))
              : referencedResources(r, properties.source, groups, () => p.sourceSecurityGroups);
          const fromOdoo =
            p.cidrs.length === 0 &&
            p.prefixLists.length === 0 &&
            !p.self &&
            p.sourceSecurityGroups.length > 0 &&
            sourceGroups.length > 0 &&
            sourceGroups.every((g) => roleOf(g.props) === "odoo");
          if (!nfsOnly || !fromOdoo) {
            const sources =
              [...p.cidrs, ...p.prefixLists, ...p.sourceSecurityGroups, ...(p.self ? ["itself"] : [])].join(", ") || "no source";
            reportViolation(
              `${ingress.label} must admit only tcp ${NFS_PORT} from the Odoo hosts' security group to the EFS mount targets; it admits ${describePorts(p)} from ${sources} (NET-1).`,
              r.urn,
            );
          }
        }
      });
    }
    unknown.finish();
  },
};

export const policies: Policies = [efsFileSystemEncrypted, efsFileSystemRequiresTls, efsMountTargetsOnlyFromOdoo];
