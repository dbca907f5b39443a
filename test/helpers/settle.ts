// Waits until a daemon has applied everything committed so far. Notifications arrive in commit order and
// the evictor applies them in order, so once a fresh sentinel id's entry is gone, so is everything before.
import type pg from 'pg';
import { DEFAULT_CHANNEL } from '../../src/contract.js';
import { triggerPayload } from './signing.js';
import { waitFor } from './wait.js';

export interface EntryProbe {
  fill(id: number): unknown;
  exists(id: number): boolean | Promise<boolean>;
}

let sentinel = 9_000_000_000_000_000 + (process.pid % 1000) * 1_000_000;

export async function settle(db: pg.Client, probe: EntryProbe): Promise<void> {
  const id = ++sentinel;
  await probe.fill(id);
  await db.query('SELECT pg_notify($1, $2)', [DEFAULT_CHANNEL, await triggerPayload(db, { op: 'evict', src: 'dc', ts: Date.now(), ids: [id] })]);
  await waitFor(async () => !(await probe.exists(id)), `sentinel ${id} evicted`);
}
