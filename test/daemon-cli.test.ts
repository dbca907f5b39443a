// afc-daemon's command line: help that explains, exit 2 for input the user must fix, exit 1 when the
// database cannot be reached by the start-up deadline, and no password ever printed.
import t from 'tap';
import { DAEMON_BIN, cleanEnv, runCli } from './helpers/cli.js';
import { spawnDaemon } from './helpers/daemon.js';
import { createTestDatabase } from './helpers/pg.js';

t.test('--help explains the flags, defaults and exit codes', async (t) => {
  const r = await runCli(DAEMON_BIN, ['--help']);
  t.equal(r.code, 0);
  for (const flag of ['--db', '--cache', '--key-prefix', '--channel', '--log-level']) t.match(r.stdout, flag);
  t.match(r.stdout, /afc_action_filters/);
  t.match(r.stdout, /workflow:action_filters_by_workflow:<id>/);
  t.match(r.stdout, /Exit codes/);
});

t.test('bad flags and URLs exit 2 with a message saying how to fix them', async (t) => {
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [['--bogus'], cleanEnv(), /unknown option '--bogus'/],
    [['--cache', 'foo://x'], cleanEnv(), /unsupported cache URL 'foo:\/\/x': use 'memory' or 'redis:\/\/host:port\/db'/],
    [['--cache', 'redis://h:6379/zero'], cleanEnv(), /database 'zero' is not a number/],
    [[], cleanEnv({ AFC_CACHE: 'memcached://h' }), /unsupported cache URL 'memcached:\/\/h'/],
    [['--db', 'http://example'], cleanEnv(), /unsupported database URL scheme 'http:'/],
    [['--db', 'not a url'], cleanEnv(), /invalid database URL in --db/],
    [['--heartbeat-ms', '0'], cleanEnv(), /--heartbeat-ms must be a positive whole number/],
    [['--log-level', 'loud'], cleanEnv(), /Allowed choices are fatal, error, warn, info, debug, trace, silent/],
    [[], cleanEnv({ AFC_LOG_LEVEL: 'loud' }), /AFC_LOG_LEVEL must be one of/],
  ];
  for (const [args, env, message] of cases) {
    const r = await runCli(DAEMON_BIN, args, env);
    t.equal(r.code, 2, `${args.join(' ') || JSON.stringify(env.AFC_CACHE ?? env.AFC_LOG_LEVEL)} exits 2`);
    t.match(r.stderr, message);
  }
});

t.test('an unreachable database fails start-up with exit 1 after the deadline, password masked', async (t) => {
  const started = Date.now();
  const r = await runCli(DAEMON_BIN, ['--db', 'postgres://afc:s3cret@127.0.0.1:1/sentry', '--startup-timeout-ms', '1500']);
  const elapsed = Date.now() - started;
  t.equal(r.code, 1);
  t.match(r.stderr, /cannot LISTEN on PostgreSQL at postgres:\/\/afc:\*\*\*@127\.0\.0\.1:1\/sentry/);
  t.notMatch(r.stdout + r.stderr, /s3cret/, 'the password appears nowhere in the output');
  t.ok(elapsed >= 1000, `it retried until the deadline (${elapsed} ms)`);
  t.ok(r.stdout.split('\n').some((l) => l.includes('"msg":"cannot connect to PostgreSQL"')), 'each failed attempt is logged as JSON');
});

t.test('SIGINT (Ctrl-C) stops it like SIGTERM: exit 0', async (t) => {
  const url = await createTestDatabase(t, 'daemon_sigint');
  const daemon = spawnDaemon(t, ['--db', url], cleanEnv({ AFC_CACHE: 'memory' }));
  await daemon.waitForLog('flushed', (l) => l.cause === 'connect');
  t.equal(await daemon.stop('SIGINT'), 0);
  t.ok(daemon.logs.some((l) => l.msg === 'stopping' && l.signal === 'SIGINT'));
});

t.test('--log-format pretty prints readable lines instead of JSON', async (t) => {
  const r = await runCli(DAEMON_BIN, ['--db', 'postgres://afc@127.0.0.1:1/x', '--startup-timeout-ms', '300', '--log-format', 'pretty']);
  t.equal(r.code, 1);
  t.match(r.stdout, /(INFO|WARN).*\(afc-daemon\/\d+\): (starting|cannot connect to PostgreSQL)/);
  t.notMatch(r.stdout, /^\{"level"/m, 'no JSON lines');
});
