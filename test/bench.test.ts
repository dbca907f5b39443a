// `npm run bench -- --quick` as a user runs it: it finishes, prints the table with the targets, and writes
// every figure the README quotes. No figure's value is checked (timings belong to the benchmark, never to
// the tests), only that each was measured, and that the measurement itself saw what it had to: no
// eviction missed, no write failed, notifications sent. It cleans up its database and its processes.
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { cleanEnv, runCli } from './helpers/cli.js';
import { serverUrl } from './helpers/pg.js';

const BENCH = fileURLToPath(new URL('../dist/bench/run.js', import.meta.url));
// The quick run takes 60-100 s (more on a machine busy with other work): room for it beyond tap's default.
const RUN_TIMEOUT_MS = 170_000;
t.setTimeout(RUN_TIMEOUT_MS + 30_000);

// The figures the README's benchmark table is made of, for each store and rate.
const QUOTED = [
  'trigger_overhead_single_row_ratio',
  'trigger_overhead_single_row_no_listener_ratio',
  'trigger_overhead_single_row_4_clients_ratio',
  'trigger_cost_single_row_us',
  'trigger_overhead_bulk_10k_ratio',
  'notify_rtt_p50_ms',
  'notify_rtt_p99_ms',
  ...['redis', 'memory'].flatMap((store) =>
    ['1k', '20k'].flatMap((rate) =>
      ['p50_ms', 'p99_ms', 'p999_ms', 'after_ack_p50_ms', 'after_ack_p99_ms', 'after_ack_p999_ms', 'raw_notify_p50_ms', 'raw_notify_p99_ms', 'p99_to_raw_notify_same_load_ratio', 'rows_per_s'].map(
        (figure) => `evict_${store}_${rate}_${figure}`,
      ),
    ),
  ),
  // Issue 11: memcached (2 nodes) and a Redis Cluster (3 masters) through the real daemon, at 1k rows/s.
  ...['memcached', 'redis_cluster'].flatMap((store) =>
    ['p50_ms', 'p99_ms', 'after_ack_p50_ms', 'after_ack_p99_ms', 'raw_notify_p50_ms', 'raw_notify_p99_ms', 'p99_to_raw_notify_same_load_ratio', 'rows_per_s'].map(
      (figure) => `evict_${store}_1k_${figure}`,
    ),
  ),
  'evict_memcached_1k_watch_window_p50_ms',
  'evict_redis_1k_daemon_rss_mb',
  'evict_redis_20k_daemon_rss_mb',
  'evict_redis_20k_daemon_cpu_percent',
  'evict_redis_saturation_per_s',
  'evict_redis_saturation_to_plain_client_ratio',
  ...['memcached', 'redis_cluster'].flatMap((store) => [`evict_${store}_saturation_per_s`, `evict_${store}_saturation_to_plain_client_ratio`]),
  'daemon_rss_after_saturation_mb',
  'daemon_rss_idle_redis_mb',
  'daemon_rss_idle_memory_mb',
  'daemon_rss_idle_to_baseline_clients_ratio',
  'daemon_cpu_idle_percent',
  'read_memory_hit_p50_ms',
  'read_redis_hit_p50_ms',
  'read_db_p50_ms',
  'read_memory_hit_per_s_to_db_ratio',
  'read_redis_hit_per_s_to_db_ratio',
  'read_redis_miss_p50_to_db_ratio',
  // Issue 11: flush all, by enumeration for every store and by SCAN for one Redis, with unrelated keys.
  ...['redis_enumerate', 'redis_scan', 'redis_enumerate_with_unrelated', 'redis_scan_with_unrelated', 'memcached_enumerate', 'redis_cluster_enumerate'].flatMap((flush) => [
    `flush_${flush}_ms`,
    `flush_${flush}_commands`,
  ]),
  'flush_redis_enumerate_with_unrelated_to_without_ratio',
  'flush_redis_scan_with_unrelated_to_without_ratio',
  'flush_redis_scan_to_enumerate_with_unrelated_ratio',
  // Issue 14: storms of forged payloads against the no-storm baseline, and what signing costs a writer.
  ...['none', 'flush', 'evict'].flatMap((phase) =>
    ['commit_to_gone_p50_ms', 'commit_to_gone_p99_ms', 'rss_max_mb', 'rss_end_mb', 'bad_payloads', 'flushes'].map((figure) => `storm_${phase}_${figure}`),
  ),
  ...['flush', 'evict'].flatMap((phase) => ['commit_to_gone_p99_to_none_ratio', 'rss_max_to_none_ratio', 'payloads_per_s'].map((figure) => `storm_${phase}_${figure}`)),
  'signing_overhead_single_row_ratio',
];

