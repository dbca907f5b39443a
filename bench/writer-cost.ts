// What the triggers cost the writers, on two schemas with identical data: `plain` (no triggers) and `afc`
// (installed by migrate). A daemon-like session LISTENs throughout, as in production (and the single-row
// figure is taken once more with nobody listening, to split the trigger's cost from the listener's).
//  - single row, one client: pgbench (a C client, so client overhead does not dilute the ratio) runs both
//    schemas' UPDATE in one session, picking one at random per transaction; per-transaction logs give
//    each its latency. Interleaving statement by statement puts drift, checkpoints and noise on both.
//  - single row, four clients: separate pgbench runs per schema in alternating rounds; this is where the
//    commit-time NOTIFY lock (design.md §4) shows.
//  - 10,000-row UPDATE: alternating statements from one client, and the notifications each one sent.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { DEFAULT_CHANNEL } from '../src/contract.js';
import { quoteIdent } from '../src/sql/quote.js';
import { median, ratio, round } from './stats.js';

export interface WriterCostOptions {
  url: string;
  quick: boolean;
  workflows: number;
  log: (line: string) => void;
}

const run = promisify(execFile);
const SCHEMAS = ['plain', 'afc'] as const;
type Schema = (typeof SCHEMAS)[number];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

// bench/data.sql: workflow w owns conditions 7(w-1)+1 (its WHEN condition) to 7w; +2..+7 are action filters.
/** One random action-filter condition's UPDATE (bench/data.sql's layout), as a pgbench script. */
export const singleRowScript = (schema: string, workflows: number) => `\\set w random(1, ${workflows})
\\set k random(0, 5)
\\set v random(1, 1000000000)
UPDATE ${quoteIdent(schema)}.workflow_engine_datacondition SET comparison = '{"value": :v}' WHERE id = 7 * (:w - 1) + 2 + :k;
`;

export async function pgbench(dir: string, url: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run('pgbench', ['-n', ...args, url], { cwd: dir, maxBuffer: 1 << 24 });
    return stdout;
  } catch (cause) {
    throw new Error('pgbench failed (it comes with the PostgreSQL client package, e.g. apt-get install postgresql-client)', { cause });
  }
}

export interface Latency {
  /** Mean and median latency (µs) of one schema's statement, and how many ran. */
  mean: number;
  p50: number;
  n: number;
}

/**
 * Both schemas' single-row UPDATE interleaved in one pgbench session (one client), one picked at random
 * per transaction; per-transaction logs give each its latency. Files are written to `dir`.
 */
export async function interleavedSingleRow(
  dir: string,
  url: string,
  workflows: number,
  schemas: readonly [string, string],
  seconds: number,
  clients = 1,
): Promise<[Latency, Latency]> {
  const files = schemas.map((s) => join(dir, `${s}.sql`));
  await Promise.all(schemas.map((s, i) => writeFile(files[i], singleRowScript(s, workflows))));
  const threads = clients > 1 ? ['-j', String(Math.min(clients, 2))] : [];
  await pgbench(dir, url, ['-c', String(clients), ...threads, '-T', String(seconds), '-l', '--log-prefix', join(dir, 'tx'), ...files.flatMap((f) => ['-f', f])]);
  const latencies: number[][] = [[], []];
  for (const log of (await readdir(dir)).filter((f) => f.startsWith('tx'))) {
    // client_id transaction_no time_us script_no epoch_s epoch_us
    for (const line of (await readFile(join(dir, log), 'utf8')).split('\n')) {
      const f = line.split(' ');
      if (f.length >= 4) latencies[Number(f[3])].push(Number(f[2]));
    }
    await rm(join(dir, log));
  }
  const of = (xs: number[]) => ({ mean: mean(xs), p50: median(xs), n: xs.length });
  return [of(latencies[0]), of(latencies[1])];
}

async function plainVsAfc(dir: string, opts: WriterCostOptions, seconds: number): Promise<Record<Schema, Latency>> {
  const [plain, afc] = await interleavedSingleRow(dir, opts.url, opts.workflows, SCHEMAS, seconds);
  return { plain, afc };
}

async function concurrentTps(dir: string, opts: WriterCostOptions, schema: Schema, seconds: number): Promise<number> {
  const file = join(dir, `${schema}.sql`);
  const out = await pgbench(dir, opts.url, ['-c', '4', '-j', '2', '-T', String(seconds), '-f', file]);
  const tps = /tps = ([\d.]+)/.exec(out);
  if (!tps) throw new Error(`no tps in pgbench output: ${out}`);
  return Number(tps[1]);
}

