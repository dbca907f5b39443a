// Every database object afc creates, in one list: `afc uninstall` drops what is named here and
// `afc status` checks for it, so neither can drift from the other. test/migrate.test.ts checks the list
// against what the migrations really create (nothing missing, nothing extra).
import { TABLES, type TableCode } from '../contract.js';

export interface TriggerEntry {
  name: string;
  /** The trigger's event, as pg_trigger reports it to status. */
  event: 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE';
  table: (typeof TABLES)[TableCode];
  /** A row-level helper (afc_dc_move), as opposed to the statement triggers that NOTIFY. */
  row?: boolean;
}

const statement = (code: TableCode, events: TriggerEntry['event'][]): TriggerEntry[] =>
  events.map((event) => ({ name: `afc_${code}_${event.toLowerCase()}`, event, table: TABLES[code] }));

export const MANIFEST = {
  triggers: [
    ...statement('wdcg', ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']),
    ...statement('dcg', ['UPDATE', 'DELETE', 'TRUNCATE']),
    ...statement('dc', ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']),
    { name: 'afc_dc_move', event: 'UPDATE', table: TABLES.dc, row: true },
  ] as readonly TriggerEntry[],
  /** Function names the latest migration leaves installed (uninstall drops every overload). */
  functions: [
    'afc_wdcg_changed',
    'afc_dcg_changed',
    'afc_dc_changed',
    'afc_dc_moved',
    'afc_truncated',
    'afc_send',
    'afc_emit',
    'afc_notify_flush',
    'afc_notify_failed',
    'afc_channel',
  ] as readonly string[],
  /** Functions a later migration dropped: an install stopped before that migration may still have them. */
  retiredFunctions: ['afc_notify_ids'] as readonly string[],
  trackingTable: 'afc_migrations',
  /** Migration 4's signing key. */
  secretTable: 'afc_secret',
} as const;
