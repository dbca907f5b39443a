// Hostile database users and misconfigured servers (any role with CONNECT may NOTIFY the channel): floods
// of forged flushes and evictions are rejected (unsigned), counted, logged a few lines a window, and a
// real change is still evicted meanwhile (the floor between flushes and the bound on pending ids, for what
// does verify, are in test/evictor.test.ts); a server that would cut idle sessions does not make
// the daemon reconnect (and flush) again and again; SIGTERM during start-up retries stops it at once.
import t from 'tap';
import NodeCache from 'node-cache';
import { startDaemon, createMemoryStore } from 'afc';
import { cacheKey, DEFAULT_CHANNEL } from '../src/contract.js';
import { quoteIdent } from '../src/sql/quote.js';
import { spawnDaemon } from './helpers/daemon.js';
import { cleanEnv } from './helpers/cli.js';
import { connect } from './helpers/pg.js';
import { migratedSentryDatabase } from './helpers/sentry.js';
import { sleep, waitFor } from './helpers/wait.js';

const { url, db, sentry } = await migratedSentryDatabase(t, 'hostile');

// A role with nothing but CONNECT: what any database user can do.
const role = `afc_hostile_${process.pid}`;
await db.query(`CREATE ROLE ${quoteIdent(role)} LOGIN`);
t.teardown(async () => {
  await db.query(`DROP OWNED BY ${quoteIdent(role)}`).catch(() => undefined);
  await db.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`).catch(() => undefined);
});
const attackerUrl = (() => {
  const u = new URL(url);
  u.username = role;
  u.password = '';
  return u.toString();
})();

const cache = new NodeCache({ useClones: false });
const store = createMemoryStore({ keyPrefix: '', cache });
const daemon = await startDaemon({ db: url, store, flushFloorMs: 500 });
t.teardown(() => daemon.stop());
await waitFor(() => daemon.stats.flushes.connect === 1, 'the connect flush');
const key = (id: number) => cacheKey('', id);

t.test('5,000 forged flushes flush nothing and are counted, and a real change is still evicted', async (t) => {
  const attacker = await connect(t, attackerUrl);
  const w = await sentry.workflow([1]);
  cache.set(key(w.id), []);
  const before = daemon.stats.flushes.truncate;
  const bad = daemon.stats.badPayloads;
  const storm = (async () => {
    // Distinct payloads (identical ones in one transaction are delivered once), 100 per commit.
    for (let i = 0; i < 50; i++) {
      await attacker.query(
        `SELECT pg_notify($1, '{"v":1,"op":"flush","src":"dc","ts":' || (g + $2::int) || ',"reason":"truncate"}') FROM generate_series(1, 100) g`,
        [DEFAULT_CHANNEL, i * 100],
      );
    }
  })();
  await sleep(200);
  cache.set(key(w.id), []);
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
  await waitFor(() => !cache.has(key(w.id)), 'the real change evicted during the storm');
  await storm;
  await waitFor(() => daemon.stats.badPayloads - bad === 5000, 'every forged flush rejected (unsigned)');
  t.equal(daemon.stats.flushes.truncate - before, 0, 'no flush');
  t.equal(daemon.listening, true);
});

t.test('a flood of forged evictions is rejected, the pending set stays bounded, and a real change is still evicted', async (t) => {
  const attacker = await connect(t, attackerUrl);
  const w = await sentry.workflow([1]);
  let maxPending = 0;
  const sampler = setInterval(() => (maxPending = Math.max(maxPending, daemon.pendingEvictions)), 5);
  t.teardown(() => clearInterval(sampler));
  const storm = (async () => {
    // 600 payloads of 900 ids each: 540,000 forged ids.
    for (let i = 0; i < 30; i++) {
      await attacker.query(
        `SELECT pg_notify($1, '{"v":1,"op":"evict","src":"dc","ts":1,"ids":[' ||
           (SELECT string_agg((1000000 + (b * 900 + k))::text, ',') FROM generate_series(1, 900) k) || ']}')
           FROM generate_series($2::int, $2::int + 19) b`,
        [DEFAULT_CHANNEL, i * 20],
      );
    }
  })();
  cache.set(key(w.id), []);
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['all', w.groups[0]]);
  await waitFor(() => !cache.has(key(w.id)), 'the real change evicted during the storm', 15_000);
  await storm;
  await waitFor(() => daemon.pendingEvictions === 0, 'the storm drained', 15_000);
  clearInterval(sampler);
  t.ok(maxPending <= 100_000 + 900, `at most ${maxPending} ids were pending at once (bound 100,000)`);
  t.equal(daemon.listening, true, 'still listening');
});

t.test('a server that cuts idle sessions (idle_session_timeout 1 s, below the 2 s heartbeat) does not make it reconnect', async (t) => {
  const { url: url2, db: db2 } = await migratedSentryDatabase(t, 'hostile_idle');
  await db2.query(`ALTER DATABASE ${quoteIdent(new URL(url2).pathname.slice(1))} SET idle_session_timeout = '1s'`);
  const child = spawnDaemon(t, ['--db', url2, '--heartbeat-ms', '2000'], cleanEnv());
  await child.waitForLog('flushed', (l) => l.cause === 'connect');
  const warning = await child.waitForLog('server would cut the LISTEN session');
  t.same(warning.settings, { idle_session_timeout: '1000ms' }, 'the setting is named in a warning');
  await sleep(5000);
  t.equal(child.count('listener reconnected'), 0, 'no reconnect in 5 s (it used to reconnect every second)');
  t.equal(child.count('flushed'), 1, 'no flush after the first');
  t.equal(await child.stop(), 0);
});

t.test('SIGTERM during start-up retries stops it at once with exit 0', async (t) => {
  const child = spawnDaemon(t, ['--db', 'postgres://afc@127.0.0.1:1/none', '--startup-timeout-ms', '30000'], cleanEnv());
  await child.waitForLog('cannot connect to PostgreSQL');
  const started = Date.now();
  const code = await child.stop('SIGTERM');
  t.equal(code, 0);
  t.ok(Date.now() - started < 5000, `exited in ${Date.now() - started} ms, not after the 30 s start-up deadline`);
});
