// The entries of the relays' stream (XADD field/value pairs). Every entry names its relay (a random id per
// relay process), that relay's LISTEN session (since: when it began, ms on the relay's clock) and its
// sequence number (1, 2, 3 … per relay process, every entry counted), so a host can tell an entry that went
// missing (a Redis failover can lose acknowledged XADDs) and which stretch of time each relay covered.
//   evict  ids (comma-separated), src, ts (when the trigger ran), eid (the payload's signature, or '')
//   flush  cause, eid
//   hb     a heartbeat: the relay is listening and publishing, in this session
//   gap    from, to: the relay may have missed what committed in between (its LISTEN or its XADDs failed)
import type { TableCode } from '../contract.js';
import { TABLES } from '../contract.js';
import { FLUSH_CAUSES, type FlushCause } from '../model.js';

interface Common {
  relay: string;
  session: number;
  since: number;
  seq: number;
  /** When the relay appended it (ms, relay clock). */
  at: number;
}

export type StreamEntry = Common &
  (
    | { op: 'evict'; ids: number[]; src: TableCode; ts: number; eid: string }
    | { op: 'flush'; cause: FlushCause; eid: string }
    | { op: 'hb' }
    | { op: 'gap'; from: number; to: number }
  );

export function entryFields(entry: StreamEntry): string[] {
  const fields = ['op', entry.op, 'relay', entry.relay, 'session', String(entry.session), 'since', String(entry.since), 'seq', String(entry.seq), 'at', String(entry.at)];
  switch (entry.op) {
    case 'evict':
      return [...fields, 'ids', entry.ids.join(','), 'src', entry.src, 'ts', String(entry.ts), 'eid', entry.eid];
    case 'flush':
      return [...fields, 'cause', entry.cause, 'eid', entry.eid];
    case 'gap':
      return [...fields, 'from', String(entry.from), 'to', String(entry.to)];
    case 'hb':
      return fields;
  }
}

const num = (text: string | undefined) => (text !== undefined && text !== '' && Number.isFinite(Number(text)) ? Number(text) : undefined);

/** Decodes one entry's fields, or says why it is not one of afc's (a stream is writable by anyone with access). */
export function parseEntry(fields: string[]): StreamEntry | { invalid: string } {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
  const [session, since, seq, at] = [num(f.session), num(f.since), num(f.seq), num(f.at)];
  if (!f.relay || session === undefined || since === undefined || seq === undefined || at === undefined) return { invalid: 'missing relay, session, since, seq or at' };
  const common = { relay: f.relay, session, since, seq, at };
  switch (f.op) {
    case 'evict': {
      const ids = f.ids === '' ? [] : (f.ids ?? '').split(',').map(Number);
      const ts = num(f.ts);
      if (!ids.every((id) => Number.isSafeInteger(id) && id > 0) || ts === undefined || !Object.hasOwn(TABLES, f.src ?? '')) return { invalid: 'bad evict entry' };
      return { ...common, op: 'evict', ids, src: f.src as TableCode, ts, eid: f.eid ?? '' };
    }
    case 'flush':
      if (!(FLUSH_CAUSES as readonly string[]).includes(f.cause ?? '')) return { invalid: `unknown flush cause ${JSON.stringify(f.cause)}` };
      return { ...common, op: 'flush', cause: f.cause as FlushCause, eid: f.eid ?? '' };
    case 'gap': {
      const [from, to] = [num(f.from), num(f.to)];
      if (from === undefined || to === undefined) return { invalid: 'bad gap entry' };
      return { ...common, op: 'gap', from, to };
    }
    case 'hb':
      return { ...common, op: 'hb' };
    default:
      return { invalid: `unknown op ${JSON.stringify(f.op)}` };
  }
}
