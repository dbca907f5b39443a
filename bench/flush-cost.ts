// What "flush all" costs the store, through the daemon's own flusher (src/daemon/flush.ts, called in this
// process on afc's store for each kind): the time from the call to its return, and the commands the store
// served meanwhile (bench/plain-stores.ts says how they are counted). Its workflows come from a schema of
// their own, `afc_flush`, holding only `workflow_engine_workflow` rows (what enumeration reads), so the
// other measurements' data is untouched. Before each flush every workflow's entry is planted, and after it
// every one must be gone.
//   enumerate: Redis, memcached, Redis Cluster; for Redis with and without `unrelated` other keys
//              (DEBUG POPULATE) in the same database: enumeration must not depend on them.
//   scan:      Redis, with and without them: it walks every key.
// Baseline in the same run: a plain client deleting the same entries itself (no database read, no store
// code), and for the unrelated keys, the same flush without them. Medians of `rounds`, flush modes
// interleaved round by round.
import pg from 'pg';
import { createFlusher, type FlushMode } from '../src/daemon/flush.js';
import { createMemcachedStore } from '../src/store/memcached-store.js';
import { createRedisClusterStore } from '../src/store/redis-cluster-store.js';
import { createRedisStore } from '../src/store/redis-store.js';
import type { EvictionStore } from '../src/store/store.js';
import { renderSentrySchema } from '../src/sql/templates.js';
import { Redis } from 'ioredis';
import type { PlainStore } from './plain-stores.js';
import type { Node } from './servers.js';
import { median, ratio, round } from './stats.js';

export interface FlushCostOptions {
  url: string;
  /** A Redis of this measurement's own (DEBUG allowed), database 0. */
  redis: PlainStore;
  memcached: { store: PlainStore; nodes: Node[] };
  cluster: { store: PlainStore; nodes: Node[] };
  workflows: number;
  unrelated: number;
  rounds: number;
  log: (line: string) => void;
}

const SCHEMA = 'afc_flush';
const now = () => performance.now();

interface Sample {
  ms: number;
  commands: number;
}

/** Plants every entry, runs `work`, checks they are all gone. */
async function timed(store: PlainStore, prefix: string, workflows: number, work: () => Promise<void>): Promise<Sample> {
  const base = await store.items();
  await store.plant(prefix, workflows);
  const planted = (await store.items()) - base;
  if (planted !== workflows * store.itemsPerEntry) throw new Error(`${store.label}: ${planted} items planted for ${workflows} entries`);
  const c0 = await store.commands();
  const t0 = now();
  await work();
  const ms = now() - t0;
  const commands = (await store.commands()) - c0;
  const left = (await store.items()) - base;
  if (left !== 0) throw new Error(`${store.label}: ${left} items left after the flush`);
  return { ms, commands };
}

const summary = (samples: Sample[]) => ({ ms: round(median(samples.map((s) => s.ms)), 1), commands: median(samples.map((s) => s.commands)) });

