// Scenario 1's load generator: N clients, each with its own connection opened all at once (the
// storm a fleet of Odoo workers makes after a deploy), running an Odoo-like transaction mix
// back to back. Connection failures, transaction failures and starved clients are counted,
// not hidden; latencies are kept per transaction for exact percentiles.
import { Client, type ClientConfig } from "pg";
import { cpuBetween, cpuSnapshot } from "./cpu";
import type { PgPoint } from "./results";
import { pickWeighted, seededRandom, summarizeLatencies } from "./stats";

/** Rows of the dataset every configuration gets (created by datasetSql, identical each time). */
export const DATASET = { companies: 10, partners: 50_000, orderLines: 300_000, days: 365 } as const;

export const DATASET_DESCRIPTION =
  `res_company ${DATASET.companies} rows, res_partner ${DATASET.partners.toLocaleString("en")} rows, ` +
  `sale_order_line ${DATASET.orderLines.toLocaleString("en")} rows over ${DATASET.days} days (indexed by date and partner), mail_message append-only; VACUUM ANALYZE after loading`;

/** The dataset, deterministic (no random()), owned by `owner`. */
export function datasetSql(owner: string): string {
  const q = `"${owner.replace(/"/g, '""')}"`;
  return [
    "SET statement_timeout = 0;",
    "CREATE TABLE res_company (id int PRIMARY KEY, name text NOT NULL);",
    `INSERT INTO res_company SELECT g, 'Company ' || g FROM generate_series(1, ${DATASET.companies}) g;`,
    "CREATE TABLE res_partner (id int PRIMARY KEY, name text NOT NULL, email text, company_id int NOT NULL REFERENCES res_company, credit numeric NOT NULL DEFAULT 0, write_date timestamp NOT NULL DEFAULT now());",
    `INSERT INTO res_partner (id, name, email, company_id) SELECT g, 'Partner ' || g, 'p' || g || '@example.com', 1 + g % ${DATASET.companies} FROM generate_series(1, ${DATASET.partners}) g;`,
    "CREATE TABLE sale_order_line (id bigserial PRIMARY KEY, partner_id int NOT NULL, order_date date NOT NULL, product_id int NOT NULL, qty numeric NOT NULL, price_unit numeric NOT NULL);",
    `INSERT INTO sale_order_line (partner_id, order_date, product_id, qty, price_unit) SELECT 1 + (g::bigint * 7919) % ${DATASET.partners}, date '2025-01-01' + g % ${DATASET.days}, g % 500, 1 + g % 5, (g % 1000) / 10.0 FROM generate_series(1, ${DATASET.orderLines}) g;`,
    "CREATE INDEX sale_order_line_order_date ON sale_order_line (order_date);",
    "CREATE INDEX sale_order_line_partner_id ON sale_order_line (partner_id);",
    "CREATE TABLE mail_message (id bigserial PRIMARY KEY, res_id int NOT NULL, body text NOT NULL, create_date timestamp NOT NULL DEFAULT now());",
    ...["res_company", "res_partner", "sale_order_line", "mail_message"].map((t) => `ALTER TABLE ${t} OWNER TO ${q};`),
    "ALTER SEQUENCE sale_order_line_id_seq OWNER TO " + q + ";",
    "ALTER SEQUENCE mail_message_id_seq OWNER TO " + q + ";",
    "VACUUM ANALYZE;",
    "",
  ].join("\n");
}

export interface TransactionKind {
  readonly kind: string;
  readonly weight: number;
  /** The statements, for the report. */
  readonly sql: readonly string[];
  run(client: Client, random: () => number): Promise<void>;
}

const READ_SQL = "SELECT p.id, p.name, p.email, p.write_date, c.name AS company FROM res_partner p JOIN res_company c ON c.id = p.company_id WHERE p.id = $1";
const UPDATE_SQL = "UPDATE res_partner SET credit = credit + $2, write_date = now() WHERE id = $1";
const INSERT_SQL = "INSERT INTO mail_message (res_id, body) VALUES ($1, $2)";
const REPORT_SQL =
  "SELECT product_id, count(*) AS lines, sum(qty * price_unit) AS amount FROM sale_order_line " +
  "WHERE order_date >= $1::date AND order_date < $1::date + 7 GROUP BY product_id ORDER BY amount DESC LIMIT 20";

const partnerId = (random: () => number) => 1 + Math.floor(random() * DATASET.partners);

/**
 * Odoo's request mix, simplified: most requests read records by id (form views, name_get), a
 * quarter write one record and its chatter message in one transaction, a few run a report-like
 * aggregate over a month of order lines.
 */
