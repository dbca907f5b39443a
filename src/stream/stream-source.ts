// A host's source (afc-daemon --source): the relays' stream instead of a PostgreSQL LISTEN. Design rule,
// the same as LISTEN's: nothing the host did not read may leave a stale entry.
//  * Start: note the stream's last id, flush, then read from that id (the order of LISTEN then flush).
//  * A lost Redis connection: resume from the last id read, without a flush, if every entry after it is
//    still in the stream; flush if entries it needed were trimmed away or the stream is gone (trimmed).
//  * Entries a relay appended that vanished (a failover loses acknowledged writes; a restart loses the
//    stream): that relay's sequence numbers skip, and the host flushes (relay-gap).
//  * Stretches of commit time no relay covered (coverage.ts): flush (relay-gap).
//  * Two relays publish the same change: the copy is recognised by its payload's signature and skipped.
import type { Logger } from '../log.js';
import type { FlushCause, Invalidation } from '../model.js';
import type { DaemonEvents } from '../daemon/events.js';
import type { Source } from '../daemon/pg-source.js';
import { backoffDelay, cancellableDelay } from '../daemon/backoff.js';
import { AfcError } from '../errors.js';
import { Coverage } from './coverage.js';
import { parseEntry } from './entry.js';
import { closeStreamClient, createStreamClient, unlessClosed, whenReady, type StreamClient } from './stream-client.js';
import type { StreamTarget } from './stream-target.js';

export interface StreamSourceOptions {
  target: StreamTarget;
  streamKey: string;
  /** The relays' heartbeat period. */
  heartbeatMs: number;
  retryMaxMs: number;
  startupTimeoutMs: number;
  events: DaemonEvents;
  log: Logger;
  deliver: (invalidation: Invalidation) => void;
  signal?: AbortSignal;
}

/** Copies recognised: the signatures of the latest payloads applied. */
const REMEMBERED = 100_000;
/** How far relay clocks may be from this host's (NTP keeps them within a few ms). */
const CLOCK_MARGIN_MS = 250;
const BATCH = 1000;

type RawEntries = Array<[id: string, fields: string[]]>;

