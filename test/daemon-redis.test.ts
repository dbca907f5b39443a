// afc-daemon as a user runs it, against the shared Redis: exact evictions for each table, flush on
// TRUNCATE touching only afc keys, hostile payloads survived, reconnect after pg_terminate_backend, and a
// prompt clean exit on SIGTERM.
import t from 'tap';
import { Redis } from 'ioredis';
import { cacheKey } from '../src/contract.js';
import { migrate } from '../src/migrate/migrator.js';
import { spawnDaemon } from './helpers/daemon.js';
import { connect, createSentrySchema, createTestDatabase } from './helpers/pg.js';
import { requireRedis } from './helpers/redis.js';
import { Sentry } from './helpers/sentry.js';
import { settle as settleDaemon } from './helpers/settle.js';
import { waitFor } from './helpers/wait.js';

const redisUrl = await requireRedis();
const url = await createTestDatabase(t, 'daemon_redis');
const db = await connect(t, url);
await createSentrySchema(db);
await migrate(db, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });
const sentry = new Sentry(db);

// Its own key prefix keeps this file's keys apart from every other file's on the shared Redis.
const prefix = `afc-test:daemon-redis:${process.pid}:`;
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
const outsider = `afc-test-outsider:${process.pid}:workflow:action_filters_by_workflow:1`;
t.teardown(async () => {
  const keys = [...(await redis.keys(`${prefix}*`)), outsider];
  await redis.unlink(...keys);
  await redis.quit();
});

const daemon = spawnDaemon(t, ['--db', url, '--cache', redisUrl, '--key-prefix', prefix, '--heartbeat-ms', '1000', '--retry-max-ms', '500']);
await daemon.waitForLog('flushed', (l) => l.cause === 'connect');

const key = (id: number) => cacheKey(prefix, id);
const fill = (...ids: number[]) => Promise.all(ids.map((id) => redis.set(key(id), '[{"id":1,"logic_type":"all","conditions":[]}]')));
const exists = async (id: number) => (await redis.exists(key(id))) === 1;
const gone = (id: number) => waitFor(async () => !(await exists(id)), `key of workflow ${id} evicted`);
const settle = () => settleDaemon(db, { fill, exists });

t.test('each kind of committed change evicts exactly the affected keys', async (t) => {
  const ws = [];
  for (let i = 0; i < 12; i++) ws.push(await sentry.workflow([2]));
  const [a, b, c, d, e, f, g, h, i, j, bystander] = ws;
  const spareGroup = await sentry.group();
  await settle();
  await fill(...ws.map((w) => w.id));
  const cond = (w: typeof a) => w.conditions.get(w.groups[0])!;
  const changes: Array<[string, string, unknown[], number[]]> = [
    ['DC update', 'UPDATE workflow_engine_datacondition SET comparison = $1 WHERE id = $2', ['{"v":7}', cond(a)[0]], [a.id]],
    ['DC move', 'UPDATE workflow_engine_datacondition SET condition_group_id = $1 WHERE id = $2', [c.groups[0], cond(b)[0]], [b.id, c.id]],
    ['DC delete', 'DELETE FROM workflow_engine_datacondition WHERE id = $1', [cond(d)[1]], [d.id]],
    ['DCG update', 'UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', e.groups[0]], [e.id]],
    ['WDCG move', 'UPDATE workflow_engine_workflowdataconditiongroup SET workflow_id = $1 WHERE condition_group_id = $2', [g.id, f.groups[0]], [f.id, g.id]],
    ['WDCG delete', 'DELETE FROM workflow_engine_workflowdataconditiongroup WHERE condition_group_id = $1', [h.groups[0]], [h.id]],
    ['WDCG insert', 'INSERT INTO workflow_engine_workflowdataconditiongroup (workflow_id, condition_group_id) VALUES ($1, $2)', [i.id, spareGroup], [i.id]],
    ['DC insert', `INSERT INTO workflow_engine_datacondition (comparison, condition_result, type, condition_group_id) VALUES ('1', 'true', 'eq', $1)`, [j.groups[0]], [j.id]],
  ];
  const expected = new Set<number>();
  for (const [what, sql, params, ids] of changes) {
    await db.query(sql, params);
    for (const id of ids) {
      await gone(id);
      expected.add(id);
    }
    t.pass(`${what} evicted ${ids.join(' and ')}`);
  }
  await settle();
  for (const w of ws) {
    if (!expected.has(w.id)) t.ok(await exists(w.id), `workflow ${w.id} untouched`);
  }
  t.ok(await exists(bystander.id));
  const logged = daemon.logs.filter((l) => l.msg === 'evicted');
  t.ok(logged.some((l) => l.src === 'dc' && (l.ids as number[]).includes(a.id)), 'at debug level each batch is logged with its table and ids');
  t.ok(logged.some((l) => l.src === 'wdcg' && (l.ids as number[]).includes(f.id)));
});

