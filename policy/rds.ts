// PostgreSQL on Amazon RDS (issue 8): the instance is private, encrypted, protected, kept in two
// AZs and backed up with PITR; its parameter group carries the checklist's settings that the EC2
// drop-in forces (PG-1, PG-2, PG-3, AUTH-1, TLS-1). RDS has no config file on a host, so these
// policies read the RDS resources themselves.
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { DB_ROLES } from "../lib/model";
import { POSTGRES_RESERVED } from "../lib/sizing";
import { parseOdooConf, parsePgbouncerIni } from "./lib/parse";
import { maxServerConnections, otherUsersServerConnections } from "./lib/pgbouncer";
import {
  booleanOf,
  fileKindOf,
  fileLabel,
  isRecord,
  numberOf,
  rdsInstanceByReference,
  referencedResources,
  renderedFiles,
  TYPES,
  UnknownValues,
  type ResourceView,
  type StackResourceView,
} from "./lib/resources";

/** NET-6: PostgreSQL accepts PgBouncer only; an RDS instance with a public address is reachable from the internet. */
export const rdsInstanceNotPublic: ResourceValidationPolicy = {
  name: "rds-instance-not-public",
  description: "Checks whether an RDS instance is not publicly accessible (NET-6).",
  validateResource: (args, reportViolation) => {
    if (args.type !== TYPES.rdsInstance) return;
    if (booleanOf(args.props.publiclyAccessible) === true) {
      reportViolation(
        `RDS instance (${args.name}) must not be publicly accessible (publiclyAccessible = false): PostgreSQL accepts only PgBouncer (NET-6).`,
      );
    }
  },
};

/** AUTH-2, BACKUP-1: the database (and its password verifiers) is encrypted at rest, snapshots included. */
export const rdsInstanceStorageEncrypted: ResourceValidationPolicy = {
  name: "rds-instance-storage-encrypted",
  description: "Checks whether an RDS instance encrypts its storage (AUTH-2, BACKUP-1).",
  validateResource: (args, reportViolation) => {
    if (args.type !== TYPES.rdsInstance) return;
    if (booleanOf(args.props.storageEncrypted) !== true) {
      reportViolation(
        `RDS instance (${args.name}) must encrypt its storage (storageEncrypted = true): it holds the database and its password verifiers (AUTH-2, BACKUP-1).`,
      );
    }
  },
};

/** BACKUP-1: a `pulumi destroy` or a replacement must not take the database with it. */
export const rdsInstanceDeletionProtection: ResourceValidationPolicy = {
  name: "rds-instance-deletion-protection",
  description: "Checks whether an RDS instance has deletion protection on (BACKUP-1).",
  validateResource: (args, reportViolation) => {
    if (args.type !== TYPES.rdsInstance) return;
    if (booleanOf(args.props.deletionProtection) !== true) {
      reportViolation(
        `RDS instance (${args.name}) must have deletion protection (deletionProtection = true), so no change or destroy can delete the database (BACKUP-1).`,
      );
    }
  },
};

interface RetentionConfig {
  readonly minimumBackupRetentionDays?: number;
}

/** BACKUP-1: automated backups (and so PITR) kept at least a week. */
export const rdsInstanceBackupRetention: ResourceValidationPolicy = {
  name: "rds-instance-backup-retention",
  description:
    "Checks whether an RDS instance keeps automated backups (PITR) for at least the configured number of days, 7 by default (BACKUP-1).",
  configSchema: { properties: { minimumBackupRetentionDays: { type: "integer", minimum: 1, maximum: 35, default: 7 } } },
  validateResource: (args, reportViolation) => {
    if (args.type !== TYPES.rdsInstance) return;
    const minimum = args.getConfig<RetentionConfig>().minimumBackupRetentionDays ?? 7;
    const days = numberOf(args.props.backupRetentionPeriod);
    if (days === undefined || days < minimum) {
      const now = days === undefined ? "absent" : String(days);
      reportViolation(
        `RDS instance (${args.name}) must keep automated backups for at least ${minimum} days (backupRetentionPeriod); it is ${now} (BACKUP-1).`,
      );
    }
  },
};

