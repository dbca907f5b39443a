// Option parsers shared by the afc and afc-daemon command lines: each turns a flag into a typed value or
// a UsageError (exit 2) that says how to fix it.
import { CommanderError, type Command } from 'commander';
import { UsageError } from '../errors.js';

export function positiveInt(flag: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
      throw new UsageError(`${flag} must be a positive whole number, got '${value}'`);
    }
    return Number(value);
  };
}

export function unitFraction(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new UsageError(`${flag} must be a number from 0 to 1, got '${value}'`);
    return n;
  };
}

export function identifier(flag: string): (value: string) => string {
  return (value) => {
    if (value.length === 0 || value.length > 63 || value.includes('\0')) {
      throw new UsageError(`${flag} must be a PostgreSQL name of 1 to 63 characters, got '${value}'`);
    }
    return value;
  };
}

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Makes commander report through `io` and throw instead of exiting, so the caller picks the exit code. */
export function forCli(program: Command, io: Io): Command {
  return program
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run with --help for usage)');
}

/** Exit code for an error thrown out of commander's parse: 0 for --help/--version, 2 for bad usage. */
export function commanderExitCode(error: unknown): number | undefined {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
  return undefined;
}
