// The daemon embedded in a Node worker (library entry point) around the worker's own node-cache:
// committed changes evict exactly the right entries; every (re)connect flushes.
import t from 'tap';
import NodeCache from 'node-cache';
// The package's own name: what a Node worker embedding the daemon imports.
import { startDaemon, createMemoryStore } from 'afc';
import { triggerPayload } from './helpers/signing.js';
import { cacheKey, DEFAULT_CHANNEL } from '../src/contract.js';
import { migrate } from '../src/migrate/migrator.js';
import { connect, createSentrySchema, createTestDatabase } from './helpers/pg.js';
import { Sentry } from './helpers/sentry.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import { settle as settleDaemon } from './helpers/settle.js';
import { waitFor } from './helpers/wait.js';

const url = await createTestDatabase(t, 'daemon_memory');
const db = await connect(t, url);
await createSentrySchema(db);
await migrate(db, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });
const sentry = new Sentry(db);

const cache = new NodeCache({ useClones: false });
const prefix = ':1:';
const store = createMemoryStore({ keyPrefix: prefix, cache });
// Through a proxy, so a test can cut the daemon's connection while this file's own keeps committing.
const proxy = await startTcpProxy(t, '127.0.0.1', Number(new URL(url).port || 5432));
const daemon = await startDaemon({ db: proxy.via(url), store, keyPrefix: prefix, heartbeatMs: 500, retryMaxMs: 500 });
t.teardown(() => daemon.stop());
await waitFor(() => daemon.stats.flushes.connect === 1, 'the flush after the first connect');

const key = (id: number) => cacheKey(prefix, id);
function fill(...ids: number[]) {
  for (const id of ids) cache.set(key(id), [{ id: 1, logic_type: 'all', conditions: [] }]);
}
const gone = (id: number) => waitFor(() => !cache.has(key(id)), `entry of workflow ${id} evicted`);

const settle = () => settleDaemon(db, { fill, exists: (id) => cache.has(key(id)) });

t.test('a condition change evicts its workflow and leaves other entries', async (t) => {
  const [a, b] = [await sentry.workflow([2]), await sentry.workflow([1])];
  await settle();
  fill(a.id, b.id);
  cache.set('unrelated', 42);
  await db.query('UPDATE workflow_engine_datacondition SET comparison = $1 WHERE id = $2', ['{"v": 2}', a.conditions.get(a.groups[0])![0]]);
  await gone(a.id);
  await settle();
  t.ok(cache.has(key(b.id)), 'the other workflow stays cached');
  t.equal(cache.get('unrelated'), 42, 'a key outside afc stays');
});

t.test('moving a condition between workflows evicts both', async (t) => {
  const [a, b, c] = [await sentry.workflow([1]), await sentry.workflow([1]), await sentry.workflow([1])];
  await settle();
  fill(a.id, b.id, c.id);
  await db.query('UPDATE workflow_engine_datacondition SET condition_group_id = $1 WHERE id = $2', [b.groups[0], a.conditions.get(a.groups[0])![0]]);
  await gone(a.id);
  await gone(b.id);
  await settle();
  t.ok(cache.has(key(c.id)));
});

t.test('moving a link to another workflow evicts both', async (t) => {
  const [a, b] = [await sentry.workflow([1]), await sentry.workflow([1])];
  await settle();
  fill(a.id, b.id);
  await db.query('UPDATE workflow_engine_workflowdataconditiongroup SET workflow_id = $1 WHERE condition_group_id = $2', [b.id, a.groups[0]]);
  await gone(a.id);
  await gone(b.id);
  t.pass();
});

t.test('deleting an action filter group evicts its workflow', async (t) => {
  const d = await sentry.workflow([1]);
  await settle();
  fill(d.id);
  await db.query('BEGIN');
  await db.query('DELETE FROM workflow_engine_dataconditiongroup WHERE id = $1', [d.groups[0]]);
  await db.query('DELETE FROM workflow_engine_datacondition WHERE condition_group_id = $1', [d.groups[0]]);
  await db.query('DELETE FROM workflow_engine_workflowdataconditiongroup WHERE condition_group_id = $1', [d.groups[0]]);
  await db.query('COMMIT');
  await gone(d.id);
  t.pass();
});

t.test('inserting a condition evicts its workflow', async (t) => {
  const e = await sentry.workflow([1]);
  await settle();
  fill(e.id);
  await sentry.condition(e.groups[0]);
  await gone(e.id);
  t.pass();
});

