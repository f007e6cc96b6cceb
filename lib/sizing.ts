// Sizing is one pure module (DESIGN principle 2): instance shape → Odoo workers and limits →
// PgBouncer pools → PostgreSQL max_connections. Every number has a named formula with its
// source; overrides are accepted only when the invariants at the bottom still hold.
import type { InstanceSpec } from "./instance-types";

export interface OdooSizingOverrides {
  readonly workers?: number;
  readonly maxCronThreads?: number;
  readonly limitMemorySoftMiB?: number;
  readonly limitMemoryHardMiB?: number;
  readonly limitTimeCpu?: number;
  readonly limitTimeReal?: number;
  readonly limitTimeRealCron?: number;
  readonly limitRequest?: number;
  readonly dbMaxconn?: number;
  readonly dbMaxconnGevent?: number;
}

export interface PgbouncerSizingOverrides {
  readonly defaultPoolSize?: number;
  readonly reservePoolSize?: number;
  readonly maxClientConn?: number;
  readonly maxDbConnections?: number;
}

export interface PostgresSizingOverrides {
  readonly maxConnections?: number;
  readonly statementTimeoutMs?: number;
  readonly lockTimeoutMs?: number;
  readonly idleInTransactionSessionTimeoutMs?: number;
}

export interface SizingInput {
  readonly odoo: InstanceSpec;
  readonly postgres: InstanceSpec;
  /** Number of Odoo hosts; exactly one of them runs crons. */
  readonly odooInstances: number;
  /** Odoo databases served through PgBouncer in transaction mode. */
  readonly databaseCount: number;
  readonly odooOverrides?: OdooSizingOverrides;
  readonly pgbouncerOverrides?: PgbouncerSizingOverrides;
  readonly postgresOverrides?: PostgresSizingOverrides;
}

export interface OdooSizing {
  readonly workers: number;
  /** Cron threads on the cron host; every other host gets 0 (LIMIT-2). */
  readonly maxCronThreads: number;
  readonly limitMemorySoftBytes: number;
  readonly limitMemoryHardBytes: number;
  readonly limitTimeCpu: number;
  readonly limitTimeReal: number;
  readonly limitTimeRealCron: number;
  readonly limitRequest: number;
  readonly dbMaxconn: number;
  /** The gevent worker's own connection pool (db_maxconn_gevent, Odoo 17.0+). */
  readonly dbMaxconnGevent: number;
  /** Processes on the cron host: HTTP workers + cron workers + the gevent worker. */
  readonly processesPerHost: number;
  /** nginx's cap on requests in flight to one Odoo host's HTTP workers (upstream max_conns). */
  readonly httpMaxConns: number;
}

export interface PgbouncerSizing {
  readonly defaultPoolSize: number;
  readonly reservePoolSize: number;
  readonly reservePoolTimeoutSeconds: number;
  readonly maxClientConn: number;
  /** Cap per Odoo database (POOL-5). */
  readonly maxDbConnections: number;
  /** Cap for the Odoo role over the Odoo databases' transaction pools (transactionPoolsConnections). */
  readonly maxUserConnections: number;
  /**
   * Session-mode pool on database `postgres` (DESIGN principle 7): every Odoo process that can
   * hold a `postgres` connection at once, LISTENers and short-lived ones alike.
   */
  readonly postgresPoolSize: number;
  /** Its reserve: a restarted or crashed host whose LISTEN sessions are not freed yet. */
  readonly postgresReservePoolSize: number;
  /** Server connections the migration role (DB_ROLES.migrate, one `odoo -u` at a time) may hold. */
  readonly migrationConnections: number;
  readonly limitNofile: number;
}

export interface PostgresSizing {
  readonly maxConnections: number;
  readonly superuserReservedConnections: number;
  readonly sharedBuffersMiB: number;
  readonly effectiveCacheSizeMiB: number;
  readonly workMemMiB: number;
  readonly maintenanceWorkMemMiB: number;
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly idleInTransactionSessionTimeoutMs: number;
  /** The migration role's timeouts (`odoo -u`): see migrationTimeouts. */
  readonly migration: MigrationTimeouts;
  /** Slots kept outside PgBouncer's pools: the breakdown behind max_connections. */
  readonly slots: {
    readonly pools: number;
    /** The `postgres` session pool with its reserve. */
    readonly postgresPool: number;
    readonly migration: number;
    readonly stats: number;
    readonly backup: number;
    readonly monitoring: number;
    readonly admin: number;
    readonly superuserReserved: number;
  };
}

export interface Sizing {
  readonly odoo: OdooSizing;
  readonly pgbouncer: PgbouncerSizing;
  readonly postgres: PostgresSizing;
}

const MiB = 1024 * 1024;

