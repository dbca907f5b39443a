// Where the relays' stream lives (--publish on a relay, --source on a host), and how much of it is kept
// (--retention). One Redis or a Redis Cluster: the stream key is hash-tagged ({afc}), so in a cluster the
// whole stream sits on one slot.
import { UsageError } from '../errors.js';
import { parseCacheOption } from '../store/cache-url.js';

export type StreamTarget = Extract<ReturnType<typeof parseCacheOption>, { kind: 'redis' | 'redis-cluster' }>;

export type Retention = { maxLen: number } | { maxAgeMs: number };

/** The stream of invalidations under `keyPrefix` (design.md §7). */
export function streamKey(keyPrefix: string): string {
  return `${keyPrefix}{afc}:invalidations`;
}

export function parseStreamTarget(text: string, label: string): StreamTarget {
  const choice = parseCacheOption(text);
  if (choice.kind !== 'redis' && choice.kind !== 'redis-cluster') {
    throw new UsageError(`${label} must be a Redis URL (redis://, rediss://, redis+cluster://, rediss+cluster://), got '${choice.kind === 'memory' ? 'memory' : choice.display}'`);
  }
  return choice;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseRetention(text: string, label: string): Retention {
  const count = /^\d+$/.test(text) ? Number(text) : undefined;
  if (count !== undefined && count >= 100 && count <= 1e9) return { maxLen: count };
  const age = /^(\d+)(s|m|h|d)$/.exec(text);
  if (age && Number(age[1]) > 0) return { maxAgeMs: Number(age[1]) * UNITS[age[2]] };
  throw new UsageError(`${label} must be a count of entries from 100 to 1000000000 (e.g. 100000) or an age (e.g. 10m, 1h, 7d), got '${text}'`);
}
