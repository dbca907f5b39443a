// The guarded fill shared by the single-node and the cluster Redis stores. Each key is checked and written
// on its own (KEYS[i] alone), so in a cluster the script never spans slots when called per key, and in a
// single Redis one call covers a whole batch.
import type { ActionFilter } from '../model.js';
import { LEASE_PLACEHOLDER } from './store.js';

// KEYS: entry1, entry2, …  ARGV: ttl seconds, placeholder1, value1, placeholder2, value2, …
// Writes each entry that still holds the reader's placeholder; returns the 1-based positions refused.
// One script, so no eviction can slip between the check and the write.
export const FILL_SCRIPT = `
local refused = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2 * i] then
    redis.call('SET', KEYS[i], ARGV[2 * i + 1], 'EX', ARGV[1])
  else
    table.insert(refused, i)
  end
end
return refused`;

/** A stored entry, or undefined for a miss: nothing there, a reader's placeholder, or not afc's JSON. */
export function parseEntry(raw: string | null | undefined): ActionFilter[] | undefined {
  if (raw === null || raw === undefined || raw.startsWith(LEASE_PLACEHOLDER)) return undefined;
  try {
    const value: unknown = JSON.parse(raw);
    return Array.isArray(value) ? (value as ActionFilter[]) : undefined;
  } catch {
    // Not ours (another writer's format): a miss, and the guarded fill will not replace it either.
    return undefined;
  }
}