/**
 * Odoo's deployment guide, "Worker number calculation": rule of thumb (#CPU × 2) + 1.
 * https://www.odoo.com/documentation/17.0/administration/on_premise/deploy.html#worker-number-calculation
 */
export const workersFromCpu = (vcpu: number): number => vcpu * 2 + 1;

/**
 * Memory the OS and the page cache floor keep (the SSM and CloudWatch agents, the metrics
 * collector, journald): max(1 GiB, 10 % of RAM). Every Odoo process is counted on its own below.
 */
export const osReserveMiB = (memoryMiB: number): number => Math.max(1024, Math.ceil(memoryMiB * 0.1));

// --- Odoo's memory limits are limits on virtual memory ------------------------------------------
// Odoo 17's odoo/service/server.py (read in the 17.0 source):
//  - set_limit_memory_hard() calls resource.setrlimit(RLIMIT_AS, (limit_memory_hard, hard)) on
//    Linux: an address-space limit, applied in every prefork worker (Worker.check_limits, the
//    cron worker included) and in the gevent worker (GeventServer.start). An allocation past it
//    fails (MemoryError), whatever the host's free RAM.
//  - memory_info() returns pmem.vms (virtual size) on Linux, and Worker.check_limits recycles a
//    worker after its request when that exceeds limit_memory_soft (GeventServer.process_limits
//    kills the gevent worker the same way).
// So the limits cannot be a share of physical RAM: a worker maps ~240 MiB at rest while only
// 100–134 MiB of it is resident (ODOO-FACTS.md, measured on Odoo 17), and a "fair share" of a
// 2 GiB host (256 MiB, what this module used to give t3.small) stops a worker before it serves a
// request. The limits are sized per process instead, and RAM is checked with resident figures.

/** One Odoo process at rest, measured on Odoo 17 (ODOO-FACTS.md, "Memory at this size"). */
export const ODOO_PROCESS_AT_REST = { virtualMiB: 240, residentMiB: 134 } as const;

/**
 * Odoo's deployment guide, "Memory size calculation": 80 % of requests are light (~150 MiB),
 * 20 % heavy (~1 GiB).
 * https://www.odoo.com/documentation/17.0/administration/on_premise/deploy.html#memory-size-calculation
 */
export const LIGHT_REQUEST_MIB = 150;
export const HEAVY_REQUEST_MIB = 1024;

/** The guide's expected memory of one process under load: 0.8 × 150 + 0.2 × 1024 MiB. */
export const EXPECTED_PROCESS_MIB = Math.ceil(0.8 * LIGHT_REQUEST_MIB + 0.2 * HEAVY_REQUEST_MIB);

/** Odoo's own defaults (odoo/tools/config.py 17.0: limit_memory_soft 2048 MiB, limit_memory_hard 2560 MiB). */
export const ODOO_DEFAULT_LIMIT_MEMORY_HARD_MIB = 2560;
export const ODOO_DEFAULT_LIMIT_MEMORY_SOFT_MIB = 2048;

/**
 * The least limit_memory_hard Odoo runs under: the address space of a process at rest plus one
 * heavy request (a PDF report, an import), so that request is not cut by a failing allocation.
 */
export const LIMIT_MEMORY_HARD_FLOOR_MIB = ODOO_PROCESS_AT_REST.virtualMiB + HEAVY_REQUEST_MIB;

/** The least limit_memory_soft: below it a worker at rest is recycled after every light request. */
export const LIMIT_MEMORY_SOFT_FLOOR_MIB = ODOO_PROCESS_AT_REST.virtualMiB + LIGHT_REQUEST_MIB;

/** Every process that can connect: HTTP workers, cron workers and the one gevent worker. */
export const odooProcesses = (workers: number, cronThreads: number): number => workers + cronThreads + 1;

/** What the Odoo processes of one host may use, by the two rules that bound them. */
export interface OdooMemoryBudget {
  /** RAM left after the OS reserve. */
  readonly usableMiB: number;
  /**
   * The largest limit_memory_hard that keeps one runaway process from starving the host: at its
   * limit it holds at most that much (resident ≤ virtual), while every other process is at rest.
   */
  readonly maxLimitMemoryHardMiB: number;
  /** Odoo's guide: every process at the expected light/heavy mix. Must fit usableMiB. */
  readonly expectedMiB: number;
}

export function odooMemoryBudget(memoryMiB: number, processes: number): OdooMemoryBudget {
  const usableMiB = memoryMiB - osReserveMiB(memoryMiB);
  return {
    usableMiB,
    maxLimitMemoryHardMiB: usableMiB - (processes - 1) * ODOO_PROCESS_AT_REST.residentMiB,
    expectedMiB: processes * EXPECTED_PROCESS_MIB,
  };
}

