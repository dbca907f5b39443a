// The domain: what a cache entry holds (a workflow's action filters) and what a source tells the evictor
// (an invalidation). Plain data, shared by the stores, the read-through cache, the pipeline and the codec.
import type { TableCode } from './contract.js';

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

/**
 * Why every entry had to go. The trigger's own reasons (truncate, overflow, trigger-error), the listener's
 * (connect, reconnect: notifications may have been missed), a store's (it lost evictions while away),
 * the evictor's (evict-overflow: too many pending ids), the verifier's (unverified: a signed payload
 * whose key could not be read), and a stream host's (relay-gap: no relay covered a stretch of time;
 * trimmed: entries it needed left the stream).
 */
export const FLUSH_CAUSES = [
  'connect',
  'reconnect',
  'truncate',
  'overflow',
  'trigger-error',
  'redis-recovery',
  'memcached-recovery',
  'evict-overflow',
  'unverified',
  'relay-gap',
  'trimmed',
] as const;
export type FlushCause = (typeof FLUSH_CAUSES)[number];

/** What a source delivers to the evictor: evict these workflows, or flush everything. */
export type Invalidation =
  | { op: 'evict'; src: TableCode; /** epoch ms when the trigger ran */ ts: number; ids: readonly number[]; eid?: string }
  | { op: 'flush'; cause: FlushCause; eid?: string };
// `eid`: what identifies the payload it came from (its signature), so copies of it (two relays both
// publishing it) can be recognised.
