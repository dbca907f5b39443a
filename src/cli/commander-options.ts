// Turns an option table (src/config/option-table.ts) into commander flags with --help that shows each
// default and environment variable, and reads the values back: the flag, else its environment variable,
// else the default. This is where the environment is read, and nowhere else.
import { Command, Option } from 'commander';
import type { OptionSpec, OptionTable, OptionValues } from '../config/option-table.js';

const isSwitch = (spec: OptionSpec<unknown>) => !/[<[]/.test(spec.flag);
const flagName = (spec: OptionSpec<unknown>) => spec.flag.split(/[ ,]/)[0];

export function addOptions(command: Command, table: OptionTable): Command {
  for (const spec of Object.values(table)) {
    const notes = [
      spec.env && `env ${spec.env}`,
      !isSwitch(spec) && `default: ${spec.defaultText ?? String(spec.default)}`,
      spec.repeatable && 'repeatable',
    ].filter(Boolean);
    const option = new Option(spec.flag, notes.length > 0 ? `${spec.help} (${notes.join('; ')})` : spec.help);
    if (!isSwitch(spec)) {
      const flag = flagName(spec);
      option.argParser((text: string, previous: unknown) => {
        const value = spec.parse(text, flag);
        return spec.repeatable && Array.isArray(previous) ? [...previous, ...(value as unknown[])] : value;
      });
    }
    command.addOption(option);
  }
  return command;
}

/** Where each value came from: a flag, an environment variable, or the default. */
export type Origins<O extends OptionTable> = Record<keyof O, 'flag' | 'env' | 'default'>;

export function readOptions<O extends OptionTable>(command: Command, table: O, env: NodeJS.ProcessEnv): { values: OptionValues<O>; origins: Origins<O> } {
  const given = command.opts();
  const values: Record<string, unknown> = {};
  const origins: Record<string, 'flag' | 'env' | 'default'> = {};
  for (const [name, spec] of Object.entries(table)) {
    const attribute = new Option(spec.flag).attributeName();
    const fromEnv = spec.env === undefined ? undefined : env[spec.env];
    if (given[attribute] !== undefined) {
      values[name] = given[attribute];
      origins[name] = 'flag';
    } else if (fromEnv !== undefined && fromEnv !== '') {
      values[name] = spec.parse(fromEnv, spec.env!);
      origins[name] = 'env';
    } else {
      values[name] = spec.default;
      origins[name] = 'default';
    }
  }
  return { values: values as OptionValues<O>, origins: origins as Origins<O> };
}
