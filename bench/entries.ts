// Cache entries the benchmark plants in its Redis for the daemon to evict (the value does not matter).
import type { Redis } from 'ioredis';
import { cacheKey } from '../src/contract.js';

/** Sets the entries of workflows 1..count under `prefix`, 10,000 per MSET. */
export async function putEntries(redis: Redis, prefix: string, count: number): Promise<void> {
  for (let from = 1; from <= count; from += 10_000) {
    const to = Math.min(count, from + 9999);
    await redis.mset(...Array.from({ length: to - from + 1 }, (_, i) => [cacheKey(prefix, from + i), '[]']).flat());
  }
}