/**
 * limit_memory_hard: Odoo's default, lowered only as far as the host needs so that one process
 * at its limit cannot starve the others (OdooMemoryBudget.maxLimitMemoryHardMiB). checkSizing
 * reports a result below LIMIT_MEMORY_HARD_FLOOR_MIB.
 */
export const limitMemoryHardMiB = (memoryMiB: number, processes: number): number =>
  Math.min(ODOO_DEFAULT_LIMIT_MEMORY_HARD_MIB, odooMemoryBudget(memoryMiB, processes).maxLimitMemoryHardMiB);

/** limit_memory_soft at 80 % of hard (Odoo's defaults keep that ratio): recycled gracefully before the kill. */
export const limitMemorySoftMiB = (hardMiB: number): number => Math.floor(hardMiB * 0.8);

/**
 * The smallest Odoo host: one HTTP worker, the cron workers and the gevent worker, one of them
 * able to reach the hard-limit floor while the others are at rest, all of them at the guide's
 * expected mix.
 */
export const minimumOdooUsableMiB = (cronThreads: number): number => {
  const processes = odooProcesses(1, cronThreads);
  return Math.max(LIMIT_MEMORY_HARD_FLOOR_MIB + (processes - 1) * ODOO_PROCESS_AT_REST.residentMiB, processes * EXPECTED_PROCESS_MIB);
};

/**
 * Why an instance shape cannot run Odoo at all (too little RAM for one worker plus the cron and
 * gevent workers), or undefined when it can. lib/config.ts reports it against odooInstanceType.
 */
export function odooHostTooSmall(spec: InstanceSpec, cronThreads: number): string | undefined {
  const usable = spec.memoryMiB - osReserveMiB(spec.memoryMiB);
  const needed = minimumOdooUsableMiB(cronThreads);
  if (usable >= needed) return undefined;
  return (
    `has ${spec.memoryMiB} MiB of memory, too little for Odoo: after the OS reserve (${osReserveMiB(spec.memoryMiB)} MiB) ${usable} MiB remain, ` +
    `and one HTTP worker, ${cronThreads} cron worker${cronThreads === 1 ? "" : "s"} and the gevent worker need ${needed} MiB ` +
    `(limit_memory_hard is an address-space limit, RLIMIT_AS in odoo/service/server.py: a worker maps ~${ODOO_PROCESS_AT_REST.virtualMiB} MiB at rest and needs ~${HEAVY_REQUEST_MIB} MiB more for a heavy request, so it cannot go below ${LIMIT_MEMORY_HARD_FLOOR_MIB} MiB) (LIMIT-1, LIMIT-3); ` +
    `pick an instance type with at least ${Math.ceil((needed + 1024) / 1024)} GiB, e.g. t3.medium or m6i.large`
  );
}

/**
 * Default time limits. PDF reports and imports are long requests (PROXY-5), so the real-time
 * limit is generous; the proxy's timeouts are derived from it (proxyTimeoutSeconds).
 */
export const DEFAULT_LIMIT_TIME_CPU = 600;
export const DEFAULT_LIMIT_TIME_REAL = 1200;
/** Crons: batching and no long transactions (LIMIT-4): a cron run is bounded like a request. */
export const DEFAULT_LIMIT_TIME_REAL_CRON = 1200;
/** Odoo's default: a worker is recycled after this many requests, bounding leaks. */
export const DEFAULT_LIMIT_REQUEST = 65536;
/** Conservative until measured (LIMIT-2). */
export const DEFAULT_MAX_CRON_THREADS = 1;
/**
 * Odoo's per-process connection pool. A prefork worker serves one request at a time and
 * holds at most a couple of cursors; 8 leaves room without letting one process flood
 * PgBouncer (Odoo's default of 64 is sized for the threaded server).
 */
export const DEFAULT_DB_MAXCONN = 8;

/**
 * The gevent worker's own pool (db_maxconn_gevent; Odoo 17.0 odoo/sql_db.py L819-821: the
 * evented process sizes its ConnectionPool from it, else from db_maxconn). Every WebSocket
 * message and bus dispatch borrows a cursor there (addons/bus/websocket.py L609, L631, L758),
 * in as many greenlets as sockets are busy, and a borrow that finds the pool full for ~1 s of
 * retries (websocket.py L37-48) fails with "The Connection Pool Is Full". Odoo's own default
 * for db_maxconn (odoo/tools/config.py L268), the threaded server's: measured with a real Odoo
 * 17, 200 WebSocket reconnects at 100/s failed 66 times with 8 and 4 times with 64. A greenlet
 * waiting for a server connection waits in PgBouncer's queue, which costs a client slot only.
 */
export const DEFAULT_DB_MAXCONN_GEVENT = 64;

/**
 * Proxy timeouts outlive Odoo's own limit so Odoo, not nginx, ends a long request and logs
 * why (PROXY-5).
 */
export const proxyTimeoutSeconds = (limitTimeReal: number): number => limitTimeReal + 30;

