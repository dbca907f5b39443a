// The PostgreSQL source: LISTENs on the channel (listener.ts) and turns each payload into an
// invalidation for the evictors. Design rule: a missed notification must never leave a stale entry, so
// every connect and reconnect delivers a flush, after LISTEN is active. A payload it cannot decode is
// reported (bad-payload) and evicts nothing.
import { decode } from '../codec.js';
import type { FlushCause, Invalidation } from '../model.js';
import type { DaemonEvents } from './events.js';
import { AfcError, describeError } from '../errors.js';
import { rateLimit } from '../log-rate.js';
import { Listener, type ListenerOptions } from './listener.js';
import { Verifier, type SigningState } from './signing.js';

export interface Source {
  /** Invalidations are flowing right now (LISTEN active). */
  readonly connected: boolean;
  /** Whether payloads are signed and checked (signing.ts). */
  readonly signing: SigningState['state'];
  close(): Promise<void>;
}

export type PgSourceOptions = ListenerOptions & {
  /** Schema of afc_secret (the signing key). */
  schema: string;
  events: DaemonEvents;
  /** Where decoded invalidations go (the evictors). */
  deliver: (invalidation: Invalidation) => void;
  /** Aborting it ends start-up retries at once. */
  signal?: AbortSignal;
};

const TRIGGER_FLUSH: Record<string, FlushCause> = { truncate: 'truncate', overflow: 'overflow', error: 'trigger-error' };

/**
 * Connects and LISTENs (retrying until startupTimeoutMs, then rejecting), reads whether payloads are
 * signed (signing.ts), and delivers from then on. A role that cannot read the signing key of a database
 * that signs fails start-up: it could only flush.
 */
export async function startPgSource(options: PgSourceOptions): Promise<Source> {
  const { events, deliver, log } = options;
  const verifier = new Verifier(options);
  // One warning a minute for signed payloads this daemon has no key for (a wrong --schema, most likely).
  const unkeyed = rateLimit({ perWindow: 1, windowMs: 60_000, onDropped: () => undefined });
  let started = false;
  /** LISTEN is up and the key re-read: what `connected` reports (readiness, and the flush has been asked for). */
  let delivering = false;
  const listened = (reconnect: boolean) => {
    delivering = true;
    events.emit('listening', { reconnect });
    deliver({ op: 'flush', cause: reconnect ? 'reconnect' : 'connect' });
  };
  const listener = await Listener.start(
    options,
    {
      onNotification(payload) {
        events.emit('notification');
        const decoded = decode(payload);
        const verdict = decoded.ok ? verifier.check(decoded) : { rejected: decoded.error };
        if (verdict === 'flush' && decoded.ok && decoded.signature && verifier.signing.state === 'off' && unkeyed.allow()) {
          log.warn({ msg: 'signed payload without a key', schema: options.schema, hint: 'the triggers sign, but this schema has no afc_secret: is --schema the one afc is installed in?' });
        }
        if (typeof verdict === 'object') {
          events.emit('bad-payload', { reason: verdict.rejected, bytes: Buffer.byteLength(payload), payload: payload.slice(0, 200) });
        } else if (verdict === 'flush' || !decoded.ok) {
          deliver({ op: 'flush', cause: 'unverified' });
        } else {
          const m = decoded.message;
          const eid = decoded.signature?.sig;
          deliver(m.op === 'flush' ? { op: 'flush', cause: TRIGGER_FLUSH[m.reason], eid } : { ...m, eid });
        }
      },
      onListening({ reconnect }) {
        // The first one is reported below, once the signing key is read; later ones re-read it first.
        if (!started) return;
        void verifier
          .refresh()
          .catch((error: unknown) => log.error({ msg: 'cannot read the signing key', err: describeError(error) }))
          .finally(() => listened(reconnect));
      },
      onDisconnected(reason) {
        delivering = false;
        events.emit('disconnected', { reason });
      },
    },
    options.signal,
  );
  try {
    await verifier.refresh();
    const signing = verifier.signing;
    if (signing.state === 'unreadable') throw new AfcError(signing.reason);
    log.info({ msg: 'payload signing', state: signing.state });
  } catch (error) {
    await listener.close();
    throw error;
  }
  started = true;
  listened(false);
  return {
    get connected() {
      return listener.connected && delivering;
    },
    get signing() {
      return verifier.signing.state;
    },
    close: async () => {
      unkeyed.close();
      await listener.close();
    },
  };
}
