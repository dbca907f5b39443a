// Where cache entries live, seen by its two audiences. Keys follow the contract (src/contract.ts cacheKey).
//
// - The evictor needs an EvictionStore: delete the entries of some workflows, or every entry, and say
//   whether the store answers. Evicting W deletes `<prefix>workflow:action_filters_by_workflow:<W>` under
//   every configured key prefix (--key-prefix may repeat).
// - The read-through cache needs a FillStore: read entries, take fill leases, fill under a lease.
//
// Stale sets (design.md §5) are prevented with leases that live *in the entry key itself*: a reader that
// misses writes a placeholder (`afc-lease:<token>`) with set-if-absent before its database read; an
// eviction or a flush deletes the key, placeholder included; the fill writes only if the key still holds
// that reader's placeholder (one Lua script on one key in Redis and Redis Cluster, compare-and-set in
// memcached, one synchronous check in process). No second key: nothing outside the entry pattern, no
// cross-slot script in a cluster, and an ACL on the entry pattern covers everything afc touches. A
// placeholder is never a value: getMany treats it as a miss. Fills use the first key prefix only.
import type { ActionFilter } from '../model.js';

export type { ActionFilter, Condition } from '../model.js';

export type StoreKind = 'memory' | 'redis' | 'redis-cluster' | 'memcached';

/** What a placeholder value starts with; entries are JSON arrays, so the two can never be confused. */
export const LEASE_PLACEHOLDER = 'afc-lease:';

export interface EvictionStore {
  readonly kind: StoreKind;
  /** Deletes the entries of these workflows under every key prefix. Rejects if it could not be applied. */
  evict(ids: readonly number[]): Promise<void>;
  /**
   * Deletes every entry by listing the store's own keys (SCAN in Redis, the key list of a node-cache).
   * Absent where keys cannot be listed (memcached, a cluster): those stores are flushed by enumerating
   * workflow ids from the database (src/daemon/flush.ts) and evicting them.
   */
  scanFlush?(): Promise<void>;
  /** Resolves when the store answers, rejects with the reason otherwise. */
  ping(): Promise<void>;
  /** Releases connections; idempotent. */
  close(): Promise<void>;
  /**
   * Calls `listener` each time the store is reachable again after an outage in which evictions may have
   * been lost (the evictor then flushes). Stores that cannot lose an eviction do not implement it.
   */
  onRecovered?(listener: () => void): void;
}

/** Leases taken before a database read: id → an opaque token (ids another reader holds are absent). */
export type Leases = Map<number, string>;

export interface FillStore {
  readonly kind: StoreKind;
  /** The cached values of these workflows; absent ids (and placeholders) are misses. */
  getMany(ids: readonly number[]): Promise<Map<number, ActionFilter[]>>;
  /** Takes fill leases for these ids, valid `ttlMs`; an id whose key is not empty is left out. */
  lease(ids: readonly number[], ttlMs: number): Promise<Leases>;
  /** Writes each value whose lease still holds; returns the ids refused (evicted or flushed since). */
  fill(leases: Leases, values: Map<number, ActionFilter[]>, ttlSeconds: number): Promise<number[]>;
}

/** A store usable both ways: every store afc ships is one. */
export interface CacheStore extends EvictionStore, FillStore {
  readonly kind: StoreKind;
}