/**
 * Requests that may wait per busy HTTP worker in front of one Odoo host. Odoo's prefork
 * server listens with a backlog of 8 × workers (odoo/service/server.py L992); measured at 200
 * concurrent requests it overflowed 1,806 times in 15 s and nginx answered 502/504. Half the
 * backlog keeps the kernel queue from ever filling, and bounds a request's wait to about four
 * request-times; beyond that nginx answers 503 with Retry-After itself.
 */
export const HTTP_QUEUE_PER_WORKER = 4;

/** nginx upstream max_conns per Odoo host: every worker busy plus a bounded queue behind each. */
export const httpMaxConns = (workers: number): number => workers * (1 + HTTP_QUEUE_PER_WORKER);

/**
 * PgBouncer transaction pool per Odoo database: one server connection per process that can
 * be inside a transaction at once, over every Odoo host: the HTTP workers and the gevent worker
 * (WebSocket messages and bus dispatch run transactions too, websocket.py L609, L631, L758) on
 * each host, and the cron threads of the cron host. An Odoo request is one transaction from its
 * first statement to its commit (odoo/http.py _serve_db, odoo/sql_db.py Cursor), Python time
 * included, so a process in a request holds its server connection throughout.
 * https://www.pgbouncer.org/config.html#default_pool_size
 */
export const defaultPoolSize = (workers: number, cronThreads: number, hosts: number): number => (workers + 1) * hosts + cronThreads;

/** Short peaks borrow up to 25 % more, at least 2 (POOL-3). */
export const reservePoolSize = (pool: number): number => Math.max(2, Math.ceil(pool * 0.25));

/**
 * Server connections the Odoo role may hold over all the Odoo databases' transaction pools
 * (issue 16, POOL-5): every Odoo process serves every database (the hostname picks one per
 * request), so each database's pool is sized for all of them (defaultPoolSize), capped by its
 * own max_db_connections so one database cannot starve another, and PgBouncer keeps idle server
 * connections per pool: PostgreSQL must hold each pool with its reserve at once (PG-1).
 */
export const transactionPoolsConnections = (databaseCount: number, pool: number, reserve: number): number =>
  databaseCount * (pool + reserve);

// --- database `postgres`: a session pool (DESIGN principle 7) ----------------------------------
// Odoo uses database `postgres` for much more than LISTEN (ODOO-FACTS.md), and odoo/sql_db.py
// never keeps those connections (Cursor._close L476: keep_in_pool is false for `postgres`), so
// each use is a new client login to PgBouncer. The pool covers every process that can hold one
// at the same time; a full pool made cookieless requests wait 145 s, lost a bus notification,
// failed a cron trigger and kept a second Odoo server from starting.

/**
 * Sessions held for the process's lifetime: the gevent worker's bus, LISTEN imbus
 * (addons/bus/models/bus.py ImDispatch.loop L156-161), one per host; each cron worker, LISTEN
 * cron_trigger (odoo/service/server.py WorkerCron.start L1289-1302), on the cron host.
 */
export const postgresListeners = (cronThreads: number, hosts: number): number => hosts + cronThreads;

/**
 * Short-lived sessions, opened and closed around one statement: NOTIFY imbus after a commit that
 * sent a bus message (bus.py _sendmany L82-88), pg_notify('cron_trigger', …) after one that
 * triggered a cron (odoo/addons/base/models/ir_cron.py _notifydb L533-540), the database list
 * when a dbfilter applies (odoo/service/db.py list_dbs L441-444, called by odoo/http.py L1608
 * for every request whose session names no database), and the existence check of every server
 * start (odoo/cli/server.py main L149 → db.py _create_empty_database L124-130). A prefork
 * process is single-threaded and holds at most one at a time: per host the HTTP workers and the
 * gevent worker, plus the cron workers of the cron host.
 */
export const postgresShortLived = (workers: number, cronThreads: number, hosts: number): number => (workers + 1) * hosts + cronThreads;

/** pool_size of the `postgres` entry: every LISTENer and every short-lived session at once. */
export const postgresPoolSize = (workers: number, cronThreads: number, hosts: number): number =>
  postgresListeners(cronThreads, hosts) + postgresShortLived(workers, cronThreads, hosts);

/**
 * reserve_pool of the `postgres` entry: one host's LISTEN sessions held by a process that is
 * gone (a restart's old process, a crashed host until TCP keepalive frees them:
 * PGBOUNCER_DEAD_PEER_SECONDS in templates/pgbouncer.ts) while its successor starts: the cron
 * host's listeners (gevent + cron workers) and the successor's start-up connection.
 */
export const postgresReservePoolSize = (cronThreads: number): number => postgresListeners(cronThreads, 1) + 1;

