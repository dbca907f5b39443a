// `npm run bench [-- --quick] [-- --db URL] [-- --out FILE]`: measures afc against its baselines in one run on
// one machine, prints a table and writes bench/results/latest.json (or FILE). Not a test: nothing here
// passes or fails on timing. It uses a database of its own on the server (created and dropped) and a
// private redis-server.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { migrate } from '../src/migrate/migrator.js';
import { quoteIdent } from '../src/sql/quote.js';
import { migrationsDir, renderFixture, renderSentrySchema } from '../src/sql/templates.js';
import { startBenchRedis } from './children.js';
import { measureDaemonFootprint } from './daemon-footprint.js';
import { measureNotifyRoundTrip } from './latency.js';
import { measureReadPath } from './read-path.js';
import { measureRedisSaturation } from './saturation.js';
import { measureMemoryUnderLoad, measureRedisUnderLoad } from './steady-load.js';
import { ratio } from './stats.js';
import { formatTable } from './table.js';
import { measureWriterCost } from './writer-cost.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const quick = process.argv.includes('--quick');
const outFile = arg('--out');
const serverUrl = arg('--db') ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const root = dirname(migrationsDir());
const log = (line: string) => process.stderr.write(`${line}\n`);
const workflows = quick ? 5000 : 20_000;
const startedAt = performance.now();
const dbName = `afc_bench_${process.pid}`;
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
const admin = new pg.Client({ connectionString: serverUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${quoteIdent(dbName)}`);
const redis = await startBenchRedis();
try {
  const postgresVersion = await createBenchDatabase();
  log(`data: ${workflows} workflows per schema (plain, afc), 7 conditions each; private redis-server at ${redis.url}`);

  log('writer cost (triggers vs none)');
  Object.assign(results, await measureWriterCost({ url: benchUrl, quick, workflows, log }));

  log('baseline: raw NOTIFY round trip');
  Object.assign(results, await measureNotifyRoundTrip({ url: benchUrl, samples: quick ? 300 : 2000 }));

  for (const [label, rowsPerSecond] of [['1k', 1000], ['20k', 20_000]] as const) {
    const load = { url: benchUrl, schema: 'afc', redisUrl: redis.url, workflows, rowsPerSecond, label, seconds: quick ? 3 : 20, log };
    log(`commit → eviction at ${label} changed rows/s`);
    Object.assign(results, await measureRedisUnderLoad(load), await measureMemoryUnderLoad(load));
    for (const store of ['redis', 'memory']) {
      for (const p of ['p50', 'p99']) {
        results[`evict_${store}_${label}_${p}_to_notify_rtt_ratio`] = ratio(results[`evict_${store}_${label}_${p}_ms`] as number, results[`notify_rtt_${p}_ms`] as number);
        results[`evict_${store}_${label}_${p}_to_raw_notify_same_load_ratio`] = ratio(
          results[`evict_${store}_${label}_${p}_ms`] as number,
          results[`evict_${store}_${label}_raw_notify_${p}_ms`] as number,
        );
      }
    }
  }

  log('daemon: evictions into Redis at saturation');
  Object.assign(results, await measureRedisSaturation({ url: benchUrl, redisPort: Number(new URL(redis.url).port), keys: quick ? 50_000 : 200_000, rounds: quick ? 1 : 3, settleMs: quick ? 0 : 30_000, log }));

  log('daemon: idle footprint');
  Object.assign(results, await measureDaemonFootprint({ url: benchUrl, redisUrl: redis.url, quick, log }));

  log('read path: read-through cache vs a plain database read');
  Object.assign(results, await measureReadPath({ url: benchUrl, schema: 'afc', redisUrl: redis.url, quick, workflows, log }));

  results.machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    node_version: process.version,
    postgres_version: postgresVersion,
    date: new Date().toISOString(),
    quick,
    workflows,
    bench_seconds: Math.round((performance.now() - startedAt) / 1000),
  };
} finally {
  await redis.stop();
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`);
  await admin.end();
}

process.stdout.write(formatTable(results));
const out = outFile ?? join(root, 'bench/results/latest.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
log(`wrote ${out} (${Math.round((performance.now() - startedAt) / 1000)} s)`);
