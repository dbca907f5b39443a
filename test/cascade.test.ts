// Users whose foreign keys cascade in the database (not Django's emulation): deleting a workflow or a
// group removes links and conditions through RI triggers, and those deletions must still notify.
import t from 'tap';
import { migrate } from '../src/migrate/migrator.js';
import { collectNotifications } from './helpers/notifications.js';
import { connect, createSentrySchema, createTestDatabase } from './helpers/pg.js';
import { Sentry } from './helpers/sentry.js';

const url = await createTestDatabase(t, 'cascade');
const db = await connect(t, url);
await createSentrySchema(db, 'sentry', { cascade: true });
await migrate(db, { schema: 'sentry', dryRun: false, lockTimeoutMs: 5000 });
const sentry = new Sentry(db, 'sentry');
const notes = await collectNotifications(t, url);

t.test('deleting a group cascades to its link and conditions and invalidates its workflow', async (t) => {
  const [w, other] = [await sentry.workflow([2, 1]), await sentry.workflow([1])];
  await notes.drain();
  await db.query(`DELETE FROM ${sentry.table('dataconditiongroup')} WHERE id = $1`, [w.groups[0]]);
  const got = await notes.drain();
  t.same(got.ids, [w.id]);
  t.notOk(got.ids.includes(other.id));
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${sentry.table('workflowdataconditiongroup')} WHERE condition_group_id = $1`, [w.groups[0]]);
  t.equal(rows[0].n, 0, 'the link was removed by the cascade');
});

t.test('deleting a workflow cascades to its links and invalidates it', async (t) => {
  const w = await sentry.workflow([1, 1]);
  await notes.drain();
  await db.query(`DELETE FROM ${sentry.table('workflow')} WHERE id = $1`, [w.id]);
  const got = await notes.drain();
  t.same(got.ids, [w.id]);
});

t.test('TRUNCATE … CASCADE from the group table flushes', async (t) => {
  await sentry.workflow([1]);
  await notes.drain();
  await db.query(`TRUNCATE ${sentry.table('dataconditiongroup')} CASCADE`);
  const got = await notes.drain();
  t.ok(got.flushes.length >= 1, 'at least one flush');
  t.ok(got.flushes.every((r) => r === 'truncate'));
});
