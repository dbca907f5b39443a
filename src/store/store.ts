// One interface over where cache entries live: the in-process node-cache or a shared Redis. The daemon
// and the library only ever talk to this. Keys follow the contract (src/contract.ts cacheKey).

export interface CacheStore {
  readonly kind: 'memory' | 'redis';
  /** Removes the entries of these workflows. Rejects if the store could not be reached. */
  evict(ids: readonly number[]): Promise<void>;
  /** Removes every afc entry (`<prefix>workflow:action_filters_by_workflow:*`) and nothing else. */
  flushAll(): Promise<void>;
  /** Resolves when the store answers, rejects with the reason otherwise. */
  ping(): Promise<void>;
  /** Releases connections; idempotent. */
  close(): Promise<void>;
}
