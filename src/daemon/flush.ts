// "Flush all" for one store, two ways (--flush):
// - scan: the store lists its own keys and deletes the entries (SCAN in Redis, the key list of a
//   node-cache). Its cost grows with everything else the store holds.
// - enumerate: every workflow id is read from <schema>.workflow_engine_workflow, in pages, and each
//   page is evicted like any other batch. Its cost grows with the workflows only; the only way for stores
//   that cannot list keys (memcached, a Redis Cluster).
// An entry of a workflow that no longer exists is not found by enumeration; it is harmless (nobody asks
// for a workflow that does not exist), and the eviction that came with its deletion removed it anyway.
import pg from 'pg';
import { clientConfig, type DatabaseConfig } from '../config/database.js';
import { AfcError, UsageError } from '../errors.js';
import { loadTemplate, renderFixture } from '../sql/templates.js';
import type { EvictionStore } from '../store/store.js';

export const FLUSH_MODES = ['scan', 'enumerate'] as const;
export type FlushMode = (typeof FLUSH_MODES)[number];

/** Workflows per page read, and per evict call. */
const PAGE = 10_000;

/** The mode a store uses when --flush is not given (see the README's benchmark for single Redis). */
export function defaultFlushMode(store: EvictionStore): FlushMode {
  return store.kind === 'memory' ? 'scan' : 'enumerate';
}

export function createFlusher(store: EvictionStore, mode: FlushMode, source: { db: DatabaseConfig; schema: string }): () => Promise<void> {
  if (mode === 'scan') {
    const scan = store.scanFlush?.bind(store);
    if (!scan) throw new UsageError(`a ${store.kind} store cannot list its keys: flush mode 'scan' is not possible there, use 'enumerate'`);
    return scan;
  }
  const sql = renderFixture(loadTemplate('queries/workflow-ids.sql'), source.schema);
  return async () => {
    const client = new pg.Client(clientConfig(source.db, 'afc-daemon-flush'));
    client.on('error', () => undefined);
    await client.connect();
    try {
      let after = '0';
      for (;;) {
        const { rows } = await client.query<{ id: string }>({ name: 'afc-workflow-ids', text: sql, values: [after, PAGE] });
        if (rows.length === 0) return;
        // An id past 2^53 cannot be a JSON number: no afc entry can name it exactly, skip it.
        const ids = rows.map((r) => Number(r.id)).filter(Number.isSafeInteger);
        await store.evict(ids);
        after = rows[rows.length - 1].id;
        if (rows.length < PAGE) return;
      }
    } catch (cause) {
      throw new AfcError(`flush by enumerating ${source.schema}.workflow_engine_workflow failed`, { cause });
    } finally {
      await client.end().catch(() => undefined);
    }
  };
}
