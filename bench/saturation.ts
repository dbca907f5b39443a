// How fast the daemon evicts into Redis when notifications arrive faster than it can apply them: one
// transaction NOTIFYs evictions of `keys` workflows (1000 ids per payload) and the clock runs from its
// COMMIT until the last of those keys is gone. Baseline in the same run: the same keys deleted by a plain
// client sending the commands the Redis store sends (pipelined UNLINKs of 1000 keys, entry + lease).
import pg from 'pg';
import { Redis } from 'ioredis';
import { encode } from '../src/codec.js';
import { cacheKey, DEFAULT_CHANNEL, leaseKey } from '../src/contract.js';
import { startDaemonProcess, type Child } from './children.js';
import { putEntries } from './entries.js';
import { rssMb } from './proc-stats.js';
import { median, ratio } from './stats.js';

export interface SaturationOptions {
  url: string;
  /** The bench's private Redis; this measurement uses its database 1 alone. */
  redisPort: number;
  keys: number;
  rounds: number;
  /** After the last round, wait this long idle and read the daemon's RSS again (0: skip). */
  settleMs: number;
  log: (line: string) => void;
}

const IDS_PER_PAYLOAD = 1000;
const now = () => performance.now();

async function untilEmpty(redis: Redis, since: number): Promise<number> {
  while ((await redis.dbsize()) > 0) {
    if (now() - since > 120_000) throw new Error('keys still present 120 s after the commit');
  }
  return now() - since;
}

export async function measureRedisSaturation(opts: SaturationOptions): Promise<Record<string, number>> {
  const url = `redis://127.0.0.1:${opts.redisPort}/1`;
  const prefix = `afc-bench-sat:${process.pid}:`;
  const redis = new Redis(url);
  const db = new pg.Client({ connectionString: opts.url });
  await db.connect();
  const ids = Array.from({ length: opts.keys }, (_, i) => i + 1);
  const payloads: string[] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_PAYLOAD) payloads.push(encode({ op: 'evict', src: 'dc', ts: Date.now(), ids: ids.slice(i, i + IDS_PER_PAYLOAD) }));
  const baseline: number[] = [];
  const daemonRuns: number[] = [];
  const rss: Record<string, number> = {};
  let daemon: Child | undefined;
  try {
    await redis.flushdb();
    daemon = await startDaemonProcess(['--db', opts.url, '--schema', 'afc', '--cache', url, '--key-prefix', prefix]);
    for (let r = 0; r < opts.rounds; r++) {
      await putEntries(redis, prefix, opts.keys);
      const t0 = now();
      const pipeline = redis.pipeline();
      for (let i = 0; i < ids.length; i += IDS_PER_PAYLOAD) {
        pipeline.unlink(...ids.slice(i, i + IDS_PER_PAYLOAD).flatMap((id) => [cacheKey(prefix, id), leaseKey(prefix, id)]));
      }
      await pipeline.exec();
      baseline.push(opts.keys / ((now() - t0) / 1000));

      await putEntries(redis, prefix, opts.keys);
      await db.query('BEGIN');
      await db.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [DEFAULT_CHANNEL, payloads]);
      const t1 = now();
      await db.query('COMMIT');
      daemonRuns.push(opts.keys / ((await untilEmpty(redis, t1)) / 1000));
      opts.log(`  saturation round ${r + 1}/${opts.rounds}: daemon ${Math.round(daemonRuns.at(-1)!)} evictions/s, plain client ${Math.round(baseline.at(-1)!)} keys/s`);
    }
    rss.daemon_rss_after_saturation_mb = await rssMb(daemon.pid);
    if (opts.settleMs > 0) {
      // V8 gives a burst's heap growth back once the process has been idle a while; show that it does.
      await new Promise((resolve) => setTimeout(resolve, opts.settleMs));
      rss.daemon_rss_settled_after_saturation_mb = await rssMb(daemon.pid);
    }
  } finally {
    await daemon?.stop();
    await redis.flushdb().catch(() => undefined);
    redis.disconnect();
    await db.end();
  }
  return {
    evict_redis_saturation_per_s: Math.round(median(daemonRuns)),
    redis_unlink_plain_client_per_s: Math.round(median(baseline)),
    evict_redis_saturation_to_plain_client_ratio: ratio(median(daemonRuns), median(baseline)),
    ...rss,
  };
}
