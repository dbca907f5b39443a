// The shared store: Redis through ioredis. Commands fail fast while disconnected (no offline queue), so
// the evictor knows an eviction was not applied and turns it into a flush once Redis is back.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { cacheKey, cacheKeyPattern, leaseKey, leaseKeyPattern } from '../contract.js';
import type { ActionFilter, CacheStore, Leases } from './store.js';

// KEYS: entry1, lease1, entry2, lease2, …  ARGV: ttl seconds, token1, value1, token2, value2, …
// Writes each entry whose lease still holds the reader's token; returns the 1-based pairs refused.
// One script, so no eviction can slip between the check and the write.
const FILL_SCRIPT = `
local refused = {}
for i = 1, #KEYS, 2 do
  if redis.call('GET', KEYS[i + 1]) == ARGV[i + 1] then
    redis.call('SET', KEYS[i], ARGV[i + 2], 'EX', ARGV[1])
    redis.call('DEL', KEYS[i + 1])
  else
    table.insert(refused, (i + 1) / 2)
  end
end
return refused`;

export interface RedisStore extends CacheStore {
  readonly kind: 'redis';
  readonly client: Redis;
  /** Calls `listener` each time the connection is ready again after having been lost. */
  onReconnect(listener: () => void): void;
}

export interface RedisStoreOptions {
  url: string;
  keyPrefix: string;
  /** Keys per UNLINK (and SCAN COUNT hint). */
  batchSize?: number;
  retryMaxMs?: number;
  onError?: (error: Error) => void;
}

export function createRedisStore(options: RedisStoreOptions): RedisStore {
  const batchSize = options.batchSize ?? 1000;
  const retryMaxMs = options.retryMaxMs ?? 5000;
  const client = new Redis(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    commandTimeout: 10_000,
    // Reconnect forever: a daemon without its store is useless, and giving up would need a restart.
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 10), retryMaxMs),
  });
  const leaseOf = (id: number) => leaseKey(options.keyPrefix, id);
  const listeners: Array<() => void> = [];
  let everReady = false;
  let closed = false;
  client.on('error', (error: Error) => options.onError?.(error));
  client.on('ready', () => {
    if (everReady) for (const l of listeners) l();
    everReady = true;
  });

  // Without an offline queue a command fails while disconnected, which is what the evictor wants; but a
  // brand-new client is not connected yet either, so the first use waits for the first connect (bounded).
  const firstReady = new Promise<void>((resolve) => {
    client.once('ready', resolve);
    setTimeout(resolve, 5000).unref();
  });
  const usable = async () => {
    if (!everReady) await firstReady;
  };

  async function unlinkAll(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await usable();
    // The common case (one statement's few workflows) is one command; a pipeline only pays off for more.
    if (keys.length <= batchSize) {
      await client.unlink(...keys);
      return;
    }
    const pipeline = client.pipeline();
    for (let i = 0; i < keys.length; i += batchSize) pipeline.unlink(...keys.slice(i, i + batchSize));
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([error]) => error);
    if (failed) throw new Error('redis UNLINK failed', { cause: failed[0] });
  }

  return {
    kind: 'redis',
    client,
    onReconnect: (listener) => listeners.push(listener),
    async evict(ids) {
      await unlinkAll(ids.flatMap((id) => [cacheKey(options.keyPrefix, id), leaseOf(id)]));
    },
    async flushAll() {
      await usable();
      for (const match of [cacheKeyPattern(options.keyPrefix), leaseKeyPattern(options.keyPrefix)]) {
        let cursor = '0';
        do {
          const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', batchSize);
          await unlinkAll(keys);
          cursor = next;
        } while (cursor !== '0');
      }
    },
    async getMany(ids) {
      await usable();
      const found = new Map<number, ActionFilter[]>();
      if (ids.length === 0) return found;
      const values = await client.mget(...ids.map((id) => cacheKey(options.keyPrefix, id)));
      values.forEach((raw, i) => {
        if (raw === null) return;
        try {
          found.set(ids[i], JSON.parse(raw) as ActionFilter[]);
        } catch {
          // Not ours (another writer's format): a miss, and the guarded fill will replace it.
        }
      });
      return found;
    },
    async lease(ids, ttlMs) {
      await usable();
      const taken: Leases = new Map();
      if (ids.length === 0) return taken;
      const tokens = ids.map(() => randomUUID());
      const pipeline = client.pipeline();
      ids.forEach((id, i) => pipeline.set(leaseOf(id), tokens[i], 'PX', ttlMs, 'NX'));
      const results = (await pipeline.exec()) ?? [];
      results.forEach(([error, reply], i) => {
        if (error) throw new Error('redis lease failed', { cause: error });
        if (reply === 'OK') taken.set(ids[i], tokens[i]);
      });
      return taken;
    },
    async fill(leases, values, ttlSeconds) {
      await usable();
      const ids = [...values.keys()].filter((id) => leases.has(id));
      const refused = [...values.keys()].filter((id) => !leases.has(id));
      if (ids.length === 0) return refused;
      const keys = ids.flatMap((id) => [cacheKey(options.keyPrefix, id), leaseOf(id)]);
      const args = ids.flatMap((id) => [leases.get(id)!, JSON.stringify(values.get(id))]);
      const rejected = (await client.eval(FILL_SCRIPT, keys.length, ...keys, String(ttlSeconds), ...args)) as number[];
      return [...refused, ...rejected.map((k) => ids[k - 1])];
    },
    async setUnguarded(id, value, ttlSeconds) {
      await usable();
      await client.set(cacheKey(options.keyPrefix, id), JSON.stringify(value), 'EX', ttlSeconds);
    },
    async ping() {
      await usable();
      await client.ping();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (client.status === 'end') return;
      if (client.status !== 'ready') {
        // Down or still connecting: QUIT cannot be sent (no offline queue), and disconnect() is what cancels
        // a pending reconnect. While reconnecting no 'end' event follows, so there is nothing to wait for.
        client.disconnect();
        return;
      }
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      await client.quit().catch(() => client.disconnect());
      // QUIT resolves on its reply; the socket closes just after. Resolve once it has (bounded).
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    },
  };
}
