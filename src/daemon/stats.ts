// Counters of what the daemon did, owned by one daemon instance (no module state). The HTTP metrics
// endpoint and tests read them.
import type { TableCode } from '../contract.js';

export type FlushCause = 'connect' | 'reconnect' | 'truncate' | 'overflow' | 'trigger-error' | 'redis-recovery';

export class DaemonStats {
  notifications = 0;
  badPayloads = 0;
  reconnects = 0;
  storeErrors = 0;
  /** Workflow entries evicted, by the table whose change named them. */
  readonly evictions: Record<TableCode, number> = { wdcg: 0, dcg: 0, dc: 0 };
  readonly flushes: Record<FlushCause, number> = {
    connect: 0,
    reconnect: 0,
    truncate: 0,
    overflow: 0,
    'trigger-error': 0,
    'redis-recovery': 0,
  };
  lastNotificationAt: number | undefined;
  /** Milliseconds from the trigger running to the eviction being applied, most recent last (bounded). */
  readonly latenciesMs: number[] = [];

  recordLatency(ms: number): void {
    this.latenciesMs.push(ms);
    if (this.latenciesMs.length > 10_000) this.latenciesMs.splice(0, this.latenciesMs.length - 10_000);
  }
}
