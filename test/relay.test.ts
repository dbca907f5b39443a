// Fleet scale: relays LISTEN on PostgreSQL and append to a Redis Stream; hosts read the stream (no LISTEN
// of their own) and evict. Through relay → stream → host, every kind of change evicts exactly; two relays
// active-active cover each other (one cut: no host flush; both cut: one flush per host); a host cut off
// from Redis resumes without a flush, one left behind the trimmed end flushes, a Redis restart that loses
// the stream leaves no stale entry; both roles stop on SIGTERM.
import t, { type Test } from 'tap';
import NodeCache from 'node-cache';
import { startDaemon, createMemoryStore, type Daemon } from 'afc';
import { cacheKey } from '../src/contract.js';
import { cleanEnv } from './helpers/cli.js';
import { spawnDaemon, type DaemonChild } from './helpers/daemon.js';
import { startPrivateRedis } from './helpers/private-redis.js';
import { migratedSentryDatabase, type WorkflowRows } from './helpers/sentry.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { sleep, waitFor } from './helpers/wait.js';

const HB = 200;
// Hosts that start right after a relay cannot tell it covered their start (clock margin): let it run first.
const SETTLE_RELAYS_MS = 800;
const { url, db, sentry } = await migratedSentryDatabase(t, 'relay');
const redis = await startPrivateRedis(t);
const pgPort = Number(new URL(url).port || 5432);

interface Relay {
  child: DaemonChild;
  proxy: TcpProxy;
  /** Ends its PostgreSQL session from the server's side. */
  terminate(): Promise<void>;
}

