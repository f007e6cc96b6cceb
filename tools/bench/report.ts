// out/bench/REPORT.md from results.json: every ratio beside the absolute numbers of the run it
// came from (absolute numbers on a shared 2-core machine are noisy; the ratios are the claim).
import { CONFIG_STYLE } from "./chart";
import type { BenchResults, CpuUse, PgPoint, PoolScenario, ProxyScenario, ToolScenario, WebSocketHold } from "./results";
import { STORM_SETTLE_MS } from "./odoo-load";
import { LINEAR_MARGINAL_RATIO_LIMIT, marginalCosts, ratio } from "./stats";

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
  return [
    `| ${head.map(clean).join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(clean).join(" | ")} |`),
  ].join("\n");
}

const cpu = (c: CpuUse): string => `${fmt(c.generatorCores, 2)} / ${fmt(c.serverCores, 2)} / ${fmt(c.machineBusyCores, 2)}`;

const topErrors = (errors: Readonly<Record<string, number>>): string =>
  Object.keys(errors).length === 0
    ? "no message recorded"
    : Object.entries(errors)
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, 2)
        .map(([m, c]) => `${c}× "${m.length > 70 ? `${m.slice(0, 67)}...` : m}"`)
        .join("; ");

/** "met" or "NOT met", for a headline. */
const metText = (met: boolean): string => (met ? "met" : "NOT met");

