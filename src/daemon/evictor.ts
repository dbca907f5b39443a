// Applies invalidations to one store, one operation at a time. Ids that arrive while an operation is in
// flight are merged into the next one, so a burst becomes a few large batches (of at most MAX_BATCH ids).
// Design rule: an eviction that could not be applied is never forgotten: a failed operation turns into
// a pending flush, retried with backoff (and at once when the store says it is back) until it succeeds.
// Work stays bounded whatever arrives: past `maxPendingIds` waiting ids, they are dropped for one flush.
import type { TableCode } from '../contract.js';
import type { FlushCause } from '../model.js';
import type { EvictionStore } from '../store/store.js';
import { backoffDelay, cancellableDelay } from './backoff.js';
import type { DaemonEvents } from './events.js';

export interface Origin {
  src: TableCode;
  /** When the trigger ran (epoch ms), for the latency figure. */
  ts: number;
  /** This is the delayed second eviction (--redelete-after), not the first. */
  second?: boolean;
}

export interface EvictorOptions {
  /** Removes every entry of the store (by scanning it, or by enumerating workflows): see flush.ts. */
  flush: () => Promise<void>;
  events: DaemonEvents;
  retryMaxMs: number;
  /** Evict each batch a second time this long after the first, for readers without the fill guard. */
  redeleteAfterMs?: number;
  /** Ids waiting beyond this turn into one flush (default 100,000). */
  maxPendingIds?: number;
  /** Ids per store operation (default 10,000). */
  maxBatch?: number;
  /** Least time from the end of one flush to the start of the next (default 0): a storm of requests costs one flush per floor. */
  flushFloorMs?: number;
  /** Backoff of the first retry (default 100 ms); doubles up to retryMaxMs. */
  retryBaseMs?: number;
  now?: () => number;
}

export class Evictor {
  private pendingIds = new Map<number, Origin>();
  private pendingFlush: FlushCause | undefined;
  private running: Promise<void> | undefined;
  private failures = 0;
  private retryWait: { cancel: () => void } | undefined;
  private closed = false;
  private readonly redeleteTimers = new Set<NodeJS.Timeout>();
  private readonly maxPending: number;
  private readonly maxBatch: number;
  private readonly now: () => number;
  private lastFlushEnded = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly store: EvictionStore,
    private readonly options: EvictorOptions,
  ) {
    this.maxPending = options.maxPendingIds ?? 100_000;
    this.maxBatch = options.maxBatch ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  evict(ids: readonly number[], origin: Origin): void {
    // A flush that has not started yet covers these ids already.
    if (this.pendingFlush !== undefined || this.closed) return;
    for (const id of ids) {
      // A pending first eviction keeps its origin: it still has its own second one to schedule.
      if (origin.second && this.pendingIds.has(id)) continue;
      this.pendingIds.set(id, origin);
    }
    if (this.pendingIds.size > this.maxPending) this.flush('evict-overflow');
    else this.kick();
  }

  flush(cause: FlushCause): void {
    if (this.closed) return;
    // The first cause wins the label: it is why the flush became necessary. Requests that arrive while
    // one is pending are that same flush; one arriving while a flush runs makes exactly one more.
    this.pendingFlush ??= cause;
    this.pendingIds.clear();
    this.kick();
  }

  /** Wakes a store-failure retry now (the store reported it is reachable again). */
  retryNow(): void {
    this.retryWait?.cancel();
  }

  /** Ids waiting for the next store operation. */
  get pending(): number {
    return this.pendingIds.size;
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
      if (this.pendingFlush !== undefined && !(await this.flushFloor())) return;
      // No ids are pending while a flush is (flush() clears them and evict() defers to it).
      const cause = this.pendingFlush;
      this.pendingFlush = undefined;
      try {
        if (cause !== undefined) {
          const started = this.now();
          try {
            await this.options.flush();
          } finally {
            this.lastFlushEnded = this.now();
          }
          this.options.events.emit('flushed', { store: this.store.kind, cause, ms: this.now() - started });
        } else {
          const batch = this.takeBatch();
          await this.store.evict([...batch.keys()]);
          this.applied(batch);
        }
        this.failures = 0;
      } catch (error) {
        // What was lost is covered by a flush once the store answers again.
        this.pendingFlush ??= cause ?? (this.store.kind === 'memcached' ? 'memcached-recovery' : 'redis-recovery');
        this.pendingIds.clear();
        const delay = backoffDelay(this.failures++, this.options.retryBaseMs ?? 100, this.options.retryMaxMs);
        this.options.events.emit('store-error', { store: this.store.kind, error, retryInMs: delay, pendingFlush: this.pendingFlush });
        if (this.closed) return;
        const wait = cancellableDelay(delay);
        this.retryWait = wait;
        await wait.promise;
        this.retryWait = undefined;
        if (this.closed) return;
      }
    }
  }

  /**
   * Waits out the floor between flushes, with the flush still pending: requests arriving meanwhile join
   * it, and evictions are covered by it. Resolves false if the evictor was closed meanwhile.
   */
  private async flushFloor(): Promise<boolean> {
    const wait = this.lastFlushEnded + (this.options.flushFloorMs ?? 0) - this.now();
    if (wait <= 0) return true;
    const delay = cancellableDelay(wait);
    this.retryWait = delay;
    await delay.promise;
    this.retryWait = undefined;
    return !this.closed;
  }

  /** Up to maxBatch pending ids, oldest first: a burst is applied in slices, so memory stays bounded. */
  private takeBatch(): Map<number, Origin> {
    if (this.pendingIds.size <= this.maxBatch) {
      const all = this.pendingIds;
      this.pendingIds = new Map();
      return all;
    }
    const batch = new Map<number, Origin>();
    for (const [id, origin] of this.pendingIds) {
      if (batch.size === this.maxBatch) break;
      batch.set(id, origin);
      this.pendingIds.delete(id);
    }
    return batch;
  }

  private applied(batch: Map<number, Origin>): void {
    const now = this.now();
    const bySrc = new Map<TableCode, { ids: number[]; latenciesMs: number[] }>();
    const again: number[] = [];
    let redeleted = 0;
    for (const [id, origin] of batch) {
      if (origin.second) {
        redeleted++;
        continue;
      }
      if (this.options.redeleteAfterMs !== undefined) again.push(id);
      let group = bySrc.get(origin.src);
      if (!group) bySrc.set(origin.src, (group = { ids: [], latenciesMs: [] }));
      group.ids.push(id);
      group.latenciesMs.push(now - origin.ts);
    }
    const { events } = this.options;
    for (const [src, group] of bySrc) events.emit('evicted', { store: this.store.kind, src, ...group });
    if (redeleted > 0) events.emit('redeleted', { store: this.store.kind, count: redeleted });
    if (again.length > 0) {
      // A reader that missed, read the old row and writes it back after our eviction is undone here.
      const timer = setTimeout(() => {
        this.redeleteTimers.delete(timer);
        this.evict(again, { src: 'dc', ts: this.now(), second: true });
      }, this.options.redeleteAfterMs);
      timer.unref();
      this.redeleteTimers.add(timer);
    }
  }
}
