// The shape of out/bench/results.json (issue 7): every scenario's absolute numbers, and the
// ratios computed from them, so REPORT.md can put each ratio next to the run it came from.
import type { LatencySummary, LinearFit } from "./stats";

/** The four database configurations of scenario 1. */
export type PoolConfig = "stock-postgres" | "stock-pgbouncer" | "rendered" | "ceiling";

export interface CpuUse {
  /** CPU seconds per wall second the load generator (this Node process) used: 1 = one core. */
  readonly generatorCores: number;
  /** The same for the daemons under test (PostgreSQL, PgBouncer, nginx process groups). */
  readonly serverCores: number;
  /** The whole machine, from /proc/stat: includes whatever else runs on it. */
  readonly machineBusyCores: number;
}

export interface PgPoint {
  readonly config: PoolConfig;
  readonly clients: number;
  readonly connected: number;
  readonly failedConnections: number;
  readonly failedTransactions: number;
  /** Clients that connected but committed nothing while measuring (queued behind a session pool). */
  readonly starvedClients: number;
  /** Error message → count, connection and transaction errors apart. */
  readonly connectionErrors: Readonly<Record<string, number>>;
  readonly transactionErrors: Readonly<Record<string, number>>;
  readonly committed: number;
  readonly measuredMs: number;
  readonly tps: number;
  readonly latencyMs: LatencySummary;
  /** Per transaction kind of the mix (read, write, report). */
  readonly byKind: Readonly<Record<string, LatencySummary>>;
  /** PgBouncer's SHOW POOLS maxwait, the largest sample during the measured window; absent without PgBouncer. */
  readonly pgbouncerMaxWaitMs?: number;
  /** The same for the `postgres` session pool alone. */
  readonly postgresMaxWaitMs?: number;
  /** Bus notifications sent while measuring, and those a LISTENer never received or that could not be sent. */
  readonly notifications?: { readonly sent: number; readonly lost: number };
  /** `postgres` connections opened while measuring (NOTIFY imbus, cron triggers, database lists). */
  readonly postgresSessions?: number;
  readonly cpu: CpuUse;
}

/** One measured run of a ladder step. */
export interface LadderRun {
  readonly round: number;
  readonly tps: number;
  readonly latencyMs: LatencySummary;
  /** Failed connections, failed transactions and starved clients. */
  readonly failures: number;
  readonly lostNotifications: number;
  /** The `postgres` pool's largest maxwait (ms); absent without PgBouncer. */
  readonly postgresMaxWaitMs?: number;
  readonly cpu: CpuUse;
}

/**
 * One rung of the ladder from the ceiling to (c): the same database CPU, one difference more
 * than the rung before, measured once per round (rounds interleaved, so drift falls on all).
 */
export interface LadderStep {
  /** A stable name the targets refer to (e.g. "ceiling", "rendered-500"). */
  readonly key: string;
  readonly label: string;
  readonly clients: number;
  readonly runs: readonly LadderRun[];
  /** The median TPS of the runs. */
  readonly tps: number;
}

export interface PoolScenario {
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly clientCounts: readonly number[];
  readonly ceilingClientCounts: readonly number[];
  readonly mix: readonly { readonly kind: string; readonly weight: number; readonly sql: readonly string[] }[];
  readonly dataset: string;
  /** CPU lists (taskset) for PostgreSQL and for everything else; absent on a one-CPU machine. */
  readonly placement?: { readonly database: string; readonly others: string };
  /** What each configuration is, in a sentence (settings that matter, TLS or not). */
  readonly configs: Readonly<Record<PoolConfig, string>>;
  readonly points: readonly PgPoint[];
  /**
   * The sweep's best client count, and the ceiling's TPS there: the median of the ladder's
   * first rung (measured once per round, interleaved with (c)).
   */
  readonly ceiling: { readonly clients: number; readonly tps: number; readonly sweepTps: number; readonly roundTps: readonly number[] };
  /** Every rung measured once per round, rounds interleaved; the first rung is the ceiling. */
  readonly ladder: readonly LadderStep[];
  /** One per simulated fleet size: (c) against the ceiling, with zero failures and lost notifications. */
  readonly targets: readonly PoolTarget[];
  /** The security tax: the rendered PostgreSQL direct (TLS, SCRAM, the checklist's settings) ÷ stock PostgreSQL direct, both at the ceiling's client count. */
  readonly securityTax: {
    readonly clients: number;
    readonly renderedDirectTps: number;
    readonly stockDirectTps: number;
    readonly ratio: number;
  };
  /** application_name in transaction pooling: the same fleet with Odoo's odoo-<pid> names and with one ODOO_PGAPPNAME per host. */
  readonly applicationName: {
    readonly clients: number;
    readonly variants: readonly { readonly key: string; readonly label: string; readonly tps: number }[];
  };
}

