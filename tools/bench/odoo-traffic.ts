// The Odoo traffic model (issue 15): what a real Odoo 17.0 server's processes send to PgBouncer,
// process by process, so that the integration tests and the benchmark drive the rendered
// PgBouncer the way Odoo does instead of with pgbench-shaped transactions. Every behaviour below
// copies a line of Odoo 17.0's source (odoo/sql_db.py, odoo/http.py, odoo/service/db.py,
// odoo/service/server.py, odoo/cli/server.py, odoo/modules/registry.py, odoo/service/model.py,
// odoo/addons/base/models/ir_cron.py, addons/bus/models/bus.py, addons/bus/websocket.py), cited
// where it is modelled; psycopg2 (2.9, Debian 12) is modelled where Odoo relies on it.
//
// What is a model and not a copy: the ORM's statements (a request's SQL is a fixed, cited shape
// over a small Odoo-like schema, not the ORM's own), Python time (a configurable pause between
// statements), and the request mix (configured by the caller).
import { Client, escapeLiteral, type ClientConfig } from "pg";
import { odooTruthy, parseOdooConf } from "../../policy/lib/parse";

// ------------------------------------------------------------------------------------------------
// What an odoo.conf tells Odoo about its database access
// ------------------------------------------------------------------------------------------------

/** The options of a rendered odoo.conf that shape Odoo's database traffic. */
export interface OdooDbOptions {
  readonly workers: number;
  readonly maxCronThreads: number;
  /** db_maxconn (odoo/tools/config.py default 64). */
  readonly dbMaxconn: number;
  /** The gevent worker's pool: db_maxconn_gevent, else db_maxconn (odoo/sql_db.py db_connect L819-821). */
  readonly dbMaxconnGevent: number;
  /** db_name, comma-separated. */
  readonly dbNames: readonly string[];
  readonly dbfilter?: string;
  readonly dbUser: string;
}

/**
 * Reads a rendered odoo.conf with the policy pack's reader (policy/lib/parse.ts), which follows
 * Odoo's RawConfigParser: the model takes what the file says, not what the renderer meant.
 */
export function odooDbOptions(odooConfText: string): OdooDbOptions {
  const o = parseOdooConf(odooConfText).options;
  const int = (key: string, fallback: number) => {
    const v = o.get(key);
    return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : fallback;
  };
  const dbMaxconn = int("db_maxconn", 64);
  const dbfilter = o.get("dbfilter");
  return {
    workers: int("workers", 0),
    maxCronThreads: int("max_cron_threads", 2),
    dbMaxconn,
    // `odoo.evented and config['db_maxconn_gevent'] or config['db_maxconn']`: 0/absent falls back.
    dbMaxconnGevent: int("db_maxconn_gevent", 0) || dbMaxconn,
    dbNames: (o.get("db_name") ?? "")
      .split(",")
      .map((d) => d.trim())
      .filter((d) => d !== ""),
    ...(dbfilter !== undefined && dbfilter.trim() !== "" && odooTruthy(dbfilter) !== false ? { dbfilter } : {}),
    dbUser: o.get("db_user") ?? "odoo",
  };
}

// ------------------------------------------------------------------------------------------------
// Connections: odoo/sql_db.py
// ------------------------------------------------------------------------------------------------

/** Where Odoo connects (db_host, db_port, db_user, db_password, db_sslmode of odoo.conf). */
export interface OdooDbEndpoint {
  /** A pg client config for `database` without application_name (the model sets it). */
  config(database: string): ClientConfig;
}

/**
 * application_name of every connection a process opens (odoo/sql_db.py connection_info_for
 * L790-794): ODOO_PGAPPNAME with {pid} expanded, cut at 63 characters, else "odoo-<pid>".
 */
export function odooApplicationName(pid: number, odooPgAppName?: string): string {
  return odooPgAppName !== undefined ? odooPgAppName.replace(/\{pid\}/g, String(pid)).slice(0, 63) : `odoo-${pid}`;
}

/** odoo/sql_db.py PoolError, raised by ConnectionPool.borrow when every slot is in use (L698). */
export class OdooPoolError extends Error {
  constructor(message = "The Connection Pool Is Full") {
    super(message);
    this.name = "PoolError";
  }
}

/** Databases whose connections Odoo never keeps (odoo/sql_db.py Cursor._close L476; db_template is template0 in this stack). */
const NOT_KEPT = new Set(["postgres", "template0", "template1"]);

/** Every database connection event the model saw, for the tests and the benchmark. */
export interface ConnectionEvent {
  readonly database: string;
  readonly purpose: string;
  /** connect + the statements + close, ms. */
  readonly ms: number;
  readonly error?: string;
}

interface PooledConnection {
  readonly client: Client;
  readonly database: string;
  used: boolean;
}

