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
  'evict_redis_1k_daemon_rss_mb',
  'evict_redis_20k_daemon_rss_mb',
  'evict_redis_20k_daemon_cpu_percent',
  'evict_redis_saturation_per_s',
  'evict_redis_saturation_to_plain_client_ratio',
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
];

t.test('npm run bench -- --quick measures every quoted figure and leaves nothing behind', async (t) => {
  const server = await serverUrl();
  const dir = await mkdtemp(join(tmpdir(), 'afc-bench-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'latest.json');
  const r = await runCli(BENCH, ['--quick', '--db', server, '--out', out], cleanEnv(), 110_000);
  t.equal(r.code, 0, r.stderr.slice(-2000));
  t.match(r.stdout, /trigger_overhead_single_row_ratio\s+[\d.]+\s+target <= 1\.05: (met|MISSED)/, 'the table marks each target');

  const results = JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown>;
  for (const key of QUOTED) t.ok(Number.isFinite(results[key]), `${key} = ${String(results[key])}`);
  for (const [key, value] of Object.entries(results)) {
    if (/_(missed|write_errors)$/.test(key)) t.equal(value, 0, `${key}: the measurement saw every eviction and every write`);
  }
  t.ok((results.notifications_per_10k_update as number) >= 1, 'a 10,000-row UPDATE notified');
  t.ok((results.evict_redis_1k_samples as number) > 0 && (results.evict_memory_20k_samples as number) > 0, 'evictions were timed');
  t.match(results.machine, { cores: Number, node_version: String, postgres_version: String, quick: true });

  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  t.teardown(() => admin.end());
  const { rows } = await admin.query(`SELECT datname FROM pg_database WHERE datname LIKE 'afc\\_bench\\_%'`);
  t.same(rows, [], 'its scratch database is dropped');
});
