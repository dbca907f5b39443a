// Commit → eviction latency through the real daemon, next to a raw NOTIFY → receive round trip measured
// on the same server in the same run. Every figure is timed from the moment the writer sends its
// statement (autocommit), so the baseline and the eviction paths are measured the same way.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import NodeCache from 'node-cache';
import pg from 'pg';
import { Redis } from 'ioredis';
import { cacheKey } from '../src/contract.js';
import { runDaemon } from '../src/daemon/daemon.js';
import { resolveDaemonConfig } from '../src/daemon/config.js';
import { createMemoryStore } from '../src/store/memory-store.js';

export interface LatencyOptions {
  /** Database with afc installed on the Sentry tables of `schema`. */
  url: string;
  schema: string;
  redisUrl: string;
  samples: number;
  /** An action-filter group id of each workflow, by workflow id. */
  groups: Map<number, number>;
  log: (line: string) => void;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function summary(name: string, values: number[]): Record<string, number> {
  const sorted = [...values].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return {
    [`${name}_p50_ms`]: r(percentile(sorted, 50)),
    [`${name}_p99_ms`]: r(percentile(sorted, 99)),
    [`${name}_max_ms`]: r(sorted[sorted.length - 1]),
  };
}

const now = () => Number(process.hrtime.bigint()) / 1e6;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function notifyRoundTrip(opts: LatencyOptions): Promise<number[]> {
  const listener = new pg.Client({ connectionString: opts.url });
  const sender = new pg.Client({ connectionString: opts.url });
  await Promise.all([listener.connect(), sender.connect()]);
  await listener.query('LISTEN afc_bench_rtt');
  const times: number[] = [];
  for (let i = 0; i < opts.samples; i++) {
    const got = new Promise<number>((resolve) => listener.once('notification', () => resolve(now())));
    const t0 = now();
    await sender.query(`NOTIFY afc_bench_rtt, '${i}'`);
    times.push((await got) - t0);
    await pause(2);
  }
  await Promise.all([listener.end(), sender.end()]);
  return times;
}

async function memoryEviction(opts: LatencyOptions, workflowIds: number[]): Promise<number[]> {
  const cache = new NodeCache({ useClones: false });
  const daemon = await runDaemon(resolveDaemonConfig({ db: opts.url }), { store: createMemoryStore({ keyPrefix: '', cache }) });
  await pause(200);
  const writer = new pg.Client({ connectionString: opts.url });
  await writer.connect();
  const times: number[] = [];
  for (let i = 0; i < opts.samples; i++) {
    const id = workflowIds[i % workflowIds.length];
    cache.set(cacheKey('', id), []);
    const evicted = new Promise<number>((resolve) => {
      const onDel = (k: string) => {
        if (k === cacheKey('', id)) (cache.off('del', onDel), resolve(now()));
      };
      cache.on('del', onDel);
    });
    const t0 = now();
    await writer.query(`UPDATE ${opts.schema}.workflow_engine_datacondition SET comparison = $1 WHERE condition_group_id = $2`, [String(i), opts.groups.get(id)]);
    times.push((await evicted) - t0);
    await pause(2);
  }
  await writer.end();
  await daemon.stop();
  return times;
}

async function redisEviction(opts: LatencyOptions, workflowIds: number[]): Promise<{ times: number[]; rssMb: number }> {
  const prefix = `afc-bench:${process.pid}:`;
  const bin = fileURLToPath(new URL('../../bin/afc-daemon.js', import.meta.url));
  const child = spawn(process.execPath, [bin, '--db', opts.url, '--cache', opts.redisUrl, '--key-prefix', prefix, '--log-level', 'info'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('"cause":"connect"') && resolve());
    child.once('exit', (code) => reject(new Error(`afc-daemon exited with ${code} before it was ready`)));
  });
  const redis = new Redis(opts.redisUrl);
  const writer = new pg.Client({ connectionString: opts.url });
  await writer.connect();
  const times: number[] = [];
  for (let i = 0; i < opts.samples; i++) {
    const id = workflowIds[i % workflowIds.length];
    const key = cacheKey(prefix, id);
    await redis.set(key, '[]');
    const t0 = now();
    const update = writer.query(`UPDATE ${opts.schema}.workflow_engine_datacondition SET comparison = $1 WHERE condition_group_id = $2`, [String(i), opts.groups.get(id)]);
    // Tight EXISTS loop: each probe is one loopback round trip (~0.1 ms), the resolution of this figure.
    while ((await redis.exists(key)) === 1) {
      if (now() - t0 > 5000) throw new Error(`key ${key} not evicted within 5 s`);
    }
    times.push(now() - t0);
    await update;
    await pause(2);
  }
  const rssMb = await processRssMb(child.pid!);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await writer.end();
  await redis.quit();
  return { times, rssMb };
}

async function processRssMb(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

export async function measureLatency(opts: LatencyOptions): Promise<Record<string, number>> {
  const ids = [...opts.groups.keys()];
  opts.log(`latency: raw NOTIFY round trip, ${opts.samples} samples`);
  const rtt = summary('notify_rtt', await notifyRoundTrip(opts));
  opts.log('latency: commit → entry gone, memory store (in-process daemon)');
  const memory = summary('evict_memory', await memoryEviction(opts, ids));
  opts.log('latency: commit → key gone, Redis (afc-daemon process)');
  const { times, rssMb } = await redisEviction(opts, ids);
  const redis = summary('evict_redis', times);
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  return {
    ...rtt,
    ...memory,
    ...redis,
    evict_memory_p50_to_notify_rtt_ratio: ratio(memory.evict_memory_p50_ms, rtt.notify_rtt_p50_ms),
    evict_memory_p99_to_notify_rtt_ratio: ratio(memory.evict_memory_p99_ms, rtt.notify_rtt_p99_ms),
    evict_redis_p50_to_notify_rtt_ratio: ratio(redis.evict_redis_p50_ms, rtt.notify_rtt_p50_ms),
    evict_redis_p99_to_notify_rtt_ratio: ratio(redis.evict_redis_p99_ms, rtt.notify_rtt_p99_ms),
    daemon_rss_mb: rssMb,
  };
}