interface MultiAzConfig {
  readonly requireMultiAz?: boolean;
}

/**
 * BACKUP-1 (availability of the data): a standby in a second AZ takes over within minutes,
 * without a restore. Production requires it; a test stack may set requireMultiAz = false in
 * its policy config.
 */
export const rdsInstanceMultiAz: ResourceValidationPolicy = {
  name: "rds-instance-multi-az",
  description:
    "Checks whether an RDS instance runs Multi-AZ (a standby in a second AZ), unless the policy config sets requireMultiAz = false (BACKUP-1).",
  configSchema: { properties: { requireMultiAz: { type: "boolean", default: true } } },
  validateResource: (args, reportViolation) => {
    if (args.type !== TYPES.rdsInstance) return;
    if (args.getConfig<MultiAzConfig>().requireMultiAz === false) return;
    if (booleanOf(args.props.multiAz) !== true) {
      reportViolation(
        `RDS instance (${args.name}) must run Multi-AZ (multiAz = true) in production; set requireMultiAz = false in the policy config for a test stack (BACKUP-1).`,
      );
    }
  },
};

/** A parameter group's settings: name → value, lower-cased names. */
export function rdsParameterValues(group: ResourceView): Map<string, string> {
  const values = new Map<string, string>();
  const list = Array.isArray(group.props.parameters) ? group.props.parameters : [];
  for (const p of list) {
    if (isRecord(p) && typeof p.name === "string" && p.value !== undefined && p.value !== null)
      values.set(p.name.toLowerCase(), String(p.value).trim());
  }
  return values;
}

const PG_TIMEOUTS = ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"] as const;
const ON = new Set(["1", "on", "true"]);

/** The checks one parameter group must pass; each entry is the message's tail. */
function parameterGroupProblems(values: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  for (const timeout of PG_TIMEOUTS) {
    const v = values.get(timeout);
    const n = v === undefined ? undefined : numberOf(v);
    if (n === undefined || n <= 0) {
      problems.push(
        `set ${timeout} to a non-zero value; it is ${v === undefined ? "absent (RDS's default 0 disables it)" : JSON.stringify(v)} (PG-2)`,
      );
    }
  }
  if (!ON.has((values.get("log_lock_waits") ?? "").toLowerCase())) {
    problems.push(`set log_lock_waits = 1; it is ${values.get("log_lock_waits") ?? "absent (RDS's default is off)"} (PG-3)`);
  }
  if (values.get("rds.force_ssl") !== "1") {
    problems.push(
      `set rds.force_ssl = 1 so PostgreSQL refuses connections without TLS; it is ${values.get("rds.force_ssl") ?? "absent"} (TLS-1)`,
    );
  }
  const encryption = values.get("password_encryption");
  if (encryption !== undefined && encryption.toLowerCase() !== "scram-sha-256") {
    problems.push(`keep password_encryption = scram-sha-256; it is ${JSON.stringify(encryption)} (AUTH-1)`);
  }
  return problems;
}

const isPostgresFamily = (group: ResourceView): boolean =>
  typeof group.props.family === "string" && group.props.family.startsWith("postgres");

/** PG-2, PG-3, TLS-1, AUTH-1 in the parameter group of a PostgreSQL RDS instance. */
export const rdsParameterGroupChecklist: ResourceValidationPolicy = {
  name: "rds-parameter-group-checklist",
  description:
    "Checks whether a PostgreSQL RDS parameter group sets statement_timeout, lock_timeout and idle_in_transaction_session_timeout non-zero (PG-2), log_lock_waits = 1 (PG-3), rds.force_ssl = 1 (TLS-1) and keeps SCRAM (AUTH-1).",
  validateResource: (args, reportViolation) => {
    if (args.type !== TYPES.rdsParameterGroup || !isPostgresFamily(args)) return;
    for (const problem of parameterGroupProblems(rdsParameterValues(args))) {
      reportViolation(`RDS parameter group (${args.name}) must ${problem}.`);
    }
  },
};

