// The read-through cache: what the loader returns, hits and misses, the stale-set guard (a reader paused
// between its database read and its fill while a writer commits), readFraction, and the audit.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { createActionFilterCache, createMemoryStore, createRedisStore, startDaemon, type MemoryStore, type RedisStore } from 'afc';
import { migrate } from '../src/migrate/migrator.js';
import { connect, createSentrySchema, createTestDatabase, type TestContext } from './helpers/pg.js';
import { plant } from './helpers/plant.js';
import { requireRedis } from './helpers/redis.js';
import { Sentry } from './helpers/sentry.js';
import { settle as settleDaemon } from './helpers/settle.js';
import { waitFor } from './helpers/wait.js';

const url = await createTestDatabase(t, 'cache');
const db = await connect(t, url);
await createSentrySchema(db);
await migrate(db, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });
const sentry = new Sentry(db);
const redisUrl = await requireRedis();

const prefixes = new WeakMap<object, string>();

async function storeOf(t: TestContext, kind: 'memory' | 'redis'): Promise<MemoryStore | RedisStore> {
  const prefix = `afc-test:cache:${randomUUID()}:`;
  const store = kind === 'memory' ? createMemoryStore({ keyPrefix: prefix }) : createRedisStore({ url: redisUrl, keyPrefix: prefix });
  prefixes.set(store, prefix);
  t.teardown(async () => {
    await store.scanFlush().catch(() => undefined);
    await store.close();
  });
  return store;
}

/** An entry written past the guard, as an unguarded reader would. */
const put = (store: MemoryStore | RedisStore, id: number, value: Parameters<typeof plant>[3]) => plant(store, prefixes.get(store)!, id, value);

t.test('the loader returns each workflow’s action filters with their conditions, [] for none, never the WHEN group', async (t) => {
  const none = await sentry.workflow([], 2);
  const one = await sentry.workflow([1], 1);
  const many = await sentry.workflow([3, 0, 2], 1);
  const cache = createActionFilterCache({ db: url, store: await storeOf(t, 'memory') });
  t.teardown(() => cache.close());
  const got = await cache.get([none.id, one.id, many.id]);
  t.same([...got.keys()], [none.id, one.id, many.id]);
  t.same(got.get(none.id), []);
  t.same(got.get(one.id), [
    { id: one.groups[0], logic_type: 'all', conditions: [{ id: one.conditions.get(one.groups[0])![0], type: 'eq', comparison: { value: 1 }, condition_result: true }] },
  ]);
  const m = got.get(many.id)!;
  t.same(m.map((f) => f.id), many.groups, 'every action filter, in id order');
  t.same(m.map((f) => f.conditions.map((c) => c.id)), many.groups.map((g) => many.conditions.get(g)), 'each with its conditions');
  t.notOk(m.some((f) => f.id === many.whenGroup), 'not the WHEN group');
  t.equal(cache.loader.queries, 1, 'one batched query for all three workflows');
});

for (const kind of ['memory', 'redis'] as const) {
  t.test(`${kind}: a miss loads and fills, the next get is a hit without a query`, async (t) => {
    const w = await sentry.workflow([2]);
    const store = await storeOf(t, kind);
    const cache = createActionFilterCache({ db: url, store });
    t.teardown(() => cache.close());
    const first = await cache.get([w.id]);
    t.same(cache.stats, { ...cache.stats, hits: 0, misses: 1, filled: 1 });
    const second = await cache.get([w.id]);
    t.same(second, first);
    t.equal(cache.stats.hits, 1);
    t.equal(cache.loader.queries, 1, 'the hit ran no query');
    t.same((await store.getMany([w.id])).get(w.id), first.get(w.id), 'the entry is plain JSON of the value');
  });

  t.test(`${kind}: concurrent misses of one workflow share one load`, async (t) => {
    const w = await sentry.workflow([1]);
    const cache = createActionFilterCache({ db: url, store: await storeOf(t, kind) });
    t.teardown(() => cache.close());
    const results = await Promise.all(Array.from({ length: 10 }, () => cache.get([w.id])));
    t.equal(cache.loader.queries, 1);
    t.ok(results.every((r) => JSON.stringify(r) === JSON.stringify(results[0])));
  });

  t.test(`${kind}: a fill that raced with a committed change is refused (no stale set)`, async (t) => {
    const store = await storeOf(t, kind);
    const daemon = await startDaemon({ db: url, store, heartbeatMs: 1000 });
    t.teardown(() => daemon.stop());
    const w = await sentry.workflow([1]);
    await settleDaemon(db, { fill: (id) => put(store, id, []), exists: async (id) => (await store.getMany([id])).has(id) });
    let paused: () => void = () => {};
    const reachedFill = new Promise<void>((r) => (paused = r));
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const cache = createActionFilterCache({
      db: url,
      store,
      beforeFill: async () => {
        paused();
        await gate;
      },
    });
    t.teardown(() => cache.close());
    const reading = cache.get([w.id]);
    await reachedFill; // the reader has the old rows in hand and has not filled yet
    const evictionsBefore = daemon.stats.evictions.dc;
    await db.query('UPDATE workflow_engine_datacondition SET comparison = $1 WHERE condition_group_id = $2', ['{"value": 2}', w.groups[0]]);
    await waitFor(() => daemon.stats.evictions.dc > evictionsBefore, 'the daemon applying the eviction');
    release();
    const old = await reading;
    t.same(old.get(w.id)![0].conditions[0].comparison, { value: 1 }, 'the paused reader returns what it read');
    t.equal(cache.stats.fillsRefused, 1, 'its fill was refused');
    t.notOk((await store.getMany([w.id])).has(w.id), 'the old value was not written');
    const fresh = await cache.get([w.id]);
    t.same(fresh.get(w.id)![0].conditions[0].comparison, { value: 2 }, 'the next read loads the new value');
  });

  t.test(`${kind}: a flush between lease and fill refuses the fill too`, async (t) => {
    const store = await storeOf(t, kind);
    const w = await sentry.workflow([1]);
    const cache = createActionFilterCache({ db: url, store, beforeFill: () => store.scanFlush() });
    t.teardown(() => cache.close());
    await cache.get([w.id]);
    t.equal(cache.stats.fillsRefused, 1);
    t.notOk((await store.getMany([w.id])).has(w.id));
  });
}

