// What the triggers cost the writers: single-row UPDATE throughput and one 10,000-row UPDATE, on two
// schemas with identical data, `plain` (no triggers) and `afc` (installed by migrate), measured in
// alternating rounds in one run so drift on a noisy machine hits both sides alike.
import pg from 'pg';
import { DEFAULT_CHANNEL } from '../src/contract.js';

export interface WriterCostOptions {
  url: string;
  quick: boolean;
  /** Ids of action-filter conditions (the same in both schemas). */
  conditionIds: number[];
  log: (line: string) => void;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => Number(process.hrtime.bigint()) / 1e6;

async function singleRowTps(url: string, schema: string, ids: number[], seconds: number): Promise<number> {
  const clients = await Promise.all([1, 2, 3, 4].map(async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return c;
  }));
  const sql = `UPDATE ${schema}.workflow_engine_datacondition SET comparison = $1 WHERE id = $2`;
  const end = now() + seconds * 1000;
  let count = 0;
  await Promise.all(
    clients.map(async (c, i) => {
      for (let n = 0; now() < end; n++) {
        await c.query(sql, [`{"value": ${n}}`, ids[Math.floor(Math.random() * ids.length)]]);
        count++;
      }
      await c.end();
      return i;
    }),
  );
  return count / seconds;
}

async function bulkUpdateMs(db: pg.Client, schema: string, from: number, n: number): Promise<number> {
  const t0 = now();
  await db.query(`UPDATE ${schema}.workflow_engine_datacondition SET comparison = $1 WHERE id BETWEEN $2 AND $3`, [
    `{"value": ${Math.random()}}`,
    from,
    from + n - 1,
  ]);
  return now() - t0;
}

export async function measureWriterCost(opts: WriterCostOptions): Promise<Record<string, number>> {
  // A daemon would be listening in production; an unread queue is not what we measure.
  const listener = new pg.Client({ connectionString: opts.url });
  await listener.connect();
  const payloads: string[] = [];
  listener.on('notification', (n) => payloads.push(n.payload ?? ''));
  await listener.query(`LISTEN ${DEFAULT_CHANNEL}`);
  const db = new pg.Client({ connectionString: opts.url });
  await db.connect();

  const rounds = opts.quick ? 1 : 3;
  const seconds = opts.quick ? 2 : 6;
  const tps: Record<'plain' | 'afc', number[]> = { plain: [], afc: [] };
  for (let r = 0; r < rounds; r++) {
    for (const schema of ['plain', 'afc'] as const) {
      tps[schema].push(await singleRowTps(opts.url, schema, opts.conditionIds, seconds));
      opts.log(`  single-row round ${r + 1}/${rounds} ${schema}: ${tps[schema].at(-1)!.toFixed(0)} UPDATE/s`);
    }
  }

  const repeats = opts.quick ? 3 : 7;
  const bulk: Record<'plain' | 'afc', number[]> = { plain: [], afc: [] };
  const perStatement: number[] = [];
  let maxBytes = 0;
  for (let r = 0; r < repeats; r++) {
    for (const schema of ['plain', 'afc'] as const) {
      payloads.length = 0;
      bulk[schema].push(await bulkUpdateMs(db, schema, opts.conditionIds[0], 10_000));
      if (schema === 'afc') {
        await drain(listener, payloads);
        perStatement.push(payloads.length);
        for (const p of payloads) maxBytes = Math.max(maxBytes, Buffer.byteLength(p));
      }
    }
  }
  opts.log(`  10k-row UPDATE: plain ${median(bulk.plain).toFixed(1)} ms, afc ${median(bulk.afc).toFixed(1)} ms`);
  await listener.end();
  await db.end();
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    single_row_update_tps_plain: Math.round(median(tps.plain)),
    single_row_update_tps_afc: Math.round(median(tps.afc)),
    trigger_overhead_single_row_ratio: r2(median(tps.plain) / median(tps.afc)),
    bulk_update_10k_ms_plain: r2(median(bulk.plain)),
    bulk_update_10k_ms_afc: r2(median(bulk.afc)),
    trigger_overhead_bulk_10k_ratio: r2(median(bulk.afc) / median(bulk.plain)),
    notifications_per_10k_update: Math.max(...perStatement),
    notify_payload_max_bytes: maxBytes,
  };
}

/** Everything committed so far has reached the listener once its own sentinel NOTIFY comes back. */
async function drain(listener: pg.Client, payloads: string[]): Promise<void> {
  const token = `bench-sentinel-${Math.random()}`;
  await listener.query(`SELECT pg_notify('${DEFAULT_CHANNEL}', '${token}')`);
  while (!payloads.includes(token)) await new Promise((r) => setTimeout(r, 1));
  payloads.splice(payloads.indexOf(token), 1);
}