export interface PoolTarget {
  readonly clients: number;
  /** The median of (c)'s runs in the ladder. */
  readonly renderedTps: number;
  readonly ceilingTps: number;
  readonly ratio: number;
  /** (c) ÷ ceiling within each round. */
  readonly roundRatios: readonly number[];
  readonly required: number;
  /** Failed connections, failed transactions and starved clients of (c) at this count, over every run. */
  readonly failures: number;
  readonly lostNotifications: number;
  /** The `postgres` session pool's largest maxwait over every run, ms. */
  readonly postgresMaxWaitMs: number;
  readonly postgresMaxWaitLimitMs: number;
  readonly met: boolean;
}

export interface HttpRun {
  readonly label: string;
  readonly connections: number;
  readonly measuredMs: number;
  readonly requests: number;
  readonly errors: number;
  readonly rps: number;
  readonly latencyMs: LatencySummary;
  readonly cpu: CpuUse;
}

export interface WebSocketHold {
  readonly label: string;
  readonly workerProcesses: number;
  readonly workerConnections: number;
  /** The descriptor limit the configuration asks for (worker_rlimit_nofile, or the service's limit). */
  readonly nofile: number;
  /** The soft limit nginx's workers actually run with (/proc/<pid>/limits). */
  readonly workerNofile: number;
  readonly attempted: number;
  /** Open, greeted by the 8072 stub, and still open after the settle time. */
  readonly held: number;
  readonly failed: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly openMs: number;
  /** nginx's error log lines about connection limits (e.g. "worker_connections are not enough"). */
  readonly nginxComplaints: readonly string[];
}

export interface ProxyScenario {
  readonly direct: HttpRun;
  readonly viaNginx: HttpRun;
  readonly throughputRatio: number;
  readonly addedP99Ms: number;
  readonly websockets: { readonly target: number; readonly rendered: WebSocketHold; readonly stock: WebSocketHold };
}

export interface PolicySize {
  readonly resources: number;
  readonly analyzeMs: number;
  readonly analyzeStackMs: number;
  readonly totalMs: number;
  readonly perResourceMs: number;
  readonly diagnostics: number;
}

export interface ToolScenario {
  readonly planInProcess: {
    readonly totalMs: number;
    readonly programMs: number;
    readonly packStartupMs: number;
    readonly analysisMs: number;
    readonly resources: number;
    readonly mandatory: number;
  };
  readonly planSubprocess: { readonly wallMs: number; readonly exitCode: number | null };
  readonly policy: {
    readonly packStartupMs: number;
    readonly template: string;
    readonly sizes: readonly PolicySize[];
    readonly fit: LinearFit;
    /** log(t_last / t_first) / log(n_last / n_first): below 1 when a fixed cost dominates small sizes. */
    readonly exponent: number;
    readonly perResourceRatio: number;
    /** ms per added resource between consecutive sizes. */
    readonly marginalMsPerResource: readonly number[];
    /** The last marginal cost over the first: ≈ 1 when growth is linear. */
    readonly marginalRatio: number;
    readonly linear: boolean;
  };
}

export interface BenchResults {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly quick: boolean;
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly memoryMiB: number;
    readonly node: string;
    readonly loadAverageAtStart: readonly number[];
  };
  readonly pool?: PoolScenario;
  readonly proxy?: ProxyScenario;
  readonly tool?: ToolScenario;
  /** Scenario → start of the earlier run its results come from, when this run did not measure it. */
  readonly carriedOver?: Readonly<Record<string, string>>;
  /** Scenario → what went wrong, when a scenario could not finish. */
  readonly errors: Readonly<Record<string, string>>;
}
