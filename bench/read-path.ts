// The read path of the read-through cache, next to its baseline measured in the same run: a plain
// database read of the same action filters (`loader.load([id])`, what a reader without a cache does).
// For the memory store and for Redis: hit and miss latency (sequential, one call at a time, all paths
// interleaved round by round so drift hits each alike) and hit throughput with CONCURRENCY callers
// (alternating time slices per path). Every figure comes from the runs; the cache's own counters are
// checked afterwards so a "hit" figure can never silently be a miss or a store error served by the DB.
import pg from 'pg';
import { createActionFilterCache, type ActionFilterCache } from '../src/cache/action-filter-cache.js';
import { createLoader } from '../src/cache/loader.js';
import { createMemoryStore } from '../src/store/memory-store.js';
import { createRedisStore } from '../src/store/redis-store.js';
import type { ActionFilter, CacheStore } from '../src/store/store.js';
import { percentile, ratio, round } from './stats.js';

export interface ReadPathOptions {
  /** Database whose `schema` holds bench/data.sql with `workflows` workflows and afc's triggers. */
  url: string;
  schema: string;
  /** A Redis the bench owns; only keys under `afc-bench-read:<pid>:` are used, and all are deleted. */
  redisUrl: string;
  quick: boolean;
  workflows: number;
  log: (line: string) => void;
}

const CONCURRENCY = 8;
/** Groups per workflow in bench/data.sql: every answer is checked against it. */
const GROUPS_PER_WORKFLOW = 2;

interface Plan {
  /** Sequential rounds (one sample of each of the 5 paths per round), at most. */
  rounds: number;
  /** ...and at most this long in total. */
  sequentialMs: number;
  warmupCalls: number;
  /** Throughput: this many slices of `sliceMs` per path, alternating paths. */
  slices: number;
  sliceMs: number;
}

const PLANS: Record<'quick' | 'full', Plan> = {
  quick: { rounds: 3000, sequentialMs: 2500, warmupCalls: 200, slices: 2, sliceMs: 350 },
  full: { rounds: 20_000, sequentialMs: 14_000, warmupCalls: 500, slices: 5, sliceMs: 1000 },
};

const now = () => Number(process.hrtime.bigint()) / 1e6;
const pick = (ids: readonly number[]) => ids[Math.floor(Math.random() * ids.length)];

type Read = (id: number) => Promise<Map<number, ActionFilter[]>>;

/** A wrong answer would make every figure meaningless: each one is checked (outside the timed span). */
function check(what: string, id: number, result: Map<number, ActionFilter[]>): void {
  const groups = result.get(id);
  if (groups?.length !== GROUPS_PER_WORKFLOW) {
    throw new Error(`${what}: workflow ${id} came back with ${groups?.length ?? 'no'} action filters, expected ${GROUPS_PER_WORKFLOW}`);
  }
}

/** Completed calls per second with CONCURRENCY callers, each one call at a time, until `ms` has passed. */
async function burst(what: string, read: Read, ids: readonly number[], ms: number): Promise<{ calls: number; elapsedMs: number }> {
  let calls = 0;
  const t0 = now();
  const end = t0 + ms;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (now() < end) {
        const id = pick(ids);
        check(what, id, await read(id));
        calls++;
      }
    }),
  );
  return { calls, elapsedMs: now() - t0 };
}

interface Side {
  name: 'memory' | 'redis';
  store: CacheStore;
  cache: ActionFilterCache;
  /** get() calls that must have been hits / misses, to compare with the cache's own counters. */
  expectHits: number;
  expectMisses: number;
}

