// Opens the store a --cache URL names. Each store's client library is loaded only when that store is
// used: a memory daemon never loads ioredis (about 8 MB of resident memory) nor memjs.
import type { Logger } from '../log.js';
import type { CacheChoice } from './cache-url.js';
import type { CacheStore } from './store.js';

export interface OpenStoreOptions {
  keyPrefixes: readonly string[];
  retryMaxMs: number;
  log: Logger;
}

export async function openStore(choice: CacheChoice, options: OpenStoreOptions): Promise<CacheStore> {
  const { keyPrefixes, retryMaxMs, log } = options;
  const onError = (kind: string) => (err: Error) => log.warn({ msg: `${kind} error`, err: err.message });
  switch (choice.kind) {
    case 'memory': {
      const { createMemoryStore } = await import('./memory-store.js');
      return createMemoryStore({ keyPrefix: keyPrefixes });
    }
    case 'redis': {
      const { createRedisStore } = await import('./redis-store.js');
      return createRedisStore({ url: choice.url, keyPrefix: keyPrefixes, retryMaxMs, onError: onError('redis') });
    }
    case 'redis-cluster': {
      const { createRedisClusterStore } = await import('./redis-cluster-store.js');
      const { nodes, tls, username, password } = choice;
      return createRedisClusterStore({ nodes, tls, username, password, keyPrefixes, retryMaxMs, onError: onError('redis') });
    }
    case 'memcached': {
      const { createMemcachedStore } = await import('./memcached-store.js');
      const { servers, username, password } = choice;
      return createMemcachedStore({ servers, username, password, keyPrefixes, retryMaxMs, onError: onError('memcached') });
    }
  }
}
