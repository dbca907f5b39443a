// Wires the listener to the evictor: decode each payload, evict what it names, flush after every
// (re)connect and when the store comes back. Resources are released in reverse order of setup.
import pg from 'pg';
import { createActionFilterCache, type ActionFilterCache } from '../cache/action-filter-cache.js';
import { registerCacheMetrics } from '../cache/cache-metrics.js';
import { decode } from '../codec.js';
import { clientConfig } from '../config/database.js';
import { startSidecar, type Sidecar } from '../http/sidecar.js';
import { AfcError } from '../errors.js';
import { startOpsServer, type OpsServer, type Readiness } from '../http/ops-server.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
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
  /** Port of the /metrics, /healthz, /readyz server, when config.http is set. */
  readonly httpPort: number | undefined;
  /** Port of the sidecar API and its read-through cache, when config.serve is set. */
  readonly servePort: number | undefined;
  readonly cache: ActionFilterCache | undefined;
  /** LISTEN active and store answering. */
  readiness(): Promise<Readiness>;
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
  const ownsStore = deps.store === undefined;
  const store = deps.store ?? (await openStore(config, log));
  const stats = new DaemonStats(store.kind);
  const evictor = new Evictor(store, stats, log, config.retryMaxMs, config.redeleteAfterMs);
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
          stats.listening = true;
          if (reconnect) stats.reconnects++;
          evictor.flush(reconnect ? 'reconnect' : 'connect');
        },
        onDisconnected: () => {
          stats.listening = false;
        },
      },
    );
  } catch (error) {
    evictor.close();
    if (ownsStore) await store.close().catch(() => undefined);
    throw error;
  }

  const readiness = async (): Promise<Readiness> => {
    if (!listener.connected) return { ready: false, reason: 'not listening on PostgreSQL (reconnecting)' };
    try {
      await withTimeout(store.ping(), 1000, 'no answer within 1000 ms');
      return { ready: true };
    } catch (error) {
      return { ready: false, reason: `${store.kind} store unreachable: ${error instanceof Error ? error.message : String(error)}` };
    }
  };
  let ops: OpsServer | undefined;
  let reads: ReadPath | undefined;
  try {
    if (config.http) {
      ops = await startOpsServer({ ...config.http, registry: stats.registry, readiness }).catch((cause: unknown) => {
        throw new AfcError(`cannot serve --http on ${config.http!.host}:${config.http!.port}`, { cause });
      });
      log.info({ msg: 'http listening', host: config.http.host, port: ops.port });
    }
    if (config.serve) {
      reads = await startReadPath(config, store, stats, log);
      log.info({ msg: 'sidecar listening', host: config.serve.host, port: reads.sidecar.port });
    }
  } catch (error) {
    await ops?.close();
    await listener.close();
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
    httpPort: ops?.port,
    servePort: reads?.sidecar.port,
    cache: reads?.cache,
    readiness,
    stop() {
      stopping ??= (async () => {
        await reads?.sidecar.close();
        await ops?.close();
        await listener.close();
        stats.listening = false;
        const drained = await Promise.race([
          evictor.idle().then(() => true),
          new Promise<boolean>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs, false).unref()),
        ]);
        if (!drained) log.warn({ msg: 'shutdown timeout', pendingEvictionsDropped: true });
        evictor.close();
        await reads?.close();
        if (ownsStore) await store.close();
        log.info({ msg: 'stopped' });
      })();
      return stopping;
    },
  };
}

interface ReadPath {
  cache: ActionFilterCache;
  sidecar: Sidecar;
  close(): Promise<void>;
}

/** The sidecar's read-through cache over the daemon's own store, with its own small pool. */
async function startReadPath(config: DaemonConfig, store: CacheStore, stats: DaemonStats, log: Logger): Promise<ReadPath> {
  const pool = new pg.Pool({ ...clientConfig(config.db, 'afc-sidecar', { connectionTimeoutMillis: 3000 }), max: 10 });
  pool.on('error', (err) => log.warn({ msg: 'sidecar pool error', err: err.message }));
  const cache = createActionFilterCache({
    db: pool,
    store,
    ttlSeconds: config.ttlSeconds,
    readFraction: config.readFraction,
    auditRate: config.auditRate,
    logger: log,
  });
  registerCacheMetrics(stats.registry, cache.stats);
  const close = async () => {
    await cache.close();
    await pool.end();
  };
  try {
    const sidecar = await startSidecar({ ...config.serve!, cache });
    return { cache, sidecar, close };
  } catch (cause) {
    await close();
    throw new AfcError(`cannot serve --serve on ${config.serve!.host}:${config.serve!.port}`, { cause });
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Each store's client library is loaded only when that store is used: a memory daemon never loads ioredis
// (about 8 MB of resident memory), a Redis daemon never loads node-cache.
async function openStore(config: DaemonConfig, log: Logger): Promise<CacheStore> {
  if (config.cache.kind === 'memory') {
    const { createMemoryStore } = await import('../store/memory-store.js');
    return createMemoryStore({ keyPrefix: config.keyPrefix });
  }
  const { createRedisStore } = await import('../store/redis-store.js');
  return createRedisStore({
    url: config.cache.url,
    keyPrefix: config.keyPrefix,
    onError: (err) => log.warn({ msg: 'redis error', err: err.message }),
  });
}