t.test("a WHEN group's change evicts nothing", async (t) => {
  const w = await sentry.workflow([1], 1);
  await settle();
  fill(w.id);
  await db.query('UPDATE workflow_engine_datacondition SET comparison = $1 WHERE condition_group_id = $2', ['{"v": 3}', w.whenGroup]);
  await settle();
  t.ok(cache.has(key(w.id)));
});

t.test('TRUNCATE flushes every afc entry and nothing else', async (t) => {
  const scratch = await sentry.workflow([1]);
  fill(scratch.id, 999_001, 999_002);
  cache.set('unrelated', 42);
  await db.query('TRUNCATE workflow_engine_datacondition');
  await waitFor(() => cache.keys().filter((k) => k.startsWith(prefix)).length === 0, 'all afc entries flushed');
  t.equal(cache.get('unrelated'), 42);
  t.ok(daemon.stats.flushes.truncate >= 1);
});

t.test('after pg_terminate_backend the daemon reconnects, flushes, and evicts again', async (t) => {
  const before = daemon.stats.flushes.reconnect;
  fill(888_001);
  const { rows } = await db.query(
    "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'afc-daemon' AND datname = current_database()",
  );
  t.equal(rows.length, 1, 'one daemon backend terminated');
  await waitFor(() => daemon.stats.flushes.reconnect > before, 'the flush after reconnecting');
  t.notOk(cache.has(key(888_001)), 'the reconnect flushed entries that may have gone stale meanwhile');
  t.ok(daemon.listening);
  const w = await sentry.workflow([1]);
  await settle();
  fill(w.id);
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
  await gone(w.id);
});

t.test('a change committed while the daemon is cut off leaves no stale entry', async (t) => {
  const w = await sentry.workflow([1]);
  await settle();
  fill(w.id);
  const reconnects = daemon.stats.reconnects;
  proxy.cut();
  await waitFor(() => !daemon.listening, 'the daemon noticing it lost its connection');
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
  t.ok(cache.has(key(w.id)), 'the notification was lost: the entry is still there');
  proxy.restore();
  await waitFor(() => daemon.stats.reconnects > reconnects, 'the daemon reconnecting');
  await gone(w.id);
});

t.test('a half-open connection (no bytes, no FIN) is detected by the heartbeat and replaced', async (t) => {
  const w = await sentry.workflow([1]);
  const reconnects = daemon.stats.reconnects;
  proxy.freeze();
  await waitFor(() => daemon.stats.reconnects > reconnects, 'a reconnect after the heartbeat timed out', 15_000);
  await settle();
  fill(w.id);
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['all', w.groups[0]]);
  await gone(w.id);
  t.pass('evicting again through a fresh connection');
});

t.test('a burst of 30,000 evictions in one commit is applied in slices of at most 10,000, and every entry goes', async (t) => {
  const burstCache = new NodeCache({ useClones: false });
  const inner = createMemoryStore({ keyPrefix: 'burst:', cache: burstCache });
  const batches: number[] = [];
  const recording = { ...inner, evict: (ids: readonly number[]) => (batches.push(ids.length), inner.evict(ids)) };
  const burst = await startDaemon({ db: url, store: recording });
  t.teardown(() => burst.stop());
  await waitFor(() => burst.stats.flushes.connect === 1, 'the flush after the first connect');
  const ids = Array.from({ length: 30_000 }, (_, i) => i + 1);
  burstCache.mset(ids.map((id) => ({ key: cacheKey('burst:', id), val: [] })));
  const payloads = await Promise.all(
    Array.from({ length: 30 }, (_, i) => triggerPayload(db, { op: 'evict', src: 'dc', ts: Date.now(), ids: ids.slice(i * 1000, (i + 1) * 1000) })),
  );
  await db.query('BEGIN');
  await db.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [DEFAULT_CHANNEL, payloads]);
  await db.query('COMMIT');
  await waitFor(() => burstCache.keys().length === 0, 'every entry of the burst evicted');
  t.equal(batches.reduce((a, b) => a + b, 0), 30_000, 'each id evicted once');
  t.ok(Math.max(...batches) <= 10_000, `no slice above 10,000 ids (slices: ${batches.join(', ')})`);
  t.ok(batches.length >= 3, 'the burst took several slices');
});