/**
 * odoo/sql_db.py ConnectionPool (L626-728): one per process, `maxconn` connections over every
 * database, `postgres` included. borrow() reuses an unused connection to the same database after
 * psycopg2's reset() (L675), which sends DISCARD ALL (psycopg2 pqpath.c pq_reset_locked); when
 * all `maxconn` are in use it drops an unused one to another database, or raises PoolError
 * (L687-698). give_back() keeps the connection, except for `postgres` and the templates, which
 * it closes (L712-728 with Cursor._close L476): every use of `postgres` is a new login.
 */
export class OdooConnectionPool {
  private readonly connections: PooledConnection[] = [];
  /** Connections opened so far, by database. */
  readonly opened = new Map<string, number>();

  constructor(
    readonly maxconn: number,
    private readonly endpoint: OdooDbEndpoint,
    readonly applicationName: string,
  ) {}

  get inUse(): number {
    return this.connections.filter((c) => c.used).length;
  }

  async borrow(database: string): Promise<PooledConnection> {
    for (const c of this.connections) {
      if (!c.used && c.database === database) {
        c.used = true;
        try {
          await c.client.query("DISCARD ALL"); // psycopg2 connection.reset(), sql_db.py L675
          return c;
        } catch {
          this.forget(c); // "Cannot reset connection": closed and skipped (L676-681)
        }
      }
    }
    if (this.connections.length >= this.maxconn) {
      const idle = this.connections.find((c) => !c.used);
      if (!idle) throw new OdooPoolError();
      this.forget(idle);
    }
    const client = new Client({ ...this.endpoint.config(database), application_name: this.applicationName });
    client.on("error", () => undefined); // surfaces on the next query
    const slot: PooledConnection = { client, database, used: true };
    this.connections.push(slot);
    try {
      await client.connect();
    } catch (err) {
      this.forget(slot);
      throw err;
    }
    this.opened.set(database, (this.opened.get(database) ?? 0) + 1);
    return slot;
  }

  /**
   * Opens up to `n` connections to `database` and leaves them unused in the pool, as a process
   * that has served that many cursors at once keeps them (borrow closes an unused connection only
   * after MAX_IDLE_TIMEOUT, 600 s, sql_db.py L53, L660).
   */
  async warm(database: string, n: number): Promise<void> {
    const slots = await Promise.all(Array.from({ length: Math.min(n, this.maxconn) }, () => this.borrow(database)));
    for (const slot of slots) this.giveBack(slot);
  }

  giveBack(slot: PooledConnection): void {
    if (NOT_KEPT.has(slot.database)) this.forget(slot);
    else slot.used = false;
  }

  forget(slot: PooledConnection): void {
    const i = this.connections.indexOf(slot);
    if (i >= 0) this.connections.splice(i, 1);
    void slot.client.end().catch(() => undefined);
  }

  async closeAll(): Promise<void> {
    const all = this.connections.splice(0);
    await Promise.all(all.map((c) => c.client.end().catch(() => undefined)));
  }
}

/**
 * odoo/sql_db.py Cursor: borrows on creation (L267) and sets REPEATABLE READ (L275), so psycopg2
 * opens the transaction with "BEGIN ISOLATION LEVEL REPEATABLE READ" before the first statement
 * (pqpath.c pq_begin_locked); psycopg2 sends each statement with PQexec, the simple query
 * protocol, parameters interpolated client-side. commit() sends COMMIT, close() rolls back what
 * is open and gives the connection back (L449-477).
 */
export class OdooCursor {
  private inTransaction = false;
  private closed = false;

  private constructor(
    private readonly pool: OdooConnectionPool,
    private readonly slot: PooledConnection,
  ) {}

  static async open(pool: OdooConnectionPool, database: string): Promise<OdooCursor> {
    return new OdooCursor(pool, await pool.borrow(database));
  }

  get client(): Client {
    return this.slot.client;
  }

  async execute<R extends Record<string, unknown> = Record<string, unknown>>(sql: string): Promise<R[]> {
    if (!this.inTransaction) {
      await this.slot.client.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
      this.inTransaction = true;
    }
    return (await this.slot.client.query<R>(sql)).rows;
  }

  async commit(): Promise<void> {
    if (this.inTransaction) await this.slot.client.query("COMMIT");
    this.inTransaction = false;
  }

  async rollback(): Promise<void> {
    if (this.inTransaction) await this.slot.client.query("ROLLBACK");
    this.inTransaction = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.inTransaction) await this.slot.client.query("ROLLBACK");
      this.inTransaction = false;
      this.pool.giveBack(this.slot);
    } catch {
      this.pool.forget(this.slot);
    }
  }
}

/** Runs `fn` with a cursor, always closed (Odoo's `with closing(db.cursor())`). */
async function withCursor<T>(pool: OdooConnectionPool, database: string, fn: (cr: OdooCursor) => Promise<T>): Promise<T> {
  const cr = await OdooCursor.open(pool, database);
  try {
    return await fn(cr);
  } finally {
    await cr.close();
  }
}

