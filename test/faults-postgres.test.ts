// PostgreSQL stopped for longer than pg-listen's default 3 s retry timeout and started again: the daemon
// keeps retrying, reconnects, flushes, and evicts again. A private server, never the shared one.
import t from 'tap';
import { Redis } from 'ioredis';
import { cacheKey } from '../src/contract.js';
import { migrate } from '../src/migrate/migrator.js';
import { spawnDaemon } from './helpers/daemon.js';
import { connect, createSentrySchema } from './helpers/pg.js';
import { startPgInstance } from './helpers/pg-instance.js';
import { requireRedis } from './helpers/redis.js';
import { Sentry } from './helpers/sentry.js';
import { settle as settleDaemon } from './helpers/settle.js';
import { sleep, waitFor } from './helpers/wait.js';

const server = await startPgInstance(t);
let db = await connect(t, server.url);
await createSentrySchema(db);
await migrate(db, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });

const redisUrl = await requireRedis();
const prefix = `afc-test:faults-pg:${process.pid}:`;
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
t.teardown(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.unlink(...keys);
  await redis.quit();
});
const key = (id: number) => cacheKey(prefix, id);
const exists = async (id: number) => (await redis.exists(key(id))) === 1;

const settle = () => settleDaemon(db, { fill: (id) => redis.set(key(id), '[]'), exists });

const daemon = spawnDaemon(t, ['--db', server.url, '--cache', redisUrl, '--key-prefix', prefix, '--heartbeat-ms', '1000', '--retry-max-ms', '1000']);
await daemon.waitForLog('flushed', (l) => l.cause === 'connect');

t.test('PostgreSQL down for 5 s and back: reconnect, flush, evict again', async (t) => {
  const w = await new Sentry(db).workflow([1]);
  await settle();
  await redis.set(key(w.id), 'cached before the outage');
  const since = daemon.logs.length;
  await db.end();
  await server.stop();
  await daemon.waitForLog('listener disconnected', () => true, 10_000, since);
  await sleep(5000);
  t.equal(daemon.proc.exitCode, null, 'still running after more than 3 s without a server');
  await server.start();
  await daemon.waitForLog('flushed', (l) => l.cause === 'reconnect', 20_000, since);
  t.notOk(await exists(w.id), 'the reconnect flushed what may have changed during the outage');
  db = await connect(t, server.url);
  const sentry = new Sentry(db);
  const after = await sentry.workflow([1]);
  await settle();
  await redis.set(key(after.id), '[]');
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', after.groups[0]]);
  await waitFor(async () => !(await exists(after.id)), 'evicted after the restart');
  t.equal(await daemon.stop(), 0);
});