/**
 * Server connections of the migration role (`odoo -u`, or the first `odoo -i`, DB_ROLES.migrate;
 * one at a time): one Odoo process in transaction pooling holds one transaction at a time, plus
 * its `postgres` session at start.
 */
export const MIGRATION_CONNECTIONS = 2;

/**
 * Server connections the Odoo role may hold over every database: the transaction pools with
 * their reserves, plus the `postgres` session pool with its reserve. A cap of maxUserConnections
 * alone would let a busy transaction pool starve `postgres` (or the reverse). PgBouncer's
 * max_user_connections and PostgreSQL's CONNECTION LIMIT for the role use it.
 */
export const odooRoleConnectionLimit = (
  pools: Pick<PgbouncerSizing, "maxUserConnections" | "postgresPoolSize" | "postgresReservePoolSize">,
): number => pools.maxUserConnections + pools.postgresPoolSize + pools.postgresReservePoolSize;

/**
 * max_client_conn: every connection every Odoo process may open (POOL-4): on every host the
 * HTTP and cron workers' pools (db_maxconn each) and the gevent worker's (db_maxconn_gevent),
 * `postgres` sessions included (they come from the same pool, sql_db.py db_connect L816-827),
 * plus one CLI process (a migration), then 25 % for restarts and dead clients not yet freed,
 * plus admin/stats/monitoring clients.
 */
export const ADMIN_CLIENTS = 10;
export const odooClientConnections = (
  workers: number,
  cronThreads: number,
  hosts: number,
  dbMaxconn: number,
  dbMaxconnGevent: number,
): number => hosts * (workers * dbMaxconn + dbMaxconnGevent) + cronThreads * dbMaxconn + dbMaxconn;
export const maxClientConn = (clients: number): number => Math.ceil(clients * 1.25) + ADMIN_CLIENTS;

/**
 * File descriptors: one per client plus one per server connection, doubled for TLS and
 * bursts, never below 4096. https://www.pgbouncer.org/config.html#max_client_conn
 */
export const pgbouncerNofile = (maxClient: number, serverConnections: number): number =>
  Math.max(4096, 2 * (maxClient + serverConnections));

/** Connections PostgreSQL keeps for what does not go through the Odoo pools. */
export const POSTGRES_RESERVED = {
  /** PgBouncer's stats user queries through its own small pool. */
  stats: 2,
  /** pgBackRest: backup + archive-push + check. */
  backup: 4,
  /** The metrics collector on the database host. */
  monitoring: 2,
  /** A DBA in psql during an incident. */
  admin: 3,
  /** PostgreSQL's superuser_reserved_connections default. */
  superuserReserved: 3,
} as const;

/** PostgreSQL tuning guide: shared_buffers 25 % of RAM, effective_cache_size 75 %. */
export const sharedBuffersMiB = (memoryMiB: number): number => Math.floor(memoryMiB / 4);
export const effectiveCacheSizeMiB = (memoryMiB: number): number => Math.floor((memoryMiB * 3) / 4);
/** work_mem: what shared_buffers leaves, over 3 sorts per connection; at least 4 MiB. */
export const workMemMiB = (memoryMiB: number, maxConnections: number): number =>
  Math.max(4, Math.floor((memoryMiB - sharedBuffersMiB(memoryMiB)) / (maxConnections * 3)));
/** maintenance_work_mem: RAM/16, capped at 2 GiB (autovacuum and index builds, PG-4). */
export const maintenanceWorkMemMiB = (memoryMiB: number): number => Math.min(2048, Math.floor(memoryMiB / 16));

/**
 * Per-role timeouts (PG-2), set with ALTER ROLE so they survive transaction pooling: Odoo resets
 * every pooled connection it reuses (odoo/sql_db.py ConnectionPool.borrow L675 calls psycopg2's
 * reset(), which sends DISCARD ALL), and only per-role and per-database values come back after
 * that. Web requests and crons share the role (odoo.conf has one db_user) and the pool:
 * - a statement over 2 minutes is a runaway in a request, and in a cron too: crons batch their
 *   work in short transactions (LIMIT-4), so a long cron is many short statements;
 * - a lock wait over 30 s is a queue forming;
 * - a transaction idle (Python running between two statements) longer than Odoo lets a request
 *   or a cron live holds a pooled server connection for nothing.
 * Migrations (`odoo -u`) connect as their own role with migrationTimeouts.
 */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 120_000;
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
export const idleInTransactionTimeoutMs = (limitTimeReal: number, limitTimeRealCron: number): number =>
  Math.max(limitTimeReal, limitTimeRealCron) * 1000;

export interface MigrationTimeouts {
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly idleInTransactionSessionTimeoutMs: number;
}

