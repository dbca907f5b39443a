// The daemon's log lines, from its events: one JSON line each, with the stable `msg` that dashboards and
// tests match on. Per-batch eviction lines are built only at debug level: they would cost the hot path
// even when nobody reads them.
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { rateLimit } from '../log-rate.js';
import type { DaemonEvents } from './events.js';

export function logEvents(events: DaemonEvents, log: Logger): void {
  // Every bad payload is counted (afc_bad_payloads_total); only the first few of each 10 s are logged.
  const badPayloads = rateLimit({
    perWindow: 10,
    windowMs: 10_000,
    onDropped: (count, windowMs) => log.warn({ msg: 'bad payloads not logged', count, windowMs }),
  });
  events.on('bad-payload', ({ reason, bytes, payload }) => {
    if (badPayloads.allow()) log.warn({ msg: 'bad payload', reason, bytes, payload });
  });
  events.on('evicted', ({ src, ids }) => {
    if (log.isLevelEnabled('debug')) log.debug({ msg: 'evicted', src, count: ids.length, ids: ids.slice(0, 50) });
  });
  events.on('flushed', ({ store, cause, ms }) => log.info({ msg: 'flushed', cause, store, ms }));
  events.on('store-error', ({ store, error, retryInMs, pendingFlush }) =>
    log.error({ msg: 'store unavailable', store, err: describeError(error), retryInMs, pendingFlush }),
  );
  events.on('store-recovered', ({ store }) => log.info({ msg: 'store reconnected', store }));
  events.on('stopped', () => {
    badPayloads.close();
    log.info({ msg: 'stopped' });
  });
}
