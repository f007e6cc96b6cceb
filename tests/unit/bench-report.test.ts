// The pure parts of `npm run bench` (issue 7): percentile and fit formulas against hand-computed
// values, the report and the hand-built SVG chart against goldens for one fixed input, and the
// stock configurations the rendered ones are compared with.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { carryOver, parseBenchArgs, plannedSizes } from "../../tools/bench";
import { cpuPlacement } from "../../tools/bench/cpu-placement";
import { buildChartSvg, escapeXml, linearTicks, logTicks, poolChartPanels } from "../../tools/bench/chart";
import { MAX_MEASURE_MS, measureWindowMs } from "../../tools/bench/odoo-load";
import { errorKey } from "../../tools/bench/pg-load";
import { POSTGRES_MAXWAIT_LIMIT_MS, stockPgbouncerIni, TARGET_SHARE_OF_CEILING } from "../../tools/bench/pool";
import { DEBIAN_STOCK_NGINX, stockNginxConf } from "../../tools/bench/proxy";
import { fmt, fmtRatio, markdownTable, renderReport } from "../../tools/bench/report";
import type {
  BenchResults,
  LadderStep,
  PgPoint,
  PoolConfig,
  PoolScenario,
  PoolTarget,
  ProxyScenario,
  ToolScenario,
} from "../../tools/bench/results";
import {
  growthExponent,
  linearFit,
  marginalCosts,
  median,
  percentile,
  pickWeighted,
  ratio,
  seededRandom,
  summarizeLatencies,
  type LatencySummary,
} from "../../tools/bench/stats";
import { syntheticStack } from "../../tools/bench/tool";
import { expectGolden } from "../helpers/golden";

describe("the measured window (Little's law: a process's request cycle is processes ÷ rate)", () => {
  it.each([
    ["a small fleet: the configured window", 10_000, 64, 200, 10_000],
    ["2,000 processes at 200 requests/s: two 10 s cycles", 10_000, 2_000, 200, 20_000],
    ["2,000 processes at 131 requests/s: two cycles, rounded to the ms", 10_000, 2_000, 131, 30_534],
    ["a slow rate: capped", 10_000, 2_000, 50, MAX_MEASURE_MS],
    ["nothing completed while probing: capped", 10_000, 500, 0, MAX_MEASURE_MS],
  ])("%s", (_why, measureMs, processes, rate, expected) => {
    expect(measureWindowMs(measureMs, processes, rate)).toBe(expected);
  });
});

