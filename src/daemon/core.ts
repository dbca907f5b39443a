// The daemon's pipeline: a source (the PostgreSQL listener) delivers invalidations to the evictor, which
// applies them to the store; everything it does is reported as events. What is served over HTTP (ops
// server, sidecar) is composed around it by start.ts.
import type { Logger } from '../log.js';
import type { FlushCause, Invalidation } from '../model.js';
import type { EvictionStore } from '../store/store.js';
import type { DaemonEvents } from './events.js';
import { Evictor } from './evictor.js';
import { createFlusher, defaultFlushMode } from './flush.js';
import type { DaemonSettings } from './options.js';
import { startPgSource, type Source } from './pg-source.js';

export interface DaemonCore {
  /** The source is delivering (LISTEN active). */
  readonly listening: boolean;
  readonly evictor: Evictor;
  /** Stops the source, lets pending evictions finish (bounded by shutdownTimeoutMs), stops retrying. */
  stop(): Promise<void>;
}

export async function startCore(
  settings: DaemonSettings,
  deps: { store: EvictionStore; events: DaemonEvents; log: Logger; signal?: AbortSignal },
): Promise<DaemonCore> {
  const { store, events, log, signal } = deps;
  const flush = createFlusher(store, settings.flush ?? defaultFlushMode(store), { db: settings.db, schema: settings.schema });
  const evictor = new Evictor(store, {
    flush,
    events,
    retryMaxMs: settings.retryMaxMs,
    redeleteAfterMs: settings.redeleteAfterMs,
    flushFloorMs: settings.flushFloorMs,
  });
  const recovery: FlushCause = store.kind === 'memcached' ? 'memcached-recovery' : 'redis-recovery';
  store.onRecovered?.(() => {
    events.emit('store-recovered', { store: store.kind });
    evictor.flush(recovery);
    evictor.retryNow();
  });
  const deliver = (invalidation: Invalidation) => {
    if (invalidation.op === 'flush') evictor.flush(invalidation.cause);
    else evictor.evict(invalidation.ids, invalidation);
  };
  let source: Source;
  try {
    source = await startPgSource({ ...settings, log, events, deliver, signal });
  } catch (error) {
    evictor.close();
    throw error;
  }
  return {
    get listening() {
      return source.connected;
    },
    evictor,
    async stop() {
      await source.close();
      events.emit('disconnected', { reason: 'stopping' });
      const drained = await Promise.race([
        evictor.idle().then(() => true),
        new Promise<boolean>((resolve) => setTimeout(resolve, settings.shutdownTimeoutMs, false).unref()),
      ]);
      if (!drained) log.warn({ msg: 'shutdown timeout', pendingEvictionsDropped: true });
      evictor.close();
    },
  };
}
