// The in-process store: a node-cache, the worker's own or one made here. node-cache 5 clones every value
// on get/set unless told otherwise, which is slow for action-filter lists, so ours turns that off.
// Leases are a Map in this process rather than placeholders in the node-cache (the worker's own code
// reads that cache directly and must never meet one): evictions and fills run on the same event loop, so
// each check-and-write below is atomic all the same.
import { randomUUID } from 'node:crypto';
import NodeCache from 'node-cache';
import { cacheKey, KEY_STEM } from '../contract.js';
import type { ActionFilter } from '../model.js';
import { keyPrefixList, type KeyPrefixOption } from './key-prefixes.js';
import type { CacheStore, Leases } from './store.js';

export interface MemoryStore extends CacheStore {
  readonly kind: 'memory';
  readonly cache: NodeCache;
  scanFlush(): Promise<void>;
}

export function createMemoryStore(options: { keyPrefix: KeyPrefixOption; cache?: NodeCache }): MemoryStore {
  const cache = options.cache ?? new NodeCache({ useClones: false });
  const prefixes = keyPrefixList(options.keyPrefix);
  const stems = prefixes.map((p) => p + KEY_STEM);
  const key = (id: number) => cacheKey(prefixes[0], id);
  const leases = new Map<number, { token: string; expires: number }>();
  return {
    kind: 'memory',
    cache,
    async evict(ids) {
      for (const id of ids) leases.delete(id);
      for (const prefix of prefixes) cache.del(ids.map((id) => cacheKey(prefix, id)));
    },
    async scanFlush() {
      leases.clear();
      // Not cache.flushAll(): a worker's node-cache may hold entries that are none of afc's business.
      cache.del(cache.keys().filter((k) => stems.some((stem) => k.startsWith(stem))));
    },
    async ping() {},
    async close() {},
    async getMany(ids) {
      const found = new Map<number, ActionFilter[]>();
      for (const id of ids) {
        const value = cache.get<ActionFilter[]>(key(id));
        if (value !== undefined) found.set(id, value);
      }
      return found;
    },
    async lease(ids, ttlMs) {
      const now = Date.now();
      const taken: Leases = new Map();
      for (const id of ids) {
        const held = leases.get(id);
        if (held && held.expires > now) continue;
        const token = randomUUID();
        leases.set(id, { token, expires: now + ttlMs });
        taken.set(id, token);
      }
      return taken;
    },
    async fill(taken, values, ttlSeconds) {
      const refused: number[] = [];
      for (const [id, value] of values) {
        const held = leases.get(id);
        if (!held || held.token !== taken.get(id) || held.expires <= Date.now()) {
          refused.push(id);
          continue;
        }
        leases.delete(id);
        cache.set(key(id), value, ttlSeconds);
      }
      return refused;
    },
  };
}
