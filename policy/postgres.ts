// PostgreSQL limits, timeouts and logs: CHECKLIST §8 (PG-1 … PG-3), read from the conf.d file
// the stack delivers to the PostgreSQL host and from the SQL that sets per-role timeouts.
// Whether max_connections fits PgBouncer's pools is a join: see stack.ts.
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { DB_ROLES } from "../lib/model";
import { parseOdooConf, parsePgBool, parsePgDurationMs, parsePostgresConf, parseSqlSettings, iniInt } from "./lib/parse";
import { fileKindOf, fileLabel, renderedFiles, UnknownValues, validateRenderedFile, type StackResourceView } from "./lib/resources";

/** PG-1: max_connections is written (sized from PgBouncer's pools), never left to the default 100. */
export const postgresMaxConnectionsSet: ResourceValidationPolicy = {
  name: "postgres-max-connections-set",
  description: "Checks whether postgresql.conf sets max_connections explicitly, sized from PgBouncer's pools (PG-1).",
  validateResource: validateRenderedFile("postgresql.conf", (file, report) => {
    const raw = parsePostgresConf(file.content).get("max_connections");
    const n = iniInt(raw);
    if (n === undefined || n <= 0) {
      report(`${fileLabel(file)} must set max_connections to the sum PgBouncer's pools and the reserved slots need; it is ${raw === undefined ? "absent (PostgreSQL's default 100)" : JSON.stringify(raw)} (PG-1).`);
    }
  }),
};

/** PG-3: lock waits longer than deadlock_timeout are logged, so a queue forming is visible. */
export const postgresLogLockWaits: ResourceValidationPolicy = {
  name: "postgres-log-lock-waits",
  description: "Checks whether postgresql.conf sets log_lock_waits = on (PG-3).",
  validateResource: validateRenderedFile("postgresql.conf", (file, report) => {
    const raw = parsePostgresConf(file.content).get("log_lock_waits");
    if (parsePgBool(raw) !== true) report(`${fileLabel(file)} must set log_lock_waits = on; it is ${raw === undefined ? "absent (off)" : JSON.stringify(raw)} (PG-3).`);
  }),
};

const TIMEOUTS = ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"] as const;

/**
 * PG-2: the three timeouts are in force, non-zero, for the role Odoo connects as. They may be
 * set per role (ALTER ROLE … SET, which survives transaction pooling: DESIGN principle 7), per
 * database, or server-wide; PostgreSQL applies the most specific, so the policy does too:
 * role, else database, else postgresql.conf. 0 disables a timeout.
 */
export const postgresTimeoutsSet: StackValidationPolicy = {
  name: "postgres-timeouts-set",
  description: `Checks whether ${TIMEOUTS.join(", ")} are in force and non-zero for Odoo's database role, per role, per database or server-wide (PG-2).`,
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    const confs = files.filter((f) => fileKindOf(f.path) === "postgresql.conf");
    if (confs.length === 0) return unknown.finish();
    // The role (and databases) Odoo uses, from its odoo.conf files; the model's name otherwise.
    const odooConfs = files.filter((f) => fileKindOf(f.path) === "odoo.conf").map((f) => unknown.run(() => parseOdooConf(f.content).options));
    const role = (odooConfs.map((o) => o?.get("db_user")).find((u) => u !== undefined) ?? DB_ROLES.odoo).toLowerCase();
    const databases = [...new Set(odooConfs.flatMap((o) => (o?.get("db_name") ?? "").split(",").map((d) => d.trim().toLowerCase()).filter((d) => d !== "")))];

    for (const conf of confs) {
      unknown.run(() => {
        const server = parsePostgresConf(conf.content);
        const sql = files.filter((f) => f.host === conf.host && fileKindOf(f.path) === "sql").flatMap((f) => parseSqlSettings(f.content));
        for (const parameter of TIMEOUTS) {
          const ofRole = sql.filter((s) => s.scope === "role" && s.name === role && s.parameter === parameter && s.inDatabase === undefined).pop();
          const ofDatabases = databases.map((db) => sql.filter((s) => s.scope === "database" && s.name === db && s.parameter === parameter).pop());
          let source: string;
          let value: string | undefined;
          if (ofRole?.value !== undefined) {
            source = `ALTER ROLE ${role}`;
            value = ofRole.value;
          } else if (databases.length > 0 && ofDatabases.every((s) => s?.value !== undefined)) {
            const smallestFirst = ofDatabases.map((s) => s?.value as string).sort((a, b) => (parsePgDurationMs(a) ?? 0) - (parsePgDurationMs(b) ?? 0));
            source = "ALTER DATABASE";
            value = smallestFirst[0];
          } else {
            source = "postgresql.conf";
            value = server.get(parameter);
          }
          const ms = parsePgDurationMs(value);
          if (ms === undefined || ms <= 0) {
            const now = value === undefined ? "not set anywhere (0: disabled)" : `${JSON.stringify(value)} (${source})`;
            reportViolation(`${fileLabel(conf)} must put a non-zero ${parameter} in force for role ${role} (ALTER ROLE … SET, or here); it is ${now} (PG-2).`, conf.resource.urn);
          }
        }
      });
    }
    unknown.finish();
  },
};

export const policies: Policies = [postgresMaxConnectionsSet, postgresLogLockWaits, postgresTimeoutsSet];
