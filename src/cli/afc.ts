// `afc`: installs (migrate) and removes (uninstall) the triggers. Flags and env are parsed here, once.
import { Command, Option } from 'commander';
import pg from 'pg';
import { clientConfig, resolveDatabase, type DatabaseConfig } from '../config/database.js';
import { DEFAULT_CHANNEL } from '../contract.js';
import { AfcError, describeError, exitCodeOf } from '../errors.js';
import { migrate, uninstall } from '../migrate/migrator.js';
import { formatStatus, readStatus } from '../status/status.js';
import { runDemo } from '../demo/demo.js';
import { commanderExitCode, forCli, identifier, positiveInt, type Io } from './options.js';

const DB_HELP = 'PostgreSQL URL (postgres://user:pass@host:port/db); default: $DATABASE_URL, then libpq PG* variables';

export async function runAfc(argv: string[], env: NodeJS.ProcessEnv, io: Io, signals: NodeJS.EventEmitter = process): Promise<number> {
  let exitCode = 0;
  const program = forCli(new Command('afc'), io)
    .description(
      'Keeps caches of Sentry workflow action filters correct: installs PostgreSQL triggers that NOTIFY ' +
        `channel '${DEFAULT_CHANNEL}' with the workflows each committed change makes stale. Run afc-daemon to evict them.`,
    )
    .addHelpText('after', '\nStart with: npx afc demo\nExit codes: 0 ok, 1 failed (database unreachable, not a Sentry database, table busy), 2 bad usage, 130 demo interrupted.');

  program
    .command('migrate')
    .description('install or upgrade the triggers (idempotent; one transaction; safe to run from several hosts at once)')
    .option('--db <url>', DB_HELP)
    .option('--schema <name>', 'schema holding the workflow_engine_* tables', identifier('--schema'), 'public')
    .option('--dry-run', 'print the SQL that would run and change nothing', false)
    .addOption(new Option('--lock-timeout <ms>', 'give up if a table stays locked this long').argParser(positiveInt('--lock-timeout')).default(5000))
    .action(async (opts: { db?: string; schema: string; dryRun: boolean; lockTimeout: number }) => {
      const db = resolveDatabase(opts.db, env);
      const result = await withClient(db, 'afc-migrate', (client) =>
        migrate(client, { schema: opts.schema, dryRun: opts.dryRun, lockTimeoutMs: opts.lockTimeout }),
      );
      for (const warning of result.warnings) io.err(`afc: warning: ${warning}\n`);
      if (opts.dryRun) {
        io.out(result.sql ? `${result.sql}\n` : `-- afc is up to date in schema ${opts.schema} (version ${result.version}); nothing would run\n`);
        io.out(`-- dry run: nothing was changed\n`);
      } else if (result.applied.length === 0) {
        io.out(`afc is up to date in schema ${opts.schema} (version ${result.version}); nothing to do\n`);
      } else {
        for (const m of result.applied) io.out(`applied migration ${m.version} (${m.name}) to schema ${opts.schema}\n`);
        io.out(`afc installed in ${db.display}, schema ${opts.schema}, version ${result.version}\n`);
      }
    });

  program
    .command('uninstall')
    .description('remove every trigger, function and table afc created')
    .option('--db <url>', DB_HELP)
    .option('--schema <name>', 'only this schema (default: every schema afc is installed in)', identifier('--schema'))
    .addOption(new Option('--lock-timeout <ms>', 'give up if a table stays locked this long').argParser(positiveInt('--lock-timeout')).default(5000))
    .action(async (opts: { db?: string; schema?: string; lockTimeout: number }) => {
      const db = resolveDatabase(opts.db, env);
      const schemas = await withClient(db, 'afc-uninstall', (client) => uninstall(client, { schema: opts.schema, lockTimeoutMs: opts.lockTimeout }));
      io.out(schemas.length === 0 ? 'afc was not installed; nothing to do\n' : `afc removed from schema ${schemas.join(', ')}\n`);
    });

  program
    .command('status')
    .description('report whether afc is installed, its triggers enabled, daemons listening, the NOTIFY queue healthy (exit 1 on a problem)')
    .option('--db <url>', DB_HELP)
    .option('--schema <name>', 'schema holding the workflow_engine_* tables', identifier('--schema'), 'public')
    .option('--json', 'machine-readable output', false)
    .action(async (opts: { db?: string; schema: string; json: boolean }) => {
      const db = resolveDatabase(opts.db, env);
      const dialledPort = db.url ? Number(new URL(db.url).port || 5432) : Number(env.PGPORT || 5432);
      const status = await withClient(db, 'afc-status', (client) => readStatus(client, { schema: opts.schema, dialledPort }));
      io.out(opts.json ? `${JSON.stringify({ database: db.display, ...status }, null, 2)}\n` : formatStatus(status, db.display));
      if (status.problems.length > 0) exitCode = 1;
    });

  program
    .command('demo')
    .description('see afc work: an embedded PostgreSQL (or --db, in a fresh schema), a few workflows, edits, and what each evicts')
    .option('--db <url>', 'use this database (a fresh schema, dropped at the end) instead of an embedded PostgreSQL')
    .addOption(new Option('--port <port>', 'port for the embedded PostgreSQL (default: a free one)').argParser(positiveInt('--port')))
    .action(async (opts: { db?: string; port?: number }) => {
      const db = opts.db === undefined ? undefined : resolveDatabase(opts.db, env);
      let onSignal: () => void = () => {};
      const interrupted = new Promise<void>((resolve) => (onSignal = resolve));
      signals.once('SIGINT', onSignal);
      signals.once('SIGTERM', onSignal);
      try {
        const outcome = await runDemo({ db, port: opts.port, out: (line) => io.out(`${line}\n`), interrupted });
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
