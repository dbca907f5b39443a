// What both command lines share: where their output goes, and how commander is made to report through
// it and leave the exit code to us.
import { CommanderError, type Command } from 'commander';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Makes commander report through `io` and throw instead of exiting, so the caller picks the exit code. */
export function forCli(program: Command, io: Io, version: string): Command {
  return program
    .version(version, '-V, --version', 'print the version and exit')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run with --help for usage)');
}

/** Exit code for an error thrown out of commander's parse: 0 for --help/--version, 2 for bad usage. */
export function commanderExitCode(error: unknown): number | undefined {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
  return undefined;
}