async function startRelay(t: Test, extra: string[] = []): Promise<Relay> {
  const proxy = await startTcpProxy(t, '127.0.0.1', pgPort);
  const child = spawnDaemon(t, ['--db', proxy.via(url), '--publish', redis.url, '--stream-heartbeat-ms', String(HB), '--heartbeat-ms', '500', '--retry-max-ms', '200', ...extra], cleanEnv());
  await child.waitForLog('relay session');
  return {
    child,
    proxy,
    async terminate() {
      const { rows } = await db.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'afc-relay-%' AND client_port = ANY($1::int[])`,
        [proxy.upstreamPorts()],
      );
      if (rows.length !== 1) throw new Error(`expected one relay backend behind the proxy, found ${rows.length}`);
    },
  };
}

interface Host {
  daemon: Daemon;
  cache: NodeCache;
  has(id: number): boolean;
  fill(...ids: number[]): void;
}

async function startHost(t: Test, source = redis.url): Promise<Host> {
  const cache = new NodeCache({ useClones: false });
  const daemon = await startDaemon({ source, store: createMemoryStore({ keyPrefix: '', cache }), streamHeartbeatMs: HB, retryMaxMs: 200, flushFloorMs: 0 });
  t.teardown(() => daemon.stop());
  return {
    daemon,
    cache,
    has: (id) => cache.has(cacheKey('', id)),
    fill: (...ids) => ids.forEach((id) => cache.set(cacheKey('', id), [])),
  };
}

/** Every host has applied what was committed so far: a fresh workflow's creation evicts its (planted) entry. */
async function settle(hosts: Host[]): Promise<void> {
  const probe = await sentry.workflow([]);
  for (const h of hosts) h.fill(probe.id);
  const g = await sentry.group();
  await sentry.link(probe.id, g);
  for (const h of hosts) await waitFor(() => !h.has(probe.id), 'the probe evicted on every host');
}

const relayFlushes = (h: Host) => h.daemon.stats.flushes['relay-gap'] + h.daemon.stats.flushes.trimmed;

t.test('through relay, stream and host, every kind of change evicts exactly the affected entries', async (t) => {
  const relay = await startRelay(t);
  await sleep(SETTLE_RELAYS_MS);
  const host = await startHost(t);
  t.equal(host.daemon.listening, true);
  const ws: WorkflowRows[] = [];
  for (let i = 0; i < 11; i++) ws.push(await sentry.workflow([2]));
  const [a, b, c, d, e, f, g, h, i, j, k] = ws;
  const spare = await sentry.group();
  await settle([host]);
  host.fill(...ws.map((w) => w.id));
  const cond = (w: WorkflowRows) => w.conditions.get(w.groups[0])!;
  const changes: Array<[string, string, unknown[], number[]]> = [
    ['WDCG insert', 'INSERT INTO workflow_engine_workflowdataconditiongroup (workflow_id, condition_group_id) VALUES ($1, $2)', [a.id, spare], [a.id]],
    ['WDCG update', 'UPDATE workflow_engine_workflowdataconditiongroup SET workflow_id = $1 WHERE condition_group_id = $2', [c.id, b.groups[0]], [b.id, c.id]],
    ['WDCG delete', 'DELETE FROM workflow_engine_workflowdataconditiongroup WHERE condition_group_id = $1', [d.groups[0]], [d.id]],
    ['DCG update', 'UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', e.groups[0]], [e.id]],
    ['DC insert', `INSERT INTO workflow_engine_datacondition (comparison, condition_result, type, condition_group_id) VALUES ('1', 'true', 'eq', $1)`, [f.groups[0]], [f.id]],
    ['DC update', 'UPDATE workflow_engine_datacondition SET comparison = $1 WHERE id = $2', ['{"v":3}', cond(g)[0]], [g.id]],
    ['DC move', 'UPDATE workflow_engine_datacondition SET condition_group_id = $1 WHERE id = $2', [i.groups[0], cond(h)[0]], [h.id, i.id]],
    ['DC delete', 'DELETE FROM workflow_engine_datacondition WHERE id = $1', [cond(j)[1]], [j.id]],
  ];
  for (const [what, sql, params, ids] of changes) {
    await db.query(sql, params);
    for (const id of ids) await waitFor(() => !host.has(id), `${what} evicted ${id}`);
  }
  await settle([host]);
  t.ok(host.has(k.id), 'an untouched workflow stays');
  // A group deleted before its link (the foreign keys are checked at commit, as Django leaves them).
  await db.query(`BEGIN; DELETE FROM workflow_engine_datacondition WHERE condition_group_id = ${k.groups[0]};
    DELETE FROM workflow_engine_dataconditiongroup WHERE id = ${k.groups[0]}`);
  await db.query(`DELETE FROM workflow_engine_workflowdataconditiongroup WHERE condition_group_id = ${k.groups[0]}; COMMIT`);
  await waitFor(() => !host.has(k.id), 'DCG delete evicted');
  host.fill(a.id);
  await db.query('TRUNCATE workflow_engine_datacondition');
  await waitFor(() => !host.has(a.id), 'TRUNCATE flushed');
  t.equal(host.daemon.stats.flushes.truncate, 1);
  t.equal(relayFlushes(host), 0, 'no relay-gap flush');
  const { rows } = await db.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE (application_name = 'afc-daemon' OR application_name LIKE 'afc-relay-%') AND datname = current_database()`,
  );
  t.equal(rows[0].n, 1, 'one LISTEN session: the relay; the host has none');
  t.equal(await relay.child.stop('SIGTERM'), 0, 'the relay stops on SIGTERM');
});

t.test('two relays: one losing its backend makes no host flush; both losing theirs, one flush per host', async (t) => {
  const [r1, r2] = [await startRelay(t), await startRelay(t)];
  await sleep(SETTLE_RELAYS_MS);
  const hosts = [await startHost(t), await startHost(t)];
  await settle(hosts);
  const w = await sentry.workflow([1]);
  await settle(hosts);
  const before = hosts.map(relayFlushes);

  await r1.terminate();
  await r1.child.waitForLog('relay session', (l) => Number(l.session) === 2);
  for (const h of hosts) h.fill(w.id);
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
  for (const h of hosts) await waitFor(() => !h.has(w.id), 'evicted through the relays');
  await sleep(3000); // past the point where an uncovered stretch would have made the hosts flush
  t.same(hosts.map(relayFlushes), before, 'no host flushed: the other relay covered the gap');

  await Promise.all([r1.terminate(), r2.terminate()]);
  await Promise.all([r1.child.waitForLog('relay session', (l) => Number(l.session) === 3), r2.child.waitForLog('relay session', (l) => Number(l.session) === 2)]);
  for (const [i, h] of hosts.entries()) await waitFor(() => relayFlushes(h) === before[i] + 1, 'one flush on each host', 10_000);
  await sleep(3000);
  t.same(hosts.map(relayFlushes), before.map((n) => n + 1), 'exactly one flush per host');
  await settle(hosts);
});

