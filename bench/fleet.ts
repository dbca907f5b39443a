// A fleet of daemons: what a hundred hosts cost the database when each LISTENs itself, and what they cost
// when two relays LISTEN and the hosts read the relays' Redis Stream (afc-daemon --publish / --source).
// Design rule: every figure stands next to a baseline measured in the same run, on the same server, with
// the same load; everything started here is stopped at the end, also on failure.
//
// 1. Writer throughput (pgbench, 4 clients, single-row UPDATEs of action-filter conditions, as
//    writer-cost.ts) in alternating rounds of equal length: (a) nobody listening, (b) 2 relays, (c) 2 relays
//    and N hosts reading the stream, (d) N direct LISTEN daemons. Relays are the real afc-daemon bin; hosts
//    and direct daemons are library daemons (startDaemon), several per process (bench/fleet-host.ts),
//    each with its own connections and its own cache. The fleet (and the stream's redis-server, one of
//    these rounds' own) runs at nice 19, standing in for machines of its own (see NICE); between rounds
//    it is left to go idle, so one round's backlog is not paid in the next. N direct sessions need N
//    connection slots: when the server has not got them free, (1) and (3) run on a private PostgreSQL of
//    the same major version with the server's write settings (fleet_writer_private_postgres says so).
// 2. Commit → entry gone at every host, at 1k changed rows/s: 2 relays, M hosts (20 per process) and, as
//    the baseline, one direct LISTEN daemon (a process of its own), all under the same load at once, at
//    normal priority. Times are read where things happen: the writers' send and reply in a writer
//    process, each eviction in its host's process (node-cache 'del'), on the shared monotonic clock.
// 3. afc's LISTEN sessions on the database while (c) runs: pg_stat_activity rows named 'afc-daemon'
//    (daemons) or 'afc-relay-<id>' (relays), as `afc status` counts them.
// 4. The design's floor: the same UPDATEs on a copy of the tables whose only trigger sends one constant
//    NOTIFY per statement, interleaved with afc's in one pgbench session, at 1 and 4 clients.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { DEFAULT_CHANNEL } from '../src/contract.js';
import { freePort } from '../src/embedded/embedded-server.js';
import { migrate } from '../src/migrate/migrator.js';
import { quoteIdent } from '../src/sql/quote.js';
import { streamKey } from '../src/stream/stream-target.js';
import { migrationsDir, renderFixture, renderSentrySchema } from '../src/sql/templates.js';
import { startBenchRedis, type Child } from './children.js';
import type { FleetCommand, FleetMessage, SentStatement } from './fleet-host.js';
import { cpuSeconds, rssMb } from './proc-stats.js';
import { median, ratio, round, summarize } from './stats.js';
import { interleavedSingleRow, pgbench, singleRowScript } from './writer-cost.js';

interface FleetOptions {
  /** A database whose `schema` holds Sentry's tables, bench/data.sql's workflows and afc's triggers. */
  url: string;
  schema: string;
  /** A private redis-server. */
  redisUrl: string;
  quick: boolean;
  log: (line: string) => void;
}

const SIZES = {
  quick: {
    writer: { directProcs: 1, directPerProc: 10, hostProcs: 1, hostsPerProc: 10, rounds: 1, roundSeconds: 2, warmupSeconds: 1 },
    latency: { hostProcs: 1, hostsPerProc: 20, seconds: 2 },
    floor: { oneClientSeconds: 2, fourClientsSeconds: 1 },
  },
  full: {
    writer: { directProcs: 10, directPerProc: 10, hostProcs: 10, hostsPerProc: 10, rounds: 4, roundSeconds: 5, warmupSeconds: 3 },
    latency: { hostProcs: 10, hostsPerProc: 20, seconds: 20 },
    floor: { oneClientSeconds: 15, fourClientsSeconds: 10 },
  },
};
type Sizes = (typeof SIZES)['full'];

const RELAYS = 2;
/**
 * The writer rounds measure what the fleet costs the database; on the database's own machine its
 * processes would also take the writers' CPU, which a fleet on other machines does not. So in those
 * rounds relays, hosts and direct daemons run at the lowest priority (nice 19): they get the CPU nobody
 * else wants, the database delivers each notification into their sockets all the same (PostgreSQL's side of
 * a LISTEN session is paid in full), and they catch up after the round (how long is logged).
 */
const NICE = 19;
/**
 * Hosts start at least this long after the relays' sessions began: a host that starts before its relays'
 * sessions are older than twice the clock margin cannot count them as covering its start, and flushes
 * once (relay-gap) a few seconds later (src/stream/coverage.ts).
 */
const RELAY_AGE_MS = 1000;
const WRITERS = 12;
/** Workflows per block of the latency load (fleet-host.ts): every statement takes fresh workflows. */
const BLOCK = 16;
const DRAIN_MS = 5000;
/** Lines of its stderr (the daemons' warnings) each fleet process may add to the log. */
const SHOWN_LINES = 2;
const FLOOR_CHANNEL = 'afc_floor';
const CONFIGS = ['none', 'relays', 'relays_hosts', 'direct_100'] as const;
type Config = (typeof CONFIGS)[number];
/** What was started, with how to stop it; released in reverse order, once, at the end. */
type Cleanup = Array<[string, () => Promise<unknown>]>;

const run = promisify(execFile);
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DAEMON_BIN = fileURLToPath(new URL('../../bin/afc-daemon.js', import.meta.url));
const FLEET_HOST = fileURLToPath(new URL('./fleet-host.js', import.meta.url));
const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

