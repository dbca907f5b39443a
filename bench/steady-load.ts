// Commit → entry gone under a steady write load, through a real daemon process: the afc-daemon bin for
// Redis, a Redis Cluster and a memcached pool, the library daemon around a node-cache in a process of its
// own for memory. Writers run a fixed mix at a paced rate: four single-row UPDATEs of an action-filter
// condition, then one 100-row UPDATE (a contiguous range of conditions, about 15 workflows), repeated.
// Every statement targets only workflows with no eviction outstanding, so each eviction seen belongs to
// exactly one statement; one that never shows up is counted as missed. Times are taken where things
// happen (the writer's send and reply, the watcher's receipt) on the shared monotonic clock, and given
// both from the send (an upper bound of commit → gone) and from the writer's reply (a lower bound,
// negative when the entry went first). memcached's watcher polls (bench/watcher.ts), so its time is when
// a poll first found the entry gone: late by at most `_watch_window` (reported).
// Baseline under the same load: a probe session writes a row of its own and NOTIFYs in one statement
// every 10 ms (the commit path of an afc statement, without its trigger and daemon); a watcher receives it.
import pg from 'pg';
import { startDaemonProcess, startWatcher, type Child, type Watcher } from './children.js';
import { plainRedis, type PlainStore } from './plain-stores.js';
import { cpuSeconds, rssMb } from './proc-stats.js';
import type { Node } from './servers.js';
import { summarize } from './stats.js';

export interface SteadyLoadOptions {
  /** Database with afc installed on bench/data.sql's tables in `schema`. */
  url: string;
  schema: string;
  /** The bench's private Redis (keyspace events on); only the Redis measurement uses it. */
  redisUrl: string;
  workflows: number;
  /** Changed rows per second to aim for. */
  rowsPerSecond: number;
  /** Label of the rate in the result keys, e.g. '1k'. */
  label: string;
  seconds: number;
  log: (line: string) => void;
}

/** Heartbeat of the measured daemons (see where it is used). */
const BENCH_HEARTBEAT_MS = 10_000;
const WRITERS = 12;
const BULK_ROWS = 100;
const SINGLES_PER_BULK = 4;
const CONDITIONS_PER_WORKFLOW = 7; // bench/data.sql: 1 WHEN condition, then 2 groups × 3 action-filter conditions
const PROBE_EVERY_MS = 10;
const DRAIN_MS = 5000;
const DRAIN_MAX_MS = 30_000;

const nowNs = () => process.hrtime.bigint();
const ms = (ns: bigint) => Number(ns) / 1e6;
const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec));

/** The workflow a condition id belongs to, or undefined for a WHEN condition (which no entry depends on). */
function workflowOf(conditionId: number): number | undefined {
  const k = (conditionId - 1) % CONDITIONS_PER_WORKFLOW;
  return k === 0 ? undefined : Math.floor((conditionId - 1) / CONDITIONS_PER_WORKFLOW) + 1;
}

interface Statement {
  sql: string;
  params: unknown[];
  workflows: number[];
  rows: number;
}

function pickStatement(n: number, opts: SteadyLoadOptions, pending: Map<number, unknown>): Statement {
  const table = `${opts.schema}.workflow_engine_datacondition`;
  const maxId = opts.workflows * CONDITIONS_PER_WORKFLOW;
  for (;;) {
    if (n % (SINGLES_PER_BULK + 1) === SINGLES_PER_BULK) {
      const from = 1 + Math.floor(Math.random() * (maxId - BULK_ROWS));
      const workflows = [...new Set(Array.from({ length: BULK_ROWS }, (_, i) => workflowOf(from + i)).filter((w): w is number => w !== undefined))];
      if (workflows.some((w) => pending.has(w))) continue;
      return { sql: `UPDATE ${table} SET comparison = $1 WHERE id BETWEEN $2 AND $3`, params: [`{"n": ${n}}`, from, from + BULK_ROWS - 1], workflows, rows: BULK_ROWS };
    }
    const w = 1 + Math.floor(Math.random() * opts.workflows);
    if (pending.has(w)) continue;
    const id = (w - 1) * CONDITIONS_PER_WORKFLOW + 2 + Math.floor(Math.random() * (CONDITIONS_PER_WORKFLOW - 1));
    return { sql: `UPDATE ${table} SET comparison = $1 WHERE id = $2`, params: [`{"n": ${n}}`, id], workflows: [w], rows: 1 };
  }
}

