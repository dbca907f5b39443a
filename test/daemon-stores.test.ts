// afc-daemon on the shared caches Sentry runs, as a user starts it: a two-node memcached pool and a
// three-master Redis Cluster (private servers). Each gets the daemon's behaviours that the single Redis
// has: exact evictions for each table, nothing for a WHEN group, a TRUNCATE flush by enumeration that
// removes every workflow's entry and nothing else, a flush after a reconnect, the sidecar's read-through,
// SIGTERM; and a read-through race with the daemon evicting. memcached also: a node cut off while a
// change commits holds no stale entry once it is back.
import t, { type Test } from 'tap';
import { Cluster } from 'ioredis';
import type pg from 'pg';
import { createActionFilterCache, startDaemon } from 'afc';
import { cacheKey } from '../src/contract.js';
import { createMemcachedStore } from '../src/store/memcached-store.js';
import { createRedisClusterStore } from '../src/store/redis-cluster-store.js';
import type { CacheStore } from '../src/store/store.js';
import { spawnDaemon, type DaemonChild } from './helpers/daemon.js';
import { connect } from './helpers/pg.js';
import { rawClient, startPrivateMemcached, type PrivateMemcached } from './helpers/private-memcached.js';
import { startRedisCluster } from './helpers/redis-cluster.js';
import { migratedSentryDatabase, type Sentry, type WorkflowRows } from './helpers/sentry.js';
import { waitFor } from './helpers/wait.js';


/** Reads and writes a backend straight, never through the code under test. */
interface Backend {
  cacheUrl: string;
  put(keys: string[], value?: string): Promise<void>;
  /** The subset of `keys` present (on any node). */
  present(keys: string[]): Promise<string[]>;
  /** A store of the library, for the read-through race. */
  store(prefix: string): CacheStore;
}

