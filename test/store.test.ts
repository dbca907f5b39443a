// The two cache stores behind one interface: an eviction or a flush removes exactly the contract's keys
// (design.md §3) and nothing else, in both; the Redis store fails fast while Redis is away, never takes
// the process down, and tells the daemon when Redis is back so it can flush.
import t from 'tap';
import NodeCache from 'node-cache';
import { Redis } from 'ioredis';
import { cacheKey, KEY_STEM } from '../src/contract.js';
import { UsageError } from '../src/errors.js';
import { freePort } from '../src/embedded/embedded-server.js';
import { createMemoryStore } from '../src/store/memory-store.js';
import { createRedisStore, type RedisStore } from '../src/store/redis-store.js';
import { parseCacheOption } from '../src/store/cache-url.js';
import { plant } from './helpers/plant.js';
import type { CacheStore } from '../src/store/store.js';
import type { TestContext } from './helpers/pg.js';
import { startPrivateRedis } from './helpers/private-redis.js';
import { requireRedis, testKeyPrefix } from './helpers/redis.js';
import { waitFor } from './helpers/wait.js';

const url = await requireRedis();
const base = await testKeyPrefix(t, 'store');
const raw = new Redis(url);
raw.on('error', () => undefined);
t.teardown(() => raw.quit());

/** A store plus direct access to what it stores, so assertions never go through the code under test. */
interface Harness {
  store: CacheStore & { scanFlush(): Promise<void> };
  put(keys: string[]): Promise<void>;
  /** The subset of `keys` that exist. */
  present(keys: string[]): Promise<string[]>;
}

const ids = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
const chunks = <T>(items: T[], size = 1000) => ids(0, Math.ceil(items.length / size)).map((i) => items.slice(i * size, (i + 1) * size));

function harness(t: TestContext, kind: 'memory' | 'redis', keyPrefix: string): Harness {
  if (kind === 'memory') {
    // The worker's own node-cache, holding keys of its own beside afc's.
    const cache = new NodeCache({ useClones: false });
    const store = createMemoryStore({ keyPrefix, cache });
    return {
      store,
      put: async (keys) => void cache.mset(keys.map((key) => ({ key, val: [] }))),
      present: async (keys) => keys.filter((k) => cache.has(k)),
    };
  }
  const store = createRedisStore({ url, keyPrefix });
  t.teardown(() => store.close());
  return {
    store,
    put: async (keys) => {
      for (const part of chunks(keys)) await raw.mset(...part.flatMap((k) => [k, '[]']));
    },
    present: async (keys) => {
      const found: string[] = [];
      for (const part of chunks(keys)) (await raw.mget(...part)).forEach((v, i) => v !== null && found.push(part[i]));
      return found;
    },
  };
}

/** Keys a store must never touch: same prefix but not an entry, the stem under a shorter prefix, a near-miss stem. */
function bystanders(keyPrefix: string): string[] {
  return [
    `${base}other:key`,
    `${keyPrefix}other:key`,
    `${base}${KEY_STEM}1`,
    `${keyPrefix}${KEY_STEM.slice(0, -1)}_x:1`,
    `${keyPrefix}x${KEY_STEM}1`,
  ];
}

/** Fills `ids` under `leases` and returns the ids the store refused (their lease was removed meanwhile). */
async function fillRefused(store: CacheStore, leases: Map<number, string>, ids: number[]): Promise<number[]> {
  const refused = await store.fill(leases, new Map(ids.map((id) => [id, []])), 60);
  return refused.sort((a, b) => a - b);
}

