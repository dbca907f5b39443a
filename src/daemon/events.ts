// What the daemon does, as typed events: the pipeline emits them, and metrics (stats.ts), logs
// (log-events.ts), the demo and library users subscribe. Emitting never depends on who listens.
import { EventEmitter } from 'node:events';
import type { TableCode } from '../contract.js';
import type { FlushCause } from '../model.js';
import type { StoreKind } from '../store/store.js';

export interface DaemonEventMap {
  /** LISTEN (or, for a stream source, the stream read) is active; `reconnect` is false the first time. */
  listening: [{ reconnect: boolean }];
  disconnected: [{ reason: string }];
  /** A notification arrived, before decoding. */
  notification: [];
  'bad-payload': [{ reason: string; bytes: number; payload: string }];
  /** A batch applied, per table: ids whose entries are gone, and for each how long since its trigger ran. */
  evicted: [{ store: StoreKind; src: TableCode; ids: number[]; latenciesMs: number[] }];
  /** Delayed second evictions (--redelete-after) applied. */
  redeleted: [{ store: StoreKind; count: number }];
  flushed: [{ store: StoreKind; cause: FlushCause; ms: number }];
  /** A store operation failed; a flush is pending and retried after `retryInMs`. */
  'store-error': [{ store: StoreKind; error: unknown; retryInMs: number; pendingFlush: FlushCause }];
  /** The store said it is reachable again after an outage (a flush follows). */
  'store-recovered': [{ store: StoreKind }];
  stopped: [];
  /** A relay appended an entry to the stream (evict, flush or gap). */
  published: [{ op: string }];
  /** A relay's heartbeat was appended. */
  'relay-heartbeat': [{ relay: string }];
  /** A host read entries from the stream: how far behind the newest it was. */
  consumed: [{ count: number; lagMs: number; lagEntries: number }];
}

export class DaemonEvents extends EventEmitter<DaemonEventMap> {}
