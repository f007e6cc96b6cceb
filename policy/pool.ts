// PgBouncer pools: CHECKLIST §5 (POOL-1 … POOL-5), read from the pgbouncer.ini the stack
// delivers to the PgBouncer host. How many clients Odoo brings (POOL-4 across hosts) and how
// many connections PostgreSQL accepts (PG-1) are joins: see stack.ts.
import type { Policies, ResourceValidationPolicy } from "@pulumi/policy";
import { PGBOUNCER_INI_ITEMS } from "./lib/checklist-keys";
import { iniInt, parsePgbouncerIni, type PgbouncerIni } from "./lib/parse";
import { databasePoolMode, LISTEN_DATABASE, listenDatabase, odooDatabases, serverDatabase, setting, userPoolModes } from "./lib/pgbouncer";
import { fileLabel, validateRenderedFile, type RenderedFile } from "./lib/resources";

const ini = (file: RenderedFile): PgbouncerIni => parsePgbouncerIni(file.content);

/**
 * POOL-1: Odoo's databases pool per transaction, so a server connection serves many workers.
 * The one exception is the LISTEN pool (`postgres`, DESIGN principle 7): LISTEN needs a session,
 * so that entry may stay in session mode — but only if it really is the `postgres` database, or
 * the exception would smuggle an Odoo database into session pooling. A [users] pool_mode
 * overrides every database of that user, so it must not say anything but transaction.
 */
export const pgbouncerTransactionPooling: ResourceValidationPolicy = {
  name: "pgbouncer-transaction-pooling",
  description: `Checks whether every Odoo database in pgbouncer.ini pools per transaction and the ${LISTEN_DATABASE} LISTEN pool exists in session mode, with no [users] pool_mode overriding either (POOL-1).`,
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const parsed = ini(file);
    for (const d of odooDatabases(parsed)) {
      const mode = databasePoolMode(parsed, d);
      if (mode !== "transaction") {
        const why = d.params.has("pool_mode")
          ? "its own pool_mode"
          : parsed.settings.has("pool_mode")
            ? "[pgbouncer] pool_mode"
            : "PgBouncer's default";
        report(`${fileLabel(file)} must pool database ${d.name} with pool_mode=transaction; it is ${mode} (${why}) (POOL-1).`);
      }
    }
    const listen = listenDatabase(parsed);
    if (listen && serverDatabase(listen) !== LISTEN_DATABASE) {
      report(
        `${fileLabel(file)} must point its ${LISTEN_DATABASE} entry at dbname=${LISTEN_DATABASE}: the session-mode exception is for Odoo's LISTEN connections only, not for ${serverDatabase(listen)} (POOL-1).`,
      );
    }
    // The other half of DESIGN principle 7: Odoo's bus and cron workers LISTEN on `postgres`,
    // which only a session pool can serve. Without the entry PgBouncer refuses the database (or
    // a `*` fallback pools it per transaction); in transaction mode LISTEN silently loses its
    // notifications when the server connection changes hands.
    if (!listen) {
      report(
        `${fileLabel(file)} must have a [databases] entry ${LISTEN_DATABASE} = dbname=${LISTEN_DATABASE} … pool_mode=session: Odoo's bus and cron workers LISTEN there (POOL-1).`,
      );
    } else {
      const mode = databasePoolMode(parsed, listen);
      if (mode !== "session") {
        const why = listen.params.has("pool_mode")
          ? "its own pool_mode"
          : parsed.settings.has("pool_mode")
            ? "[pgbouncer] pool_mode, inherited"
            : "PgBouncer's default";
        report(
          `${fileLabel(file)} must pool database ${LISTEN_DATABASE} with pool_mode=session; it is ${mode} (${why}), and LISTEN cannot work per transaction (POOL-1).`,
        );
      }
    }
    // A [users] pool_mode beats every [databases] one for that user's clients: session breaks
    // POOL-1 for the Odoo databases, transaction breaks the LISTEN pool.
    for (const { user, mode } of userPoolModes(parsed)) {
      report(
        `${fileLabel(file)} must not set pool_mode=${mode} for user ${user} in [users]: it overrides every database of that user, the ${mode === "session" ? "Odoo databases' transaction" : `${LISTEN_DATABASE} session`} pool included (POOL-1).`,
      );
    }
  }),
};

/** An explicit positive integer setting, or the message saying what it is instead. */
function positive(parsed: PgbouncerIni, key: string): { readonly value?: number; readonly now: string } {
  const raw = parsed.settings.get(key);
  const n = iniInt(raw);
  return n !== undefined && n > 0 ? { value: n, now: String(n) } : { now: raw === undefined ? "absent" : JSON.stringify(raw) };
}