/**
 * The migration role's timeouts: `odoo -u` runs with the web workers stopped, attended by an
 * operator (a database's first `odoo -i` loads modules the same way, with Odoo stopped, at first
 * boot). It rewrites whole tables (ALTER TABLE, UPDATE of every row, CREATE INDEX) in
 * statements that outlast any web bound, and computes stored fields in Python between two
 * statements of one transaction for as long as the data needs: both bounds are lifted (0).
 * lock_timeout stays: with Odoo stopped, a lock wait means a forgotten worker or job, and the
 * migration should stop and say so rather than wait behind it.
 */
export const migrationTimeouts = (lockTimeoutMs: number): MigrationTimeouts => ({
  statementTimeoutMs: 0,
  lockTimeoutMs,
  idleInTransactionSessionTimeoutMs: 0,
});

/** Resolves every number; overrides win where given. Call checkSizing() on the result. */
export function computeSizing(input: SizingInput): Sizing {
  const o = input.odooOverrides ?? {};
  const b = input.pgbouncerOverrides ?? {};
  const p = input.postgresOverrides ?? {};
  const hosts = input.odooInstances;

  const maxCronThreads = o.maxCronThreads ?? DEFAULT_MAX_CRON_THREADS;
  // The default worker count leaves resident room for every process serving a heavy request at
  // once (conservative next to the guide's expected mix, which checkSizing enforces).
  const memWorkers = Math.floor((input.odoo.memoryMiB - osReserveMiB(input.odoo.memoryMiB)) / HEAVY_REQUEST_MIB) - maxCronThreads - 1;
  const workers = o.workers ?? Math.max(2, Math.min(workersFromCpu(input.odoo.vcpu), memWorkers));
  const processesPerHost = odooProcesses(workers, maxCronThreads);
  const hardMiB = o.limitMemoryHardMiB ?? limitMemoryHardMiB(input.odoo.memoryMiB, processesPerHost);
  const softMiB = o.limitMemorySoftMiB ?? limitMemorySoftMiB(hardMiB);
  const limitTimeReal = o.limitTimeReal ?? DEFAULT_LIMIT_TIME_REAL;
  const limitTimeRealCron = o.limitTimeRealCron ?? DEFAULT_LIMIT_TIME_REAL_CRON;
  const dbMaxconn = o.dbMaxconn ?? DEFAULT_DB_MAXCONN;
  const dbMaxconnGevent = o.dbMaxconnGevent ?? DEFAULT_DB_MAXCONN_GEVENT;

  const pool = b.defaultPoolSize ?? defaultPoolSize(workers, maxCronThreads, hosts);
  const reserve = b.reservePoolSize ?? reservePoolSize(pool);
  const maxDbConnections = b.maxDbConnections ?? pool + reserve;
  const maxUserConnections = transactionPoolsConnections(input.databaseCount, pool, reserve);
  const postgresPool = postgresPoolSize(workers, maxCronThreads, hosts);
  const postgresReserve = postgresReservePoolSize(maxCronThreads);
  const maxClient = b.maxClientConn ?? maxClientConn(odooClientConnections(workers, maxCronThreads, hosts, dbMaxconn, dbMaxconnGevent));

  const pools = maxUserConnections;
  const postgresSessions = postgresPool + postgresReserve;
  const r = POSTGRES_RESERVED;
  const maxConnections =
    p.maxConnections ??
    pools + postgresSessions + MIGRATION_CONNECTIONS + r.stats + r.backup + r.monitoring + r.admin + r.superuserReserved;
  const lockTimeoutMs = p.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;

  return {
    odoo: {
      workers,
      maxCronThreads,
      limitMemorySoftBytes: softMiB * MiB,
      limitMemoryHardBytes: hardMiB * MiB,
      limitTimeCpu: o.limitTimeCpu ?? DEFAULT_LIMIT_TIME_CPU,
      limitTimeReal,
      limitTimeRealCron,
      limitRequest: o.limitRequest ?? DEFAULT_LIMIT_REQUEST,
      dbMaxconn,
      dbMaxconnGevent,
      processesPerHost,
      httpMaxConns: httpMaxConns(workers),
    },
    pgbouncer: {
      defaultPoolSize: pool,
      reservePoolSize: reserve,
      reservePoolTimeoutSeconds: 3,
      maxClientConn: maxClient,
      maxDbConnections,
      maxUserConnections,
      postgresPoolSize: postgresPool,
      postgresReservePoolSize: postgresReserve,
      migrationConnections: MIGRATION_CONNECTIONS,
      limitNofile: pgbouncerNofile(maxClient, maxUserConnections + postgresSessions + MIGRATION_CONNECTIONS + r.stats),
    },
    postgres: {
      maxConnections,
      superuserReservedConnections: r.superuserReserved,
      sharedBuffersMiB: sharedBuffersMiB(input.postgres.memoryMiB),
      effectiveCacheSizeMiB: effectiveCacheSizeMiB(input.postgres.memoryMiB),
      workMemMiB: workMemMiB(input.postgres.memoryMiB, maxConnections),
      maintenanceWorkMemMiB: maintenanceWorkMemMiB(input.postgres.memoryMiB),
      statementTimeoutMs: p.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
      lockTimeoutMs,
      idleInTransactionSessionTimeoutMs:
        p.idleInTransactionSessionTimeoutMs ?? idleInTransactionTimeoutMs(limitTimeReal, limitTimeRealCron),
      migration: migrationTimeouts(lockTimeoutMs),
      slots: { pools, postgresPool: postgresSessions, migration: MIGRATION_CONNECTIONS, ...r },
    },
  };
}

