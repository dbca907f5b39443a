// The in-process store: a node-cache, the worker's own or one made here. node-cache 5 clones every value
// on get/set unless told otherwise, which is slow for action-filter lists, so ours turns that off.
import NodeCache from 'node-cache';
import { cacheKey, KEY_STEM } from '../contract.js';
import type { CacheStore } from './store.js';

export interface MemoryStore extends CacheStore {
  readonly kind: 'memory';
  readonly cache: NodeCache;
}

export function createMemoryStore(options: { keyPrefix: string; cache?: NodeCache }): MemoryStore {
  const cache = options.cache ?? new NodeCache({ useClones: false });
  const stem = options.keyPrefix + KEY_STEM;
  return {
    kind: 'memory',
    cache,
    async evict(ids) {
      cache.del(ids.map((id) => cacheKey(options.keyPrefix, id)));
    },
    async flushAll() {
      // Not cache.flushAll(): a worker's node-cache may hold entries that are none of afc's business.
      cache.del(cache.keys().filter((key) => key.startsWith(stem)));
    },
    async ping() {},
    async close() {},
  };
}
