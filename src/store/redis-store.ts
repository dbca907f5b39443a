// The shared store: Redis through ioredis. Commands fail fast while disconnected (no offline queue), so
// the evictor knows an eviction was not applied and turns it into a flush once Redis is back.
import { Redis } from 'ioredis';
import { cacheKey, cacheKeyPattern } from '../contract.js';
import type { CacheStore } from './store.js';

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
  const listeners: Array<() => void> = [];
  let everReady = false;
  let closed = false;
  client.on('error', (error: Error) => options.onError?.(error));
  client.on('ready', () => {
    if (everReady) for (const l of listeners) l();
    everReady = true;
  });

  async function unlinkAll(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
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
      await unlinkAll(ids.map((id) => cacheKey(options.keyPrefix, id)));
    },
    async flushAll() {
      const match = cacheKeyPattern(options.keyPrefix);
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', batchSize);
        await unlinkAll(keys);
        cursor = next;
      } while (cursor !== '0');
    },
    async ping() {
      await client.ping();
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.quit().catch(() => client.disconnect());
    },
  };
}
