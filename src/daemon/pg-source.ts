// The PostgreSQL source: LISTENs on the channel (listener.ts) and turns each payload into an
// invalidation for the evictors. Design rule: a missed notification must never leave a stale entry, so
// every connect and reconnect delivers a flush, after LISTEN is active. A payload it cannot decode is
// reported (bad-payload) and evicts nothing.
import { decode } from '../codec.js';
import type { FlushCause, Invalidation } from '../model.js';
import type { DaemonEvents } from './events.js';
import { Listener, type ListenerOptions } from './listener.js';

export interface Source {
  /** Invalidations are flowing right now (LISTEN active). */
  readonly connected: boolean;
  close(): Promise<void>;
}

export type PgSourceOptions = ListenerOptions & {
  events: DaemonEvents;
  /** Where decoded invalidations go (the evictors). */
  deliver: (invalidation: Invalidation) => void;
  /** Aborting it ends start-up retries at once. */
  signal?: AbortSignal;
};

const TRIGGER_FLUSH: Record<string, FlushCause> = { truncate: 'truncate', overflow: 'overflow', error: 'trigger-error' };

/** Connects and LISTENs (retrying until startupTimeoutMs, then rejecting); delivers from then on. */
export async function startPgSource(options: PgSourceOptions): Promise<Source> {
  const { events, deliver } = options;
  const listener = await Listener.start(
    options,
    {
    onNotification(payload) {
      events.emit('notification');
      const decoded = decode(payload);
      if (!decoded.ok) {
        events.emit('bad-payload', { reason: decoded.error, bytes: Buffer.byteLength(payload), payload: payload.slice(0, 200) });
        return;
      }
      const m = decoded.message;
      deliver(m.op === 'flush' ? { op: 'flush', cause: TRIGGER_FLUSH[m.reason] } : m);
    },
    onListening({ reconnect }) {
      events.emit('listening', { reconnect });
      deliver({ op: 'flush', cause: reconnect ? 'reconnect' : 'connect' });
    },
    onDisconnected(reason) {
      events.emit('disconnected', { reason });
    },
    },
    options.signal,
  );
  return {
    get connected() {
      return listener.connected;
    },
    close: () => listener.close(),
  };
}
