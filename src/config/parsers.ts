// Turns one option's text (from a flag or an environment variable) into a typed value, or throws a
// UsageError (exit 2) that names the option as the user wrote it (`label`: '--ttl', 'AFC_CACHE', or the
// library's option name) and says what would be accepted.
import { UsageError } from '../errors.js';

export type Parser<T> = (text: string, label: string) => T;

/** Node's timers take at most 2^31 - 1 ms; a larger value silently becomes 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function wholeNumber(min: number, max: number, unit = ''): Parser<number> {
  return (text, label) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) {
      throw new UsageError(`${label} must be a whole number${unit} from ${min} to ${max}, got '${text}'`);
    }
    return n;
  };
}

/** A timer length: 1 ms to 2^31 - 1 ms (about 24.8 days). */
export const timerMs = wholeNumber(1, MAX_TIMER_MS, ' of milliseconds');

export const unitFraction: Parser<number> = (text, label) => {
  const n = Number(text);
  if (text.trim() === '' || !(n >= 0 && n <= 1)) throw new UsageError(`${label} must be a number from 0 to 1, got '${text}'`);
  return n;
};

export const identifier: Parser<string> = (text, label) => {
  if (text.length === 0 || text.length > 63 || text.includes('\0')) {
    throw new UsageError(`${label} must be a PostgreSQL name of 1 to 63 characters, got '${text}'`);
  }
  return text;
};

export interface HostPort {
  host: string;
  port: number;
}

export const hostPort: Parser<HostPort> = (text, label) => {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${label} must be HOST:PORT, e.g. 127.0.0.1:9464, got '${text}'`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
};

export function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (text, label) => {
    if (!(values as readonly string[]).includes(text)) throw new UsageError(`${label} must be one of ${values.join(', ')}, got '${text}'`);
    return text as T;
  };
}

export const text: Parser<string> = (value) => value;