export async function measureWriterCost(opts: WriterCostOptions): Promise<Record<string, number>> {
  const listener = new pg.Client({ connectionString: opts.url });
  await listener.connect();
  const payloads: string[] = [];
  listener.on('notification', (n) => payloads.push(n.payload ?? ''));
  await listener.query(`LISTEN ${DEFAULT_CHANNEL}`);
  const db = new pg.Client({ connectionString: opts.url });
  await db.connect();
  const dir = await mkdtemp(join(tmpdir(), 'afc-bench-'));
  try {
    const one = await plainVsAfc(dir, opts, opts.quick ? 4 : 20);
    opts.log(`  single row, 1 client: plain ${one.plain.mean.toFixed(0)} µs, afc ${one.afc.mean.toFixed(0)} µs (mean of ${one.plain.n} and ${one.afc.n})`);
    // The same without anyone LISTENing: what the trigger itself costs, apart from the listener's backend
    // waking for each notification (on a 2-core machine it competes with the writer for a core).
    await listener.query(`UNLISTEN ${DEFAULT_CHANNEL}`);
    const alone = await plainVsAfc(dir, opts, opts.quick ? 3 : 15);
    await listener.query(`LISTEN ${DEFAULT_CHANNEL}`);
    opts.log(`  single row, 1 client, nobody listening: plain ${alone.plain.mean.toFixed(0)} µs, afc ${alone.afc.mean.toFixed(0)} µs`);

    const rounds = opts.quick ? 1 : 3;
    const tps: Record<Schema, number[]> = { plain: [], afc: [] };
    for (let r = 0; r < rounds; r++) {
      for (const schema of r % 2 === 0 ? SCHEMAS : [...SCHEMAS].reverse()) tps[schema].push(await concurrentTps(dir, opts, schema, opts.quick ? 2 : 6));
      opts.log(`  single row, 4 clients, round ${r + 1}/${rounds}: plain ${tps.plain.at(-1)!.toFixed(0)}/s, afc ${tps.afc.at(-1)!.toFixed(0)}/s`);
    }

    await drain(listener, payloads);
    const repeats = opts.quick ? 3 : 25;
    const bulk: Record<Schema, number[]> = { plain: [], afc: [] };
    const perStatement: number[] = [];
    let maxBytes = 0;
    for (let r = 0; r < repeats; r++) {
      for (const schema of r % 2 === 0 ? SCHEMAS : [...SCHEMAS].reverse()) {
        const from = 1 + Math.floor(Math.random() * (opts.workflows * 7 - 10_000));
        payloads.length = 0;
        const t0 = performance.now();
        await db.query(`UPDATE ${quoteIdent(schema)}.workflow_engine_datacondition SET comparison = $1 WHERE id BETWEEN $2 AND $3`, [`{"r": ${r}}`, from, from + 9999]);
        bulk[schema].push(performance.now() - t0);
        await drain(listener, payloads);
        if (schema === 'afc') {
          perStatement.push(payloads.length);
          for (const p of payloads) maxBytes = Math.max(maxBytes, Buffer.byteLength(p));
        } else if (payloads.length > 0) {
          throw new Error(`the plain schema notified ${payloads.length} times: it must have no triggers`);
        }
      }
    }
    opts.log(`  10k-row UPDATE: plain ${median(bulk.plain).toFixed(1)} ms, afc ${median(bulk.afc).toFixed(1)} ms (medians of ${repeats})`);
    return {
      single_row_tps_plain: Math.round(1e6 / one.plain.mean),
      single_row_tps_afc: Math.round(1e6 / one.afc.mean),
      trigger_overhead_single_row_ratio: ratio(one.afc.mean, one.plain.mean),
      trigger_overhead_single_row_p50_ratio: ratio(one.afc.p50, one.plain.p50),
      trigger_cost_single_row_us: round(one.afc.mean - one.plain.mean, 1),
      trigger_overhead_single_row_no_listener_ratio: ratio(alone.afc.mean, alone.plain.mean),
      single_row_4_clients_tps_plain: Math.round(median(tps.plain)),
      single_row_4_clients_tps_afc: Math.round(median(tps.afc)),
      trigger_overhead_single_row_4_clients_ratio: ratio(median(tps.plain), median(tps.afc)),
      bulk_update_10k_ms_plain: round(median(bulk.plain), 2),
      bulk_update_10k_ms_afc: round(median(bulk.afc), 2),
      trigger_overhead_bulk_10k_ratio: ratio(median(bulk.afc), median(bulk.plain)),
      notifications_per_10k_update: Math.max(...perStatement),
      notify_payload_max_bytes: maxBytes,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
    await listener.end();
    await db.end();
  }
}

/** Everything committed so far has reached the listener once its own sentinel NOTIFY comes back. */
async function drain(listener: pg.Client, payloads: string[]): Promise<void> {
  const token = `bench-sentinel-${Math.random()}`;
  await listener.query(`SELECT pg_notify('${DEFAULT_CHANNEL}', '${token}')`);
  while (!payloads.includes(token)) await new Promise((r) => setTimeout(r, 1));
  payloads.splice(payloads.indexOf(token), 1);
}