export async function measureFleet(opts: { url: string; schema: string; redisUrl: string; quick: boolean; log: (line: string) => void }): Promise<Record<string, number>> {
  const sizes = opts.quick ? SIZES.quick : SIZES.full;
  const cleanup: Cleanup = [];
  const results: Record<string, number> = {};
  const t0 = performance.now();
  // Reverse order of setup, each once, whatever failed; also on SIGINT/SIGTERM (the fleet's background
  // processes have sessions of their own: a Ctrl-C at the terminal does not reach them).
  let released: Promise<void> | undefined;
  const releaseAll = () =>
    (released ??= (async () => {
      for (const [what, release] of cleanup.reverse()) await release().catch((error: unknown) => opts.log(`  fleet cleanup: ${what} failed: ${errorText(error)}`));
    })());
  // On a signal: stop what was started, then hand the signal on to the caller's own handler if it has one
  // (bench/run.ts), else end the measurement with an error, so that the caller's cleanup runs either way.
  let interrupt: (signal: NodeJS.Signals) => void = () => undefined;
  const interrupted = new Promise<never>((_, reject) => {
    interrupt = (signal) => reject(new Error(`interrupted by ${signal}`));
  });
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    signalled = true;
    opts.log(`fleet: ${signal}, stopping what it started`);
    void releaseAll().finally(() => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (process.listenerCount(signal) > 0) process.kill(process.pid, signal);
      else interrupt(signal);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const db = new pg.Client({ connectionString: opts.url, application_name: 'afc-bench-fleet' });
  cleanup.push(['bench connection', () => db.end()]);
  const measure = async () => {
    await db.connect();
    const { rows } = await db.query<{ n: string }>(`SELECT max(id) AS n FROM ${quoteIdent(opts.schema)}.workflow_engine_workflow`);
    const workflows = Number(rows[0].n);
    if (!(workflows >= 100)) throw new Error(`${opts.schema}.workflow_engine_workflow holds ${rows[0].n} workflows: bench/data.sql's are needed`);
    const fleet = new Fleet(cleanup, opts.log);
    Object.assign(results, await writerThroughput(opts, sizes, db, workflows, fleet, cleanup));
    Object.assign(results, await hostLatency(opts, sizes, workflows, fleet, cleanup));
    Object.assign(results, await notifyFloor(opts, sizes, db, workflows, cleanup));
    results.fleet_seconds = round((performance.now() - t0) / 1000, 1);
    return results;
  };
  // After a signal the work fails too (its processes and connections are gone): that failure is not news.
  const work = measure().catch((error: unknown) => (signalled ? interrupted : Promise.reject(error)));
  try {
    return await Promise.race([work, interrupted]);
  } finally {
    await releaseAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// ── processes ────────────────────────────────────────────────────────────────────────────────────────

interface FleetProcess {
  readonly pid: number;
  readonly what: string;
  /** It has not exited. */
  running(): boolean;
  /** Sends one command and resolves with its answer ('started', 'stopped', 'loaded'); rejects on 'error'. */
  request(command: FleetCommand): Promise<FleetMessage>;
  onMessage(listener: (message: FleetMessage) => void): void;
  stop(): Promise<void>;
}

/** Children still running; if this process dies without stopping them (an uncaught error skips every finally), they die with it. */
const live = new Set<ChildProcess>();
const killAllLive = () => live.forEach((c) => c.kill('SIGKILL'));
/** SIGTERM, then SIGKILL after 5 s; resolves once `child` has exited (at once if it already has). */
function stopper(child: ChildProcess, exited: Promise<void>): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
}

function killOnExit(child: ChildProcess, exited: Promise<void>): void {
  if (!process.listeners('exit').includes(killAllLive)) process.once('exit', killAllLive);
  live.add(child);
  void exited.then(() => live.delete(child));
}

/**
 * `command <args>`; in the background when `background` (the fleet in the writer rounds, see NICE): at nice
 * NICE, in a session of its own, whose scheduling group (Linux autogroup: one per session, and the CPU is
 * shared between groups before nice counts within one) gets nice NICE too.
 */
function spawnChild(command: string, args: string[], background: boolean, stdio: Array<'ignore' | 'pipe' | 'ipc'>): ChildProcess {
  const options = { cwd: ROOT, stdio, serialization: 'advanced' as const };
  if (!background) return spawn(command, args, options);
  const child = spawn('nice', ['-n', String(NICE), command, ...args], { ...options, detached: true });
  try {
    if (child.pid !== undefined) writeFileSync(`/proc/${child.pid}/autogroup`, String(NICE));
  } catch {
    // No autogroup (a kernel without it, or not Linux): the process's own nice is all there is.
  }
  return child;
}

function forkFleetProcess(what: string, background: boolean, log: (line: string) => void): Promise<FleetProcess> {
  const child = spawnChild(process.execPath, [FLEET_HOST], background, ['ignore', 'ignore', 'pipe', 'ipc']);
  let stderr = '';
  let shown = 0;
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
    // The daemons' warnings, the first few of each process.
    for (const line of d.toString().split('\n')) if (line.trim() !== '' && shown++ < SHOWN_LINES) log(`  ${what}: ${line.slice(0, 300)}`);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  killOnExit(child, exited);
  const listeners: Array<(message: FleetMessage) => void> = [];
  let waiting: { resolve: (m: FleetMessage) => void; reject: (e: Error) => void } | undefined;
  const dead = () => new Error(`${what} (pid ${child.pid}) exited: ${stderr.slice(-500)}`);
  child.on('message', (message: FleetMessage) => {
    if (message.type === 'evicted' || message.type === 'flushed' || message.type === 'ready') {
      for (const l of listeners) l(message);
      return;
    }
    const w = waiting;
    waiting = undefined;
    if (message.type === 'error') w?.reject(new Error(`${what}: ${message.message}`));
    else w?.resolve(message);
  });
  child.once('exit', () => waiting?.reject(dead()));
  let stopping: Promise<void> | undefined;
  const proc: FleetProcess = {
    pid: child.pid!,
    what,
    running: () => child.exitCode === null && child.signalCode === null,
    request(command) {
      if (waiting) return Promise.reject(new Error(`${what}: a command is already in flight`));
      if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(dead());
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        child.send(command);
      });
    },
    onMessage: (l) => void listeners.push(l),
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready within 30 s: ${stderr}`)), 30_000);
    proc.onMessage((m) => {
      if (m.type !== 'ready') return;
      clearTimeout(timer);
      resolve(proc);
    });
    child.once('exit', () => {
      clearTimeout(timer);
      reject(dead());
    });
  });
}

/** The fleet's child processes, forked on first use and reused across measurements; stopped at cleanup. */
class Fleet {
  private readonly pools = new Map<string, FleetProcess[]>();

  constructor(
    private readonly cleanup: Cleanup,
    private readonly log: (line: string) => void,
  ) {}

  async processes(pool: string, count: number, background = false): Promise<FleetProcess[]> {
    const have = this.pools.get(pool) ?? [];
    this.pools.set(pool, have);
    const started = await Promise.allSettled(Array.from({ length: Math.max(0, count - have.length) }, (_, i) => forkFleetProcess(`fleet ${pool} ${have.length + i}`, background, this.log)));
    for (const r of started) {
      if (r.status !== 'fulfilled') continue;
      have.push(r.value);
      this.cleanup.push([`fleet process ${r.value.pid}`, () => r.value.stop()]);
    }
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return have.slice(0, count);
  }
}

/** Two relays: the real afc-daemon bin with --publish, on `url`'s database, appending to the stream at `redisUrl`. */
class Relays {
  private children: Child[] = [];
  /** When both relays' sessions were open (performance.now()). */
  private startedAt = 0;

  constructor(
    private readonly url: string,
    private readonly schema: string,
    private readonly redisUrl: string,
    readonly keyPrefix: string,
    private readonly background = false,
  ) {}

  get running(): boolean {
    return this.children.length > 0;
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid);
  }

  /** Throws if a relay died. */
  check(): void {
    const dead = this.children.find((c) => !c.running());
    if (dead) throw new Error(`relay (pid ${dead.pid}) exited during the measurement`);
  }

  /** Resolves once the relays' sessions are at least RELAY_AGE_MS old (hosts started then do not flush for them). */
  async aged(): Promise<void> {
    await pause(this.startedAt + RELAY_AGE_MS - performance.now());
  }

  async start(): Promise<void> {
    if (this.running) return;
    const args = [DAEMON_BIN, '--db', this.url, '--schema', this.schema, '--publish', this.redisUrl, '--key-prefix', this.keyPrefix, '--log-level', 'info'];
    const started = await Promise.allSettled(Array.from({ length: RELAYS }, (_, i) => startRelay(`relay ${i + 1}`, args, this.background)));
    this.children = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.stop();
      throw failed.reason;
    }
    // Both sessions are open by now (each relay logged it before this resolved).
    this.startedAt = performance.now();
  }

  async stop(): Promise<void> {
    const stopping = this.children;
    this.children = [];
    await Promise.all(stopping.map((c) => c.stop()));
  }
}

/** One relay process; resolves once its first session is open (LISTEN active, stream answering). */
function startRelay(what: string, args: string[], background: boolean): Promise<Child> {
  const child = spawnChild(process.execPath, args, background, ['ignore', 'pipe', 'pipe']);
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  killOnExit(child, exited);
  const stop = stopper(child, exited);
  const relay: Child = { pid: child.pid!, running: () => child.exitCode === null && child.signalCode === null, stop };
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => void stop().finally(() => reject(error));
    const timer = setTimeout(() => fail(new Error(`${what} not ready within 30 s: ${stdout.slice(-500)} ${stderr}`)), 30_000);
    const onData = (d: Buffer) => {
      stdout = (stdout + d.toString()).slice(-4000);
      if (!/"msg":"relay session"/.test(stdout)) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve(relay);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}: ${stdout.slice(-500)} ${stderr}`));
    });
  });
}

