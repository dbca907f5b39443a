// The shared store on one Redis server, through ioredis. Commands fail fast while disconnected (no
// offline queue), so the evictor knows an eviction was not applied and flushes once Redis is back.
// Never on the wrong data: a database index the server refuses, a wrong password or an ACL refusal is a
// configuration error that every call reports with the server's own words (ioredis would otherwise log
// the failed SELECT and carry on in database 0).
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { cacheKey, cacheKeyPattern } from '../contract.js';
import type { ActionFilter } from '../model.js';
import { keyPrefixList, type KeyPrefixOption } from './key-prefixes.js';
import { FILL_SCRIPT, parseEntry } from './redis-fill.js';
import { StoreConfigError, configErrorOf } from './store-errors.js';
import { LEASE_PLACEHOLDER, type CacheStore, type Leases } from './store.js';

export interface RedisStore extends CacheStore {
  readonly kind: 'redis';
  readonly client: Redis;
  scanFlush(): Promise<void>;
  onRecovered(listener: () => void): void;
}

export interface RedisStoreOptions {
  /** redis://[user:pass@]host:port[/db] or rediss://… (TLS). */
  url: string;
  keyPrefix: KeyPrefixOption;
  /** Keys per UNLINK (and SCAN COUNT hint). */
  batchSize?: number;
  retryMaxMs?: number;
  onError?: (error: Error) => void;
}

type FillClient = Redis & { afcFill(numKeys: number, ...args: string[]): Promise<number[]> };