describe("bench statistics", () => {
  // The nearest-rank example of https://en.wikipedia.org/wiki/Percentile#The_nearest-rank_method
  it.each([
    [0, 15],
    [5, 15],
    [30, 20],
    [40, 20],
    [50, 35],
    [100, 50],
  ])("percentile %d of 15, 20, 35, 40, 50 is %d (nearest rank, never interpolated)", (p, expected) => {
    expect(percentile([50, 15, 40, 20, 35], p)).toBe(expected);
  });

  it("has no percentile of nothing and refuses percentiles outside 0..100", () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(/between 0 and 100/);
    expect(() => percentile([1], -1)).toThrow(/between 0 and 100/);
  });

  it("summarises 1..100 ms in any order as p50 50, p95 95, p99 99, max 100, mean 50.5", () => {
    const values = Array.from({ length: 100 }, (_, i) => ((i * 37) % 100) + 1);
    expect(new Set(values).size).toBe(100);
    expect(summarizeLatencies(values)).toEqual({ count: 100, p50: 50, p95: 95, p99: 99, max: 100, mean: 50.5 });
    expect(summarizeLatencies([]).count).toBe(0);
    expect(summarizeLatencies([]).p99).toBeNaN();
  });

  it("gives no ratio against zero or a missing number", () => {
    expect(ratio(9, 10)).toBeCloseTo(0.9);
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(NaN, 1)).toBeNaN();
  });

  it("fits a least-squares line: exact on a line, hand-computed on three points", () => {
    const exact = linearFit([
      [100, 203],
      [1000, 2003],
      [5000, 10003],
    ]);
    expect(exact.slope).toBeCloseTo(2, 10);
    expect(exact.intercept).toBeCloseTo(3, 8);
    expect(exact.r2).toBeCloseTo(1, 12);
    // x̄ = 2, ȳ = 2, Sxx = 2, Sxy = 1, Syy = 2: slope ½, intercept 1, R² = 1² / (2 × 2).
    const noisy = linearFit([
      [1, 1],
      [2, 3],
      [3, 2],
    ]);
    expect(noisy).toEqual({ slope: 0.5, intercept: 1, r2: 0.25 });
    expect(() => linearFit([[1, 1]])).toThrow(/at least 2 points/);
    expect(() =>
      linearFit([
        [1, 1],
        [1, 2],
      ]),
    ).toThrow(/distinct x/);
  });

  it("reads the growth exponent as 1 for linear and 2 for quadratic cost", () => {
    expect(growthExponent([100, 50], [5000, 2500])).toBeCloseTo(1, 12);
    expect(growthExponent([100, 10], [1000, 1000])).toBeCloseTo(2, 12);
  });

  it("takes the marginal cost between sizes, so a fixed cost per evaluation cancels out", () => {
    // 1,200 ms fixed + 3 ms per resource: total per resource falls with size, the marginal cost does not.
    const linear = [100, 1000, 5000].map((n) => [n, 1200 + 3 * n] as const);
    expect(marginalCosts(linear)).toEqual([3, 3]);
    expect(growthExponent(linear[0], linear[2])).toBeLessThan(1);
    // Quadratic: 0.001 n² ms.
    const quadratic = [100, 1000, 5000].map((n) => [n, 0.001 * n * n] as const);
    expect(marginalCosts(quadratic)).toEqual([1.1, 6]);
  });

  it("picks the transaction mix by weight", () => {
    const mix = [
      { kind: "read", weight: 70 },
      { kind: "write", weight: 25 },
      { kind: "report", weight: 5 },
    ];
    expect([0, 0.6999, 0.7, 0.9499, 0.95, 0.99999].map((r) => pickWeighted(mix, r).kind)).toEqual([
      "read",
      "read",
      "write",
      "write",
      "report",
      "report",
    ]);
    const random = seededRandom(7);
    const counts = { read: 0, write: 0, report: 0 } as Record<string, number>;
    for (let i = 0; i < 20_000; i++) counts[pickWeighted(mix, random()).kind]++;
    expect(counts.read / 20_000).toBeCloseTo(0.7, 1);
    expect(counts.report / 20_000).toBeCloseTo(0.05, 1);
  });

  it("repeats the key sequence for the same seed, so every configuration reads the same rows", () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(seededRandom(43)()).not.toBe(xs[0]);
  });

  it("keys errors by their first line with connection-specific numbers removed", () => {
    expect(errorKey(new Error("connect ECONNRESET 127.0.0.1:55123\nstack"))).toBe("connect ECONNRESET 127.0.0.1:N");
    expect(errorKey(new Error("sorry, too many clients already"))).toBe("sorry, too many clients already");
  });
});

describe("bench stock configurations (what users would otherwise run)", () => {
  it("leaves PgBouncer's pool settings at the 1.18 defaults: session pooling, pool 20, max_client_conn 100", () => {
    const ini = stockPgbouncerIni({
      listenPort: 56001,
      serverPort: 56002,
      database: "bench",
      socketDir: "/s",
      logFile: "/l",
      pidFile: "/p",
      authFile: "/a",
    });
    expect(ini).toContain("bench = host=127.0.0.1 port=56002 dbname=bench");
    expect(ini).toContain("auth_type = md5");
    for (const key of ["pool_mode", "default_pool_size", "max_client_conn", "reserve_pool_size", "client_tls_sslmode"])
      expect(ini).not.toMatch(new RegExp(`^${key}\\b`, "m"));
  });

  it("keeps Debian's nginx.conf main settings (worker_connections 768, no worker_rlimit_nofile) around the same site", () => {
    const conf = stockNginxConf({
      pidFile: "/r/n.pid",
      errorLog: "/l/e.log",
      accessLog: "/l/a.log",
      tempDir: "/t",
      siteGlob: "/e/stock.d/*.conf",
    });
    expect(conf).toContain(`worker_connections ${DEBIAN_STOCK_NGINX.workerConnections};`);
    expect(DEBIAN_STOCK_NGINX.workerConnections).toBe(768);
    expect(conf).toContain("worker_processes auto;");
    expect(conf).not.toContain("worker_rlimit_nofile");
    expect(conf).toContain("include /e/stock.d/*.conf;");
  });
});

