// `npm run bench [-- --quick] [-- --storm] [-- --db URL] [-- --out FILE]`: measures afc against its baselines
// in one run on one machine, prints a table and writes bench/results/latest.json (or FILE). Not a test:
// nothing here passes or fails on timing. It uses a database of its own on the server (created and
// dropped), private redis-servers, a private memcached pool (2 nodes) and a private Redis Cluster (3
// masters), all stopped at the end. `--storm` runs only the storms of forged payloads.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { migrate } from '../src/migrate/migrator.js';
import { quoteIdent } from '../src/sql/quote.js';
import { migrationsDir, renderFixture, renderSentrySchema } from '../src/sql/templates.js';
import { startBenchRedis, type BenchRedis } from './children.js';
import { measureDaemonFootprint } from './daemon-footprint.js';
import { measureFleet } from './fleet.js';
import { measureFlushCost } from './flush-cost.js';
import { measureNotifyRoundTrip } from './latency.js';
import { plainMemcached, plainRedis, plainRedisCluster } from './plain-stores.js';
import { measureReadPath } from './read-path.js';
import { measureSaturation } from './saturation.js';
import { startBenchMemcached, startBenchRedisCluster, type BenchPool } from './servers.js';
import { measureSigningCost } from './signing-cost.js';
import { measureClusterUnderLoad, measureMemcachedUnderLoad, measureMemoryUnderLoad, measureRedisUnderLoad } from './steady-load.js';
import { measureStorm } from './storm.js';
import { ratio } from './stats.js';
import { formatTable } from './table.js';
import { measureWriterCost } from './writer-cost.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const quick = process.argv.includes('--quick');
// --storm: only the storms (issue 14), written to bench/results/storm.json unless --out says otherwise.
const stormOnly = process.argv.includes('--storm');
const outFile = arg('--out');
const serverUrl = arg('--db') ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const root = dirname(migrationsDir());
const log = (line: string) => process.stderr.write(`${line}\n`);
const workflows = quick ? 5000 : 20_000;
const startedAt = performance.now();
const dbName = `afc_bench_${process.pid}`;
/** The role the storms create (bench/storm.ts) and drop; dropped here too if the run is cut short. */
const stormRole = `afc_bench_storm_${process.pid}`;
const benchUrl = (() => {
  const u = new URL(serverUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

/** Sentry's tables with bench/data.sql in `plain` (no triggers) and `afc` (afc migrate), identical data. */
async function createBenchDatabase(): Promise<string> {
  const db = new pg.Client({ connectionString: benchUrl });
  await db.connect();
  try {
    const dataSql = readFileSync(join(root, 'bench/data.sql'), 'utf8');
    for (const schema of ['plain', 'afc']) {
      await db.query(renderSentrySchema(schema));
      await db.query(renderFixture(dataSql, schema, { workflows: String(workflows) }));
    }
    await migrate(db, { schema: 'afc', dryRun: false, lockTimeoutMs: 5000 });
    // The load generators derive workflows from condition ids (7 per workflow); check that layout holds.
    const { rows } = await db.query<{ bad: string }>(
      `SELECT count(*) AS bad FROM afc.workflow_engine_datacondition dc
         LEFT JOIN afc.workflow_engine_workflowdataconditiongroup l ON l.condition_group_id = dc.condition_group_id
        WHERE (dc.id - 1) % 7 = 0 AND l.id IS NOT NULL OR (dc.id - 1) % 7 <> 0 AND l.workflow_id IS DISTINCT FROM (dc.id - 1) / 7 + 1`,
    );
    if (Number(rows[0].bad) !== 0) throw new Error('bench/data.sql no longer lays out 7 conditions per workflow');
    const { rows: v } = await db.query<{ v: string }>('SELECT current_setting($$server_version$$) AS v');
    return v[0].v;
  } finally {
    await db.end();
  }
}

const results: Record<string, unknown> = {};
const sectionSeconds: Record<string, number> = {};
const loadAtStart = loadavg()[0];
/** Logs `title`, runs one measurement and merges its figures; how long it took goes into results.machine. */
async function section(title: string, work: () => Promise<Record<string, unknown>>): Promise<void> {
  log(title);
  const t0 = performance.now();
  Object.assign(results, await work());
  sectionSeconds[title] = Math.round((performance.now() - t0) / 100) / 10;
  log(`  (${sectionSeconds[title]} s)`);
}
const admin = new pg.Client({ connectionString: serverUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${quoteIdent(dbName)}`);
// Everything started is stopped in reverse order, also when a measurement fails.
const stops: Array<() => Promise<unknown>> = [];
const dropScratch = () =>
  admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`).then(() => admin.query(`DROP ROLE IF EXISTS ${quoteIdent(stormRole)}`));
// Ctrl-C or a SIGTERM: stop what was started and drop the scratch database and role, then exit; unless a
// measurement handles the signal itself (bench/fleet.ts stops its fleet, then raises the signal again).
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    if (process.listenerCount(signal) > 1) return;
    log(`${signal}: stopping what the benchmark started`);
    // The measurement still running loses its connections and processes now: what it throws is moot.
    process.on('uncaughtException', () => undefined);
    process.on('unhandledRejection', () => undefined);
    void (async () => {
      for (const stop of [...stops].reverse()) await stop().catch(() => undefined);
      await dropScratch().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    })().finally(() => process.exit(code));
  });
}
try {
  // The servers start while the database is filled; each one that started is stopped, whatever failed.
  const starting = Promise.allSettled([startBenchRedis(), stormOnly ? undefined : startBenchMemcached(2), stormOnly ? undefined : startBenchRedisCluster(3)] as const);
  const filled = createBenchDatabase();
  filled.catch(() => undefined); // handled below, once the servers are known (and so stopped) too
  const [redisStart, memcachedStart, clusterStart] = await starting;
  for (const started of [redisStart, memcachedStart, clusterStart]) {
    if (started.status === 'fulfilled' && started.value) stops.push(() => started.value!.stop());
  }
  const postgresVersion = await filled;
  for (const started of [redisStart, memcachedStart, clusterStart]) if (started.status === 'rejected') throw started.reason;
  const redis = (redisStart as PromiseFulfilledResult<BenchRedis>).value;
  log(`data: ${workflows} workflows per schema (plain, afc), 7 conditions each; private redis-server at ${redis.url} (${Math.round((performance.now() - startedAt) / 100) / 10} s)`);

  if (!stormOnly) {
    const memcached = (memcachedStart as PromiseFulfilledResult<BenchPool>).value;
    const cluster = (clusterStart as PromiseFulfilledResult<BenchPool>).value;
    const memcachedStore = plainMemcached(memcached.nodes);
    stops.push(() => memcachedStore.close());
    const clusterStore = plainRedisCluster(cluster.nodes);
    stops.push(() => clusterStore.close());
    log(`private memcached pool at ${memcached.url}, Redis Cluster at ${cluster.url}`);

    await section('writer cost (triggers vs none)', () => measureWriterCost({ url: benchUrl, quick, workflows, log }));

    await section('writer cost of signing (signed payloads vs the migration before)', () => measureSigningCost({ url: benchUrl, quick, workflows, log }));

    await section('baseline: raw NOTIFY round trip', () => measureNotifyRoundTrip({ url: benchUrl, samples: quick ? 300 : 2000 }));

    for (const [label, rowsPerSecond] of [['1k', 1000], ['20k', 20_000]] as const) {
      const load = { url: benchUrl, schema: 'afc', redisUrl: redis.url, workflows, rowsPerSecond, label, seconds: quick ? 3 : 20, log };
      await section(`commit → eviction at ${label} changed rows/s (Redis, memory)`, async () => ({ ...(await measureRedisUnderLoad(load)), ...(await measureMemoryUnderLoad(load)) }));
      const stores = ['redis', 'memory'];
      if (label === '1k') {
        const shorter = { ...load, seconds: quick ? 2 : 20 };
        await section(`commit → eviction at ${label} changed rows/s (memcached, Redis Cluster)`, async () => ({
          ...(await measureMemcachedUnderLoad(shorter, memcachedStore, memcached.nodes)),
          ...(await measureClusterUnderLoad(shorter, clusterStore, cluster.nodes)),
        }));
        stores.push('memcached', 'redis_cluster');
      }
      for (const store of stores) {
        for (const p of ['p50', 'p99']) {
          results[`evict_${store}_${label}_${p}_to_notify_rtt_ratio`] = ratio(results[`evict_${store}_${label}_${p}_ms`] as number, results[`notify_rtt_${p}_ms`] as number);
          results[`evict_${store}_${label}_${p}_to_raw_notify_same_load_ratio`] = ratio(
            results[`evict_${store}_${label}_${p}_ms`] as number,
            results[`evict_${store}_${label}_raw_notify_${p}_ms`] as number,
          );
        }
      }
    }

    const satRedis = plainRedis(redis.url.replace(/\/0$/, '/1'));
    stops.push(() => satRedis.close());
    await section('daemon: evictions into Redis at saturation', () =>
      measureSaturation({ url: benchUrl, store: satRedis, keys: quick ? 50_000 : 200_000, rounds: quick ? 1 : 3, settleMs: quick ? 0 : 30_000, log }),
    );
    await section('daemon: evictions into memcached and a Redis Cluster at saturation', async () => ({
      ...(await measureSaturation({ url: benchUrl, store: memcachedStore, keys: quick ? 20_000 : 200_000, rounds: quick ? 1 : 3, settleMs: 0, log })),
      ...(await measureSaturation({ url: benchUrl, store: clusterStore, keys: quick ? 20_000 : 200_000, rounds: quick ? 1 : 3, settleMs: 0, log })),
    }));

    await section('daemon: idle footprint', () => measureDaemonFootprint({ url: benchUrl, redisUrl: redis.url, quick, log }));

    await section('read path: read-through cache vs a plain database read', () => measureReadPath({ url: benchUrl, schema: 'afc', redisUrl: redis.url, quick, workflows, log }));

    const flushRedis = await startBenchRedis({ keyspaceEvents: false, debug: true });
    stops.push(() => flushRedis.stop());
    const flushStore = plainRedis(flushRedis.url);
    stops.push(() => flushStore.close());
    await section('flush all: enumerate vs scan, with and without unrelated keys', () =>
      measureFlushCost({
        url: benchUrl,
        redis: flushStore,
        memcached: { store: memcachedStore, nodes: memcached.nodes },
        cluster: { store: clusterStore, nodes: cluster.nodes },
        workflows: quick ? 10_000 : 100_000,
        unrelated: quick ? 100_000 : 1_000_000,
        rounds: quick ? 1 : 3,
        log,
      }),
    );
  }

  await section('storms of forged payloads', () => measureStorm({ url: benchUrl, redisUrl: redis.url, role: stormRole, workflows, quick, log }));

  if (!stormOnly) {
    await section('fleet: relays and hosts', () => measureFleet({ url: benchUrl, schema: 'afc', redisUrl: redis.url, quick, log }));
  }

  results.machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    node_version: process.version,
    postgres_version: postgresVersion,
    date: new Date().toISOString(),
    quick,
    storm_only: stormOnly,
    workflows,
    bench_seconds: Math.round((performance.now() - startedAt) / 1000),
    section_seconds: sectionSeconds,
    // Other work on the machine shows here (every figure is still compared with a baseline of the same run).
    load_average_1m: { start: loadAtStart, end: loadavg()[0] },
  };
} finally {
  for (const stop of [...stops].reverse()) await stop().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  await dropScratch();
  await admin.end();
}

process.stdout.write(formatTable(results));
const out = outFile ?? join(root, stormOnly ? 'bench/results/storm.json' : 'bench/results/latest.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
log(`wrote ${out} (${Math.round((performance.now() - startedAt) / 1000)} s)`);
