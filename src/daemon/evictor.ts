// Applies evictions and flushes to the store, one operation at a time. Ids that arrive while an
// operation is in flight are merged into the next one, so a burst becomes a few large batches (of at most
// MAX_BATCH ids each).
// Design rule: an eviction that could not be applied is never forgotten: a failed operation turns into
// a pending flush, retried with backoff (and at once when the store says it is back) until it succeeds.
import type { TableCode } from '../contract.js';
import type { Logger } from '../log.js';
import type { CacheStore } from '../store/store.js';
import { backoffDelay, cancellableDelay } from './backoff.js';
import type { DaemonStats, FlushCause } from './stats.js';

interface Origin {
  src: TableCode;
  /** When the trigger ran (epoch ms), for the latency figure. */
  ts: number;
  /** This is the delayed second eviction (--redelete-after), not the first. */
  second?: boolean;
}

/** Ids per store operation. A burst of 200,000 ids in one operation held ~100 MB of keys and commands at once. */
const MAX_BATCH = 10_000;

export class Evictor {
  private pendingIds = new Map<number, Origin>();
  private pendingFlush: FlushCause | undefined;
  private running: Promise<void> | undefined;
  private failures = 0;
  private retryWait: { cancel: () => void } | undefined;
  private closed = false;
  private readonly redeleteTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly store: CacheStore,
    private readonly stats: DaemonStats,
    private readonly log: Logger,
    private readonly retryMaxMs: number,
    /** Evict each batch a second time this long after the first, for readers without the fill guard. */
    private readonly redeleteAfterMs?: number,
  ) {}

  evict(ids: readonly number[], origin: Origin): void {
    // A flush that has not started yet covers these ids already.
    if (this.pendingFlush !== undefined || this.closed) return;
    for (const id of ids) {
      // A pending first eviction keeps its origin: it still has its own second one to schedule.
      if (origin.second && this.pendingIds.has(id)) continue;
      this.pendingIds.set(id, origin);
    }
    this.kick();
  }

  flush(cause: FlushCause): void {
    if (this.closed) return;
    // The first cause wins the label: it is why the flush became necessary.
    this.pendingFlush ??= cause;
    this.pendingIds.clear();
    this.kick();
  }

  /** Wakes a store-failure retry now (the store reported it is reachable again). */
  retryNow(): void {
    this.retryWait?.cancel();
  }

  /** Resolves once nothing is pending or in flight. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops retrying; in-flight work finishes, pending work after a failure is dropped. */
  close(): void {
    this.closed = true;
    this.retryWait?.cancel();
    for (const timer of this.redeleteTimers) clearTimeout(timer);
    this.redeleteTimers.clear();
  }

  private kick(): void {
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
  }

  private async drain(): Promise<void> {
    while (this.pendingFlush !== undefined || this.pendingIds.size > 0) {
      // No ids are pending while a flush is (flush() clears them and evict() defers to it).
      const cause = this.pendingFlush;
      this.pendingFlush = undefined;
      try {
        if (cause !== undefined) {
          await this.store.flushAll();
          this.stats.flushes[cause]++;
          this.log.info({ msg: 'flushed', cause, store: this.store.kind });
        } else {
          const batch = this.takeBatch();
          await this.store.evict([...batch.keys()]);
          this.applied(batch);
        }
        this.failures = 0;
      } catch (error) {
        this.stats.storeErrors++;
        // What was lost is covered by a flush once the store answers again.
        this.pendingFlush ??= cause === undefined ? 'redis-recovery' : cause;
        this.pendingIds.clear();
        const delay = backoffDelay(this.failures++, 100, this.retryMaxMs);
        this.log.error({ msg: 'store unavailable', store: this.store.kind, err: error, retryInMs: delay, pendingFlush: this.pendingFlush });
        if (this.closed) return;
        const wait = cancellableDelay(delay);
        this.retryWait = wait;
        await wait.promise;
        this.retryWait = undefined;
        if (this.closed) return;
      }
    }
  }

  /** Up to MAX_BATCH pending ids, oldest first: a burst is applied in slices, so memory stays bounded. */
  private takeBatch(): Map<number, Origin> {
    if (this.pendingIds.size <= MAX_BATCH) {
      const all = this.pendingIds;
      this.pendingIds = new Map();
      return all;
    }
    const batch = new Map<number, Origin>();
    for (const [id, origin] of this.pendingIds) {
      if (batch.size === MAX_BATCH) break;
      batch.set(id, origin);
      this.pendingIds.delete(id);
    }
    return batch;
  }

  private applied(batch: Map<number, Origin>): void {
    const now = Date.now();
    const debug = this.log.isLevelEnabled('debug');
    const bySrc = new Map<TableCode, number[]>();
    const again: number[] = [];
    for (const [id, origin] of batch) {
      if (origin.second) {
        this.stats.redeletes++;
        continue;
      }
      if (this.redeleteAfterMs !== undefined) again.push(id);
      this.stats.evictions[origin.src]++;
      this.stats.recordLatency(now - origin.ts);
      if (!debug) continue;
      const ids = bySrc.get(origin.src);
      if (ids) ids.push(id);
      else bySrc.set(origin.src, [id]);
    }
    // Only gathered at debug level: per-batch log objects would cost the hot path even when nobody reads them.
    for (const [src, ids] of bySrc) this.log.debug({ msg: 'evicted', src, count: ids.length, ids: ids.slice(0, 50) });
    if (again.length > 0) {
      // A reader that missed, read the old row and writes it back after our eviction is undone here.
      const timer = setTimeout(() => {
        this.redeleteTimers.delete(timer);
        this.evict(again, { src: 'dc', ts: Date.now(), second: true });
      }, this.redeleteAfterMs);
      timer.unref();
      this.redeleteTimers.add(timer);
    }
  }
}