/** POOL-2: default_pool_size is written (computed by sizing), never left to PgBouncer's 20. */
export const pgbouncerDefaultPoolSizeSet: ResourceValidationPolicy = {
  name: "pgbouncer-default-pool-size-set",
  description:
    "Checks whether pgbouncer.ini sets default_pool_size explicitly to a positive number, and every database's pool_size is positive (POOL-2).",
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const parsed = ini(file);
    const pool = positive(parsed, "default_pool_size");
    if (pool.value === undefined)
      report(`${fileLabel(file)} must set default_pool_size to the computed pool size (a positive number); it is ${pool.now} (POOL-2).`);
    for (const d of parsed.databases.filter((x) => x.params.has("pool_size"))) {
      const size = iniInt(d.params.get("pool_size"));
      if (size === undefined || size <= 0)
        report(
          `${fileLabel(file)} must give database ${d.name} a positive pool_size; it is ${JSON.stringify(d.params.get("pool_size"))} (POOL-2).`,
        );
    }
  }),
};

/** POOL-3: a reserve for short peaks, used after reserve_pool_timeout. */
export const pgbouncerReservePoolSet: ResourceValidationPolicy = {
  name: "pgbouncer-reserve-pool-set",
  description:
    "Checks whether pgbouncer.ini sets reserve_pool_size (and a positive reserve_pool_timeout) so short peaks borrow connections instead of queueing (POOL-3).",
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const parsed = ini(file);
    const reserve = positive(parsed, "reserve_pool_size");
    if (reserve.value === undefined)
      report(`${fileLabel(file)} must set reserve_pool_size to a positive number (0 disables the reserve); it is ${reserve.now} (POOL-3).`);
    // A database's own reserve_pool beats reserve_pool_size (the LISTEN pool has none by design).
    for (const d of odooDatabases(parsed).filter((x) => x.params.has("reserve_pool"))) {
      const own = iniInt(d.params.get("reserve_pool"));
      if (own === undefined || own <= 0)
        report(
          `${fileLabel(file)} must not give database ${d.name} reserve_pool=${d.params.get("reserve_pool")}: it overrides reserve_pool_size and leaves the Odoo database without a reserve (POOL-3).`,
        );
    }
    const timeout = parsed.settings.get("reserve_pool_timeout");
    if (timeout !== undefined && !(Number(timeout) > 0)) {
      report(
        `${fileLabel(file)} must keep reserve_pool_timeout above 0 (0 disables the reserve); it is ${JSON.stringify(timeout)} (POOL-3).`,
      );
    }
  }),
};

/**
 * POOL-4 within the file: max_client_conn is written, and above what the pools can serve at
 * once (clients beyond the pools wait in PgBouncer instead of being refused). Whether it covers
 * every Odoo process is checked against the odoo.conf files (pgbouncer-max-client-conn-covers-odoo).
 */
export const pgbouncerMaxClientConnSet: ResourceValidationPolicy = {
  name: "pgbouncer-max-client-conn-set",
  description: "Checks whether pgbouncer.ini sets max_client_conn explicitly, at least default_pool_size + reserve_pool_size (POOL-4).",
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const parsed = ini(file);
    const clients = positive(parsed, "max_client_conn");
    if (clients.value === undefined) {
      report(
        `${fileLabel(file)} must set max_client_conn for every Odoo process and peak (a positive number); it is ${clients.now} (POOL-4).`,
      );
      return;
    }
    const servers = (setting(parsed, "default_pool_size", 20) ?? 20) + (setting(parsed, "reserve_pool_size", 0) ?? 0);
    if (clients.value < servers) {
      report(
        `${fileLabel(file)} must set max_client_conn (${clients.value}) at least default_pool_size + reserve_pool_size (${servers}): fewer clients than server connections means the pool is never used (POOL-4).`,
      );
    }
  }),
};

/**
 * POOL-5: several databases share one server, so each has a ceiling (max_db_connections, global
 * or per entry) no lower than its pool, or the pool can never fill.
 */
export const pgbouncerMaxDbConnectionsSet: ResourceValidationPolicy = {
  name: "pgbouncer-max-db-connections-set",
  description:
    "Checks whether every Odoo database in pgbouncer.ini has a max_db_connections ceiling (global or per entry) of at least its pool size (POOL-5).",
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const parsed = ini(file);
    const global = setting(parsed, "max_db_connections", 0) ?? 0;
    const defaultPool = setting(parsed, "default_pool_size", 20) ?? 20;
    for (const d of odooDatabases(parsed)) {
      const cap = iniInt(d.params.get("max_db_connections")) ?? global;
      const pool = iniInt(d.params.get("pool_size")) ?? defaultPool;
      if (!(cap > 0)) {
        report(
          `${fileLabel(file)} must cap database ${d.name} with max_db_connections (in [pgbouncer] or its entry); it is unlimited (POOL-5).`,
        );
      } else if (cap < pool) {
        report(
          `${fileLabel(file)} must set max_db_connections for ${d.name} (${cap}) at least its pool size (${pool}), or the pool can never fill (POOL-5).`,
        );
      }
    }
  }),
};

