// One interface over where cache entries live: the in-process node-cache or a shared Redis. The daemon
// and the library only ever talk to this. Keys follow the contract (src/contract.ts cacheKey).
//
// The read side guards against stale sets (design.md §5) with leases: before its database read, a reader
// takes a lease on each missing key; an eviction or a flush removes the lease along with the entry, and a
// fill whose lease is gone is refused. Lease keys live beside the entries under a name the flush pattern
// of the contract does not match (`<prefix>afc:lease:<id>`), so readers of the entries never see them.

/** One condition of an action filter, as the loader returns it (plain JSON). */
export interface Condition {
  id: number;
  type: string;
  comparison: unknown;
  condition_result: unknown;
}

/** One action filter of a workflow: a DataConditionGroup with its conditions. */
export interface ActionFilter {
  id: number;
  logic_type: string;
  conditions: Condition[];
}

/** Leases taken before a database read: id → lease token (ids whose lease another reader holds are absent). */
export type Leases = Map<number, string>;

export interface CacheStore {
  readonly kind: 'memory' | 'redis';
  /** Removes the entries (and any fill leases) of these workflows. Rejects if the store could not be reached. */
  evict(ids: readonly number[]): Promise<void>;
  /** Removes every afc entry (`<prefix>workflow:action_filters_by_workflow:*`) and every lease; nothing else. */
  flushAll(): Promise<void>;
  /** Resolves when the store answers, rejects with the reason otherwise. */
  ping(): Promise<void>;
  /** Releases connections; idempotent. */
  close(): Promise<void>;
  /** The cached values of these workflows; absent ids are misses. */
  getMany(ids: readonly number[]): Promise<Map<number, ActionFilter[]>>;
  /** Takes fill leases for these ids, valid `ttlMs`; an id already leased by another reader is left out. */
  lease(ids: readonly number[], ttlMs: number): Promise<Leases>;
  /** Writes each value whose lease is still held; returns the ids refused (evicted or flushed since). */
  fill(leases: Leases, values: Map<number, ActionFilter[]>, ttlSeconds: number): Promise<number[]>;
  /** Writes a value without any guard: for tests and for planting audit mismatches only. */
  setUnguarded(id: number, value: ActionFilter[], ttlSeconds: number): Promise<void>;
}
