// `afc`: installs (migrate) and removes (uninstall) the triggers. Flags and env are parsed here, once.
import { Command } from 'commander';
import pg from 'pg';
import { clientConfig, pgEnvDisplay, type DatabaseConfig } from '../config/database.js';
import type { OptionTable, OptionValues } from '../config/option-table.js';
import { DEFAULT_CHANNEL } from '../contract.js';
import { AfcError, describeError, exitCodeOf } from '../errors.js';
import { migrate, uninstall } from '../migrate/migrator.js';
import { formatStatus, readStatus } from '../status/status.js';
import { runDemo } from '../demo/demo.js';
import { packageVersion } from '../version.js';
import { DEMO_OPTIONS, MIGRATE_OPTIONS, STATUS_OPTIONS, UNINSTALL_OPTIONS } from './afc-options.js';
import { addOptions, readOptions } from './commander-options.js';
import { commanderExitCode, forCli, type Io } from './options.js';

export async function runAfc(argv: string[], env: NodeJS.ProcessEnv, io: Io, signals: NodeJS.EventEmitter = process): Promise<number> {
  let exitCode = 0;
  const program = forCli(new Command('afc'), io, packageVersion())
    .description(
      'Keeps caches of Sentry workflow action filters correct: installs PostgreSQL triggers that NOTIFY ' +
        `channel '${DEFAULT_CHANNEL}' (or --channel) with the workflows each committed change makes stale. Run afc-daemon to evict them.`,
    )
    .addHelpText('after', '\nStart with: npx afc demo\nExit codes: 0 ok, 1 failed (database unreachable, not a Sentry database, table busy, afc not installed there), 2 bad usage, 130 demo interrupted.');
  // Each subcommand: its table's flags, and its action given the values read from flags, env and defaults.
  const command = <O extends OptionTable>(name: string, description: string, table: O, action: (values: OptionValues<O>) => Promise<void>) => {
    const sub = addOptions(program.command(name).description(description), table);
    sub.action(async () => {
      const { values, origins } = readOptions(sub, table, env);
      const withDb = 'db' in values && origins.db === 'default' && values.db !== undefined ? { ...values, db: pgEnvDisplay(env) } : values;
      await action(withDb);
    });
  };

  command('migrate', 'install or upgrade the triggers (idempotent; one transaction; safe to run from several hosts at once)', MIGRATE_OPTIONS, async (opts) => {
    const result = await withClient(opts.db, 'afc-migrate', (client) =>
      migrate(client, { schema: opts.schema, dryRun: opts.dryRun, lockTimeoutMs: opts.lockTimeout, channel: opts.channel, daemonRoles: opts.daemonRole }),
    );
    for (const warning of result.warnings) io.err(`afc: warning: ${warning}\n`);
    if (opts.dryRun) {
      io.out(result.sql ? `${result.sql}\n` : `-- afc is up to date in schema ${opts.schema} (version ${result.version}, channel ${result.channel}); nothing would run\n`);
      io.out(`-- dry run: nothing was changed\n`);
      return;
    }
    for (const m of result.applied) io.out(`applied migration ${m.version} (${m.name}) to schema ${opts.schema}\n`);
    for (const role of opts.daemonRole) io.out(`role ${role} may read the payload signing key of schema ${opts.schema}\n`);
    if (result.channelChanged) io.out(`the triggers now NOTIFY channel ${result.channel} (was ${result.channelChanged.from ?? 'none'})\n`);
    if (result.applied.length === 0 && !result.channelChanged) {
      io.out(`afc is up to date in schema ${opts.schema} (version ${result.version}, channel ${result.channel}); nothing to do\n`);
    } else {
      io.out(`afc installed in ${opts.db.display}, schema ${opts.schema}, version ${result.version}, channel ${result.channel}\n`);
    }
  });

  command('uninstall', 'remove every trigger, function and table afc created', UNINSTALL_OPTIONS, async (opts) => {
    const schemas = await withClient(opts.db, 'afc-uninstall', (client) => uninstall(client, { schema: opts.schema, lockTimeoutMs: opts.lockTimeout }));
    io.out(schemas.length === 0 ? 'afc was not installed; nothing to do\n' : `afc removed from schema ${schemas.join(', ')}\n`);
  });

  command(
    'status',
    'report whether afc is installed, its triggers enabled and on the expected channel, daemons listening, the NOTIFY queue healthy (exit 1 on a problem)',
    STATUS_OPTIONS,
    async (opts) => {
      const dialledPort = opts.db.url ? Number(new URL(opts.db.url).port || 5432) : Number(env.PGPORT || 5432);
      const status = await withClient(opts.db, 'afc-status', (client) => readStatus(client, { schema: opts.schema, dialledPort, channel: opts.channel }));
      io.out(opts.json ? `${JSON.stringify({ database: opts.db.display, ...status }, null, 2)}\n` : formatStatus(status, opts.db.display));
      if (status.problems.length > 0) exitCode = 1;
    },
  );

  command('demo', 'see afc work: an embedded PostgreSQL (or --db, in a fresh schema), a few workflows, edits, and what each evicts', DEMO_OPTIONS, async (opts) => {
    let onSignal: () => void = () => {};
    const interrupted = new Promise<void>((resolve) => (onSignal = resolve));
    signals.once('SIGINT', onSignal);
    signals.once('SIGTERM', onSignal);
    try {
      const outcome = await runDemo({ db: opts.db, port: opts.port, out: (line) => io.out(`${line}\n`), interrupted });
      // 130 is what a shell reports for a program stopped by Ctrl-C.
      if (outcome === 'interrupted') exitCode = 130;
    } finally {
      signals.off('SIGINT', onSignal);
      signals.off('SIGTERM', onSignal);
    }
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    const code = commanderExitCode(error);
    if (code !== undefined) return code;
    io.err(`afc: error: ${describeError(error)}\n`);
    exitCode = exitCodeOf(error);
  }
  return exitCode;
}

async function withClient<T>(db: DatabaseConfig, applicationName: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(clientConfig(db, applicationName));
  // An idle client's socket error would otherwise be an unhandled 'error' event.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (cause) {
    throw new AfcError(`cannot connect to PostgreSQL at ${db.display}`, { cause });
  }
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
