// `npm run bench [-- --quick] [-- --scenario pool|proxy|tool]` (issue 7): the rendered data path
// against what users would otherwise run, side by side, as ratios. Writes out/bench/results.json,
// out/bench/REPORT.md and out/bench/chart.svg. Not part of `npm test`; the full run takes
// several minutes and starts real PostgreSQL, PgBouncer and nginx on 127.0.0.1 (as root, like
// the integration tests: daemons run as their Debian users, nginx's master as root).
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildChartSvg, poolChartPanels } from "./bench/chart";
import { installInterruptHandlers } from "./bench/interrupt";
import { runPoolScenario } from "./bench/pool";
import { runProxyScenario, WEBSOCKET_FDS_NEEDED } from "./bench/proxy";
import { renderReport } from "./bench/report";
import type { BenchResults } from "./bench/results";
import { runToolScenario } from "./bench/tool";

export const ROOT = path.resolve(__dirname, "..");
export const OUT_DIR = path.join(ROOT, "out", "bench");

export const SCENARIOS = ["pool", "proxy", "tool"] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  readonly quick: boolean;
  readonly scenarios: readonly Scenario[];
  /** Measure nothing: render REPORT.md and chart.svg again from out/bench/results.json. */
  readonly render: boolean;
}

const USAGE = "usage: npm run bench [-- --quick] [-- --scenario pool|proxy|tool[,…]] [-- --render]";

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  let quick = false;
  let render = false;
  const scenarios: Scenario[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    if (flag === "--quick") quick = true;
    else if (flag === "--render") render = true;
    else if (flag === "--scenario") {
      const value = inline ?? argv[++i];
      for (const s of (value ?? "").split(",")) {
        if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${JSON.stringify(s)}\n${USAGE}`);
        if (!scenarios.includes(s as Scenario)) scenarios.push(s as Scenario);
      }
    } else throw new Error(`unknown argument ${argv[i]}\n${USAGE}`);
  }
  return { quick, render, scenarios: scenarios.length > 0 ? scenarios : [...SCENARIOS] };
}

/** Sizes per mode: --quick checks the wiring in about a minute; the full run gives the numbers. */
export function plannedSizes(quick: boolean) {
  return quick
    ? {
        pool: { clientCounts: [50, 200], ceilingClientCounts: [4, 16], warmupMs: 2_000, measureMs: 3_000, rounds: 1 },
        proxy: { httpConnections: 8, httpMeasureMs: 2_000, websockets: 300 },
        policySizes: [50, 100, 200],
      }
    : {
        // Issue 15: the targets at 500 and 2,000 simulated Odoo processes; the warm-up covers
        // PgBouncer growing its pools one server login at a time.
        pool: { clientCounts: [500, 2_000], ceilingClientCounts: [8, 16, 32, 64], warmupMs: 8_000, measureMs: 10_000, rounds: 3 },
        proxy: { httpConnections: 16, httpMeasureMs: 10_000, websockets: 5_000 },
        policySizes: [100, 1_000, 5_000],
      };
}

const RELAUNCHED = "ODOO_STACK_BENCH_NOFILE_RAISED";

/**
 * 5,000 WebSockets need one descriptor each on the client and again on the 8072 stub: if the
 * soft limit is lower, run again in a shell that raises it (up to the hard limit).
 */
function relaunchWithMoreDescriptors(): number | undefined {
  if (process.env[RELAUNCHED] === "1") return undefined;
  const soft = Number(execFileSync("/bin/sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim());
  if (!(soft < WEBSOCKET_FDS_NEEDED)) return undefined;
  const r = spawnSync(
    "/bin/sh",
    [
      "-c",
      `ulimit -n ${WEBSOCKET_FDS_NEEDED} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`,
      "bench",
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: "inherit", env: { ...process.env, [RELAUNCHED]: "1" } },
  );
  return r.status ?? 1;
}

export async function runBench(opts: BenchOptions, log: (line: string) => void = (l) => console.log(l)): Promise<BenchResults> {
  const sizes = plannedSizes(opts.quick);
  const startedAt = new Date().toISOString();
  const errors: Record<string, string> = {};
  const results: { -readonly [K in keyof BenchResults]?: BenchResults[K] } = {};
  for (const scenario of opts.scenarios) {
    const started = Date.now();
    try {
      if (scenario === "pool") results.pool = await runPoolScenario(ROOT, { ...sizes.pool, log });
      if (scenario === "proxy") results.proxy = await runProxyScenario({ ...sizes.proxy, log });
      if (scenario === "tool") results.tool = await runToolScenario(ROOT, { policySizes: sizes.policySizes, log });
      log(`${scenario}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } catch (err) {
      errors[scenario] = err instanceof Error ? (err.stack ?? err.message) : String(err);
      log(`${scenario}: FAILED after ${((Date.now() - started) / 1000).toFixed(1)} s: ${errors[scenario]}`);
    }
  }
  return {
    startedAt,
    finishedAt: new Date().toISOString(),
    quick: opts.quick,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
      memoryMiB: Math.round(os.totalmem() / 1024 / 1024),
      node: process.version,
      loadAverageAtStart: os.loadavg(),
    },
    ...results,
    errors,
  };
}

/**
 * A run of some scenarios keeps the others' results from the previous results.json (same
 * --quick mode, measured without error), marked with the run they come from.
 */
export function carryOver(results: BenchResults, previousFile: string): BenchResults {
  if (!fs.existsSync(previousFile)) return results;
  const previous = JSON.parse(fs.readFileSync(previousFile, "utf8")) as BenchResults;
  if (previous.quick !== results.quick) return results;
  const merged: { -readonly [K in keyof BenchResults]: BenchResults[K] } = { ...results };
  const carried: Record<string, string> = {};
  for (const scenario of SCENARIOS) {
    if (results[scenario] !== undefined || results.errors[scenario] !== undefined || previous[scenario] === undefined) continue;
    (merged as Record<string, unknown>)[scenario] = previous[scenario];
    carried[scenario] = previous.carriedOver?.[scenario] ?? previous.startedAt;
  }
  return Object.keys(carried).length > 0 ? { ...merged, carriedOver: carried } : results;
}

/** results.json, REPORT.md and chart.svg in `dir`. */
export function writeOutputs(dir: string, results: BenchResults): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  if (results.pool) fs.writeFileSync(path.join(dir, "chart.svg"), buildChartSvg(poolChartPanels(results.pool)));
  fs.writeFileSync(path.join(dir, "REPORT.md"), renderReport(results));
}

async function main(): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseBenchArgs(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  if (opts.render) {
    const results = JSON.parse(fs.readFileSync(path.join(OUT_DIR, "results.json"), "utf8")) as BenchResults;
    writeOutputs(OUT_DIR, results);
    console.log(`odoo-stack bench: rendered ${path.relative(process.cwd(), path.join(OUT_DIR, "REPORT.md"))} from results.json`);
    return 0;
  }
  if (opts.scenarios.includes("proxy")) {
    const relaunched = relaunchWithMoreDescriptors();
    if (relaunched !== undefined) return relaunched;
  }
  installInterruptHandlers();
  const results = carryOver(await runBench(opts), path.join(OUT_DIR, "results.json"));
  writeOutputs(OUT_DIR, results);
  console.log(`odoo-stack bench: ${path.relative(process.cwd(), path.join(OUT_DIR, "REPORT.md"))}`);
  return Object.keys(results.errors).length > 0 ? 1 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(2);
    },
  );
}
