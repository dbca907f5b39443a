// The triggers send exactly the workflows whose action filters a committed statement changed
// (design.md §2), in bounded payloads, and nothing for rolled-back work or for WHEN groups.
import t from 'tap';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { MAX_PAYLOAD_BYTES } from '../src/codec.js';
import { migrate } from '../src/migrate/migrator.js';
import { collectNotifications } from './helpers/notifications.js';
import { connect, createSentrySchema, createTestDatabase } from './helpers/pg.js';
import { Sentry } from './helpers/sentry.js';

const url = await createTestDatabase(t, 'triggers');
const db = await connect(t, url);
await createSentrySchema(db);
await migrate(db, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });
const sentry = new Sentry(db);
const notes = await collectNotifications(t, url);
const T = {
  wdcg: sentry.table('workflowdataconditiongroup'),
  dcg: sentry.table('dataconditiongroup'),
  dc: sentry.table('datacondition'),
  wf: sentry.table('workflow'),
};

/** Runs `sql` (one string, or several in one transaction) and returns what was notified. */
async function after(sql: string | string[]) {
  await notes.drain();
  if (typeof sql === 'string') await db.query(sql);
  else {
    await db.query('BEGIN');
    for (const s of sql) await db.query(s);
    await db.query('COMMIT');
  }
  return notes.drain();
}

t.test('inserting a WDCG link invalidates its workflow', async (t) => {
  const w = await sentry.workflow([]);
  const g = await sentry.group();
  const got = await after(`INSERT INTO ${T.wdcg} (workflow_id, condition_group_id) VALUES (${w.id}, ${g})`);
  t.same(got.ids, [w.id]);
  t.same(got.flushes, []);
});

t.test('deleting a WDCG link invalidates its workflow', async (t) => {
  const w = await sentry.workflow([1]);
  const got = await after(`DELETE FROM ${T.wdcg} WHERE condition_group_id = ${w.groups[0]}`);
  t.same(got.ids, [w.id]);
});

t.test('moving a WDCG link to another workflow invalidates both workflows', async (t) => {
  const [a, b] = [await sentry.workflow([1]), await sentry.workflow([1])];
  const got = await after(`UPDATE ${T.wdcg} SET workflow_id = ${b.id} WHERE condition_group_id = ${a.groups[0]}`);
  t.same(got.ids, [a.id, b.id].sort((x, y) => x - y));
});

t.test('pointing a WDCG link at another group invalidates its workflow', async (t) => {
  const w = await sentry.workflow([1]);
  const g = await sentry.group();
  const got = await after(`UPDATE ${T.wdcg} SET condition_group_id = ${g} WHERE condition_group_id = ${w.groups[0]}`);
  t.same(got.ids, [w.id]);
});

t.test("updating an action filter's logic_type invalidates the workflows linked to it", async (t) => {
  const w = await sentry.workflow([1, 1]);
  const other = await sentry.workflow([1]);
  const got = await after(`UPDATE ${T.dcg} SET logic_type = 'none' WHERE id = ${w.groups[1]}`);
  t.same(got.ids, [w.id]);
  t.notOk(got.ids.includes(other.id));
});

t.test('deleting an action filter group invalidates its workflow from the DCG trigger itself', async (t) => {
  const w = await sentry.workflow([2]);
  const g = w.groups[0];
  // Group first: with deferred foreign keys the link still exists when the DCG trigger runs.
  const got = await after([
    `DELETE FROM ${T.dcg} WHERE id = ${g}`,
    `DELETE FROM ${T.dc} WHERE condition_group_id = ${g}`,
    `DELETE FROM ${T.wdcg} WHERE condition_group_id = ${g}`,
  ]);
  t.same(got.ids, [w.id]);
  t.ok(got.messages.some((m) => m.op === 'evict' && m.src === 'dcg' && m.ids.includes(w.id)), 'the DCG delete named the workflow');
});

