// The names users and their scripts rely on (design.md §3). One source of truth: the SQL templates in
// migrations/ get these values substituted by src/migrate/sql-files.ts, and the daemon reads them here.

/** Default LISTEN/NOTIFY channel the triggers send on. */
export const DEFAULT_CHANNEL = 'afc_action_filters';

/** Sentry's own cache key stem; the full key is `<key-prefix>workflow:action_filters_by_workflow:<id>`. */
export const KEY_STEM = 'workflow:action_filters_by_workflow:';

/** The cache key of workflow `id` under `keyPrefix` (e.g. ':1:' for a Django cache with default settings). */
export function cacheKey(keyPrefix: string, id: number): string {
  return `${keyPrefix}${KEY_STEM}${id}`;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** A Redis MATCH pattern for every afc key under `keyPrefix`, with glob metacharacters of the prefix escaped. */
export function cacheKeyPattern(keyPrefix: string): string {
  return `${escapeGlob(keyPrefix + KEY_STEM)}*`;
}

/**
 * afc's own bookkeeping beside the entries: the fill lease of workflow `id` (see src/store/store.ts).
 * Deliberately outside the entry pattern, so a flush of the entries never matches it by accident.
 */
export function leaseKey(keyPrefix: string, id: number): string {
  return `${keyPrefix}afc:lease:${id}`;
}

export function leaseKeyPattern(keyPrefix: string): string {
  return `${escapeGlob(`${keyPrefix}afc:lease:`)}*`;
}

/** The Sentry tables the triggers watch, by the short name used in payloads and metrics. */
export const TABLES = {
  wdcg: 'workflow_engine_workflowdataconditiongroup',
  dcg: 'workflow_engine_dataconditiongroup',
  dc: 'workflow_engine_datacondition',
} as const;
export type TableCode = keyof typeof TABLES;