export const ODOO_MIX: readonly TransactionKind[] = [
  {
    kind: "read",
    weight: 70,
    sql: [READ_SQL],
    run: async (client, random) => {
      await client.query(READ_SQL, [partnerId(random)]);
    },
  },
  {
    kind: "write",
    weight: 25,
    sql: ["BEGIN", UPDATE_SQL, INSERT_SQL, "COMMIT"],
    run: async (client, random) => {
      const id = partnerId(random);
      await client.query("BEGIN");
      try {
        await client.query(UPDATE_SQL, [id, 1]);
        await client.query(INSERT_SQL, [id, `credit +1 on partner ${id}`]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      }
    },
  },
  {
    kind: "report",
    weight: 5,
    sql: [REPORT_SQL],
    run: async (client, random) => {
      const day = Math.floor(random() * (DATASET.days - 7));
      await client.query(REPORT_SQL, [new Date(Date.UTC(2025, 0, 1 + day)).toISOString().slice(0, 10)]);
    },
  },
];

export interface PgLoadOptions {
  readonly connection: ClientConfig;
  readonly clients: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** The daemons' process groups, for the CPU columns. */
  readonly pgids: readonly number[];
  /** Seed of the key sequence: the same for every configuration. */
  readonly seed?: number;
  /** Called about once a second while measuring; the largest value is reported (PgBouncer maxwait, ms). */
  readonly sampleMaxWaitMs?: () => Promise<number>;
  readonly connectTimeoutMs?: number;
}

/** First line of an error message, with numbers that vary per connection removed. */
export function errorKey(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split("\n")[0] || (err as { code?: string })?.code || "unknown error").replace(/\b\d{4,}\b/g, "N");
}

const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

/** node-postgres marks a client that lost its connection as not queryable (lib/client.js). */
function isUsable(client: Client): boolean {
  const state = client as unknown as { _queryable?: boolean; _ending?: boolean; _ended?: boolean };
  return state._queryable !== false && state._ending !== true && state._ended !== true;
}

/** Closes a client; one stuck behind a pooler queue is torn down after `ms`. */
async function closeHard(client: Client, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().catch(() => undefined);
  const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  const outcome = await Promise.race([ended, timedOut]);
  clearTimeout(timer);
  if (outcome === "timeout") (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/** Runs one point of scenario 1; `config` is filled in by the caller. */
export async function runPgLoad(opts: PgLoadOptions): Promise<Omit<PgPoint, "config">> {
  const connectionErrors = new Map<string, number>();
  const transactionErrors = new Map<string, number>();
  const clients: Client[] = [];
  const attempts = Array.from({ length: opts.clients }, async () => {
    const client = new Client({ ...opts.connection, connectionTimeoutMillis: opts.connectTimeoutMs ?? 30_000 });
    client.on("error", () => undefined); // surfaces on the next query, where it is counted
    try {
      await client.connect();
      clients.push(client);
    } catch (err) {
      count(connectionErrors, errorKey(err));
      await closeHard(client, 1_000);
    }
  });
  await Promise.all(attempts);

  let stopping = false;
  let windowStart = Infinity;
  let windowEnd = Infinity;
  const latencies: number[] = [];
  const byKind = new Map<string, number[]>(ODOO_MIX.map((k) => [k.kind, []]));
  const committedInWindow = new Array<number>(clients.length).fill(0);
  let failedTransactions = 0;

  const loops = clients.map(async (client, index) => {
    const random = seededRandom((opts.seed ?? 7) * 100_003 + index);
    while (!stopping) {
      const tx = pickWeighted(ODOO_MIX, random());
      const started = performance.now();
      try {
        await tx.run(client, random);
      } catch (err) {
        if (stopping) return;
        failedTransactions++;
        count(transactionErrors, errorKey(err));
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (!isUsable(client)) return;
        continue;
      }
      const finished = performance.now();
      if (started >= windowStart && finished <= windowEnd) {
        const ms = finished - started;
        latencies.push(ms);
        byKind.get(tx.kind)?.push(ms);
        committedInWindow[index]++;
      }
    }
  });

  let maxWaitMs: number | undefined;
  try {
    await new Promise((resolve) => setTimeout(resolve, opts.warmupMs));
    const before = cpuSnapshot(opts.pgids);
    windowStart = performance.now();
    windowEnd = windowStart + opts.measureMs;
    const sampling = (async () => {
      if (!opts.sampleMaxWaitMs) return;
      maxWaitMs = 0;
      while (performance.now() < windowEnd - 500) {
        maxWaitMs = Math.max(maxWaitMs, await opts.sampleMaxWaitMs().catch(() => 0));
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, opts.measureMs));
    const after = cpuSnapshot(opts.pgids);
    await sampling;
    const measuredMs = windowEnd - windowStart;
    const committed = latencies.length;
    return {
      clients: opts.clients,
      connected: clients.length,
      failedConnections: opts.clients - clients.length,
      failedTransactions,
      starvedClients: committedInWindow.filter((c) => c === 0).length,
      connectionErrors: Object.fromEntries(connectionErrors),
      transactionErrors: Object.fromEntries(transactionErrors),
      committed,
      measuredMs,
      tps: committed / (measuredMs / 1000),
      latencyMs: summarizeLatencies(latencies),
      byKind: Object.fromEntries([...byKind].map(([k, v]) => [k, summarizeLatencies(v)])),
      ...(maxWaitMs !== undefined ? { pgbouncerMaxWaitMs: maxWaitMs } : {}),
      cpu: cpuBetween(before, after),
    };
  } finally {
    stopping = true;
    // In-flight transactions finish quickly; clients queued behind a session pool never will.
    await Promise.race([Promise.all(loops), new Promise((resolve) => setTimeout(resolve, 3_000))]);
    await Promise.all(clients.map((c) => closeHard(c, 2_000)));
  }
}
