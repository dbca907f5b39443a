// One JSON line per event (pino), each with a stable `msg` that dashboards and tests can match on.
// Nothing logged may contain a password: URLs go through redactUrl before they reach a log call.
// pino-pretty is loaded only when pretty output is asked for: a daemon logging JSON never pays for it.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export async function createLogger(options: { level: LogLevel; name: string; pretty?: boolean; destination?: DestinationStream }): Promise<Logger> {
  const settings = { level: options.level, name: options.name, base: { pid: process.pid } };
  if (options.pretty) {
    const { default: pretty } = await import('pino-pretty');
    // For a person at a terminal; synchronous so nothing is lost when the process exits.
    return pino({ ...settings, transport: undefined }, pretty({ sync: true, colorize: process.stdout.isTTY === true }));
  }
  return pino(settings, options.destination ?? pino.destination({ dest: 1, sync: true }));
}

/** A logger that drops everything: the default for library users who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
