// The relay's end of the stream (afc-daemon --publish): every invalidation its PostgreSQL source delivers
// is appended to the stream, trimmed to --retention, with heartbeats between. Design rule: a relay only
// claims time it covered. It covers time in sessions: a session runs while its LISTEN is active AND its
// appends succeed; when either fails the session ends, and the next one starts with a gap entry naming
// the stretch it may have missed (from: when it last knew it was fine, to: when the new session began).
// Hosts flush for such a stretch only if no other relay covered it (coverage.ts).
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { FlushCause, Invalidation } from '../model.js';
import type { DaemonEvents } from '../daemon/events.js';
import { entryFields, type StreamEntry } from './entry.js';
import { closeStreamClient, createStreamClient, unlessClosed, type StreamClient } from './stream-client.js';
import type { Retention, StreamTarget } from './stream-target.js';

export interface Publisher {
  publish(invalidation: Invalidation): void;
  /** Resolves once every append in flight is answered. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

type Stamp = 'relay' | 'session' | 'since' | 'seq' | 'at';
/** An entry without what the publisher stamps on it. */
type EntryBody = StreamEntry extends infer E ? (E extends StreamEntry ? Omit<E, Stamp> : never) : never;

export interface PublisherOptions {
  target: StreamTarget;
  streamKey: string;
  retention: Retention;
  /** How often a session announces itself. */
  heartbeatMs: number;
  retryMaxMs: number;
  /** The LISTEN connection's heartbeat: a dead connection is noticed within about two of them. */
  listenerHeartbeatMs: number;
  events: DaemonEvents;
  log: Logger;
}

/** Flushes a relay's own LISTEN brings about stay with it: hosts learn of that stretch through gaps. */
const LOCAL_CAUSES: ReadonlySet<FlushCause> = new Set(['connect', 'reconnect']);

export async function startPublisher(options: PublisherOptions): Promise<Publisher> {
  const { events, log, streamKey } = options;
  const relay = randomBytes(6).toString('hex');
  const client: StreamClient = createStreamClient(options.target, {
    retryMaxMs: options.retryMaxMs,
    commandTimeoutMs: 5000,
    onError: (err) => log.warn({ msg: 'stream error', role: 'relay', err: err.message }),
  });
  let seq = 0;
  let session = 0;
  let since = 0;
  let open = false;
  let listening = false;
  /** The latest time this relay knows it covered (session open, appends answered). */
  let coveredUntil: number | undefined;
  /** Something was dropped while no session was open, since this time. */
  let droppedSince: number | undefined;
  let inFlight = new Set<Promise<unknown>>();
  let closed = false;

  const trim = (): string[] =>
    'maxLen' in options.retention ? ['MAXLEN', '~', String(options.retention.maxLen)] : ['MINID', '~', String(Date.now() - options.retention.maxAgeMs)];

  const append = (entry: EntryBody) => {
    const full = { ...entry, relay, session, since, seq: ++seq, at: Date.now() } as StreamEntry;
    const calledAt = full.at;
    const sent = unlessClosed(client, client.xadd(streamKey, ...trim(), '*', ...entryFields(full)))
      .then(() => {
        coveredUntil = Math.max(coveredUntil ?? 0, calledAt);
        if (full.op === 'hb') events.emit('relay-heartbeat', { relay });
        else events.emit('published', { op: full.op });
      })
      .catch((error: unknown) => endSession(`append failed: ${error instanceof Error ? error.message : String(error)}`));
    inFlight.add(sent);
    void sent.finally(() => inFlight.delete(sent));
  };

  function endSession(reason: string): void {
    if (!open) return;
    open = false;
    log.warn({ msg: 'relay session ended', relay, session, reason });
  }

  function maybeOpen(): void {
    if (open || closed || !listening || client.status !== 'ready') return;
    const previousEnd = coveredUntil === undefined ? droppedSince : Math.min(coveredUntil, droppedSince ?? Infinity);
    session++;
    since = Date.now();
    open = true;
    if (previousEnd !== undefined) append({ op: 'gap', from: previousEnd, to: since });
    droppedSince = undefined;
    append({ op: 'hb' });
    log.info({ msg: 'relay session', relay, session, gapFrom: previousEnd });
  }

  events.on('listening', () => {
    listening = true;
    maybeOpen();
  });
  events.on('disconnected', () => {
    listening = false;
    // The connection may have been dead for up to two of its heartbeats before this was noticed.
    if (open && coveredUntil !== undefined) coveredUntil = Math.min(coveredUntil, Date.now() - 2 * options.listenerHeartbeatMs);
    endSession('LISTEN lost');
  });
  client.on('ready', maybeOpen);
  client.on('close', () => endSession('Redis connection lost'));

  const heartbeat = setInterval(() => {
    if (open) append({ op: 'hb' });
    else maybeOpen();
  }, options.heartbeatMs);
  heartbeat.unref();

  return {
    publish(invalidation) {
      if (closed) return;
      if (invalidation.op === 'flush' && LOCAL_CAUSES.has(invalidation.cause)) return;
      if (!open) {
        droppedSince ??= Date.now();
        return;
      }
      if (invalidation.op === 'flush') append({ op: 'flush', cause: invalidation.cause, eid: invalidation.eid ?? '' });
      else append({ op: 'evict', ids: [...invalidation.ids], src: invalidation.src, ts: invalidation.ts, eid: invalidation.eid ?? '' });
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      await Promise.allSettled([...inFlight]);
      inFlight = new Set();
      await closeStreamClient(client);
    },
  };
}
