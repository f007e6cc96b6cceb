// A hand-built SVG line chart (no charting dependency): panels side by side, a log-scaled
// clients axis, and one polyline per configuration. Deterministic: the same input gives the
// same bytes, so tests/golden/bench/chart.svg pins it.
import type { PgPoint, PoolConfig, PoolScenario } from "./results";

export interface ChartSeries {
  readonly name: string;
  readonly color: string;
  /** Dashed stroke (reference lines). */
  readonly dashed?: boolean;
  readonly points: readonly (readonly [x: number, y: number])[];
}

export interface ChartPanel {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly yScale: "linear" | "log";
  readonly series: readonly ChartSeries[];
}

const PANEL = { width: 460, height: 320, left: 64, right: 16, top: 36, bottom: 48 } as const;
/** One legend row; entries wrap to the next row when the chart is too narrow. */
const LEGEND_ROW = 18;

/** Text content and attribute values: the five XML specials. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** Two decimals, no trailing zeros: stable coordinates. */
const n = (v: number): string => String(Math.round(v * 100) / 100);

/** 1, 2, 5 × 10^k steps: about `count` ticks from 0 to at least `max`. */
export function linearTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) as number;
  const ticks: number[] = [];
  for (let t = 0; t < max + step; t += step) {
    ticks.push(Math.round(t * 1e6) / 1e6);
    if (t >= max) break;
  }
  return ticks;
}

/** Powers of ten covering [min, max]. */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const ticks: number[] = [];
  for (let e = lo; e <= Math.max(hi, lo + 1); e++) ticks.push(10 ** e);
  return ticks;
}

const tickLabel = (v: number): string => (v >= 1000 ? `${n(v / 1000)}k` : n(v));

function panelSvg(panel: ChartPanel, offsetX: number): string[] {
  const all = panel.series.flatMap((s) => s.points).filter(([x, y]) => x > 0 && Number.isFinite(y) && (panel.yScale === "linear" || y > 0));
  const plotW = PANEL.width - PANEL.left - PANEL.right;
  const plotH = PANEL.height - PANEL.top - PANEL.bottom;
  const xTicks = logTicks(Math.min(...all.map(([x]) => x), 1), Math.max(...all.map(([x]) => x), 10));
  const [xMin, xMax] = [xTicks[0], xTicks[xTicks.length - 1]];
  const ys = all.map(([, y]) => y);
  const yTicks = panel.yScale === "log" ? logTicks(Math.min(...ys, 1), Math.max(...ys, 10)) : linearTicks(Math.max(...ys, 1));
  const [yMin, yMax] = [yTicks[0], yTicks[yTicks.length - 1]];
  const sx = (x: number) => offsetX + PANEL.left + ((Math.log10(x) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))) * plotW;
  const sy = (y: number) =>
    PANEL.top +
    plotH -
    (panel.yScale === "log" ? (Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin)) : (y - yMin) / (yMax - yMin)) *
      plotH;
  const out: string[] = [];
  const x0 = offsetX + PANEL.left;
  out.push(`<text x="${n(x0 + plotW / 2)}" y="20" text-anchor="middle" font-weight="bold">${escapeXml(panel.title)}</text>`);
  out.push(`<rect x="${n(x0)}" y="${PANEL.top}" width="${n(plotW)}" height="${n(plotH)}" fill="none" stroke="#888"/>`);
  for (const t of xTicks) {
    out.push(`<line x1="${n(sx(t))}" y1="${PANEL.top}" x2="${n(sx(t))}" y2="${PANEL.top + plotH}" stroke="#eee"/>`);
    out.push(`<text x="${n(sx(t))}" y="${PANEL.top + plotH + 16}" text-anchor="middle">${tickLabel(t)}</text>`);
  }
  for (const t of yTicks) {
    out.push(`<line x1="${n(x0)}" y1="${n(sy(t))}" x2="${n(x0 + plotW)}" y2="${n(sy(t))}" stroke="#eee"/>`);
    out.push(`<text x="${n(x0 - 6)}" y="${n(sy(t) + 4)}" text-anchor="end">${tickLabel(t)}</text>`);
  }
  out.push(`<text x="${n(x0 + plotW / 2)}" y="${PANEL.top + plotH + 36}" text-anchor="middle">${escapeXml(panel.xLabel)}</text>`);
  const yMid = PANEL.top + plotH / 2;
  out.push(
    `<text x="${n(offsetX + 14)}" y="${n(yMid)}" text-anchor="middle" transform="rotate(-90 ${n(offsetX + 14)} ${n(yMid)})">${escapeXml(panel.yLabel)}</text>`,
  );
  for (const s of panel.series) {
    const pts = s.points.filter(([x, y]) => x > 0 && Number.isFinite(y) && (panel.yScale === "linear" || y > 0));
    if (pts.length === 0) continue;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : "";
    out.push(
      `<polyline fill="none" stroke="${escapeXml(s.color)}" stroke-width="2"${dash} points="${pts.map(([x, y]) => `${n(sx(x))},${n(sy(y))}`).join(" ")}"/>`,
    );
    if (!s.dashed) for (const [x, y] of pts) out.push(`<circle cx="${n(sx(x))}" cy="${n(sy(y))}" r="3" fill="${escapeXml(s.color)}"/>`);
  }
  return out;
}