/** A private redis-server in the background (see spawnChild), for the writer rounds' stream. */
async function startBackgroundRedis(): Promise<Child & { url: string }> {
  const port = await freePort();
  const child = spawnChild('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], true, ['ignore', 'ignore', 'pipe']);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  killOnExit(child, exited);
  const stop = stopper(child, exited);
  const url = `redis://127.0.0.1:${port}/0`;
  const client = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  try {
    const failed = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${stderr}`))));
    const silent = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`redis-server on port ${port} did not answer within 10 s`)), 10_000).unref());
    await Promise.race([client.ping(), failed, silent]);
  } catch (error) {
    await stop();
    throw error;
  } finally {
    client.disconnect();
  }
  return { pid: child.pid!, url, running: () => child.exitCode === null && child.signalCode === null, stop };
}

/**
 * Waits until `pids` together use under 10 % of a core over 250 ms (CPU time is counted in 10 ms ticks), at
 * most 60 s; returns the ms waited, the first window included.
 */
async function settle(pids: number[]): Promise<number> {
  const t0 = performance.now();
  for (let before = await fleetCpu(pids); performance.now() - t0 < 60_000; ) {
    await pause(250);
    const now = await fleetCpu(pids);
    if (now - before < 0.025) break;
    before = now;
  }
  return Math.round(performance.now() - t0);
}

/** A figure taken while a process of the fleet was dead would be wrong: stop the run instead. */
function checkAlive(procs: FleetProcess[]): void {
  const dead = procs.find((p) => !p.running());
  if (dead) throw new Error(`${dead.what} (pid ${dead.pid}) exited during the measurement`);
}

/** CPU seconds `pids` have used so far, together. */
const fleetCpu = async (pids: number[]) => (await Promise.all(pids.map((pid) => cpuSeconds(pid).catch(() => 0)))).reduce((a, b) => a + b, 0);

/** How many entries were ever appended to the stream under `keyPrefix` (XINFO STREAM entries-added). */
async function streamEntriesAdded(url: string, keyPrefix: string): Promise<number> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const info = (await client.call('XINFO', 'STREAM', streamKey(keyPrefix))) as unknown[];
    return Number(info[info.indexOf('entries-added') + 1]);
  } finally {
    client.disconnect();
  }
}

/** The redis-server's pid (INFO server), to read its CPU time; undefined when it is not on this machine. */
async function redisServerPid(url: string): Promise<number | undefined> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const pid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1]);
    return Number.isSafeInteger(pid) && (await cpuSeconds(pid).then(() => true, () => false)) ? pid : undefined;
  } finally {
    client.disconnect();
  }
}

/** afc's LISTEN sessions on the database: daemons' ('afc-daemon') and relays' ('afc-relay-<id>'), as `afc status` counts them. */
const countListeners = async (client: pg.Client) =>
  Number(
    (
      await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE (application_name = 'afc-daemon' OR application_name LIKE 'afc-relay-%') AND datname = current_database()`,
      )
    ).rows[0].n,
  );