/** The parameter group a PostgreSQL RDS instance uses, if it is one of this stack's. */
export function parameterGroupOf(instance: StackResourceView, groups: readonly StackResourceView[]): StackResourceView | undefined {
  const byDependency = referencedResources(instance, "parameterGroupName", groups, () => undefined);
  if (byDependency.length > 0) return byDependency[0];
  const name = instance.props.parameterGroupName;
  return groups.find((g) => typeof name === "string" && name !== "" && g.props.name === name);
}

/**
 * PG-1 and the parameter group's reach: each PostgreSQL RDS instance uses a parameter group of
 * this stack (RDS's default group has every timeout at 0), whose max_connections covers what
 * the PgBouncer hosts that dial it may open (pools + reserves + LISTEN pool, within the per-user
 * cap) plus the operator's and the superusers' slots.
 */
export const rdsMaxConnectionsCoverPgbouncer: StackValidationPolicy = {
  name: "rds-max-connections-cover-pgbouncer",
  description:
    "Checks whether each PostgreSQL RDS instance uses a parameter group of the stack whose max_connections covers PgBouncer's pools + reserves + LISTEN pool plus admin and superuser slots (PG-1, PG-2).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const groups = resources.filter((r) => r.type === TYPES.rdsParameterGroup);
    const files = renderedFiles(resources, unknown);
    const inis = files.filter((f) => fileKindOf(f.path) === "pgbouncer.ini");
    const odooUser =
      files
        .filter((f) => fileKindOf(f.path) === "odoo.conf")
        .map((f) => unknown.run(() => parseOdooConf(f.content).options.get("db_user")))
        .find((u) => u !== undefined) ?? DB_ROLES.odoo;
    for (const instance of resources.filter((r) => r.type === TYPES.rdsInstance && String(r.props.engine ?? "").startsWith("postgres"))) {
      unknown.run(() => {
        const group = parameterGroupOf(instance, groups);
        if (!group) {
          reportViolation(
            `RDS instance (${instance.name}) must use a parameter group of this stack (parameterGroupName): RDS's default group leaves statement_timeout, lock_timeout and idle_in_transaction_session_timeout at 0 and max_connections unrelated to the pools (PG-1, PG-2).`,
            instance.urn,
          );
          return;
        }
        let pools = 0;
        const parts: string[] = [];
        for (const ini of inis) {
          const parsed = parsePgbouncerIni(ini.content);
          const here = parsed.databases.filter((d) => {
            const host = d.params.get("host");
            return host !== undefined && rdsInstanceByReference(resources, host)?.urn === instance.urn;
          });
          if (here.length === 0) continue;
          const n = maxServerConnections({ ...parsed, databases: here }, odooUser);
          const others = otherUsersServerConnections(parsed, odooUser);
          pools += n + others.total;
          parts.push(`${fileLabel(ini)} pools ${n}${others.parts.map((o) => ` + ${o}`).join("")}`);
        }
        const value = rdsParameterValues(group).get("max_connections");
        const maxConnections = value === undefined ? undefined : numberOf(value);
        const r = POSTGRES_RESERVED;
        const needed = pools + r.admin + r.superuserReserved;
        if (maxConnections === undefined) {
          reportViolation(
            `RDS parameter group (${group.name}) must set max_connections to at least ${needed} (${parts.join(", ") || "no PgBouncer pools"} + admin ${r.admin} + superuser ${r.superuserReserved}); RDS's default follows the instance's memory, not the pools (PG-1).`,
            group.urn,
          );
        } else if (maxConnections < needed) {
          reportViolation(
            `RDS parameter group (${group.name}) must set max_connections (${maxConnections}) at least ${needed}: ${parts.join(", ") || "no PgBouncer pools"} + admin ${r.admin} + superuser ${r.superuserReserved} (PG-1).`,
            group.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

export const policies: Policies = [
  rdsInstanceNotPublic,
  rdsInstanceStorageEncrypted,
  rdsInstanceDeletionProtection,
  rdsInstanceBackupRetention,
  rdsInstanceMultiAz,
  rdsParameterGroupChecklist,
  rdsMaxConnectionsCoverPgbouncer,
];
