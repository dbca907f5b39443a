// What an operator sees: /metrics counters move by what really happened, /readyz follows the LISTEN
// connection, and `afc status` tells an installed, an uninstalled and a tampered database apart.
import t from 'tap';
import { migrate } from '../src/migrate/migrator.js';
import { AFC_BIN, runCli } from './helpers/cli.js';
import { spawnDaemon } from './helpers/daemon.js';
import { connect, createSentrySchema, createTestDatabase } from './helpers/pg.js';
import { Sentry } from './helpers/sentry.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import { waitFor } from './helpers/wait.js';

const url = await createTestDatabase(t, 'ops');
const db = await connect(t, url);
await createSentrySchema(db);
await migrate(db, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });
const sentry = new Sentry(db);
const proxy = await startTcpProxy(t, '127.0.0.1', Number(new URL(url).port || 5432));
const daemon = spawnDaemon(t, ['--db', proxy.via(url), '--http', '127.0.0.1:0', '--retry-max-ms', '200']);
const port = Number((await daemon.waitForLog('http listening')).port);
await daemon.waitForLog('flushed', (l) => l.cause === 'connect');
const base = `http://127.0.0.1:${port}`;

async function scrape(): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) values.set(m[1], Number(m[2]));
  }
  return values;
}
const delta = (before: Map<string, number>, after: Map<string, number>, name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);

t.test('/metrics counters move by exactly what happened', async (t) => {
  const start = (await scrape()).get('afc_notifications_received_total')!;
  const [a, b, c] = [await sentry.workflow([1]), await sentry.workflow([1]), await sentry.workflow([1])];
  // Creating a workflow notifies twice (its link, its action filter's condition); its WHEN condition not.
  await waitFor(async () => (await scrape()).get('afc_notifications_received_total') === start + 6, 'the creations counted');
  const before = await scrape();
  await db.query('UPDATE workflow_engine_datacondition SET type = $1 WHERE condition_group_id = $2', ['t', a.groups[0]]);
  await db.query('UPDATE workflow_engine_datacondition SET condition_group_id = $1 WHERE condition_group_id = $2', [c.groups[0], b.groups[0]]);
  // Applied before the TRUNCATE: a flush arriving first would cover (and not count) pending evictions.
  await waitFor(async () => delta(before, await scrape(), 'afc_invalidations_total{table="dc",store="memory"}') === 3, 'the evictions applied');
  await db.query(`SELECT pg_notify('afc_action_filters', 'garbage')`);
  await db.query('TRUNCATE workflow_engine_datacondition');
  await waitFor(async () => delta(before, await scrape(), 'afc_notifications_received_total') === 4, 'four notifications counted');
  const after = await waitFor(async () => {
    const m = await scrape();
    return delta(before, m, 'afc_flushes_total{reason="truncate",store="memory"}') === 1 ? m : undefined;
  }, 'the truncate flush counted');
  t.equal(delta(before, after, 'afc_invalidations_total{table="dc",store="memory"}'), 3, 'three workflow entries evicted (a; b and c)');
  t.equal(delta(before, after, 'afc_invalidations_total{table="wdcg",store="memory"}'), 0);
  t.equal(delta(before, after, 'afc_bad_payloads_total'), 1);
  t.equal(delta(before, after, 'afc_eviction_latency_seconds_count{store="memory"}'), 3, 'one latency sample per eviction');
  t.equal(after.get('afc_listener_connected'), 1);
  t.ok(after.get('afc_last_notification_age_seconds')! >= 0 && after.get('afc_last_notification_age_seconds')! < 10);
  t.ok(after.get('afc_daemon_process_resident_memory_bytes')! > 0, 'process metrics too');
});

t.test('/healthz answers, unknown paths are 404', async (t) => {
  t.equal((await fetch(`${base}/healthz`)).status, 200);
  t.equal((await fetch(`${base}/nope`)).status, 404);
  t.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
});

t.test('/readyz flips to 503 when the backend is terminated and back to 200 after reconnect', async (t) => {
  t.equal((await fetch(`${base}/readyz`)).status, 200);
  const reconnectsBefore = (await scrape()).get('afc_reconnects_total')!;
  proxy.refuseNew(); // so the reconnect cannot succeed until the test has seen 503
  await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'afc-daemon' AND datname = current_database()");
  const down = await waitFor(async () => {
    const r = await fetch(`${base}/readyz`);
    return r.status === 503 ? r.text() : undefined;
  }, '/readyz to report 503');
  t.match(down, /not listening on PostgreSQL/);
  t.equal((await scrape()).get('afc_listener_connected'), 0);
  proxy.restore();
  await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, '/readyz back to 200');
  t.equal((await scrape()).get('afc_reconnects_total'), reconnectsBefore + 1);
});

