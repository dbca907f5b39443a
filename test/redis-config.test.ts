// A Redis that answers but is set up otherwise than the URL says must never be written in the wrong place:
// a database index it does not have and a wrong password fail start-up with the server's own words; an ACL
// user limited to the entry pattern, as the README writes it, is all afc needs.
import t from 'tap';
import { Redis } from 'ioredis';
import { cacheKey } from '../src/contract.js';
import { cleanEnv, DAEMON_BIN, runCli } from './helpers/cli.js';
import { spawnDaemon } from './helpers/daemon.js';
import { startPrivateRedis } from './helpers/private-redis.js';
import { migratedSentryDatabase } from './helpers/sentry.js';
import { waitFor } from './helpers/wait.js';

const { url, db, sentry } = await migratedSentryDatabase(t, 'redis_config');
const server = await startPrivateRedis(t);
const admin = new Redis(server.url);
t.teardown(() => admin.quit());

t.test('a database index the server does not have fails start-up (exit 1) with its words; nothing lands in db 0', async (t) => {
  await admin.set(cacheKey('', 1), 'in db 0');
  const r = await runCli(DAEMON_BIN, ['--db', url, '--cache', `redis://127.0.0.1:${server.port}/16`, '--startup-timeout-ms', '5000'], cleanEnv());
  t.equal(r.code, 1);
  t.match(r.stderr, /Redis at redis:\/\/127\.0\.0\.1:\d+\/16 refused database 16: ERR DB index is out of range/);
  t.equal(await admin.get(cacheKey('', 1)), 'in db 0', 'database 0 untouched (no flush ran there)');
});

t.test('a wrong password fails start-up with the server\'s message, not a socket error', async (t) => {
  await admin.call('ACL', 'SETUSER', 'afc_wrong', 'on', '>right', '~*', '+@all');
  const r = await runCli(DAEMON_BIN, ['--db', url, '--cache', `redis://afc_wrong:wrong@127.0.0.1:${server.port}/0`, '--startup-timeout-ms', '5000'], cleanEnv());
  t.equal(r.code, 1);
  t.match(r.stderr, /refused the credentials: WRONGPASS/);
  t.notMatch(r.stderr + r.stdout, /:wrong@/, 'the password is not printed');
  t.notMatch(r.stderr, /Stream isn't writeable/);
  const notJson = r.stdout.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('{'));
  t.same(notJson, [], 'every line of the log is JSON (nothing printed by the Redis client itself)');
});

t.test('an ACL that refuses what afc needs is reported by /readyz with the server\'s words', async (t) => {
  await admin.call('ACL', 'SETUSER', 'afc_noperm', 'on', '>pw', '~:1:workflow:action_filters_by_workflow:*', '+ping', '+client|info');
  await sentry.workflow([1]); // the start-up flush has at least one entry to UNLINK, which this user may not
  const daemon = spawnDaemon(t, ['--db', url, '--cache', `redis://afc_noperm:pw@127.0.0.1:${server.port}/0`, '--key-prefix', ':1:', '--http', '127.0.0.1:0', '--retry-max-ms', '300'], cleanEnv());
  const port = Number((await daemon.waitForLog('http listening')).port);
  const body = await waitFor(async () => {
    const r = await fetch(`http://127.0.0.1:${port}/readyz`);
    return r.status === 503 ? r.text() : undefined;
  }, '/readyz 503');
  t.match(body, /refused a command by ACL: NOPERM/);
  t.equal(await daemon.stop(), 0);
});

t.test("the README's ACL user, limited to the entry pattern, evicts and flushes without a refusal", async (t) => {
  // The line of the README's "Evicting Sentry's cache" section, as written there.
  await admin.call('ACL', 'SETUSER', 'afc', 'on', '>secret', '~:1:workflow:action_filters_by_workflow:*', '+unlink', '+scan', '+ping', '+client|info');
  const daemon = spawnDaemon(t, ['--db', url, '--cache', `redis://afc:secret@127.0.0.1:${server.port}/0`, '--key-prefix', ':1:', '--flush-floor-ms', '0'], cleanEnv());
  await daemon.waitForLog('flushed', (l) => l.cause === 'connect');
  const [w, other] = [await sentry.workflow([1]), await sentry.workflow([1])];
  await admin.mset(cacheKey(':1:', w.id), 'x', cacheKey(':1:', other.id), 'y', 'unrelated', 'z');
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
  await waitFor(async () => (await admin.exists(cacheKey(':1:', w.id))) === 0, 'evicted');
  await db.query('TRUNCATE workflow_engine_datacondition');
  await waitFor(async () => (await admin.exists(cacheKey(':1:', other.id))) === 0, 'flushed');
  t.equal(await admin.get('unrelated'), 'z');
  t.equal(daemon.count('store unavailable'), 0, 'no store error (no NOPERM)');
  t.notOk(daemon.logs.some((l) => /NOPERM/.test(JSON.stringify(l))), 'no refusal anywhere in the log');
  t.equal(await daemon.stop(), 0);
});
