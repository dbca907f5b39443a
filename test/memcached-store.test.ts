// The memcached store against real private memcached nodes: an eviction reaches every node of the pool
// (placement is unknowable) and nothing else; a failed node is set aside instead of being waited for, probed,
// and announced through onRecovered when it answers again; read-through leases live in the entry key and a
// fill is a compare-and-set against the lease, on one node chosen by rendezvous hashing.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cacheKey, KEY_STEM } from '../src/contract.js';
import { freePort } from '../src/embedded/embedded-server.js';
import { createActionFilterCache } from '../src/cache/action-filter-cache.js';
import { UsageError } from '../src/errors.js';
import { createMemcachedStore, placeNode, type MemcachedStore, type MemcachedStoreOptions } from '../src/store/memcached-store.js';
import type { ActionFilter } from '../src/store/store.js';
import { connect, createSentrySchema, createTestDatabase, type TestContext } from './helpers/pg.js';
import { rawClient, saslUnavailable, startLaggyProxy, startPrivateMemcached, type PrivateMemcached, type RawClient } from './helpers/private-memcached.js';
import { Sentry } from './helpers/sentry.js';
import { waitFor } from './helpers/wait.js';

// Long enough that a loaded CI machine (both cores busy with other test files) does not pass for a hung node.
const TIMEOUT_MS = 1500;
const ids = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
const key = (id: number, prefix = ':1:') => cacheKey(prefix, id);
const filters = (id: number): ActionFilter[] => [{ id, logic_type: 'any', conditions: [{ id: id * 10, type: 'eq', comparison: { value: 1 }, condition_result: true }] }];

interface Harness {
  store: MemcachedStore;
  errors: Error[];
  recoveries(): number;
}

function storeOn(t: TestContext, nodes: ReadonlyArray<{ host: string; port: number }>, options: Partial<MemcachedStoreOptions> = {}): Harness {
  const errors: Error[] = [];
  let recoveries = 0;
  const store = createMemcachedStore({
    servers: nodes.map(({ host, port }) => ({ host, port })),
    keyPrefixes: [':1:'],
    timeoutMs: TIMEOUT_MS,
    retryMaxMs: 200,
    onError: (e) => errors.push(e),
    ...options,
  });
  store.onRecovered(() => recoveries++);
  t.teardown(() => store.close());
  return { store, errors, recoveries: () => recoveries };
}

const twoNodes = (t: TestContext) => Promise.all([startPrivateMemcached(t), startPrivateMemcached(t)]);

