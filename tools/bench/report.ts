// out/bench/REPORT.md from results.json: every ratio beside the absolute numbers of the run it
// came from (absolute numbers on a shared 2-core machine are noisy; the ratios are the claim).
import { CONFIG_STYLE } from "./chart";
import type { BenchResults, CpuUse, PgPoint, PoolScenario, ProxyScenario, ToolScenario, WebSocketHold } from "./results";
import { LINEAR_MARGINAL_RATIO_LIMIT, marginalCosts } from "./stats";

/** A number for a table: "–" for NaN, thousands separated, `digits` decimals. */
export function fmt(v: number | undefined, digits = 1): string {
  if (v === undefined || !Number.isFinite(v)) return "–";
  const fixed = v.toFixed(digits);
  const [int, frac] = fixed.split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

/** A ratio as "0.93×". */
export const fmtRatio = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : "–");

/** A GitHub-flavoured Markdown table; cells must not contain "|". */
export function markdownTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const clean = (c: string) => c.replace(/\|/g, "\\|");
  return [`| ${head.map(clean).join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.map(clean).join(" | ")} |`)].join("\n");
}

const cpu = (c: CpuUse): string => `${fmt(c.generatorCores, 2)} / ${fmt(c.serverCores, 2)} / ${fmt(c.machineBusyCores, 2)}`;

const topErrors = (errors: Readonly<Record<string, number>>): string =>
  Object.keys(errors).length === 0 ? "no message recorded" : Object.entries(errors)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, 2)
    .map(([m, c]) => `${c}× "${m.length > 70 ? `${m.slice(0, 67)}...` : m}"`)
    .join("; ");