describe("synthetic stacks for policy evaluation", () => {
  const template = {
    analyze: [
      { urn: "urn:a", type: "t:sg", name: "sg", properties: { x: 1 } },
      { urn: "urn:b", type: "t:rule", name: "rule", properties: { y: 2 }, options: { parent: "urn:a" } },
    ],
    stack: [
      { urn: "urn:a", type: "t:sg", name: "sg", properties: { x: 1 } },
      {
        urn: "urn:b",
        type: "t:rule",
        name: "rule",
        properties: { y: 2 },
        parent: "urn:a",
        dependencies: ["urn:a", "urn:outside"],
        propertyDependencies: { sg: ["urn:a"] },
      },
    ],
  };

  it("has exactly the asked size, every URN unique, and each copy depending on itself only", () => {
    const s = syntheticStack(template, 5);
    expect(s.analyze).toHaveLength(5);
    expect(s.stack).toHaveLength(5);
    expect(new Set(s.stack.map((r) => r.urn)).size).toBe(5);
    expect(s.stack.map((r) => r.urn)).toEqual(["urn:a-s0", "urn:b-s0", "urn:a-s1", "urn:b-s1", "urn:a-s2"]);
    expect(s.stack[3]).toMatchObject({
      name: "rule-s1",
      parent: "urn:a-s1",
      dependencies: ["urn:a-s1"],
      propertyDependencies: { sg: ["urn:a-s1"] },
      properties: { y: 2 },
    });
    expect(s.analyze[3].options?.parent).toBe("urn:a-s1");
  });
});

// ---------------------------------------------------------------------------------------------
// One fixed run, rendered: the golden files pin the report's layout and the chart's bytes.

const lat = (p50: number, p95: number, p99: number): LatencySummary => ({ count: 1000, p50, p95, p99, max: p99 * 2, mean: p50 * 1.2 });
const cpu = { generatorCores: 0.3, serverCores: 1.2, machineBusyCores: 1.9 };
function pgPoint(config: PoolConfig, clients: number, tps: number, p95: number, extra: Partial<PgPoint> = {}): PgPoint {
  return {
    config,
    clients,
    connected: clients,
    failedConnections: 0,
    failedTransactions: 0,
    starvedClients: 0,
    connectionErrors: {},
    transactionErrors: {},
    committed: tps * 15,
    measuredMs: 15_000,
    tps,
    latencyMs: lat(p95 / 3, p95, p95 * 1.5),
    byKind: { read: lat(1, 2, 3) },
    cpu,
    ...extra,
  };
}

/** A ladder rung whose runs' rates are `tps` (one per round); its rate is their median. */
function ladderStep(key: string, label: string, clients: number, tps: readonly number[], postgresMaxWaitMs?: number): LadderStep {
  return {
    key,
    label,
    clients,
    runs: tps.map((t, round) => ({
      round,
      tps: t,
      latencyMs: lat((clients / t) * 500, (clients / t) * 1500, (clients / t) * 2000),
      failures: 0,
      lostNotifications: 0,
      ...(postgresMaxWaitMs !== undefined ? { postgresMaxWaitMs } : {}),
      cpu,
    })),
    tps: median(tps),
  };
}

const target = (clients: number, renderedTps: number, rounds: readonly number[], extra: Partial<PoolTarget> = {}): PoolTarget => ({
  clients,
  renderedTps,
  ceilingTps: 1600,
  ratio: renderedTps / 1600,
  roundRatios: rounds.map((t, i) => t / [1600, 1550, 1700][i]),
  required: TARGET_SHARE_OF_CEILING,
  failures: 0,
  lostNotifications: 0,
  postgresMaxWaitMs: 4,
  postgresMaxWaitLimitMs: POSTGRES_MAXWAIT_LIMIT_MS,
  met: true,
  ...extra,
});

