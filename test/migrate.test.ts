// `afc migrate` / `afc uninstall` as a user runs them: idempotent, concurrent-safe, fail-fast on a busy
// table, clean errors on a database that is not Sentry-shaped, and nothing of afc left after uninstall.
import t from 'tap';
import pg from 'pg';
import { AFC_BIN, cleanEnv, runCli } from './helpers/cli.js';
import { collectNotifications } from './helpers/notifications.js';
import { connect, createSentrySchema, createTestDatabase, type TestContext } from './helpers/pg.js';
import { Sentry } from './helpers/sentry.js';
import { MANIFEST } from '../src/sql/manifest.js';
import { loadMigrations, loadTemplate, renderAfc } from '../src/sql/templates.js';

interface AfcObjects {
  triggers: string[];
  functions: string[];
  tables: string[];
}

async function afcObjects(db: pg.Client): Promise<AfcObjects> {
  const q = async (sql: string) => (await db.query<{ name: string }>(sql)).rows.map((r) => r.name).sort();
  return {
    triggers: await q(`SELECT tgname AS name FROM pg_trigger WHERE tgname LIKE 'afc%' AND NOT tgisinternal`),
    functions: await q(`SELECT proname AS name FROM pg_proc WHERE proname LIKE 'afc%'`),
    tables: await q(`SELECT relname AS name FROM pg_class WHERE relname LIKE 'afc%'`),
  };
}

async function sentryDatabase(t: TestContext, label: string, schema = 'public') {
  const url = await createTestDatabase(t, label);
  const db = await connect(t, url);
  await createSentrySchema(db, schema);
  return { url, db };
}

t.test('migrate installs the triggers and records the version', async (t) => {
  const { url, db } = await sentryDatabase(t, 'install');
  const r = await runCli(AFC_BIN, ['migrate', '--db', url]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /applied migration 1 \(triggers\)/);
  t.match(r.stdout, /applied migration 2 \(one_query_triggers\)/);
  t.match(r.stdout, /applied migration 3 \(signed_payloads\)/);
  const objects = await afcObjects(db);
  t.equal(objects.triggers.length, 12, 'one statement trigger per table and event, and the row trigger that catches moved conditions');
  t.same(objects.tables, ['afc_migrations', 'afc_migrations_pkey', 'afc_secret', 'afc_secret_pkey']);
  const { rows } = await db.query('SELECT version, name FROM afc_migrations ORDER BY version');
  t.same(rows, [
    { version: 1, name: 'triggers' },
    { version: 2, name: 'one_query_triggers' },
    { version: 3, name: 'signed_payloads' },
  ]);
});

t.test("the manifest names exactly the objects the migrations create (uninstall and status read it)", async (t) => {
  const { url, db } = await sentryDatabase(t, 'manifest');
  t.equal((await runCli(AFC_BIN, ['migrate', '--db', url])).code, 0);
  const objects = await afcObjects(db);
  t.same(objects.triggers, MANIFEST.triggers.map((tr) => tr.name).sort(), 'every trigger, and no other');
  t.same([...new Set(objects.functions)].sort(), [...MANIFEST.functions].sort(), 'every function, and no other');
  t.ok(objects.tables.includes(MANIFEST.secretTable), 'the signing key table');
  const { rows } = await db.query<{ tgname: string; relname: string }>(
    `SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname LIKE 'afc%'`,
  );
  for (const tr of MANIFEST.triggers) t.ok(rows.some((r) => r.tgname === tr.name && r.relname === tr.table), `${tr.name} is on ${tr.table}`);
});

t.test('migrating twice changes nothing and says so', async (t) => {
  const { url, db } = await sentryDatabase(t, 'twice');
  t.equal((await runCli(AFC_BIN, ['migrate', '--db', url])).code, 0);
  const before = (await db.query('SELECT oid, tgname FROM pg_trigger WHERE tgname LIKE $1 ORDER BY oid', ['afc%'])).rows;
  const r = await runCli(AFC_BIN, ['migrate', '--db', url]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /up to date .*version 3.*nothing to do/);
  const after = (await db.query('SELECT oid, tgname FROM pg_trigger WHERE tgname LIKE $1 ORDER BY oid', ['afc%'])).rows;
  t.same(after, before, 'the same trigger objects, not recreated');
});

