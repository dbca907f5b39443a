// `npm run bench [-- --quick] [-- --db URL] [-- --redis URL]`: measures afc against its baselines in one
// run on one machine, prints a table and writes bench/results/latest.json. Not a test: nothing here
// passes or fails on timing.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from '../src/migrate/migrator.js';
import { quoteIdent } from '../src/migrate/sql-files.js';
import { measureLatency } from './latency.js';
import { measureWriterCost } from './writer-cost.js';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!readdirHas(dir, 'package.json')) dir = dirname(dir);
  return dir;
}
function readdirHas(dir: string, file: string): boolean {
  try {
    readFileSync(join(dir, file));
    return true;
  } catch {
    return false;
  }
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const quick = process.argv.includes('--quick');
const serverUrl = arg('--db') ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = arg('--redis') ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const root = repoRoot();
const log = (line: string) => process.stderr.write(`${line}\n`);
const workflows = quick ? 5000 : 20_000;
const dbName = `afc_bench_${process.pid}`;
const benchUrl = (() => {
  const u = new URL(serverUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

const admin = new pg.Client({ connectionString: serverUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${quoteIdent(dbName)}`);
const results: Record<string, unknown> = {};
try {
  const db = new pg.Client({ connectionString: benchUrl });
  await db.connect();
  const schemaSql = readFileSync(join(root, 'migrations/demo/sentry-schema.sql'), 'utf8');
  const dataSql = readFileSync(join(root, 'bench/data.sql'), 'utf8');
  for (const schema of ['plain', 'afc']) {
    await db.query(schemaSql.replaceAll('{{schema}}', schema).replaceAll('{{on_delete}}', ''));
    await db.query(dataSql.replaceAll('{{schema}}', schema).replaceAll('{{workflows}}', String(workflows)));
  }
  await migrate(db, { schema: 'afc', dryRun: false, lockTimeoutMs: 5000 });
  const { rows } = await db.query<{ id: string }>(
    `SELECT dc.id FROM afc.workflow_engine_datacondition dc
       JOIN afc.workflow_engine_workflowdataconditiongroup l ON l.condition_group_id = dc.condition_group_id ORDER BY dc.id`,
  );
  const conditionIds = rows.map((r) => Number(r.id));
  log(`data: ${workflows} workflows per schema, ${conditionIds.length} action-filter conditions`);

  log('writer cost (triggers vs none)');
  Object.assign(results, await measureWriterCost({ url: benchUrl, quick, conditionIds, log }));

  const groups = new Map<number, number>();
  for (let w = 1; w <= Math.min(workflows, 2000); w++) groups.set(w, 3 * w - 1);
  Object.assign(results, await measureLatency({ url: benchUrl, schema: 'afc', redisUrl, samples: quick ? 200 : 1000, groups, log }));

  const { rows: v } = await db.query<{ v: string }>('SELECT current_setting($$server_version$$) AS v');
  results.machine = { cores: cpus().length, node_version: process.version, postgres_version: v[0].v, date: new Date().toISOString(), quick };
  await db.end();
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`);
  await admin.end();
}

const width = Math.max(...Object.keys(results).map((k) => k.length));
for (const [k, v] of Object.entries(results)) if (typeof v === 'number') process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
process.stdout.write(`${'machine'.padEnd(width)}  ${JSON.stringify(results.machine)}\n`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/latest.json'), `${JSON.stringify(results, null, 2)}\n`);
log('wrote bench/results/latest.json');
