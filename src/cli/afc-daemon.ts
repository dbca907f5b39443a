// `afc-daemon`: flags and env are parsed here, once, into a DaemonConfig; then it runs until SIGTERM/SIGINT.
import { Command, Option } from 'commander';
import { DEFAULT_CHANNEL, KEY_STEM } from '../contract.js';
import { describeError, exitCodeOf } from '../errors.js';
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from '../log.js';
import { DAEMON_DEFAULTS, resolveDaemonConfig } from '../daemon/config.js';
import { runDaemon, type Daemon } from '../daemon/daemon.js';
import { UsageError } from '../errors.js';
import { commanderExitCode, forCli, positiveInt, unitFraction, type Io } from './options.js';

interface DaemonFlags {
  db?: string;
  cache?: string;
  keyPrefix?: string;
  channel?: string;
  logLevel?: string;
  heartbeatMs: number;
  retryMaxMs: number;
  startupTimeoutMs: number;
  shutdownTimeoutMs: number;
  http?: string;
  serve?: string;
  redeleteAfter?: number;
  ttl: number;
  readFraction: number;
  auditRate: number;
  logFormat: 'json' | 'pretty';
}

export interface DaemonProcess {
  /** Resolves with the exit code once the daemon has stopped (or failed to start). */
  exited: Promise<number>;
}

export function runAfcDaemon(argv: string[], env: NodeJS.ProcessEnv, io: Io, signals: NodeJS.EventEmitter = process): DaemonProcess {
  let flags: DaemonFlags | undefined;
  const program = forCli(new Command('afc-daemon'), io)
    .description(
      `Listens on PostgreSQL for the changes afc's triggers report (channel '${DEFAULT_CHANNEL}') and evicts the ` +
        `affected workflows' action-filter entries ('<key-prefix>${KEY_STEM}<id>') from an in-process cache or Redis. ` +
        'After every (re)connect it flushes all entries, so a notification missed while disconnected never leaves a stale one.',
    )
    .option('--db <url>', 'PostgreSQL URL; default $DATABASE_URL, then libpq PG* variables')
    .option('--cache <memory|redis://host:port/db>', 'where entries live; default $AFC_CACHE, then memory')
    .option('--key-prefix <str>', "prepended to every key, e.g. ':1:' for a default Django cache; default $AFC_KEY_PREFIX, then ''")
    .option('--channel <name>', `LISTEN channel (default ${DEFAULT_CHANNEL})`)
    .addOption(new Option('--log-level <level>', 'default $AFC_LOG_LEVEL, then info').choices(LOG_LEVELS))
    .addOption(new Option('--log-format <format>', 'json lines, or pretty for a terminal').choices(['json', 'pretty']).default('json'))
    .option('--http <host:port>', 'serve /metrics (Prometheus), /healthz and /readyz there, e.g. 127.0.0.1:9464 (off by default)')
    .option('--serve <host:port>', 'sidecar: serve GET /v1/action-filters?workflow_id=… through this process\'s read-through cache')
    .addOption(new Option('--redelete-after <ms>', 'evict each batch again this long after the first, for readers that do not guard their fills').argParser(positiveInt('--redelete-after')))
    .addOption(new Option('--ttl <seconds>', 'entry lifetime of sidecar fills').argParser(positiveInt('--ttl')).default(300))
    .addOption(new Option('--read-fraction <0..1>', 'share of sidecar reads served through the cache (the rest read the database)').argParser(unitFraction('--read-fraction')).default(1))
    .addOption(new Option('--audit-rate <0..1>', 'probability that a sidecar cache hit is checked against the database').argParser(unitFraction('--audit-rate')).default(0))
    .addOption(new Option('--heartbeat-ms <ms>', 'heartbeat period and query timeout on the LISTEN connection').argParser(positiveInt('--heartbeat-ms')).default(DAEMON_DEFAULTS.heartbeatMs))
    .addOption(new Option('--retry-max-ms <ms>', 'longest wait between reconnect attempts').argParser(positiveInt('--retry-max-ms')).default(DAEMON_DEFAULTS.retryMaxMs))
    .addOption(new Option('--startup-timeout-ms <ms>', 'give up (exit 1) if PostgreSQL is unreachable this long at start').argParser(positiveInt('--startup-timeout-ms')).default(DAEMON_DEFAULTS.startupTimeoutMs))
    .addOption(new Option('--shutdown-timeout-ms <ms>', 'longest wait for in-flight evictions on SIGTERM').argParser(positiveInt('--shutdown-timeout-ms')).default(DAEMON_DEFAULTS.shutdownTimeoutMs))
    .addHelpText('after', '\nExit codes: 0 stopped by SIGTERM/SIGINT, 1 PostgreSQL unreachable at start-up (or a fatal error), 2 bad flags or URLs.')
    .action((opts: DaemonFlags) => {
      flags = opts;
    });
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    const code = commanderExitCode(error) ?? reportStartupError(io, error);
    return { exited: Promise.resolve(code) };
  }
  if (!flags) return { exited: Promise.resolve(0) };
  return { exited: start(flags, env, io, signals) };
}

async function start(flags: DaemonFlags, env: NodeJS.ProcessEnv, io: Io, signals: NodeJS.EventEmitter): Promise<number> {
  let log: Logger;
  let config;
  try {
    const level = flags.logLevel ?? env.AFC_LOG_LEVEL ?? 'info';
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`AFC_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got '${level}'`);
    log = await createLogger({ level: level as LogLevel, name: 'afc-daemon', pretty: flags.logFormat === 'pretty' });
    config = resolveDaemonConfig(
      {
        db: flags.db,
        cache: flags.cache ?? (env.AFC_CACHE || undefined),
        keyPrefix: flags.keyPrefix ?? env.AFC_KEY_PREFIX,
        channel: flags.channel,
        heartbeatMs: flags.heartbeatMs,
        retryMaxMs: flags.retryMaxMs,
        startupTimeoutMs: flags.startupTimeoutMs,
        shutdownTimeoutMs: flags.shutdownTimeoutMs,
        http: flags.http,
        serve: flags.serve,
        redeleteAfterMs: flags.redeleteAfter,
        ttlSeconds: flags.ttl,
        readFraction: flags.readFraction,
        auditRate: flags.auditRate,
      },
      env,
    );
  } catch (error) {
    return reportStartupError(io, error);
  }
  // A signal during start-up must still stop cleanly once start-up is done.
  let daemon: Daemon | undefined;
  let stopRequested: string | undefined;
  let resolveStopped: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  const onSignal = (signal: string) => {
    if (stopRequested) return;
    stopRequested = signal;
    log.info({ msg: 'stopping', signal });
    if (daemon) void daemon.stop().then(() => resolveStopped(0), () => resolveStopped(1));
  };
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  try {
    const cache = config.cache.kind === 'memory' ? 'memory' : config.cache.display;
    log.info({ msg: 'starting', db: config.db.display, cache, keyPrefix: config.keyPrefix, channel: config.channel });
    daemon = await runDaemon(config, { logger: log });
    if (stopRequested) void daemon.stop().then(() => resolveStopped(0), () => resolveStopped(1));
    return await stopped;
  } catch (error) {
    log.fatal({ msg: 'startup failed', err: describeError(error) });
    return reportStartupError(io, error);
  } finally {
    signals.off('SIGTERM', onTerm);
    signals.off('SIGINT', onInt);
  }
}

function reportStartupError(io: Io, error: unknown): number {
  io.err(`afc-daemon: error: ${describeError(error)}\n`);
  return exitCodeOf(error);
}
