// PostgreSQL limits, timeouts and logs: CHECKLIST §8 (PG-1 … PG-3), read from the conf.d file
// the stack delivers to the PostgreSQL host, from the SQL that sets per-role timeouts, from the
// RDS parameter group, and from every place that would override them (a later conf.d file, ALTER
// SYSTEM, the server's command line, PgBouncer's per-connection queries).
// Whether max_connections fits PgBouncer's pools is a join: see stack.ts.
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { DB_ROLES } from "../lib/model";
import { POSTGRES_CONF_ITEMS, POSTGRES_KEY_ITEMS } from "./lib/checklist-keys";
import {
  parseOdooConf,
  parsePgBool,
  parsePgDurationMs,
  parsePgbouncerIni,
  parsePostgresConf,
  parseSqlSettings,
  iniInt,
  type SqlSetting,
} from "./lib/parse";
import {
  fileKindOf,
  fileLabel,
  renderedFiles,
  TYPES,
  UnknownValues,
  validateRenderedFile,
  type RenderedFile,
  type StackResourceView,
} from "./lib/resources";
import { parameterGroupOf, rdsParameterValues } from "./rds";

/** PG-1: max_connections is written (sized from PgBouncer's pools), never left to the default 100. */
export const postgresMaxConnectionsSet: ResourceValidationPolicy = {
  name: "postgres-max-connections-set",
  description: "Checks whether postgresql.conf sets max_connections explicitly, sized from PgBouncer's pools (PG-1).",
  validateResource: validateRenderedFile("postgresql.conf", (file, report) => {
    const raw = parsePostgresConf(file.content).get("max_connections");
    const n = iniInt(raw);
    if (n === undefined || n <= 0) {
      report(
        `${fileLabel(file)} must set max_connections to the sum PgBouncer's pools and the reserved slots need; it is ${raw === undefined ? "absent (PostgreSQL's default 100)" : JSON.stringify(raw)} (PG-1).`,
      );
    }
  }),
};

/**
 * PG-3: lock waits longer than deadlock_timeout are logged, so a queue forming is visible — and
 * deadlock_timeout stays below lock_timeout, or every wait is cancelled before it is logged.
 */
export const postgresLogLockWaits: ResourceValidationPolicy = {
  name: "postgres-log-lock-waits",
  description: "Checks whether postgresql.conf sets log_lock_waits = on with a deadlock_timeout below lock_timeout (PG-3).",
  validateResource: validateRenderedFile("postgresql.conf", (file, report) => {
    const conf = parsePostgresConf(file.content);
    const raw = conf.get("log_lock_waits");
    if (parsePgBool(raw) !== true)
      report(`${fileLabel(file)} must set log_lock_waits = on; it is ${raw === undefined ? "absent (off)" : JSON.stringify(raw)} (PG-3).`);
    const deadlock = parsePgDurationMs(conf.get("deadlock_timeout"));
    const lock = parsePgDurationMs(conf.get("lock_timeout"));
    if (deadlock !== undefined && lock !== undefined && lock > 0 && deadlock >= lock) {
      report(
        `${fileLabel(file)} must set deadlock_timeout (${conf.get("deadlock_timeout")}) below lock_timeout (${conf.get("lock_timeout")}): a lock wait is logged only after deadlock_timeout, and lock_timeout cancels it first (PG-3).`,
      );
    }
  }),
};

const TIMEOUTS = ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"] as const;

/** The postgresql.conf-kind files a host's server reads, in its order: postgresql.conf, then conf.d by name. */
function confFilesInReadOrder(hostFiles: readonly RenderedFile[]): RenderedFile[] {
  const confs = hostFiles.filter((f) => fileKindOf(f.path) === "postgresql.conf");
  const main = confs.filter((f) => f.path.endsWith("/main/postgresql.conf"));
  // include_dir reads the directory's *.conf files in C-locale name order (PostgreSQL docs 20.1.5).
  const dropIns = confs
    .filter((f) => /\/conf\.d\/[^/]+\.conf$/.test(f.path))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return [...main, ...dropIns];
}