/** afc's LISTEN sessions blocked sending notifications to a client that does not read fast enough. */
const countBlockedListeners = async (client: pg.Client) =>
  Number(
    (
      await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE (application_name = 'afc-daemon' OR application_name LIKE 'afc-relay-%') AND datname = current_database() AND wait_event = 'ClientWrite'`,
      )
    ).rows[0].n,
  );

// ── 1 and 3: writer throughput ───────────────────────────────────────────────────────────────────────

async function writerThroughput(
  opts: FleetOptions,
  sizes: Sizes,
  db: pg.Client,
  workflows: number,
  fleet: Fleet,
  cleanup: Cleanup,
): Promise<Record<string, number>> {
  const s = sizes.writer;
  const direct = s.directProcs * s.directPerProc;
  const hosts = s.hostProcs * s.hostsPerProc;
  // Slots: the direct sessions, two short-lived ones per direct process while its daemons start, the
  // relays' (LISTEN and start-up), pgbench's 4, ours, and a margin for everyone else on the server.
  const needed = direct + 2 * s.directProcs + 3 * RELAYS + 4 + 2 + 10;
  const { rows } = await db.query<{ free: string }>(
    `SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS free`,
  );
  const free = Number(rows[0].free);
  let url = opts.url;
  let schema = opts.schema;
  let admin = db;
  const onPrivate = free < needed;
  if (onPrivate) {
    opts.log(`fleet: ${direct} LISTEN sessions need ${needed} free connection slots and the server has ${free}: writer rounds on a private PostgreSQL`);
    const server = await startPrivatePostgres(db, direct * 3 + 50, opts.log);
    cleanup.push(['private PostgreSQL', () => server.stop()]);
    url = await createFleetDatabase(server.url, workflows);
    schema = 'afc';
    admin = new pg.Client({ connectionString: url, application_name: 'afc-bench-fleet' });
    cleanup.push(['private PostgreSQL connection', () => admin.end()]);
    await admin.connect();
    // The load just written, flushed now rather than by a checkpoint in the middle of a round.
    await admin.query('CHECKPOINT');
  }
  // A redis-server of these rounds' own, in the background with the fleet: in production the stream's Redis
  // does not run on the database's machine either (its fan-out to every host is the fleet's work).
  const redis = await startBackgroundRedis();
  cleanup.push(['writer-round redis-server', () => redis.stop()]);
  const relays = new Relays(url, schema, redis.url, `afc-bench-fleet:${process.pid}:w:`, true);
  cleanup.push(['writer-round relays', () => relays.stop()]);
  const [hostProcs, directProcs] = await Promise.all([fleet.processes('writer-round hosts', s.hostProcs, true), fleet.processes('writer-round direct', s.directProcs, true)]);
  const dir = await mkdtemp(join(tmpdir(), 'afc-bench-fleet-'));
  cleanup.push(['pgbench scripts', () => rm(dir, { recursive: true, force: true })]);
  const script = join(dir, 'update.sql');
  await writeFile(script, singleRowScript(schema, workflows));

  const state = { hosts: false, direct: false };
  // Flushes after start-up, by role and cause: a starved background daemon may reconnect (its LISTEN
  // heartbeat times out) or a host flush (no relay heard for 3 heartbeats); said, not hidden.
  const flushes = new Map<string, number>();
  const countFlush = (role: string) => (m: FleetMessage) => {
    if (m.type === 'flushed') flushes.set(`${role} ${m.cause}`, (flushes.get(`${role} ${m.cause}`) ?? 0) + 1);
  };
  for (const p of hostProcs) p.onMessage(countFlush('host'));
  for (const p of directProcs) p.onMessage(countFlush('direct'));
  const all = (procs: FleetProcess[], command: FleetCommand) => Promise.all(procs.map((p) => p.request(command)));
  const configure = async (config: Config) => {
    const wantRelays = config === 'relays' || config === 'relays_hosts';
    if (state.hosts && config !== 'relays_hosts') await all(hostProcs, { cmd: 'stop' });
    if (state.direct && config !== 'direct_100') await all(directProcs, { cmd: 'stop' });
    state.hosts &&= config === 'relays_hosts';
    state.direct &&= config === 'direct_100';
    if (relays.running && !wantRelays) await relays.stop();
    if (wantRelays) await relays.start();
    if (config === 'relays_hosts' && !state.hosts) {
      await relays.aged();
      await Promise.all(hostProcs.map((p, i) => p.request({ cmd: 'start', role: 'host', count: s.hostsPerProc, url: redis.url, schema, keyPrefix: relays.keyPrefix, fill: 0, firstIndex: i * s.hostsPerProc })));
      state.hosts = true;
    }
    if (config === 'direct_100' && !state.direct) {
      await Promise.all(directProcs.map((p, i) => p.request({ cmd: 'start', role: 'direct', count: s.directPerProc, url, schema, keyPrefix: '', fill: 0, firstIndex: i * s.directPerProc })));
      state.direct = true;
    }
  };

  const tps: Record<Config, number[]> = { none: [], relays: [], relays_hosts: [], direct_100: [] };
  const sessions: Record<'relays_hosts' | 'direct_100', number[]> = { relays_hosts: [], direct_100: [] };
  let directRss = 0;
  let relayRss = 0;
  const blocked: string[] = [];
  const fleetCpuShare: Record<Config, number[]> = { none: [], relays: [], relays_hosts: [], direct_100: [] };
  const catchUp: Record<Config, number[]> = { none: [], relays: [], relays_hosts: [], direct_100: [] };
  opts.log(
    `fleet: writer throughput, pgbench 4 clients, ${s.rounds} round(s) of ${s.roundSeconds} s per configuration; ${hosts} hosts in ${s.hostProcs} processes, ${direct} direct LISTEN daemons in ${s.directProcs} processes`,
  );
  // Not counted: the first seconds of writing on a database (caches, autovacuum's first look) are slower.
  await pgbench(dir, url, ['-c', '4', '-j', '2', '-T', String(s.warmupSeconds), '-f', script]);
  for (let r = 0; r < s.rounds; r++) {
    for (const config of r % 2 === 0 ? CONFIGS : [...CONFIGS].reverse()) {
      await configure(config);
      const pids = [...relays.pids, ...(relays.running ? [redis.pid] : []), ...(state.hosts ? hostProcs : []).map((p) => p.pid), ...(state.direct ? directProcs : []).map((p) => p.pid)];
      const waited = await settle(pids);
      const cpu0 = await fleetCpu(pids);
      const bench = pgbench(dir, url, ['-c', '4', '-j', '2', '-T', String(s.roundSeconds), '-f', script]);
      bench.catch(() => undefined); // awaited below; not an unhandled rejection if what comes first throws
      if (config !== 'none') {
        // Halfway through the round: the sessions on the database while the fleet is at work, and memory.
        await pause((s.roundSeconds * 1000) / 2);
        if (config !== 'relays') sessions[config].push(await countListeners(admin));
        blocked.push(`${config} ${await countBlockedListeners(admin)}`);
        if (config === 'relays') relayRss = Math.max(relayRss, ...(await Promise.all(relays.pids.map(rssMb))));
        if (config === 'direct_100') directRss = Math.max(directRss, ...(await Promise.all(directProcs.map((p) => rssMb(p.pid)))));
      }
      const out = await bench;
      if (relays.running) relays.check();
      checkAlive([...(state.hosts ? hostProcs : []), ...(state.direct ? directProcs : [])]);
      const m = /tps = ([\d.]+)/.exec(out);
      if (!m) throw new Error(`no tps in pgbench output: ${out}`);
      tps[config].push(Number(m[1]));
      const cpu = ((await fleetCpu(pids)) - cpu0) / s.roundSeconds;
      const behind = pids.length > 0 ? await settle(pids) : 0;
      fleetCpuShare[config].push(cpu);
      catchUp[config].push(behind);
      opts.log(
        `  round ${r + 1}/${s.rounds} ${config}: ${Math.round(Number(m[1]))} tps; the fleet's processes used ${Math.round(cpu * 100)} % of a core during the round and caught up ${behind} ms after it (idle ${waited} ms before)`,
      );
    }
  }
  await configure('none');
  opts.log(`  afc LISTEN sessions on the database halfway through the rounds: relays + hosts ${sessions.relays_hosts.join(', ')}; direct ${sessions.direct_100.join(', ')}`);
  opts.log(`  of them waiting to write to their client (ClientWrite): ${blocked.join(', ')}`);
  opts.log(`  flushes after start-up: ${flushes.size === 0 ? 'none' : JSON.stringify(Object.fromEntries(flushes))}`);
  const med = (c: Config) => median(tps[c]);
  return {
    fleet_writer_tps_none: Math.round(med('none')),
    fleet_writer_tps_relays: Math.round(med('relays')),
    fleet_writer_tps_relays_hosts: Math.round(med('relays_hosts')),
    fleet_writer_tps_direct_100: Math.round(med('direct_100')),
    fleet_writer_tps_relays_hosts_to_relays_only_ratio: ratio(med('relays_hosts'), med('relays')),
    fleet_writer_tps_direct_100_to_none_ratio: ratio(med('direct_100'), med('none')),
    fleet_writer_tps_relays_to_none_ratio: ratio(med('relays'), med('none')),
    fleet_writer_hosts: hosts,
    fleet_writer_direct_listeners: direct,
    fleet_writer_round_s: s.roundSeconds,
    fleet_writer_rounds: s.rounds,
    fleet_writer_private_postgres: onPrivate ? 1 : 0,
    ...Object.fromEntries(
      (['relays', 'relays_hosts', 'direct_100'] as const).flatMap((c) => [
        [`fleet_writer_fleet_cpu_percent_${c}`, Math.round(median(fleetCpuShare[c]) * 100)],
        [`fleet_writer_fleet_catch_up_ms_${c}`, Math.round(median(catchUp[c]))],
      ]),
    ),
    fleet_writer_direct_reconnects: flushes.get('direct reconnect') ?? 0,
    fleet_listen_sessions: Math.max(...sessions.relays_hosts),
    fleet_direct_listen_sessions: Math.min(...sessions.direct_100),
    fleet_direct_process_rss_mb: directRss,
    fleet_relay_rss_mb: relayRss,
    fleet_direct_daemons_per_process: s.directPerProc,
  };
}

