// The Redis Cluster store against real clusters of the test's own: an eviction removes exactly the contract's
// keys on whichever master holds them, never with a CROSSSLOT error; the lease lives in the entry key, so an
// eviction or a flush between a reader's lease and its fill refuses the fill; a master failover that can have
// lost acknowledged evictions is reported through onRecovered; a cluster that is down makes every call
// reject promptly, and close never hangs. What is (or is not) stored is always read from the nodes directly,
// never through the store under test.
import t from 'tap';
import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { cacheKey, KEY_STEM } from '../src/contract.js';
import { freePort } from '../src/embedded/embedded-server.js';
import { createRedisClusterStore, type RedisClusterStore, type RedisClusterStoreOptions } from '../src/store/redis-cluster-store.js';
import { LEASE_PLACEHOLDER } from '../src/store/store.js';
import type { TestContext } from './helpers/pg.js';
import { startRedisCluster, type RedisClusterHandle } from './helpers/redis-cluster.js';
import { sleep, waitFor } from './helpers/wait.js';

const ids = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
const value = (id: number) => [{ id, logic_type: 'any', conditions: [{ id: id * 10, type: 'eq', comparison: id, condition_result: true }] }];

function openStore(t: TestContext, cluster: RedisClusterHandle, options: Partial<RedisClusterStoreOptions> = {}): RedisClusterStore {
  const store = createRedisClusterStore({ nodes: cluster.nodes, keyPrefixes: ['afc:'], onError: () => undefined, ...options });
  t.teardown(() => store.close());
  return store;
}

/** A plain ioredis Cluster client of the test's own, to plant keys. */
function rawClient(t: TestContext, cluster: RedisClusterHandle): Cluster {
  const raw = new Cluster(cluster.nodes);
  raw.on('error', () => undefined);
  t.teardown(() => raw.disconnect());
  return raw;
}

/** Plants `keys` (value `[]` unless given), one MSET per hash slot. */
async function plant(raw: Cluster, keys: string[], valueOf: (key: string) => string = () => '[]'): Promise<void> {
  const bySlot = new Map<number, string[]>();
  for (const key of keys) bySlot.set(calculateSlot(key), [...(bySlot.get(calculateSlot(key)) ?? []), key]);
  await Promise.all([...bySlot.values()].map((group) => raw.mset(...group.flatMap((k) => [k, valueOf(k)]))));
}

/** Every key on each live master, read node by node with KEYS (test-sized keyspaces only). */
async function keysByMaster(cluster: RedisClusterHandle): Promise<Map<number, Set<string>>> {
  const byMaster = new Map<number, Set<string>>();
  for (const port of await cluster.masters()) byMaster.set(port, new Set((await cluster.call(port, 'KEYS', '*')) as string[]));
  return byMaster;
}

/** The subset of `keys` that exist on some master, in the order given. */
async function present(cluster: RedisClusterHandle, keys: string[]): Promise<string[]> {
  const all = new Set([...(await keysByMaster(cluster)).values()].flatMap((set) => [...set]));
  return keys.filter((k) => all.has(k));
}

/** How long a promise took to settle (at most `limitMs`: then `pending`), and how. */
async function timed(promise: Promise<unknown>, limitMs = 8000): Promise<{ ms: number; error?: unknown; pending?: true }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), limitMs)));
  try {
    if ((await Promise.race([promise, limit])) === 'pending') return { ms: Date.now() - started, pending: true };
    return { ms: Date.now() - started };
  } catch (error) {
    return { ms: Date.now() - started, error: error ?? new Error('rejected without a reason') };
  } finally {
    clearTimeout(timer);
    promise.catch(() => undefined);
  }
}

const shared = await startRedisCluster(t, { masters: 3 });
const sharedRaw = rawClient(t, shared);