function poolSection(pool: PoolScenario, cpus: number): string[] {
  const t = pool.target;
  const order = ["stock-postgres", "stock-pgbouncer", "rendered", "ceiling"] as const;
  const rows = order.flatMap((config) =>
    pool.points
      .filter((p) => p.config === config)
      .sort((a, b) => a.clients - b.clients)
      .map((p: PgPoint) => [
        CONFIG_STYLE[config].name,
        String(p.clients),
        fmt(p.tps, 0),
        fmtRatio(p.tps / pool.ceiling.tps),
        fmt(p.latencyMs.p50, 1),
        fmt(p.latencyMs.p95, 1),
        fmt(p.latencyMs.p99, 1),
        `${p.failedConnections}`,
        `${p.failedTransactions}`,
        `${p.starvedClients}`,
        p.pgbouncerMaxWaitMs === undefined ? "–" : fmt(p.pgbouncerMaxWaitMs, 0),
        cpu(p.cpu),
      ]),
  );
  const errorLines = pool.points
    .filter((p) => p.failedConnections + p.failedTransactions > 0)
    .map((p) => {
      const parts = [p.failedConnections > 0 ? `connections: ${topErrors(p.connectionErrors)}` : "", p.failedTransactions > 0 ? `transactions: ${topErrors(p.transactionErrors)}` : ""];
      return `- ${CONFIG_STYLE[p.config].name}, ${p.clients} clients: ${parts.filter(Boolean).join("; ")}`;
    });
  const rendered500 = pool.points.find((p) => p.config === "rendered" && p.clients === t.clients);
  const ceilingPoint = pool.points.find((p) => p.config === "ceiling" && p.clients === pool.ceiling.clients);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const perCore = (p: PgPoint | undefined) => (p ? p.tps / p.cpu.serverCores : NaN);
  const confounders = [
    `The load generator (one Node process, all clients) used ${fmt(mean(pool.points.map((p) => p.cpu.generatorCores)), 2)} cores on average ` +
      `(max ${fmt(Math.max(...pool.points.map((p) => p.cpu.generatorCores)), 2)}); the whole machine was ${fmt(mean(pool.points.map((p) => p.cpu.machineBusyCores)), 2)} of ${cpus} cores busy on average, ` +
      "which includes anything else running on it.",
    ...(rendered500 && ceilingPoint
      ? [
          `Per daemon CPU second: (c) at ${t.clients} clients ${fmt(perCore(rendered500), 0)} transactions, the ceiling run ${fmt(perCore(ceilingPoint), 0)} ` +
            `(${fmtRatio(perCore(rendered500) / perCore(ceilingPoint))}); the daemons got ${fmt(rendered500.cpu.serverCores, 2)} and ${fmt(ceilingPoint.cpu.serverCores, 2)} cores.`,
        ]
      : []),
  ];
  return [
    "## 1. Connection storm through the pool",
    "",
    `**Target: (c) at ${t.clients} clients ≥ ${t.required} × the ceiling's TPS with zero failures — ${t.met ? "met" : "NOT met"}.** ` +
      `(c) ${fmt(t.renderedTps, 0)} TPS / ceiling ${fmt(t.ceilingTps, 0)} TPS (PostgreSQL direct at ${pool.ceiling.clients} clients) = **${fmtRatio(t.ratio)}**, ` +
      `${t.failures} failures (failed connections + failed transactions + starved clients)${rendered500 ? `, p99 ${fmt(rendered500.latencyMs.p99, 1)} ms` : ""}. ` +
      `Both TPS are medians of ${t.roundRatios.length} interleaved rounds (the ladder below); (c) ÷ ceiling within each round: ${t.roundRatios.map(fmtRatio).join(", ")}. ` +
      `The sweep found the ceiling's client count (${fmt(pool.ceiling.sweepTps, 0)} TPS at ${pool.ceiling.clients} clients there).`,
    "",
    pool.placement
      ? `PostgreSQL runs on CPUs ${pool.placement.database} in every configuration, PgBouncer and the load generator on CPUs ${pool.placement.others} (taskset): ` +
        "in production the database has a host of its own and PgBouncer another, so the database's CPU is what the configurations compete for."
      : "One CPU: PostgreSQL, PgBouncer and the load generator share it (in production they run on separate hosts).",
    "",
    `Each point: ${fmt(pool.warmupMs / 1000, 0)} s warm-up, then ${fmt(pool.measureMs / 1000, 0)} s measured; every client holds its own connection, opened all at once (the storm).`,
    `Mix: ${pool.mix.map((m) => `${m.kind} ${m.weight} %`).join(", ")}. Dataset: ${pool.dataset}.`,
    "",
    ...order.map((c) => `- **${CONFIG_STYLE[c].name}**: ${pool.configs[c]}`),
    "",
    markdownTable(
      ["configuration", "clients", "TPS", "÷ ceiling", "p50 ms", "p95 ms", "p99 ms", "failed conn.", "failed tx", "starved clients", "PgBouncer maxwait ms", "CPU cores: generator / daemons / machine"],
      rows,
    ),
    "",
    "“Starved clients” connected but committed nothing in the measured window (queued for a server connection). “÷ ceiling” is the point's TPS over the ceiling's.",
    "",
    ...confounders,
    "",
    ...(pool.ladder.length > 0
      ? [
          "From the ceiling to (c), one difference per row; each row's TPS is the median of its rounds (÷ ceiling: over the first row's median):",
          "",
          markdownTable(
            ["path", "clients", "TPS (median)", "÷ ceiling", "÷ row above", "TPS of each round", "p50 ms", "p99 ms", "failures", "CPU cores: generator / daemons / machine"],
            pool.ladder.map((step, i) => {
              const middle = [...step.runs].sort((a, b) => a.tps - b.tps)[Math.floor(step.runs.length / 2)];
              return [
                step.label,
                String(step.clients),
                fmt(step.tps, 0),
                fmtRatio(step.tps / pool.ladder[0].tps),
                i === 0 ? "–" : fmtRatio(step.tps / pool.ladder[i - 1].tps),
                step.runs.map((r) => fmt(r.tps, 0)).join(", "),
                middle ? fmt(middle.latencyMs.p50, 2) : "–",
                middle ? fmt(middle.latencyMs.p99, 2) : "–",
                String(step.runs.reduce((sum, r) => sum + r.failures, 0)),
                middle ? cpu(middle.cpu) : "–",
              ];
            }),
          ),
          "",
          "Latency and CPU columns are those of each row's median run.",
          "",
        ]
      : []),
    ...(errorLines.length > 0 ? ["Failures, most frequent messages:", "", ...errorLines, ""] : []),
    "![throughput and p95 latency against clients](chart.svg)",
    "",
  ];
}

