// The daemon's pipeline: a source delivers invalidations to its targets (the store's evictor, a stream
// publisher); everything it does is reported as events. What is served over HTTP (ops server, sidecar) is
// composed around it by start.ts.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { FlushCause, Invalidation } from '../model.js';
import type { EvictionStore } from '../store/store.js';
import type { DaemonEvents } from './events.js';
import { Evictor } from './evictor.js';
import { createFlusher, defaultFlushMode } from './flush.js';
import type { DaemonSettings } from './options.js';
import { startPgSource, type Source } from './pg-source.js';
import type { Publisher } from '../stream/publisher.js';
import { streamKey as streamKeyOf } from '../stream/stream-target.js';
import { startStallWatchdog, type StallWatchdog } from './stall-watchdog.js';

export interface DaemonCore {
  /** The source is delivering (LISTEN active, or the stream read, on a host). */
  readonly listening: boolean;
  /** Applies invalidations to the store; none on a relay without a store. */
  readonly evictor: Evictor | undefined;
  /** Whether payloads are signed and verified (signing.ts). */
  readonly signing: Source['signing'];
  /** Stops the source, lets pending work finish (bounded by shutdownTimeoutMs), stops retrying. */
  stop(): Promise<void>;
}

/**
 * The pipeline, from a source to its targets. Sources: the PostgreSQL listener, or on a host (--source)
 * the relays' Redis Stream. Targets: the evictor of the store (if any), and on a relay (--publish) the
 * stream publisher. Stream code is loaded only by the roles that use it.
 */
export async function startCore(
  settings: DaemonSettings,
  deps: { store: EvictionStore | undefined; events: DaemonEvents; log: Logger; signal?: AbortSignal },
): Promise<DaemonCore> {
  const { store, events, log, signal } = deps;
  const evictor = store ? startEvictor(settings, store, events) : undefined;
  // What both ends of the stream share.
  const stream = { streamKey: streamKeyOf(settings.keyPrefix[0]), heartbeatMs: settings.streamHeartbeatMs, retryMaxMs: settings.retryMaxMs, events, log };
  let publisher: Publisher | undefined;
  let watchdog: StallWatchdog | undefined;
  let source: Source;
  // A relay's LISTEN session has a name of its own, so its stall watchdog can find it (and status list it).
  const applicationName = settings.publish ? `afc-relay-${randomBytes(4).toString('hex')}` : 'afc-daemon';
  try {
    if (settings.publish) {
      const { startPublisher } = await import('../stream/publisher.js');
      publisher = await startPublisher({ ...stream, target: settings.publish, retention: settings.retention, listenerHeartbeatMs: settings.heartbeatMs });
    }
    const deliver = (invalidation: Invalidation) => {
      if (evictor) {
        if (invalidation.op === 'flush') evictor.flush(invalidation.cause);
        else evictor.evict(invalidation.ids, invalidation);
      }
      publisher?.publish(invalidation);
    };
    if (settings.source) {
      const { startStreamSource } = await import('../stream/stream-source.js');
      source = await startStreamSource({ ...stream, target: settings.source, startupTimeoutMs: settings.startupTimeoutMs, deliver, signal });
    } else {
      source = await startPgSource({ ...settings, log, events, deliver, signal, applicationName });
      if (settings.publish) {
        watchdog = startStallWatchdog({ db: settings.db, applicationName, stallMs: settings.stallMs, log });
        // A relay that has started is protected: its watchdog runs.
        await watchdog.ready;
      }
    }
  } catch (error) {
    evictor?.close();
    await publisher?.close();
    await watchdog?.stop();
    throw error;
  }
  return {
    get listening() {
      return source.connected;
    },
    evictor,
    get signing() {
      return source.signing;
    },
    async stop() {
      await watchdog?.stop();
      await source.close();
      events.emit('disconnected', { reason: 'stopping' });
      const drained = await Promise.race([
        Promise.all([evictor?.idle(), publisher?.idle()]).then(() => true),
        new Promise<boolean>((resolve) => setTimeout(resolve, settings.shutdownTimeoutMs, false).unref()),
      ]);
      if (!drained) log.warn({ msg: 'shutdown timeout', pendingEvictionsDropped: true });
      evictor?.close();
      await publisher?.close();
    },
  };
}

function startEvictor(settings: DaemonSettings, store: EvictionStore, events: DaemonEvents): Evictor {
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
  return evictor;
}