/** Panels side by side with one shared legend (every series name once, in first-seen order). */
export function buildChartSvg(panels: readonly ChartPanel[]): string {
  const width = PANEL.width * panels.length;
  const legend = new Map<string, ChartSeries>();
  for (const p of panels) for (const s of p.series) if (!legend.has(s.name)) legend.set(s.name, s);
  const body = panels.flatMap((p, i) => panelSvg(p, i * PANEL.width));
  let x = 16;
  let row = 0;
  for (const s of legend.values()) {
    const itemWidth = 36 + s.name.length * 7;
    if (x > 16 && x + itemWidth > width) {
      x = 16;
      row++;
    }
    const y = PANEL.height + 12 + row * LEGEND_ROW;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : "";
    body.push(`<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${escapeXml(s.color)}" stroke-width="2"${dash}/>`);
    body.push(`<text x="${x + 30}" y="${y + 4}">${escapeXml(s.name)}</text>`);
    x += itemWidth;
  }
  const height = PANEL.height + (row + 1) * LEGEND_ROW + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...body.map((line) => `  ${line}`),
    "</svg>",
    "",
  ].join("\n");
}

export const CONFIG_STYLE: Readonly<Record<PoolConfig, { readonly name: string; readonly color: string }>> = {
  "stock-postgres": { name: "(a) PostgreSQL, stock", color: "#d62728" },
  "stock-pgbouncer": { name: "(b) PgBouncer, stock", color: "#ff7f0e" },
  rendered: { name: "(c) rendered PgBouncer + PostgreSQL", color: "#2ca02c" },
  ceiling: { name: "(d) the rendered PostgreSQL direct, few processes", color: "#1f77b4" },
};

/** Throughput and p95 latency against simulated Odoo processes for every configuration of scenario 1. */
export function poolChartPanels(pool: Pick<PoolScenario, "points" | "ceiling">): ChartPanel[] {
  const configs = Object.keys(CONFIG_STYLE) as PoolConfig[];
  const seriesOf = (value: (p: PgPoint) => number): ChartSeries[] =>
    configs
      .map((c) => ({
        ...CONFIG_STYLE[c],
        points: pool.points
          .filter((p) => p.config === c)
          .sort((a, b) => a.clients - b.clients)
          .map((p) => [p.clients, value(p)] as const),
      }))
      .filter((s) => s.points.length > 0);
  const clients = pool.points.map((p) => p.clients);
  const ceilingLine: ChartSeries = {
    name: "0.9 × ceiling",
    color: "#1f77b4",
    dashed: true,
    points: [
      [Math.min(...clients), 0.9 * pool.ceiling.tps],
      [Math.max(...clients), 0.9 * pool.ceiling.tps],
    ],
  };
  return [
    {
      title: "Throughput",
      xLabel: "simulated Odoo processes (log)",
      yLabel: "requests/s",
      yScale: "linear",
      series: [...seriesOf((p) => p.tps), ceilingLine],
    },
    {
      title: "p95 latency",
      xLabel: "simulated Odoo processes (log)",
      yLabel: "ms (log)",
      yScale: "log",
      series: seriesOf((p) => p.latencyMs.p95),
    },
  ];
}