t.test('deleting a group the way Django does (children first) invalidates its workflow', async (t) => {
  const w = await sentry.workflow([2]);
  const g = w.groups[0];
  const got = await after([
    `DELETE FROM ${T.dc} WHERE condition_group_id = ${g}`,
    `DELETE FROM ${T.wdcg} WHERE condition_group_id = ${g}`,
    `DELETE FROM ${T.dcg} WHERE id = ${g}`,
  ]);
  t.same(got.ids, [w.id]);
});

t.test('inserting a condition into an action filter invalidates its workflow', async (t) => {
  const w = await sentry.workflow([1]);
  const got = await after(
    `INSERT INTO ${T.dc} (comparison, condition_result, type, condition_group_id) VALUES ('1', 'true', 'eq', ${w.groups[0]})`,
  );
  t.same(got.ids, [w.id]);
  t.same(got.messages.map((m) => m.src), ['dc']);
});

t.test('deleting a condition invalidates its workflow', async (t) => {
  const w = await sentry.workflow([2]);
  const got = await after(`DELETE FROM ${T.dc} WHERE id = ${w.conditions.get(w.groups[0])![0]}`);
  t.same(got.ids, [w.id]);
});

t.test("changing a condition's comparison invalidates its workflow", async (t) => {
  const w = await sentry.workflow([2]);
  const got = await after(`UPDATE ${T.dc} SET comparison = '{"value": 9}' WHERE id = ${w.conditions.get(w.groups[0])![1]}`);
  t.same(got.ids, [w.id]);
});

t.test('moving a condition to another group invalidates both workflows', async (t) => {
  const [a, b] = [await sentry.workflow([1]), await sentry.workflow([1])];
  const got = await after(`UPDATE ${T.dc} SET condition_group_id = ${b.groups[0]} WHERE id = ${a.conditions.get(a.groups[0])![0]}`);
  t.same(got.ids, [a.id, b.id].sort((x, y) => x - y));
});

t.test('moving conditions of ten workflows into one group in one statement invalidates all eleven', async (t) => {
  const sources = await Promise.all(Array.from({ length: 10 }, () => sentry.workflow([2])));
  const target = await sentry.workflow([1]);
  const ids = sources.flatMap((w) => w.conditions.get(w.groups[0])!);
  const got = await after(`UPDATE ${T.dc} SET condition_group_id = ${target.groups[0]} WHERE id IN (${ids.join(',')})`);
  t.same(got.ids, [...sources.map((w) => w.id), target.id].sort((x, y) => x - y));
  t.equal(got.payloads.length, 1, 'one payload for the statement');
});

t.test('a move is sent by its own statement only: the next statement in the transaction names just its own workflows', async (t) => {
  const [a, b, c] = [await sentry.workflow([1]), await sentry.workflow([1]), await sentry.workflow([1])];
  await notes.drain();
  await db.query('BEGIN');
  await db.query(`UPDATE ${T.dc} SET condition_group_id = ${b.groups[0]} WHERE id = ${a.conditions.get(a.groups[0])![0]}`);
  await db.query(`UPDATE ${T.dc} SET comparison = '{"value": 3}' WHERE condition_group_id = ${c.groups[0]}`);
  await db.query('COMMIT');
  const got = await notes.drain();
  t.same(got.messages.map((m) => (m.op === 'evict' ? m.ids : m.reason)), [[a.id, b.id].sort((x, y) => x - y), [c.id]]);
});

t.test('a move rolled back to a savepoint leaves nothing behind for the statements after it', async (t) => {
  const [a, b, c] = [await sentry.workflow([1]), await sentry.workflow([1]), await sentry.workflow([1])];
  await notes.drain();
  await db.query('BEGIN');
  await db.query('SAVEPOINT s');
  await db.query(`UPDATE ${T.dc} SET condition_group_id = ${b.groups[0]} WHERE id = ${a.conditions.get(a.groups[0])![0]}`);
  await db.query('ROLLBACK TO SAVEPOINT s');
  await db.query(`UPDATE ${T.dc} SET comparison = '{"value": 4}' WHERE condition_group_id = ${c.groups[0]}`);
  await db.query('COMMIT');
  t.same((await notes.drain()).ids, [c.id]);
});

