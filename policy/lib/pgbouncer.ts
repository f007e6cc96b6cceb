// What PgBouncer does with a parsed pgbouncer.ini, for the pool, auth, TLS and stack policies:
// which pool mode each pool runs in, and how many server connections it may open. From the
// PgBouncer 1.18 manual (pgbouncer(5), shipped with Debian 12's package):
//   pool_mode      [users] pool_mode, else [databases] pool_mode, else [pgbouncer] pool_mode,
//                  else "session"
//   pool size      [databases] pool_size, else default_pool_size (default 20)
//   reserve        [databases] reserve_pool, else reserve_pool_size (default 0)
//   caps           max_db_connections per database ([databases] or global, 0 = none),
//                  max_user_connections per user ([users] or global, 0 = none)
import { iniInt, type PgbouncerDatabase, type PgbouncerIni } from "./parse";

/** The database Odoo's bus and cron workers LISTEN on: a session pool by design (DESIGN 7). */
export const LISTEN_DATABASE = "postgres";

const DEFAULT_POOL_MODE = "session";
const DEFAULT_POOL_SIZE = 20;

/** The Odoo databases: every [databases] entry but the LISTEN pool (the `*` fallback included). */
export const odooDatabases = (ini: PgbouncerIni): PgbouncerDatabase[] => ini.databases.filter((d) => d.name !== LISTEN_DATABASE);

/** The LISTEN pool's entry, if any. */
export const listenDatabase = (ini: PgbouncerIni): PgbouncerDatabase | undefined => ini.databases.find((d) => d.name === LISTEN_DATABASE);

/** The database an entry connects to on the server: dbname=, else the entry's own name. */
export const serverDatabase = (d: PgbouncerDatabase): string => d.params.get("dbname") ?? d.name;

/** Pool mode of a database's pools for users without a [users] override. */
export const databasePoolMode = (ini: PgbouncerIni, d: PgbouncerDatabase): string =>
  (d.params.get("pool_mode") ?? ini.settings.get("pool_mode") ?? DEFAULT_POOL_MODE).toLowerCase();

/** [users] entries that force a pool mode on every database they use. */
export const userPoolModes = (ini: PgbouncerIni): { readonly user: string; readonly mode: string }[] =>
  ini.users.flatMap((u) => {
    const mode = u.params.get("pool_mode");
    return mode === undefined ? [] : [{ user: u.name, mode: mode.toLowerCase() }];
  });

/** A pgbouncer.ini integer setting; `fallback` when absent, undefined when unreadable. */
export function setting(ini: PgbouncerIni, key: string, fallback?: number): number | undefined {
  const raw = ini.settings.get(key);
  return raw === undefined ? fallback : iniInt(raw);
}

/**
 * The most server connections the pools of one [databases] entry can hold: its pool plus its
 * reserve, capped by the database's max_db_connections when set.
 */
export function serverConnectionsOf(ini: PgbouncerIni, d: PgbouncerDatabase): number {
  const pool = iniInt(d.params.get("pool_size")) ?? setting(ini, "default_pool_size", DEFAULT_POOL_SIZE) ?? DEFAULT_POOL_SIZE;
  const reserve = iniInt(d.params.get("reserve_pool")) ?? setting(ini, "reserve_pool_size", 0) ?? 0;
  const cap = iniInt(d.params.get("max_db_connections")) ?? setting(ini, "max_db_connections", 0) ?? 0;
  return cap > 0 ? Math.min(pool + reserve, cap) : pool + reserve;
}

/**
 * The most server connections PgBouncer can open: the sum over its databases, where every
 * entry without its own `user=` connects as the client's user and so shares that user's
 * max_user_connections cap (Odoo connects as one role to every database, LISTEN pool included).
 */
export function maxServerConnections(ini: PgbouncerIni, clientUser: string): number {
  const own = ini.databases.filter((d) => d.params.has("user") && d.params.get("user") !== clientUser);
  const shared = ini.databases.filter((d) => !own.includes(d));
  const userCap =
    iniInt(ini.users.find((u) => u.name === clientUser)?.params.get("max_user_connections")) ??
    setting(ini, "max_user_connections", 0) ??
    0;
  const sharedTotal = shared.reduce((n, d) => n + serverConnectionsOf(ini, d), 0);
  return (userCap > 0 ? Math.min(sharedTotal, userCap) : sharedTotal) + own.reduce((n, d) => n + serverConnectionsOf(ini, d), 0);
}

/**
 * Server connections of the users other than `clientUser` that [users] caps with
 * max_user_connections (the migration role, DB_ROLES.migrate): each adds its cap.
 */
export function otherUsersServerConnections(
  ini: PgbouncerIni,
  clientUser: string,
): { readonly total: number; readonly parts: readonly string[] } {
  const capped = ini.users
    .filter((u) => u.name !== clientUser)
    .map((u) => ({ name: u.name, cap: iniInt(u.params.get("max_user_connections")) ?? 0 }))
    .filter((u) => u.cap > 0);
  return { total: capped.reduce((n, u) => n + u.cap, 0), parts: capped.map((u) => `${u.name} ${u.cap}`) };
}
