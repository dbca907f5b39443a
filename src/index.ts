// The library entry point: `import { startDaemon, createMemoryStore } from 'afc'`.
export { startDaemon, runDaemon, type Daemon } from './daemon/daemon.js';
export { resolveDaemonConfig, type DaemonConfig, type DaemonOptions } from './daemon/config.js';
export { DaemonStats } from './daemon/stats.js';
export type { CacheStore } from './store/store.js';
export { createMemoryStore } from './store/memory-store.js';
export { createRedisStore } from './store/redis-store.js';
export { cacheKey, cacheKeyPattern, DEFAULT_CHANNEL, KEY_STEM } from './contract.js';
export { decode, encode, type Message, PAYLOAD_VERSION } from './codec.js';
export { migrate, uninstall } from './migrate/migrator.js';
export { createActionFilterCache, type ActionFilterCache, type ActionFilterCacheOptions, type CacheStats } from './cache/action-filter-cache.js';
export { createLoader, type Loader } from './cache/loader.js';
export type { ActionFilter, Condition } from './store/store.js';