t.test('a host cut off from Redis resumes without a flush and misses nothing; one left behind the trimmed end flushes', async (t) => {
  await startRelay(t, ['--retention', '100']);
  await sleep(SETTLE_RELAYS_MS);
  const proxy = await startTcpProxy(t, '127.0.0.1', redis.port);
  const host = await startHost(t, `redis://127.0.0.1:${proxy.port}/0`);
  const w = await sentry.workflow([1]);
  await settle([host]);
  const before = relayFlushes(host);
  host.fill(w.id);
  proxy.cut();
  await waitFor(() => !host.daemon.listening, 'the host noticed');
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
  await sleep(1500);
  t.ok(host.has(w.id), 'stale while cut off');
  proxy.restore();
  await waitFor(() => !host.has(w.id), 'the change read from the stream after the cut');
  t.equal(relayFlushes(host), before, 'no flush: every entry it needed was still there');
  t.ok(host.daemon.stats.consumed > 0, 'it counts what it read');
  await waitFor(() => host.daemon.stats.lagEntries === 0, 'caught up: no entry left to read');

  const v = await sentry.workflow([1]);
  await settle([host]);
  host.fill(v.id);
  proxy.cut();
  await waitFor(() => !host.daemon.listening, 'the host noticed');
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', v.groups[0]]);
  // Far more entries than --retention keeps.
  for (let i = 0; i < 60; i++) await db.query(`UPDATE workflow_engine_dataconditiongroup SET logic_type = logic_type WHERE id IN (SELECT condition_group_id FROM workflow_engine_workflowdataconditiongroup ORDER BY id DESC LIMIT 1 OFFSET ${i % 5})`);
  for (let i = 0; i < 300; i++) await db.query(`UPDATE workflow_engine_dataconditiongroup SET logic_type = logic_type WHERE id = $1`, [v.groups[0]]);
  proxy.restore();
  await waitFor(() => host.daemon.stats.flushes.trimmed === 1, 'a flush: the entries it needed were trimmed');
  t.notOk(host.has(v.id));
});

t.test('a Redis restart that loses the stream leaves no stale entry', async (t) => {
  await startRelay(t);
  await sleep(SETTLE_RELAYS_MS);
  const host = await startHost(t);
  const w = await sentry.workflow([1]);
  await settle([host]);
  await redis.stop();
  host.fill(w.id);
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
  await redis.start();
  await waitFor(() => !host.has(w.id), 'the entry gone after the restart', 20_000);
  t.ok(relayFlushes(host) >= 1, 'by a flush: the change was never in the stream the host reads');
  await settle([host]);
});

t.test("a relay whose event loop stalls past --stall-ms has its LISTEN session ended by its watchdog, then reconnects", async (t) => {
  const relay = await startDaemon({ db: url, publish: redis.url, store: undefined, stallMs: 400, streamHeartbeatMs: HB, heartbeatMs: 300, retryMaxMs: 200 });
  t.teardown(() => relay.stop());
  const sessions = async () =>
    (await db.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'afc-relay-%' AND datname = current_database()`)).rows.map((r) => r.pid);
  const before = await sessions();
  t.equal(before.length, 1, 'the relay LISTENs');
  // Block this thread (the relay's event loop) for 2 s; only the watchdog thread runs meanwhile.
  const until = Date.now() + 2000;
  while (Date.now() < until) {
    /* stalled */
  }
  await waitFor(() => relay.stats.reconnects === 1, 'the relay reconnected after the stall');
  const after = await sessions();
  t.equal(after.length, 1);
  t.not(after[0], before[0], 'its old LISTEN session was ended during the stall, a new one replaced it');
});

t.test('a host process stops on SIGTERM with exit 0', async (t) => {
  const child = spawnDaemon(t, ['--source', redis.url, '--cache', 'memory', '--stream-heartbeat-ms', String(HB)], cleanEnv());
  await child.waitForLog('flushed', (l) => l.cause === 'connect');
  t.equal(await child.stop('SIGTERM'), 0);
});