t.test('a WHEN group change evicts nothing', async (t) => {
  const w = await sentry.workflow([1], 2);
  await settle();
  await fill(w.id);
  await db.query('UPDATE workflow_engine_datacondition SET type = $1 WHERE condition_group_id = $2', ['x', w.whenGroup]);
  await settle();
  t.ok(await exists(w.id));
});

t.test('hostile payloads leave the daemon alive and keys untouched', async (t) => {
  const w = await sentry.workflow([1]);
  await settle();
  await fill(w.id, 424242);
  await redis.set(outsider, 'keep');
  const before = daemon.count('bad payload');
  const hostile = [
    'not json',
    '',
    '[]',
    'null',
    '{"v":2,"op":"evict","src":"dc","ts":1,"ids":[424242]}',
    `{"v":1,"op":"evict","src":"dc","ts":1,"ids":[424242,"${w.id}"]}`,
    '{"v":1,"op":"evict","src":"dc","ts":1,"ids":[424242,-1]}',
    '{"v":1,"op":"evict","src":"dc","ts":1,"ids":[424242,1.5]}',
    '{"v":1,"op":"evict","src":"dc","ts":1,"ids":"*"}',
    '{"v":1,"op":"evict","src":"users","ts":1,"ids":[424242]}',
    '{"v":1,"op":"flush","src":"dc","ts":1,"reason":"because"}',
    '{"v":1,"op":"drop","src":"dc","ts":1}',
    `{"v":1,"op":"evict","src":"dc","ts":1,"ids":[424242,${'9'.repeat(7900)}]}`,
    'x'.repeat(7999),
  ];
  for (const payload of hostile) await db.query('SELECT pg_notify($1, $2)', ['afc_action_filters', payload]);
  await settle();
  // The first ten of a 10 s window are logged one line each, the rest counted and summed up in one line.
  t.equal(daemon.count('bad payload') - before, 10, 'ten logged, one line each');
  const summary = await daemon.waitForLog('bad payloads not logged', () => true, 15_000);
  t.equal(summary.count, hostile.length - 10, 'the rest counted in one line at the end of the window');
  t.ok(await exists(w.id), 'a workflow named next to a bad id is not evicted');
  t.ok(await exists(424242), 'ids in rejected payloads are not evicted');
  t.equal(await redis.get(outsider), 'keep');
  t.equal(daemon.proc.exitCode, null, 'still running');
});

t.test('with --flush scan, TRUNCATE flushes every afc key under the prefix and nothing else', async (t) => {
  const url2 = await createTestDatabase(t, 'daemon_redis_trunc');
  const db2 = await connect(t, url2);
  await createSentrySchema(db2);
  await migrate(db2, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });
  const prefix2 = `${prefix}trunc:`;
  const d2 = spawnDaemon(t, ['--db', url2, '--cache', redisUrl, '--key-prefix', prefix2, '--flush', 'scan']);
  await d2.waitForLog('flushed', (l) => l.cause === 'connect');
  const many = Array.from({ length: 3000 }, (_, i) => cacheKey(prefix2, i + 1));
  await redis.mset(...many.flatMap((k) => [k, '[]']));
  await redis.set(`${prefix2}other:1`, 'keep');
  await redis.set(outsider, 'keep');
  await db2.query('TRUNCATE workflow_engine_datacondition');
  await waitFor(async () => (await redis.exists(...many)) === 0, 'all 3000 afc keys flushed');
  t.equal(await redis.get(`${prefix2}other:1`), 'keep', 'a non-afc key under the same prefix stays');
  t.equal(await redis.get(outsider), 'keep', 'an afc-shaped key under another prefix stays');
  await redis.unlink(`${prefix2}other:1`);
  t.equal(await d2.stop(), 0);
});

