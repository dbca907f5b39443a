// Writes an entry straight into a store's backing cache, past every guard: how tests plant a stale or
// wrong value, the way an unguarded reader (Sentry's own) would.
import { cacheKey } from '../../src/contract.js';
import type { ActionFilter } from '../../src/model.js';
import type { MemoryStore } from '../../src/store/memory-store.js';
import type { RedisStore } from '../../src/store/redis-store.js';

export async function plant(store: MemoryStore | RedisStore, keyPrefix: string, id: number, value: ActionFilter[], ttlSeconds = 60): Promise<void> {
  if (store.kind === 'memory') store.cache.set(cacheKey(keyPrefix, id), value, ttlSeconds);
  else await store.client.set(cacheKey(keyPrefix, id), JSON.stringify(value), 'EX', ttlSeconds);
}