/** How a promise settled, or 'pending' if it had not within `ms`: a store must never leave the daemon hanging. */
async function settledWithin(ms: number, promise: Promise<unknown>): Promise<{ state: 'fulfilled' | 'rejected' | 'pending'; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ state: 'pending' }>((resolve) => (timer = setTimeout(() => resolve({ state: 'pending' }), ms)));
  const outcome = promise.then(
    () => ({ state: 'fulfilled' as const }),
    (error: unknown) => ({ state: 'rejected' as const, error }),
  );
  try {
    return await Promise.race([outcome, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

for (const kind of ['memory', 'redis'] as const) {
  t.test(`${kind}: evict removes exactly the named workflows' entries and leases, and nothing else`, async (t) => {
    const prefix = `${base}${kind}-evict:`;
    const h = harness(t, kind, prefix);
    const entries = ids(1, 10).map((id) => cacheKey(prefix, id));
    const others = bystanders(prefix);
    await h.put([...entries, ...others]);
    // Leases are taken on missing entries only (a reader that missed).
    const leases = await h.store.lease([12, 14], 10_000);
    t.same([...leases.keys()], [12, 14]);
    await h.store.evict([2, 3, 5, 12, 999]);
    t.same(await h.present(entries), entries.filter((_, i) => ![1, 2, 4].includes(i)), 'only workflows 2, 3 and 5 are gone');
    t.same(await fillRefused(h.store, leases, [12, 14]), [12], 'the fill lease of an evicted workflow goes with it, the other still holds');
    t.same(await h.present(others), others, 'unrelated keys are untouched');
    await h.store.evict([]);
  });

  t.test(`${kind}: flushAll removes every afc entry under the prefix (5000 of them) and nothing else`, async (t) => {
    const prefix = `${base}${kind}-flush:`;
    const h = harness(t, kind, prefix);
    const entries = ids(1, 5000).map((id) => cacheKey(prefix, id));
    const others = [...bystanders(prefix), cacheKey(`${base}${kind}-flush-other:`, 1)];
    await h.put([...entries, ...others]);
    const leases = await h.store.lease([5007], 10_000);
    await h.store.scanFlush();
    t.same(await h.present(entries), [], 'every entry is gone');
    t.same(await fillRefused(h.store, leases, [5007]), [5007], 'leases are gone too: a fill that started before the flush is refused');
    t.same(await h.present(others), others, 'keys of other prefixes and non-entries are untouched');
    await h.store.scanFlush();
  });

  t.test(`${kind}: a key prefix with glob characters is matched literally`, async (t) => {
    const prefix = `${base}${kind}-pre*fix[1]?\\:`;
    const h = harness(t, kind, prefix);
    const mine = ids(1, 3).map((id) => cacheKey(prefix, id));
    // Each would match the prefix read as a glob pattern.
    const lookalikes = [`${base}${kind}-preXYfix1Z\\:`, `${base}${kind}-prefix1Z\\:`, `${base}${kind}-pre*fix[1]?:`].map((p) => cacheKey(p, 1));
    await h.put([...mine, ...lookalikes]);
    await h.store.evict([1]);
    t.same(await h.present(mine), mine.slice(1));
    await h.store.scanFlush();
    t.same(await h.present(mine), []);
    t.same(await h.present(lookalikes), lookalikes, 'keys the unescaped pattern would match are untouched');
  });

  t.test(`${kind}: evicting 2500 workflows at once removes every one of them`, async (t) => {
    const prefix = `${base}${kind}-bulk:`;
    const h = harness(t, kind, prefix);
    const entries = ids(1, 2600).map((id) => cacheKey(prefix, id));
    await h.put(entries);
    await h.store.evict(ids(1, 2500));
    t.same(await h.present(entries), entries.slice(2500), 'exactly the 100 not named are left');
  });
}

t.test('the memory store uses the node-cache it is given, and one it makes does not clone values', async (t) => {
  const shared = new NodeCache();
  const given = createMemoryStore({ keyPrefix: '', cache: shared });
  t.equal(given.cache, shared, 'a worker can share its own cache');
  shared.set('session:42', 'kept');
  shared.set(cacheKey('', 1), []);
  await given.scanFlush();
  t.equal(shared.get('session:42'), 'kept', "flushAll leaves the worker's own keys");
  t.notOk(shared.has(cacheKey('', 1)));
  const made = createMemoryStore({ keyPrefix: ':1:' });
  t.equal(made.cache.options.useClones, false);
  const value = [{ id: 1, logic_type: 'any', conditions: [] }];
  await plant(made, ':1:', 7, value);
  t.equal((await made.getMany([7])).get(7), value, 'the same object back, not a copy');
  await made.ping();
  await made.close();
  await made.close();
});

t.test('the Redis store sends a big eviction as pipelined UNLINKs of at most batchSize keys', async (t) => {
  const server = await startPrivateRedis(t);
  const store = createRedisStore({ url: server.url, keyPrefix: 'p:', batchSize: 1000 });
  t.teardown(() => store.close());
  const admin = new Redis(server.url);
  admin.on('error', () => undefined);
  t.teardown(() => admin.disconnect());
  const calls = async (command: string) => Number(/calls=(\d+)/.exec((await admin.info('commandstats')).split('\n').find((l) => l.startsWith(`cmdstat_${command}:`)) ?? '')?.[1] ?? 0);
  await admin.mset(...ids(1, 2500).flatMap((id) => [cacheKey('p:', id), '[]']), 'other:key', 'kept');
  const before = await calls('unlink');
  await store.evict(ids(1, 2500));
  t.equal((await calls('unlink')) - before, 3, '2500 entries in 3 UNLINKs of at most 1000');
  t.equal(await admin.dbsize(), 1, 'only the unrelated key is left');
  await admin.mset(...ids(1, 5000).flatMap((id) => [cacheKey('p:', id), '[]']));
  const scans = await calls('scan');
  await store.scanFlush();
  t.ok((await calls('scan')) - scans > 2, 'scanFlush walks the keyspace with SCAN, not KEYS');
  t.same(await admin.keys('*'), ['other:key']);
});

t.test('the Redis store while its Redis is down and after it comes back', async (t) => {
  const server = await startPrivateRedis(t);
  const errors: Error[] = [];
  let reconnects = 0;
  const store: RedisStore = createRedisStore({ url: server.url, keyPrefix: 'p:', onError: (e) => errors.push(e) });
  t.teardown(() => store.close());
  store.onRecovered(() => reconnects++);
  await store.ping();
  const admin = new Redis(server.url, { retryStrategy: () => 50 });
  admin.on('error', () => undefined);
  t.teardown(() => admin.disconnect());

  await t.test('with Redis stopped, evict, scanFlush and ping reject promptly and nothing crashes', async (t) => {
    await server.stop();
    // Straight after the stop, before the client may even have noticed: nothing must wait for a reconnect.
    for (const [name, op] of [
      ['evict', () => store.evict([1, 2])],
      ['scanFlush', () => store.scanFlush()],
      ['ping', () => store.ping()],
    ] as const) {
      const outcome = await settledWithin(3000, op());
      t.equal(outcome.state, 'rejected', `${name} rejects`);
      t.type(outcome.error, Error);
    }
    await waitFor(() => errors.length > 0, 'the connection error reported through onError');
    t.equal(reconnects, 0, 'not reconnected while Redis is down');
  });

  await t.test('after Redis starts again, onRecovered fires and evict works again', async (t) => {
    await server.start();
    await waitFor(() => reconnects === 1, 'onRecovered called', 15_000);
    await waitFor(async () => (await admin.ping().catch(() => '')) === 'PONG', 'test client reconnected');
    await admin.mset(cacheKey('p:', 1), '[]', cacheKey('p:', 2), '[]');
    await store.evict([1]);
    t.same(await admin.keys('p:*'), [cacheKey('p:', 2)]);
    await store.ping();
  });

  await t.test('close is idempotent, and stops reconnecting even while Redis is down', async (t) => {
    await server.stop();
    await waitFor(() => store.client.status !== 'ready', 'the client noticed');
    t.equal((await settledWithin(3000, store.close())).state, 'fulfilled');
    t.equal((await settledWithin(3000, store.close())).state, 'fulfilled', 'a second close is a no-op');
    await t.rejects(store.evict([1]), 'a closed store refuses work');
    await server.start();
    await waitFor(async () => (await admin.ping().catch(() => '')) === 'PONG', 'Redis answers again');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    t.equal(reconnects, 1, 'the closed store did not reconnect once Redis was back');
    t.not(store.client.status, 'ready');
  });
});

t.test('a Redis store whose Redis never answers rejects after a bounded wait, then closes', async (t) => {
  const port = await freePort();
  const errors: Error[] = [];
  const store = createRedisStore({ url: `redis://127.0.0.1:${port}/0`, keyPrefix: 'p:', onError: (e) => errors.push(e) });
  const outcome = await settledWithin(8000, store.evict([1]));
  t.equal(outcome.state, 'rejected');
  t.ok(errors.some((e) => /ECONNREFUSED/.test(e.message)), 'connection refusals go to onError, not to an uncaught error');
  await store.close();
  let attempts = 0;
  store.client.on('connecting', () => attempts++);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(attempts, 0, 'no connection attempt after close (its retry would have come within 1.5 s)');
  await t.rejects(store.evict([1]), 'a closed store refuses work');
});

t.test('a Redis store on a healthy server closes cleanly, twice', async (t) => {
  const store = createRedisStore({ url, keyPrefix: `${base}close:` });
  await store.ping();
  await store.close();
  await store.close();
  t.equal(store.client.status, 'end');
});

t.test('parseCacheOption accepts every supported cache URL and rejects the rest with how to fix it', async (t) => {
  t.same(parseCacheOption('memory'), { kind: 'memory' });
  t.same(parseCacheOption('redis://127.0.0.1:6379/2'), { kind: 'redis', url: 'redis://127.0.0.1:6379/2', display: 'redis://127.0.0.1:6379/2' });
  t.same(parseCacheOption('redis://localhost'), { kind: 'redis', url: 'redis://localhost', display: 'redis://localhost' });
  t.same(parseCacheOption('redis://h:6379/'), { kind: 'redis', url: 'redis://h:6379/', display: 'redis://h:6379/' });
  t.same(parseCacheOption('rediss://h:6380/1'), { kind: 'redis', url: 'rediss://h:6380/1', display: 'rediss://h:6380/1' }, 'TLS');
  const withPassword = parseCacheOption('redis://u:secret@h:1/0');
  t.same(withPassword, { kind: 'redis', url: 'redis://u:secret@h:1/0', display: 'redis://u:***@h:1/0' }, 'an ACL user: the URL keeps the password, display masks it');
  t.match(parseCacheOption('redis://:secret@h:1/0'), { display: 'redis://:***@h:1/0' }, 'a password without a user is masked too');
  t.same(parseCacheOption('redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]'), {
    kind: 'redis-cluster',
    nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }, { host: '::1', port: 6379 }],
    tls: false,
    username: undefined,
    password: undefined,
    display: 'redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]',
  });
  t.match(parseCacheOption('rediss+cluster://afc:s%40cret@h1:7000,h2:7000'), { kind: 'redis-cluster', tls: true, username: 'afc', password: 's@cret', display: 'rediss+cluster://afc:***@h1:7000,h2:7000' });
  t.same(parseCacheOption('memcached://m1:11211,m2'), {
    kind: 'memcached',
    servers: [{ host: 'm1', port: 11211 }, { host: 'm2', port: 11211 }],
    username: undefined,
    password: undefined,
    display: 'memcached://m1:11211,m2',
  });

  const usage = "use 'memory', 'redis://[user:pass@]host:port[/db]', 'rediss://…', 'redis+cluster://host:port[,host:port…]' or 'memcached://host:port[,host:port…]'";
  const bad = [
    'foo://x', 'redis://', 'redis:h', 'redis://h:notaport', 'redis://h:0', 'redis://h:65536', 'redis://h:1/x', 'redis://h:1/-1', 'redis://h:1/0/1',
    'redis://h:1/0?tls=true', 'Memory', '', 'localhost:6379', 'memcache://h', 'memcached://', 'memcached://h:1,', 'memcached://h:99999',
    'memcached://h:1/0', 'redis+cluster://h:1/2', 'redis+cluster://h:x', 'redis+sentinel://h:1',
  ];
  for (const value of bad) {
    let error: unknown;
    try {
      parseCacheOption(value);
    } catch (e) {
      error = e;
    }
    t.type(error, UsageError, `${JSON.stringify(value)} is rejected`);
    t.ok((error as Error).message.startsWith(`unsupported cache URL '${value}': ${usage}`), (error as Error).message);
    t.equal((error as UsageError).exitCode, 2);
  }
  for (const leaky of ['redis://u:secret@h:notaport/0', 'redis://u:sec@ret@h:x', 'foo://u:secret@h/0', 'memcached://u:secret@h:x', 'redis+cluster://u:secret@h:1/3']) {
    t.throws(() => parseCacheOption(leaky), UsageError);
    try {
      parseCacheOption(leaky);
    } catch (e) {
      t.notMatch((e as Error).message, /secret|sec@ret|ret@/, 'no password in the message, even for an unparseable URL');
      t.match((e as Error).message, /:\*\*\*@h/);
    }
  }
});