const POOL: PoolScenario = {
  warmupMs: 5_000,
  measureMs: 15_000,
  clientCounts: [500, 2000],
  ceilingClientCounts: [2, 4, 8, 16],
  mix: [
    { kind: "read", weight: 70, sql: ["SELECT 1"] },
    { kind: "write", weight: 25, sql: ["BEGIN", "UPDATE", "COMMIT"] },
    { kind: "report", weight: 5, sql: ["SELECT sum(x)"] },
  ],
  dataset: "fixed dataset",
  configs: { "stock-postgres": "initdb defaults", "stock-pgbouncer": "Debian defaults", rendered: "rendered", ceiling: "sweep" },
  points: [
    pgPoint("ceiling", 2, 900, 4),
    pgPoint("ceiling", 4, 1400, 6),
    pgPoint("ceiling", 8, 1600, 12),
    pgPoint("ceiling", 16, 1500, 30),
    pgPoint("stock-postgres", 500, 1000, 260, {
      connected: 97,
      failedConnections: 403,
      connectionErrors: { "sorry, too many clients already": 403 },
      notifications: { sent: 300, lost: 0 },
    }),
    pgPoint("stock-postgres", 2000, 900, 280, {
      connected: 97,
      failedConnections: 1903,
      connectionErrors: { "sorry, too many clients already": 1903 },
      notifications: { sent: 280, lost: 0 },
    }),
    pgPoint("stock-pgbouncer", 500, 1150, 42, {
      connected: 100,
      failedConnections: 400,
      failedTransactions: 0,
      starvedClients: 80,
      pgbouncerMaxWaitMs: 15_000,
      connectionErrors: { "no more connections allowed (max_client_conn)": 399, "timeout expired": 1 },
      notifications: { sent: 310, lost: 310 },
    }),
    pgPoint("stock-pgbouncer", 2000, 1100, 43, {
      connected: 100,
      failedConnections: 1900,
      starvedClients: 80,
      pgbouncerMaxWaitMs: 15_000,
      connectionErrors: { "no more connections allowed (max_client_conn)": 1900 },
      notifications: { sent: 300, lost: 300 },
    }),
    pgPoint("rendered", 500, 1500, 420, {
      pgbouncerMaxWaitMs: 380,
      postgresMaxWaitMs: 3,
      notifications: { sent: 375, lost: 0 },
      postgresSessions: 380,
    }),
    pgPoint("rendered", 2000, 1460, 1800, {
      pgbouncerMaxWaitMs: 1500,
      postgresMaxWaitMs: 5,
      // A refused NOTIFY: the request committed, the notification is lost; the report says why.
      transactionErrors: { "NOTIFY imbus: no more connections allowed (max_client_conn)": 3 },
      notifications: { sent: 365, lost: 3 },
      postgresSessions: 370,
    }),
  ],
  placement: { database: "0", others: "1" },
  ceiling: { clients: 8, tps: 1600, sweepTps: 1650, roundTps: [1600, 1550, 1700] },
  ladder: [
    ladderStep("ceiling", "ceiling: the rendered PostgreSQL direct", 8, [1600, 1550, 1700]),
    ladderStep("stock-direct", "stock PostgreSQL direct", 8, [2000, 1900, 2100]),
    ladderStep("rendered-500", "(c) as rendered, 500", 500, [1500, 1400, 1560], 3),
    ladderStep("rendered-2000", "(c) as rendered, 2000", 2000, [1460, 1380, 1530], 5),
    ladderStep("pool-at-best-2000", "(c) with the pool the ceiling sweep favours", 2000, [1500, 1450, 1560], 5),
    ladderStep("appname-pid-500", "(c) add_host 0, odoo-<pid>", 500, [1500, 1420, 1570], 3),
    ladderStep("appname-host-500", "(c) add_host 0, ODOO_PGAPPNAME per host", 500, [1520, 1430, 1580], 3),
  ],
  targets: [target(500, 1500, [1500, 1400, 1560]), target(2000, 1460, [1460, 1380, 1530])],
  securityTax: { clients: 8, renderedDirectTps: 1600, stockDirectTps: 2000, ratio: 0.8 },
  applicationName: {
    clients: 500,
    variants: [
      { key: "rendered-500", label: "(c) as rendered, 500", tps: 1500 },
      { key: "appname-pid-500", label: "(c) add_host 0, odoo-<pid>", tps: 1500 },
      { key: "appname-host-500", label: "(c) add_host 0, ODOO_PGAPPNAME per host", tps: 1520 },
    ],
  },
};