// ── 2: commit → entry gone at every host ─────────────────────────────────────────────────────────────

async function hostLatency(opts: FleetOptions, sizes: Sizes, workflows: number, fleet: Fleet, cleanup: Cleanup): Promise<Record<string, number>> {
  const s = sizes.latency;
  const hosts = s.hostProcs * s.hostsPerProc;
  const DIRECT = hosts; // the direct daemon's index, after the hosts' 0..hosts-1
  // Blocks of fresh workflows for the whole load (about 12 a second at 1k rows/s), twice over for margin.
  const blockCount = Math.min(Math.floor(workflows / BLOCK), Math.ceil(s.seconds * 12 * 2) + 10);
  const hot = blockCount * BLOCK;
  const blocks = Array.from({ length: blockCount }, (_, i) => 1 + i * BLOCK);
  for (let i = blocks.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [blocks[i], blocks[j]] = [blocks[j], blocks[i]];
  }
  const relays = new Relays(opts.url, opts.schema, opts.redisUrl, `afc-bench-fleet:${process.pid}:l:`);
  cleanup.push(['latency relays', () => relays.stop()]);
  const [hostProcs, [directProc], [writer]] = await Promise.all([fleet.processes('hosts', s.hostProcs), fleet.processes('direct', 1), fleet.processes('writer', 1)]);
  const events = { host: [] as number[], id: [] as number[], at: [] as number[] };
  const flushes = new Map<string, number>();
  const onMessage = (m: FleetMessage) => {
    if (m.type === 'evicted') {
      for (let i = 0; i < m.hosts.length; i++) {
        events.host.push(m.hosts[i]);
        events.id.push(m.ids[i]);
        events.at.push(Number(m.at[i]));
      }
    } else if (m.type === 'flushed') {
      flushes.set(m.cause, (flushes.get(m.cause) ?? 0) + 1);
    }
  };
  let listening = true;
  for (const p of [...hostProcs, directProc]) p.onMessage((m) => listening && onMessage(m));
  const started: FleetProcess[] = [];
  try {
    await relays.start();
    await relays.aged();
    opts.log(`fleet: commit → gone at 1k rows/s, ${hosts} hosts in ${s.hostProcs} processes (2 relays) and 1 direct LISTEN daemon, each cache holding ${hot} entries`);
    await Promise.all([
      ...hostProcs.map(async (p, i) => {
        await p.request({ cmd: 'start', role: 'host', count: s.hostsPerProc, url: opts.redisUrl, schema: opts.schema, keyPrefix: relays.keyPrefix, fill: hot, firstIndex: i * s.hostsPerProc });
        started.push(p);
      }),
      (async () => {
        await directProc.request({ cmd: 'start', role: 'direct', count: 1, url: opts.url, schema: opts.schema, keyPrefix: relays.keyPrefix, fill: hot, firstIndex: DIRECT });
        started.push(directProc);
      })(),
    ]);
    await settle([...relays.pids, ...started.map((p) => p.pid)]);
    const table = `${quoteIdent(opts.schema)}.workflow_engine_datacondition`;
    const redisPid = await redisServerPid(opts.redisUrl);
    const groups = { hosts: hostProcs.map((p) => p.pid), relays: relays.pids, redis: redisPid ? [redisPid] : [], direct: [directProc.pid] };
    const cpu0 = await Promise.all(Object.values(groups).map(fleetCpu));
    const entriesBefore = await streamEntriesAdded(opts.redisUrl, relays.keyPrefix);
    const loaded = await writer.request({ cmd: 'load', url: opts.url, table, rowsPerSecond: 1000, seconds: s.seconds, writers: WRITERS, block: BLOCK, blocks });
    if (loaded.type !== 'loaded') throw new Error(`writer answered ${loaded.type}`);
    relays.check();
    checkAlive([...hostProcs, directProc]);
    const cpuSpent = (await Promise.all(Object.values(groups).map(fleetCpu))).map((c, i) => c - cpu0[i]);
    const cpuByGroup = Object.fromEntries(Object.keys(groups).map((g, i) => [g, Math.round((cpuSpent[i] / loaded.seconds) * 100)]));
    opts.log(
      `  during the load, % of one core (the machine has ${cpus().length}): ${Object.entries(cpuByGroup).map(([g, c]) => `${g} ${c}`).join(', ')}; load average ${loadavg()[0].toFixed(1)}`,
    );

    // Each workflow belongs to one statement; an eviction counts once per (workflow, daemon), from that
    // statement's send on.
    const byWorkflow = new Map<number, SentStatement>();
    for (const st of loaded.statements) if (st.ack !== null) for (const w of st.workflows) byWorkflow.set(w, st);
    const daemons = hosts + 1;
    const expected = byWorkflow.size * daemons;
    const seen = new Map<number, number>(); // workflow * daemons + daemon → eviction time (ns)
    let scanned = 0;
    const tally = () => {
      for (; scanned < events.host.length; scanned++) {
        const st = byWorkflow.get(events.id[scanned]);
        if (!st || events.at[scanned] < Number(st.t0)) continue;
        const key = events.id[scanned] * daemons + events.host[scanned];
        if (!seen.has(key)) seen.set(key, events.at[scanned]);
      }
    };
    // Late is not missed: wait while evictions keep coming (hosts that fell behind catch up), up to a minute.
    const drainStart = performance.now();
    let lastProgress = drainStart;
    for (let before = -1; seen.size < expected && performance.now() - lastProgress < DRAIN_MS && performance.now() - drainStart < 60_000; await pause(20)) {
      tally();
      if (seen.size !== before) lastProgress = performance.now();
      before = seen.size;
    }
    listening = false;
    const entries = (await streamEntriesAdded(opts.redisUrl, relays.keyPrefix)) - entriesBefore;

    const host: number[] = [];
    const direct: number[] = [];
    for (const [key, at] of seen) {
      const w = Math.floor(key / daemons);
      const d = key % daemons;
      const st = byWorkflow.get(w)!;
      (d === DIRECT ? direct : host).push((at - Number(st.ack)) / 1e6);
    }
    const missedHost = byWorkflow.size * hosts - host.length;
    const missedDirect = byWorkflow.size - direct.length;
    const rows = loaded.statements.filter((st) => st.ack !== null).reduce((a, st) => a + st.rows, 0);
    for (const e of loaded.errors.slice(0, 3)) opts.log(`  write failed: ${e}`);
    opts.log(
      `  ${byWorkflow.size} workflows evicted × ${hosts} hosts: ${host.length} seen, ${missedHost} missed; direct daemon: ${direct.length} seen, ${missedDirect} missed; ${Math.round(rows / loaded.seconds)} rows/s achieved; flushes after start: ${JSON.stringify(Object.fromEntries(flushes))}`,
    );
    // What a host costs: its process CPU per stream entry it read (every change comes once per relay; the
    // relays' heartbeats are entries too). Counted until the load ended, over the entries appended until the
    // hosts were done with them.
    const hostCpuUsPerEntry = round(((cpuSpent[0] / hosts) * 1e6) / entries, 1);
    opts.log(`  ${entries} stream entries appended; hosts' CPU ${hostCpuUsPerEntry} µs per host per entry`);
    const h = summarize('fleet_host_after_ack', host, [50, 99, 99.9]);
    const d = summarize('fleet_direct_after_ack', direct, [50, 99, 99.9]);
    return {
      ...h,
      fleet_host_missed: missedHost,
      fleet_host_samples: host.length,
      fleet_hosts: hosts,
      fleet_host_processes: s.hostProcs,
      ...d,
      fleet_direct_missed: missedDirect,
      fleet_host_after_ack_p99_to_direct_ratio: ratio(h.fleet_host_after_ack_p99_ms, d.fleet_direct_after_ack_p99_ms),
      fleet_host_rows_per_s: Math.round(rows / loaded.seconds),
      fleet_host_statements_per_s: Math.round(loaded.statements.length / loaded.seconds),
      fleet_host_write_errors: loaded.errors.length,
      fleet_host_flushes_after_start: [...flushes.values()].reduce((a, b) => a + b, 0),
      fleet_host_processes_cpu_percent: cpuByGroup.hosts,
      fleet_host_redis_cpu_percent: cpuByGroup.redis,
      fleet_host_cpu_us_per_host_entry: hostCpuUsPerEntry,
    };
  } finally {
    listening = false;
    await Promise.allSettled(started.map((p) => p.request({ cmd: 'stop' })));
    await relays.stop();
  }
}

