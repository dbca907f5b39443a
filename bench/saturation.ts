// How fast the daemon evicts when notifications arrive faster than it can apply them: one transaction
// NOTIFYs evictions of `keys` workflows (1000 ids per payload, signed with the schema's key as the
// triggers sign them) and the clock runs from its COMMIT until the last of those entries is gone (the
// store's own item count back where it was before planting, polled back to back: one round trip of
// resolution). Baseline in the same run: the same entries deleted by a plain client sending the deletes
// the store sends (bench/plain-stores.ts: pipelined UNLINKs of 1000 keys for Redis, the same delete frames
// to every memcached node, UNLINKs grouped by hash slot for a cluster).
// The daemon runs on a schema of its own, `afc_sat` (afc installed, its own key, a workflow row for every id
// notified): should the daemon fall so far behind that its pending evictions overflow into a flush (see
// src/daemon/evictor.ts), that flush enumerates every planted entry too, so the run still ends; the
// `_saturation_flushes` figure then says the time includes one.
import pg from 'pg';
import { DEFAULT_CHANNEL } from '../src/contract.js';
import { freePort } from '../src/embedded/embedded-server.js';
import { migrate } from '../src/migrate/migrator.js';
import { renderSentrySchema } from '../src/sql/templates.js';
import { startDaemonProcess, type Child } from './children.js';
import { flushReasons, readMetrics } from './metrics.js';
import type { PlainStore } from './plain-stores.js';
import { rssMb } from './proc-stats.js';
import { median, ratio } from './stats.js';
import { readSigningKey, signed } from './signing.js';

export interface SaturationOptions {
  url: string;
  /** The store, holding nothing else that changes while this runs. */
  store: PlainStore;
  keys: number;
  rounds: number;
  /** After the last round, wait this long idle and read the daemon's RSS again (0: skip). */
  settleMs: number;
  log: (line: string) => void;
}

const IDS_PER_PAYLOAD = 1000;
const now = () => performance.now();

async function untilGone(store: PlainStore, base: number, since: number): Promise<number> {
  while ((await store.items()) > base) {
    if (now() - since > 120_000) throw new Error(`${store.label}: entries still present 120 s after the commit`);
  }
  return now() - since;
}

/** Plants the entries and checks the store holds all of them (none lost to memory pressure). */
async function plant(store: PlainStore, prefix: string, keys: number, base: number): Promise<void> {
  await store.plant(prefix, keys);
  const items = await store.items();
  if (items !== base + keys * store.itemsPerEntry) throw new Error(`${store.label}: ${items - base} items after planting ${keys} entries (× ${store.itemsPerEntry})`);
}

const SCHEMA = 'afc_sat';

/** Creates (or grows) the saturation schema: Sentry's tables, `workflows` workflow rows, afc migrated. */
async function saturationSchema(db: pg.Client, workflows: number): Promise<void> {
  const { rows } = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${SCHEMA}.workflow_engine_workflow`]);
  if (rows[0].t === null) await db.query(renderSentrySchema(SCHEMA));
  await db.query(`INSERT INTO ${SCHEMA}.workflow_engine_workflow (id, name, organization_id) SELECT g, 'bench', 1 FROM generate_series(1, $1::int) g ON CONFLICT DO NOTHING`, [workflows]);
  await migrate(db, { schema: SCHEMA, dryRun: false, lockTimeoutMs: 5000 });
}

/**
 * Result keys, for store label L: evict_L_saturation_per_s, L_plain_client_per_s (Redis keeps its
 * original name, redis_unlink_plain_client_per_s), evict_L_saturation_to_plain_client_ratio,
 * evict_L_saturation_flushes (flushes the daemon did meanwhile: 0, or the figure timed a flush); for
 * Redis also the daemon's RSS right after (and settleMs later), for the others evict_L_saturation_daemon_rss_mb.
 */
export async function measureSaturation(opts: SaturationOptions): Promise<Record<string, number>> {
  const { store } = opts;
  const prefix = `afc-bench-sat:${process.pid}:`;
  const db = new pg.Client({ connectionString: opts.url });
  await db.connect();
  let key: Buffer;
  try {
    await saturationSchema(db, opts.keys);
    key = await readSigningKey(db, SCHEMA);
  } catch (error) {
    await db.end();
    throw error;
  }
  const baseline: number[] = [];
  const daemonRuns: number[] = [];
  const out: Record<string, number> = {};
  let daemon: Child | undefined;
  try {
    const http = `127.0.0.1:${await freePort()}`;
    daemon = await startDaemonProcess(['--db', opts.url, '--schema', SCHEMA, '--cache', store.cacheUrl, '--key-prefix', prefix, '--http', http]);
    const metrics0 = await readMetrics(http);
    for (let r = 0; r < opts.rounds; r++) {
      const base = await store.items();
      await plant(store, prefix, opts.keys, base);
      const t0 = now();
      await store.plainDelete(prefix, opts.keys);
      baseline.push(opts.keys / ((await untilGone(store, base, t0)) / 1000));

      await plant(store, prefix, opts.keys, base);
      // A fresh ts each round: the same payload twice would be a replay, which the daemon rightly drops.
      const ts = Date.now() + r / 10;
      const payloads: string[] = [];
      for (let from = 1; from <= opts.keys; from += IDS_PER_PAYLOAD) {
        const ids = Array.from({ length: Math.min(IDS_PER_PAYLOAD, opts.keys - from + 1) }, (_, i) => from + i);
        payloads.push(signed(key, { op: 'evict', src: 'dc', ts, ids }));
      }
      await db.query('BEGIN');
      await db.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [DEFAULT_CHANNEL, payloads]);
      const t1 = now();
      await db.query('COMMIT');
      daemonRuns.push(opts.keys / ((await untilGone(store, base, t1)) / 1000));
      opts.log(`  ${store.label} saturation round ${r + 1}/${opts.rounds}: daemon ${Math.round(daemonRuns.at(-1)!)} evictions/s, plain client ${Math.round(baseline.at(-1)!)} entries/s`);
    }
    const metrics1 = await readMetrics(http);
    const flushes = metrics1.afc_flushes_total - metrics0.afc_flushes_total;
    if (flushes > 0) opts.log(`  ${store.label} saturation: the daemon flushed meanwhile (${flushReasons(metrics0, metrics1)}): those rounds' times include a flush`);
    out[`evict_${store.label}_saturation_flushes`] = flushes;
    if (store.label === 'redis') {
      out.daemon_rss_after_saturation_mb = await rssMb(daemon.pid);
      if (opts.settleMs > 0) {
        // V8 gives a burst's heap growth back once the process has been idle a while; show that it does.
        await new Promise((resolve) => setTimeout(resolve, opts.settleMs));
        out.daemon_rss_settled_after_saturation_mb = await rssMb(daemon.pid);
      }
    } else {
      out[`evict_${store.label}_saturation_daemon_rss_mb`] = await rssMb(daemon.pid);
    }
  } finally {
    await daemon?.stop();
    await db.end();
  }
  const plainKey = store.label === 'redis' ? 'redis_unlink_plain_client_per_s' : `${store.label}_plain_client_per_s`;
  return {
    [`evict_${store.label}_saturation_per_s`]: Math.round(median(daemonRuns)),
    [plainKey]: Math.round(median(baseline)),
    [`evict_${store.label}_saturation_to_plain_client_ratio`]: ratio(median(daemonRuns), median(baseline)),
    ...out,
  };
}