export async function measureFlushCost(opts: FlushCostOptions): Promise<Record<string, number>> {
  const db = new pg.Client({ connectionString: opts.url });
  await db.connect();
  const source = { db: { url: opts.url, display: 'the bench database' }, schema: SCHEMA };
  const prefix = `afc-bench-flush:${process.pid}:`;
  const opened: EvictionStore[] = [];
  const out: Record<string, number> = { flush_workflows: opts.workflows, flush_unrelated_keys: opts.unrelated };
  const onError = (error: Error) => opts.log(`  store error: ${error.message}`);
  try {
    await db.query(renderSentrySchema(SCHEMA));
    await db.query(`INSERT INTO ${SCHEMA}.workflow_engine_workflow (id, name, organization_id) SELECT g, 'bench', 1 FROM generate_series(1, $1::int) g`, [opts.workflows]);
    await db.query(`ANALYZE ${SCHEMA}.workflow_engine_workflow`);

    // Each store as the daemon opens it, answering before anything is counted.
    const open = async (store: EvictionStore) => {
      opened.push(store);
      await store.ping();
      return store;
    };
    const redisStore = await open(createRedisStore({ url: opts.redis.cacheUrl, keyPrefix: prefix, onError }));
    const memcachedStore = await open(createMemcachedStore({ servers: opts.memcached.nodes, keyPrefixes: [prefix], onError }));
    const clusterStore = await open(createRedisClusterStore({ nodes: opts.cluster.nodes, keyPrefixes: [prefix], onError }));
    const flusher = (store: EvictionStore, mode: FlushMode) => createFlusher(store, mode, source);

    const runs: Array<{ name: string; store: PlainStore; work: () => Promise<void> }> = [
      { name: 'redis_enumerate', store: opts.redis, work: flusher(redisStore, 'enumerate') },
      { name: 'redis_scan', store: opts.redis, work: flusher(redisStore, 'scan') },
      { name: 'redis_plain_delete', store: opts.redis, work: () => opts.redis.plainDelete(prefix, opts.workflows) },
      { name: 'memcached_enumerate', store: opts.memcached.store, work: flusher(memcachedStore, 'enumerate') },
      { name: 'memcached_plain_delete', store: opts.memcached.store, work: () => opts.memcached.store.plainDelete(prefix, opts.workflows) },
      { name: 'redis_cluster_enumerate', store: opts.cluster.store, work: flusher(clusterStore, 'enumerate') },
      { name: 'redis_cluster_plain_delete', store: opts.cluster.store, work: () => opts.cluster.store.plainDelete(prefix, opts.workflows) },
    ];
    const samples = new Map<string, Sample[]>();
    const measure = async (name: string, store: PlainStore, work: () => Promise<void>) => {
      const sample = await timed(store, prefix, opts.workflows, work);
      samples.set(name, [...(samples.get(name) ?? []), sample]);
    };
    for (let r = 0; r < opts.rounds; r++) for (const run of runs) await measure(run.name, run.store, run.work);

    // The same Redis flushes with `unrelated` other keys present.
    const admin = new Redis(opts.redis.cacheUrl);
    try {
      await admin.call('DEBUG', 'POPULATE', String(opts.unrelated), `afc-bench-unrelated:${process.pid}`, '16');
      for (let r = 0; r < opts.rounds; r++) {
        for (const run of runs.slice(0, 3)) await measure(`${run.name}_with_unrelated`, run.store, run.work);
      }
    } finally {
      await admin.flushdb().catch(() => undefined);
      admin.disconnect();
    }

    const figures = new Map([...samples].map(([name, list]) => [name, summary(list)]));
    for (const [name, s] of figures) {
      out[`flush_${name}_ms`] = s.ms;
      if (!name.includes('plain_delete')) out[`flush_${name}_commands`] = s.commands;
    }
    const ms = (name: string) => figures.get(name)!.ms;
    for (const store of ['redis', 'memcached', 'redis_cluster']) out[`flush_${store}_enumerate_to_plain_delete_ratio`] = ratio(ms(`${store}_enumerate`), ms(`${store}_plain_delete`));
    out.flush_redis_enumerate_with_unrelated_to_without_ratio = ratio(ms('redis_enumerate_with_unrelated'), ms('redis_enumerate'));
    out.flush_redis_scan_with_unrelated_to_without_ratio = ratio(ms('redis_scan_with_unrelated'), ms('redis_scan'));
    out.flush_redis_scan_to_enumerate_with_unrelated_ratio = ratio(ms('redis_scan_with_unrelated'), ms('redis_enumerate_with_unrelated'));
    opts.log(
      `  ${opts.workflows} workflows: enumerate redis ${ms('redis_enumerate')} ms (${ms('redis_enumerate_with_unrelated')} ms with ${opts.unrelated} other keys), ` +
        `scan ${ms('redis_scan')} ms (${ms('redis_scan_with_unrelated')} ms), memcached ${ms('memcached_enumerate')} ms, cluster ${ms('redis_cluster_enumerate')} ms`,
    );
    return out;
  } finally {
    for (const store of opened.reverse()) await store.close();
    await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch(() => undefined);
    await db.end();
  }
}
