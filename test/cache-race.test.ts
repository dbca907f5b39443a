// Randomized race: concurrent readers through the read-through cache and concurrent writers changing
// conditions, groups and links, with the daemon evicting, for at least 100,000 operations per store.
// Once writes stop and the daemon has caught up, no cached entry may differ from the database.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createActionFilterCache, createMemoryStore, createRedisStore, startDaemon, type MemoryStore, type RedisStore } from 'afc';
import { migrate } from '../src/migrate/migrator.js';
import { connect, createSentrySchema, createTestDatabase } from './helpers/pg.js';
import { plant } from './helpers/plant.js';
import { requireRedis } from './helpers/redis.js';
import { Sentry, type WorkflowRows } from './helpers/sentry.js';
import { settle } from './helpers/settle.js';

const OPERATIONS = 100_000;
const url = await createTestDatabase(t, 'cache_race');
const db = await connect(t, url);
await createSentrySchema(db);
await migrate(db, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });
const sentry = new Sentry(db);
const workflows: WorkflowRows[] = [];
for (let i = 0; i < 10; i++) workflows.push(await sentry.workflow([2, 2]));
const groups = workflows.flatMap((w) => w.groups);
const conditions = workflows.flatMap((w) => w.groups.flatMap((g) => w.conditions.get(g)!));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)];

const WRITES = [
  (c: pg.Client) => c.query('UPDATE workflow_engine_datacondition SET comparison = $1 WHERE id = $2', [JSON.stringify({ value: Math.random() }), pick(conditions)]),
  (c: pg.Client) => c.query('UPDATE workflow_engine_datacondition SET condition_group_id = $1 WHERE id = $2', [pick(groups), pick(conditions)]),
  (c: pg.Client) => c.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', [pick(['any', 'all', 'none']), pick(groups)]),
  (c: pg.Client) => c.query('UPDATE workflow_engine_workflowdataconditiongroup SET workflow_id = $1 WHERE condition_group_id = $2', [pick(workflows).id, pick(groups)]),
];

async function race(t: Test, store: MemoryStore | RedisStore, prefix: string) {
  const daemon = await startDaemon({ db: url, store });
  t.teardown(() => daemon.stop());
  // Slow readers: a random pause between the database read and the fill widens the race window.
  const cache = createActionFilterCache({
    db: url,
    store,
    ttlSeconds: 3600,
    beforeFill: () => new Promise((r) => setTimeout(r, Math.random() * 5)),
  });
  t.teardown(() => cache.close());
  const writers = await Promise.all([1, 2].map(() => connect(t, url)));
  let ops = 0;
  let writes = 0;
  const ids = workflows.map((w) => w.id);
  await Promise.all([
    ...Array.from({ length: 6 }, async () => {
      while (ops < OPERATIONS) {
        await cache.get([pick(ids), pick(ids)]);
        ops++;
        // A hit never touches I/O: yield so the writers and the daemon get their turn.
        await new Promise((r) => setImmediate(r));
      }
    }),
    ...writers.map(async (c) => {
      while (ops < OPERATIONS) {
        await pick(WRITES)(c);
        ops++;
        writes++;
      }
    }),
  ]);
  // Writes have stopped: once the daemon has applied every eviction, the store must agree with the database.
  await settle(db, { fill: (id) => plant(store, prefix, id, []), exists: async (id) => (await store.getMany([id])).has(id) });
  const cached = await store.getMany(ids);
  const truth = await cache.loader.load(ids);
  const wrong = [...cached].filter(([id, value]) => JSON.stringify(value) !== JSON.stringify(truth.get(id)));
  t.ok(ops >= OPERATIONS, `${ops} operations (${writes} writes)`);
  t.ok(cache.stats.misses > 1000 && cache.stats.filled > 1000, `the race was exercised: ${cache.stats.misses} misses, ${cache.stats.filled} fills, ${cache.stats.fillsRefused} refused`);
  t.same(wrong.map(([id]) => id), [], `no cached entry differs from the database (${cached.size} cached)`);
}

t.test('memory store: no stale entry after 100,000 concurrent reads and writes', async (t) => {
  await race(t, createMemoryStore({ keyPrefix: '' }), '');
});

t.test('redis store: no stale entry after 100,000 concurrent reads and writes', async (t) => {
  const prefix = `afc-test:race:${randomUUID()}:`;
  const store = createRedisStore({ url: await requireRedis(), keyPrefix: prefix });
  t.teardown(async () => {
    await store.scanFlush();
    await store.close();
  });
  await race(t, store, prefix);
});
