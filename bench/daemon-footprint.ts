// What the afc-daemon process costs while idle (resident memory, CPU), next to two baselines measured in
// the same run, side by side, over the same window: a bare Node process, and a Node process that only
// loads pg and ioredis and holds one connection to each (the floor for any daemon of this design).
//
// All four processes run at once, so they share the machine's conditions and quick mode fits in ~6 s.
// A daemon counts as ready once its own LISTEN session shows up in pg_stat_activity (matched by the
// client port of one of its sockets, so another daemon on the same server is never mistaken for it; so
// `url` must be a TCP URL). Every child gets SIGTERM and is awaited, also when something fails.
//
// RSS is sampled every 250 ms from the moment all are ready to the end of the window, and the largest
// sample is kept: what the process needs, not what it happens to hold at one instant. That matters
// because a Node process holds ~10 MB more in its first seconds than later: loading modules grows V8's
// young generation, and V8's memory reducer hands those pages back only after some idle seconds (~8.5 s
// after start here, later on a busy machine, costing one ~40 ms GC). The log line of each process shows
// the smallest sample too. CPU is the CPU time used across the window, after a settle period (10 s in
// full mode, so the window is the steady idle state; 1.5 s in quick mode), as a percent of one core; the
// daemon's figure is the Redis daemon's, the deployment the RSS target is about.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { cpuSeconds, rssMb } from './proc-stats.js';

export interface FootprintOptions {
  /** Database with afc installed. */
  url: string;
  redisUrl: string;
  quick: boolean;
  log: (line: string) => void;
}

interface Child {
  name: string;
  process: ChildProcess;
  /** The last few KB of its stdout and stderr, for error messages. */
  output(): string;
  exited: Promise<void>;
  /** It never started (spawn error). */
  failed(): boolean;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      if (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === 'afc') return dir;
    } catch {
      // not here
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('daemon-footprint: cannot find the afc checkout above this file');
    dir = up;
  }
}

function start(name: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Child {
  const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let spawnFailed = false;
  // A child that could not be spawned emits 'error' and never 'exit'.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      keep(Buffer.from(`spawn error: ${error.message}\n`));
      if (child.pid === undefined) (spawnFailed = true), resolve();
    });
  });
  return { name, process: child, output: () => tail, exited, failed: () => spawnFailed };
}

async function stop(child: Child): Promise<void> {
  const p = child.process;
  if (p.exitCode === null && p.signalCode === null && !child.failed()) {
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await child.exited;
    clearTimeout(timer);
  }
}

function alive(child: Child): void {
  const p = child.process;
  if (p.exitCode !== null || p.signalCode !== null || child.failed()) {
    throw new Error(`${child.name} exited (${p.exitCode ?? p.signalCode}) before it was ready:\n${child.output()}`);
  }
}

/** Local TCP ports of the sockets `pid` has open (Linux /proc). */
function localPorts(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9])) ports.add(parseInt(f[1].split(':')[1], 16));
    }
  }
  return ports;
}

/** Waits until each daemon's own session is LISTENing (or fails with what it printed). */
async function waitListening(db: pg.Client, daemons: Child[], deadline: number): Promise<void> {
  const pending = new Set(daemons);
  while (pending.size > 0) {
    for (const d of pending) alive(d);
    const { rows } = await db.query<{ port: number }>(
      `SELECT client_port AS port FROM pg_stat_activity WHERE application_name = 'afc-daemon' AND query ILIKE 'LISTEN%'`,
    );
    const listening = new Set(rows.map((r) => r.port));
    for (const d of pending) {
      if ([...localPorts(d.process.pid!)].some((port) => listening.has(port))) pending.delete(d);
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) throw new Error(`not listening in time: ${[...pending].map((d) => `${d.name}\n${d.output()}`).join('\n')}`);
    await pause(50);
  }
}

async function waitLine(child: Child, text: string, deadline: number): Promise<void> {
  while (!child.output().includes(text)) {
    alive(child);
    if (Date.now() > deadline) throw new Error(`${child.name} not ready in time:\n${child.output()}`);
    await pause(20);
  }
}

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

export async function measureDaemonFootprint(opts: FootprintOptions): Promise<Record<string, number>> {
  const root = repoRoot();
  const bin = join(root, 'bin', 'afc-daemon.js');
  const settleMs = opts.quick ? 1500 : 10_000;
  const windowMs = opts.quick ? 3000 : 10_000;
  const daemonArgs = ['--db', opts.url, '--key-prefix', `afc-bench-fp:${process.pid}:`, '--log-level', 'warn'];
  const children: Child[] = [];
  const db = new pg.Client({ connectionString: opts.url, application_name: 'afc-bench-footprint' });
  await db.connect();
  try {
    opts.log(`footprint: afc-daemon (redis, memory), bare node, pg+ioredis floor; settle ${settleMs} ms, idle window ${windowMs} ms`);
    const node = start('bare node', ['-e', 'setInterval(() => {}, 1000)'], root);
    const clients = start('pg+ioredis floor', ['--input-type=module', '-e', CLIENTS_SCRIPT], root, { FP_DB: opts.url, FP_REDIS: opts.redisUrl });
    const redisDaemon = start('afc-daemon --cache redis', [bin, ...daemonArgs, '--cache', opts.redisUrl], root);
    const memoryDaemon = start('afc-daemon --cache memory', [bin, ...daemonArgs, '--cache', 'memory'], root);
    children.push(node, clients, redisDaemon, memoryDaemon);
    const deadline = Date.now() + 15_000;
    await Promise.all([waitListening(db, [redisDaemon, memoryDaemon], deadline), waitLine(clients, 'ready\n', deadline)]);

    const pids = children.map((c) => c.process.pid!);
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
      for (const c of children) alive(c);
      const t0 = process.hrtime.bigint();
      const cpu0 = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
      await pause(windowMs);
      const cpu1 = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
      const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
      for (const c of children) alive(c);
      sampling = false;
      await sampler;
      const cpuPercent = pids.map((_, i) => round(((cpu1[i] - cpu0[i]) / elapsedS) * 100, 2));
      const rss = rssSamples.map((s) => Math.max(...s));
      children.forEach((c, i) => opts.log(`footprint: ${c.name}: RSS ${Math.min(...rssSamples[i])}..${rss[i]} MB, idle CPU ${cpuPercent[i]} %`));
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
    await Promise.all(children.map(stop));
    await db.end();
  }
}
