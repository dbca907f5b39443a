// The read-through cache of action filters: hits from the store, misses loaded in one batch and filled
// back under a lease. Design rule: a fill never undoes an eviction: the lease is taken before the
// database read, and the fill is refused when an eviction or a flush removed it meanwhile (design.md §5).
import pg from 'pg';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import type { ActionFilter } from '../model.js';
import type { FillStore } from '../store/store.js';
import { Auditor, type AuditStats } from './audit.js';
import { createLoader, type Loader } from './loader.js';

export interface ActionFilterCacheOptions {
  /** A pg Pool of yours, or a postgres:// URL (then the cache owns its pool and closes it). */
  db: pg.Pool | string;
  schema?: string;
  store: FillStore;
  /** Entry lifetime; Sentry uses 300 s. */
  ttlSeconds?: number;
  /** How long a fill lease lasts: longer than any database read should take. */
  leaseMs?: number;
  /** Share of get() calls served through the cache (0..1); the rest read the database only. */
  readFraction?: number;
  /** Probability that a cache hit is also checked against the database. */
  auditRate?: number;
  auditRecheckMs?: readonly [number, number];
  random?: () => number;
  logger?: Logger;
  /** Called between the database read and the fill (tests pause here to interleave a writer). */
  beforeFill?: (ids: readonly number[]) => Promise<void>;
}

export interface CacheStats {
  hits: number;
  misses: number;
  /** Workflows served from the database only because of readFraction. */
  bypassed: number;
  filled: number;
  /** Fills refused because the entry was evicted or flushed after the lease was taken. */
  fillsRefused: number;
  /** Store errors met while reading; the database answered instead. */
  storeErrors: number;
  audit: AuditStats;
}

export interface ActionFilterCache {
  /** Action filters of each workflow (`[]` when it has none), in the order of `ids`. */
  get(ids: readonly number[]): Promise<Map<number, ActionFilter[]>>;
  readonly stats: CacheStats;
  readonly loader: Loader;
  close(): Promise<void>;
}

export function createActionFilterCache(options: ActionFilterCacheOptions): ActionFilterCache {
  const readFraction = options.readFraction ?? 1;
  const auditRate = options.auditRate ?? 0;
  if (!(readFraction >= 0 && readFraction <= 1)) throw new RangeError(`readFraction must be within 0..1, got ${readFraction}`);
  if (!(auditRate >= 0 && auditRate <= 1)) throw new RangeError(`auditRate must be within 0..1, got ${auditRate}`);
  const ownsPool = typeof options.db === 'string';
  const pool = typeof options.db === 'string' ? new pg.Pool({ connectionString: options.db, application_name: 'afc-cache', max: 10 }) : options.db;
  if (ownsPool) pool.on('error', () => undefined);
  const { store } = options;
  const ttlSeconds = options.ttlSeconds ?? 300;
  const leaseMs = options.leaseMs ?? 10_000;
  const random = options.random ?? Math.random;
  const log = options.logger ?? silentLogger();
  const loader = createLoader(pool, options.schema);
  const auditor = new Auditor(loader, store, log, options.auditRecheckMs ?? [1000, 10_000]);
  const stats: CacheStats = { hits: 0, misses: 0, bypassed: 0, filled: 0, fillsRefused: 0, storeErrors: 0, audit: auditor.stats };
  // Concurrent misses of the same workflow share one load.
  const inflight = new Map<number, Promise<ActionFilter[]>>();

  const storeCall = async <T>(what: string, call: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      stats.storeErrors++;
      log.warn({ msg: 'cache store error', op: what, store: store.kind, err: String(error) });
      return fallback;
    }
  };

  async function loadAndFill(ids: number[]): Promise<Map<number, ActionFilter[]>> {
    const leases = await storeCall('lease', () => store.lease(ids, leaseMs), new Map<number, string>());
    const values = await loader.load(ids);
    await options.beforeFill?.(ids);
    const leased = new Map([...values].filter(([id]) => leases.has(id)));
    if (leased.size > 0) {
      const refused = await storeCall('fill', () => store.fill(leases, leased, ttlSeconds), [...leased.keys()]);
      stats.fillsRefused += refused.length;
      stats.filled += leased.size - refused.length;
    }
    return values;
  }

  return {
    stats,
    loader,
    async get(ids) {
      const unique = [...new Set(ids)];
      for (const id of unique) if (!Number.isSafeInteger(id) || id <= 0) throw new TypeError(`workflow id ${id} is not a positive integer`);
      if (random() >= readFraction) {
        stats.bypassed += unique.length;
        return loader.load(unique);
      }
      const found = await storeCall('get', () => store.getMany(unique), new Map<number, ActionFilter[]>());
      stats.hits += found.size;
      const missing = unique.filter((id) => !found.has(id));
      stats.misses += missing.length;
      const toLoad = missing.filter((id) => !inflight.has(id));
      if (toLoad.length > 0) {
        const batch = loadAndFill(toLoad);
        for (const id of toLoad) {
          const one = batch.then((m) => m.get(id) ?? []);
          inflight.set(id, one);
          void one.finally(() => inflight.delete(id)).catch(() => undefined);
        }
      }
      const loadedValues = await Promise.all(missing.map((id) => inflight.get(id)!));
      const loaded = new Map(missing.map((id, i) => [id, loadedValues[i]]));
      const result = new Map<number, ActionFilter[]>();
      for (const id of unique) {
        const hit = found.get(id);
        if (hit !== undefined) {
          result.set(id, hit);
          if (auditRate > 0 && random() < auditRate) auditor.check(id, hit);
        } else {
          result.set(id, loaded.get(id)!);
        }
      }
      return result;
    },
    async close() {
      auditor.close();
      if (ownsPool) await pool.end();
    },
  };
}