async function memcachedBackend(t: Test): Promise<Backend & { nodes: PrivateMemcached[] }> {
  const nodes = [await startPrivateMemcached(t), await startPrivateMemcached(t)];
  const raws = nodes.map((n) => rawClient(t, n.port));
  return {
    nodes,
    cacheUrl: `memcached://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    put: async (keys, value = '[]') => void (await Promise.all(raws.map((r) => r.setMany(keys, value)))),
    async present(keys) {
      const found = await Promise.all(keys.map(async (k) => (await Promise.all(raws.map((r) => r.has(k)))).some(Boolean)));
      return keys.filter((_, i) => found[i]);
    },
    store: (prefix) => createMemcachedStore({ servers: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), keyPrefixes: [prefix] }),
  };
}

async function clusterBackend(t: Test): Promise<Backend> {
  const handle = await startRedisCluster(t, { masters: 3 });
  const raw = new Cluster(handle.nodes, { redisOptions: { maxRetriesPerRequest: 3 } });
  raw.on('error', () => undefined);
  t.teardown(() => raw.disconnect());
  return {
    cacheUrl: handle.url,
    put: async (keys, value = '[]') => void (await Promise.all(keys.map((k) => raw.set(k, value)))),
    async present(keys) {
      const found = await Promise.all(keys.map((k) => raw.exists(k)));
      return keys.filter((_, i) => found[i] === 1);
    },
    store: (prefix) => createRedisClusterStore({ nodes: handle.nodes, keyPrefixes: [prefix] }),
  };
}

/** The behaviours every store must show through the bin. */
async function daemonBehaviours(t: Test, backend: Backend, label: string): Promise<{ daemon: DaemonChild; db: pg.Client; sentry: Sentry; prefix: string }> {
  const { url, db, sentry } = await migratedSentryDatabase(t, `stores_${label}`);
  const [prefix, second] = [`afc-${label}:`, `:1:`];
  const key = (id: number, p = prefix) => cacheKey(p, id);
  const daemon = spawnDaemon(t, ['--db', url, '--cache', backend.cacheUrl, '--key-prefix', prefix, '--key-prefix', second, '--serve', '127.0.0.1:0', '--retry-max-ms', '300', '--flush-floor-ms', '0']);
  const servePort = Number((await daemon.waitForLog('sidecar listening')).port);
  await daemon.waitForLog('flushed', (l) => l.cause === 'connect');
  const gone = (keys: string[], what: string) => waitFor(async () => (await backend.present(keys)).length === 0, what);
  // Everything committed so far is applied: a fresh workflow's planted entry is evicted by its next change.
  const settle = async () => {
    const probe = await sentry.workflow([]);
    await backend.put([key(probe.id)]);
    await sentry.link(probe.id, await sentry.group());
    await gone([key(probe.id)], 'the settle probe');
  };

  await t.test('each kind of committed change evicts exactly the affected entries, under every prefix', async (t) => {
    const ws: WorkflowRows[] = [];
    for (let i = 0; i < 8; i++) ws.push(await sentry.workflow([2]));
    const [a, b, c, d, e, f, g, bystander] = ws;
    const spare = await sentry.group();
    await settle();
    const all = ws.flatMap((w) => [key(w.id), key(w.id, second)]);
    await backend.put(all);
    const cond = (w: WorkflowRows) => w.conditions.get(w.groups[0])!;
    const changes: Array<[string, string, unknown[], number[]]> = [
      ['DC update', 'UPDATE workflow_engine_datacondition SET comparison = $1 WHERE id = $2', ['{"v":7}', cond(a)[0]], [a.id]],
      ['DC move', 'UPDATE workflow_engine_datacondition SET condition_group_id = $1 WHERE id = $2', [c.groups[0], cond(b)[0]], [b.id, c.id]],
      ['DCG update', 'UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', d.groups[0]], [d.id]],
      ['WDCG move', 'UPDATE workflow_engine_workflowdataconditiongroup SET workflow_id = $1 WHERE condition_group_id = $2', [f.id, e.groups[0]], [e.id, f.id]],
      ['WDCG insert', 'INSERT INTO workflow_engine_workflowdataconditiongroup (workflow_id, condition_group_id) VALUES ($1, $2)', [g.id, spare], [g.id]],
    ];
    for (const [what, sql, params, ids] of changes) {
      await db.query(sql, params);
      await gone(ids.flatMap((id) => [key(id), key(id, second)]), `${what}: entries of ${ids.join(', ')}`);
    }
    t.same(await backend.present([key(bystander.id), key(bystander.id, second)]), [key(bystander.id), key(bystander.id, second)], 'an untouched workflow keeps its entries');
  });

  await t.test('a WHEN group change evicts nothing', async (t) => {
    const w = await sentry.workflow([1], 1);
    const probe = await sentry.workflow([1]);
    await settle();
    await backend.put([key(w.id), key(probe.id)]);
    await db.query('UPDATE workflow_engine_datacondition SET type = $1 WHERE condition_group_id = $2', ['x', w.whenGroup]);
    // A later change of another workflow is applied after it: once that one is gone, the first was seen.
    await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['any', probe.groups[0]]);
    await gone([key(probe.id)], 'the later change');
    t.same(await backend.present([key(w.id)]), [key(w.id)]);
  });

  await t.test('the sidecar reads through this store and serves the fresh value after an edit', async (t) => {
    const w = await sentry.workflow([1]);
    const api = async () => (await (await fetch(`http://127.0.0.1:${servePort}/v1/action-filters?workflow_id=${w.id}`)).json()) as Record<string, Array<{ logic_type: string }>>;
    t.equal((await api())[String(w.id)][0].logic_type, 'all');
    // The workflow's own creation is evicted a moment later and may refuse that first fill: read again.
    await waitFor(async () => (await api()) && (await backend.present([key(w.id)])).length === 1, 'a fill written to the store');
    await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
    await waitFor(async () => (await api())[String(w.id)][0].logic_type === 'none', 'the edit served');
  });

  await t.test('TRUNCATE flushes, by enumeration, every workflow entry under every prefix and nothing else', async (t) => {
    const { rows } = await db.query<{ id: string }>('SELECT id FROM workflow_engine_workflow');
    const ids = rows.map((r) => Number(r.id));
    const entries = ids.flatMap((id) => [key(id), key(id, second)]);
    const others = [key(9_999_999), `${prefix}other:1`, cacheKey('afc-elsewhere:', ids[0])];
    await backend.put([...entries, ...others]);
    await db.query('TRUNCATE workflow_engine_datacondition');
    await gone(entries, `all ${entries.length} workflow entries`);
    t.same(await backend.present(others), others, 'ids that are no workflow, non-entries and other prefixes stay');
    // The line is written once the flush is done, a moment after its last delete.
    await daemon.waitForLog('flushed', (l) => l.cause === 'truncate');
  });

  await t.test('after pg_terminate_backend it reconnects and flushes', async (t) => {
    const w = await sentry.workflow([1]);
    await settle();
    await backend.put([key(w.id)]);
    const since = daemon.logs.length;
    await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'afc-daemon' AND datname = current_database()");
    await daemon.waitForLog('flushed', (l) => l.cause === 'reconnect', 15_000, since);
    t.same(await backend.present([key(w.id)]), []);
  });
  return { daemon, db, sentry, prefix };
}

