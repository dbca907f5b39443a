// Redis going away and coming back: evictions that could not be applied are not forgotten, the daemon
// flushes once Redis answers again, and evicts as before afterwards. Uses a private redis-server, reached
// by the daemon through a TCP proxy so the test can cut the daemon off while the data survives.
import t from 'tap';
import { Redis } from 'ioredis';
import { cacheKey } from '../src/contract.js';
import { migrate } from '../src/migrate/migrator.js';
import { spawnDaemon } from './helpers/daemon.js';
import { connect, createSentrySchema, createTestDatabase } from './helpers/pg.js';
import { startPrivateRedis } from './helpers/private-redis.js';
import { Sentry } from './helpers/sentry.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import { settle as settleDaemon } from './helpers/settle.js';
import { sleep, waitFor } from './helpers/wait.js';

const url = await createTestDatabase(t, 'faults_redis');
const db = await connect(t, url);
await createSentrySchema(db);
await migrate(db, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });
const sentry = new Sentry(db);
const redisServer = await startPrivateRedis(t);
const proxy = await startTcpProxy(t, '127.0.0.1', redisServer.port);
const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
redis.on('error', () => undefined);
t.teardown(() => redis.disconnect());

const daemon = spawnDaemon(t, ['--db', url, '--cache', `redis://127.0.0.1:${proxy.port}/0`, '--retry-max-ms', '300']);
await daemon.waitForLog('flushed', (l) => l.cause === 'connect');
const key = (id: number) => cacheKey('', id);
const exists = async (id: number) => (await redis.exists(key(id))) === 1;
const settle = () => settleDaemon(db, { fill: (id) => redis.set(key(id), '[]'), exists });

t.test('a change committed while Redis is unreachable is applied as a flush once Redis is back', async (t) => {
  const [changed, other] = [await sentry.workflow([1]), await sentry.workflow([1])];
  await settle();
  await redis.mset(key(changed.id), 'soon stale', key(other.id), 'fine');
  proxy.cut();
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', changed.groups[0]]);
  await daemon.waitForLog('store unavailable');
  await sleep(1500);
  t.equal(daemon.proc.exitCode, null, 'the daemon keeps running and retrying');
  t.ok(await exists(changed.id), 'the eviction could not be applied while Redis was unreachable');
  proxy.restore();
  await waitFor(async () => !(await exists(changed.id)), 'the stale entry gone once Redis is reachable', 15_000);
  t.notOk(await exists(other.id), 'every entry was flushed, since which ones went stale is unknown');
  t.ok(daemon.logs.some((l) => l.msg === 'flushed' && l.cause === 'redis-recovery'));
});

t.test('after a Redis restart the daemon flushes and evicts as before', async (t) => {
  const since = daemon.logs.length;
  await redisServer.stop();
  await daemon.waitForLog('redis error', () => true, 10_000, since);
  await redisServer.start();
  await daemon.waitForLog('flushed', (l) => l.cause === 'redis-recovery', 15_000, since);
  await waitFor(async () => (await redis.ping()) === 'PONG', 'test client reconnected');
  const w = await sentry.workflow([1]);
  await settle();
  await redis.set(key(w.id), '[]');
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['all', w.groups[0]]);
  await waitFor(async () => !(await exists(w.id)), 'evicted after the restart');
  t.equal(await daemon.stop(), 0);
});
