// The daemon assembled: store, events (metrics and logs subscribe), the pipeline (source → evictor →
// store), then what it serves over HTTP (ops server, sidecar). Each piece registers its release as it is
// set up; stop() releases them in reverse order, each once. Library users call startDaemon; the CLI calls
// runDaemon with settings it parsed from flags and environment.
import type { ActionFilterCache } from '../cache/action-filter-cache.js';
import { AfcError, UsageError } from '../errors.js';
import { startOpsServer, type Readiness } from '../http/ops-server.js';
import { Releasers } from '../lifecycle/releasers.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { openStore } from '../store/open-store.js';
import { StoreConfigError } from '../store/store-errors.js';
import type { CacheStore } from '../store/store.js';
import { startCore } from './core.js';
import { DaemonEvents } from './events.js';
import { logEvents } from './log-events.js';
import { resolveDaemonSettings, type DaemonSettings, type DaemonSettingsInput } from './options.js';
import { startReadPath } from './read-path.js';
import { DaemonStats } from './stats.js';

export interface Daemon {
  readonly settings: DaemonSettings;
  /** Where entries are evicted; none on a relay started without --cache. */
  readonly store: CacheStore | undefined;
  readonly stats: DaemonStats;
  /** Everything the daemon does, as it happens (evicted, flushed, bad-payload, …). */
  readonly events: DaemonEvents;
  /** LISTEN is active right now. */
  readonly listening: boolean;
  /** Ids waiting for the next store operation (bounded: past the bound they become one flush). */
  readonly pendingEvictions: number;
  /** 'on' once payloads are verified with the database's key; 'off' where signing is not installed. */
  readonly signing: 'unknown' | 'off' | 'on' | 'unreadable';
  /** Port of the /metrics, /healthz, /readyz server, when settings.http is set. */
  readonly httpPort: number | undefined;
  /** Port of the sidecar API, when settings.serve is set. */
  readonly servePort: number | undefined;
  readonly cache: ActionFilterCache | undefined;
  /** LISTEN active and store answering. */
  readiness(): Promise<Readiness>;
  /** Stops listening, lets in-flight evictions finish (bounded), closes what it opened. Idempotent. */
  stop(): Promise<void>;
}

export interface DaemonDeps {
  /** Your own store, e.g. createMemoryStore({ keyPrefix, cache: yourNodeCache }); you close it. */
  store?: CacheStore;
  logger?: Logger;
  /** Aborting it during start-up stops the connection retries at once (start-up then rejects). */
  signal?: AbortSignal;
}

/** Library entry point: `await startDaemon({ db, store })` runs the listener in this process. */
export async function startDaemon(options: DaemonSettingsInput & DaemonDeps = {}): Promise<Daemon> {
  const { store, logger, signal, ...settings } = options;
  return runDaemon(resolveDaemonSettings(settings), { store, logger, signal });
}

export async function runDaemon(settings: DaemonSettings, deps: DaemonDeps = {}): Promise<Daemon> {
  const log = deps.logger ?? silentLogger();
  const releasers = new Releasers();
  const events = new DaemonEvents();
  logEvents(events, log);
  const release = () => releasers.releaseAll((what, err) => log.warn({ msg: 'cleanup failed', what, err: String(err) }));
  try {
    if (settings.publish && settings.source) throw new UsageError('--publish (a relay) and --source (a host) exclude each other: a process is one or the other');
    // A relay publishes and evicts nothing of its own unless given a --cache; everything else has a store.
    const choice = settings.cache ?? (settings.publish ? undefined : ({ kind: 'memory' } as const));
    const store = deps.store ?? (choice ? await openStore(choice, { keyPrefixes: settings.keyPrefix, retryMaxMs: settings.retryMaxMs, log }) : undefined);
    if (store && !deps.store) releasers.push('store', () => store.close());
    if (store) await refuseMisconfiguredStore(store);
    if (settings.serve && !store) throw new UsageError('--serve needs a store to read through: give --cache');
    const stats = new DaemonStats(store?.kind ?? 'none', events);
    const core = await startCore(settings, { store, events, log, signal: deps.signal });
    releasers.push('pipeline', () => core.stop());
    const readiness = async (): Promise<Readiness> => {
      if (!core.listening) return { ready: false, reason: 'not listening on PostgreSQL (reconnecting)' };
      if (core.signing === 'unreadable') return { ready: false, reason: 'payloads are signed but the signing key cannot be read (see the log): every change is a flush' };
      if (!store) return { ready: true };
      try {
        await withTimeout(store.ping(), 1000, 'no answer within 1000 ms');
        return { ready: true };
      } catch (error) {
        return { ready: false, reason: `${store.kind} store unreachable: ${error instanceof Error ? error.message : String(error)}` };
      }
    };
    let httpPort: number | undefined;
    if (settings.http) {
      const at = settings.http;
      const ops = await startOpsServer({ ...at, registry: stats.registry, readiness }).catch((cause: unknown) => {
        throw new AfcError(`cannot serve --http on ${at.host}:${at.port}`, { cause });
      });
      releasers.push('ops server', () => ops.close());
      httpPort = ops.port;
      log.info({ msg: 'http listening', host: at.host, port: ops.port });
    }
    const reads = settings.serve && store ? await startReadPath(settings, settings.serve, store, stats, log) : undefined;
    if (reads) {
      releasers.push('sidecar', () => reads.close());
      log.info({ msg: 'sidecar listening', host: settings.serve!.host, port: reads.sidecar.port });
    }
    let stopping: Promise<void> | undefined;
    return {
      settings,
      store,
      stats,
      events,
      get listening() {
        return core.listening;
      },
      get pendingEvictions() {
        return core.evictor?.pending ?? 0;
      },
      get signing() {
        return core.signing;
      },
      httpPort,
      servePort: reads?.sidecar.port,
      cache: reads?.cache,
      readiness,
      stop() {
        stopping ??= release().then(() => void events.emit('stopped'));
        return stopping;
      },
    };
  } catch (error) {
    await release();
    throw error;
  }
}

/**
 * A store that answers but refuses afc (a database index it does not have, wrong credentials) fails the
 * start with the server's own words. One that does not answer yet is fine: the evictor retries and flushes
 * once it does.
 */
async function refuseMisconfiguredStore(store: CacheStore): Promise<void> {
  try {
    await withTimeout(store.ping(), 3000, 'no answer within 3000 ms');
  } catch (error) {
    if (error instanceof StoreConfigError) throw error;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