// ── 4: afc's triggers against a constant NOTIFY per statement ────────────────────────────────────────

async function notifyFloor(opts: FleetOptions, sizes: Sizes, db: pg.Client, workflows: number, cleanup: Cleanup): Promise<Record<string, number>> {
  const floor = `${opts.schema}_fleet_floor`;
  const q = quoteIdent(floor);
  const dir = await mkdtemp(join(tmpdir(), 'afc-bench-floor-'));
  cleanup.push(['floor pgbench scripts', () => rm(dir, { recursive: true, force: true })]);
  cleanup.push(['floor schema', () => db.query(`DROP SCHEMA IF EXISTS ${q} CASCADE`)]);
  // A session LISTENs on both channels throughout, as a daemon would.
  const listener = new pg.Client({ connectionString: opts.url, application_name: 'afc-bench-floor-listener' });
  cleanup.push(['floor listener', () => listener.end()]);
  opts.log(`fleet: afc's triggers vs a constant NOTIFY per statement (${floor}, same data), interleaved in one pgbench session`);
  await db.query(`DROP SCHEMA IF EXISTS ${q} CASCADE`);
  await db.query(renderSentrySchema(floor));
  await db.query(renderFixture(readFileSync(join(dirname(migrationsDir()), 'bench/data.sql'), 'utf8'), floor, { workflows: String(workflows) }));
  await db.query(`CREATE FUNCTION ${q}.notify_floor() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('${FLOOR_CHANNEL}', 'x'); RETURN NULL; END $$`);
  await db.query(`CREATE TRIGGER notify_floor AFTER UPDATE ON ${q}.workflow_engine_datacondition FOR EACH STATEMENT EXECUTE FUNCTION ${q}.notify_floor()`);
  await listener.connect();
  listener.on('notification', () => undefined);
  await listener.query(`LISTEN ${FLOOR_CHANNEL}; LISTEN ${DEFAULT_CHANNEL}`);
  const interleaved = async (clients: number, seconds: number) => {
    const [floorRun, afcRun] = await interleavedSingleRow(dir, opts.url, workflows, [floor, opts.schema], seconds, clients);
    const [floorUs, afcUs] = [floorRun.mean, afcRun.mean];
    const latencies = [{ length: floorRun.n }, { length: afcRun.n }];
    opts.log(`  ${clients} client(s): floor ${floorUs.toFixed(0)} µs, afc ${afcUs.toFixed(0)} µs (means of ${latencies[0].length} and ${latencies[1].length})`);
    // Transactions per second each would sustain at that latency, with that many clients.
    return { floorUs, afcUs, floorTps: Math.round((clients * 1e6) / floorUs), afcTps: Math.round((clients * 1e6) / afcUs) };
  };
  const one = await interleaved(1, sizes.floor.oneClientSeconds);
  const four = await interleaved(4, sizes.floor.fourClientsSeconds);
  return {
    trigger_overhead_vs_notify_floor_ratio: ratio(one.afcUs, one.floorUs),
    trigger_overhead_vs_notify_floor_4_clients_ratio: ratio(four.afcUs, four.floorUs),
    trigger_floor_tps_afc: one.afcTps,
    trigger_floor_tps_notify_floor: one.floorTps,
    trigger_floor_4_clients_tps_afc: four.afcTps,
    trigger_floor_4_clients_tps_notify_floor: four.floorTps,
    trigger_floor_cost_us: round(one.afcUs - one.floorUs, 1),
  };
}