// ------------------------------------------------------------------------------------------------
// The schema the modelled statements run on
// ------------------------------------------------------------------------------------------------

/** Odoo's tables the model touches, small and deterministic, owned by `owner`. */
export function odooSchemaSql(owner: string, partners = 2_000): string {
  const q = `"${owner.replace(/"/g, '""')}"`;
  return [
    "SET statement_timeout = 0;",
    // odoo/modules/registry.py setup_signaling / get_sequences (L790-828).
    "CREATE SEQUENCE base_registry_signaling;",
    "CREATE SEQUENCE base_cache_signaling_default;",
    "CREATE SEQUENCE base_cache_signaling_assets;",
    "CREATE SEQUENCE base_cache_signaling_templates;",
    "CREATE SEQUENCE base_cache_signaling_routing;",
    "CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key text UNIQUE NOT NULL, value text NOT NULL);",
    "INSERT INTO ir_config_parameter (key, value) VALUES ('database.secret', md5('odoo-stack'));",
    "CREATE TABLE res_company (id int PRIMARY KEY, name text NOT NULL, currency_id int NOT NULL DEFAULT 1);",
    "INSERT INTO res_company SELECT g, 'Company ' || g FROM generate_series(1, 5) g;",
    "CREATE TABLE res_users (id int PRIMARY KEY, login text NOT NULL, password text NOT NULL DEFAULT '', active bool NOT NULL DEFAULT true, company_id int NOT NULL REFERENCES res_company, partner_id int NOT NULL);",
    `INSERT INTO res_users SELECT g, 'user' || g, md5(g::text), true, 1 + g % 5, g FROM generate_series(1, 200) g;`,
    "CREATE TABLE res_partner (id int PRIMARY KEY, name text NOT NULL, email text, company_id int REFERENCES res_company, credit numeric NOT NULL DEFAULT 0, write_date timestamp NOT NULL DEFAULT now(), write_uid int);",
    `INSERT INTO res_partner (id, name, email, company_id) SELECT g, 'Partner ' || g, 'p' || g || '@example.com', 1 + g % 5 FROM generate_series(1, ${partners}) g;`,
    "CREATE TABLE sale_order_line (id bigserial PRIMARY KEY, order_partner_id int NOT NULL, product_id int NOT NULL, product_uom_qty numeric NOT NULL, price_unit numeric NOT NULL, create_date timestamp NOT NULL DEFAULT now());",
    `INSERT INTO sale_order_line (order_partner_id, product_id, product_uom_qty, price_unit) SELECT 1 + g % ${partners}, g % 300, 1 + g % 7, (g % 500) / 10.0 FROM generate_series(1, ${partners * 10}) g;`,
    "CREATE INDEX sale_order_line_order_partner_id_index ON sale_order_line (order_partner_id);",
    "CREATE TABLE mail_message (id bigserial PRIMARY KEY, model text NOT NULL, res_id int NOT NULL, body text, author_id int, create_date timestamp NOT NULL DEFAULT now());",
    "CREATE INDEX mail_message_res_id_index ON mail_message (model, res_id);",
    // addons/bus/models/bus.py: bus.bus (channel, message), polled by id.
    "CREATE TABLE bus_bus (id bigserial PRIMARY KEY, channel text NOT NULL, message text NOT NULL, create_date timestamp NOT NULL DEFAULT (now() at time zone 'UTC'));",
    "CREATE INDEX bus_bus_channel_index ON bus_bus (channel);",
    // odoo/addons/base/models/ir_cron.py: ir.cron and ir.cron.trigger.
    "CREATE TABLE ir_cron (id serial PRIMARY KEY, cron_name text NOT NULL, active bool NOT NULL DEFAULT true, numbercall int NOT NULL DEFAULT -1, priority int NOT NULL DEFAULT 5, nextcall timestamp NOT NULL, lastcall timestamp);",
    "INSERT INTO ir_cron (cron_name, nextcall) VALUES ('Mail: Email Queue Manager', now() at time zone 'UTC' + interval '1 hour');",
    "CREATE TABLE ir_cron_trigger (id serial PRIMARY KEY, cron_id int NOT NULL REFERENCES ir_cron, call_at timestamp NOT NULL);",
    ...[
      "ir_config_parameter",
      "res_company",
      "res_users",
      "res_partner",
      "sale_order_line",
      "mail_message",
      "bus_bus",
      "ir_cron",
      "ir_cron_trigger",
    ].map((t) => `ALTER TABLE ${t} OWNER TO ${q};`),
    ...[
      "base_registry_signaling",
      "base_cache_signaling_default",
      "base_cache_signaling_assets",
      "base_cache_signaling_templates",
      "base_cache_signaling_routing",
    ].map((s) => `ALTER SEQUENCE ${s} OWNER TO ${q};`),
    "VACUUM ANALYZE;",
    "",
  ].join("\n");
}