t.test('evict removes exactly the named entries under every prefix, on every master, and nothing else', async (t) => {
  const prefixes = ['ev:a:', ':1:ev:'];
  const store = openStore(t, shared, { keyPrefixes: prefixes });
  const entries = (id: number) => prefixes.map((p) => cacheKey(p, id));
  const planted = ids(1, 300).flatMap(entries);
  const bystanders = [
    cacheKey('ev:other:', 1),
    'ev:a:other:key',
    `ev:${KEY_STEM}1`,
    `ev:a:${KEY_STEM.slice(0, -1)}_x:1`,
    `ev:a:x${KEY_STEM}1`,
    `${cacheKey('ev:a:', 7)}:tail`,
    `${cacheKey('ev:a:', 7)}0000`,
  ];
  await plant(sharedRaw, [...planted, ...bystanders]);
  const masters = await keysByMaster(shared);
  t.equal(masters.size, 3);
  for (const [port, keys] of masters) t.ok(planted.some((k) => keys.has(k)), `master ${port} holds some of the entries`);

  const named = ids(1, 300).filter((id) => id % 3 === 0);
  await store.evict([...named, 999_999]);
  const gone = new Set(named.flatMap(entries));
  t.same(await present(shared, planted), planted.filter((k) => !gone.has(k)), 'exactly the named workflows are gone, under both prefixes');
  t.same(await present(shared, bystanders), bystanders, 'other prefixes, non-entries and near-miss stems are untouched');
  for (const [port, keys] of await keysByMaster(shared)) t.notOk([...gone].some((k) => keys.has(k)), `no named entry is left on master ${port}`);
  await store.evict([]);
});

t.test('a 20,000-workflow eviction removes every one, slot by slot, never CROSSSLOT', async (t) => {
  const store = openStore(t, shared, { keyPrefixes: ['bulk:'] });
  const planted = ids(1, 20_100).map((id) => cacheKey('bulk:', id));
  await plant(sharedRaw, planted);
  await store.ping(); // connected to every master, so what is timed is the eviction alone
  const { ms, error } = await timed(store.evict(ids(1, 20_000)));
  t.equal(error, undefined, 'one call, keys of ~11,000 slots, no CROSSSLOT error');
  t.comment(`evicted 20,000 keys in ${ms} ms (${Math.round(20_000 / (ms / 1000))} keys/s)`);
  t.ok(ms < 5000, 'in bounded time: batches in flight together, not one round trip after another');
  t.same(await present(shared, planted), planted.slice(20_000), 'exactly the 100 not named are left');
});

t.test('the keys of one hash slot go in UNLINKs of at most batchSize keys', async (t) => {
  // A hash tag in the prefix puts every entry in one slot, so only batchSize can split them.
  const prefix = '{afc-batch}:';
  const store = openStore(t, shared, { keyPrefixes: [prefix], batchSize: 1000 });
  const master = await shared.masterOf(calculateSlot(cacheKey(prefix, 1)));
  const unlinks = async () => Number(/cmdstat_unlink:calls=(\d+)/.exec(String(await shared.call(master, 'INFO', 'commandstats')))?.[1] ?? 0);
  const planted = ids(1, 2500).map((id) => cacheKey(prefix, id));
  await plant(sharedRaw, planted);
  const before = await unlinks();
  await store.evict(ids(1, 2500));
  t.equal((await unlinks()) - before, 3, '2500 keys of one slot in 3 UNLINKs');
  t.same(await present(shared, planted), []);
});

