// Scenario 1's load since issue 15: a fleet of simulated Odoo processes (tools/bench/odoo-traffic.ts)
// opened all at once, the storm a fleet makes after a deploy, each serving Odoo-shaped requests
// back to back: its pooled connection for the requests' transactions, a new `postgres`
// connection for every bus message and cron trigger it sends, one bus LISTENer per simulated host
// and a cron LISTENer. Throughput counts requests (one transaction each, as Odoo commits a request
// once), and every failure and every notification a LISTENer missed is counted, not hidden.
import { cpuBetween, cpuSnapshot } from "./cpu";
import {
  odooRequestKinds,
  OdooProcess,
  PostgresListener,
  serveRequest,
  TrafficRecorder,
  type OdooDbEndpoint,
  type OdooDbOptions,
  type RequestKind,
} from "./odoo-traffic";
import { errorKey } from "./pg-load";
import type { PgPoint } from "./results";
import { pickWeighted, seededRandom, summarizeLatencies } from "./stats";

export interface OdooLoadOptions {
  readonly endpoint: OdooDbEndpoint;
  readonly database: string;
  /** What the simulated processes read from the rendered odoo.conf (db_maxconn, dbfilter, db_name). */
  readonly options: OdooDbOptions;
  /** Simulated Odoo HTTP worker processes, spread over `hosts`. */
  readonly processes: number;
  /** Simulated Odoo hosts: one gevent bus LISTENer each, the cron LISTENer on the first. */
  readonly hosts: number;
  /** ODOO_PGAPPNAME of host `h` (0-based); undefined: Odoo's default odoo-<pid>. */
  readonly odooPgAppName?: (host: number) => string | undefined;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** Python time between two statements of a request, ms. */
  readonly pythonMsPerStatement: number;
  /** Share of requests that come without a session database (first visits, health checks). */
  readonly cookielessShare: number;
  /** The daemons' process groups, for the CPU columns. */
  readonly pgids: readonly number[];
  /** Sampled about once a second while measuring: PgBouncer's maxwait over every pool and over `postgres`, ms. */
  readonly sampleMaxWait?: () => Promise<{ readonly all: number; readonly postgres: number }>;
  readonly seed?: number;
  /** First simulated pid. */
  readonly firstPid?: number;
}

export interface OdooLoadResult extends Omit<PgPoint, "config"> {
  readonly notifications: { readonly sent: number; readonly lost: number; readonly listeners: number; readonly listenersFailed: number };
  /** `postgres` connections opened while measuring (bus messages, cron triggers, database lists). */
  readonly postgresSessions: number;
  readonly postgresMaxWaitMs?: number;
}

const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

/** The longest a warm-up waits beyond warmupMs for every process's first request. */
export const STORM_SETTLE_MS = 60_000;
/**
 * The measured window covers this many request cycles of a process. With a fleet larger than the
 * pool a process completes a request about every processes ÷ rate seconds (Little's law); a
 * window shorter than that leaves processes of a perfectly fair queue with no completion, and
 * "starved" would count the window, not PgBouncer. Over two cycles, a process with none waited
 * more than twice its fair share: starved indeed.
 */
export const WINDOW_CYCLES = 2;
/** The longest a measured window may grow to for WINDOW_CYCLES, ms. */
export const MAX_MEASURE_MS = 45_000;
/** How long the rate that sizes the window is sampled after the warm-up, ms. */
const RATE_PROBE_MS = 3_000;