/** Partners the requests pick from (odooSchemaSql's default). */
export const SCHEMA_PARTNERS = 2_000;

// ------------------------------------------------------------------------------------------------
// What processes do
// ------------------------------------------------------------------------------------------------

/** A request's shape: its statements after the session check, and what it sends after commit. */
export interface RequestKind {
  readonly kind: string;
  readonly weight: number;
  /** Statements of the main transaction (dozens, as the ORM issues them for one page). */
  statements(random: () => number): readonly string[];
  /** Bus messages created (bus.py _sendmany: INSERT INTO bus_bus, then NOTIFY after commit). */
  readonly busMessages: number;
  /** A cron triggered for now (ir_cron.py _trigger_list: INSERT ir_cron_trigger, pg_notify after commit). */
  readonly triggersCron: boolean;
}

const pick = (random: () => number, n: number) => 1 + Math.floor(random() * n);
const ids = (random: () => number, n: number, of: number) => Array.from({ length: n }, () => pick(random, of)).join(",");

/**
 * A form view: the record, its many2one and one2many prefetches, the chatter, access checks.
 * Shapes follow odoo/models.py _read (SELECT of stored fields by id) and the mail thread's reads.
 */
const formReadStatements = (random: () => number, partners: number): string[] => {
  const id = pick(random, partners);
  const out = [
    `SELECT id, name, email, company_id, credit, write_date, write_uid FROM res_partner WHERE id IN (${id})`,
    `SELECT id, name, currency_id FROM res_company WHERE id IN (${ids(random, 2, 5)})`,
    `SELECT id FROM sale_order_line WHERE order_partner_id IN (${id}) ORDER BY id LIMIT 80`,
    `SELECT id, product_id, product_uom_qty, price_unit FROM sale_order_line WHERE order_partner_id IN (${id}) ORDER BY id LIMIT 80`,
    `SELECT count(1) FROM mail_message WHERE model = 'res.partner' AND res_id = ${id}`,
    `SELECT id, body, author_id, create_date FROM mail_message WHERE model = 'res.partner' AND res_id = ${id} ORDER BY id DESC LIMIT 30`,
  ];
  // Name lookups of related records, one query each, as display_name prefetches do.
  for (let i = 0; i < 14; i++) out.push(`SELECT id, name FROM res_partner WHERE id IN (${ids(random, 3, partners)})`);
  return out;
};

/** Odoo-shaped request kinds: mostly reads, a quarter writes that notify the bus, a few reports. */
export function odooRequestKinds(partners = SCHEMA_PARTNERS): readonly RequestKind[] {
  return [
    { kind: "read", weight: 70, busMessages: 0, triggersCron: false, statements: (r) => formReadStatements(r, partners) },
    {
      kind: "write",
      weight: 25,
      busMessages: 1,
      triggersCron: false,
      statements: (r) => {
        const id = pick(r, partners);
        return [
          ...formReadStatements(r, partners),
          `UPDATE res_partner SET credit = credit + 1, write_date = now() at time zone 'UTC', write_uid = ${pick(r, 200)} WHERE id IN (${id})`,
          `INSERT INTO mail_message (model, res_id, body, author_id) VALUES ('res.partner', ${id}, ${escapeLiteral(`credit +1 on ${id}`)}, ${pick(r, 200)}) RETURNING id`,
          `SELECT id, name, email, company_id, credit, write_date, write_uid FROM res_partner WHERE id IN (${id})`,
        ];
      },
    },
    {
      kind: "report",
      weight: 5,
      busMessages: 0,
      triggersCron: false,
      statements: (r) => [
        ...formReadStatements(r, partners).slice(0, 8),
        `SELECT product_id, count(*), sum(product_uom_qty * price_unit) FROM sale_order_line WHERE order_partner_id BETWEEN ${pick(r, partners - 200)} AND ${pick(r, partners - 200) + 200} GROUP BY product_id ORDER BY 3 DESC LIMIT 20`,
      ],
    },
  ];
}

/** Counters and events of a run; the tests and the benchmark read them. */
export class TrafficRecorder {
  readonly events: ConnectionEvent[] = [];
  readonly requests = { ok: 0, failed: 0, errors: new Map<string, number>(), latenciesMs: [] as number[] };
  /** Bus notifications sent (payload ids) and what each LISTENer received. */
  readonly busSent = new Set<string>();
  readonly busFailed: string[] = [];
  readonly cronTriggersSent = new Set<string>();
  readonly cronTriggersFailed: string[] = [];
  readonly poolErrors: { readonly pid: number; readonly message: string }[] = [];

  note(event: ConnectionEvent): void {
    this.events.push(event);
  }

  failure(message: string): void {
    this.requests.failed++;
    const key = message.split("\n")[0].replace(/\b\d{4,}\b/g, "N");
    this.requests.errors.set(key, (this.requests.errors.get(key) ?? 0) + 1);
  }