const http = (label: string, rps: number, p99: number) => ({
  label,
  connections: 16,
  measuredMs: 10_000,
  requests: rps * 10,
  errors: 0,
  rps,
  latencyMs: lat(p99 / 4, p99 / 2, p99),
  cpu,
});
const PROXY: ProxyScenario = {
  direct: http("direct", 4000, 8),
  viaNginx: http("nginx", 2000, 20),
  throughputRatio: 0.5,
  addedP99Ms: 12,
  websockets: {
    target: 5000,
    rendered: {
      label: "rendered",
      workerProcesses: 2,
      workerConnections: 16384,
      nofile: 32768,
      workerNofile: 20000,
      attempted: 5000,
      held: 5000,
      failed: 0,
      errors: {},
      openMs: 19_000,
      nginxComplaints: [],
    },
    stock: {
      label: "Debian stock",
      workerProcesses: 2,
      workerConnections: 768,
      nofile: 1024,
      workerNofile: 1024,
      attempted: 5000,
      held: 729,
      failed: 4271,
      errors: { "Client network socket disconnected before secure TLS connection was established": 4271 },
      openMs: 22_000,
      nginxComplaints: ["768 worker_connections are not enough"],
    },
  },
};

const TOOL: ToolScenario = {
  planInProcess: { totalMs: 11_800, programMs: 2_600, packStartupMs: 8_000, analysisMs: 1_100, resources: 208, mandatory: 0 },
  planSubprocess: { wallMs: 15_400, exitCode: 0 },
  policy: {
    packStartupMs: 8_000,
    template: "the prod stack repeated",
    sizes: [
      { resources: 100, analyzeMs: 800, analyzeStackMs: 200, totalMs: 1_000, perResourceMs: 10, diagnostics: 0 },
      { resources: 1000, analyzeMs: 8_000, analyzeStackMs: 2_000, totalMs: 10_000, perResourceMs: 10, diagnostics: 40 },
      { resources: 5000, analyzeMs: 41_000, analyzeStackMs: 10_000, totalMs: 51_000, perResourceMs: 10.2, diagnostics: 220 },
    ],
    fit: linearFit([
      [100, 1_000],
      [1000, 10_000],
      [5000, 51_000],
    ]),
    exponent: growthExponent([100, 1_000], [5000, 51_000]),
    perResourceRatio: 1.02,
    marginalMsPerResource: marginalCosts([
      [100, 1_000],
      [1000, 10_000],
      [5000, 51_000],
    ]),
    marginalRatio: 10.25 / 10,
    linear: true,
  },
};

const RESULTS: BenchResults = {
  startedAt: "2026-11-26T13:00:00.000Z",
  finishedAt: "2026-11-26T13:09:00.000Z",
  quick: false,
  machine: { cpus: 2, cpuModel: "Test CPU", memoryMiB: 24105, node: "v20.0.0", loadAverageAtStart: [1.5, 1, 0.5] },
  pool: POOL,
  proxy: PROXY,
  tool: TOOL,
  errors: {},
};

describe("bench statistics and CPU placement", () => {
  it("takes the median of an odd count, the mean of the middle two of an even count, NaN of nothing", () => {
    expect(median([1700, 1550, 1600])).toBe(1600);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(median([])).toBeNaN();
  });

  it("gives PostgreSQL the first half of the CPUs and everything else the rest; nothing to split on one CPU", () => {
    expect(cpuPlacement(1)).toBeUndefined();
    expect(cpuPlacement(2)).toEqual({ database: "0", others: "1", all: "0-1" });
    expect(cpuPlacement(3)).toEqual({ database: "0", others: "1-2", all: "0-2" });
    expect(cpuPlacement(8)).toEqual({ database: "0-3", others: "4-7", all: "0-7" });
  });
});