export async function startStreamSource(options: StreamSourceOptions): Promise<Source> {
  const { events, log, deliver, streamKey } = options;
  const onError = (err: Error) => log.warn({ msg: 'stream error', role: 'host', err: err.message });
  // The reader blocks in XREAD; the other connection answers the quick questions meanwhile.
  const reader = createStreamClient(options.target, { retryMaxMs: options.retryMaxMs, commandTimeoutMs: options.heartbeatMs + 5000, onError });
  const control = createStreamClient(options.target, { retryMaxMs: options.retryMaxMs, commandTimeoutMs: 5000, onError });
  const seen = new Set<string>();
  let closed = false;
  let connected = false;
  let lastId = '0-0';
  let wait: { cancel: () => void } | undefined;
  // Consumer lag in entries: the stream's entries-added counter, less what was added before this host
  // started reading and what it has read since.
  let addedBefore = 0;
  let read = 0;
  let lagMs = 0;
  let lagEntries = 0;
  const closeAll = async () => {
    closed = true;
    wait?.cancel();
    await Promise.all([closeStreamClient(reader), closeStreamClient(control)]);
  };
  const abort = () => void closeAll();
  options.signal?.addEventListener('abort', abort, { once: true });

  // Start-up: the stream's last id, with retries until the deadline (as the listener does).
  const deadline = Date.now() + options.startupTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    if (closed) throw new AfcError('start-up cancelled');
    try {
      if (!(await whenReady(control, Math.max(0, Math.min(5000, deadline - Date.now()))))) throw new Error('no answer');
      await whenReady(reader, 5000);
      const info = await streamInfo(control, streamKey);
      lastId = info?.lastId ?? '0-0';
      addedBefore = info?.entriesAdded ?? 0;
      break;
    } catch (cause) {
      const delay = backoffDelay(attempt, 200, options.retryMaxMs);
      if (Date.now() + delay > deadline) {
        await closeAll();
        throw new AfcError(`cannot read the stream ${streamKey} at ${displayOf(options.target)}`, { cause });
      }
      log.warn({ msg: 'cannot reach the stream', err: cause instanceof Error ? cause.message : String(cause), retryInMs: delay });
      const pause = cancellableDelay(delay);
      wait = pause;
      await pause.promise;
    }
  }
  options.signal?.removeEventListener('abort', abort);

  const coverage = new Coverage({ heartbeatMs: options.heartbeatMs, marginMs: CLOCK_MARGIN_MS }, Date.now());
  const flush = (cause: FlushCause) => {
    coverage.flushed(Date.now());
    deliver({ op: 'flush', cause });
  };
  connected = true;
  events.emit('listening', { reconnect: false });
  flush('connect');

  // Only while reading: a host cut off from Redis hears no relay, which says nothing about the relays (on
  // reconnection it reads what they wrote meanwhile, or flushes if that was trimmed).
  const checkCoverage = () => {
    if (!closed && connected && coverage.mustFlush()) {
      log.warn({ msg: 'no relay covered a stretch of time', watermark: new Date(coverage.watermark).toISOString() });
      flush('relay-gap');
    }
  };
  const measureLag = async () => {
    const info = await streamInfo(control, streamKey).catch(() => undefined);
    if (!info) return;
    lagEntries = Math.max(0, info.entriesAdded - addedBefore - read);
    events.emit('consumed', { count: 0, lagMs, lagEntries });
  };
  const coverageTimer = setInterval(() => {
    checkCoverage();
    if (connected && !closed) void measureLag();
  }, options.heartbeatMs);
  coverageTimer.unref();

  const apply = (entries: RawEntries) => {
    const now = Date.now();
    for (const [id, fields] of entries) {
      lastId = id;
      const entry = parseEntry(fields);
      if ('invalid' in entry) {
        events.emit('bad-payload', { reason: `stream entry ${id}: ${entry.invalid}`, bytes: 0, payload: fields.join(' ').slice(0, 200) });
        continue;
      }
      if (coverage.onEntry(entry) === 'lost') {
        log.warn({ msg: 'stream entries lost', relay: entry.relay, seq: entry.seq });
        flush('relay-gap');
      }
      if (entry.op === 'evict' || entry.op === 'flush') {
        if (entry.eid !== '' && seen.has(entry.eid)) continue;
        if (entry.eid !== '') {
          seen.add(entry.eid);
          if (seen.size > REMEMBERED) seen.delete(seen.values().next().value!);
        }
        events.emit('notification');
        deliver(entry.op === 'evict' ? { op: 'evict', ids: entry.ids, src: entry.src, ts: entry.ts, eid: entry.eid } : { op: 'flush', cause: entry.cause, eid: entry.eid });
      }
    }
    if (entries.length > 0) {
      read += entries.length;
      const newest = parseEntry(entries[entries.length - 1][1]);
      lagMs = 'invalid' in newest ? 0 : Math.max(0, now - newest.at);
      lagEntries = Math.max(0, lagEntries - entries.length);
      events.emit('consumed', { count: entries.length, lagMs, lagEntries });
    }
    checkCoverage();
  };

  /**
   * After a lost connection: go on from lastId if nothing it needs was trimmed, else flush. Trimming works
   * on whole blocks from the oldest end, so once the oldest entry left is past lastId, entries after lastId
   * went too (unless lastId ended its block: then this flush is one too many, never one too few).
   */
  const resume = async () => {
    const info = await streamInfo(control, streamKey);
    const trimmed =
      info === undefined ||
      compareIds(info.maxDeletedId, lastId) > 0 ||
      (info.length === 0 && compareIds(info.lastId, lastId) > 0) ||
      (lastId === '0-0' ? info.entriesAdded > info.length : compareIds(info.firstId, lastId) > 0);
    if (trimmed) {
      log.warn({ msg: 'stream entries this host needed are gone', lastId, streamExists: info !== undefined });
      coverage.resetSequences();
      if (info === undefined) lastId = '0-0';
      // What was trimmed is no longer owed: count from the oldest entry still there.
      addedBefore = info === undefined ? 0 : info.entriesAdded - info.length;
      read = 0;
      flush('trimmed');
    }
  };

  const loop = (async () => {
    for (let attempt = 0; !closed; ) {
      try {
        const read = reader.xread('COUNT', BATCH, 'BLOCK', options.heartbeatMs, 'STREAMS', streamKey, lastId) as Promise<Array<[string, RawEntries]> | null>;
        const reply = await unlessClosed(reader, read);
        attempt = 0;
        if (!connected) {
          await resume();
          connected = true;
          events.emit('listening', { reconnect: true });
        }
        apply(reply?.[0]?.[1] ?? []);
      } catch (error) {
        if (closed) return;
        if (connected) {
          connected = false;
          events.emit('disconnected', { reason: error instanceof Error ? error.message : String(error) });
        }
        const pause = cancellableDelay(backoffDelay(attempt++, 100, options.retryMaxMs));
        wait = pause;
        await pause.promise;
      }
    }
  })();

  return {
    get connected() {
      return connected && !closed;
    },
    signing: 'off',
    async close() {
      clearInterval(coverageTimer);
      await closeAll();
      await loop;
    },
  };
}

interface StreamInfo {
  lastId: string;
  /** The oldest entry still there ('0-0' when empty). */
  firstId: string;
  maxDeletedId: string;
  length: number;
  entriesAdded: number;
}

/** What XINFO STREAM says of the stream, or undefined when there is none. */
async function streamInfo(client: StreamClient, key: string): Promise<StreamInfo | undefined> {
  try {
    const reply = (await client.call('XINFO', 'STREAM', key)) as unknown[];
    const field = (name: string) => reply[reply.indexOf(name) + 1];
    const first = field('first-entry') as [string, string[]] | null;
    return {
      lastId: String(field('last-generated-id')),
      firstId: first ? first[0] : '0-0',
      maxDeletedId: reply.includes('max-deleted-entry-id') ? String(field('max-deleted-entry-id')) : '0-0',
      length: Number(field('length')),
      entriesAdded: reply.includes('entries-added') ? Number(field('entries-added')) : Number(field('length')),
    };
  } catch (error) {
    if (error instanceof Error && /no such key/i.test(error.message)) return undefined;
    throw error;
  }
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am !== bm ? (am > bm ? 1 : -1) : as === bs ? 0 : as > bs ? 1 : -1;
}

function displayOf(target: StreamTarget): string {
  return target.display;
}
