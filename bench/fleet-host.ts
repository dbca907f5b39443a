// A child process of the fleet benchmark (bench/fleet.ts). It does one of two jobs, on commands from the
// parent over IPC (one at a time), and takes its timestamps itself, so that no reading waits on the
// parent's busy event loop. process.hrtime.bigint() reads CLOCK_MONOTONIC, which every process on the
// machine shares, so the parent compares them across processes.
//
// Daemons: many afc daemons as a library, so a fleet of hundreds fits on one machine. Each daemon has
// connections of its own and a cache of its own (a node-cache in a createMemoryStore):
//   host    startDaemon({ source: <redis url>, store }): reads the relays' stream over two Redis
//           connections of its own; no PostgreSQL session
//   direct  startDaemon({ db: <postgres url>, store }): a LISTEN session of its own on PostgreSQL
//   { cmd: 'start', role, count, … }  → { type: 'started' }     { cmd: 'stop' } → { type: 'stopped' }
// With fill > 0, each cache holds workflows 1..fill once its start-up flush is done; each entry it evicts
// is reported with its eviction time, read in the node-cache 'del' handler, and put back at once. Events
// go to the parent in one message per tick; flushes after start-up are reported too.
//
// Writers: { cmd: 'load', … } → { type: 'loaded', statements } runs a paced write load on PostgreSQL and
// returns, for each statement, the workflows it changed, when it was sent and when its reply came.
import NodeCache from 'node-cache';
import pg from 'pg';
import { cacheKey, KEY_STEM } from '../src/contract.js';
import { startDaemon, type Daemon } from '../src/daemon/start.js';
import { createLogger } from '../src/log.js';
import { createMemoryStore } from '../src/store/memory-store.js';

export interface LoadPlan {
  url: string;
  /** `<schema>.workflow_engine_datacondition`. */
  table: string;
  rowsPerSecond: number;
  seconds: number;
  writers: number;
  /** Workflows per block (at least 15: a 100-row range of conditions spans 15 workflows). */
  block: number;
  /** First workflow of each block, in the order statements take them. */
  blocks: number[];
}

export type FleetCommand =
  | { cmd: 'start'; role: 'host' | 'direct'; count: number; url: string; schema: string; keyPrefix: string; fill: number; firstIndex: number }
  | { cmd: 'stop' }
  | ({ cmd: 'load' } & LoadPlan);

export interface SentStatement {
  workflows: number[];
  rows: number;
  t0: bigint;
  /** When the writer got its reply (the commit done); null when it failed. */
  ack: bigint | null;
}

export type FleetMessage =
  | { type: 'ready' }
  | { type: 'started'; count: number }
  | { type: 'stopped' }
  | { type: 'loaded'; statements: SentStatement[]; seconds: number; errors: string[] }
  | { type: 'error'; message: string }
  /** Parallel arrays: daemon index, workflow id, eviction time (hrtime ns). */
  | { type: 'evicted'; hosts: number[]; ids: number[]; at: bigint[] }
  | { type: 'flushed'; host: number; cause: string };

/** bench/data.sql: 1 WHEN condition, then 2 groups × 3 action-filter conditions per workflow. */
const CONDITIONS_PER_WORKFLOW = 7;
const BULK_ROWS = 100;
const SINGLES_PER_BULK = 4;

const send = (message: FleetMessage) => process.send!(message);
// The daemons' warnings and errors (one JSON line each) go to stderr, which the parent shows.
const logger = await createLogger({ level: 'warn', name: 'fleet-host', destination: process.stderr });
const EMPTY: never[] = [];

let daemons: Daemon[] = [];
let pending = { hosts: [] as number[], ids: [] as number[], at: [] as bigint[] };
const record = (host: number, id: number, at: bigint) => {
  if (pending.hosts.length === 0) {
    setImmediate(() => {
      const batch = pending;
      pending = { hosts: [], ids: [], at: [] };
      send({ type: 'evicted', ...batch });
    });
  }
  pending.hosts.push(host);
  pending.ids.push(id);
  pending.at.push(at);
};

