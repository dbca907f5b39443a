// The library entry point: `import { startDaemon, createMemoryStore } from 'afc'`.
export { startDaemon, runDaemon, type Daemon, type DaemonDeps } from './daemon/start.js';
export { DAEMON_OPTIONS, resolveDaemonSettings, type DaemonSettings, type DaemonSettingsInput } from './daemon/options.js';
export { DaemonEvents, type DaemonEventMap } from './daemon/events.js';
export { DaemonStats } from './daemon/stats.js';
export type { CacheStore, EvictionStore, FillStore, Leases, StoreKind } from './store/store.js';
export { createMemoryStore, type MemoryStore } from './store/memory-store.js';
export { createRedisStore, type RedisStore, type RedisStoreOptions } from './store/redis-store.js';
export { createRedisClusterStore, type RedisClusterStore, type RedisClusterStoreOptions } from './store/redis-cluster-store.js';
export { createMemcachedStore, type MemcachedStore, type MemcachedStoreOptions } from './store/memcached-store.js';
export { parseCacheOption, type CacheChoice } from './store/cache-url.js';
export { cacheKey, cacheKeyPattern, DEFAULT_CHANNEL, KEY_STEM } from './contract.js';
export { decode, encode, type Message, PAYLOAD_VERSION } from './codec.js';
export { migrate, uninstall } from './migrate/migrator.js';
export { createActionFilterCache, type ActionFilterCache, type ActionFilterCacheOptions, type CacheStats } from './cache/action-filter-cache.js';
export { createLoader, type Loader } from './cache/loader.js';
export type { ActionFilter, Condition, FlushCause, Invalidation } from './model.js';