/**
 * Every item pgbouncer.ini carries: the file is read whole by the pack, so it must be whole.
 * `%include` makes PgBouncer read another file in place, whose settings (pool_mode, auth_type,
 * client_tls_sslmode, …) override what came before and which the plan does not show.
 */
export const pgbouncerIniSelfContained: ResourceValidationPolicy = {
  name: "pgbouncer-ini-self-contained",
  description: `Checks whether pgbouncer.ini includes no other file (%include), so every setting the pack checks is the one PgBouncer uses (${PGBOUNCER_INI_ITEMS.join(", ")}).`,
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    for (const included of ini(file).includes) {
      report(
        `${fileLabel(file)} must not %include ${included}: its settings would override the checked ones unseen (${PGBOUNCER_INI_ITEMS.join(", ")}).`,
      );
    }
  }),
};

/**
 * The longest a dead peer may keep its socket before PgBouncer notices: "minutes", not the
 * kernel's two hours (tcp(7): 7200 s idle, then 9 probes 75 s apart).
 */
export const MAX_DEAD_PEER_SECONDS = 600;
const LINUX_KEEPALIVE = { tcp_keepidle: 7200, tcp_keepintvl: 75, tcp_keepcnt: 9 } as const;

/**
 * POOL-2, POOL-3 (DESIGN principle 7): a crashed Odoo host never closes its sockets, so its
 * LISTEN sessions keep their slots in the `postgres` session pool (and its clients theirs under
 * max_client_conn) until TCP keepalive declares the peer dead. PgBouncer's tcp_keepalive = 1
 * uses the kernel's timers unless tcp_keepidle, tcp_keepintvl and tcp_keepcnt say otherwise, and
 * keepalive only probes an idle socket: a LISTEN socket holding a notification the dead host
 * never acknowledged waits for the kernel's retransmissions (~15 minutes) unless
 * tcp_user_timeout bounds it.
 */
export const pgbouncerDeadPeersFreed: ResourceValidationPolicy = {
  name: "pgbouncer-dead-peers-freed",
  description: `Checks whether pgbouncer.ini turns TCP keepalive on with tcp_keepidle + tcp_keepintvl × tcp_keepcnt, and sets tcp_user_timeout, at most ${MAX_DEAD_PEER_SECONDS} s, so a crashed Odoo host's LISTEN sessions free their \`${LISTEN_DATABASE}\` pool slots within minutes (POOL-2, POOL-3).`,
  validateResource: validateRenderedFile("pgbouncer.ini", (file, report) => {
    const parsed = ini(file);
    if (setting(parsed, "tcp_keepalive", 1) === 0) {
      report(
        `${fileLabel(file)} must keep tcp_keepalive = 1: without it a crashed Odoo host's LISTEN sessions hold their ${LISTEN_DATABASE} pool slots until PgBouncer restarts (POOL-2, POOL-3).`,
      );
      return;
    }
    const value = (key: keyof typeof LINUX_KEEPALIVE) => {
      const n = setting(parsed, key);
      return n !== undefined && n > 0 ? n : LINUX_KEEPALIVE[key];
    };
    const seconds = value("tcp_keepidle") + value("tcp_keepintvl") * value("tcp_keepcnt");
    if (seconds > MAX_DEAD_PEER_SECONDS) {
      report(
        `${fileLabel(file)} must detect a dead peer within ${MAX_DEAD_PEER_SECONDS} s: tcp_keepidle ${value("tcp_keepidle")} + tcp_keepintvl ${value("tcp_keepintvl")} × tcp_keepcnt ${value("tcp_keepcnt")} = ${seconds} s ` +
          `(unset values are the kernel's), so a crashed Odoo host's LISTEN sessions hold their ${LISTEN_DATABASE} pool slots that long (POOL-2, POOL-3).`,
      );
    }
    const userTimeout = setting(parsed, "tcp_user_timeout", 0) ?? 0;
    if (!(userTimeout > 0 && userTimeout <= MAX_DEAD_PEER_SECONDS * 1000)) {
      report(
        `${fileLabel(file)} must set tcp_user_timeout between 1 and ${MAX_DEAD_PEER_SECONDS * 1000} ms; it is ${userTimeout === 0 ? "0 (the kernel's ~15 minutes of retransmissions)" : userTimeout}: ` +
          `a LISTEN socket with a notification unacknowledged by a dead host waits for that instead of keepalive (POOL-2, POOL-3).`,
      );
    }
  }),
};

export const policies: Policies = [
  pgbouncerIniSelfContained,
  pgbouncerTransactionPooling,
  pgbouncerDeadPeersFreed,
  pgbouncerDefaultPoolSizeSet,
  pgbouncerReservePoolSet,
  pgbouncerMaxClientConnSet,
  pgbouncerMaxDbConnectionsSet,
];