export function createRedisStore(options: RedisStoreOptions): RedisStore {
  const batchSize = options.batchSize ?? 1000;
  const retryMaxMs = options.retryMaxMs ?? 5000;
  const prefixes = keyPrefixList(options.keyPrefix);
  const wantedDb = Number(new URL(options.url).pathname.replace(/^\//, '') || 0);
  const client = new Redis(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    commandTimeout: 10_000,
    // Reconnect forever: a daemon without its store is useless, and giving up would need a restart.
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 10), retryMaxMs),
  }) as FillClient;
  client.defineCommand('afcFill', { lua: FILL_SCRIPT });
  const key = (id: number) => cacheKey(prefixes[0], id);
  const listeners: Array<() => void> = [];
  let everReady = false;
  let closed = false;
  /** Set while the server refuses this connection's database or credentials: every call fails with it. */
  let configError: StoreConfigError | undefined;
  /** The last ACL refusal, until a command succeeds again: ping (and so /readyz) reports it. */
  let refusal: StoreConfigError | undefined;
  let selectError: string | undefined;
  const where = `Redis at ${redisDisplay(options.url)}`;

  // The first use waits for the first connect (bounded), or for the server to refuse us, whichever comes first.
  let firstAnswer: () => void = () => {};
  const firstReady = new Promise<void>((resolve) => {
    firstAnswer = resolve;
    client.once('ready', resolve);
    setTimeout(resolve, 5000).unref();
  });
  client.on('error', (error: Error) => {
    const config = configErrorOf(error, where);
    if (config?.kind === 'database') selectError = error.message;
    else if (config) {
      configError = config;
      firstAnswer();
    }
    options.onError?.(error);
  });
  // Each connection is checked before use: ioredis reports a refused SELECT only as an 'error' event.
  let checked: Promise<void> = Promise.resolve();
  client.on('ready', () => {
    configError = undefined;
    checked = verifyDatabase().then(() => {
      if (everReady && !configError) for (const l of listeners) l();
      everReady = true;
    });
  });
  async function verifyDatabase(): Promise<void> {
    const info = await client.call('CLIENT', 'INFO').catch(() => undefined);
    const db = /(?:^| )db=(\d+)/.exec(String(info ?? ''))?.[1];
    if (db !== undefined && Number(db) !== wantedDb) {
      configError = new StoreConfigError(`${where} refused database ${wantedDb}: ${selectError ?? `the connection is on database ${db}`}`, 'database');
    }
  }

  // Without an offline queue a command fails while disconnected, which is what the evictor wants; but a
  // brand-new client is not connected yet either, so the first use waits for firstReady (above).
  const call = async <T>(work: () => Promise<T>): Promise<T> => {
    if (closed) throw new Error(`${where}: store closed`);
    if (!everReady) await firstReady;
    await checked;
    if (configError) throw configError;
    try {
      const result = await work();
      refusal = undefined;
      return result;
    } catch (error) {
      // An ACL refusal is not an outage: the operator must hear the server's reason, not "unreachable".
      const config = configErrorOf(error as Error, where);
      if (config) refusal = config;
      throw config ?? error;
    }
  };

  async function unlinkAll(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    // The common case (one statement's few workflows) is one command; a pipeline only pays off for more.
    if (keys.length <= batchSize) {
      await client.unlink(...keys);
      return;
    }
    const pipeline = client.pipeline();
    for (let i = 0; i < keys.length; i += batchSize) pipeline.unlink(...keys.slice(i, i + batchSize));
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([error]) => error);
    if (failed) throw new Error('redis UNLINK failed', { cause: failed[0] });
  }

  return {
    kind: 'redis',
    client,
    onRecovered: (listener) => listeners.push(listener),
    evict: (ids) => call(() => unlinkAll(prefixes.flatMap((p) => ids.map((id) => cacheKey(p, id))))),
    scanFlush: () =>
      call(async () => {
        for (const prefix of prefixes) {
          let cursor = '0';
          do {
            const [next, keys] = await client.scan(cursor, 'MATCH', cacheKeyPattern(prefix), 'COUNT', batchSize);
            await unlinkAll(keys);
            cursor = next;
          } while (cursor !== '0');
        }
      }),
    getMany: (ids) =>
      call(async () => {
        const found = new Map<number, ActionFilter[]>();
        if (ids.length === 0) return found;
        const values = await client.mget(...ids.map(key));
        values.forEach((raw, i) => {
          const value = parseEntry(raw);
          if (value !== undefined) found.set(ids[i], value);
        });
        return found;
      }),
    lease: (ids, ttlMs) =>
      call(async () => {
        const taken: Leases = new Map();
        if (ids.length === 0) return taken;
        const tokens = ids.map(() => `${LEASE_PLACEHOLDER}${randomUUID()}`);
        const pipeline = client.pipeline();
        ids.forEach((id, i) => pipeline.set(key(id), tokens[i], 'PX', ttlMs, 'NX'));
        const results = (await pipeline.exec()) ?? [];
        results.forEach(([error, reply], i) => {
          if (error) throw new Error('redis lease failed', { cause: error });
          if (reply === 'OK') taken.set(ids[i], tokens[i]);
        });
        return taken;
      }),
    fill: (leases, values, ttlSeconds) =>
      call(async () => {
        const ids = [...values.keys()].filter((id) => leases.has(id));
        const refused = [...values.keys()].filter((id) => !leases.has(id));
        if (ids.length === 0) return refused;
        const args = ids.flatMap((id) => [leases.get(id)!, JSON.stringify(values.get(id))]);
        const rejected = await client.afcFill(ids.length, ...ids.map(key), String(ttlSeconds), ...args);
        return [...refused, ...rejected.map((k) => ids[k - 1])];
      }),
    ping: () =>
      call(async () => {
        await client.ping();
        if (refusal) throw refusal;
      }),
    async close() {
      if (closed) return;
      closed = true;
      if (client.status === 'end') return;
      if (client.status !== 'ready') {
        // Down or still connecting: QUIT cannot be sent (no offline queue), and disconnect() is what cancels
        // a pending reconnect. While reconnecting no 'end' event follows, so there is nothing to wait for.
        client.disconnect();
        return;
      }
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      await client.quit().catch(() => client.disconnect());
      // QUIT resolves on its reply; the socket closes just after. Resolve once it has (bounded).
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    },
  };
}

/** host:port/db of a Redis URL, without user or password. */
function redisDisplay(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