t.test('readFraction 0 reads the database every time and leaves the store alone; 1 serves hits', async (t) => {
  const w = await sentry.workflow([1]);
  const store = await storeOf(t, 'memory');
  const off = createActionFilterCache({ db: url, store, readFraction: 0 });
  t.teardown(() => off.close());
  for (let i = 0; i < 5; i++) await off.get([w.id]);
  t.equal(off.loader.queries, 5);
  t.equal(off.stats.bypassed, 5);
  t.notOk((await store.getMany([w.id])).has(w.id), 'nothing filled');
  const on = createActionFilterCache({ db: url, store, readFraction: 1 });
  t.teardown(() => on.close());
  for (let i = 0; i < 5; i++) await on.get([w.id]);
  t.equal(on.loader.queries, 1);
  t.equal(on.stats.hits, 4);
  t.throws(() => createActionFilterCache({ db: url, store, readFraction: 1.5 }), /readFraction must be within 0..1/);
});

t.test('the audit finds a planted mismatch and counts it healed once the daemon evicts it', async (t) => {
  const store = await storeOf(t, 'memory');
  const daemon = await startDaemon({ db: url, store });
  t.teardown(() => daemon.stop());
  const [planted, honest] = [await sentry.workflow([1]), await sentry.workflow([1])];
  await settleDaemon(db, { fill: (id) => put(store, id, []), exists: async (id) => (await store.getMany([id])).has(id) });
  const cache = createActionFilterCache({ db: url, store, auditRate: 1, auditRecheckMs: [400, 800] });
  t.teardown(() => cache.close());
  await cache.get([honest.id]);
  await put(store, planted.id, [{ id: 1, logic_type: 'wrong', conditions: [] }]);
  await cache.get([planted.id, honest.id]);
  await waitFor(() => cache.stats.audit.checked === 2, 'both hits audited');
  t.equal(cache.stats.audit.mismatches, 1, 'only the planted value differs');
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['any', planted.groups[0]]);
  await waitFor(() => cache.stats.audit.healedWithin1s === 1, 'the mismatch counted healed at the first re-check');
  t.equal(cache.stats.audit.unhealed, 0);
});

t.test('an audit mismatch nobody fixes is counted unhealed after the second re-check', async (t) => {
  const store = await storeOf(t, 'memory');
  const w = await sentry.workflow([1]);
  const cache = createActionFilterCache({ db: url, store, auditRate: 1, auditRecheckMs: [100, 200] });
  t.teardown(() => cache.close());
  await put(store, w.id, [{ id: 1, logic_type: 'wrong', conditions: [] }]);
  await cache.get([w.id]);
  await waitFor(() => cache.stats.audit.unhealed === 1, 'counted unhealed');
  t.equal(cache.stats.audit.healedWithin1s + cache.stats.audit.healedWithin10s, 0);
});

t.test('bad workflow ids are rejected', async (t) => {
  const cache = createActionFilterCache({ db: url, store: await storeOf(t, 'memory') });
  t.teardown(() => cache.close());
  await t.rejects(cache.get([0]), /workflow id 0 is not a positive integer/);
  await t.rejects(cache.get([1.5]), /not a positive integer/);
});