describe("bench report and chart (golden for a fixed run)", () => {
  it("renders REPORT.md with each ratio beside its run's absolute numbers", () => {
    const report = renderReport(RESULTS);
    expectGolden("bench/REPORT.md", report);
    expect(report).toContain(
      "**Target at 2,000 simulated Odoo processes: (c) ≥ 0.9 × the ceiling, no failure, no lost notification, `postgres` pool maxwait < 100 ms — met.** (c) 1,460 requests/s / ceiling 1,600 requests/s (the rendered PostgreSQL direct at 8 processes) = **0.91×** (met)",
    );
    expect(report).toContain(
      "**Security tax (TLS on both hops, SCRAM, the checklist's settings): the rendered PostgreSQL direct ÷ stock PostgreSQL direct at 8 processes = 0.80×**",
    );
    expect(report).toContain("One ODOO_PGAPPNAME per host ÷ as rendered = 1.01×.");
    expect(report).toContain(
      "**HTTP through the rendered nginx (TLS) ÷ straight to the stub: 0.50× throughput** (2,000 vs 4,000 requests/s), **added p99 12.00 ms** (20.00 vs 8.00 ms)",
    );
    expect(report).toContain("rendered 5000, stock 729");
    expect(report).toContain(
      "grows linearly: the cost of each added resource was 10.00 ms (100 → 1000), then 10.25 ms (1000 → 5000): last ÷ first 1.02×",
    );
  });

  it("states how the ceiling and (c) were measured: medians of interleaved rounds, PostgreSQL on its own CPUs", () => {
    const report = renderReport(RESULTS);
    expect(report).toContain(
      "Rates are medians of 3 interleaved rounds (the ladder below); (c) ÷ ceiling within each round: 0.91×, 0.89×, 0.90×.",
    );
    expect(report).toContain("PostgreSQL runs on CPUs 0 in every configuration, PgBouncer and the load generator on CPUs 1 (taskset)");
    expect(report).toContain("| stock PostgreSQL direct | 8 | 2,000 | 1.25× | 2,000, 1,900, 2,100 |");
    expect(report).toContain("| (c) as rendered, 2000 | 2000 | 1,460 | 0.91× | 1,460, 1,380, 1,530 |");
    const unpinned = renderReport({ ...RESULTS, pool: { ...POOL, placement: undefined } });
    expect(unpinned).toContain("One CPU: PostgreSQL, PgBouncer and the load generator share it");
  });

  it("says NOT met when (c) falls short or anything failed, and names failures", () => {
    const short = {
      ...RESULTS,
      pool: {
        ...POOL,
        targets: [POOL.targets[0], target(2000, 1200, [1200, 1150, 1250], { lostNotifications: 2, postgresMaxWaitMs: 150, met: false })],
      },
    };
    const text = renderReport(short);
    expect(text).toContain(
      "— NOT met.** (c) 1,200 requests/s / ceiling 1,600 requests/s (the rendered PostgreSQL direct at 8 processes) = **0.75×** (not met); 0 failures",
    );
    expect(text).toContain("2 lost notifications (not met), `postgres` maxwait 150 ms (not met)");
    expect(renderReport(RESULTS)).toContain('403× "sorry, too many clients already"');
  });

  it("reports a scenario that failed instead of leaving it out", () => {
    const failed = renderReport({ ...RESULTS, proxy: undefined, errors: { proxy: "Error: nginx -t failed\n  at stack" } });
    expect(failed).toContain("## 2. The proxy\n\nnot run");
    expect(failed).toContain("- proxy: Error: nginx -t failed");
    expect(failed).not.toContain("at stack");
  });

  it("draws throughput and p95 latency against clients as a hand-built SVG", () => {
    const svg = buildChartSvg(poolChartPanels(POOL));
    expectGolden("bench/chart.svg", svg);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    // Four configurations in each panel, plus the dashed 0.9 × ceiling line in the first.
    expect(svg.match(/<polyline /g)).toHaveLength(9);
    expect(svg.match(/stroke-dasharray/g)).toHaveLength(2); // the line and its legend entry
    expect(svg.match(/<circle /g)).toHaveLength(2 * POOL.points.length);
    // Every legend entry inside the drawing.
    const width = Number(/width="(\d+)"/.exec(svg)?.[1]);
    for (const m of svg.matchAll(/<text x="([\d.]+)" y="\d+">([^<]+)<\/text>/g))
      expect(Number(m[1]) + m[2].length * 7).toBeLessThanOrEqual(width);
    expect(buildChartSvg(poolChartPanels(POOL))).toBe(svg);
  });

  it("escapes series names and picks readable ticks", () => {
    const svg = buildChartSvg([
      {
        title: "a<b",
        xLabel: "x",
        yLabel: "y",
        yScale: "linear",
        series: [
          {
            name: `"q" & <r>`,
            color: "#000",
            points: [
              [1, 1],
              [10, 2],
            ],
          },
        ],
      },
    ]);
    expect(svg).toContain("&quot;q&quot; &amp; &lt;r&gt;");
    expect(svg).toContain("a&lt;b");
    expect(escapeXml(`'`)).toBe("&apos;");
    expect(linearTicks(1980)).toEqual([0, 500, 1000, 1500, 2000]);
    expect(logTicks(0.8, 1500)).toEqual([0.1, 1, 10, 100, 1000, 10000]);
  });

  it("formats numbers for tables", () => {
    expect(fmt(1234567.891, 1)).toBe("1,234,567.9");
    expect(fmt(NaN)).toBe("–");
    expect(fmtRatio(0.9125)).toBe("0.91×");
    expect(markdownTable(["a", "b"], [["1|2", "3"]])).toBe("| a | b |\n|---|---|\n| 1\\|2 | 3 |");
  });
});