t.test('a database installed at migration 1 is upgraded in place: same triggers, new bodies, same payloads', async (t) => {
  const { url, db } = await sentryDatabase(t, 'upgrade');
  // What the previous package left behind: migration 1 only, recorded in the tracking table.
  const [first] = loadMigrations();
  await db.query(renderAfc(loadTemplate('tracking.sql'), 'public'));
  await db.query(renderAfc(first.template, 'public'));
  await db.query('INSERT INTO afc_migrations (version, name, checksum) VALUES ($1, $2, $3)', [first.version, first.name, first.checksum]);
  const triggers = async () => (await db.query('SELECT oid, tgname, tgfoid FROM pg_trigger WHERE tgname LIKE $1 ORDER BY oid', ['afc%'])).rows;
  const before = await triggers();
  const status = await runCli(AFC_BIN, ['status', '--db', url]);
  t.equal(status.code, 1, 'status flags the old version');
  t.match(status.stdout, /older than this package's 3: run afc migrate/);

  const r = await runCli(AFC_BIN, ['migrate', '--db', url]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /applied migration 2 \(one_query_triggers\)/);
  t.notMatch(r.stdout, /applied migration 1/);
  const after = await triggers();
  t.same(after.filter((tr) => tr.tgname !== 'afc_dc_move'), before, "0001's trigger objects, calling the same (replaced) functions");
  t.equal(after.length, before.length + 1, 'plus the row trigger for moved conditions');
  const { rows } = await db.query<{ src: string }>(`SELECT prosrc AS src FROM pg_proc WHERE proname = 'afc_dc_changed'`);
  t.match(rows[0].src, /afc_send/, 'the trigger function has the new body');

  const sentry = new Sentry(db);
  const [a, b] = [await sentry.workflow([2]), await sentry.workflow([1])];
  const notes = await collectNotifications(t, url);
  await db.query(`UPDATE workflow_engine_datacondition SET condition_group_id = $1 WHERE condition_group_id = $2`, [b.groups[0], a.groups[0]]);
  const drained = await notes.drain();
  t.same(drained.ids, [a.id, b.id].sort((x, y) => x - y), 'a moved condition still invalidates both workflows');
  t.equal(drained.payloads.length, 1, 'in one payload');
});

t.test('two concurrent migrates both succeed and one of them does nothing', async (t) => {
  const { url, db } = await sentryDatabase(t, 'concurrent');
  const results = await Promise.all([1, 2, 3].map(() => runCli(AFC_BIN, ['migrate', '--db', url])));
  t.same(results.map((r) => r.code), [0, 0, 0], results.map((r) => r.stderr).join(''));
  t.equal(results.filter((r) => /applied migration 1/.test(r.stdout)).length, 1, 'exactly one installed');
  t.equal(results.filter((r) => /nothing to do/.test(r.stdout)).length, 2, 'the others found nothing to do');
  t.equal((await afcObjects(db)).triggers.length, 12);
});

t.test('--dry-run prints the SQL and changes nothing', async (t) => {
  const { url, db } = await sentryDatabase(t, 'dryrun');
  const r = await runCli(AFC_BIN, ['migrate', '--db', url, '--dry-run']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /CREATE TRIGGER afc_dc_update AFTER UPDATE ON "public"\.workflow_engine_datacondition/);
  t.match(r.stdout, /dry run: nothing was changed/);
  t.same(await afcObjects(db), { triggers: [], functions: [], tables: [] });
  await runCli(AFC_BIN, ['migrate', '--db', url]);
  const again = await runCli(AFC_BIN, ['migrate', '--db', url, '--dry-run']);
  t.match(again.stdout, /up to date .* nothing would run/);
  t.notMatch(again.stdout, /CREATE TRIGGER/);
});

t.test('--schema installs on tables outside public, and those triggers notify', async (t) => {
  const { url, db } = await sentryDatabase(t, 'schema', 'sentry app');
  const r = await runCli(AFC_BIN, ['migrate', '--db', url, '--schema', 'sentry app']);
  t.equal(r.code, 0, r.stderr);
  const sentry = new Sentry(db, 'sentry app');
  const w = await sentry.workflow([1]);
  const notes = await collectNotifications(t, url, undefined, 'sentry app');
  await db.query(`UPDATE ${sentry.table('dataconditiongroup')} SET logic_type = 'none' WHERE id = $1`, [w.groups[0]]);
  t.same((await notes.drain()).ids, [w.id]);
});

t.test('uninstall removes every afc object and the triggers stop notifying', async (t) => {
  const { url, db } = await sentryDatabase(t, 'uninstall');
  await runCli(AFC_BIN, ['migrate', '--db', url]);
  const installed = await afcObjects(db);
  t.ok(installed.functions.length >= 5, `functions installed: ${installed.functions.join(', ')}`);
  const r = await runCli(AFC_BIN, ['uninstall', '--db', url]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /afc removed from schema public/);
  t.same(await afcObjects(db), { triggers: [], functions: [], tables: [] }, 'no afc trigger, function or table left');
  const w = await new Sentry(db).workflow([1]);
  const notes = await collectNotifications(t, url);
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
  t.same((await notes.drain()).payloads, [], 'writes notify nothing any more');
  const again = await runCli(AFC_BIN, ['uninstall', '--db', url]);
  t.equal(again.code, 0);
  t.match(again.stdout, /not installed; nothing to do/);
});

t.test('uninstall --schema of a schema without afc says so and exits 1', async (t) => {
  const { url } = await sentryDatabase(t, 'uninstall_none');
  await runCli(AFC_BIN, ['migrate', '--db', url]);
  const r = await runCli(AFC_BIN, ['uninstall', '--db', url, '--schema', 'nosuchschema']);
  t.equal(r.code, 1);
  t.match(r.stderr, /afc is not installed in schema nosuchschema: nothing to remove \(installed in: public\)/);
  t.notMatch(r.stdout, /removed/);
});

t.test('--channel points the triggers at another channel, and status tells when daemons would hear nothing', async (t) => {
  const { url, db } = await sentryDatabase(t, 'channel');
  const r = await runCli(AFC_BIN, ['migrate', '--db', url, '--channel', 'afc_other']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /channel afc_other/);
  const sentry = new Sentry(db);
  const w = await sentry.workflow([1]);
  const onOther = await collectNotifications(t, url, 'afc_other');
  const onDefault = await collectNotifications(t, url);
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
  t.same((await onOther.drain()).ids, [w.id], 'the triggers notify the chosen channel');
  t.same((await onDefault.drain()).payloads, [], 'and nothing on the default one');

  const mismatch = await runCli(AFC_BIN, ['status', '--db', url]);
  t.equal(mismatch.code, 1, 'daemons on the default channel would hear nothing: a problem');
  t.match(mismatch.stdout, /the triggers NOTIFY channel afc_other, not afc_action_filters/);
  const matching = await runCli(AFC_BIN, ['status', '--db', url, '--channel', 'afc_other', '--json']);
  t.equal(JSON.parse(matching.stdout).channel, 'afc_other');
  t.notMatch(matching.stdout, /NOTIFY channel afc_other, not/);

  const dry = await runCli(AFC_BIN, ['migrate', '--db', url, '--dry-run']);
  t.match(dry.stdout, /CREATE OR REPLACE FUNCTION "public"\.afc_channel\(\)/, 'a dry run shows the re-pointing');
  const triggers = async () => (await db.query('SELECT oid FROM pg_trigger WHERE tgname LIKE $1 ORDER BY oid', ['afc%'])).rows;
  const before = await triggers();
  const back = await runCli(AFC_BIN, ['migrate', '--db', url]);
  t.equal(back.code, 0, back.stderr);
  t.match(back.stdout, /the triggers now NOTIFY channel afc_action_filters \(was afc_other\)/);
  t.same(await triggers(), before, 'no trigger was recreated');
  // The writer's session cached the trigger's plan with the old channel inlined: it must not keep it.
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['all', w.groups[0]]);
  t.same((await onDefault.drain()).ids, [w.id], 'the same writer session now notifies the default channel');
  t.same((await onOther.drain()).payloads, []);
});