function holdRow(h: WebSocketHold, target: number): string[] {
  return [
    h.label,
    `${h.workerProcesses} × ${h.workerConnections}`,
    `${h.nofile} (workers run with ${h.workerNofile})`,
    String(h.attempted),
    `${h.held}`,
    h.held >= target ? "yes" : "no",
    String(h.failed),
    h.failed > 0 ? topErrors(h.errors) : "–",
  ];
}

function proxySection(proxy: ProxyScenario): string[] {
  const run = (r: ProxyScenario["direct"]) => [
    r.label,
    String(r.connections),
    fmt(r.rps, 0),
    fmt(r.latencyMs.p50, 2),
    fmt(r.latencyMs.p95, 2),
    fmt(r.latencyMs.p99, 2),
    String(r.errors),
    cpu(r.cpu),
  ];
  const ws = proxy.websockets;
  return [
    "## 2. The proxy",
    "",
    `**HTTP through the rendered nginx (TLS) ÷ straight to the stub: ${fmtRatio(proxy.throughputRatio)} throughput** ` +
      `(${fmt(proxy.viaNginx.rps, 0)} vs ${fmt(proxy.direct.rps, 0)} requests/s), **added p99 ${fmt(proxy.addedP99Ms, 2)} ms** ` +
      `(${fmt(proxy.viaNginx.latencyMs.p99, 2)} vs ${fmt(proxy.direct.latencyMs.p99, 2)} ms).`,
    "",
    markdownTable(["path", "keep-alive connections", "requests/s", "p50 ms", "p95 ms", "p99 ms", "errors", "CPU cores: generator / daemons / machine"], [run(proxy.direct), run(proxy.viaNginx)]),
    "",
    `**WebSockets held open at once through nginx to the 8072 stub (target ${ws.target}): rendered ${ws.rendered.held}, stock ${ws.stock.held}** ` +
      `(${fmtRatio(ws.rendered.held / Math.max(1, ws.stock.held))}).`,
    "",
    markdownTable(["nginx.conf", "workers × worker_connections", "descriptor limit asked for", "attempted", "held", "≥ target", "failed", "errors"], [holdRow(ws.rendered, ws.target), holdRow(ws.stock, ws.target)]),
    "",
    ...[ws.rendered, ws.stock]
      .filter((h) => h.nginxComplaints.length > 0)
      .map((h) => `nginx (${h.label}) error log: ${h.nginxComplaints.map((c) => `\`${c}\``).join(", ")}`),
    "",
  ];
}

/** "a then b (last ÷ first r×)": one phase's marginal cost per added resource between sizes. */
function phaseMarginals(sizes: ToolScenario["policy"]["sizes"], ms: (s: ToolScenario["policy"]["sizes"][number]) => number): string {
  const m = marginalCosts(sizes.map((s) => [s.resources, ms(s)] as const));
  return `${m.map((v) => fmt(v, 2)).join(" then ")} (${fmtRatio(m[m.length - 1] / m[0])})`;
}

function toolSection(tool: ToolScenario): string[] {
  const p = tool.planInProcess;
  const pol = tool.policy;
  return [
    "## 3. The tool itself",
    "",
    `**\`npm run plan\` (prod stack): ${fmt(tool.planSubprocess.wallMs / 1000, 1)} s wall as a subprocess (exit ${tool.planSubprocess.exitCode}); ` +
      `plan() in-process ${fmt(p.totalMs / 1000, 1)} s** (program ${fmt(p.programMs / 1000, 1)} s; pack start-up ${fmt(p.packStartupMs / 1000, 1)} s, alongside the program; ` +
      `analysis ${fmt(p.analysisMs / 1000, 1)} s) for ${p.resources} resources, ${p.mandatory} mandatory findings.`,
    "",
    `**Policy evaluation grows ${pol.linear ? "linearly" : "FASTER than linearly"}: the cost of each added resource was ` +
      `${pol.marginalMsPerResource.map((m, i) => `${fmt(m, 2)} ms (${pol.sizes[i].resources} → ${pol.sizes[i + 1].resources})`).join(", then ")}: ` +
      `last ÷ first ${fmtRatio(pol.marginalRatio)} (≈ 1× is linear; limit ${LINEAR_MARGINAL_RATIO_LIMIT}×).** ` +
      `By phase, ms per added resource: Analyze ${phaseMarginals(pol.sizes, (x) => x.analyzeMs)}, AnalyzeStack ${phaseMarginals(pol.sizes, (x) => x.analyzeStackMs)}. ` +
      `Least squares over all sizes: ${fmt(pol.fit.slope, 2)} ms per resource ${pol.fit.intercept < 0 ? "−" : "+"} ${fmt(Math.abs(pol.fit.intercept), 0)} ms per evaluation (R² ${fmt(pol.fit.r2, 4)}); ` +
      `total time per resource at ${pol.sizes[pol.sizes.length - 1].resources} is ${fmtRatio(pol.perResourceRatio)} that at ${pol.sizes[0].resources} (growth exponent ${fmt(pol.exponent, 2)}${pol.exponent < 1 ? "; below 1 because the fixed cost weighs on the small sizes" : ""}). ` +
      `One pack start-up (${fmt(pol.packStartupMs / 1000, 1)} s, not counted); each evaluation: Analyze for every resource (all in flight, as the CLI sends them), then one AnalyzeStack.`,
    "",
    `Synthetic stacks: ${pol.template}`,
    "",
    markdownTable(
      ["resources", "Analyze (all) ms", "AnalyzeStack ms", "total ms", "ms per resource", "ms per added resource", "diagnostics"],
      pol.sizes.map((s, i) => [
        String(s.resources),
        fmt(s.analyzeMs, 0),
        fmt(s.analyzeStackMs, 0),
        fmt(s.totalMs, 0),
        fmt(s.perResourceMs, 3),
        i === 0 ? "–" : fmt(pol.marginalMsPerResource[i - 1], 3),
        String(s.diagnostics),
      ]),
    ),
    "",
  ];
}