function poolSection(pool: PoolScenario, cpus: number): string[] {
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
        p.notifications === undefined ? "–" : `${p.notifications.lost} / ${p.notifications.sent}`,
        p.pgbouncerMaxWaitMs === undefined ? "–" : fmt(p.pgbouncerMaxWaitMs, 0),
        p.postgresMaxWaitMs === undefined ? "–" : fmt(p.postgresMaxWaitMs, 0),
        cpu(p.cpu),
      ]),
  );
  // A refused NOTIFY is not a failed request (the request committed) but a lost notification:
  // listed apart, so a target missed for lost notifications shows why.
  const split = (errors: Readonly<Record<string, number>>, notify: boolean) =>
    Object.fromEntries(Object.entries(errors).filter(([k]) => k.startsWith("NOTIFY ") === notify));
  const errorLines = pool.points
    .filter((p) => p.failedConnections + p.failedTransactions > 0 || Object.keys(p.transactionErrors).length > 0)
    .map((p) => {
      const notifyErrors = split(p.transactionErrors, true);
      const parts = [
        p.failedConnections > 0 ? `connections: ${topErrors(p.connectionErrors)}` : "",
        p.failedTransactions > 0 ? `requests: ${topErrors(split(p.transactionErrors, false))}` : "",
        Object.keys(notifyErrors).length > 0 ? `notifications: ${topErrors(notifyErrors)}` : "",
      ];
      return `- ${CONFIG_STYLE[p.config].name}, ${p.clients} processes: ${parts.filter(Boolean).join("; ")}`;
    });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const tax = pool.securityTax;
  const app = pool.applicationName;
  const asRendered = app.variants[0];
  const perHost = app.variants[app.variants.length - 1];
  const appGain = ratio(perHost.tps, asRendered.tps);
  return [
    "## 1. Connection storm through the pool",
    "",
    ...pool.targets.flatMap((t) => [
      `**Target at ${fmt(t.clients, 0)} simulated Odoo processes: (c) ≥ ${t.required} × the ceiling, no failure, no lost notification, \`postgres\` pool maxwait < ${t.postgresMaxWaitLimitMs} ms — ${metText(t.met)}.** ` +
        `(c) ${fmt(t.renderedTps, 0)} requests/s / ceiling ${fmt(t.ceilingTps, 0)} requests/s (the rendered PostgreSQL direct at ${pool.ceiling.clients} processes) = **${fmtRatio(t.ratio)}**` +
        ` (${t.ratio >= t.required ? "met" : "not met"}); ${t.failures} failures (failed connections + failed requests + starved processes; ${t.failures === 0 ? "met" : "not met"}), ` +
        `${t.lostNotifications} lost notifications (${t.lostNotifications === 0 ? "met" : "not met"}), \`postgres\` maxwait ${fmt(t.postgresMaxWaitMs, 0)} ms (${t.postgresMaxWaitMs < t.postgresMaxWaitLimitMs ? "met" : "not met"}). ` +
        `Rates are medians of ${t.roundRatios.length} interleaved rounds (the ladder below); (c) ÷ ceiling within each round: ${t.roundRatios.map(fmtRatio).join(", ")}.`,
      "",
    ]),
    `**Security tax (TLS on both hops, SCRAM, the checklist's settings): the rendered PostgreSQL direct ÷ stock PostgreSQL direct at ${tax.clients} processes = ${fmtRatio(tax.ratio)}** ` +
      `(${fmt(tax.renderedDirectTps, 0)} vs ${fmt(tax.stockDirectTps, 0)} requests/s, medians of the same rounds). It is not part of the target, which compares paths that both pay it.`,
    "",
    `**application_name at ${fmt(app.clients, 0)} processes** (every Odoo process names its connections odoo-<pid>, odoo/sql_db.py L790-794; in transaction pooling PgBouncer sends SET application_name whenever a server connection goes to a client with another name, and Odoo's DISCARD ALL at every cursor, sql_db.py L675, resets it): ` +
      app.variants.map((v) => `${v.label}: ${fmt(v.tps, 0)} requests/s`).join("; ") +
      `. One ODOO_PGAPPNAME per host ÷ as rendered = ${fmtRatio(appGain)}.`,
    "",
    pool.placement
      ? `PostgreSQL runs on CPUs ${pool.placement.database} in every configuration, PgBouncer and the load generator on CPUs ${pool.placement.others} (taskset): ` +
        "in production the database has a host of its own and PgBouncer another, so the database's CPU is what the configurations compete for."
      : "One CPU: PostgreSQL, PgBouncer and the load generator share it (in production they run on separate hosts).",
    "",
    `Each point: a warm-up of ${fmt(pool.warmupMs / 1000, 0)} s and until every process has completed a request (at most ${fmt(STORM_SETTLE_MS / 1000, 0)} s more), then ${fmt(pool.measureMs / 1000, 0)} s measured, counting the requests that complete in it; every simulated Odoo process (tools/bench/odoo-traffic.ts) opens its pooled connection at once (the storm), then serves requests back to back, each as Odoo 17 does: a DISCARD ALL at every cursor, the registry check, the request's transaction, and after a commit that sent a bus message a NOTIFY on a new connection to \`postgres\`.`,
    `Requests: ${pool.mix.map((m) => `${m.kind} ${m.weight} %`).join(", ")}. Data: ${pool.dataset}.`,
    "",
    ...pool.mix.map((m) => `- ${m.kind}: ${m.sql.join(" → ")}`),
    "",
    ...order.map((c) => `- **${CONFIG_STYLE[c].name}**: ${pool.configs[c]}`),
    "",
    markdownTable(
      [
        "configuration",
        "processes",
        "requests/s",
        "÷ ceiling",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "failed conn.",
        "failed req.",
        "starved",
        "lost / sent notifications",
        "PgBouncer maxwait ms",
        "postgres maxwait ms",
        "CPU cores: generator / daemons / machine",
      ],
      rows,
    ),
    "",
    "“Starved” processes connected but completed no request in the measured window (queued for a server connection); the window lasts at least two of a process's request cycles (processes ÷ rate, Little's law; tools/bench/odoo-load.ts WINDOW_CYCLES, at most 45 s), so a fair queue starves none. “÷ ceiling” is the point's rate over the ceiling's.",
    "",
    `The load generator (one Node process, every simulated process) used ${fmt(mean(pool.points.map((p) => p.cpu.generatorCores)), 2)} cores on average ` +
      `(max ${fmt(Math.max(...pool.points.map((p) => p.cpu.generatorCores)), 2)}); the whole machine was ${fmt(mean(pool.points.map((p) => p.cpu.machineBusyCores)), 2)} of ${cpus} cores busy on average, ` +
      "which includes anything else running on it.",
    "",
    ...(pool.ladder.length > 0
      ? [
          "Every rung, measured once per round (÷ ceiling: over the first row's median):",
          "",
          markdownTable(
            [
              "path",
              "processes",
              "requests/s (median)",
              "÷ ceiling",
              "requests/s of each round",
              "p50 ms",
              "p99 ms",
              "failures",
              "lost notifications",
              "postgres maxwait ms",
              "CPU cores: generator / daemons / machine",
            ],
            pool.ladder.map((step) => {
              const middle = [...step.runs].sort((a, b) => a.tps - b.tps)[Math.floor(step.runs.length / 2)];
              const waits = step.runs.map((r) => r.postgresMaxWaitMs).filter((w): w is number => w !== undefined);
              return [
                step.label,
                String(step.clients),
                fmt(step.tps, 0),
                fmtRatio(step.tps / pool.ladder[0].tps),
                step.runs.map((r) => fmt(r.tps, 0)).join(", "),
                middle ? fmt(middle.latencyMs.p50, 1) : "–",
                middle ? fmt(middle.latencyMs.p99, 1) : "–",
                String(step.runs.reduce((sum, r) => sum + r.failures, 0)),
                String(step.runs.reduce((sum, r) => sum + r.lostNotifications, 0)),
                waits.length === 0 ? "–" : fmt(Math.max(...waits), 0),
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
    "![throughput and p95 latency against simulated Odoo processes](chart.svg)",
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
    markdownTable(
      ["path", "keep-alive connections", "requests/s", "p50 ms", "p95 ms", "p99 ms", "errors", "CPU cores: generator / daemons / machine"],
      [run(proxy.direct), run(proxy.viaNginx)],
    ),
    "",
    `**WebSockets held open at once through nginx to the 8072 stub (target ${ws.target}): rendered ${ws.rendered.held}, stock ${ws.stock.held}** ` +
      `(${fmtRatio(ws.rendered.held / Math.max(1, ws.stock.held))}).`,
    "",
    markdownTable(
      ["nginx.conf", "workers × worker_connections", "descriptor limit asked for", "attempted", "held", "≥ target", "failed", "errors"],
      [holdRow(ws.rendered, ws.target), holdRow(ws.stock, ws.target)],
    ),
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
    ...(Object.keys(r.errors).length > 0
      ? ["## Errors", "", ...Object.entries(r.errors).map(([s, e]) => `- ${s}: ${e.split("\n")[0]}`), ""]
      : []),
  ].join("\n");
}