interface Sent {
  statement: Statement;
  t0: bigint;
  /** When the writer got the statement's reply (its commit done), once it has. */
  ack?: bigint;
}

interface LoadRun {
  /** Statement sent → entry gone, per workflow. */
  latencies: number[];
  /** Writer's reply → entry gone, per workflow (negative when the entry went first). */
  afterAck: number[];
  probes: number[];
  writes: number[];
  rows: number;
  statements: number;
  missed: number;
  errors: number;
  seconds: number;
}

/**
 * Runs the load against one store; `refill` puts an evicted entry back so its next eviction is seen too,
 * and `expect` (if given) is told each workflow a statement is about to change, before it is sent.
 */
async function runLoad(
  opts: SteadyLoadOptions,
  evictions: Watcher,
  probe: Watcher,
  refill: (workflow: number) => Promise<void>,
  expect?: (workflow: number) => void,
): Promise<LoadRun> {
  // Workflows a statement is waiting on; null while an evicted entry is being put back.
  const pending = new Map<number, Sent | null>();
  const seen: Array<{ sent: Sent; at: bigint }> = [];
  evictions.onEvent((id, at) => {
    const w = Number(id);
    const sent = pending.get(w);
    if (!sent || at < sent.t0) return;
    seen.push({ sent, at });
    pending.set(w, null);
    void refill(w).then(() => pending.delete(w));
  });
  const probeSent = new Map<string, bigint>();
  const probes: number[] = [];
  probe.onEvent((id, at) => {
    const t0 = probeSent.get(id);
    if (t0 === undefined) return;
    probeSent.delete(id);
    probes.push(ms(at - t0));
  });

  const connect = async () => {
    const c = new pg.Client({ connectionString: opts.url });
    await c.connect();
    return c;
  };
  const writers = await Promise.all(Array.from({ length: WRITERS }, connect));
  const prober = await connect();
  // The baseline is a write too (its own row, then NOTIFY, in one transaction): the same commit path as a
  // statement that fires afc's trigger, without the trigger and without the daemon.
  await prober.query('CREATE TABLE IF NOT EXISTS afc_bench_probe (id int PRIMARY KEY, n bigint NOT NULL); INSERT INTO afc_bench_probe VALUES (1, 0) ON CONFLICT DO NOTHING');
  const idle = [...writers];
  const writes: number[] = [];
  let rows = 0;
  let statements = 0;
  let errors = 0;
  const interval = (1000 * (SINGLES_PER_BULK + BULK_ROWS)) / (SINGLES_PER_BULK + 1) / opts.rowsPerSecond; // ms per statement
  const start = performance.now();
  const end = start + opts.seconds * 1000;
  let nextProbe = start;
  let probeInFlight: Promise<unknown> | undefined;
  let seq = 0;
  const inflight = new Set<Promise<void>>();

  const send = async (client: pg.Client, n: number) => {
    const statement = pickStatement(n, opts, pending);
    if (expect) for (const w of statement.workflows) expect(w);
    const sent: Sent = { statement, t0: nowNs() };
    for (const w of sent.statement.workflows) pending.set(w, sent);
    try {
      await client.query(sent.statement.sql, sent.statement.params);
      sent.ack = nowNs();
      writes.push(ms(sent.ack - sent.t0));
      rows += sent.statement.rows;
      statements++;
    } catch (error) {
      errors++;
      for (const w of sent.statement.workflows) pending.delete(w);
      opts.log(`  write failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    idle.push(client);
  };

  for (let n = 0; performance.now() < end; ) {
    const now = performance.now();
    if (now >= nextProbe && probeInFlight === undefined) {
      nextProbe = now + PROBE_EVERY_MS;
      const token = `p${seq++}`;
      probeSent.set(token, nowNs());
      probeInFlight = prober
        .query(`WITH u AS (UPDATE afc_bench_probe SET n = n + 1 WHERE id = 1 RETURNING n) SELECT pg_notify('afc_bench_probe', $1) FROM u`, [token])
        .catch((error: unknown) => opts.log(`  probe failed: ${error instanceof Error ? error.message : String(error)}`))
        .finally(() => (probeInFlight = undefined));
    }
    const due = Math.floor((now - start) / interval) + 1;
    while (n < due && idle.length > 0) {
      const p = send(idle.pop()!, n++);
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    // Behind schedule with every writer busy: the achieved rate will say so.
    await (n < due ? new Promise((r) => setImmediate(r)) : sleep(Math.min(1, interval)));
  }
  const seconds = (performance.now() - start) / 1000;
  await Promise.all([...inflight, probeInFlight]);
  const outstanding = () => [...pending.values()].filter((sent) => sent !== null);
  // A daemon that is behind (a loaded machine) is still working through its backlog: wait while evictions
  // keep arriving, and call an entry missed only once DRAIN_MS pass with none (at most DRAIN_MAX_MS).
  const hardDeadline = performance.now() + DRAIN_MAX_MS;
  let lastProgress = performance.now();
  let lastSeen = seen.length;
  while (outstanding().length > 0 && performance.now() - lastProgress < DRAIN_MS && performance.now() < hardDeadline) {
    await sleep(5);
    if (seen.length !== lastSeen) [lastSeen, lastProgress] = [seen.length, performance.now()];
  }
  const missing = outstanding();
  if (missing.length > 0) opts.log(`  ${missing.length} evictions never seen, e.g. after ${missing[0]!.statement.sql} ${JSON.stringify(missing[0]!.statement.params)}`);
  await Promise.all([...writers, prober].map((c) => c.end()));
  return {
    latencies: seen.map((e) => ms(e.at - e.sent.t0)),
    afterAck: seen.filter((e) => e.sent.ack !== undefined).map((e) => ms(e.at - e.sent.ack!)),
    probes,
    writes,
    rows,
    statements,
    missed: missing.length,
    errors,
    seconds,
  };
}

function report(prefix: string, run: LoadRun): Record<string, number> {
  return {
    ...summarize(prefix, run.latencies, [50, 99, 99.9]),
    ...summarize(`${prefix}_after_ack`, run.afterAck, [50, 99, 99.9]),
    [`${prefix}_samples`]: run.latencies.length,
    [`${prefix}_missed`]: run.missed,
    [`${prefix}_rows_per_s`]: Math.round(run.rows / run.seconds),
    [`${prefix}_statements_per_s`]: Math.round(run.statements / run.seconds),
    [`${prefix}_write_errors`]: run.errors,
    ...summarize(`${prefix}_write`, run.writes, [50, 99]),
    ...summarize(`${prefix}_raw_notify`, run.probes, [50, 99]),
  };
}

/**
 * A shared store through the real afc-daemon bin (`--cache store.cacheUrl`), a watcher process seeing each
 * deletion: Redis and a Redis Cluster through keyspace events, memcached by polling (bench/watcher.ts says
 * how, and `_watch_window_*` how wide the window a deletion was seen in: the resolution of that timing).
 */
async function measureSharedStoreUnderLoad(opts: SteadyLoadOptions, store: PlainStore, watcherArgs: (prefix: string) => string[]): Promise<Record<string, number>> {
  const prefix = `afc-bench:${process.pid}:`;
  const started: Child[] = [];
  try {
    const evictions = await startWatcher(watcherArgs(prefix));
    started.push(evictions);
    const windows: number[] = [];
    evictions.onStat((name, value) => name === 'window_us' && windows.push(value / 1000));
    const probe = await startWatcher(['notify', opts.url, 'afc_bench_probe']);
    started.push(probe);
    // A long heartbeat: on a machine stalled for seconds a heartbeat timeout would reconnect (and flush),
    // which loses nothing real but makes the measurement count a refilled entry as missed.
    const daemon = await startDaemonProcess(['--db', opts.url, '--schema', 'afc', '--cache', store.cacheUrl, '--key-prefix', prefix, '--heartbeat-ms', String(BENCH_HEARTBEAT_MS)]);
    started.push(daemon);
    // Every entry present before the load (after the daemon's start-up flush), and put back after each eviction.
    await store.plant(prefix, opts.workflows);
    const cpu0 = await cpuSeconds(daemon.pid);
    const flushesBefore = daemon.flushes().length;
    const polled = store.label === 'memcached';
    const run = await runLoad(opts, evictions, probe, (w) => store.refill(prefix, w), polled ? (w) => evictions.send(String(w)) : undefined);
    const cpu = ((await cpuSeconds(daemon.pid)) - cpu0) / run.seconds;
    const key = `evict_${store.label}_${opts.label}`;
    // A flush during the load (a store reconnect, a cluster topology change) deletes every entry at once,
    // refilled ones included: entries the measurement put back may then never be seen deleted again.
    const flushes = daemon.flushes().slice(flushesBefore);
    opts.log(`  ${store.label} @ ${opts.label} rows/s: ${run.latencies.length} evictions, ${run.missed} missed, ${Math.round(run.rows / run.seconds)} rows/s achieved, ${flushes.length} flushes during the load${flushes.length > 0 ? ` (${flushes.join(', ')})` : ''}`);
    return {
      ...report(key, run),
      [`${key}_flushes_during_load`]: flushes.length,
      ...(polled ? summarize(`${key}_watch_window`, windows, [50, 99]) : {}),
      [`${key}_daemon_cpu_percent`]: Math.round(cpu * 1000) / 10,
      [`${key}_daemon_rss_mb`]: await rssMb(daemon.pid),
    };
  } finally {
    for (const child of started.reverse()) await child.stop();
  }
}

/** Redis: a watcher sees each key deletion through keyspace events. */
export async function measureRedisUnderLoad(opts: SteadyLoadOptions): Promise<Record<string, number>> {
  const store = plainRedis(opts.redisUrl);
  try {
    return await measureSharedStoreUnderLoad(opts, store, (prefix) => ['redis-del', opts.redisUrl, prefix]);
  } finally {
    await store.close();
  }
}

/** A memcached pool (`store`, every entry on every node); a watcher polls the entries a statement changes. */
export async function measureMemcachedUnderLoad(opts: SteadyLoadOptions, store: PlainStore, nodes: Node[]): Promise<Record<string, number>> {
  return measureSharedStoreUnderLoad(opts, store, (prefix) => ['memcached-poll', nodes.map((n) => `${n.host}:${n.port}`).join(','), prefix]);
}

/** A Redis Cluster: a watcher subscribed to every master's keyspace events. */
export async function measureClusterUnderLoad(opts: SteadyLoadOptions, store: PlainStore, nodes: Node[]): Promise<Record<string, number>> {
  return measureSharedStoreUnderLoad(opts, store, (prefix) => ['cluster-del', nodes.map((n) => `${n.host}:${n.port}`).join(','), prefix]);
}

/** Memory: the daemon with an in-process node-cache, in a watcher process that reports each entry it evicts. */
export async function measureMemoryUnderLoad(opts: SteadyLoadOptions): Promise<Record<string, number>> {
  const started: Child[] = [];
  try {
    const evictions = await startWatcher(['memory-daemon', opts.url, String(opts.workflows)]);
    started.push(evictions);
    const probe = await startWatcher(['notify', opts.url, 'afc_bench_probe']);
    started.push(probe);
    // The watcher puts each evicted entry back itself, before it reports the eviction.
    const run = await runLoad(opts, evictions, probe, async () => undefined);
    opts.log(`  memory @ ${opts.label} rows/s: ${run.latencies.length} evictions, ${run.missed} missed, ${Math.round(run.rows / run.seconds)} rows/s achieved`);
    return report(`evict_memory_${opts.label}`, run);
  } finally {
    for (const child of started.reverse()) await child.stop();
  }
}