describe("npm run bench arguments", () => {
  it("runs every scenario by default, one or several with --scenario, and refuses unknown ones", () => {
    expect(parseBenchArgs([])).toEqual({ quick: false, render: false, scenarios: ["pool", "proxy", "tool"] });
    expect(parseBenchArgs(["--quick", "--scenario", "pool"])).toEqual({ quick: true, render: false, scenarios: ["pool"] });
    expect(parseBenchArgs(["--scenario=tool,proxy"])).toEqual({ quick: false, render: false, scenarios: ["tool", "proxy"] });
    expect(parseBenchArgs(["--render"]).render).toBe(true);
    expect(() => parseBenchArgs(["--scenario", "disk"])).toThrow(/unknown scenario "disk"/);
    expect(() => parseBenchArgs(["--fast"])).toThrow(/unknown argument --fast/);
  });

  it("measures the sizes issue 7 names in the full run", () => {
    const full = plannedSizes(false);
    expect(full.pool.clientCounts).toEqual([500, 2_000]);
    expect(full.pool.ceilingClientCounts.length).toBeGreaterThanOrEqual(4);
    // An odd count of rounds, at least 3: the median is then a measured run.
    expect(full.pool.rounds % 2).toBe(1);
    expect(full.pool.rounds).toBeGreaterThanOrEqual(3);
    expect(full.proxy.websockets).toBe(5000);
    expect(full.policySizes).toEqual([100, 1000, 5000]);
    expect(plannedSizes(true).pool.measureMs).toBeLessThan(full.pool.measureMs);
  });
});

describe("a run of some scenarios", () => {
  it("keeps the other scenarios from the previous results.json, marked with that run, and only in the same mode", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "odoo-stack-bench-test-"));
    try {
      const file = path.join(dir, "results.json");
      fs.writeFileSync(file, JSON.stringify({ ...RESULTS, proxy: undefined, errors: { proxy: "failed" } }));
      const proxyOnly: BenchResults = { ...RESULTS, startedAt: "2026-11-26T14:00:00.000Z", pool: undefined, tool: undefined };
      const merged = carryOver(proxyOnly, file);
      expect(merged.pool).toEqual(POOL);
      expect(merged.tool).toEqual(TOOL);
      expect(merged.proxy).toEqual(PROXY);
      expect(merged.carriedOver).toEqual({ pool: RESULTS.startedAt, tool: RESULTS.startedAt });
      expect(renderReport(merged)).toContain(`_Scenario pool: carried over from the run started ${RESULTS.startedAt}._`);
      expect(carryOver({ ...proxyOnly, quick: true }, file).pool).toBeUndefined();
      expect(carryOver(proxyOnly, path.join(dir, "missing.json"))).toBe(proxyOnly);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