  eventsFor(purpose: string): ConnectionEvent[] {
    return this.events.filter((e) => e.purpose === purpose);
  }
}

/** A simulated Odoo process: its pid, application_name and connection pool. */
export class OdooProcess {
  readonly pool: OdooConnectionPool;
  readonly applicationName: string;

  constructor(
    readonly pid: number,
    readonly role: "http" | "gevent" | "cron" | "cli",
    maxconn: number,
    readonly endpoint: OdooDbEndpoint,
    readonly recorder: TrafficRecorder,
    odooPgAppName?: string,
  ) {
    this.applicationName = odooApplicationName(pid, odooPgAppName);
    this.pool = new OdooConnectionPool(maxconn, endpoint, this.applicationName);
  }

  /**
   * One use of database `postgres`: connect, run `statements`, close. Odoo's connections there
   * are never kept (Cursor._close L476), so each is a login to PgBouncer (TLS + SCRAM).
   */
  async onPostgres(purpose: string, statements: readonly string[], options: { autocommit?: boolean } = {}): Promise<void> {
    const started = performance.now();
    try {
      await withCursor(this.pool, "postgres", async (cr) => {
        for (const sql of statements) {
          if (options.autocommit) await cr.client.query(sql);
          else await cr.execute(sql);
        }
        await cr.commit();
      });
      this.recorder.note({ database: "postgres", purpose, ms: performance.now() - started });
    } catch (err) {
      this.recorder.note({ database: "postgres", purpose, ms: performance.now() - started, error: (err as Error).message });
      throw err;
    }
  }

  /**
   * odoo/service/db.py list_dbs (L428-449), as odoo/http.py db_list (L328-342) calls it with
   * force=True from _get_session_and_dbname (L1608) for a request whose session names no
   * database: with no dbfilter and a db_name, the answer is db_name and nothing connects
   * (L432-437); otherwise a new connection to `postgres` lists the role's databases (L441-445).
   * Then db_filter (L344-379) keeps the dbfilter's matches, or db_name's.
   */
  async dbList(options: OdooDbOptions, host: string): Promise<string[]> {
    let dbs: string[];
    if (options.dbfilter === undefined && options.dbNames.length > 0) {
      dbs = [...options.dbNames].sort();
    } else {
      const started = performance.now();
      try {
        dbs = await withCursor(this.pool, "postgres", async (cr) =>
          (
            await cr.execute<{ datname: string }>(
              "select datname from pg_database where datdba=(select usesysid from pg_user where usename=current_user) and not datistemplate and datallowconn and datname not in ('postgres', 'template0') order by datname",
            )
          ).map((r) => r.datname),
        );
        this.recorder.note({ database: "postgres", purpose: "list_dbs", ms: performance.now() - started });
      } catch (err) {
        // "Listing databases failed": the exception is logged and the list is empty (L446-448).
        this.recorder.note({ database: "postgres", purpose: "list_dbs", ms: performance.now() - started, error: (err as Error).message });
        dbs = [];
      }
    }
    return dbFilter(options, dbs, host);
  }

  /**
   * Odoo server start (odoo/cli/server.py main L145-149): for each db_name, db.py
   * _create_empty_database (L124-130) opens `postgres` and checks that the database exists.
   */
  async serverStart(options: OdooDbOptions): Promise<void> {
    for (const db of options.dbNames)
      await this.onPostgres("server_start", [`SELECT datname FROM pg_database WHERE datname = ${escapeLiteral(db)}`]);
  }

