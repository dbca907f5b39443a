// Summaries of timing samples, with the key names results use: `<name>_p50_ms`, `_p99_ms`, `_p999_ms`, `_max_ms`.

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 50);

/** Rounds to `digits` decimals (results keep 3 for ms, 2 for ratios). */
export const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

export function summarize(name: string, values: number[], percentiles: number[] = [50, 99]): Record<string, number> {
  const sorted = [...values].sort((a, b) => a - b);
  const out: Record<string, number> = {};
  for (const p of percentiles) out[`${name}_p${String(p).replace('.', '')}_ms`] = round(percentile(sorted, p));
  out[`${name}_max_ms`] = round(sorted.length > 0 ? sorted[sorted.length - 1] : Number.NaN);
  return out;
}

/** a / b with 2 decimals: every figure is also given as a ratio to a baseline measured in the same run. */
export const ratio = (a: number, b: number) => round(a / b, 2);
