// Minimal observability: CHECKLIST §9. Of its items only OBS-3 is a property a resource shows
// (PgBouncer's logging keys); the others are jobs and alarms (J), verified where they run.
import type { Policies, ResourceValidationPolicy } from "@pulumi/policy";
import { iniInt, parsePgbouncerIni } from "./lib/parse";
import { fileLabel, validateRenderedFile } from "./lib/resources";

const LOGGING_KEYS = ["log_connections", "log_disconnections", "log_pooler_errors"] as const;

/**
 * OBS-3: PgBouncer logs connections, disconnections and pooler errors (the trail of a pool
 * running full or a client refused). All three default to 1; the policy asks for them to be
 * written so a copied config cannot switch them off unnoticed.
 */
export const pgbouncerLoggingEnabled: ResourceValidationPolicy = {
  name: "pgbouncer-logging-enabled",
  description: `Checks whether pgbouncer.ini sets ${LOGGING_KEYS.map((k) => `${k} = 1`).join(", ")} (OBS-3).`,
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const settings = parsePgbouncerIni(file.content).settings;
    for (const key of LOGGING_KEYS) {
      const raw = settings.get(key);
      const n = iniInt(raw);
      // PgBouncer reads these as integers; any non-zero value enables them.
      if (n === undefined || n === 0) report(`${fileLabel(file)} must set ${key} = 1; it is ${raw === undefined ? "absent" : JSON.stringify(raw)} (OBS-3).`);
    }
  }),
};

export const policies: Policies = [pgbouncerLoggingEnabled];
