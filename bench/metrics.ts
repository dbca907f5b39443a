// The daemon's own counters, read from its --http /metrics (Prometheus text): each metric summed over its
// labels under its name (afc_flushes_total: every reason), and each labelled series under its full text
// (`afc_flushes_total{reason="connect",store="redis"}`), for the figures that must come from the daemon.
export async function readMetrics(hostPort: string): Promise<Record<string, number>> {
  const response = await fetch(`http://${hostPort}/metrics`);
  if (!response.ok) throw new Error(`GET /metrics on ${hostPort}: ${response.status}`);
  const totals: Record<string, number> = {};
  for (const m of (await response.text()).matchAll(/^(([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?) (\S+)$/gm)) {
    totals[m[2]] = (totals[m[2]] ?? 0) + Number(m[3]);
    if (m[1] !== m[2]) totals[m[1]] = Number(m[3]);
  }
  return totals;
}

/** The flush reasons that grew between two readings, e.g. `evict-overflow × 2`. */
export function flushReasons(before: Record<string, number>, after: Record<string, number>): string {
  return Object.keys(after)
    .filter((k) => k.startsWith('afc_flushes_total{') && after[k] > (before[k] ?? 0))
    .map((k) => `${/reason="([^"]*)"/.exec(k)?.[1] ?? k} × ${after[k] - (before[k] ?? 0)}`)
    .join(', ');
}
