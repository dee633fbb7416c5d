/**
 * Log-scale histogram bins for durations in ms: 0–9 ms one bin each (exact),
 * then each bin 10 % wider than the one before, up to ~40 days; the last bin
 * is open above. A percentile read from the bins is the middle of its bin, so
 * it is within 5 % + 1 ms of the exact value — the stated error bound of
 * /analytics percentiles. D1 holds the same bounds (`hist_bins`, a custom
 * migration made from BIN_LOWS; a test checks they agree), so a rollup can bin
 * a duration in SQL.
 */

const LINEAR = 10;
const GROWTH = 1.1;
const TOP_MS = 40 * 24 * 3_600_000;

function lows(): number[] {
  const out: number[] = [];
  for (let v = 0; v < LINEAR; v++) out.push(v);
  for (let k = 1; ; k++) {
    const lo = Math.ceil(LINEAR * GROWTH ** (k - 1));
    if (lo > TOP_MS) break;
    if (lo > out[out.length - 1]) out.push(lo);
  }
  return out;
}

/** Each bin's lowest value (ms), bin i = BIN_LOWS[i]. */
export const BIN_LOWS: readonly number[] = lows();

/** The bin a duration falls in (negative durations, e.g. a clock step, count as 0). */
export function binOf(ms: number): number {
  let lo = 0;
  let hi = BIN_LOWS.length - 1;
  const v = Math.max(0, ms);
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (BIN_LOWS[mid] <= v) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** What a bin stands for: its value when exact, else the middle of its range (the last bin: its low end). */
export function binValue(bin: number): number {
  const lo = BIN_LOWS[bin];
  const next = BIN_LOWS[bin + 1];
  if (next === undefined || next - lo === 1) return lo;
  return Math.round((lo + next - 1) / 2);
}

/** Adds `n` to a histogram's bin. */
export function addToBin(h: Map<number, number>, bin: number, n = 1): void {
  h.set(bin, (h.get(bin) ?? 0) + n);
}

/** The p50, p95 and p99 of a histogram, as /analytics and reports show them. */
export function spread(h: Map<number, number>): { p50: number | null; p95: number | null; p99: number | null } {
  const [p50, p95, p99] = percentiles(h, [50, 95, 99]);
  return { p50, p95, p99 };
}

/** Nearest-rank percentiles (p in 0–100) of a histogram (bin → count); null for an empty one. */
export function percentiles(counts: Map<number, number>, ps: number[]): (number | null)[] {
  const bins = [...counts.entries()].filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
  const total = bins.reduce((s, [, n]) => s + n, 0);
  return ps.map((p) => {
    if (total === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * total));
    let seen = 0;
    for (const [bin, n] of bins) {
      seen += n;
      if (seen >= rank) return binValue(bin);
    }
    return binValue(bins[bins.length - 1][0]);
  });
}