t.test("a condition moved by another BEFORE trigger (the column not in the UPDATE's SET list) still invalidates both", async (t) => {
  const [a, b] = [await sentry.workflow([1]), await sentry.workflow([1])];
  await db.query(`CREATE FUNCTION test_redirect() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.type = 'redirect' THEN NEW.condition_group_id := ${b.groups[0]}; END IF; RETURN NEW; END $$;
    CREATE TRIGGER test_redirect BEFORE UPDATE ON ${T.dc} FOR EACH ROW EXECUTE FUNCTION test_redirect()`);
  t.teardown(() => db.query(`DROP TRIGGER test_redirect ON ${T.dc}; DROP FUNCTION test_redirect()`));
  const got = await after(`UPDATE ${T.dc} SET type = 'redirect' WHERE id = ${a.conditions.get(a.groups[0])![0]}`);
  t.same(got.ids, [a.id, b.id].sort((x, y) => x - y));
});

t.test('moving more conditions than one payload of groups can name sends one flush', async (t) => {
  // Each moved row's old group is remembered: 1,500 groups of 6+ digits pass the 7,600-byte bound.
  await db.query(`SELECT setval(pg_get_serial_sequence('${T.dcg}', 'id'), greatest(1000000, (SELECT max(id) FROM ${T.dcg})))`);
  const target = await sentry.workflow([1]);
  await db.query(`
    CREATE TEMP TABLE many_g AS
      WITH g AS (INSERT INTO ${T.dcg} (logic_type, organization_id) SELECT 'all', 77 FROM generate_series(1, 1500) RETURNING id) SELECT id FROM g;
    INSERT INTO ${T.dc} (comparison, condition_result, type, condition_group_id) SELECT '1', 'true', 'eq', id FROM many_g;`);
  const got = await after(`UPDATE ${T.dc} SET condition_group_id = ${target.groups[0]} WHERE condition_group_id IN (SELECT id FROM many_g)`);
  t.same(got.flushes, ['overflow']);
  t.equal(got.payloads.length, 1, 'exactly one payload');
});

t.test('garbage in the setting the move trigger uses turns into a flush, and the write goes through', async (t) => {
  const w = await sentry.workflow([1]);
  const got = await after([`SET LOCAL afc.dc_moved_from = 'not,numbers'`, `UPDATE ${T.dc} SET type = 'odd' WHERE condition_group_id = ${w.groups[0]}`]);
  t.same(got.flushes, ['error']);
  const { rows } = await db.query(`SELECT type FROM ${T.dc} WHERE condition_group_id = $1`, [w.groups[0]]);
  t.equal(rows[0].type, 'odd', 'the write committed');
});

t.test('a group shared by no workflow yet, and conditions in it, notify nothing', async (t) => {
  const g = await sentry.group();
  const got = await after([`UPDATE ${T.dcg} SET logic_type = 'none' WHERE id = ${g}`, `INSERT INTO ${T.dc} (comparison, condition_result, type, condition_group_id) VALUES ('1', 'true', 'eq', ${g})`]);
  t.same(got.payloads, []);
});

t.test("a change to a WHEN group's conditions notifies nothing", async (t) => {
  const w = await sentry.workflow([1], 2);
  const got = await after([
    `UPDATE ${T.dc} SET comparison = '{"value": 5}' WHERE condition_group_id = ${w.whenGroup}`,
    `INSERT INTO ${T.dc} (comparison, condition_result, type, condition_group_id) VALUES ('1', 'true', 'eq', ${w.whenGroup})`,
    `DELETE FROM ${T.dc} WHERE id = ${w.whenConditions[0]}`,
    `UPDATE ${T.dcg} SET logic_type = 'all' WHERE id = ${w.whenGroup}`,
  ]);
  t.same(got.payloads, []);
});

t.test('a statement that changes no row notifies nothing', async (t) => {
  const got = await after([
    `UPDATE ${T.dc} SET type = 'x' WHERE false`,
    `DELETE FROM ${T.wdcg} WHERE false`,
    `UPDATE ${T.dcg} SET logic_type = 'x' WHERE false`,
  ]);
  t.same(got.payloads, []);
});