t.test('a database that is not Sentry-shaped fails cleanly, naming the table, installing nothing', async (t) => {
  const url = await createTestDatabase(t, 'notsentry');
  const db = await connect(t, url);
  await db.query('CREATE TABLE workflow_engine_dataconditiongroup (id bigserial PRIMARY KEY, logic_type text)');
  const r = await runCli(AFC_BIN, ['migrate', '--db', url]);
  t.equal(r.code, 1);
  t.match(r.stderr, /table public\.workflow_engine_workflowdataconditiongroup not found/);
  t.same(await afcObjects(db), { triggers: [], functions: [], tables: [] }, 'nothing half-installed');
});

t.test('a table kept busy by a writer makes migrate fail fast instead of queueing writes', async (t) => {
  const { url, db } = await sentryDatabase(t, 'busy');
  const writer = await connect(t, url);
  await writer.query('BEGIN');
  await writer.query('LOCK TABLE workflow_engine_datacondition IN ROW EXCLUSIVE MODE');
  const started = Date.now();
  const r = await runCli(AFC_BIN, ['migrate', '--db', url, '--lock-timeout', '300']);
  const elapsed = Date.now() - started;
  await writer.query('ROLLBACK');
  t.equal(r.code, 1);
  t.match(r.stderr, /stayed locked by other sessions for over 300 ms; nothing was changed/);
  t.ok(elapsed < 20_000, `gave up instead of waiting for the writer (${elapsed} ms)`);
  t.same(await afcObjects(db), { triggers: [], functions: [], tables: [] });
});