t.test('by default (--flush enumerate) a flush removes the entry of every workflow in the database, under every prefix, and nothing else', async (t) => {
  const url3 = await createTestDatabase(t, 'daemon_redis_enum');
  const db3 = await connect(t, url3);
  await createSentrySchema(db3, 'sentry');
  await migrate(db3, { schema: 'sentry', dryRun: false, lockTimeoutMs: 5000 });
  // More workflows than one page of the enumeration (10,000), with gaps in their ids.
  await db3.query(
    `INSERT INTO sentry.workflow_engine_workflow (id, name, organization_id) SELECT 3 * g, 'w', 1 FROM generate_series(1, 12000) g`,
  );
  const [p1, p2] = [`${prefix}enum1:`, `${prefix}enum2:`];
  const d3 = spawnDaemon(t, ['--db', url3, '--schema', 'sentry', '--cache', redisUrl, '--key-prefix', p1, '--key-prefix', p2]);
  await d3.waitForLog('flushed', (l) => l.cause === 'connect');
  const entries = Array.from({ length: 12000 }, (_, i) => 3 * (i + 1)).flatMap((id) => [cacheKey(p1, id), cacheKey(p2, id)]);
  for (let i = 0; i < entries.length; i += 2000) await redis.mset(...entries.slice(i, i + 2000).flatMap((k) => [k, '[]']));
  const bystanders = [cacheKey(p1, 1), cacheKey(p1, 36_001), `${p1}other:3`, cacheKey(`${prefix}enum3:`, 3), outsider];
  for (const k of bystanders) await redis.set(k, 'keep');
  await db3.query('TRUNCATE sentry.workflow_engine_workflowdataconditiongroup');
  await waitFor(async () => {
    for (let i = 0; i < entries.length; i += 2000) if ((await redis.exists(...entries.slice(i, i + 2000))) > 0) return false;
    return true;
  }, 'every workflow entry flushed under both prefixes');
  t.same(await Promise.all(bystanders.map((k) => redis.get(k))), bystanders.map(() => 'keep'), 'ids that are not workflows, other keys and other prefixes stay');
  // The line is written once the flush is done, a moment after its last delete.
  await d3.waitForLog('flushed', (l) => l.cause === 'truncate');
  await redis.unlink(...bystanders.filter((k) => k !== outsider));
  t.equal(await d3.stop(), 0);
});

t.test('after pg_terminate_backend it reconnects, flushes and evicts again', async (t) => {
  const cached = await sentry.workflow([1]);
  await settle();
  await fill(cached.id);
  const since = daemon.logs.length;
  const { rows } = await db.query(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'afc-daemon' AND datname = current_database()",
  );
  t.equal(rows.length, 1);
  await daemon.waitForLog('flushed', (l) => l.cause === 'reconnect', 15_000, since);
  t.notOk(await exists(cached.id), 'flushed after the reconnect');
  const w = await sentry.workflow([1]);
  await settle();
  await fill(w.id);
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['any', w.groups[0]]);
  await gone(w.id);
});

t.test('SIGTERM stops it promptly with exit 0 and nothing left open', async (t) => {
  const started = Date.now();
  const code = await daemon.stop('SIGTERM');
  t.equal(code, 0);
  t.ok(Date.now() - started < 5000, `exited in ${Date.now() - started} ms`);
  t.ok(daemon.logs.some((l) => l.msg === 'stopped'));
  // The server notices the closed socket a moment after the process exits.
  await waitFor(async () => {
    const r = await db.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'afc-daemon' AND datname = current_database()");
    return r.rows[0].n === 0;
  }, 'the daemon backend to disappear', 3000);
  t.pass('no daemon session left on the server');
});