t.test('a rolled-back transaction notifies nothing', async (t) => {
  const w = await sentry.workflow([1]);
  await notes.drain();
  await db.query('BEGIN');
  await db.query(`UPDATE ${T.dc} SET type = 'gone' WHERE condition_group_id = ${w.groups[0]}`);
  await db.query('ROLLBACK');
  t.same((await notes.drain()).payloads, []);
});

t.test('a rolled-back savepoint notifies nothing of its own', async (t) => {
  const [kept, undone] = [await sentry.workflow([1]), await sentry.workflow([1])];
  await notes.drain();
  await db.query('BEGIN');
  await db.query(`UPDATE ${T.dc} SET type = 'kept' WHERE condition_group_id = ${kept.groups[0]}`);
  await db.query('SAVEPOINT s');
  await db.query(`UPDATE ${T.dc} SET type = 'undone' WHERE condition_group_id = ${undone.groups[0]}`);
  await db.query('ROLLBACK TO SAVEPOINT s');
  await db.query('COMMIT');
  t.same((await notes.drain()).ids, [kept.id]);
});

t.test('TRUNCATE of each table sends flush all', async (t) => {
  // Private schema copy so truncating does not wipe the rows other tests use.
  const url2 = await createTestDatabase(t, 'truncate');
  const db2 = await connect(t, url2);
  await createSentrySchema(db2);
  await migrate(db2, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });
  await new Sentry(db2).workflow([1]);
  const notes2 = await collectNotifications(t, url2);
  for (const table of ['workflowdataconditiongroup', 'datacondition', 'dataconditiongroup']) {
    await notes2.drain();
    await db2.query(`TRUNCATE workflow_engine_${table} CASCADE`);
    const got = await notes2.drain();
    t.ok(got.flushes.length >= 1 && got.flushes.every((r) => r === 'truncate'), `TRUNCATE ${table} sends flush`);
  }
});

t.test('INSERT … ON CONFLICT DO UPDATE invalidates the workflows of inserted and updated rows', async (t) => {
  const [a, b] = [await sentry.workflow([1]), await sentry.workflow([1])];
  const existing = a.conditions.get(a.groups[0])![0];
  const got = await after(
    `INSERT INTO ${T.dc} (id, comparison, condition_result, type, condition_group_id)
     VALUES (${existing}, '2', 'true', 'eq', ${a.groups[0]}), (DEFAULT, '3', 'true', 'eq', ${b.groups[0]})
     ON CONFLICT (id) DO UPDATE SET comparison = EXCLUDED.comparison`,
  );
  t.same(got.ids, [a.id, b.id].sort((x, y) => x - y));
});

t.test('COPY into DataCondition invalidates the workflows of the copied rows', async (t) => {
  const [a, b, untouched] = [await sentry.workflow([1]), await sentry.workflow([1]), await sentry.workflow([1])];
  await notes.drain();
  const rows = [a, b].map((w) => `{"value": 3}\ttrue\teq\t${w.groups[0]}\n`).join('');
  await pipeline(Readable.from([rows]), db.query(copyFrom(`COPY ${T.dc} (comparison, condition_result, type, condition_group_id) FROM STDIN`)));
  const got = await notes.drain();
  t.same(got.ids, [a.id, b.id].sort((x, y) => x - y));
  t.notOk(got.ids.includes(untouched.id));
});