/** The whole REPORT.md. */
export function renderReport(r: BenchResults): string {
  const m = r.machine;
  return [
    "# odoo-stack benchmark",
    "",
    `Run ${r.startedAt} → ${r.finishedAt}${r.quick ? " (**--quick smoke run: short windows and small counts, not for quoting**)" : ""}. ` +
      `Machine: ${m.cpus} × ${m.cpuModel}, ${fmt(m.memoryMiB, 0)} MiB, Node ${m.node}, load average at start ${m.loadAverageAtStart.map((l) => l.toFixed(2)).join(" ")}. ` +
      "Load generator, stubs and daemons share these cores; the CPU columns show who used them.",
    "",
    ...Object.entries(r.carriedOver ?? {}).map(([scenario, at]) => `_Scenario ${scenario}: carried over from the run started ${at}._`),
    ...(r.carriedOver ? [""] : []),
    ...(r.pool ? poolSection(r.pool, m.cpus) : ["## 1. Connection storm through the pool", "", "not run", ""]),
    ...(r.proxy ? proxySection(r.proxy) : ["## 2. The proxy", "", "not run", ""]),
    ...(r.tool ? toolSection(r.tool) : ["## 3. The tool itself", "", "not run", ""]),
    ...(Object.keys(r.errors).length > 0 ? ["## Errors", "", ...Object.entries(r.errors).map(([s, e]) => `- ${s}: ${e.split("\n")[0]}`), ""] : []),
  ].join("\n");
}