t.test('npm run bench -- --quick measures every quoted figure and leaves nothing behind', async (t) => {
  const server = await serverUrl();
  const dir = await mkdtemp(join(tmpdir(), 'afc-bench-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'latest.json');
  // What this run leaves behind is what exists afterwards and did not before (a run killed earlier, or
  // another one going on, may have scratch databases of its own).
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  t.teardown(() => admin.end());
  const leftovers = async () => {
    const { rows } = await admin.query<{ name: string }>(
      `SELECT datname AS name FROM pg_database WHERE datname LIKE 'afc\\_bench\\_%' UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE 'afc\\_bench\\_%'`,
    );
    return rows.map((row) => row.name);
  };
  const before = new Set(await leftovers());
  const r = await runCli(BENCH, ['--quick', '--db', server, '--out', out], cleanEnv(), RUN_TIMEOUT_MS);
  t.equal(r.code, 0, r.stderr.slice(-2000));
  t.match(r.stdout, /trigger_overhead_single_row_ratio\s+[\d.]+\s+target <= 1\.05: (met|MISSED)/, 'the table marks each target');

  const results = JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown>;
  for (const key of QUOTED) t.ok(Number.isFinite(results[key]), `${key} = ${String(results[key])}`);
  for (const [key, value] of Object.entries(results)) {
    if (/_write_errors$/.test(key)) t.equal(value, 0, `${key}: every write went through`);
    if (/_missed$/.test(key)) {
      // A flush during the load (logged with its cause) rewrites every entry at once: the per-entry count
      // is then not exact, and the flush is what to look at instead.
      const flushes = results[key.replace(/_missed$/, '_flushes_during_load')] ?? 0;
      if (flushes === 0) t.equal(value, 0, `${key}: the measurement saw every eviction`);
      else t.pass(`${key} = ${value} with ${flushes} flush(es) during the load`);
    }
  }
  for (const key of ['evict_memcached_1k_missed', 'evict_redis_cluster_1k_missed', 'storm_none_missed', 'storm_flush_missed', 'storm_evict_missed']) {
    t.ok(Number.isFinite(results[key]), `${key}: measured`);
  }
  for (const phase of ['flush', 'evict']) {
    t.ok((results[`storm_${phase}_payloads_sent`] as number) > 0, `the ${phase} storm sent forged payloads`);
    t.equal(results[`storm_${phase}_bad_payloads`], results[`storm_${phase}_payloads_sent`], `the daemon counted every forged ${phase} payload it was sent`);
  }
  t.ok((results.notifications_per_10k_update as number) >= 1, 'a 10,000-row UPDATE notified');
  t.ok((results.evict_redis_1k_samples as number) > 0 && (results.evict_memory_20k_samples as number) > 0, 'evictions were timed');
  t.ok((results.evict_memcached_1k_samples as number) > 0 && (results.evict_redis_cluster_1k_samples as number) > 0, 'memcached and cluster evictions were timed');
  t.match(results.machine, { cores: Number, node_version: String, postgres_version: String, quick: true });

  t.same((await leftovers()).filter((name) => !before.has(name)), [], 'its scratch database and its storm role are dropped');
});
