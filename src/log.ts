// One JSON line per event (pino), each with a stable `msg` that dashboards and tests can match on.
// Nothing logged may contain a password: URLs go through redactUrl before they reach a log call.
import { pino, type Logger, type DestinationStream } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(options: { level: LogLevel; name: string; pretty?: boolean; destination?: DestinationStream }): Logger {
  const settings = { level: options.level, name: options.name, base: { pid: process.pid } };
  if (options.pretty) {
    // For a person at a terminal; synchronous so nothing is lost when the process exits.
    return pino({ ...settings, transport: undefined }, pretty({ sync: true, colorize: process.stdout.isTTY === true }));
  }
  return pino(settings, options.destination ?? pino.destination({ dest: 1, sync: true }));
}

/** A logger that drops everything: the default for library users who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
