// The daemon's options, compiled once into a typed object with every default filled in. The CLI builds
// it from flags and env; library users pass a partial object to startDaemon.
import { resolveDatabase, type DatabaseConfig } from '../config/database.js';
import { DEFAULT_CHANNEL } from '../contract.js';
import { UsageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CacheStore } from '../store/store.js';
import { parseCacheOption } from '../store/redis-url.js';

export type CacheOption = ReturnType<typeof parseCacheOption>;

export interface DaemonConfig {
  db: DatabaseConfig;
  cache: CacheOption;
  keyPrefix: string;
  channel: string;
  /** Heartbeat period on the LISTEN connection, and the timeout of its queries. */
  heartbeatMs: number;
  /** Longest wait between reconnect attempts (PostgreSQL and store). */
  retryMaxMs: number;
  /** How long the first connection to PostgreSQL may take before start-up fails (exit 1). */
  startupTimeoutMs: number;
  /** How long stop() waits for in-flight evictions. */
  shutdownTimeoutMs: number;
  /** Where to serve /metrics, /healthz and /readyz; off when undefined. */
  http: { host: string; port: number } | undefined;
  /** Where to serve the read-through sidecar API; off when undefined. */
  serve: { host: string; port: number } | undefined;
  /** Evict each batch again this long after the first (for readers without the fill guard). */
  redeleteAfterMs: number | undefined;
  /** Read-through cache settings (used with `serve`). */
  ttlSeconds: number;
  readFraction: number;
  auditRate: number;
}

export interface DaemonOptions {
  /** postgres:// URL; default DATABASE_URL or PG* variables of the process. */
  db?: string;
  /** 'memory' (default) or 'redis://host:port/db'. Ignored when `store` is given. */
  cache?: string;
  /** Your own store, e.g. createMemoryStore({ keyPrefix, cache: yourNodeCache }); you close it. */
  store?: CacheStore;
  keyPrefix?: string;
  channel?: string;
  heartbeatMs?: number;
  retryMaxMs?: number;
  startupTimeoutMs?: number;
  shutdownTimeoutMs?: number;
  /** 'HOST:PORT' for /metrics, /healthz and /readyz (port 0 picks a free one); off by default. */
  http?: string;
  /** 'HOST:PORT' for GET /v1/action-filters through this process's read-through cache; off by default. */
  serve?: string;
  redeleteAfterMs?: number;
  ttlSeconds?: number;
  readFraction?: number;
  auditRate?: number;
  logger?: Logger;
}

export const DAEMON_DEFAULTS = {
  heartbeatMs: 2000,
  retryMaxMs: 5000,
  startupTimeoutMs: 30_000,
  shutdownTimeoutMs: 10_000,
} as const;

export function resolveDaemonConfig(options: DaemonOptions, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const channel = options.channel ?? DEFAULT_CHANNEL;
  if (channel.length === 0 || channel.length > 63) throw new UsageError(`--channel must be 1 to 63 characters, got '${channel}'`);
  return {
    db: resolveDatabase(options.db, env),
    cache: parseCacheOption(options.cache ?? 'memory'),
    keyPrefix: options.keyPrefix ?? '',
    channel,
    heartbeatMs: options.heartbeatMs ?? DAEMON_DEFAULTS.heartbeatMs,
    retryMaxMs: options.retryMaxMs ?? DAEMON_DEFAULTS.retryMaxMs,
    startupTimeoutMs: options.startupTimeoutMs ?? DAEMON_DEFAULTS.startupTimeoutMs,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? DAEMON_DEFAULTS.shutdownTimeoutMs,
    http: options.http === undefined ? undefined : parseHostPort('--http', options.http),
    serve: options.serve === undefined ? undefined : parseHostPort('--serve', options.serve),
    redeleteAfterMs: options.redeleteAfterMs,
    ttlSeconds: options.ttlSeconds ?? 300,
    readFraction: fraction('--read-fraction', options.readFraction ?? 1),
    auditRate: fraction('--audit-rate', options.auditRate ?? 0),
  };
}

function fraction(flag: string, value: number): number {
  if (!(value >= 0 && value <= 1)) throw new UsageError(`${flag} must be a number from 0 to 1, got '${value}'`);
  return value;
}

export function parseHostPort(flag: string, value: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${flag} must be HOST:PORT, e.g. 127.0.0.1:9464, got '${value}'`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}
