// Pure numbers for the benchmark (issue 7): latency percentiles, ratios and the linear fit that
// says whether policy evaluation grows linearly. No I/O here, so tests/unit/bench-report.test.ts
// checks every formula against hand-computed values.

/**
 * The nearest-rank percentile (p in 0..100) of `values`: the smallest value such that at
 * least p % of the values are ≤ it. No interpolation, so the answer is always a measured
 * latency, never one between two samples. NaN for an empty input.
 * https://en.wikipedia.org/wiki/Percentile#The_nearest-rank_method
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile ${p} must be between 0 and 100`);
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** p50/p95/p99/max/mean of `values` (sorted once). NaN everywhere but count for an empty input. */
export function summarizeLatencies(values: ArrayLike<number>): LatencySummary {
  if (values.length === 0) return { count: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN, mean: NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1];
  let sum = 0;
  for (const v of sorted) sum += v;
  return { count: sorted.length, p50: at(50), p95: at(95), p99: at(99), max: sorted[sorted.length - 1], mean: sum / sorted.length };
}

/**
 * The median (the mean of the middle two for an even count); NaN for an empty input. The
 * benchmark's ratios are medians over interleaved rounds: one slow or fast round on a shared
 * machine moves a maximum or a single run, not the median.
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** a / b, or NaN when b is 0 or either is not finite (a ratio against nothing is not 0 or ∞). */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}

export interface LinearFit {
  /** Cost per unit of x (ms per resource). */
  readonly slope: number;
  /** Fixed cost (ms). */
  readonly intercept: number;
  /** Coefficient of determination: 1 means the points lie on the line. */
  readonly r2: number;
}

/** Least-squares line through (x, y); needs at least two distinct x. */
export function linearFit(points: readonly (readonly [x: number, y: number])[]): LinearFit {
  const n = points.length;
  if (n < 2) throw new Error(`a linear fit needs at least 2 points, got ${n}`);
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const [x, y] of points) {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
    syy += (y - my) ** 2;
  }
  if (sxx === 0) throw new Error("a linear fit needs at least 2 distinct x values");
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

/**
 * Growth exponent between the smallest and the largest size: log(t2/t1) / log(n2/n1).
 * 1 is linear, 2 quadratic; the report calls it linear below LINEAR_EXPONENT_LIMIT.
 */
export function growthExponent(small: readonly [n: number, ms: number], large: readonly [n: number, ms: number]): number {
  return Math.log(large[1] / small[1]) / Math.log(large[0] / small[0]);
}

/**
 * Marginal cost per unit between consecutive sizes: (t₂ − t₁) / (n₂ − n₁). A fixed cost per
 * evaluation cancels out, so the marginal cost of the last step over the first is ≈ 1 for
 * linear growth whatever the overhead, and grows with n for anything worse.
 */
export function marginalCosts(points: readonly (readonly [n: number, ms: number])[]): number[] {
  return points.slice(1).map(([n, t], i) => (t - points[i][1]) / (n - points[i][0]));
}

/** Above this ratio of last to first marginal cost the growth is reported as faster than linear. */
export const LINEAR_MARGINAL_RATIO_LIMIT = 1.5;

/** Picks one entry by weight with `random` in [0, 1) (the transaction mix). */
export function pickWeighted<T extends { readonly weight: number }>(items: readonly T[], random: number): T {
  const total = items.reduce((s, i) => s + i.weight, 0);
  let r = random * total;
  for (const item of items) {
    if (r < item.weight) return item;
    r -= item.weight;
  }
  return items[items.length - 1];
}

/** A seeded PRNG (mulberry32): the same seed gives every configuration the same key sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