  async close(): Promise<void> {
    await this.pool.closeAll();
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * odoo/http.py db_filter (L344-379): with a dbfilter, the names it matches from the start
 * (Python's re.match) after %h (the host without "www.") and %d (its first label) are
 * substituted; else, with a db_name, the listed names that exist; else everything.
 */
export function dbFilter(options: Pick<OdooDbOptions, "dbfilter" | "dbNames">, dbs: readonly string[], host: string): string[] {
  if (options.dbfilter !== undefined) {
    const h = host.split(":")[0].replace(/^www\./, "");
    const re = new RegExp(`^(?:${options.dbfilter.replace(/%h/g, escapeRegExp(h)).replace(/%d/g, escapeRegExp(h.split(".")[0]))})`);
    return dbs.filter((db) => re.test(db));
  }
  if (options.dbNames.length > 0) return [...new Set(options.dbNames)].filter((d) => dbs.includes(d)).sort();
  return [...dbs];
}
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface RequestOptions {
  readonly database: string;
  readonly kind: RequestKind;
  readonly random: () => number;
  /** The request has no session database yet (a first visit, a health check). */
  readonly cookieless: boolean;
  /** The Host header, for %h / %d in a dbfilter. */
  readonly host: string;
  /** Python time between two statements of the transaction, ms (0: none). */
  readonly pythonMsPerStatement: number;
  /** Bus messages also trigger a cron (a share of writes do, e.g. mail queue). */
  readonly triggerCron?: boolean;
}

/**
 * One HTTP request of a prefork worker (odoo/http.py Application.__call__ L2380-2412):
 * _get_session_and_dbname (L1590-1617) first; then _serve_db (L1957-1985): the registry's
 * signaling check on a cursor of its own (odoo/modules/registry.py check_signaling L830-837,
 * get_sequences L819-828), then the request's cursor, its statements, the commit through
 * service/model.py retrying (L192), whose post-commit hooks send the bus notification
 * (bus.py _sendmany L75-88: INSERT INTO bus_bus, NOTIFY imbus on a new `postgres` connection)
 * and the cron trigger (ir_cron.py _trigger_list L521-530, _notifydb L533-540).
 */
export interface ServedRequest {
  /** The database that served it; undefined when no database was chosen (the selector, _serve_nodb). */
  readonly database: string | undefined;
  /** Bus notifications this request's post-commit hook sent (payloads), and those it could not send. */
  readonly notified: readonly string[];
  readonly notifyFailed: number;
}

export async function serveRequest(process: OdooProcess, options: OdooDbOptions, r: RequestOptions): Promise<ServedRequest> {
  if (r.cookieless) {
    const dbs = await process.dbList(options, r.host);
    // The database selector (404 at nginx): _serve_nodb.
    if (dbs.length !== 1 || dbs[0] !== r.database) return { database: undefined, notified: [], notifyFailed: 0 };
  }
  await withCursor(process.pool, r.database, async (cr) => {
    await cr.execute(
      "SELECT base_registry_signaling.last_value, base_cache_signaling_default.last_value, base_cache_signaling_assets.last_value, base_cache_signaling_templates.last_value, base_cache_signaling_routing.last_value FROM base_registry_signaling, base_cache_signaling_default, base_cache_signaling_assets, base_cache_signaling_templates, base_cache_signaling_routing",
    );
  });
  let notifications: string[] = [];
  let cronTrigger: string | undefined;
  const statements = r.kind.statements(r.random);
  await withCursor(process.pool, r.database, async (cr) => {
    // service/model.py retrying (L137-192): a serialization failure, deadlock or lock timeout
    // rolls back and replays the request up to 5 times, after uniform(0, 2^try) s.
    for (let tryno = 1; ; tryno++) {
      notifications = [];
      cronTrigger = undefined;
      try {
        for (const sql of statements) {
          await cr.execute(sql);
          if (r.pythonMsPerStatement > 0) await sleep(r.pythonMsPerStatement);
        }
        for (let i = 0; i < r.kind.busMessages; i++) {
          const id = `${process.pid}-${Date.now()}-${Math.floor(r.random() * 1e9)}`;
          const channel = JSON.stringify([r.database, "res.partner", id]);
          await cr.execute(
            `INSERT INTO bus_bus (channel, message) VALUES (${escapeLiteral(channel)}, ${escapeLiteral(JSON.stringify({ type: "model", payload: id }))})`,
          );
          notifications.push(JSON.stringify([[r.database, "res.partner", id]]));
        }
        if (r.kind.triggersCron || r.triggerCron) {
          await cr.execute("INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES (1, now() at time zone 'UTC')");
          cronTrigger = `${process.pid}-${Date.now()}-${Math.floor(r.random() * 1e9)}`;
        }
        await cr.commit();
        return;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (!(code !== undefined && PG_CONCURRENCY_ERRORS_TO_RETRY.includes(code)) || tryno >= MAX_TRIES_ON_CONCURRENCY_FAILURE) throw err;
        await cr.rollback();
        await sleep(r.random() * 2 ** tryno * 1000);
      }
    }
  });
  // Post-commit hooks: a failure is logged by Odoo and the notification is lost.
  const notified: string[] = [];
  let notifyFailed = 0;
  for (const payload of notifications) {
    try {
      await process.onPostgres("notify_bus", [`NOTIFY imbus, ${escapeLiteral(payload)}`]);
      process.recorder.busSent.add(payload);
      notified.push(payload);
    } catch (err) {
      process.recorder.busFailed.push((err as Error).message);
      notifyFailed++;
    }
  }
  if (cronTrigger !== undefined) {
    // pg_notify's payload is the database name in Odoo; the model adds an id to count deliveries.
    try {
      await process.onPostgres("notify_cron", [`SELECT pg_notify('cron_trigger', ${escapeLiteral(`${r.database} ${cronTrigger}`)})`]);
      process.recorder.cronTriggersSent.add(`${r.database} ${cronTrigger}`);
    } catch (err) {
      process.recorder.cronTriggersFailed.push((err as Error).message);
    }
  }
  return { database: r.database, notified, notifyFailed };
}

/** service/model.py L23-24: lock_not_available, serialization_failure, deadlock_detected; 5 tries. */
const PG_CONCURRENCY_ERRORS_TO_RETRY: readonly string[] = ["55P03", "40001", "40P01"];
const MAX_TRIES_ON_CONCURRENCY_FAILURE = 5;

/** A LISTEN session on `postgres`, held for the process's life, and what it received. */
export class PostgresListener {
  readonly received: string[] = [];
  private client: Client | undefined;
  private slot: { cr: OdooCursor } | undefined;
  error: string | undefined;

  constructor(
    readonly process: OdooProcess,
    readonly channel: "imbus" | "cron_trigger",
  ) {}

  /**
   * The bus (bus.py ImDispatch.loop L156-177): a cursor on `postgres`, "listen imbus", commit,
   * then wait for notifications on the connection. The cron worker (server.py WorkerCron.start
   * L1289-1302): a cursor on `postgres`, SELECT pg_is_in_recovery(), "LISTEN cron_trigger",
   * commit, then select() on the connection between job runs (WorkerCron.sleep L1236-1250).
   */
  async start(): Promise<void> {
    const started = performance.now();
    try {
      const cr = await OdooCursor.open(this.process.pool, "postgres");
      this.slot = { cr };
      this.client = cr.client;
      this.client.on("notification", (msg) => {
        if (msg.channel === this.channel && msg.payload !== undefined) this.received.push(msg.payload);
      });
      this.client.on("error", (err) => (this.error = err.message));
      if (this.channel === "cron_trigger") await cr.execute("SELECT pg_is_in_recovery()");
      await cr.execute(this.channel === "imbus" ? "listen imbus" : "LISTEN cron_trigger");
      await cr.commit();
      this.process.recorder.note({ database: "postgres", purpose: `listen_${this.channel}`, ms: performance.now() - started });
    } catch (err) {
      this.process.recorder.note({
        database: "postgres",
        purpose: `listen_${this.channel}`,
        ms: performance.now() - started,
        error: (err as Error).message,
      });
      throw err;
    }
  }

  /** The socket itself (to make it vanish without a FIN, as a crashed host's would). */
  get socket(): import("net").Socket | undefined {
    return (this.client as unknown as { connection?: { stream?: import("net").Socket } } | undefined)?.connection?.stream;
  }

  async stop(): Promise<void> {
    await this.slot?.cr.close().catch(() => undefined);
    await this.client?.end().catch(() => undefined);
  }
}

/**
 * addons/bus/websocket.py acquire_cursor (L37-48): up to 10 tries to get a cursor, sleeping
 * uniform(0.03, 0.03 × try) s after each PoolError, then PoolError "Failed to acquire cursor
 * after 10 retries" (the WebSocket is closed with TRY_LATER, L916-917).
 */
export async function acquireCursor(process: OdooProcess, database: string, random: () => number): Promise<OdooCursor> {
  const MAX_TRY_ON_POOL_ERROR = 10;
  const DELAY_ON_POOL_ERROR = 0.03;
  for (let tryno = 1; tryno <= MAX_TRY_ON_POOL_ERROR; tryno++) {
    try {
      return await OdooCursor.open(process.pool, database);
    } catch (err) {
      if (!(err instanceof OdooPoolError)) throw err;
    }
    await sleep(1000 * (DELAY_ON_POOL_ERROR + random() * (DELAY_ON_POOL_ERROR * tryno - DELAY_ON_POOL_ERROR)));
  }
  throw new OdooPoolError(`Failed to acquire cursor after ${MAX_TRY_ON_POOL_ERROR} retries`);
}

/** Python time of a WebSocket handler, ms, while it holds its cursor. */
export interface HandlerTiming {
  /** Before the first statement: environment, session and registry work (no server connection held yet). */
  readonly pythonMsPerStep: number;
  /** Between two statements (the server connection held, a transaction open). */
  readonly pythonMsPerStatement: number;
}

/**
 * A WebSocket (re)connection to the gevent worker, as Odoo 17 serves it: the upgrade is an HTTP
 * request (_serve_db: the signaling cursor, then the request's, http.py L1963, L1981); then the
 * client's "subscribe" message (websocket.py serve_websocket_message L735-764: check_signaling,
 * then acquire_cursor and ir.websocket._subscribe), then the first bus dispatch
 * (_dispatch_bus_notifications L621-641: acquire_cursor, check_session, bus._poll). Each step
 * holds one cursor of the gevent worker's pool from acquire_cursor to close, Python included;
 * in transaction pooling the server connection is held only from the first statement to the
 * commit, so the worker's pool, not PgBouncer's, is what a storm of greenlets fills first.
 */
export async function websocketReconnect(
  process: OdooProcess,
  database: string,
  random: () => number,
  timing: HandlerTiming,
): Promise<void> {
  const signaling =
    "SELECT base_registry_signaling.last_value, base_cache_signaling_default.last_value FROM base_registry_signaling, base_cache_signaling_default";
  const step = async (statements: readonly string[]) => {
    const cr = await acquireCursor(process, database, random);
    try {
      if (timing.pythonMsPerStep > 0) await sleep(timing.pythonMsPerStep);
      for (const sql of statements) {
        await cr.execute(sql);
        if (timing.pythonMsPerStatement > 0) await sleep(timing.pythonMsPerStatement);
      }
      await cr.commit();
    } finally {
      await cr.close();
    }
  };
  const uid = pick(random, 200);
  const sessionCheck = `SELECT id, login, password, active, (SELECT value FROM ir_config_parameter WHERE key='database.secret') FROM res_users WHERE id=${uid}`;
  const poll = `SELECT id, message FROM bus_bus WHERE id > 0 AND channel IN (${escapeLiteral(JSON.stringify([database, "res.partner", uid]))}) ORDER BY id LIMIT 100`;
  // The upgrade request: the registry check, then the request's cursor with the session check.
  await step([signaling]);
  await step([sessionCheck]);
  // "subscribe": the registry check, then the user, its partner and channels, the missed notifications.
  await step([signaling]);
  await step([
    sessionCheck,
    `SELECT id, partner_id, company_id FROM res_users WHERE id IN (${uid})`,
    `SELECT id, name FROM res_partner WHERE id IN (${ids(random, 3, SCHEMA_PARTNERS)})`,
    poll,
  ]);
  // The first dispatch.
  await step([sessionCheck, poll]);
}

/**
 * The cron worker's job run after a trigger (ir_cron.py _process_jobs L114, _get_all_ready_jobs
 * L203-219, _acquire_one_job L222-282: FOR NO KEY UPDATE SKIP LOCKED, _process_job L298-376:
 * nextcall updated, triggers deleted).
 */
export async function runCronJobs(process: OdooProcess, database: string): Promise<void> {
  await withCursor(process.pool, database, async (cr) => {
    await cr.execute(
      "SELECT * FROM ir_cron WHERE active = true AND numbercall != 0 AND (nextcall <= (now() at time zone 'UTC') OR id in (SELECT cron_id FROM ir_cron_trigger WHERE call_at <= (now() at time zone 'UTC'))) ORDER BY priority",
    );
    await cr.execute("SELECT * FROM ir_cron WHERE id = 1 FOR NO KEY UPDATE SKIP LOCKED");
    await cr.execute("UPDATE ir_cron SET lastcall = now() at time zone 'UTC' WHERE id = 1");
    await cr.execute("DELETE FROM ir_cron_trigger WHERE cron_id = 1 AND call_at <= (now() at time zone 'UTC')");
    await cr.commit();
  });
}

// ------------------------------------------------------------------------------------------------
// An Odoo host: its processes together
// ------------------------------------------------------------------------------------------------

export interface OdooHostOptions {
  readonly name: string;
  /** The host's rendered odoo.conf, read with odooDbOptions. */
  readonly options: OdooDbOptions;
  readonly endpoint: OdooDbEndpoint;
  readonly recorder: TrafficRecorder;
  /** First simulated pid of the host's processes. */
  readonly firstPid: number;
  /** ODOO_PGAPPNAME as the host's service environment sets it; absent: Odoo's "odoo-<pid>". */
  readonly odooPgAppName?: string;
}

/**
 * The processes of one Odoo server in prefork mode (odoo/service/server.py PreforkServer): the
 * HTTP workers (db_maxconn each), the gevent worker (db_maxconn_gevent, else db_maxconn), and
 * the cron workers (max_cron_threads of them; 0 on every host but the cron host).
 */
export class OdooHost {
  readonly http: OdooProcess[];
  readonly gevent: OdooProcess;
  readonly cron: OdooProcess[];
  readonly bus: PostgresListener;
  readonly cronListeners: PostgresListener[];

  constructor(readonly o: OdooHostOptions) {
    let pid = o.firstPid;
    const make = (role: OdooProcess["role"], maxconn: number) =>
      new OdooProcess(pid++, role, maxconn, o.endpoint, o.recorder, o.odooPgAppName);
    this.http = Array.from({ length: o.options.workers }, () => make("http", o.options.dbMaxconn));
    this.gevent = make("gevent", o.options.dbMaxconnGevent);
    this.cron = Array.from({ length: o.options.maxCronThreads }, () => make("cron", o.options.dbMaxconn));
    this.bus = new PostgresListener(this.gevent, "imbus");
    this.cronListeners = this.cron.map((p) => new PostgresListener(p, "cron_trigger"));
  }

  get processes(): OdooProcess[] {
    return [...this.http, this.gevent, ...this.cron];
  }

  /** The server's start (cli/server.py L149), then every LISTENer. */
  async start(): Promise<void> {
    await this.gevent.serverStart(this.o.options);
    await Promise.all([this.bus.start(), ...this.cronListeners.map((l) => l.start())]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.bus.stop(), ...this.cronListeners.map((l) => l.stop())]);
    await Promise.all(this.processes.map((p) => p.close()));
  }
}
