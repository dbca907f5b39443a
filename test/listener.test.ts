// The listener's connection state machine against a real PostgreSQL reached through a TCP proxy the test
// controls: first connect, loss and reconnect (reported in that order, with LISTEN active again before
// `onListening`), the start-up deadline, and close() in the middle of a reconnect.
import t, { type Test } from 'tap';
import pg from 'pg';
import { Listener, type ListenerHandlers } from '../src/daemon/listener.js';
import { AfcError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { connect, createTestDatabase } from './helpers/pg.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import { sleep, waitFor } from './helpers/wait.js';

const url = await createTestDatabase(t, 'listener');
const db = await connect(t, url);
const channel = 'afc_listener_test';

function recorder() {
  const seen: string[] = [];
  const payloads: string[] = [];
  const handlers: ListenerHandlers = {
    onNotification: (payload) => payloads.push(payload),
    onListening: ({ reconnect }) => seen.push(reconnect ? 'reconnected' : 'listening'),
    onDisconnected: (reason) => seen.push(`lost: ${reason}`),
  };
  return { seen, payloads, handlers };
}

async function start(t: Test, target: string, handlers: ListenerHandlers, startupTimeoutMs = 10_000): Promise<Listener> {
  const listener = await Listener.start(
    { db: { url: target, display: 'test' }, channel, heartbeatMs: 300, retryMaxMs: 100, startupTimeoutMs, log: silentLogger() },
    handlers,
  );
  t.teardown(() => listener.close());
  return listener;
}

const notify = (payload: string) => db.query('SELECT pg_notify($1, $2)', [channel, payload]);

t.test('a lost connection is reported, then LISTEN is re-established and reported as a reconnect', async (t) => {
  const proxy = await startTcpProxy(t, '127.0.0.1', Number(new URL(url).port || 5432));
  const r = recorder();
  const listener = await start(t, proxy.via(url), r.handlers);
  t.same(r.seen, ['listening'], 'the first LISTEN is reported once, not as a reconnect');
  t.ok(listener.connected);
  await notify('one');
  await waitFor(() => r.payloads.includes('one'), 'a notification before the cut');

  proxy.cut();
  await waitFor(() => r.seen.length === 2, 'the loss reported');
  t.match(r.seen[1], /^lost: /);
  t.notOk(listener.connected, 'not connected while the server is out of reach');
  await notify('lost');
  proxy.restore();
  await waitFor(() => r.seen.length === 3, 'the reconnect reported', 15_000);
  t.equal(r.seen[2], 'reconnected');
  t.ok(listener.connected);
  // onListening comes after LISTEN is active: a notification sent right now arrives.
  await notify('two');
  await waitFor(() => r.payloads.includes('two'), 'a notification after the reconnect');
  t.notOk(r.payloads.includes('lost'), 'what was sent while disconnected is gone: that is why the daemon flushes on reconnect');
});

t.test('a terminated backend is replaced the same way', async (t) => {
  const r = recorder();
  await start(t, url, r.handlers);
  const { rows } = await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`);
  t.equal(rows.length, 1);
  await waitFor(() => r.seen.includes('reconnected'), 'reconnected', 15_000);
  t.same(r.seen.slice(0, 2), ['listening', 'lost: connection lost']);
});

t.test('an unreachable server fails start-up with an AfcError once the deadline has passed', async (t) => {
  const proxy = await startTcpProxy(t, '127.0.0.1', Number(new URL(url).port || 5432));
  proxy.refuseNew();
  const r = recorder();
  const started = Date.now();
  const error = await Listener.start(
    { db: { url: proxy.via(url), display: 'the test proxy' }, channel, heartbeatMs: 300, retryMaxMs: 100, startupTimeoutMs: 600, log: silentLogger() },
    r.handlers,
  ).catch((e: unknown) => e);
  t.type(error, AfcError);
  t.match((error as Error).message, /cannot LISTEN on PostgreSQL at the test proxy/);
  const elapsed = Date.now() - started;
  t.ok(elapsed >= 400 && elapsed < 5000, `gave up at the deadline (${elapsed} ms)`);
  t.same(r.seen, [], 'nothing reported: it never listened');
});

t.test('close() during a reconnect stops it for good', async (t) => {
  const proxy = await startTcpProxy(t, '127.0.0.1', Number(new URL(url).port || 5432));
  const r = recorder();
  const listener = await start(t, proxy.via(url), r.handlers);
  proxy.cut();
  await waitFor(() => r.seen.length === 2, 'the loss reported');
  const closing = Date.now();
  await listener.close();
  t.ok(Date.now() - closing < 2000, 'close returns promptly while reconnecting');
  proxy.restore();
  // Past several retry periods (retryMaxMs 100): a reconnect that survived close() would have connected.
  await sleep(600);
  t.equal(proxy.connections(), 0, 'no connection opened after close');
  t.same(r.seen.slice(2), [], 'no reconnect reported after close');
  t.notOk(listener.connected);
});

t.test('start-up keeps retrying until the server answers within the deadline', async (t) => {
  const proxy = await startTcpProxy(t, '127.0.0.1', Number(new URL(url).port || 5432));
  proxy.refuseNew();
  const r = recorder();
  const starting = start(t, proxy.via(url), r.handlers, 10_000);
  await sleep(300);
  proxy.restore();
  const listener = await starting;
  t.ok(listener.connected);
  t.same(r.seen, ['listening']);
  const check = new pg.Client({ connectionString: url });
  await check.connect();
  const { rows } = await check.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`);
  await check.end();
  t.ok(rows[0].n >= 1, 'its LISTEN session is on the server');
});
