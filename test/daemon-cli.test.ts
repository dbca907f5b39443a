// afc-daemon's command line: help that explains, exit 2 for input the user must fix, exit 1 when the
// database cannot be reached by the start-up deadline, and no password ever printed.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { AFC_BIN, DAEMON_BIN, cleanEnv, runCli } from './helpers/cli.js';
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

t.test('--version prints the package version, on both bins', async (t) => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  for (const bin of [DAEMON_BIN, AFC_BIN]) {
    const r = await runCli(bin, ['--version']);
    t.equal(r.code, 0);
    t.equal(r.stdout.trim(), version);
  }
});

t.test('--help shows each option with its default and environment variable', async (t) => {
  const help = (await runCli(DAEMON_BIN, ['--help'])).stdout.replace(/\s+/g, ' ');
  t.match(help, /--cache <url> [^-]*\(env AFC_CACHE; default: memory; none on a relay \(--publish\)\)/);
  t.match(help, /--key-prefix <str> .*\(env AFC_KEY_PREFIX; default: ''; repeatable\)/);
  t.match(help, /--flush <mode> .*\(default: scan for memory, enumerate otherwise\)/);
  t.match(help, /--heartbeat-ms <ms> .*\(default: 2000\)/);
  t.match(help, /memcached:\/\/host:port/);
});

t.test('bad flags and URLs exit 2 with a message saying how to fix them', async (t) => {
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [['--bogus'], cleanEnv(), /unknown option '--bogus'/],
    [['--cache', 'foo://x'], cleanEnv(), /unsupported cache URL 'foo:\/\/x': use 'memory', 'redis:\/\/\[user:pass@\]host:port\[\/db\]'/],
    [['--cache', 'redis://h:6379/zero'], cleanEnv(), /database 'zero' is not a number/],
    [[], cleanEnv({ AFC_CACHE: 'memcache://h' }), /unsupported cache URL 'memcache:\/\/h'/],
    [['--cache', 'redis://h:1/0?tls=true'], cleanEnv(), /use rediss:\/\/ for TLS/],
    [['--db', 'http://example'], cleanEnv(), /unsupported database URL scheme 'http:' in --db/],
    [['--db', 'not a url'], cleanEnv(), /invalid database URL in --db/],
    [[], cleanEnv({ DATABASE_URL: 'mysql://x' }), /unsupported database URL scheme 'mysql:' in DATABASE_URL/],
    [['--heartbeat-ms', '0'], cleanEnv(), /--heartbeat-ms must be a whole number of milliseconds from 1 to 2147483647, got '0'/],
    [['--heartbeat-ms', '2147483648'], cleanEnv(), /--heartbeat-ms must be a whole number of milliseconds from 1 to 2147483647/],
    [['--redelete-after', '1e3'], cleanEnv(), /--redelete-after must be a whole number/],
    [['--log-level', 'loud'], cleanEnv(), /--log-level must be one of fatal, error, warn, info, debug, trace, silent, got 'loud'/],
    [[], cleanEnv({ AFC_LOG_LEVEL: 'loud' }), /AFC_LOG_LEVEL must be one of/],
    [['--flush', 'sometimes'], cleanEnv(), /--flush must be one of scan, enumerate/],
    [['--cache', 'memcached://127.0.0.1:1', '--flush', 'scan'], cleanEnv(), /a memcached store cannot list its keys: flush mode 'scan' is not possible/],
    [['--http', '9464'], cleanEnv(), /--http must be HOST:PORT/],
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
