// Password rotation as a stack setting (AUTH-4): `passwordRotation: {odoo: 2026-12-01}` is the
// keeper of the odoo role's generated password, so a rotation is a config change and a
// `pulumi up` (a new keeper value makes @pulumi/random generate a new password and salt), then
// the host steps in their proven order (templates/procedures.ts, `odoo-stack rotate <password>`).
// Pure: the table of rotatable passwords and the setting's validator.

/** The config key (namespace "odoo-stack:"). */
export const PASSWORD_ROTATION_KEY = "passwordRotation";

/**
 * The passwords a keeper can rotate, by the name the setting and `odoo-stack rotate` use. `secret`
 * is the RandomPassword's name part in components/secrets.ts, `salt` its SCRAM salt's (rotated
 * with it: a fresh salt per password, as PostgreSQL itself would choose). The backup cipher pass
 * is deliberately absent: a new one would make every existing backup unreadable.
 */
export const ROTATABLE_PASSWORDS = {
  odoo: {
    secret: "odoo-db-password",
    salt: "odoo-db-scram-salt",
    what: "the database role odoo (Odoo's db_password; its SCRAM verifier in PgBouncer's userlist and in PostgreSQL)",
  },
  stats: {
    secret: "stats-password",
    salt: "stats-scram-salt",
    what: "PgBouncer's stats user pgbouncer_stats (read by the metrics collector; PgBouncer only, not a PostgreSQL role)",
  },
  monitor: {
    secret: "monitor-password",
    salt: undefined,
    what: "the database role odoo_stack_monitor (the metrics collector's pg_monitor reader)",
  },
  admin: { secret: "odoo-admin-password", salt: undefined, what: "Odoo's admin_passwd (the database manager's master password)" },
} as const;
export type RotatablePassword = keyof typeof ROTATABLE_PASSWORDS;
export const ROTATABLE_PASSWORD_NAMES = Object.keys(ROTATABLE_PASSWORDS) as RotatablePassword[];

/** Keeper per password; a password without one keeps the value it has. */
export type PasswordRotation = Readonly<Partial<Record<RotatablePassword, string>>>;

export interface PasswordRotationProblem {
  readonly key: string;
  readonly value: unknown;
  readonly fix: string;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A real calendar date written YYYY-MM-DD. */
export function isIsoDate(s: string): boolean {
  const m = DATE.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]);
}

/**
 * Validates the setting's value (a map, or its JSON text as the CLI hands objects over); every
 * problem is returned, each naming the key. YAML reads an unquoted 2026-12-01 as a string in
 * Pulumi's config, and js-yaml may hand a Date: both are accepted.
 */
export function checkPasswordRotation(raw: unknown): {
  readonly rotation: PasswordRotation;
  readonly problems: readonly PasswordRotationProblem[];
} {
  const problems: PasswordRotationProblem[] = [];
  if (raw === undefined) return { rotation: {}, problems };
  let value = raw;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return {
        rotation: {},
        problems: [{ key: PASSWORD_ROTATION_KEY, value: raw, fix: `must be a map of password to date, e.g. {odoo: "2026-12-01"}` }],
      };
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return {
      rotation: {},
      problems: [{ key: PASSWORD_ROTATION_KEY, value: raw, fix: `must be a map of password to date, e.g. {odoo: "2026-12-01"}` }],
    };
  }
  const rotation: Partial<Record<RotatablePassword, string>> = {};
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    const key = `${PASSWORD_ROTATION_KEY}.${name}`;
    if (!(ROTATABLE_PASSWORD_NAMES as string[]).includes(name)) {
      const why =
        name === "backup" || name === "backupCipherPass"
          ? " (the backup cipher pass is never rotated: existing backups could no longer be read)"
          : "";
      problems.push({ key, value: v, fix: `is not a rotatable password${why}; use ${ROTATABLE_PASSWORD_NAMES.join(", ")}` });
      continue;
    }
    const date = v instanceof Date && !Number.isNaN(v.getTime()) ? v.toISOString().slice(0, 10) : v;
    if (typeof date !== "string" || !isIsoDate(date)) {
      problems.push({
        key,
        value: v,
        fix: `must be a date YYYY-MM-DD (the day of the rotation); changing it generates a new password at the next pulumi up, then run: odoo-stack rotate ${name}`,
      });
      continue;
    }
    rotation[name as RotatablePassword] = date;
  }
  return { rotation, problems };
}
