// One table per command declares each option once: its flag, environment variable, default, parser and
// help. The CLI derives its commander flags and --help from it (src/cli/commander-options.ts), the
// library derives its option types, defaults and validation from it (resolveOptions), so the two cannot
// disagree. Only src/cli/ reads the environment; here values arrive already chosen.
import type { Parser } from './parsers.js';

export interface OptionSpec<T> {
  /** commander syntax: '--ttl <seconds>' or '--dry-run' (a switch). */
  flag: string;
  help: string;
  /** Environment variable the CLI reads when the flag is absent. */
  env?: string;
  default: T;
  /** How the default reads in --help, when `String(default)` would not say it. */
  defaultText?: string;
  parse: Parser<T>;
  /** A library value (already typed, but unchecked) → the value; by default its text goes through parse. */
  check?: (value: unknown, label: string) => T;
  /** The flag may be given several times; parse turns one occurrence into a one-element list. */
  repeatable?: boolean;
}

/** Declares one option, keeping its value type. */
export function option<T>(spec: OptionSpec<T>): OptionSpec<T> {
  return spec;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type OptionTable = Record<string, OptionSpec<any>>;

/** The resolved values of a table, each option's own type. */
export type OptionValues<O extends OptionTable> = { [K in keyof O]: O[K] extends OptionSpec<infer T> ? T : never };

/** What a library caller may pass: any subset, in the options' own types (lists may be single values). */
export type OptionInput<O extends OptionTable> = { [K in keyof O]?: O[K] extends OptionSpec<infer T> ? (T extends readonly (infer E)[] ? T | E : T) : never };

/** Fills defaults and validates a library caller's values; errors name the option (`heartbeatMs must be …`). */
export function resolveOptions<O extends OptionTable>(table: O, input: OptionInput<O>): OptionValues<O> {
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) {
    const given = (input as Record<string, unknown>)[name];
    values[name] = given === undefined ? spec.default : checkValue(spec, given, name);
  }
  return values as OptionValues<O>;
}

function checkValue<T>(spec: OptionSpec<T>, value: unknown, label: string): T {
  if (spec.check) return spec.check(value, label);
  if (spec.repeatable) {
    const list = Array.isArray(value) ? value : [value];
    return list.flatMap((item) => spec.parse(String(item), label) as unknown[]) as T;
  }
  return spec.parse(String(value), label);
}