/** One broken invariant: the config key a user would change, the value, and the fix. */
export interface SizingProblem {
  readonly key: string;
  readonly value: number;
  readonly message: string;
}

/**
 * The invariants every sizing must keep, overrides included. Returns every broken one; the
 * config validator turns them into the one error message a user sees.
 */
export function checkSizing(s: Sizing, input: SizingInput): SizingProblem[] {
  const problems: SizingProblem[] = [];
  const { odoo, pgbouncer, postgres } = s;
  const hardMiB = odoo.limitMemoryHardBytes / MiB;
  const softMiB = odoo.limitMemorySoftBytes / MiB;
  const budget = odooMemoryBudget(input.odoo.memoryMiB, odoo.processesPerHost);

  if (!(odoo.workers >= 2)) {
    problems.push({
      key: "odoo.workers",
      value: odoo.workers,
      message:
        "must be at least 2 (multi-process mode is what enables limits and the gevent worker, LIMIT-1); pick a larger odooInstanceType or set odoo.workers >= 2",
    });
  }
  if (odoo.workers > workersFromCpu(input.odoo.vcpu)) {
    problems.push({
      key: "odoo.workers",
      value: odoo.workers,
      message: `must not exceed (vCPU × 2) + 1 = ${workersFromCpu(input.odoo.vcpu)} for this instance type (LIMIT-1); lower it or pick a larger odooInstanceType`,
    });
  }
  if (odoo.maxCronThreads < 1 || odoo.maxCronThreads > 2) {
    problems.push({
      key: "odoo.maxCronThreads",
      value: odoo.maxCronThreads,
      message: "must be 1 or 2 until cron load is measured (LIMIT-2)",
    });
  }
  // A host too small for Odoo at all is reported once, against odooInstanceType (odooHostTooSmall).
  const tooSmall = odooHostTooSmall(input.odoo, odoo.maxCronThreads) !== undefined;
  if (!tooSmall && budget.expectedMiB > budget.usableMiB) {
    problems.push({
      key: "odoo.workers",
      value: odoo.workers,
      message: `gives ${odoo.processesPerHost} Odoo processes, which at Odoo's expected ${EXPECTED_PROCESS_MIB} MiB each (80 % light requests of ${LIGHT_REQUEST_MIB} MiB, 20 % heavy of ${HEAVY_REQUEST_MIB} MiB) need ${budget.expectedMiB} MiB, more than the ${budget.usableMiB} MiB left after the OS reserve (LIMIT-1); lower odoo.workers or pick a larger odooInstanceType`,
    });
  }
  if (!tooSmall && hardMiB < LIMIT_MEMORY_HARD_FLOOR_MIB) {
    problems.push({
      key: "odoo.limitMemoryHardMiB",
      value: hardMiB,
      message: `must be at least ${LIMIT_MEMORY_HARD_FLOOR_MIB} MiB: it limits each process's address space (RLIMIT_AS), and a worker maps ~${ODOO_PROCESS_AT_REST.virtualMiB} MiB at rest plus ~${HEAVY_REQUEST_MIB} MiB for a heavy request (LIMIT-3); raise it, lower odoo.workers, or pick a larger odooInstanceType`,
    });
  }
  if (!tooSmall && hardMiB > budget.maxLimitMemoryHardMiB) {
    problems.push({
      key: "odoo.limitMemoryHardMiB",
      value: hardMiB,
      message: `must be at most ${budget.maxLimitMemoryHardMiB} MiB: one process at its limit plus the other ${odoo.processesPerHost - 1} at rest (${ODOO_PROCESS_AT_REST.residentMiB} MiB resident each) must fit the ${budget.usableMiB} MiB left after the OS reserve, or a runaway request starves the host (LIMIT-1, LIMIT-3); lower it or odoo.workers, or pick a larger odooInstanceType`,
    });
  }
  if (softMiB < LIMIT_MEMORY_SOFT_FLOOR_MIB) {
    problems.push({
      key: "odoo.limitMemorySoftMiB",
      value: softMiB,
      message: `must be at least ${LIMIT_MEMORY_SOFT_FLOOR_MIB} MiB: Odoo compares it with each worker's virtual size after every request, and a worker maps ~${ODOO_PROCESS_AT_REST.virtualMiB} MiB at rest, so below that every worker is recycled after each light request (LIMIT-3)`,
    });
  }
  if (!(softMiB < hardMiB)) {
    problems.push({
      key: "odoo.limitMemorySoftMiB",
      value: softMiB,
      message: `must be below odoo.limitMemoryHardMiB (${hardMiB}) so workers recycle before they are killed (LIMIT-3)`,
    });
  }
  if (!(odoo.limitTimeCpu > 0 && odoo.limitTimeCpu <= odoo.limitTimeReal)) {
    problems.push({
      key: "odoo.limitTimeCpu",
      value: odoo.limitTimeCpu,
      message: `must be positive and at most odoo.limitTimeReal (${odoo.limitTimeReal}) (LIMIT-3)`,
    });
  }
  if (odoo.dbMaxconn < 2) {
    problems.push({
      key: "odoo.dbMaxconn",
      value: odoo.dbMaxconn,
      message: "must be at least 2: a worker opens a second cursor for logging and the registry check",
    });
  }
  if (odoo.dbMaxconnGevent < odoo.dbMaxconn) {
    problems.push({
      key: "odoo.dbMaxconnGevent",
      value: odoo.dbMaxconnGevent,
      message: `must be at least odoo.dbMaxconn (${odoo.dbMaxconn}): the gevent worker serves every WebSocket of its host at once, each message with a cursor of its own`,
    });
  }
  const busy = (odoo.workers + 1) * input.odooInstances + odoo.maxCronThreads;
  if (pgbouncer.defaultPoolSize < 1) {
    problems.push({ key: "pgbouncer.defaultPoolSize", value: pgbouncer.defaultPoolSize, message: "must be at least 1 (POOL-2)" });
  }
  if (pgbouncer.reservePoolSize < 1) {
    problems.push({
      key: "pgbouncer.reservePoolSize",
      value: pgbouncer.reservePoolSize,
      message: "must be at least 1 so short peaks do not queue (POOL-3)",
    });
  }
  if (pgbouncer.defaultPoolSize > busy * 2) {
    problems.push({
      key: "pgbouncer.defaultPoolSize",
      value: pgbouncer.defaultPoolSize,
      message: `must not exceed twice the Odoo processes that can hold a transaction (${busy}): extra server connections only load PostgreSQL (POOL-2)`,
    });
  }
  const clientsNeeded = odooClientConnections(odoo.workers, odoo.maxCronThreads, input.odooInstances, odoo.dbMaxconn, odoo.dbMaxconnGevent);
  if (pgbouncer.maxClientConn < clientsNeeded) {
    problems.push({
      key: "pgbouncer.maxClientConn",
      value: pgbouncer.maxClientConn,
      message: `must cover every Odoo process's pool (db_maxconn, db_maxconn_gevent for the gevent worker) on every host plus one CLI process = ${clientsNeeded} (POOL-4); raise it or lower odoo.dbMaxconn / odoo.dbMaxconnGevent`,
    });
  }
  if (pgbouncer.maxDbConnections < pgbouncer.defaultPoolSize) {
    problems.push({
      key: "pgbouncer.maxDbConnections",
      value: pgbouncer.maxDbConnections,
      message: `must be at least pgbouncer.defaultPoolSize (${pgbouncer.defaultPoolSize}) (POOL-5)`,
    });
  }
  const serverSide = Object.values(postgres.slots).reduce((a, b) => a + b, 0);
  if (postgres.maxConnections < serverSide) {
    problems.push({
      key: "postgres.maxConnections",
      value: postgres.maxConnections,
      message: `must cover PgBouncer's pools + reserves (${postgres.slots.pools}) + \`postgres\` session pool + reserve (${postgres.slots.postgresPool}) + migration role (${postgres.slots.migration}) + stats, backup, monitoring, admin and superuser slots = ${serverSide} (PG-1)`,
    });
  }
  if (postgres.maxConnections > 5000) {
    problems.push({
      key: "postgres.maxConnections",
      value: postgres.maxConnections,
      message: "must stay at most 5000: beyond that PostgreSQL spends its memory on backends; pool instead (PG-1)",
    });
  }
  const timeouts: [string, number][] = [
    ["postgres.statementTimeoutMs", postgres.statementTimeoutMs],
    ["postgres.lockTimeoutMs", postgres.lockTimeoutMs],
    ["postgres.idleInTransactionSessionTimeoutMs", postgres.idleInTransactionSessionTimeoutMs],
  ];
  for (const [key, value] of timeouts) {
    if (!(value >= 1000)) {
      problems.push({ key, value, message: "must be at least 1000 ms; 0 disables the timeout, which PG-2 forbids" });
    }
  }
  return problems;
}
