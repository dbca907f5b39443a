// The benchmark's own view of each shared store, apart from afc's store code: it plants the entries a
// daemon is to evict, puts one back, deletes entries the way a plain client would (the baseline of the
// saturation and flush figures), and reads the server's own counters (entries held, commands served).
//   redis:          ioredis, MSET 10,000 keys per command; deletes: pipelined UNLINKs of 1,000 keys.
//   memcached:      one pipelined binary-protocol connection per node (the transport afc's store uses,
//                   without the store); every entry on every node, as the daemon deletes on every node;
//                   deletes: the same delete frames to every node at once. Counters: `stats`.
//   redis_cluster:  an ioredis Cluster with auto-pipelining; deletes: UNLINK of up to 1,000 keys of one
//                   hash slot per command, all in flight. Counters: summed over the masters.
// Commands served are INFO commandstats calls (memcached: cmd_get + cmd_set + cmd_touch + cmd_flush +
// delete_hits + delete_misses), leaving out what this module sends to read them (INFO, `stats`) and the
// cluster client's own topology polling (CLUSTER …), which runs whatever the daemon does.
import net from 'node:net';
import { Cluster, Redis } from 'ioredis';
import { cacheKey } from '../src/contract.js';
import { Connection, OP, STATUS, type Frame } from '../src/store/memcached-connection.js';
import { slotBatches } from '../src/store/redis-cluster-store.js';
import { putEntries } from './entries.js';
import type { Node } from './servers.js';

export type StoreLabel = 'redis' | 'memcached' | 'redis_cluster';

export interface PlainStore {
  readonly label: StoreLabel;
  /** What afc-daemon's --cache takes for this store. */
  readonly cacheUrl: string;
  /** Items one entry makes (memcached: one per node, since every entry is on every node). */
  readonly itemsPerEntry: number;
  /** Sets the entries of workflows 1..count under `prefix`. */
  plant(prefix: string, count: number): Promise<void>;
  /** Sets one entry (after the daemon evicted it). */
  refill(prefix: string, id: number): Promise<void>;
  /** Deletes the entries of workflows 1..count as a plain client would; resolves once all are applied. */
  plainDelete(prefix: string, count: number): Promise<void>;
  /** Items the server holds (memcached and cluster: summed over the nodes). */
  items(): Promise<number>;
  /** Commands the server has served so far (see the header). */
  commands(): Promise<number>;
  close(): Promise<void>;
}

const VALUE = '[]';
const ids = (count: number) => Array.from({ length: count }, (_, i) => i + 1);

function commandCalls(info: string, skip: RegExp): number {
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (!skip.test(m[1])) calls += Number(m[2]);
  return calls;
}

export function plainRedis(url: string): PlainStore {
  const redis = new Redis(url);
  return {
    label: 'redis',
    cacheUrl: url,
    itemsPerEntry: 1,
    plant: (prefix, count) => putEntries(redis, prefix, count),
    refill: async (prefix, id) => void (await redis.set(cacheKey(prefix, id), VALUE)),
    async plainDelete(prefix, count) {
      const pipeline = redis.pipeline();
      const all = ids(count);
      for (let i = 0; i < all.length; i += 1000) pipeline.unlink(...all.slice(i, i + 1000).map((id) => cacheKey(prefix, id)));
      const failed = ((await pipeline.exec()) ?? []).find(([error]) => error);
      if (failed) throw failed[0]!;
    },
    items: () => redis.dbsize(),
    commands: async () => commandCalls(await redis.info('commandstats'), /^(info)$/),
    close: async () => void redis.disconnect(),
  };
}

/** One `stats` over the text protocol: name → value for the numeric ones. */
export function memcachedStats(node: Node): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(node.port, node.host, () => socket.write('stats\r\n'));
    let text = '';
    socket.setTimeout(5000, () => socket.destroy(new Error(`memcached ${node.host}:${node.port}: stats timed out`)));
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (!text.endsWith('END\r\n')) return;
      socket.destroy();
      const stats: Record<string, number> = {};
      for (const m of text.matchAll(/^STAT (\S+) ([\d.]+)\r$/gm)) stats[m[1]] = Number(m[2]);
      resolve(stats);
    });
    socket.once('error', reject);
  });
}

export function plainMemcached(nodes: Node[]): PlainStore {
  const conns = nodes.map((n) => new Connection(n.host, n.port));
  const extras = Buffer.alloc(8); // flags 0, no expiry
  const value = Buffer.from(VALUE);
  const send = async (frames: Frame[], ok: (status: number) => boolean) => {
    const replies = await Promise.all(conns.map((c) => c.send(frames, 30_000)));
    const bad = replies.flat().find((r) => !ok(r.status));
    if (bad) throw new Error(`memcached replied status ${bad.status}`);
  };
  const setFrames = (prefix: string, list: number[]): Frame[] => list.map((id) => ({ opcode: OP.set, key: Buffer.from(cacheKey(prefix, id)), extras, value }));
  return {
    label: 'memcached',
    cacheUrl: `memcached://${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`,
    itemsPerEntry: nodes.length,
    async plant(prefix, count) {
      const all = ids(count);
      for (let i = 0; i < all.length; i += 20_000) await send(setFrames(prefix, all.slice(i, i + 20_000)), (s) => s === STATUS.ok);
    },
    refill: (prefix, id) => send(setFrames(prefix, [id]), (s) => s === STATUS.ok),
    plainDelete: (prefix, count) => send(ids(count).map((id) => ({ opcode: OP.delete, key: Buffer.from(cacheKey(prefix, id)) })), (s) => s === STATUS.ok || s === STATUS.notFound),
    async items() {
      const stats = await Promise.all(nodes.map(memcachedStats));
      return stats.reduce((sum, s) => sum + s.curr_items, 0);
    },
    async commands() {
      const stats = await Promise.all(nodes.map(memcachedStats));
      const names = ['cmd_get', 'cmd_set', 'cmd_touch', 'cmd_flush', 'delete_hits', 'delete_misses'];
      return stats.reduce((sum, s) => sum + names.reduce((a, n) => a + (s[n] ?? 0), 0), 0);
    },
    close: async () => conns.forEach((c) => c.destroy(new Error('closed'))),
  };
}

export function plainRedisCluster(nodes: Node[]): PlainStore {
  const cluster = new Cluster(nodes, { enableAutoPipelining: true });
  const masters = nodes.map((n) => new Redis(n.port, n.host));
  const sum = async (read: (r: Redis) => Promise<number>) => (await Promise.all(masters.map(read))).reduce((a, b) => a + b, 0);
  return {
    label: 'redis_cluster',
    cacheUrl: `redis+cluster://${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`,
    itemsPerEntry: 1,
    async plant(prefix, count) {
      const all = ids(count);
      for (let i = 0; i < all.length; i += 10_000) await Promise.all(all.slice(i, i + 10_000).map((id) => cluster.set(cacheKey(prefix, id), VALUE)));
    },
    refill: async (prefix, id) => void (await cluster.set(cacheKey(prefix, id), VALUE)),
    async plainDelete(prefix, count) {
      await Promise.all(slotBatches(ids(count).map((id) => cacheKey(prefix, id)), 1000).map((batch) => cluster.unlink(...batch)));
    },
    items: () => sum((r) => r.dbsize()),
    commands: () => sum(async (r) => commandCalls(await r.info('commandstats'), /^(info|cluster.*)$/)),
    async close() {
      cluster.disconnect();
      masters.forEach((m) => m.disconnect());
    },
  };
}