t.test('a 20,000-row UPDATE over 3,000 workflows sends bounded payloads naming every workflow', async (t) => {
  await db.query(`
    CREATE TEMP TABLE bulk_wf AS
      WITH w AS (INSERT INTO ${T.wf} (name, organization_id) SELECT 'bulk', 77 FROM generate_series(1, 3000) RETURNING id)
      SELECT id FROM w;
    CREATE TEMP TABLE bulk_g AS
      WITH g AS (INSERT INTO ${T.dcg} (logic_type, organization_id) SELECT 'all', 77 FROM generate_series(1, 3000) RETURNING id)
      SELECT id, row_number() OVER (ORDER BY id) AS n FROM g;
    INSERT INTO ${T.wdcg} (workflow_id, condition_group_id)
      SELECT w.id, g.id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM bulk_wf) w JOIN bulk_g g USING (n);
    INSERT INTO ${T.dc} (comparison, condition_result, type, condition_group_id)
      SELECT '1', 'true', 'bulk', g.id FROM generate_series(1, 20000) i JOIN bulk_g g ON g.n = 1 + i % 3000;`);
  const expected = (await db.query<{ id: string }>('SELECT id FROM bulk_wf ORDER BY id')).rows.map((r) => Number(r.id));
  const got = await after(`UPDATE ${T.dc} SET comparison = '2' WHERE type = 'bulk'`);
  t.equal(got.flushes.length, 0, 'no flush needed for 3,000 workflows');
  t.ok(got.payloads.length >= 2 && got.payloads.length <= 8, `a handful of payloads (${got.payloads.length})`);
  t.ok(got.payloads.every((p) => Buffer.byteLength(p) <= MAX_PAYLOAD_BYTES), 'every payload under 8000 bytes');
  t.same(got.ids, expected, 'every affected workflow is named, and no other');
});

t.test('a statement touching more workflows than the bound sends one flush instead', async (t) => {
  // 16-digit ids make 3,700 workflows overflow the id budget (8 chunks of 7,600 bytes).
  await db.query(`
    SELECT setval(pg_get_serial_sequence('${T.wf}', 'id'), 1000000000000000);
    CREATE TEMP TABLE huge_wf AS
      WITH w AS (INSERT INTO ${T.wf} (name, organization_id) SELECT 'huge', 88 FROM generate_series(1, 3700) RETURNING id)
      SELECT id, row_number() OVER (ORDER BY id) AS n FROM w;
    CREATE TEMP TABLE huge_g AS
      WITH g AS (INSERT INTO ${T.dcg} (logic_type, organization_id) SELECT 'all', 88 FROM generate_series(1, 3700) RETURNING id)
      SELECT id, row_number() OVER (ORDER BY id) AS n FROM g;
    INSERT INTO ${T.wdcg} (workflow_id, condition_group_id) SELECT w.id, g.id FROM huge_wf w JOIN huge_g g USING (n);`);
  const got = await after(`UPDATE ${T.dcg} SET logic_type = 'any' WHERE organization_id = 88`);
  t.same(got.flushes, ['overflow']);
  t.equal(got.payloads.length, 1, 'exactly one payload');
});

t.test('a workflow id beyond 2^53 (not exact in JSON) makes the trigger send flush', async (t) => {
  const g = await sentry.group();
  await db.query(`INSERT INTO ${T.wf} (id, name, organization_id) VALUES (9007199254740993, 'big', 1)`);
  const got = await after(`INSERT INTO ${T.wdcg} (workflow_id, condition_group_id) VALUES (9007199254740993, ${g})`);
  t.same(got.flushes, ['overflow']);
  t.same(got.ids, []);
});

t.test('a writer role that cannot read WDCG still names exact workflows: the triggers run with afc\'s own rights', async (t) => {
  const role = `afc_test_writer_${process.pid}`;
  const w = await sentry.workflow([1]);
  await db.query(`DROP ROLE IF EXISTS ${role}; CREATE ROLE ${role};
    GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT, UPDATE ON ${T.dc} TO ${role}`);
  t.teardown(() => db.query(`DROP OWNED BY ${role}; DROP ROLE IF EXISTS ${role}`));
  // This writer may update conditions but neither read the WDCG links the trigger joins nor the signing key.
  const got = await after([`SET LOCAL ROLE ${role}`, `UPDATE ${T.dc} SET type = 'restricted' WHERE condition_group_id = ${w.groups[0]}`]);
  t.same(got.flushes, [], 'no flush: the trigger resolved the workflows');
  t.same(got.ids, [w.id], 'the exact workflow, in a payload signed with a key the writer cannot read');
  const { rows } = await db.query(`SELECT type FROM ${T.dc} WHERE condition_group_id = $1`, [w.groups[0]]);
  t.equal(rows[0].type, 'restricted', 'the write committed');
});