// ── a private PostgreSQL for the direct sessions ─────────────────────────────────────────────────────

/** Settings that shape a writer's commit, copied from the server so both give comparable writers. */
const COPIED_SETTINGS = [
  'shared_buffers',
  'fsync',
  'synchronous_commit',
  'full_page_writes',
  'wal_level',
  'wal_buffers',
  'wal_sync_method',
  'wal_compression',
  'commit_delay',
  'commit_siblings',
  'max_wal_size',
  'min_wal_size',
  'checkpoint_timeout',
  'checkpoint_completion_target',
  'max_wal_senders',
];

interface PrivatePostgres {
  url: string;
  stop(): Promise<void>;
}

/** A PostgreSQL of the same major version as `like`'s server, on a free port, data in a temp dir. */
async function startPrivatePostgres(like: pg.Client, maxConnections: number, log: (line: string) => void): Promise<PrivatePostgres> {
  const { rows: v } = await like.query<{ major: number }>(`SELECT current_setting('server_version_num')::int / 10000 AS major`);
  const major = v[0].major;
  const bindir = `/usr/lib/postgresql/${major}/bin`;
  try {
    await run(join(bindir, 'postgres'), ['--version']);
  } catch (cause) {
    throw new Error(`the fleet's direct LISTEN sessions need a private PostgreSQL ${major} (${bindir}/postgres), or ${maxConnections} free connection slots on the server`, { cause });
  }
  const { rows: settings } = await like.query<{ name: string; setting: string }>('SELECT name, setting FROM pg_settings WHERE name = ANY($1)', [COPIED_SETTINGS]);
  const parent = await mkdtemp(join(tmpdir(), 'afc-fleet-pg-'));
  // initdb refuses root: run the server as the postgres user then.
  const owner = process.getuid?.() === 0 ? await userIds('postgres') : undefined;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // fast shutdown
      const timer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(parent, { recursive: true, force: true });
  };
  try {
    if (owner) await chown(parent, owner.uid, owner.gid);
    const dataDir = join(parent, 'data');
    await run(join(bindir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], { ...owner, cwd: parent });
    const port = await freePort();
    const flags = [
      ['listen_addresses', '127.0.0.1'],
      ['unix_socket_directories', parent],
      ['max_connections', String(maxConnections)],
      ...settings.map((s) => [s.name, s.setting]),
    ].flatMap(([k, val]) => ['-c', `${k}=${val}`]);
    let stderr = '';
    // In a session of its own, as a server is (and so in a scheduling group of its own: see spawnChild).
    child = spawn(join(bindir, 'postgres'), ['-D', dataDir, '-p', String(port), ...flags], { ...owner, cwd: parent, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const proc = child;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    killOnExit(proc, exited);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    for (const deadline = Date.now() + 30_000; ; ) {
      if (proc.exitCode !== null) throw new Error(`private PostgreSQL exited: ${stderr}`);
      const probe = new pg.Client({ connectionString: url });
      try {
        await probe.connect();
        await probe.end();
        break;
      } catch (error) {
        await probe.end().catch(() => undefined);
        if (Date.now() > deadline) throw new Error(`private PostgreSQL did not answer within 30 s: ${stderr}`, { cause: error });
        await pause(100);
      }
    }
    log(`  private PostgreSQL ${major} on port ${port}, max_connections ${maxConnections}, ${settings.map((s) => `${s.name}=${s.setting}`).join(' ')}`);
    return { url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function userIds(name: string): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * A database `afc_fleet` on `serverUrl` with Sentry's tables in `afc`, bench/data.sql's `workflows` and
 * afc's triggers (as bench/run.ts createBenchDatabase does); returns its URL.
 */
async function createFleetDatabase(serverUrl: string, workflows: number, name = 'afc_fleet'): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await db.query(renderSentrySchema('afc'));
    await db.query(renderFixture(readFileSync(join(dirname(migrationsDir()), 'bench/data.sql'), 'utf8'), 'afc', { workflows: String(workflows) }));
    await migrate(db, { schema: 'afc', dryRun: false, lockTimeoutMs: 5000 });
    await db.query('VACUUM ANALYZE');
  } finally {
    await db.end();
  }
  return url;
}

// ── manual runner: `node dist/bench/fleet.js [--quick] [--db SERVER_URL] [--workflows N]` ───────────────

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
  const quick = process.argv.includes('--quick');
  const serverUrl = arg('--db') ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const workflows = Number(arg('--workflows') ?? (quick ? 5000 : 20_000));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const name = `afc_bench_fleet_${process.pid}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  const redis = await startBenchRedis();
  try {
    const url = await createFleetDatabase(serverUrl, workflows, name);
    log(`data: ${workflows} workflows in ${name}; private redis-server at ${redis.url}`);
    const results = await measureFleet({ url, schema: 'afc', redisUrl: redis.url, quick, log });
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await redis.stop();
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    await admin.end();
  }
}