t.test('afc status: installed and listened to, ok with exit 0; --json for scripts', async (t) => {
  const human = await runCli(AFC_BIN, ['status', '--db', url]);
  t.equal(human.code, 0, human.stdout);
  t.match(human.stdout, /migration\s+3 \(package 3\)/);
  t.match(human.stdout, /listeners\s+1 afc-daemon session/);
  t.match(human.stdout, /status: ok/);
  const json = await runCli(AFC_BIN, ['status', '--db', url, '--json']);
  t.equal(json.code, 0);
  const s = JSON.parse(json.stdout);
  t.equal(s.installedVersion, 3);
  t.equal(s.triggers.length, 12);
  t.ok(s.triggers.every((tr: { exists: boolean; enabled: boolean }) => tr.exists && tr.enabled));
  t.equal(s.listeners, 1);
  t.same(s.problems, []);
  t.equal(typeof s.notificationQueueUsage, 'number');
});

t.test('afc status lists the listening sessions, and names the one holding a filling NOTIFY queue back', async (t) => {
  const listed = JSON.parse((await runCli(AFC_BIN, ['status', '--db', url, '--json'])).stdout) as { listening: Array<{ application_name: string; client_addr: string }> };
  t.ok(listed.listening.some((l) => l.application_name === 'afc-daemon' && l.client_addr === '127.0.0.1'), 'the daemon, with its client address');
  // A listener that sits in a transaction consumes nothing: every notification from now on stays queued.
  const stuck = await connect(t, url);
  await stuck.query(`SET application_name = 'stuck-listener'`);
  await stuck.query('LISTEN afc_status_test_other');
  await stuck.query('BEGIN');
  const { rows } = await stuck.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  // About 10 MB of notifications: just over 0.1 % of PostgreSQL's 8 GB queue.
  await db.query(`SELECT pg_notify('afc_status_test_noise', repeat('x', 7900) || g) FROM generate_series(1, 1400) g`);
  const r = await runCli(AFC_BIN, ['status', '--db', url]);
  t.match(r.stdout, new RegExp(`warning: the NOTIFY queue is 0\\.\\d+ % used \\(above 0\\.1 %\\): pid ${rows[0].pid} stuck-listener from 127\\.0\\.0\\.1:\\d+ holds it back \\(in a transaction for \\d+ s\\)`));
  t.ok(listed.listening.length >= 1);
  await stuck.query('ROLLBACK');
  await waitFor(async () => !/NOTIFY queue is/.test((await runCli(AFC_BIN, ['status', '--db', url])).stdout), 'the queue drained once it ended its transaction');
});

t.test('afc status: a disabled and a dropped trigger are each reported, exit 1', async (t) => {
  await db.query('ALTER TABLE workflow_engine_datacondition DISABLE TRIGGER afc_dc_update');
  const disabled = await runCli(AFC_BIN, ['status', '--db', url]);
  t.equal(disabled.code, 1);
  t.match(disabled.stdout, /DISABLED afc_dc_update/);
  t.match(disabled.stdout, /PROBLEM: trigger afc_dc_update on workflow_engine_datacondition is disabled/);
  await db.query('ALTER TABLE workflow_engine_datacondition ENABLE TRIGGER afc_dc_update');
  await db.query('DROP TRIGGER afc_wdcg_insert ON workflow_engine_workflowdataconditiongroup');
  const dropped = await runCli(AFC_BIN, ['status', '--db', url, '--json']);
  t.equal(dropped.code, 1);
  const s = JSON.parse(dropped.stdout);
  t.same(s.triggers.filter((tr: { exists: boolean }) => !tr.exists).map((tr: { name: string }) => tr.name), ['afc_wdcg_insert']);
  t.match(s.problems.join('\n'), /afc_wdcg_insert on workflow_engine_workflowdataconditiongroup is missing/);
});

t.test('afc status: an uninstalled database, exit 1', async (t) => {
  const other = await createTestDatabase(t, 'ops_bare');
  const c = await connect(t, other);
  await createSentrySchema(c);
  const r = await runCli(AFC_BIN, ['status', '--db', other]);
  t.equal(r.code, 1);
  t.match(r.stdout, /not installed/);
  t.match(r.stdout, /warning: no afc-daemon session/);
});

t.test('afc status warns when something between it and PostgreSQL answers on another port (a pooler?)', async (t) => {
  const r = await runCli(AFC_BIN, ['status', '--db', proxy.via(url), '--json']);
  t.equal(r.stderr, '', 'no error');
  const s = JSON.parse(r.stdout);
  t.equal(s.viaProxy, true);
  t.match(s.warnings.join('\n'), /PgBouncer in transaction mode/);
  const direct = JSON.parse((await runCli(AFC_BIN, ['status', '--db', url, '--json'])).stdout);
  t.equal(direct.viaProxy, false);
});

t.test('SIGTERM closes the HTTP server too', async (t) => {
  t.equal(await daemon.stop(), 0);
  await t.rejects(fetch(`${base}/healthz`));
});