/** The measured window: measureMs, or WINDOW_CYCLES request cycles at `rate` requests/s if longer (at most MAX_MEASURE_MS). */
export function measureWindowMs(measureMs: number, processes: number, rate: number): number {
  const cyclesMs = rate > 0 ? (WINDOW_CYCLES * processes * 1000) / rate : Infinity;
  return Math.round(Math.max(measureMs, Math.min(cyclesMs, MAX_MEASURE_MS)));
}
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs one point; `config` is filled in by the caller. */
export async function runOdooLoad(o: OdooLoadOptions): Promise<OdooLoadResult> {
  const recorder = new TrafficRecorder();
  const kinds: readonly RequestKind[] = odooRequestKinds();
  let pid = o.firstPid ?? 100_000;
  const hostOf = (i: number) => i % o.hosts;
  const processes = Array.from(
    { length: o.processes },
    (_, i) => new OdooProcess(pid++, "http", o.options.dbMaxconn, o.endpoint, recorder, o.odooPgAppName?.(hostOf(i))),
  );
  const gevents = Array.from(
    { length: o.hosts },
    (_, h) => new OdooProcess(pid++, "gevent", o.options.dbMaxconnGevent, o.endpoint, recorder, o.odooPgAppName?.(h)),
  );
  const cron = new OdooProcess(pid++, "cron", o.options.dbMaxconn, o.endpoint, recorder, o.odooPgAppName?.(0));
  const listeners = [...gevents.map((g) => new PostgresListener(g, "imbus")), new PostgresListener(cron, "cron_trigger")];
  const connectionErrors = new Map<string, number>();
  const transactionErrors = new Map<string, number>();

  let listenersFailed = 0;
  await Promise.all(
    listeners.map((l) =>
      l.start().catch((err: Error) => {
        listenersFailed++;
        count(connectionErrors, `LISTEN: ${errorKey(err)}`);
      }),
    ),
  );
  // The storm: every process opens its pooled connection at once.
  const connected = await Promise.all(
    processes.map((p) =>
      p.pool.warm(o.database, 1).then(
        () => true,
        (err: Error) => {
          count(connectionErrors, errorKey(err));
          return false;
        },
      ),
    ),
  );

  let stopping = false;
  let windowStart = Infinity;
  let windowEnd = Infinity;
  const latencies: number[] = [];
  const byKind = new Map<string, number[]>(kinds.map((k) => [k.kind, []]));
  const committedInWindow = new Array<number>(processes.length).fill(0);
  const completedAny = new Array<boolean>(processes.length).fill(false);
  let completions = 0;
  let failedTransactions = 0;
  let postgresAtWindowStart = 0;
  let postgresAtWindowEnd = 0;
  const busSentInWindow = new Set<string>();
  let busFailedInWindow = 0;

  const loops = processes.map(async (p, index) => {
    if (!connected[index]) return;
    const random = seededRandom((o.seed ?? 7) * 100_003 + index);
    while (!stopping) {
      const kind = pickWeighted(kinds, random());
      const started = performance.now();
      let served: Awaited<ReturnType<typeof serveRequest>>;
      try {
        served = await serveRequest(p, o.options, {
          database: o.database,
          kind,
          random,
          cookieless: random() < o.cookielessShare,
          host: "erp.example.com",
          pythonMsPerStatement: o.pythonMsPerStatement,
        });
      } catch (err) {
        if (stopping) return;
        failedTransactions++;
        count(transactionErrors, errorKey(err));
        await sleep(50);
        continue;
      }
      const finished = performance.now();
      completedAny[index] = true;
      completions++;
      // Throughput counts the requests that complete while measuring, whenever they began: with a
      // fleet larger than the pool a request waits seconds in PgBouncer's queue (Little's law:
      // processes ÷ rate), longer than a window that only counted requests begun inside it.
      if (finished >= windowStart && finished <= windowEnd) {
        latencies.push(finished - started);
        byKind.get(kind.kind)?.push(finished - started);
        committedInWindow[index]++;
        for (const payload of served.notified) busSentInWindow.add(payload);
        busFailedInWindow += served.notifyFailed;
      }
    }
  });

  let maxWaitMs: number | undefined;
  let postgresMaxWaitMs: number | undefined;
  try {
    // Warm-up: at least warmupMs, and until every connected process has completed a request
    // (the storm settled into its steady queue), for at most STORM_SETTLE_MS more.
    await sleep(o.warmupMs);
    for (const deadline = Date.now() + STORM_SETTLE_MS; Date.now() < deadline && completedAny.some((done, i) => connected[i] && !done);)
      await sleep(250);
    const probeStart = completions;
    await sleep(RATE_PROBE_MS);
    const windowMs = measureWindowMs(o.measureMs, connected.filter(Boolean).length, ((completions - probeStart) * 1000) / RATE_PROBE_MS);
    const before = cpuSnapshot(o.pgids);
    postgresAtWindowStart = recorder.events.length;
    windowStart = performance.now();
    windowEnd = windowStart + windowMs;
    const sampling = (async () => {
      if (!o.sampleMaxWait) return;
      maxWaitMs = 0;
      postgresMaxWaitMs = 0;
      while (performance.now() < windowEnd - 500) {
        const w = await o.sampleMaxWait().catch(() => ({ all: 0, postgres: 0 }));
        maxWaitMs = Math.max(maxWaitMs, w.all);
        postgresMaxWaitMs = Math.max(postgresMaxWaitMs, w.postgres);
        await sleep(1_000);
      }
    })();
    await sleep(windowMs);
    const after = cpuSnapshot(o.pgids);
    postgresAtWindowEnd = recorder.events.length;
    await sampling;
    stopping = true;
    // In-flight requests finish quickly; their post-commit NOTIFY too.
    await Promise.race([Promise.all(loops), sleep(5_000)]);
    // Deliveries: a notification sent while measuring that some bus LISTENer never got is lost.
    const bus = listeners.filter((l) => l.channel === "imbus");
    const receivedBy = bus.map((l) => new Set(l.received));
    const deadline = Date.now() + 3_000;
    const missing = () => [...busSentInWindow].filter((s) => receivedBy.some((r, i) => !r.has(s) || bus[i].error !== undefined)).length;
    while (missing() > 0 && Date.now() < deadline) {
      await sleep(100);
      bus.forEach((l, i) => l.received.forEach((s) => receivedBy[i].add(s)));
    }
    const measuredMs = windowEnd - windowStart;
    const committed = latencies.length;
    const windowEvents = recorder.events.slice(postgresAtWindowStart, postgresAtWindowEnd);
    return {
      clients: o.processes,
      connected: connected.filter(Boolean).length,
      failedConnections: connected.filter((c) => !c).length,
      failedTransactions,
      starvedClients: committedInWindow.filter((c, i) => connected[i] && c === 0).length,
      connectionErrors: Object.fromEntries(connectionErrors),
      transactionErrors: Object.fromEntries(
        [...transactionErrors, ...recorder.busFailed.map((m) => [`NOTIFY imbus: ${errorKey(m)}`, 1] as const)].reduce(
          (m, [k, v]) => m.set(k, (m.get(k) ?? 0) + v),
          new Map<string, number>(),
        ),
      ),
      committed,
      measuredMs,
      tps: committed / (measuredMs / 1000),
      latencyMs: summarizeLatencies(latencies),
      byKind: Object.fromEntries([...byKind].map(([k, v]) => [k, summarizeLatencies(v)])),
      ...(maxWaitMs !== undefined ? { pgbouncerMaxWaitMs: maxWaitMs } : {}),
      ...(postgresMaxWaitMs !== undefined ? { postgresMaxWaitMs } : {}),
      cpu: cpuBetween(before, after),
      // Sent: every notification a request committed while measuring (NOTIFY attempted); lost:
      // those that could not be sent or that a bus LISTENer never received.
      notifications: {
        sent: busSentInWindow.size + busFailedInWindow,
        lost: missing() + busFailedInWindow,
        listeners: listeners.length,
        listenersFailed,
      },
      postgresSessions: windowEvents.filter((e) => e.database === "postgres").length,
    };
  } finally {
    stopping = true;
    await Promise.race([Promise.all(loops), sleep(3_000)]);
    await Promise.all(listeners.map((l) => l.stop()));
    await Promise.all([...processes, ...gevents, cron].map((p) => p.close()));
  }
}