t.test('the database comes from --db, then DATABASE_URL, then PG* variables', async (t) => {
  const { url, db } = await sentryDatabase(t, 'envs');
  const fromEnv = await runCli(AFC_BIN, ['migrate', '--dry-run'], cleanEnv({ DATABASE_URL: url }));
  t.equal(fromEnv.code, 0, fromEnv.stderr);
  const u = new URL(url);
  const pgVars: Record<string, string> = { PGHOST: u.hostname, PGPORT: u.port || '5432', PGUSER: u.username || 'postgres', PGDATABASE: u.pathname.slice(1) };
  if (u.password) pgVars.PGPASSWORD = decodeURIComponent(u.password);
  const fromPg = await runCli(AFC_BIN, ['migrate'], cleanEnv(pgVars));
  t.equal(fromPg.code, 0, fromPg.stderr);
  t.equal((await afcObjects(db)).triggers.length, 12, 'installed through PG* variables');
});

t.test('bad input gets a clear message and the right exit code', async (t) => {
  const help = await runCli(AFC_BIN, ['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /migrate/);
  t.match(help.stdout, /uninstall/);
  const unknown = await runCli(AFC_BIN, ['migrate', '--frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown option '--frobnicate'/);
  const badTimeout = await runCli(AFC_BIN, ['migrate', '--lock-timeout', 'soon']);
  t.equal(badTimeout.code, 2);
  t.match(badTimeout.stderr, /--lock-timeout must be a whole number of milliseconds from 1 to 2147483647/);
  const badUrl = await runCli(AFC_BIN, ['migrate', '--db', 'mysql://x@h/db']);
  t.equal(badUrl.code, 2);
  t.match(badUrl.stderr, /unsupported database URL scheme 'mysql:'/);
  const unreachable = await runCli(AFC_BIN, ['migrate', '--db', 'postgres://u:hunter2@127.0.0.1:1/db']);
  t.equal(unreachable.code, 1);
  t.match(unreachable.stderr, /cannot connect to PostgreSQL at postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db/);
  t.notMatch(unreachable.stderr, /hunter2/, 'the password is never printed');
});
