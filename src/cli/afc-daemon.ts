// `afc-daemon`: flags and environment are read here, once, into DaemonSettings (src/daemon/options.ts);
// then it runs until SIGTERM/SIGINT.
import { Command } from 'commander';
import { pgEnvDisplay } from '../config/database.js';
import { DEFAULT_CHANNEL, KEY_STEM } from '../contract.js';
import { describeError, exitCodeOf } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { DAEMON_OPTIONS, type DaemonSettings } from '../daemon/options.js';
import { runDaemon, type Daemon } from '../daemon/start.js';
import { cacheDisplay } from '../store/cache-url.js';
import { packageVersion } from '../version.js';
import { addOptions, readOptions } from './commander-options.js';
import { commanderExitCode, forCli, type Io } from './options.js';

export interface DaemonProcess {
  /** Resolves with the exit code once the daemon has stopped (or failed to start). */
  exited: Promise<number>;
}

export function runAfcDaemon(argv: string[], env: NodeJS.ProcessEnv, io: Io, signals: NodeJS.EventEmitter = process): DaemonProcess {
  const program = forCli(new Command('afc-daemon'), io, packageVersion())
    .description(
      `Listens on PostgreSQL for the changes afc's triggers report (channel '${DEFAULT_CHANNEL}') and evicts the ` +
        `affected workflows' action-filter entries ('<key-prefix>${KEY_STEM}<id>') from an in-process cache, Redis, ` +
        'a Redis Cluster or a memcached pool. After every (re)connect it flushes all entries, so a notification missed ' +
        'while disconnected never leaves a stale one.',
    )
    .addHelpText('after', '\nExit codes: 0 stopped by SIGTERM/SIGINT, 1 PostgreSQL unreachable at start-up, a store refusing afc (or a fatal error), 2 bad flags or URLs.');
  addOptions(program, DAEMON_OPTIONS);
  let settings: DaemonSettings;
  try {
    program.parse(argv, { from: 'user' });
    const { values, origins } = readOptions(program, DAEMON_OPTIONS, env);
    settings = origins.db === 'default' ? { ...values, db: pgEnvDisplay(env) } : values;
  } catch (error) {
    const code = commanderExitCode(error) ?? reportStartupError(io, error);
    return { exited: Promise.resolve(code) };
  }
  return { exited: start(settings, io, signals) };
}

async function start(settings: DaemonSettings, io: Io, signals: NodeJS.EventEmitter): Promise<number> {
  const log: Logger = await createLogger({ level: settings.logLevel, name: 'afc-daemon', pretty: settings.logFormat === 'pretty' });
  // A signal during start-up must still stop cleanly once start-up is done.
  let daemon: Daemon | undefined;
  let stopRequested: string | undefined;
  let resolveStopped: (code: number) => void = () => {};
  const startup = new AbortController();
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  const onSignal = (signal: string) => {
    if (stopRequested) return;
    stopRequested = signal;
    log.info({ msg: 'stopping', signal });
    if (daemon) void daemon.stop().then(() => resolveStopped(0), () => resolveStopped(1));
    else startup.abort();
  };
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  try {
    log.info({ msg: 'starting', db: settings.db.display, cache: settings.cache ? cacheDisplay(settings.cache) : settings.publish ? 'none' : 'memory', keyPrefix: settings.keyPrefix, channel: settings.channel });
    daemon = await runDaemon(settings, { logger: log, signal: startup.signal });
    if (stopRequested) void daemon.stop().then(() => resolveStopped(0), () => resolveStopped(1));
    return await stopped;
  } catch (error) {
    if (stopRequested) {
      // Asked to stop while still starting: what it had opened is closed, and that is a clean stop.
      log.info({ msg: 'stopped', during: 'start-up' });
      return 0;
    }
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
