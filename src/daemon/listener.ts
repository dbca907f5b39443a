// LISTENs on the channel through pg-listen and keeps doing so, whatever happens to the connection.
// Design rule: a missed notification must never leave a stale entry, so `onListening` runs after every
// connect and reconnect, once LISTEN is active, and the daemon flushes there.
//
// pg-listen 1.7.0 pitfalls handled here (design.md §4): its default retryTimeout gives up after 3 s (we
// pass a huge one); it JSON.parses payloads (we pass identity and decode ourselves); it has no timeout on
// its heartbeat query (we set query_timeout and TCP keepalive); it does not retry the first connect (we
// do, up to a deadline); a subscriber whose reconnect failed is dead (we replace it); close() during a
// reconnect does not stop the reconnect (our retryInterval throws once closed, and a subscriber that
// connects after close is closed again).
import pgListen, { type Subscriber } from 'pg-listen';
import { clientConfig } from '../config/database.js';
import { AfcError } from '../errors.js';
import type { Logger } from '../log.js';
import { backoffDelay, cancellableDelay } from './backoff.js';
import type { DaemonSettings } from './options.js';
import { sessionOverrides } from './session-timeouts.js';

// pg-listen is CommonJS with an ES-style default export: under ESM it sits on `.default`.
const createSubscriber = pgListen.default;

/** The daemon's own settings for the LISTEN connection (heartbeatMs also bounds every query on it). */
export type ListenerOptions = Pick<DaemonSettings, 'db' | 'channel' | 'heartbeatMs' | 'retryMaxMs' | 'startupTimeoutMs'> & {
  log: Logger;
  /** The LISTEN session's application_name: 'afc-daemon', or a relay's own name (its watchdog finds it by it). */
  applicationName?: string;
};

export interface ListenerHandlers {
  onNotification(payload: string): void;
  /** LISTEN is active on a new connection; `reconnect` is false only for the very first one. */
  onListening(info: { reconnect: boolean }): void;
  onDisconnected(reason: string): void;
}

export class Listener {
  private subscriber: Subscriber | undefined;
  private closed = false;
  private connectedNow = false;
  private pendingWait: { cancel: () => void } | undefined;
  /** `options` for the LISTEN session's startup (session-timeouts.ts); probed once, before the first LISTEN. */
  private sessionOptions: string | undefined | null = null;
  /** Subscribers given up on; if pg-listen's own reconnect revives one, it is closed again. */
  private readonly retired = new WeakSet<Subscriber>();
  /** Subscribers whose first connect + LISTEN (ours to report) is done; 'connected' after that is a reconnect. */
  private readonly established = new WeakSet<Subscriber>();

  private constructor(
    private readonly options: ListenerOptions,
    private readonly handlers: ListenerHandlers,
  ) {}

  /**
   * Connects and LISTENs, retrying until `startupTimeoutMs`; rejects with an AfcError after that, or at
   * once when `signal` aborts (SIGTERM during start-up must not wait out the retries).
   */
  static async start(options: ListenerOptions, handlers: ListenerHandlers, signal?: AbortSignal): Promise<Listener> {
    const listener = new Listener(options, handlers);
    const abort = () => void listener.close();
    if (signal?.aborted) abort();
    signal?.addEventListener('abort', abort, { once: true });
    try {
      await listener.connectLoop(Date.now() + options.startupTimeoutMs);
    } finally {
      signal?.removeEventListener('abort', abort);
    }
    if (listener.closed) throw new AfcError('start-up cancelled');
    handlers.onListening({ reconnect: false });
    return listener;
  }

  get connected(): boolean {
    return this.connectedNow && !this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.connectedNow = false;
    this.pendingWait?.cancel();
    if (this.subscriber) await this.retire(this.subscriber);
  }

