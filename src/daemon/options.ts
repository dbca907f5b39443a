// afc-daemon's options, each declared once (src/config/option-table.ts): the CLI builds its flags and
// --help from this table, the library (startDaemon) its types, defaults and validation.
import { dbOption } from '../config/common-options.js';
import { option, resolveOptions, type OptionInput, type OptionValues } from '../config/option-table.js';
import { hostPort, identifier, MAX_TIMER_MS, oneOf, timerMs, unitFraction, wholeNumber, type HostPort } from '../config/parsers.js';
import { DEFAULT_CHANNEL } from '../contract.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import { CACHE_URL_FORMS, parseCacheOption, type CacheChoice } from '../store/cache-url.js';
import { FLUSH_MODES, type FlushMode } from './flush.js';
import { parseRetention, parseStreamTarget, type Retention, type StreamTarget } from '../stream/stream-target.js';

export const DAEMON_OPTIONS = {
  db: dbOption,
  cache: option<CacheChoice | undefined>({
    flag: '--cache <url>',
    env: 'AFC_CACHE',
    help: `where entries live: ${CACHE_URL_FORMS}`,
    default: undefined,
    defaultText: 'memory; none on a relay (--publish)',
    parse: (text) => parseCacheOption(text),
  }),
  publish: option<StreamTarget | undefined>({
    flag: '--publish <url>',
    help: 'relay: LISTEN as usual and append every invalidation to the Redis Stream <key-prefix>{afc}:invalidations there (redis://… or redis+cluster://…), for hosts started with --source',
    default: undefined,
    defaultText: 'off',
    parse: parseStreamTarget,
  }),
  source: option<StreamTarget | undefined>({
    flag: '--source <url>',
    help: 'host: read invalidations from the relays\' Redis Stream instead of LISTENing on PostgreSQL (no PostgreSQL session for it)',
    default: undefined,
    defaultText: 'off (LISTEN)',
    parse: parseStreamTarget,
  }),
  retention: option<Retention>({
    flag: '--retention <n|age>',
    help: "how much of the stream a relay keeps: a count of entries (100000) or an age (10m, 1h); a host further behind than that flushes",
    default: { maxLen: 100_000 },
    defaultText: '100000',
    parse: parseRetention,
  }),
  stallMs: option<number>({
    flag: '--stall-ms <ms>',
    help: "relay: when its event loop has been blocked this long, a watchdog thread ends its LISTEN session (a listener that does not read holds PostgreSQL's NOTIFY queue back); it reconnects once the loop runs",
    default: 10_000,
    parse: timerMs,
  }),
  streamHeartbeatMs: option<number>({
    flag: '--stream-heartbeat-ms <ms>',
    help: 'how often a relay tells the hosts it is still listening (hosts that hear no relay for 3 periods treat the gap as a loss)',
    default: 1000,
    parse: timerMs,
  }),
  keyPrefix: option<string[]>({
    flag: '--key-prefix <str>',
    env: 'AFC_KEY_PREFIX',
    help: "prepended to every key, e.g. ':1:' for a default Django cache; repeat it to evict each entry under several prefixes",
    default: [''],
    defaultText: "''",
    repeatable: true,
    parse: (text) => [text],
  }),
  channel: option<string>({ flag: '--channel <name>', help: 'LISTEN channel (afc migrate --channel sets the triggers\')', default: DEFAULT_CHANNEL, parse: identifier }),
  schema: option<string>({ flag: '--schema <name>', help: 'schema of the workflow_engine_* tables (flush by enumeration, sidecar reads)', default: 'public', parse: identifier }),
  flush: option<FlushMode | undefined>({
    flag: '--flush <mode>',
    help: 'how "flush all" finds entries: scan (list the store\'s keys) or enumerate (every workflow id from the database); memcached and clusters always enumerate',
    default: undefined,
    defaultText: 'scan for memory, enumerate otherwise',
    parse: oneOf(FLUSH_MODES),
  }),
  flushFloorMs: option<number>({
    flag: '--flush-floor-ms <ms>',
    help: 'least time between two flushes: a storm of flush requests (any database user may NOTIFY) costs one flush per floor',
    default: 1000,
    parse: wholeNumber(0, MAX_TIMER_MS, ' of milliseconds'),
  }),
  logLevel: option<LogLevel>({ flag: '--log-level <level>', env: 'AFC_LOG_LEVEL', help: LOG_LEVELS.join(', '), default: 'info', parse: oneOf(LOG_LEVELS) }),
  logFormat: option<'json' | 'pretty'>({ flag: '--log-format <format>', help: 'json lines, or pretty for a terminal', default: 'json', parse: oneOf(['json', 'pretty'] as const) }),
  http: option<HostPort | undefined>({ flag: '--http <host:port>', help: 'serve /metrics (Prometheus), /healthz and /readyz there, e.g. 127.0.0.1:9464', default: undefined, defaultText: 'off', parse: hostPort }),
  serve: option<HostPort | undefined>({
    flag: '--serve <host:port>',
    help: "sidecar: serve GET /v1/action-filters?workflow_id=… through this process's read-through cache",
    default: undefined,
    defaultText: 'off',
    parse: hostPort,
  }),
  redeleteAfterMs: option<number | undefined>({
    flag: '--redelete-after <ms>',
    help: 'evict each batch again this long after the first, for readers that do not guard their fills',
    default: undefined,
    defaultText: 'off',
    parse: timerMs,
  }),
  ttlSeconds: option<number>({ flag: '--ttl <seconds>', help: 'entry lifetime of sidecar fills', default: 300, parse: wholeNumber(1, 315_360_000, ' of seconds') }),
  readFraction: option<number>({ flag: '--read-fraction <0..1>', help: 'share of sidecar reads served through the cache (the rest read the database)', default: 1, parse: unitFraction }),
  auditRate: option<number>({ flag: '--audit-rate <0..1>', help: 'probability that a sidecar cache hit is checked against the database', default: 0, parse: unitFraction }),
  heartbeatMs: option<number>({ flag: '--heartbeat-ms <ms>', help: 'heartbeat period and query timeout on the LISTEN connection', default: 2000, parse: timerMs }),
  retryMaxMs: option<number>({ flag: '--retry-max-ms <ms>', help: 'longest wait between reconnect attempts (PostgreSQL and the store)', default: 5000, parse: timerMs }),
  startupTimeoutMs: option<number>({ flag: '--startup-timeout-ms <ms>', help: 'give up (exit 1) if PostgreSQL is unreachable this long at start', default: 30_000, parse: timerMs }),
  shutdownTimeoutMs: option<number>({ flag: '--shutdown-timeout-ms <ms>', help: 'longest wait for in-flight evictions on SIGTERM', default: 10_000, parse: timerMs }),
};

export type DaemonSettings = OptionValues<typeof DAEMON_OPTIONS>;

/**
 * What startDaemon accepts: any option, in its own type, except those parsed from text by nature (URLs
 * and HOST:PORT addresses are given as strings).
 */
export type DaemonSettingsInput = Omit<OptionInput<typeof DAEMON_OPTIONS>, 'db' | 'cache' | 'publish' | 'source' | 'retention' | 'http' | 'serve'> & {
  db?: string;
  cache?: string;
  /** Relay: the Redis URL of the stream to append to. */
  publish?: string;
  /** Host: the Redis URL of the stream to read instead of LISTENing. */
  source?: string;
  /** '100000' (entries) or '10m' (age). */
  retention?: string;
  /** 'HOST:PORT' (port 0 picks a free one). */
  http?: string;
  serve?: string;
};

export function resolveDaemonSettings(input: DaemonSettingsInput): DaemonSettings {
  return resolveOptions(DAEMON_OPTIONS, input as OptionInput<typeof DAEMON_OPTIONS>);
}