/** `-c name=value` / `--name=value` options of pg_ctl.conf's pg_ctl_options (passed to the server with -o). */
function commandLineSettings(text: string): Map<string, string> {
  const options = parsePostgresConf(text).get("pg_ctl_options") ?? "";
  const out = new Map<string, string>();
  for (const m of options.matchAll(/(?:-c\s*|--)([A-Za-z_][A-Za-z0-9_.]*)=("[^"]*"|'[^']*'|[^\s"']+)/g))
    out.set(m[1].toLowerCase(), m[2].replace(/^["']|["']$/g, ""));
  return out;
}

/** One place a server-wide setting is written, in the order PostgreSQL reads them (later wins). */
interface SettingPlace {
  readonly key: string;
  readonly value: string;
  readonly file: RenderedFile;
  readonly where: string;
}

/**
 * Every place a PostgreSQL host's server-wide settings come from, in precedence order: the
 * configuration files (postgresql.conf, conf.d), postgresql.auto.conf and the ALTER SYSTEM
 * statements that write it, then the command line (pg_ctl.conf), which beats every file.
 */
function serverSettingPlaces(hostFiles: readonly RenderedFile[]): SettingPlace[] {
  const places: SettingPlace[] = [];
  for (const f of confFilesInReadOrder(hostFiles)) {
    for (const [key, value] of parsePostgresConf(f.content)) places.push({ key, value, file: f, where: fileLabel(f) });
  }
  for (const f of hostFiles.filter((x) => fileKindOf(x.path) === "postgresql.auto.conf")) {
    for (const [key, value] of parsePostgresConf(f.content)) places.push({ key, value, file: f, where: fileLabel(f) });
  }
  for (const f of hostFiles.filter((x) => fileKindOf(x.path) === "sql")) {
    for (const st of parseSqlSettings(f.content).filter((x) => x.scope === "system" && x.value !== undefined)) {
      places.push({ key: st.parameter, value: st.value as string, file: f, where: `${fileLabel(f)} (ALTER SYSTEM, postgresql.auto.conf)` });
    }
  }
  for (const f of hostFiles.filter((x) => fileKindOf(x.path) === "pg_ctl.conf")) {
    for (const [key, value] of commandLineSettings(f.content))
      places.push({ key, value, file: f, where: `${fileLabel(f)} (the server's command line)` });
  }
  return places;
}

/** The most specific per-session setting PostgreSQL applies for `role` in `database`, or undefined. */
function sessionSetting(sql: readonly SqlSetting[], role: string, database: string | undefined, parameter: string): SqlSetting | undefined {
  const last = (match: (s: SqlSetting) => boolean): SqlSetting | undefined =>
    sql.filter((s) => s.parameter === parameter && match(s)).pop();
  // pg_db_role_setting, most specific first: (database, role), (0, role), (database, 0), (0, 0).
  const slots: ((s: SqlSetting) => boolean)[] = [
    (s) => s.scope === "role" && !s.allRoles && s.name === role && database !== undefined && s.inDatabase === database,
    (s) => s.scope === "role" && !s.allRoles && s.name === role && s.inDatabase === undefined,
    (s) =>
      database !== undefined &&
      ((s.scope === "database" && s.name === database) || (s.scope === "role" && s.allRoles === true && s.inDatabase === database)),
    (s) => s.scope === "role" && s.allRoles === true && s.inDatabase === undefined,
  ];
  for (const slot of slots) {
    const found = last(slot);
    if (found?.value !== undefined) return found;
  }
  return undefined;
}

const describeSession = (s: SqlSetting): string =>
  s.scope === "database"
    ? `ALTER DATABASE ${s.name}`
    : `ALTER ROLE ${s.allRoles ? "ALL" : s.name}${s.inDatabase ? ` IN DATABASE ${s.inDatabase}` : ""}`;

/**
 * PG-2: the three timeouts are in force, non-zero, for the role Odoo connects as, in each of its
 * databases. They may be set per role (ALTER ROLE … SET, which survives transaction pooling:
 * DESIGN principle 7), per role in a database, per database, for all roles, or server-wide
 * (postgresql.conf, or the RDS parameter group); PostgreSQL applies the most specific, so the
 * policy does too. 0 disables a timeout. On RDS the SQL runs from another host (the PgBouncer
 * host's bootstrap), so every SQL file outside a PostgreSQL host counts for it.
 */
export const postgresTimeoutsSet: StackValidationPolicy = {
  name: "postgres-timeouts-set",
  description: `Checks whether ${TIMEOUTS.join(", ")} are in force and non-zero for Odoo's database role in each of its databases, per role, per database or server-wide, on a PostgreSQL host or RDS (PG-2).`,
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    // The role (and databases) Odoo uses, from its odoo.conf files; the model's name otherwise.
    const odooConfs = files
      .filter((f) => fileKindOf(f.path) === "odoo.conf")
      .map((f) => unknown.run(() => parseOdooConf(f.content).options));
    const role = (odooConfs.map((o) => o?.get("db_user")).find((u) => u !== undefined) ?? DB_ROLES.odoo).toLowerCase();
    const databases = [
      ...new Set(
        odooConfs.flatMap((o) =>
          (o?.get("db_name") ?? "")
            .split(",")
            .map((d) => d.trim().toLowerCase())
            .filter((d) => d !== ""),
        ),
      ),
    ];

    const postgresHosts = [...new Set(files.filter((f) => fileKindOf(f.path) === "postgresql.conf").map((f) => f.host))];
    interface Server {
      readonly subject: string;
      readonly urn: string;
      readonly sql: readonly { readonly setting: SqlSetting; readonly file: RenderedFile }[];
      readonly serverValue: (parameter: string) => { readonly value: string; readonly source: string; readonly urn: string } | undefined;
    }
    const sqlOf = (hostFiles: readonly RenderedFile[]) =>
      hostFiles
        .filter((f) => fileKindOf(f.path) === "sql")
        .flatMap((file) => (unknown.run(() => parseSqlSettings(file.content)) ?? []).map((setting) => ({ setting, file })));
    const servers: Server[] = [];
    for (const host of postgresHosts) {
      const hostFiles = files.filter((f) => f.host === host);
      const confs = confFilesInReadOrder(hostFiles);
      const main = confs[confs.length - 1] ?? hostFiles.find((f) => fileKindOf(f.path) === "postgresql.conf");
      if (!main) continue;
      servers.push({
        subject: fileLabel(main),
        urn: main.resource.urn,
        sql: sqlOf(hostFiles),
        serverValue: (parameter) => {
          const place = (unknown.run(() => serverSettingPlaces(hostFiles)) ?? []).filter((p) => p.key === parameter).pop();
          return place && { value: place.value, source: place.where, urn: place.file.resource.urn };
        },
      });
    }
    const groups = resources.filter((r) => r.type === TYPES.rdsParameterGroup);
    for (const instance of resources.filter((r) => r.type === TYPES.rdsInstance && String(r.props.engine ?? "").startsWith("postgres"))) {
      unknown.run(() => {
        const group = parameterGroupOf(instance, groups);
        const values = group ? rdsParameterValues(group) : new Map<string, string>();
        servers.push({
          subject: `RDS instance (${instance.name})`,
          urn: instance.urn,
          sql: sqlOf(files.filter((f) => !postgresHosts.includes(f.host))),
          serverValue: (parameter) => {
            const value = values.get(parameter);
            return value === undefined || !group ? undefined : { value, source: `RDS parameter group (${group.name})`, urn: group.urn };
          },
        });
      });
    }

    for (const server of servers) {
      unknown.run(() => {
        const sql = server.sql.map((s) => s.setting);
        for (const parameter of TIMEOUTS) {
          for (const database of databases.length > 0 ? databases : [undefined]) {
            const session = sessionSetting(sql, role, database, parameter);
            const fromFile = session ? server.sql.find((s) => s.setting === session)?.file : undefined;
            const inForce = session
              ? {
                  value: session.value as string,
                  source: `${describeSession(session)} in ${fromFile ? fileLabel(fromFile) : "SQL"}`,
                  urn: fromFile?.resource.urn ?? server.urn,
                }
              : server.serverValue(parameter);
            const ms = parsePgDurationMs(inForce?.value);
            if (ms === undefined || ms <= 0) {
              const now = inForce === undefined ? "not set anywhere (0: disabled)" : `${JSON.stringify(inForce.value)} (${inForce.source})`;
              const scope = database === undefined ? "" : ` in database ${database}`;
              reportViolation(
                `${server.subject} must put a non-zero ${parameter} in force for role ${role}${scope} (ALTER ROLE … SET, or server-wide); it is ${now} (PG-2).`,
                inForce?.urn ?? server.urn,
              );
            }
          }
        }
      });
    }
    unknown.finish();
  },
};

/** Server-wide checklist settings that a role or database must not override for its sessions. */
const SERVER_ONLY_KEYS = ["log_lock_waits", "deadlock_timeout", "password_encryption"];
const INCLUDE_KEYS = ["include", "include_if_exists", "include_dir"];

/**
 * Every checklist setting the PostgreSQL host's drop-in fixes is in force: the drop-in is read
 * last among the configuration files "so that nothing above can change them", and nothing reads
 * after it — no later conf.d file, no postgresql.auto.conf or ALTER SYSTEM, no `-c` on the
 * server's command line (pg_ctl.conf), no include of a file the plan does not show — and no role
 * or database turns the logging or password settings off for its own sessions.
 */
export const postgresSettingsNotOverridden: StackValidationPolicy = {
  name: "postgres-settings-not-overridden",
  description:
    "Checks whether each checklist setting of PostgreSQL is written in one place only — no later conf.d file, postgresql.auto.conf / ALTER SYSTEM, pg_ctl.conf -c option or include overrides it — and no role or database sets log_lock_waits, deadlock_timeout or password_encryption for itself (NET-6, AUTH-1, TLS-1, PG-1, PG-2, PG-3).",
  validateStack: (args, reportViolation) => {
    const resources = args.resources as unknown as StackResourceView[];
    const unknown = new UnknownValues();
    const files = renderedFiles(resources, unknown);
    const hosts = [
      ...new Set(
        files
          .filter((f) => ["postgresql.conf", "postgresql.auto.conf", "pg_ctl.conf"].includes(fileKindOf(f.path) ?? ""))
          .map((f) => f.host),
      ),
    ];
    for (const host of hosts) {
      unknown.run(() => {
        const hostFiles = files.filter((f) => f.host === host);
        const places = serverSettingPlaces(hostFiles);
        for (const p of places.filter((x) => INCLUDE_KEYS.includes(x.key))) {
          reportViolation(
            `${p.where} must not ${p.key} ${p.value}: the settings of a file the stack does not deliver override the checked ones unseen (${POSTGRES_CONF_ITEMS.join(", ")}).`,
            p.file.resource.urn,
          );
        }
        for (const [key, item] of Object.entries(POSTGRES_KEY_ITEMS)) {
          const setting = places.filter((p) => p.key === key);
          for (const later of setting.slice(1)) {
            reportViolation(
              `${later.where} must not set ${key} = ${later.value} again: ${setting[0].where} sets it to ${setting[0].value}, and PostgreSQL keeps the one it reads last (${item}).`,
              later.file.resource.urn,
            );
          }
        }
      });
    }
    for (const file of files.filter((f) => fileKindOf(f.path) === "sql")) {
      unknown.run(() => {
        for (const s of parseSqlSettings(file.content).filter(
          (x) => x.scope !== "system" && x.value !== undefined && SERVER_ONLY_KEYS.includes(x.parameter),
        )) {
          reportViolation(
            `${fileLabel(file)} must not ${describeSession(s)} SET ${s.parameter} = ${s.value}: it overrides the server's checklist setting for those sessions (${POSTGRES_KEY_ITEMS[s.parameter]}).`,
            file.resource.urn,
          );
        }
      });
    }
    unknown.finish();
  },
};

/**
 * PG-2 through PgBouncer: a [databases] connect_query runs on every new server connection, and
 * a session SET beats every ALTER ROLE setting; a reset or check query that sets a timeout does
 * the same between clients.
 */
export const pgbouncerQueriesKeepTimeouts: ResourceValidationPolicy = {
  name: "pgbouncer-queries-keep-timeouts",
  description: `Checks whether no PgBouncer connect_query, server_reset_query or server_check_query sets ${TIMEOUTS.join(", ")} for the server connections Odoo uses (PG-2).`,
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const parsed = parsePgbouncerIni(file.content);
    const sets = (query: string | undefined): boolean =>
      query !== undefined && TIMEOUTS.some((t) => new RegExp(`\\b${t}\\b`, "i").test(query));
    for (const d of parsed.databases) {
      const query = d.params.get("connect_query");
      if (sets(query))
        report(
          `${fileLabel(file)} must not set a timeout in database ${d.name}'s connect_query (${query}): a session SET beats the role's ${TIMEOUTS.join(", ")} (PG-2).`,
        );
    }
    for (const key of ["server_reset_query", "server_check_query"]) {
      const query = parsed.settings.get(key);
      if (sets(query))
        report(
          `${fileLabel(file)} must not set a timeout in ${key} (${query}): a session SET beats the role's ${TIMEOUTS.join(", ")} (PG-2).`,
        );
    }
  }),
};

export const policies: Policies = [
  postgresMaxConnectionsSet,
  postgresLogLockWaits,
  postgresTimeoutsSet,
  postgresSettingsNotOverridden,
  pgbouncerQueriesKeepTimeouts,
];