/** Readers through the read-through cache against writers, with the daemon evicting: no stale entry after. */
async function race(t: Test, backend: Backend, label: string, writes: number) {
  const { url, sentry } = await migratedSentryDatabase(t, `race_${label}`);
  const prefix = `afc-race-${label}:`;
  const ws: WorkflowRows[] = [];
  for (let i = 0; i < 8; i++) ws.push(await sentry.workflow([2, 1]));
  const store = backend.store(prefix);
  t.teardown(() => store.close());
  const daemon = await startDaemon({ db: url, store, flushFloorMs: 0 });
  t.teardown(() => daemon.stop());
  const cache = createActionFilterCache({ db: url, store, ttlSeconds: 3600, beforeFill: () => new Promise((r) => setTimeout(r, Math.random() * 3)) });
  t.teardown(() => cache.close());
  const writer = await connect(t, url);
  const groups = ws.flatMap((w) => w.groups);
  const conditions = ws.flatMap((w) => w.groups.flatMap((g) => w.conditions.get(g)!));
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)];
  const ids = ws.map((w) => w.id);
  // The writer makes `writes` changes; readers read (and fill) as fast as they can until it is done.
  let done = false;
  await Promise.all([
    ...Array.from({ length: 4 }, async () => {
      while (!done) {
        await cache.get([pick(ids), pick(ids)]);
        await new Promise((r) => setImmediate(r));
      }
    }),
    (async () => {
      for (let n = 0; n < writes; n++) {
        const r = Math.random();
        if (r < 0.4) await writer.query('UPDATE workflow_engine_datacondition SET comparison = $1 WHERE id = $2', [JSON.stringify({ v: Math.random() }), pick(conditions)]);
        else if (r < 0.7) await writer.query('UPDATE workflow_engine_datacondition SET condition_group_id = $1 WHERE id = $2', [pick(groups), pick(conditions)]);
        else await writer.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', [pick(['any', 'all', 'none']), pick(groups)]);
      }
      done = true;
    })(),
  ]);
  // Writes have stopped; a last change of every workflow's first group, once gone, means the daemon caught up.
  const probe = ws[0];
  await backend.put([cacheKey(prefix, probe.id)]);
  await writer.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = logic_type WHERE id = $1', [probe.groups[0]]);
  await waitFor(async () => !(await store.getMany([probe.id])).has(probe.id), 'the daemon caught up');
  const cached = await store.getMany(ids);
  const truth = await cache.loader.load(ids);
  const wrong = [...cached].filter(([id, value]) => JSON.stringify(value) !== JSON.stringify(truth.get(id)));
  t.ok(cache.stats.filled > 100, `the race was exercised: ${cache.stats.misses} misses, ${cache.stats.filled} fills, ${cache.stats.fillsRefused} refused`);
  t.same(wrong.map(([id]) => id), [], `no cached entry differs from the database (${cached.size} cached)`);
}

t.test('memcached pool (2 nodes)', async (t) => {
  const backend = await memcachedBackend(t);
  const { daemon, db, sentry, prefix } = await daemonBehaviours(t, backend, 'mc');

  await t.test('a node cut off while a change commits holds no stale entry once it is back', async (t) => {
    const w = await sentry.workflow([1]);
    const entry = cacheKey(prefix, w.id);
    await backend.put([entry]);
    const [, b] = backend.nodes;
    const rawB = rawClient(t, b.port);
    b.pause();
    await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
    await daemon.waitForLog('memcached error');
    b.resume();
    await daemon.waitForLog('flushed', (l) => l.cause === 'memcached-recovery', 15_000);
    await waitFor(async () => !(await rawB.has(entry)), 'the entry gone from the node that was away');
    t.same(await backend.present([entry]), []);
  });

  await t.test('SIGTERM: exit 0', async (t) => t.equal(await daemon.stop(), 0));
  await t.test('read-through race: readers against 500 writes, no stale entry', async (t) => race(t, backend, 'mc', 500));
});

t.test('Redis Cluster (3 masters)', async (t) => {
  const backend = await clusterBackend(t);
  const { daemon } = await daemonBehaviours(t, backend, 'rc');
  await t.test('SIGTERM: exit 0', async (t) => t.equal(await daemon.stop(), 0));
  await t.test('read-through race: readers against 500 writes, no stale entry', async (t) => race(t, backend, 'rc', 500));
});