/** How `promise` settled within `limitMs`, and when: a store must never leave the daemon hanging. */
async function within(limitMs: number, promise: Promise<unknown>): Promise<{ state: 'fulfilled' | 'rejected' | 'pending'; ms: number; error?: unknown }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<{ state: 'pending' }>((resolve) => (timer = setTimeout(() => resolve({ state: 'pending' }), limitMs)));
  const outcome = promise.then(
    () => ({ state: 'fulfilled' as const }),
    (error: unknown) => ({ state: 'rejected' as const, error }),
  );
  try {
    return { ...(await Promise.race([outcome, pending])), ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** The raw client of the node a read-through key lives on, and of the other one. */
function placement(t: TestContext, nodes: PrivateMemcached[]) {
  const raws = new Map(nodes.map((n) => [n.name, rawClient(t, n.port)]));
  const names = nodes.map((n) => n.name);
  return {
    on: (id: number): RawClient => raws.get(placeNode(key(id), names))!,
    off: (id: number): RawClient => raws.get(names.find((n) => n !== placeNode(key(id), names))!)!,
  };
}

t.test("evict removes the named workflows' entries under every key prefix on every node, and nothing else", async (t) => {
  const nodes = await twoNodes(t);
  const { store } = storeOn(t, nodes, { keyPrefixes: [':1:', 'sentry:'] });
  const entries = ids(1, 10).flatMap((id) => [key(id), key(id, 'sentry:')]);
  // Another prefix, non-entries under ours, the stem under no prefix, near-miss stems, ids that extend ours.
  const bystanders = [key(2, ':2:'), ':1:other:key', `:1:${KEY_STEM.slice(0, -1)}_x:2`, `:1:x${KEY_STEM}2`, `${KEY_STEM}2`, key(22), key(20, 'sentry:')];
  const planted = [...entries, ...bystanders];
  for (const n of nodes) await rawClient(t, n.port).setMany(planted, '[]');
  await store.evict([2, 3, 5, 999]);
  const evicted = [2, 3, 5].flatMap((id) => [key(id), key(id, 'sentry:')]);
  for (const n of nodes) {
    t.same(await n.keys(), planted.filter((k) => !evicted.includes(k)).sort(), `${n.name} lost exactly workflows 2, 3 and 5, under both prefixes`);
  }
  await store.evict([]);
});

t.test('a 20,000-id evict removes all of them on both nodes, pipelined: across a 25 ms link it costs a few round trips, not 20,000', async (t) => {
  const nodes = await twoNodes(t);
  const links = await Promise.all(nodes.map((n) => startLaggyProxy(t, n.port, 25)));
  const { store } = storeOn(t, links, { timeoutMs: 2000 });
  const planted = ids(1, 20_100).map((id) => key(id));
  await Promise.all(nodes.map((n) => rawClient(t, n.port).setMany(planted, '[]')));
  const evict = await within(3000, store.evict(ids(1, 20_000)));
  t.equal(evict.state, 'fulfilled', `resolved in ${evict.ms} ms (one request at a time would take 20,000 × 50 ms)`);
  for (const n of nodes) t.same(await n.keys(), planted.slice(20_000).sort(), `${n.name} keeps only the 100 not named`);
});

t.test('flushing by enumeration: evicting a page of ids 1..10000 removes exactly those, under every prefix', async (t) => {
  const nodes = await twoNodes(t);
  const { store } = storeOn(t, nodes, { keyPrefixes: [':1:', 'b:'] });
  const page = ids(1, 10_000);
  const beyond = [key(10_001), key(10_001, 'b:'), key(0), key(1, ':2:'), ':1:other:key'];
  const planted = [...page.flatMap((id) => [key(id), key(id, 'b:')]), ...beyond];
  await Promise.all(nodes.map((n) => rawClient(t, n.port).setMany(planted, '[]')));
  const evict = await within(3000, store.evict(page));
  t.equal(evict.state, 'fulfilled', `a 10,000-id page in ${evict.ms} ms (tens of thousands of evictions a second)`);
  for (const n of nodes) t.same(await n.keys(), beyond.sort(), `${n.name} keeps only what the page does not name`);
});

t.test('a node that hangs costs one timeout, not one per call: the live node applies every eviction, and onRecovered fires when it answers again', async (t) => {
  const [a, b] = await twoNodes(t);
  const { store, errors, recoveries } = storeOn(t, [a, b]);
  const rawA = rawClient(t, a.port);
  const rawB = rawClient(t, b.port);
  await store.ping();
  // Both of the store's connections are up and answering before one node hangs.
  await rawB.setMany([key(3)], '[]');
  await store.evict([3]);
  t.notOk(await rawB.has(key(3)), 'both nodes answer before the hang');
  await rawA.setMany([key(1), key(2)], '[]');
  b.pause();
  t.teardown(() => b.resume());
  const first = await within(2 * TIMEOUT_MS, store.evict([1]));
  t.equal(first.state, 'fulfilled', 'the first evict resolves within 2 × timeoutMs');
  t.ok(first.ms >= TIMEOUT_MS - 50, `after waiting for the hung node about timeoutMs (${first.ms} ms)`);
  t.notOk(await rawA.has(key(1)), 'and was applied on the live node');
  t.match(errors[0]?.message, new RegExp(`memcached ${b.name}: no reply within ${TIMEOUT_MS} ms`), 'onError names the node and why');
  const second = await within(TIMEOUT_MS / 2, store.evict([2]));
  t.equal(second.state, 'fulfilled', `the next evict skips the hung node (${second.ms} ms)`);
  t.notOk(await rawA.has(key(2)));
  t.equal(recoveries(), 0, 'no recovery while it hangs');
  b.resume();
  await waitFor(() => recoveries() === 1, 'onRecovered once the node answers again');
  await rawB.set(key(3), '[]');
  await store.evict([3]);
  t.notOk(await rawB.has(key(3)), 'evictions reach the node again');
});

t.test('a node killed mid-test: evict applies on the live node at once, onRecovered fires when it is back, and the flush that follows leaves no stale entry', async (t) => {
  const [a, b] = await twoNodes(t);
  const { store, errors, recoveries } = storeOn(t, [a, b]);
  const rawA = rawClient(t, a.port);
  const rawB = rawClient(t, b.port);
  await store.ping();
  await rawA.setMany(ids(1, 5).map((id) => key(id)), '[]');
  await b.stop();

  const evict = await within(2 * TIMEOUT_MS, store.evict([1, 2]));
  t.equal(evict.state, 'fulfilled', `evict resolved in ${evict.ms} ms`);
  t.same(await a.keys(), ids(3, 3).map((id) => key(id)), 'applied on the live node');
  t.ok(errors.some((e) => e.message.startsWith(`memcached ${b.name}:`)), 'the dead node is reported through onError');
  await store.ping();
  t.pass('ping resolves while one node answers');

  await b.start();
  // What the node holds when it comes back: the entries whose evictions it missed.
  await rawB.setMany(ids(1, 5).map((id) => key(id)), '[]');
  await waitFor(() => recoveries() === 1, 'onRecovered once the node is back');
  await store.evict(ids(1, 5)); // the daemon's flush by enumeration
  t.same(await b.keys(), [], 'no stale entry is left on the node that was away');
  t.same(await a.keys(), []);

  await Promise.all([a.stop(), b.stop()]);
  await t.rejects(store.evict([1]), { message: new RegExp(`applied on no memcached node: .*${a.name}.*${b.name}`) }, 'with every node down evict rejects, naming them');
  await t.rejects(store.ping(), { message: new RegExp(`no memcached node answers \\(${a.name}, ${b.name} down\\)`) }, 'and ping rejects, naming them');
  const error = await store.evict([1]).catch((e: Error) => e);
  t.type((error as Error).cause, Error, 'the rejection keeps its cause');
  t.ok(await rawA.get(key(1)).then(() => false, () => true), 'the raw client agrees: nothing answers');
});

t.test('read-through: a lease is a placeholder in the entry key, and a fill writes only while that placeholder is still there', async (t) => {
  const nodes = await twoNodes(t);
  const node = placement(t, nodes);
  const { store } = storeOn(t, nodes, { keyPrefixes: [':1:', 'other:'] });
  const other = storeOn(t, nodes).store; // another reader (another worker process)
  const fill = (s: MemcachedStore, leases: Map<number, string>, ...fillIds: number[]) => s.fill(leases, new Map(fillIds.map((id) => [id, filters(id)])), 60);

  await t.test('lease, then fill: the value is written', async (t) => {
    const leases = await store.lease([1], 10_000);
    t.ok(leases.has(1));
    t.match(await node.on(1).get(key(1)), /^afc-lease:/, 'the placeholder is in the entry key');
    t.notOk(await node.off(1).has(key(1)), 'on one node only');
    t.same(await fill(store, leases, 1), []);
    t.same(JSON.parse((await node.on(1).get(key(1)))!), filters(1));
    t.same((await other.getMany([1])).get(1), filters(1));
  });

  await t.test('a second lease on a leased (or filled) key is refused', async (t) => {
    const first = await store.lease([2], 10_000);
    t.ok(first.has(2));
    t.same([...(await other.lease([2, 1], 10_000)).keys()], [], 'neither the leased nor the filled key');
    t.same(await fill(store, first, 2), [], 'the holder still fills');
  });

  await t.test('lease, evict, fill: the fill is refused and writes nothing', async (t) => {
    const leases = await store.lease([3], 10_000);
    await store.evict([3]);
    t.same(await fill(store, leases, 3), [3]);
    t.notOk(await node.on(3).has(key(3)));
  });

  await t.test('lease, the key deleted and leased again by another reader: the first fill is refused, the second written', async (t) => {
    const stale = await store.lease([4], 10_000);
    await node.on(4).delete(key(4));
    const fresh = await other.lease([4], 10_000);
    t.ok(fresh.has(4));
    t.same(await store.fill(stale, new Map([[4, [] as ActionFilter[]]]), 60), [4], 'the first reader is refused');
    t.match(await node.on(4).get(key(4)), /^afc-lease:/, "the other reader's placeholder is intact");
    t.same(await fill(other, fresh, 4), []);
    t.same(JSON.parse((await node.on(4).get(key(4)))!), filters(4));
  });

  await t.test('a fill without a lease, or with a token this store did not hand out, is refused', async (t) => {
    await node.on(5).set(key(5), 'afc-lease:abc');
    t.same(await fill(store, new Map([[5, 'abc']]), 5, 6), [5, 6]);
    t.equal(await node.on(5).get(key(5)), 'afc-lease:abc');
    t.notOk(await node.on(6).has(key(6)));
  });

  await t.test('getMany: placeholders, garbage, non-lists, keys on the other node and other prefixes are misses; entries are hits', async (t) => {
    await node.on(10).set(key(10), JSON.stringify(filters(10)));
    await node.on(11).set(key(11), 'afc-lease:someone');
    await node.on(12).set(key(12), 'not json {');
    await node.on(13).set(key(13), '{"id":13}');
    await node.off(14).set(key(14), '[]');
    await node.on(15).set(key(15, 'other:'), '[]');
    await node.on(16).set(key(16), '[]');
    const found = await store.getMany(ids(10, 8));
    t.same([...found.keys()].sort((x, y) => x - y), [10, 16]);
    t.same(found.get(10), filters(10));
    t.same(found.get(16), []);
  });

  await t.test('a lease expires after its ttl, so a reader that died does not block fills for good', async (t) => {
    t.ok((await store.lease([20], 1000)).has(20));
    await waitFor(async () => !(await node.on(20).has(key(20))), 'the placeholder expired', 4000, 100);
    t.ok((await other.lease([20], 1000)).has(20));
  });
});

t.test('read-through placement is rendezvous hashing of the key over host:port: the same node for every instance, whatever the order of servers', async (t) => {
  const [a, b] = await twoNodes(t);
  const names = [a.name, b.name];
  const weight = (name: string, k: string) => createHash('sha1').update(`${name}\n${k}`).digest();
  for (const id of ids(1, 20)) {
    const documented = Buffer.compare(weight(a.name, key(id)), weight(b.name, key(id))) > 0 ? a.name : b.name;
    t.equal(placeNode(key(id), names), documented, `workflow ${id}: the greater SHA-1 of "<host:port>\\n<key>" wins`);
    t.equal(placeNode(key(id), [b.name, a.name]), documented);
  }
  const node = placement(t, [a, b]);
  const first = storeOn(t, [a, b]).store;
  const second = storeOn(t, [b, a]).store;
  const some = ids(1, 40);
  const leases = await first.lease(some, 10_000);
  for (const id of some) {
    if (!(await node.on(id).has(key(id))) || (await node.off(id).has(key(id)))) t.fail(`workflow ${id} is not on placeNode's node only`);
  }
  const onA = some.filter((id) => placeNode(key(id), names) === a.name).length;
  t.ok(onA > 0 && onA < some.length, `keys spread over both nodes (${onA} of ${some.length} on the first)`);
  t.same(await first.fill(leases, new Map(some.map((id) => [id, filters(id)])), 60), []);
  const read = await second.getMany(some);
  t.equal(read.size, some.length, 'an instance listing the servers in another order reads every entry');
});

t.test('read-through on a node that is down rejects (the caller reads the database); keys on the live node still work', async (t) => {
  const [a, b] = await twoNodes(t);
  const { store } = storeOn(t, [a, b]);
  const onB = ids(1, 100).find((id) => placeNode(key(id), [a.name, b.name]) === b.name)!;
  const onA = ids(1, 100).find((id) => placeNode(key(id), [a.name, b.name]) === a.name)!;
  const leases = await store.lease([onA, onB], 10_000);
  await b.stop();
  await t.rejects(store.fill(leases, new Map([[onB, []]]), 60), { message: new RegExp(b.name) }, 'fill');
  await t.rejects(store.getMany([onA, onB]), { message: new RegExp(`memcached ${b.name} is down`) }, 'getMany');
  await t.rejects(store.lease([onB], 10_000), { message: new RegExp(b.name) }, 'lease');
  t.same(await store.fill(leases, new Map([[onA, []]]), 60), []);
  t.same((await store.getMany([onA])).get(onA), []);
});

t.test('a key prefix memcached cannot hold is refused at creation with a UsageError naming it', async (t) => {
  const servers = [{ host: '127.0.0.1', port: 11211 }];
  const longest = 'p'.repeat(250 - KEY_STEM.length - String(Number.MAX_SAFE_INTEGER).length);
  for (const bad of ['a b:', 'tab\t', 'line\n', 'nul\u0000', `${longest}p`]) {
    let error: unknown;
    try {
      createMemcachedStore({ servers, keyPrefixes: [':1:', bad] });
    } catch (e) {
      error = e;
    }
    t.type(error, UsageError, `${JSON.stringify(bad)} is refused`);
    t.ok((error as Error).message.startsWith(`invalid keyPrefix ${JSON.stringify(bad)}: `), (error as Error).message);
  }
  t.throws(() => createMemcachedStore({ servers, keyPrefixes: [] }), UsageError, 'no prefix at all');
  const fine = createMemcachedStore({ servers, keyPrefixes: [longest, ':1:'] });
  t.equal(fine.kind, 'memcached', 'the longest prefix whose keys fit in 250 bytes is accepted');
  t.equal(fine.scanFlush, undefined, 'no scanFlush: memcached cannot list keys, the daemon flushes by enumeration');
  await fine.close();
});

t.test('close is idempotent, every method rejects afterwards, and nothing keeps the process alive', async (t) => {
  const live = await startPrivateMemcached(t);
  const dead = await freePort();
  const { store, errors } = storeOn(t, [live, { host: '127.0.0.1', port: dead }]);
  await store.evict([1]);
  t.ok(errors.some((e) => /ECONNREFUSED/.test(e.message) && e.message.includes(`127.0.0.1:${dead}`)), 'a refused connection is reported, never thrown');
  await store.close();
  await store.close();
  for (const [name, call] of [
    ['evict', () => store.evict([1])],
    ['ping', () => store.ping()],
    ['getMany', () => store.getMany([1])],
    ['lease', () => store.lease([1], 1000)],
    ['fill', () => store.fill(new Map(), new Map(), 60)],
  ] as const) {
    await t.rejects(call() as Promise<unknown>, { message: 'memcached store is closed' }, name);
  }

  // In a process of its own: with one node answering and one being probed, close must let it exit.
  const code = `
    const { createMemcachedStore } = await import(${JSON.stringify(new URL('../src/store/memcached-store.ts', import.meta.url).href)});
    const store = createMemcachedStore({ servers: [{ host: '127.0.0.1', port: ${live.port} }, { host: '127.0.0.1', port: ${dead} }], keyPrefixes: [':1:'], timeoutMs: 300, retryMaxMs: 100 });
    await store.evict([1]);
    await store.lease([1, 2, 3], 1000).catch(() => undefined); // rejects for keys placed on the dead node
    await new Promise((r) => setTimeout(r, 300));
    await store.close();
    const closedAt = Date.now();
    process.on('exit', () => console.log('exited ' + (Date.now() - closedAt) + ' ms after close'));`;
  const child = spawn(process.execPath, ['--import=@tapjs/typescript/import', '--input-type=module', '-e', code], { cwd: new URL('..', import.meta.url), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
  t.equal(await exit, 0, output);
  clearTimeout(deadline);
  const after = Number(/exited (\d+) ms after close/.exec(output)?.[1] ?? NaN);
  t.ok(after < 500, `the process exited on its own ${after} ms after close`);
});

const noSasl = saslUnavailable();
t.test('SASL: with the right credentials every operation works; with wrong or none the node is reported down, not crashed', { skip: noSasl ? `no SASL-enabled memcached here: ${noSasl}` : false }, async (t) => {
  const credentials = { username: 'afc', password: 's3cret' };
  const node = await startPrivateMemcached(t, { sasl: credentials });
  const raw = rawClient(t, node.port, credentials);
  const { store } = storeOn(t, [node], credentials);
  await raw.setMany([key(1), key(2)], '[]');
  await store.ping();
  await store.evict([1]);
  t.notOk(await raw.has(key(1)), 'evict applied');
  t.ok(await raw.has(key(2)));
  const leases = await store.lease([3], 10_000);
  t.same(await store.fill(leases, new Map([[3, filters(3)]]), 60), []);
  t.same((await store.getMany([2, 3])).get(3), filters(3), 'lease, fill and getMany');
  for (const [what, options] of [
    ['a wrong password', { username: 'afc', password: 'wrong' }],
    ['no credentials', {}],
  ] as const) {
    const other = storeOn(t, [node], options);
    await t.rejects(other.store.ping(), { message: /authentication/i }, `${what}: ping rejects`);
    t.match(other.errors[0]?.message, new RegExp(`memcached ${node.name}: .*authentication`, 'i'), `${what}: reported through onError`);
  }
});

t.test('through the read-through cache: a miss is loaded and filled on memcached, then hit; an eviction during the database read refuses the fill', async (t) => {
  const url = await createTestDatabase(t, 'memcached_store');
  const db = await connect(t, url);
  await createSentrySchema(db);
  const sentry = new Sentry(db);
  const nodes = await twoNodes(t);
  const node = placement(t, nodes);
  const { store } = storeOn(t, nodes);

  const w = await sentry.workflow([2, 1]);
  const cache = createActionFilterCache({ db: url, store });
  t.teardown(() => cache.close());
  const first = await cache.get([w.id]);
  t.match(cache.stats, { hits: 0, misses: 1, filled: 1, fillsRefused: 0, storeErrors: 0 });
  t.same(JSON.parse((await node.on(w.id).get(key(w.id)))!), first.get(w.id), 'the entry is the JSON of what the database said');
  t.same(await cache.get([w.id]), first);
  t.equal(cache.stats.hits, 1);
  t.equal(cache.loader.queries, 1, 'the hit ran no query');

  const raced = await sentry.workflow([1]);
  // The daemon's eviction lands between this reader's database read and its fill.
  const racing = createActionFilterCache({ db: url, store, beforeFill: (ids) => store.evict(ids) });
  t.teardown(() => racing.close());
  await racing.get([raced.id]);
  t.match(racing.stats, { filled: 0, fillsRefused: 1, storeErrors: 0 });
  t.notOk(await node.on(raced.id).has(key(raced.id)), 'nothing was cached: the next reader goes to the database');
});
