// A child process of the benchmark that timestamps events where they happen, so the load generator's busy
// event loop never delays a reading. It prints one line per event, `<id> <hrtime ns>`, on stdout, and
// `ready` once it is set up. process.hrtime reads CLOCK_MONOTONIC, which every process on the machine
// shares, so the parent compares these times with its own.
//
//   watcher.js redis-del <redis url> <key prefix>   a key `<prefix>workflow:…:<id>` was deleted (keyspace events)
//   watcher.js notify <db url> <channel>            a NOTIFY arrived; prints its payload as the id
//   watcher.js memory-daemon <db url> <workflows>   the afc daemon, in-process cache holding 1..workflows;
//                                                   prints each entry it evicts and puts it back at once
//   watcher.js cluster-del <h:p,h:p,…> <key prefix>   like redis-del, subscribed to every cluster master
//                                                   (keyspace events are local to the node holding the key)
//   watcher.js memcached-poll <h:p,h:p,…> <key prefix>
//       memcached has no keyspace events (and 1.6.18's `watch` has no deletion log: `watch fetchers` sees a
//       delete as an item_get, but its logger thread sleeps up to ~100 ms between reads when idle, so its
//       lines came 40-170 ms late). So: the parent writes the id of each entry it expects to go on stdin,
//       and while any is outstanding this polls them, pipelined binary GETs to every node, back to back.
//       An entry is gone once no node has it; its time is the reply that showed it, an upper bound.
//       The deletion happened after the previous poll was sent: that window is printed as `# window_us`.
import NodeCache from 'node-cache';
import pg from 'pg';
import { Redis } from 'ioredis';
import { createInterface } from 'node:readline';
import { cacheKey, KEY_STEM } from '../src/contract.js';
import { startDaemon } from '../src/daemon/start.js';
import { Connection, OP, STATUS } from '../src/store/memcached-connection.js';
import { createMemoryStore } from '../src/store/memory-store.js';

const [mode, target, arg] = process.argv.slice(2);
const out: string[] = [];
// Lines are batched per tick: one write per burst instead of one per event.
const emit = (id: string, at = process.hrtime.bigint()) => {
  if (out.length === 0) setImmediate(() => process.stdout.write(out.splice(0).join('')));
  out.push(`${id} ${at}\n`);
};
const hostPorts = (list: string) =>
  list.split(',').map((hp) => {
    const colon = hp.lastIndexOf(':');
    return { host: hp.slice(0, colon), port: Number(hp.slice(colon + 1)) };
  });
const stopOn = (close: () => Promise<unknown>) => {
  const stop = () => void close().finally(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
};

if (mode === 'redis-del') {
  const sub = new Redis(target);
  const stem = `${arg}${KEY_STEM}`;
  sub.on('message', (_channel: string, key: string) => {
    if (key.startsWith(stem)) emit(key.slice(stem.length));
  });
  await sub.subscribe('__keyevent@0__:del');
  stopOn(() => sub.quit());
} else if (mode === 'cluster-del') {
  const stem = `${arg}${KEY_STEM}`;
  const subs = hostPorts(target).map(({ host, port }) => new Redis(port, host));
  for (const sub of subs) {
    sub.on('message', (_channel: string, key: string) => {
      if (key.startsWith(stem)) emit(key.slice(stem.length));
    });
    await sub.subscribe('__keyevent@0__:del');
  }
  stopOn(() => Promise.all(subs.map((sub) => sub.quit())));
} else if (mode === 'memcached-poll') {
  const stem = `${arg}${KEY_STEM}`;
  const conns = hostPorts(target).map(({ host, port }) => new Connection(host, port));
  /** id → when the parent asked (or when the previous poll that still found it was sent). */
  const watched = new Map<string, bigint>();
  let polling = false;
  const poll = async () => {
    polling = true;
    while (watched.size > 0) {
      const ids = [...watched.keys()];
      const frames = ids.map((id) => ({ opcode: OP.get, key: Buffer.from(stem + id) }));
      const sentAt = process.hrtime.bigint();
      const replies = await Promise.all(conns.map((c) => c.send(frames, 5000)));
      const at = process.hrtime.bigint();
      ids.forEach((id, i) => {
        if (replies.every((r) => r[i].status === STATUS.notFound)) {
          emit(id, at);
          out.push(`# window_us ${Number(at - watched.get(id)!) / 1000}\n`);
          watched.delete(id);
        } else {
          watched.set(id, sentAt);
        }
      });
    }
    polling = false;
  };
  createInterface({ input: process.stdin }).on('line', (id) => {
    watched.set(id, process.hrtime.bigint());
    if (!polling) void poll();
  });
  stopOn(async () => conns.forEach((c) => c.destroy(new Error('watcher stopped'))));
} else if (mode === 'notify') {
  const client = new pg.Client({ connectionString: target });
  await client.connect();
  client.on('notification', (n) => emit(n.payload ?? ''));
  await client.query(`LISTEN ${arg}`);
  stopOn(() => client.end());
} else if (mode === 'memory-daemon') {
  const workflows = Number(arg);
  const cache = new NodeCache({ useClones: false });
  const fill = (id: number) => cache.set(cacheKey('', id), []);
  // The same long heartbeat as the bench's daemon processes (steady-load.ts says why).
  const daemon = await startDaemon({ db: target, schema: 'afc', heartbeatMs: 10_000, store: createMemoryStore({ keyPrefix: '', cache }) });
  // The daemon flushes once LISTEN is active: fill after that, so every later eviction is seen.
  for (let id = 1; id <= workflows; id++) fill(id);
  cache.on('del', (key: string) => {
    const id = key.slice(KEY_STEM.length);
    emit(id);
    fill(Number(id));
  });
  stopOn(() => daemon.stop());
} else {
  process.stderr.write(`watcher: unknown mode '${mode}'\n`);
  process.exit(2);
}
process.stdout.write('ready\n');
