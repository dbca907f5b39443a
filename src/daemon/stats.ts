// What the daemon did, counted from its events (events.ts), owned by one daemon instance (no module
// state): plain counters that code and tests read synchronously, and a Prometheus registry (its own, not
// prom-client's global one) whose metrics read those counters when scraped. Only the latency histogram is
// recorded into prom-client directly.
// Node's process metrics (prom-client's defaults: CPU, memory, GC, and an event-loop-delay sampler that
// wakes the process every 10 ms) start the first time `registry` is asked for, i.e. once something can
// scrape it (--http): a daemon nobody scrapes does not pay for them, and they are never started twice.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TABLES, type TableCode } from '../contract.js';
import { pulledCounter } from '../metrics/pulled-counter.js';
import { FLUSH_CAUSES, type FlushCause } from '../model.js';
import type { DaemonEvents } from './events.js';

export class DaemonStats {
  notifications = 0;
  badPayloads = 0;
  reconnects = 0;
  storeErrors = 0;
  /** Second evictions applied (--redelete-after). */
  redeletes = 0;
  /** Workflow entries evicted, by the table whose change named them. */
  readonly evictions: Record<TableCode, number> = { wdcg: 0, dcg: 0, dc: 0 };
  readonly flushes = Object.fromEntries(FLUSH_CAUSES.map((c) => [c, 0])) as Record<FlushCause, number>;
  lastNotificationAt: number | undefined;
  /** Relay: entries appended to the stream (evict, flush, gap), and heartbeats. */
  published = 0;
  relayHeartbeats = 0;
  /** Host: entries read from the stream, and how far behind the newest it was at the last read. */
  consumed = 0;
  lagMs = 0;
  lagEntries = 0;
  listening = false;
  private readonly metrics = new Registry();
  private processMetrics = false;
  private readonly latency: Histogram;

  /** The Prometheus view of these figures, with the process metrics (started on first use). */
  get registry(): Registry {
    if (!this.processMetrics) {
      this.processMetrics = true;
      collectDefaultMetrics({ register: this.metrics, prefix: 'afc_daemon_' });
    }
    return this.metrics;
  }

  /** Counts what `events` reports from now on. */
  constructor(
    readonly storeKind: string,
    events: DaemonEvents,
  ) {
    this.subscribe(events);
    const stats = this;
    const registers = [this.metrics];
    const store = storeKind;
    const counter = (name: string, help: string, value: () => number) => pulledCounter(this.metrics, name, help, value);
    counter('afc_notifications_received_total', 'Notifications received on the channel', () => stats.notifications);
    counter('afc_bad_payloads_total', 'Notifications whose payload could not be decoded (logged, ignored)', () => stats.badPayloads);
    counter('afc_redeletes_total', 'Second, delayed evictions applied (--redelete-after)', () => stats.redeletes);
    counter('afc_reconnects_total', 'Times LISTEN was re-established after losing the connection', () => stats.reconnects);
    counter('afc_stream_published_total', 'Relay: entries appended to the stream (evict, flush, gap)', () => stats.published);
    counter('afc_relay_heartbeats_total', 'Relay: heartbeats appended to the stream', () => stats.relayHeartbeats);
    counter('afc_stream_consumed_total', 'Host: entries read from the stream', () => stats.consumed);
    new Gauge({
      name: 'afc_stream_lag_seconds',
      help: 'Host: age of the newest entry at its last read',
      registers,
      collect() {
        this.set(stats.lagMs / 1000);
      },
    });
    new Gauge({
      name: 'afc_stream_lag_entries',
      help: 'Host: entries added to the stream that it has not read yet (measured every relay heartbeat)',
      registers,
      collect() {
        this.set(stats.lagEntries);
      },
    });
    new Counter({
      name: 'afc_invalidations_total',
      help: 'Workflow entries evicted, by the table whose change named them',
      labelNames: ['table', 'store'],
      registers,
      collect() {
        this.reset();
        for (const t of Object.keys(TABLES) as TableCode[]) this.inc({ table: t, store }, stats.evictions[t]);
      },
    });
    new Counter({
      name: 'afc_flushes_total',
      help: 'Flushes of every entry, by reason',
      labelNames: ['reason', 'store'],
      registers,
      collect() {
        this.reset();
        for (const reason of FLUSH_CAUSES) this.inc({ reason, store }, stats.flushes[reason]);
      },
    });
    new Counter({
      name: 'afc_store_errors_total',
      help: 'Store operations that failed (each turns into a pending flush)',
      labelNames: ['store'],
      registers,
      collect() {
        this.reset();
        this.inc({ store }, stats.storeErrors);
      },
    });
    new Gauge({
      name: 'afc_listener_connected',
      help: '1 while LISTEN is active on PostgreSQL, else 0',
      registers,
      collect() {
        this.set(stats.listening ? 1 : 0);
      },
    });
    new Gauge({
      name: 'afc_last_notification_age_seconds',
      help: 'Seconds since the last notification arrived (-1: none yet)',
      registers,
      collect() {
        this.set(stats.lastNotificationAt === undefined ? -1 : (Date.now() - stats.lastNotificationAt) / 1000);
      },
    });
    this.latency = new Histogram({
      name: 'afc_eviction_latency_seconds',
      help: 'From the trigger running (in the writer transaction) to the eviction being applied',
      labelNames: ['store'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
  }

  private subscribe(events: DaemonEvents): void {
    events.on('notification', () => {
      this.notifications++;
      this.lastNotificationAt = Date.now();
    });
    events.on('bad-payload', () => this.badPayloads++);
    events.on('listening', ({ reconnect }) => {
      this.listening = true;
      if (reconnect) this.reconnects++;
    });
    events.on('disconnected', () => (this.listening = false));
    events.on('stopped', () => (this.listening = false));
    events.on('evicted', ({ src, ids, latenciesMs }) => {
      this.evictions[src] += ids.length;
      for (const ms of latenciesMs) this.latency.observe({ store: this.storeKind }, Math.max(0, ms) / 1000);
    });
    events.on('redeleted', ({ count }) => (this.redeletes += count));
    events.on('flushed', ({ cause }) => this.flushes[cause]++);
    events.on('store-error', () => this.storeErrors++);
    events.on('published', () => this.published++);
    events.on('relay-heartbeat', () => this.relayHeartbeats++);
    events.on('consumed', ({ count, lagMs, lagEntries }) => {
      this.consumed += count;
      this.lagMs = lagMs;
      this.lagEntries = lagEntries;
    });
  }
}