export async function measureReadPath(opts: ReadPathOptions): Promise<Record<string, number>> {
  const plan = PLANS[opts.quick ? 'quick' : 'full'];
  const prefix = `afc-bench-read:${process.pid}:`;
  // Hits come from the first half of the workflows (kept cached), misses from the second half (evicted
  // before each timed call), so a miss never turns a hit id into a miss or the reverse.
  const half = Math.floor(opts.workflows / 2);
  if (half < 10) throw new RangeError(`read path bench needs at least 20 workflows, got ${opts.workflows}`);
  const hitIds = Array.from({ length: Math.min(half, 5000) }, (_, i) => i + 1);
  const missIds = Array.from({ length: opts.workflows - half }, (_, i) => half + i + 1);

  // Cleanup in reverse order of setup, every step attempted, the first failure reported after the rest.
  const releasers: Array<() => Promise<void>> = [];
  const release = async () => {
    let first: unknown;
    for (const r of releasers.reverse()) {
      try {
        await r();
      } catch (error) {
        first ??= error;
        opts.log(`read path: cleanup step failed: ${String(error)}`);
      }
    }
    if (first !== undefined) throw new Error('read path bench cleanup failed', { cause: first });
  };

  let result: Record<string, number>;
  try {
    const pool = new pg.Pool({ connectionString: opts.url, max: CONCURRENCY, application_name: 'afc-bench-read' });
    pool.on('error', (error) => opts.log(`read path: idle pg client error: ${error.message}`));
    // pool.end() resolves before its clients' sockets have closed (pg-pool 3.14 _remove does not wait for
    // client.end), so wait for each 'remove' too: a caller may drop the database right after we return.
    let openClients = 0;
    pool.on('connect', () => openClients++);
    pool.on('remove', () => openClients--);
    releasers.push(async () => {
      await pool.end();
      const deadline = now() + 2000;
      while (openClients > 0 && now() < deadline) await new Promise((r) => setTimeout(r, 5));
    });
    const loader = createLoader(pool, opts.schema);

    const memoryStore = createMemoryStore({ keyPrefix: prefix });
    releasers.push(async () => memoryStore.cache.close());
    let redisErrors = 0;
    const redisStore = createRedisStore({
      url: opts.redisUrl,
      keyPrefix: prefix,
      onError: (error) => {
        if (redisErrors++ === 0) opts.log(`read path: redis error: ${error.message}`);
      },
    });
    releasers.push(() => redisStore.close());
    // The cache writes entries (and placeholders in them) only, and scanFlush removes exactly those under our prefix.
    releasers.push(() => redisStore.scanFlush());
    try {
      await redisStore.ping();
    } catch (error) {
      throw new Error(`read path bench: redis at ${new URL(opts.redisUrl).host} does not answer`, { cause: error });
    }

    const sides: Side[] = [];
    for (const [name, store] of [['memory', memoryStore], ['redis', redisStore]] as const) {
      const cache = createActionFilterCache({ db: pool, schema: opts.schema, store });
      releasers.push(() => cache.close());
      sides.push({ name, store, cache, expectHits: 0, expectMisses: 0 });
    }
    const [memory, redis] = sides;

    // Fill the hit set of both stores through the cache itself (batched misses), then check it is all there.
    for (const side of sides) {
      for (let i = 0; i < hitIds.length; i += 500) {
        const batch = hitIds.slice(i, i + 500);
        await side.cache.get(batch);
        side.expectMisses += batch.length;
      }
      const cached = await side.store.getMany(hitIds);
      if (cached.size !== hitIds.length) throw new Error(`${side.name}: only ${cached.size} of ${hitIds.length} workflows cached after the fill`);
    }
    opts.log(`read path: ${hitIds.length} workflows cached in each store, misses drawn from ${missIds.length} others`);

    const db: Read = (id) => loader.load([id]);
    const hit = (side: Side): Read => async (id) => {
      side.expectHits++;
      return side.cache.get([id]);
    };
    let missCursor = 0;
    const nextMissId = () => missIds[missCursor++ % missIds.length];

    interface Path {
      key: string;
      /** Untimed preparation; returns the id to read. */
      prepare: () => Promise<number>;
      read: Read;
      samples: number[];
    }
    const missPath = (side: Side): Path => ({
      key: `${side.name}_miss`,
      prepare: async () => {
        const id = nextMissId();
        await side.store.evict([id]);
        side.expectMisses++;
        return id;
      },
      read: (id) => side.cache.get([id]),
      samples: [],
    });
    const paths: Path[] = [
      { key: 'db', prepare: async () => pick(hitIds), read: db, samples: [] },
      { key: 'memory_hit', prepare: async () => pick(hitIds), read: hit(memory), samples: [] },
      missPath(memory),
      { key: 'redis_hit', prepare: async () => pick(hitIds), read: hit(redis), samples: [] },
      missPath(redis),
    ];

    // Warm-up: JIT, pool connections, Redis connection, PostgreSQL plan and buffer caches.
    opts.log(`read path: warm-up (${plan.warmupCalls} calls per path, then a short burst each)`);
    for (let i = 0; i < plan.warmupCalls; i++) {
      for (const p of paths) {
        const id = await p.prepare();
        check(p.key, id, await p.read(id));
      }
    }
    const throughputPaths: Array<[string, Read]> = [
      ['db', db],
      ['memory_hit', hit(memory)],
      ['redis_hit', hit(redis)],
    ];
    for (const [key, read] of throughputPaths) await burst(key, read, hitIds, 150);

    // Sequential latency: one sample of each path per round, the order rotating every round.
    const seqStart = now();
    let rounds = 0;
    while (rounds < plan.rounds && now() - seqStart < plan.sequentialMs) {
      for (let k = 0; k < paths.length; k++) {
        const p = paths[(rounds + k) % paths.length];
        const id = await p.prepare();
        const t0 = now();
        const value = await p.read(id);
        p.samples.push(now() - t0);
        check(p.key, id, value);
      }
      rounds++;
    }
    opts.log(`read path: ${rounds} sequential samples per path in ${((now() - seqStart) / 1000).toFixed(1)} s`);

    // Throughput: alternating slices, the order rotating every slice round.
    const totals = new Map(throughputPaths.map(([key]) => [key, { calls: 0, elapsedMs: 0 }]));
    for (let s = 0; s < plan.slices; s++) {
      for (let k = 0; k < throughputPaths.length; k++) {
        const [key, read] = throughputPaths[(s + k) % throughputPaths.length];
        const { calls, elapsedMs } = await burst(key, read, hitIds, plan.sliceMs);
        const t = totals.get(key)!;
        t.calls += calls;
        t.elapsedMs += elapsedMs;
      }
    }
    const perSecond = (key: string) => {
      const t = totals.get(key)!;
      return t.calls / (t.elapsedMs / 1000);
    };

    // The cache's own counters must agree with what each call was meant to be.
    for (const side of sides) {
      const { hits, misses, bypassed, filled, fillsRefused, storeErrors } = side.cache.stats;
      if (storeErrors > 0 || fillsRefused > 0 || bypassed > 0 || hits !== side.expectHits || misses !== side.expectMisses || filled !== misses) {
        throw new Error(
          `${side.name}: cache counters disagree with the bench (hits ${hits}/${side.expectHits}, misses ${misses}/${side.expectMisses}, ` +
            `filled ${filled}, refused ${fillsRefused}, bypassed ${bypassed}, store errors ${storeErrors})`,
        );
      }
      opts.log(`read path: ${side.name} cache counters ok (hits ${hits}, misses ${misses}, filled ${filled})`);
    }

    const sorted = new Map(paths.map((p) => [p.key, [...p.samples].sort((a, b) => a - b)]));
    const p = (key: string, q: number) => percentile(sorted.get(key)!, q);
    result = {
      read_db_p50_ms: round(p('db', 50)),
      read_db_p99_ms: round(p('db', 99)),
      read_db_per_s: Math.round(perSecond('db')),
      read_memory_hit_p50_ms: round(p('memory_hit', 50)),
      read_memory_hit_p99_ms: round(p('memory_hit', 99)),
      read_memory_miss_p50_ms: round(p('memory_miss', 50)),
      read_memory_miss_p99_ms: round(p('memory_miss', 99)),
      read_memory_hit_per_s: Math.round(perSecond('memory_hit')),
      read_redis_hit_p50_ms: round(p('redis_hit', 50)),
      read_redis_hit_p99_ms: round(p('redis_hit', 99)),
      read_redis_miss_p50_ms: round(p('redis_miss', 50)),
      read_redis_miss_p99_ms: round(p('redis_miss', 99)),
      read_redis_hit_per_s: Math.round(perSecond('redis_hit')),
      read_memory_hit_per_s_to_db_ratio: ratio(perSecond('memory_hit'), perSecond('db')),
      read_redis_hit_per_s_to_db_ratio: ratio(perSecond('redis_hit'), perSecond('db')),
      read_memory_miss_p50_to_db_ratio: ratio(p('memory_miss', 50), p('db', 50)),
      read_redis_miss_p50_to_db_ratio: ratio(p('redis_miss', 50), p('db', 50)),
    };
  } catch (error) {
    await release().catch(() => undefined);
    throw error;
  }
  await release();
  return result;
}
