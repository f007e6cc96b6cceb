// A continuous transaction load, shaped like Odoo's prefork workers: each client holds its
// connection (Odoo's per-process pool) and runs short transactions back to back. Every
// transaction is counted; every failure is kept with its time and message, so a test can say
// "N transactions, 0 failed" and show the failures when there are any.
import type { Client } from "pg";
import { settlesWithin } from "./sandbox";

export interface LoadFailure {
  readonly client: number;
  readonly atMs: number;
  readonly message: string;
}

export interface LoadReport {
  readonly clients: number;
  readonly committed: number;
  readonly failures: readonly LoadFailure[];
  readonly durationMs: number;
  /** Distinct PostgreSQL backend pids the transactions ran on (server connections used). */
  readonly serverBackends: number;
  /** The most distinct backends any single client saw: > 1 means transaction pooling moved it. */
  readonly maxBackendsPerClient: number;
  /** Clients whose connection was closed under them (an Odoo worker would have to log in again). */
  readonly droppedClients: number;
  /** The longest time no transaction committed anywhere (a stall is downtime even without errors). */
  readonly longestStallMs: number;
  /** When that stall began, in ms since the load started. */
  readonly longestStallStartMs: number;
  /** Clients still waiting for an answer when the load was stopped (after the grace period). */
  readonly stuckClients: number;
}

/** One transaction; returns the PostgreSQL backend pid it ran on. */
export type Transaction = (client: Client, clientIndex: number) => Promise<number>;

/**
 * The default Odoo-like transaction: read the backend pid, write a row, hold the transaction
 * for `holdMs` (so transactions overlap and the pool is actually contended), commit.
 */
export const odooLikeTransaction =
  (table: string, holdMs = 5): Transaction =>
  async (client, clientIndex) => {
    await client.query("BEGIN");
    try {
      const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      await client.query(`INSERT INTO ${table} (client, backend_pid) VALUES ($1, $2)`, [clientIndex, rows[0].pid]);
      if (holdMs > 0) await client.query("SELECT pg_sleep($1)", [holdMs / 1000]);
      await client.query("COMMIT");
      return rows[0].pid;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  };

/** node-postgres marks a client that lost its connection as not queryable (lib/client.js). */
function isUsable(client: Client): boolean {
  const state = client as unknown as { _queryable?: boolean; _ending?: boolean; _ended?: boolean };
  return state._queryable !== false && state._ending !== true && state._ended !== true;
}

export class TransactionLoad {
  private stopping = false;
  private committed = 0;
  private readonly failures: LoadFailure[] = [];
  private readonly backends = new Set<number>();
  private readonly backendsPerClient: Set<number>[];
  private dropped = 0;
  private lastCommitAt = 0;
  private readonly inTransaction: boolean[];
  private report: LoadReport | undefined;
  private longestStall = { ms: 0, startMs: 0 };
  private loops: Promise<void>[] = [];
  private startedAt = 0;

  constructor(
    private readonly clients: readonly Client[],
    private readonly transaction: Transaction,
  ) {
    this.backendsPerClient = clients.map(() => new Set<number>());
    this.inTransaction = clients.map(() => false);
  }

  start(): this {
    this.startedAt = Date.now();
    this.lastCommitAt = this.startedAt;
    this.loops = this.clients.map((client, i) => this.loop(client, i));
    return this;
  }

  private async loop(client: Client, index: number): Promise<void> {
    while (!this.stopping) {
      try {
        this.inTransaction[index] = true;
        const pid = await this.transaction(client, index);
        this.inTransaction[index] = false;
        this.noteCommit();
        this.committed++;
        this.backends.add(pid);
        this.backendsPerClient[index].add(pid);
      } catch (err) {
        this.inTransaction[index] = false;
        this.failures.push({ client: index, atMs: Date.now() - this.startedAt, message: (err as Error).message });
        // Give the socket's close a moment to arrive, then decide whether the client is gone.
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (!isUsable(client)) {
          // The server side closed this connection: count it once and stop using it.
          this.dropped++;
          return;
        }
      }
    }
  }

  private noteCommit(): void {
    const now = Date.now();
    if (now - this.lastCommitAt > this.longestStall.ms) {
      this.longestStall = { ms: now - this.lastCommitAt, startMs: this.lastCommitAt - this.startedAt };
    }
    this.lastCommitAt = now;
  }

  /** Transactions committed so far (to wait for progress while the load runs). */
  get committedSoFar(): number {
    return this.committed;
  }

  get failuresSoFar(): number {
    return this.failures.length;
  }

  /** Resolves once `count` more transactions committed after the call. */
  async waitForProgress(count: number, timeoutMs = 20_000): Promise<void> {
    const target = this.committed + count;
    const deadline = Date.now() + timeoutMs;
    while (this.committed < target) {
      if (Date.now() > deadline)
        throw new Error(
          `load made no progress: ${this.committed}/${target} transactions, failures: ${JSON.stringify(this.failures.slice(0, 5))}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * Lets in-flight transactions finish for up to `graceMs`, then reports; clients still waiting
   * then are counted as stuck (a pooler holding them in a queue is an outage too). Later calls
   * return the same report.
   */
  async stop(graceMs = 5_000): Promise<LoadReport> {
    if (this.report) return this.report;
    this.stopping = true;
    await settlesWithin(Promise.all(this.loops), graceMs);
    this.noteCommit(); // a stall that lasted until the end counts too
    this.report = {
      clients: this.clients.length,
      committed: this.committed,
      failures: [...this.failures],
      durationMs: Date.now() - this.startedAt,
      serverBackends: this.backends.size,
      maxBackendsPerClient: Math.max(0, ...this.backendsPerClient.map((s) => s.size)),
      droppedClients: this.dropped,
      longestStallMs: this.longestStall.ms,
      longestStallStartMs: this.longestStall.startMs,
      stuckClients: this.inTransaction.filter(Boolean).length,
    };
    return this.report;
  }
}