  private newSubscriber(): Subscriber {
    const { heartbeatMs, retryMaxMs } = this.options;
    const subscriber: Subscriber = createSubscriber(
      clientConfig(this.options.db, this.options.applicationName ?? 'afc-daemon', {
        ...(this.sessionOptions ? { options: this.sessionOptions } : {}),
        query_timeout: heartbeatMs,
        connectionTimeoutMillis: Math.max(heartbeatMs, 5000),
        keepAlive: true,
        keepAliveInitialDelayMillis: Math.min(heartbeatMs, 10_000),
      }),
      {
        paranoidChecking: heartbeatMs,
        retryTimeout: Number.MAX_SAFE_INTEGER,
        retryInterval: (attempt: number) => {
          if (this.closed || this.retired.has(subscriber)) throw new Error('afc listener closed');
          return backoffDelay(attempt, 100, retryMaxMs);
        },
        parse: (payload: string) => payload,
      },
    );
    subscriber.notifications.on(this.options.channel, (payload: string | undefined) => this.handlers.onNotification(payload ?? ''));
    subscriber.events.on('reconnect', (attempt) => {
      // A subscriber that never got its LISTEN up (a failed start-up attempt) has lost nothing to report.
      if (attempt !== 1 || !this.established.has(subscriber)) return;
      this.connectedNow = false;
      this.options.log.warn({ msg: 'listener disconnected', reconnecting: true });
      this.handlers.onDisconnected('connection lost');
    });
    subscriber.events.on('connected', () => {
      // pg-listen emits this on its first connect (before our LISTEN: connectLoop reports that one) and
      // after re-LISTENing on a new connection.
      if (!this.established.has(subscriber)) return;
      if (this.closed || subscriber !== this.subscriber) {
        this.retire(subscriber);
        return;
      }
      this.connectedNow = true;
      this.options.log.info({ msg: 'listener reconnected', channel: this.options.channel });
      this.handlers.onListening({ reconnect: true });
    });
    subscriber.events.on('error', (error) => {
      // Only a failed re-initialisation reaches here (payloads are not parsed): this subscriber is dead.
      this.retire(subscriber);
      if (this.closed || subscriber !== this.subscriber) return;
      this.connectedNow = false;
      this.options.log.error({ msg: 'listener failed', err: error });
      this.handlers.onDisconnected('listener failed');
      void this.connectLoop(Number.POSITIVE_INFINITY).then(
        () => {
          if (!this.closed) this.handlers.onListening({ reconnect: true });
        },
        () => undefined,
      );
    });
    return subscriber;
  }

  private async retire(subscriber: Subscriber): Promise<void> {
    this.retired.add(subscriber);
    await subscriber.close().catch(() => undefined);
  }

  /** Replaces the subscriber with a freshly connected one that LISTENs, retrying with backoff. */
  private async connectLoop(deadline: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new AfcError('listener closed');
      let subscriber: Subscriber | undefined;
      try {
        if (this.sessionOptions === null) {
          this.sessionOptions = await sessionOverrides(this.options.db, Math.max(this.options.heartbeatMs, 5000), this.options.log);
        }
        if (this.closed) throw new AfcError('listener closed');
        subscriber = this.newSubscriber();
        this.subscriber = subscriber;
        await subscriber.connect();
        await subscriber.listenTo(this.options.channel);
        this.established.add(subscriber);
        this.connectedNow = true;
        this.options.log.info({ msg: 'listening', channel: this.options.channel, db: this.options.db.display });
        return;
      } catch (cause) {
        this.subscriber = undefined;
        if (subscriber) await this.retire(subscriber);
        if (this.closed) throw new AfcError('listener closed', { cause });
        const delay = backoffDelay(attempt, 200, this.options.retryMaxMs);
        if (Date.now() + delay > deadline) {
          throw new AfcError(`cannot LISTEN on PostgreSQL at ${this.options.db.display}`, { cause });
        }
        this.options.log.warn({ msg: 'cannot connect to PostgreSQL', err: describe(cause), retryInMs: delay });
        const wait = cancellableDelay(delay);
        this.pendingWait = wait;
        await wait.promise;
      }
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
