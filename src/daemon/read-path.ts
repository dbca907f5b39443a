// The sidecar's read path: a read-through cache over the daemon's own store, with a small pool of its own,
// served over HTTP (src/http/sidecar.ts).
import pg from 'pg';
import { createActionFilterCache, type ActionFilterCache } from '../cache/action-filter-cache.js';
import { registerCacheMetrics } from '../cache/cache-metrics.js';
import { clientConfig } from '../config/database.js';
import type { HostPort } from '../config/parsers.js';
import { AfcError } from '../errors.js';
import { startSidecar, type Sidecar } from '../http/sidecar.js';
import type { Logger } from '../log.js';
import type { FillStore } from '../store/store.js';
import type { DaemonSettings } from './options.js';
import type { DaemonStats } from './stats.js';

export interface ReadPath {
  cache: ActionFilterCache;
  sidecar: Sidecar;
  close(): Promise<void>;
}

export async function startReadPath(settings: DaemonSettings, at: HostPort, store: FillStore, stats: DaemonStats, log: Logger): Promise<ReadPath> {
  const pool = new pg.Pool({ ...clientConfig(settings.db, 'afc-sidecar', { connectionTimeoutMillis: 3000 }), max: 10 });
  pool.on('error', (err) => log.warn({ msg: 'sidecar pool error', err: err.message }));
  const cache = createActionFilterCache({
    db: pool,
    schema: settings.schema,
    store,
    ttlSeconds: settings.ttlSeconds,
    readFraction: settings.readFraction,
    auditRate: settings.auditRate,
    logger: log,
  });
  registerCacheMetrics(stats.registry, cache.stats);
  const close = async () => {
    await cache.close();
    await pool.end();
  };
  try {
    const sidecar = await startSidecar({ ...at, cache });
    return { cache, sidecar, close: async () => (await sidecar.close(), await close()) };
  } catch (cause) {
    await close();
    throw new AfcError(`cannot serve the sidecar on ${at.host}:${at.port}`, { cause });
  }
}
