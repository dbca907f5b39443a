// afc-daemon --serve: workers in other languages read action filters over HTTP through the daemon's
// in-process read-through cache; bad ids are a 400 with a message, a database that cannot answer a 503.
// Also --redelete-after: the second eviction that undoes an unguarded reader's stale write.
import t from 'tap';
import { Redis } from 'ioredis';
import { cacheKey } from '../src/contract.js';
import { migrate } from '../src/migrate/migrator.js';
import { spawnDaemon } from './helpers/daemon.js';
import { connect, createSentrySchema, createTestDatabase } from './helpers/pg.js';
import { requireRedis } from './helpers/redis.js';
import { Sentry } from './helpers/sentry.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import { settle } from './helpers/settle.js';
import { waitFor } from './helpers/wait.js';

const url = await createTestDatabase(t, 'sidecar');
const db = await connect(t, url);
await createSentrySchema(db);
await migrate(db, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });
const sentry = new Sentry(db);
const proxy = await startTcpProxy(t, '127.0.0.1', Number(new URL(url).port || 5432));
const daemon = spawnDaemon(t, ['--db', proxy.via(url), '--cache', 'memory', '--serve', '127.0.0.1:0', '--http', '127.0.0.1:0', '--retry-max-ms', '200']);
const port = Number((await daemon.waitForLog('sidecar listening')).port);
const opsPort = Number((await daemon.waitForLog('http listening')).port);
await daemon.waitForLog('flushed', (l) => l.cause === 'connect');
const api = (query: string) => fetch(`http://127.0.0.1:${port}/v1/action-filters${query}`);
async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
}

t.test('serves action filters as JSON, from the cache after the first read, fresh after a change', async (t) => {
  const start = await metric('afc_notifications_received_total');
  const [a, none] = [await sentry.workflow([2, 1]), await sentry.workflow([])];
  // Creating them notifies once per link and per action-filter condition: 5; let those land first.
  await waitFor(async () => (await metric('afc_notifications_received_total')) === start + 5, 'the creations to be processed');
  const r = await api(`?workflow_id=${a.id}&workflow_id=${none.id}`);
  t.equal(r.status, 200);
  t.equal(r.headers.get('content-type'), 'application/json');
  const body = await r.json();
  t.same(Object.keys(body), [String(a.id), String(none.id)]);
  t.same(body[String(none.id)], []);
  t.same(body[String(a.id)].map((f: { id: number }) => f.id), a.groups);
  t.equal(body[String(a.id)][0].conditions.length, 2);
  const hits = await metric('afc_cache_hits_total');
  await api(`?workflow_id=${a.id}`);
  t.equal(await metric('afc_cache_hits_total'), hits + 1, 'the second read was a hit');
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', a.groups[0]]);
  await waitFor(async () => (await (await api(`?workflow_id=${a.id}`)).json())[String(a.id)][0].logic_type === 'none', 'the edit served');
});

t.test('bad ids are a 400 that says why', async (t) => {
  for (const query of ['', '?workflow_id=abc', '?workflow_id=0', '?workflow_id=-4', '?workflow_id=1.5', '?workflow_id=99999999999999999999', `?${'workflow_id=1&'.repeat(1001)}`]) {
    const r = await api(query);
    t.equal(r.status, 400, `${query.slice(0, 40)} → 400`);
    t.match((await r.json()).error, /workflow_id/);
  }
  t.equal((await fetch(`http://127.0.0.1:${port}/v2/other`)).status, 404);
});

t.test('a database that cannot answer is a 503; cached workflows are still served', async (t) => {
  const [cached, uncached] = [await sentry.workflow([1]), await sentry.workflow([1])];
  await api(`?workflow_id=${cached.id}`);
  proxy.cut();
  const r = await api(`?workflow_id=${uncached.id}`);
  t.equal(r.status, 503);
  t.match((await r.json()).error, /action filters unavailable/);
  t.equal((await api(`?workflow_id=${cached.id}`)).status, 200, 'a cached workflow is served from the in-process cache');
  proxy.restore();
  await waitFor(async () => (await api(`?workflow_id=${uncached.id}`)).status === 200, 'served again once the database is back');
});

t.test('--redelete-after evicts again after a reader without the guard wrote a stale value', async (t) => {
  const redisUrl = await requireRedis();
  const prefix = `afc-test:redelete:${process.pid}:`;
  const redis = new Redis(redisUrl);
  t.teardown(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.unlink(...keys);
    await redis.quit();
  });
  const d = spawnDaemon(t, ['--db', url, '--cache', redisUrl, '--key-prefix', prefix, '--redelete-after', '300']);
  await d.waitForLog('flushed', (l) => l.cause === 'connect');
  const w = await sentry.workflow([1]);
  await settle(db, { fill: (id) => redis.set(cacheKey(prefix, id), '[]'), exists: async (id) => (await redis.exists(cacheKey(prefix, id))) === 1 });
  const key = cacheKey(prefix, w.id);
  await redis.set(key, 'cached');
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['any', w.groups[0]]);
  await waitFor(async () => (await redis.exists(key)) === 0, 'first eviction');
  await redis.set(key, 'stale, written by a reader that read before the commit');
  await waitFor(async () => (await redis.exists(key)) === 0, 'second eviction', 3000);
  t.pass('the stale write was undone');
  t.equal(await d.stop(), 0);
});

t.test('the sidecar shuts down with the daemon', async (t) => {
  t.equal(await daemon.stop(), 0);
  await t.rejects(api('?workflow_id=1'));
});