t.test('during a slot migration, evict and getMany follow ASK (and TRYAGAIN key by key), then MOVED', async (t) => {
  // A hash tag puts every entry in one slot, which is then moved to another master, half of its keys first.
  const prefix = '{afc-migrate}:';
  const store = openStore(t, shared, { keyPrefixes: [prefix] });
  await store.ping();
  const slot = calculateSlot(cacheKey(prefix, 1));
  const keys = ids(1, 10).map((id) => cacheKey(prefix, id));
  await plant(sharedRaw, keys, (k) => JSON.stringify(value(Number(k.split(':').pop()))));
  const source = await shared.masterOf(slot);
  const target = (await shared.masters()).find((port) => port !== source)!;
  const [sourceId, targetId] = await Promise.all([source, target].map(async (port) => String(await shared.call(port, 'CLUSTER', 'MYID'))));
  await shared.call(target, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', sourceId);
  await shared.call(source, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId);
  await shared.call(source, 'MIGRATE', '127.0.0.1', target, '', 0, 5000, 'KEYS', ...keys.slice(0, 6));

  t.same(await store.getMany(ids(5, 2)), new Map([[5, value(5)], [6, value(6)]]), 'getMany reads a key moved ahead (ASK) in a split slot');
  await t.resolves(store.evict(ids(1, 8)), 'evict of keys split across the two masters');
  t.same(await present(shared, keys), keys.slice(8), 'exactly the named entries are gone from both masters');

  // Finish the migration as redis-cli does: the remaining keys, then the new owner on target, source, others.
  await shared.call(source, 'MIGRATE', '127.0.0.1', target, '', 0, 5000, 'KEYS', ...keys.slice(8));
  for (const port of [target, source, ...shared.nodes.map((n) => n.port).filter((p) => p !== target && p !== source)]) {
    await shared.call(port, 'CLUSTER', 'SETSLOT', slot, 'NODE', targetId);
  }
  await store.evict([9]);
  t.same(await present(shared, keys), keys.slice(9), 'after the move, MOVED is followed');
  await waitFor(async () => (await shared.masterOf(slot)) === target, 'the slot to be served by its new master');
});

t.test('a flush by enumeration (evict every id, in pages of 10,000) leaves no entry and touches no other key', async (t) => {
  const store = openStore(t, shared, { keyPrefixes: ['fl:'] });
  const all = ids(1, 15_000);
  const planted = all.map((id) => cacheKey('fl:', id));
  const others = [cacheKey('fl-other:', 1), 'fl:other:key', `fl:x${KEY_STEM}1`];
  await plant(sharedRaw, [...planted, ...others]);
  const leases = await store.lease(ids(20_000, 5), 60_000);
  t.equal(leases.size, 5);
  for (let i = 0; i < all.length; i += 10_000) await store.evict(all.slice(i, i + 10_000));
  await store.evict(ids(20_000, 5));
  t.same(await present(shared, [...planted, ...ids(20_000, 5).map((id) => cacheKey('fl:', id))]), [], 'no entry and no placeholder is left');
  t.same(await present(shared, others), others, 'other keys are untouched');
});

t.test('read-through: the lease lives in the entry key, and an eviction or a flush in between refuses the fill', async (t) => {
  const prefix = 'rt:';
  const store = openStore(t, shared, { keyPrefixes: [prefix, 'rt-second:'] });
  const key = (id: number) => cacheKey(prefix, id);
  const spread = ids(1, 50);
  t.ok(new Set(spread.map((id) => calculateSlot(key(id)))).size > 40, 'the ids are spread over many slots');

  await t.test('lease then fill writes the values, with their TTL', async (t) => {
    const leases = await store.lease(spread, 60_000);
    t.same([...leases.keys()], spread, 'every free key is leased');
    const placeholders = await sharedRaw.get(key(1));
    t.ok(placeholders?.startsWith(LEASE_PLACEHOLDER), 'the placeholder is in the entry key itself');
    t.same(await store.lease([1, 2], 60_000), new Map(), 'a second lease on a leased key is refused');
    t.same(await store.getMany(spread), new Map(), 'placeholders are misses');
    t.same(await store.fill(leases, new Map(spread.map((id) => [id, value(id)])), 120), [], 'no fill is refused');
    t.same(JSON.parse((await sharedRaw.get(key(1)))!), value(1), 'the entry holds the JSON value');
    const ttl = await sharedRaw.ttl(key(1));
    t.ok(ttl > 0 && ttl <= 120, `the entry expires (ttl ${ttl})`);
    t.same(await store.getMany(spread), new Map(spread.map((id) => [id, value(id)])), 'getMany reads keys of many slots in one call');
    t.same(await store.lease([1], 60_000), new Map(), 'a filled key cannot be leased');
  });

  await t.test('lease, then evict, then fill: the evicted fills are refused', async (t) => {
    const leases = await store.lease(ids(100, 10), 60_000);
    await store.evict([100, 105]);
    t.same((await store.fill(leases, new Map(ids(100, 10).map((id) => [id, value(id)])), 60)).sort((a, b) => a - b), [100, 105]);
    t.same(await present(shared, [key(100), key(105)]), [], 'nothing written for the evicted ones');
    t.same(JSON.parse((await sharedRaw.get(key(101)))!), value(101), 'the others are written');
  });

  await t.test('lease, then a flush by enumeration, then fill: every fill is refused', async (t) => {
    const leases = await store.lease(ids(200, 10), 60_000);
    await store.evict(ids(1, 10_000));
    t.same((await store.fill(leases, new Map(ids(200, 10).map((id) => [id, value(id)])), 60)).sort((a, b) => a - b), ids(200, 10));
    t.same(await present(shared, ids(200, 10).map(key)), []);
  });

  await t.test("a fill without this reader's lease is refused and writes nothing", async (t) => {
    const mine = await store.lease([300], 60_000);
    const theirs = await store.lease([301], 60_000);
    const forged = new Map([[301, 'not-their-token']]);
    t.same(await store.fill(forged, new Map([[301, value(301)]]), 60), [301], 'a wrong token is refused');
    t.same(await store.fill(mine, new Map([[300, value(300)], [302, value(302)]]), 60), [302], 'an id with no lease is refused');
    t.same(await store.fill(theirs, new Map([[301, value(301)]]), 60), [], 'the holder still fills');
    t.same(await present(shared, [key(302)]), []);
  });

  await t.test('getMany: missing keys, placeholders and garbage are misses; real values are returned', async (t) => {
    await sharedRaw.set(key(400), 'not json');
    await sharedRaw.set(key(401), `${LEASE_PLACEHOLDER}someone`);
    await sharedRaw.set(key(402), JSON.stringify(value(402)));
    await sharedRaw.set(key(403), '{"an":"object"}');
    await sharedRaw.set(cacheKey('rt-second:', 404), JSON.stringify(value(404)));
    t.same(await store.getMany([400, 401, 402, 403, 404, 405]), new Map([[402, value(402)]]), 'only the JSON array under the first prefix');
    t.same(await store.getMany([]), new Map());
  });
});

t.test('as an ACL user allowed only the entry keys and the commands the store sends, everything works', async (t) => {
  const prefix = 'acl:';
  const user = ['afc-acl-test', 'on', '>s3cret', 'resetkeys', `~${prefix}${KEY_STEM}*`, 'resetchannels', '-@all'];
  const commands = ['+ping', '+info', '+cluster|info', '+cluster|slots', '+unlink', '+mget', '+set', '+get', '+evalsha', '+eval'];
  for (const { port } of shared.nodes) await shared.call(port, 'ACL', 'SETUSER', ...user, ...commands);
  t.teardown(() => Promise.all(shared.nodes.map(({ port }) => shared.call(port, 'ACL', 'DELUSER', 'afc-acl-test'))));
  const store = openStore(t, shared, { keyPrefixes: [prefix], username: 'afc-acl-test', password: 's3cret' });
  await store.ping();
  const leases = await store.lease(ids(1, 20), 60_000);
  t.equal(leases.size, 20);
  t.same(await store.fill(leases, new Map(ids(1, 20).map((id) => [id, value(id)])), 60), []);
  t.same(await store.getMany([1, 2]), new Map([[1, value(1)], [2, value(2)]]));
  await store.evict(ids(1, 20));
  t.same(await present(shared, ids(1, 20).map((id) => cacheKey(prefix, id))), []);

  const errors: Error[] = [];
  const wrong = openStore(t, shared, { keyPrefixes: [prefix], username: 'afc-acl-test', password: 'wrong', onError: (e) => errors.push(e) });
  const { error } = await timed(wrong.ping());
  t.ok(error, 'a wrong password: ping rejects');
  await waitFor(() => errors.length > 0, 'the authentication failure to be reported through onError');
});

t.test('a master failover during evictions: onRecovered fires, evictions resume, and no evicted entry comes back', async (t) => {
  const cluster = await startRedisCluster(t, { masters: 3, replicasPerMaster: 1 });
  const raw = rawClient(t, cluster);
  const prefix = 'fo:';
  const all = ids(1, 3000);
  const keys = all.map((id) => cacheKey(prefix, id));
  const store = openStore(t, cluster, { keyPrefixes: [prefix] });
  await store.ping();
  await plant(raw, keys);

  const victim = await cluster.masterOf(calculateSlot(keys[0]));
  const [heir] = await cluster.replicasOf(victim);
  const victimKeys = new Set((await cluster.call(victim, 'KEYS', '*')) as string[]);
  const heirKeys = async () => new Set((await cluster.call(heir, 'KEYS', '*')) as string[]);
  await waitFor(async () => (await heirKeys()).size === victimKeys.size, "the victim's replica to have every entry");

  // Cut the replica's replication link (it can no longer authenticate to its master), so what the victim
  // acknowledges from now on never reaches it: the lost-eviction case, made certain instead of a race.
  await cluster.call(heir, 'CONFIG', 'SET', 'masterauth', 'not-the-password');
  await cluster.call(heir, 'CLIENT', 'KILL', 'TYPE', 'master');
  await waitFor(async () => /master_link_status:down/.test(String(await cluster.call(heir, 'INFO', 'replication'))), 'the replication link to be down');

  // The daemon's part: on onRecovered it flushes by enumerating every workflow id and evicting them.
  const recoveries: Array<{ at: number; staleOnHeir: number; flush: Promise<unknown> }> = [];
  store.onRecovered(() => {
    const at = Date.now();
    const entry = { at, staleOnHeir: -1, flush: Promise.resolve() as Promise<unknown> };
    entry.flush = (async () => {
      // Nothing else writes there: whatever the promoted replica holds now is what the victim had deleted.
      entry.staleOnHeir = (await heirKeys()).size;
      await store.evict(all);
    })();
    entry.flush.catch(() => undefined);
    recoveries.push(entry);
  });

  await store.evict(all);
  t.same([...(await keysByMaster(cluster)).values()].map((s) => s.size), [0, 0, 0], 'every master applied the eviction');
  t.equal((await heirKeys()).size, victimKeys.size, "the victim's replica still holds every entry the victim deleted");

  // Evictions keep running (of other workflows, so they cannot mend the loss by accident) through the failover.
  const outcomes: Array<{ at: number; ok: boolean }> = [];
  let running = true;
  const loop = (async () => {
    for (let round = 0; running; round++) {
      const ok = await store.evict(ids(100_000 + (round % 50) * 100, 100)).then(() => true, () => false);
      outcomes.push({ at: Date.now(), ok });
      await sleep(10);
    }
  })();
  let refreshes = 0;
  store.client.on('refresh', () => refreshes++);
  await waitFor(() => outcomes.filter((o) => o.ok).length >= 3 && refreshes >= 2, 'evictions and two slot refreshes before the kill');
  t.equal(recoveries.length, 0, 'no recovery while the topology stays the same');

  const killedAt = Date.now();
  await cluster.kill(victim);
  const recovered = await waitFor(() => recoveries[0], 'onRecovered after the failover', 20_000);
  t.comment(`onRecovered ${recovered.at - killedAt} ms after the kill`);
  t.match(String(await cluster.call(heir, 'INFO', 'replication')), /^role:master/m, 'the replica was promoted');
  await waitFor(() => outcomes.some((o) => o.ok && o.at > recovered.at), 'an eviction to succeed after the failover');
  running = false;
  await loop;
  t.ok(outcomes.some((o) => o.ok && o.at < recovered.at), 'evictions succeeded before the failover too');

  await t.resolves(recovered.flush, "the daemon's flush after onRecovered succeeded");
  t.ok(recovered.staleOnHeir > 0, `the promoted replica came up with ${recovered.staleOnHeir} entries the victim had deleted`);
  await Promise.allSettled(recoveries.map((r) => r.flush));
  t.same(await present(cluster, keys), [], 'no evicted entry is left on any master: the flush removed what the failover brought back');

  await t.test('a manual CLUSTER FAILOVER is a topology change too', async (t) => {
    const before = recoveries.length;
    const master = (await cluster.masters()).find((port) => port !== heir)!;
    const [replica] = await cluster.replicasOf(master);
    await cluster.failover(replica);
    await waitFor(() => recoveries.length > before, 'onRecovered after the manual failover', 15_000);
    await t.resolves(store.evict(all), 'evictions work against the new master');
    t.same(await present(cluster, keys), []);
  });
});

t.test('three masters without replicas: what calls onRecovered, and what every node down does', async (t) => {
  const cluster = await startRedisCluster(t, { masters: 3 });
  const errors: Error[] = [];
  const store = openStore(t, cluster, { keyPrefixes: ['down:'], retryMaxMs: 300, onError: (e) => errors.push(e) });
  let recoveries = 0;
  store.onRecovered(() => recoveries++);
  await store.ping();
  await store.evict(ids(1, 100));
  const killAll = () => Promise.all(cluster.nodes.map((n) => cluster.kill(n.port)));

  await t.test('a connection dropped by a master that kept running loses nothing: no onRecovered', async (t) => {
    await store.evict(ids(1, 100)); // a connection to every master is open
    let dropped = 0;
    let refreshes = 0;
    const onDrop = () => dropped++;
    const onRefresh = () => refreshes++;
    store.client.on('-node', onDrop);
    store.client.on('refresh', onRefresh);
    t.teardown(() => (store.client.off('-node', onDrop), store.client.off('refresh', onRefresh)));
    // One master only: with every connection gone the client is disconnected, and a reconnect always flushes.
    const [master] = await cluster.masters();
    await cluster.call(master, 'CLIENT', 'KILL', 'TYPE', 'normal');
    await waitFor(() => dropped >= 1, 'the store to lose its connection to that master');
    const seen = refreshes;
    await waitFor(() => refreshes >= seen + 2, 'two slot refreshes, each followed by a check of the masters');
    await t.resolves(store.evict(ids(1, 100)), 'evictions go on');
    t.equal(recoveries, 0, 'no flush for a lost connection alone');
  });

  await t.test('every connection lost, then ready again: onRecovered, even with no master restarted', async (t) => {
    await store.evict(ids(1, 100));
    for (const port of await cluster.masters()) await cluster.call(port, 'CLIENT', 'KILL', 'TYPE', 'normal');
    await waitFor(() => recoveries > 0, 'onRecovered once the client is ready again');
    await t.resolves(store.evict(ids(1, 100)));
  });
  recoveries = 0;

  await t.test('a master restarted in place (no failover, it may have lost what it acknowledged) is a loss too', async (t) => {
    const [master] = await cluster.masters();
    await cluster.kill(master);
    await cluster.start(master);
    await cluster.waitHealthy();
    await waitFor(() => recoveries > 0, 'onRecovered once the restarted master answers', 15_000);
    t.ok((await cluster.masters()).includes(master), 'it is still a master: no slot moved, only the connection to it was lost');
    await t.resolves(store.evict(ids(1, 100)));
  });
  recoveries = 0;

  await t.test('every node down: evict and ping reject promptly and nothing crashes; back up: onRecovered', async (t) => {
    await killAll();
    // Straight after the kill, before the client may even have noticed: nothing may wait for a reconnect.
    const early = await Promise.all([timed(store.evict(ids(1, 1000))), timed(store.ping())]);
    for (const [name, outcome] of [['evict', early[0]], ['ping', early[1]]] as const) {
      t.ok(outcome.error, `${name} rejects: the caller knows it was not applied`);
      t.ok(outcome.ms < 5000, `${name} settled in ${outcome.ms} ms`);
    }
    await waitFor(() => store.client.status !== 'ready', 'the client to notice');
    const later = await Promise.all([timed(store.evict(ids(1, 1000))), timed(store.ping()), timed(store.getMany([1])), timed(store.lease([1], 1000))]);
    for (const outcome of later) t.ok(outcome.error && outcome.ms < 1000, `rejects at once while disconnected (${outcome.ms} ms)`);
    await waitFor(() => errors.length > 0, 'the failed reconnects to be reported through onError');
    t.equal(recoveries, 0, 'no recovery while down');

    await Promise.all(cluster.nodes.map((n) => cluster.start(n.port)));
    await cluster.waitHealthy();
    await waitFor(() => recoveries > 0, 'onRecovered once the cluster is reachable again', 15_000);
    await t.resolves(store.evict(ids(1, 1000)), 'evict works again');
    await t.resolves(store.ping());
  });

  await t.test('every node down: close returns promptly and stops reconnecting', async (t) => {
    await killAll();
    await waitFor(() => store.client.status !== 'ready', 'the client to notice');
    const closing = await timed(store.close());
    t.ok(!closing.error && closing.ms < 2000, `close returns promptly (${closing.ms} ms)`);
    let attempts = 0;
    store.client.on('connecting', () => attempts++);
    // Reconnects are at most retryMaxMs (300 ms) apart: this wait would see two of them.
    await sleep(700);
    t.equal(attempts, 0, 'no reconnect attempt after close');
  });
});

t.test('a cluster that never answered: ping and evict reject promptly, close returns at once', async (t) => {
  const port = await freePort();
  const store = createRedisClusterStore({ nodes: [{ host: '127.0.0.1', port }], keyPrefixes: ['never:'], retryMaxMs: 200, onError: () => undefined });
  t.teardown(() => store.close());
  for (const [name, outcome] of [['ping', await timed(store.ping())], ['evict', await timed(store.evict([1]))]] as const) {
    t.ok(outcome.error && outcome.ms < 3000, `${name} rejects in ${outcome.ms} ms`);
  }
  const closing = await timed(store.close());
  t.ok(!closing.error && closing.ms < 1500, `close returns in ${closing.ms} ms`);
});

t.test('close is idempotent, and every method rejects after it', async (t) => {
  const store = openStore(t, shared, { keyPrefixes: ['cl:'] });
  await store.ping();
  await store.close();
  await store.close();
  t.equal(store.client.status, 'end', 'every connection is closed');
  await t.rejects(store.evict([1]));
  await t.rejects(store.ping());
  await t.rejects(store.getMany([1]));
  await t.rejects(store.lease([1], 1000));
  await t.rejects(store.fill(new Map([[1, 'x']]), new Map([[1, []]]), 60));
  await store.close();
});
