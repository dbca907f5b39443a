// Wires the listener to the evictor: decode each payload, evict what it names, flush after every
// (re)connect and when the store comes back. Resources are released in reverse order of setup.
import { decode } from '../codec.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { createMemoryStore } from '../store/memory-store.js';
import { createRedisStore } from '../store/redis-store.js';
import type { CacheStore } from '../store/store.js';
import { resolveDaemonConfig, type DaemonConfig, type DaemonOptions } from './config.js';
import { Evictor } from './evictor.js';
import { Listener } from './listener.js';
import { DaemonStats, type FlushCause } from './stats.js';

export interface Daemon {
  readonly config: DaemonConfig;
  readonly store: CacheStore;
  readonly stats: DaemonStats;
  /** LISTEN is active right now. */
  readonly listening: boolean;
  /** Stops listening, lets in-flight evictions finish (bounded), closes what it opened. Idempotent. */
  stop(): Promise<void>;
}

const FLUSH_CAUSE_OF_TRIGGER: Record<string, FlushCause> = { truncate: 'truncate', overflow: 'overflow', error: 'trigger-error' };

/** Library entry point: `await startDaemon({ db, store })` runs the listener in this process. */
export async function startDaemon(options: DaemonOptions = {}): Promise<Daemon> {
  return runDaemon(resolveDaemonConfig(options), { store: options.store, logger: options.logger });
}

export async function runDaemon(config: DaemonConfig, deps: { store?: CacheStore; logger?: Logger } = {}): Promise<Daemon> {
  const log = deps.logger ?? silentLogger();
  const stats = new DaemonStats();
  const ownsStore = deps.store === undefined;
  const store = deps.store ?? openStore(config, log);
  const evictor = new Evictor(store, stats, log, config.retryMaxMs);
  const onStoreBack = () => {
    log.info({ msg: 'store reconnected', store: store.kind });
    evictor.flush('redis-recovery');
    evictor.retryNow();
  };
  if ('onReconnect' in store && typeof store.onReconnect === 'function') store.onReconnect(onStoreBack);

  let listener: Listener;
  try {
    listener = await Listener.start(
      { db: config.db, channel: config.channel, heartbeatMs: config.heartbeatMs, retryMaxMs: config.retryMaxMs, startupTimeoutMs: config.startupTimeoutMs, log },
      {
        onNotification: (payload) => {
          stats.notifications++;
          stats.lastNotificationAt = Date.now();
          const decoded = decode(payload);
          if (!decoded.ok) {
            stats.badPayloads++;
            log.warn({ msg: 'bad payload', reason: decoded.error, bytes: Buffer.byteLength(payload), payload: payload.slice(0, 200) });
            return;
          }
          const m = decoded.message;
          if (m.op === 'flush') evictor.flush(FLUSH_CAUSE_OF_TRIGGER[m.reason]);
          else evictor.evict(m.ids, m);
        },
        onListening: ({ reconnect }) => {
          if (reconnect) stats.reconnects++;
          evictor.flush(reconnect ? 'reconnect' : 'connect');
        },
        onDisconnected: () => undefined,
      },
    );
  } catch (error) {
    evictor.close();
    if (ownsStore) await store.close().catch(() => undefined);
    throw error;
  }

  let stopping: Promise<void> | undefined;
  return {
    config,
    store,
    stats,
    get listening() {
      return listener.connected;
    },
    stop() {
      stopping ??= (async () => {
        await listener.close();
        const drained = await Promise.race([
          evictor.idle().then(() => true),
          new Promise<boolean>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs, false).unref()),
        ]);
        if (!drained) log.warn({ msg: 'shutdown timeout', pendingEvictionsDropped: true });
        evictor.close();
        if (ownsStore) await store.close();
        log.info({ msg: 'stopped' });
      })();
      return stopping;
    },
  };
}

function openStore(config: DaemonConfig, log: Logger): CacheStore {
  if (config.cache.kind === 'memory') return createMemoryStore({ keyPrefix: config.keyPrefix });
  return createRedisStore({
    url: config.cache.url,
    keyPrefix: config.keyPrefix,
    onError: (err) => log.warn({ msg: 'redis error', err: err.message }),
  });
}
