// What the afc-daemon process costs while idle (resident memory, CPU), next to two baselines measured in
// the same run, side by side, over the same window: a bare Node process, and a Node process that only
// loads pg and ioredis and holds one connection to each (the floor for any daemon of this design).
//
// All four processes run at once, so they share the machine's conditions and quick mode fits in ~6 s.
// A daemon counts as ready once it has LISTENed and done its first flush (bench/children.ts). Every
// child is stopped, also when something fails.
//
// RSS is sampled every 250 ms from the moment all are ready to the end of the window, and the largest
// sample is kept: what the process needs, not what it happens to hold at one instant. That matters
// because a Node process holds ~10 MB more in its first seconds than later: loading modules grows V8's
// young generation, and V8's memory reducer hands those pages back only after some idle seconds (~8.5 s
// after start here, later on a busy machine, costing one ~40 ms GC). The log line of each process shows
// the smallest sample too. CPU is the CPU time used across the window, after a settle period (10 s in
// full mode, so the window is the steady idle state; 1.5 s in quick mode), as a percent of one core; the
// daemon's figure is the Redis daemon's, the deployment the RSS target is about.
import { startDaemonProcess, startNodeProcess, type Child } from './children.js';
import { cpuSeconds, rssMb } from './proc-stats.js';
import { round } from './stats.js';

export interface FootprintOptions {
  /** Database with afc installed. */
  url: string;
  redisUrl: string;
  quick: boolean;
  log: (line: string) => void;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// The floor: the two client libraries loaded the way the daemon loads them (ESM), one connection each.
const CLIENTS_SCRIPT = `
import pg from 'pg';
import { Redis } from 'ioredis';
const db = new pg.Client({ connectionString: process.env.FP_DB, application_name: 'afc-bench-floor' });
await db.connect();
await db.query('LISTEN afc_bench_floor');
const redis = new Redis(process.env.FP_REDIS);
await redis.ping();
process.on('SIGTERM', async () => { await db.end(); redis.disconnect(); process.exit(0); });
process.stdout.write('ready\\n');
`;

function alive(children: Array<[string, Child]>): void {
  for (const [name, child] of children) if (!child.running()) throw new Error(`${name} exited during the footprint measurement`);
}

export async function measureDaemonFootprint(opts: FootprintOptions): Promise<Record<string, number>> {
  const settleMs = opts.quick ? 1500 : 10_000;
  const windowMs = opts.quick ? 3000 : 10_000;
  const daemonArgs = ['--db', opts.url, '--schema', 'afc', '--key-prefix', `afc-bench-fp:${process.pid}:`];
  const ready = /^ready$/m;
  opts.log(`footprint: afc-daemon (redis, memory), bare node, pg+ioredis floor; settle ${settleMs} ms, idle window ${windowMs} ms`);
  const starts: Array<[string, Promise<Child>]> = [
    ['bare node', startNodeProcess('bare node', ['-e', "process.stdout.write('ready\\n'); setInterval(() => {}, 1000)"], ready)],
    ['pg+ioredis floor', startNodeProcess('pg+ioredis floor', ['--input-type=module', '-e', CLIENTS_SCRIPT], ready, { env: { FP_DB: opts.url, FP_REDIS: opts.redisUrl } })],
    ['afc-daemon --cache redis', startDaemonProcess([...daemonArgs, '--cache', opts.redisUrl])],
    ['afc-daemon --cache memory', startDaemonProcess([...daemonArgs, '--cache', 'memory'])],
  ];
  const settled = await Promise.allSettled(starts.map(([, started]) => started));
  const children = settled.flatMap((r, i): Array<[string, Child]> => (r.status === 'fulfilled' ? [[starts[i][0], r.value]] : []));
  try {
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const pids = children.map(([, c]) => c.pid);
    const rssSamples: number[][] = pids.map(() => []);
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const now = await Promise.all(pids.map((pid) => rssMb(pid).catch(() => Number.NaN)));
        now.forEach((mb, i) => Number.isNaN(mb) || rssSamples[i].push(mb));
        await pause(250);
      }
    })();
    try {
      await pause(settleMs);
      alive(children);
      const t0 = process.hrtime.bigint();
      const cpu0 = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
      await pause(windowMs);
      const cpu1 = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
      const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
      alive(children);
      sampling = false;
      await sampler;
      const cpuPercent = pids.map((_, i) => round(((cpu1[i] - cpu0[i]) / elapsedS) * 100, 2));
      const rss = rssSamples.map((s) => Math.max(...s));
      children.forEach(([name], i) => opts.log(`footprint: ${name}: RSS ${Math.min(...rssSamples[i])}..${rss[i]} MB, idle CPU ${cpuPercent[i]} %`));
      const [nodeRss, clientsRss, redisRss, memoryRss] = rss;
      return {
        daemon_rss_idle_redis_mb: redisRss,
        daemon_rss_idle_memory_mb: memoryRss,
        daemon_cpu_idle_percent: cpuPercent[2],
        baseline_node_rss_mb: nodeRss,
        baseline_clients_rss_mb: clientsRss,
        daemon_rss_idle_to_baseline_clients_ratio: round(redisRss / clientsRss, 2),
        baseline_node_cpu_idle_percent: cpuPercent[0],
      };
    } finally {
      sampling = false;
      await sampler;
    }
  } finally {
    await Promise.all(children.map(([, c]) => c.stop()));
  }
}
