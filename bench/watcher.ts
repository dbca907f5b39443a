// A child process of the benchmark that timestamps events where they happen, so the load generator's busy
// event loop never delays a reading. It prints one line per event, `<id> <hrtime ns>`, on stdout, and
// `ready` once it is set up. process.hrtime reads CLOCK_MONOTONIC, which every process on the machine
// shares, so the parent compares these times with its own.
//
//   watcher.js redis-del <redis url> <key prefix>   a key `<prefix>workflow:…:<id>` was deleted (keyspace events)
//   watcher.js notify <db url> <channel>            a NOTIFY arrived; prints its payload as the id
//   watcher.js memory-daemon <db url> <workflows>   the afc daemon, in-process cache holding 1..workflows;
//                                                   prints each entry it evicts and puts it back at once
import NodeCache from 'node-cache';
import pg from 'pg';
import { Redis } from 'ioredis';
import { cacheKey, KEY_STEM } from '../src/contract.js';
import { startDaemon } from '../src/daemon/start.js';
import { createMemoryStore } from '../src/store/memory-store.js';

const [mode, target, arg] = process.argv.slice(2);
const out: string[] = [];
// Lines are batched per tick: one write per burst instead of one per event.
const emit = (id: string) => {
  if (out.length === 0) setImmediate(() => process.stdout.write(out.splice(0).join('')));
  out.push(`${id} ${process.hrtime.bigint()}\n`);
};
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
  const daemon = await startDaemon({ db: target, store: createMemoryStore({ keyPrefix: '', cache }) });
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