async function startOne(command: Extract<FleetCommand, { cmd: 'start' }>, index: number): Promise<Daemon> {
  const cache = new NodeCache({ useClones: false, checkperiod: 0 });
  const store = createMemoryStore({ keyPrefix: command.keyPrefix, cache });
  const where = command.role === 'host' ? { source: command.url } : { db: command.url };
  const daemon = await startDaemon({ ...where, schema: command.schema, keyPrefix: [command.keyPrefix], store, logger: logger.child({ daemon: index }) });
  try {
    // The start-up flush empties the cache: fill only after it, so every later eviction is the load's.
    const deadline = Date.now() + 30_000;
    while (daemon.stats.flushes.connect < 1) {
      if (Date.now() > deadline) throw new Error(`daemon ${index} did not flush at start within 30 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
    if (command.fill > 0) {
      for (let id = 1; id <= command.fill; id++) cache.set(cacheKey(command.keyPrefix, id), EMPTY);
      const stem = command.keyPrefix + KEY_STEM;
      cache.on('del', (key: string) => {
        const at = process.hrtime.bigint();
        record(index, Number(key.slice(stem.length)), at);
        cache.set(key, EMPTY);
      });
    }
    daemon.events.on('flushed', ({ cause }) => send({ type: 'flushed', host: index, cause }));
    return daemon;
  } catch (error) {
    await daemon.stop();
    throw error;
  }
}

async function startAll(command: Extract<FleetCommand, { cmd: 'start' }>): Promise<void> {
  if (daemons.length > 0) throw new Error('daemons already started');
  const indexes = Array.from({ length: command.count }, (_, i) => command.firstIndex + i);
  if (command.role === 'direct') {
    // One at a time: each start opens two short-lived sessions besides its LISTEN one (session settings,
    // signing key), and the server's connection slots are shared.
    for (const index of indexes) {
      try {
        daemons.push(await startOne(command, index));
      } catch (error) {
        await stopAll();
        throw error;
      }
    }
    return;
  }
  const settled = await Promise.allSettled(indexes.map((index) => startOne(command, index)));
  daemons = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stopAll();
    throw failed.reason;
  }
}

async function stopAll(): Promise<void> {
  const stopping = daemons;
  daemons = [];
  await Promise.allSettled(stopping.map((d) => d.stop()));
}

/**
 * Four single-row UPDATEs of an action-filter condition, then one 100-row UPDATE of a contiguous range of
 * conditions (15 workflows), repeated, paced to `rowsPerSecond` (as bench/steady-load.ts). Every
 * statement takes workflows no statement took before (blocks of the plan, in order), so each eviction
 * seen belongs to exactly one statement.
 */
async function runLoad(plan: LoadPlan): Promise<Extract<FleetMessage, { type: 'loaded' }>> {
  const clients = await Promise.all(
    Array.from({ length: plan.writers }, async () => {
      const c = new pg.Client({ connectionString: plan.url, application_name: 'afc-bench-writer' });
      await c.connect();
      return c;
    }),
  );
  const blocks = [...plan.blocks];
  let singles: number[] = [];
  const next = (n: number): { sql: string; params: unknown[]; workflows: number[]; rows: number } => {
    const take = () => {
      const block = blocks.shift();
      if (block === undefined) throw new Error('the load ran out of workflows: give it more blocks');
      return block;
    };
    if (n % (SINGLES_PER_BULK + 1) === SINGLES_PER_BULK) {
      const first = take();
      const from = (first - 1) * CONDITIONS_PER_WORKFLOW + 1;
      // Conditions from the first workflow's WHEN condition on: its 6 filters and those of the next 14.
      const workflows = Array.from({ length: Math.ceil(BULK_ROWS / CONDITIONS_PER_WORKFLOW) }, (_, i) => first + i);
      return { sql: `UPDATE ${plan.table} SET comparison = $1 WHERE id BETWEEN $2 AND $3`, params: [`{"n": ${n}}`, from, from + BULK_ROWS - 1], workflows, rows: BULK_ROWS };
    }
    if (singles.length === 0) {
      const first = take();
      singles = Array.from({ length: plan.block }, (_, i) => first + i);
    }
    const w = singles.shift()!;
    const id = (w - 1) * CONDITIONS_PER_WORKFLOW + 2 + Math.floor(Math.random() * (CONDITIONS_PER_WORKFLOW - 1));
    return { sql: `UPDATE ${plan.table} SET comparison = $1 WHERE id = $2`, params: [`{"n": ${n}}`, id], workflows: [w], rows: 1 };
  };
  const statements: SentStatement[] = [];
  const errors: string[] = [];
  const idle = [...clients];
  const inflight = new Set<Promise<void>>();
  const interval = (1000 * (SINGLES_PER_BULK + BULK_ROWS)) / (SINGLES_PER_BULK + 1) / plan.rowsPerSecond;
  const start = performance.now();
  const end = start + plan.seconds * 1000;
  const sendOne = async (client: pg.Client, n: number) => {
    const statement = next(n);
    const sent: SentStatement = { workflows: statement.workflows, rows: statement.rows, t0: process.hrtime.bigint(), ack: null };
    statements.push(sent);
    try {
      await client.query(statement.sql, statement.params);
      sent.ack = process.hrtime.bigint();
    } catch (error) {
      errors.push(error instanceof Error ? error.message : String(error));
    }
    idle.push(client);
  };
  try {
    for (let n = 0; performance.now() < end; ) {
      const due = Math.floor((performance.now() - start) / interval) + 1;
      while (n < due && idle.length > 0) {
        const p = sendOne(idle.pop()!, n++);
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      // Behind schedule with every writer busy: the achieved rate will say so.
      await (n < due ? new Promise((r) => setImmediate(r)) : new Promise((r) => setTimeout(r, Math.min(1, interval))));
    }
    const seconds = (performance.now() - start) / 1000;
    await Promise.all([...inflight]);
    return { type: 'loaded', statements, seconds, errors };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}

async function handle(command: FleetCommand): Promise<void> {
  try {
    if (command.cmd === 'start') {
      await startAll(command);
      send({ type: 'started', count: daemons.length });
    } else if (command.cmd === 'stop') {
      await stopAll();
      send({ type: 'stopped' });
    } else {
      send(await runLoad(command));
    }
  } catch (error) {
    const cause = error instanceof Error && error.cause !== undefined ? ` (${error.cause instanceof Error ? error.cause.message : String(error.cause)})` : '';
    send({ type: 'error', message: `${error instanceof Error ? error.message : String(error)}${cause}` });
  }
}

let queue = Promise.resolve();
process.on('message', (command: FleetCommand) => {
  queue = queue.then(() => handle(command));
});
const exit = () => void queue.then(stopAll).finally(() => process.exit(0));
process.once('SIGTERM', exit);
process.once('SIGINT', exit);
// The parent went away without stopping us: stop too.
process.once('disconnect', exit);
send({ type: 'ready' });
