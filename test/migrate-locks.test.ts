// `afc migrate` / `afc uninstall` next to live writers: afc takes Sentry's tables in one fixed order, waits
// for them in short attempts within the --lock-timeout budget, and so never deadlocks a writer nor makes
// one queue behind it for longer than one attempt, even when another session keeps a table busy.
import t from 'tap';
import pg from 'pg';
import { AFC_BIN, runCli, type CliResult } from './helpers/cli.js';
import { connect, createSentrySchema, createTestDatabase, type TestContext } from './helpers/pg.js';
import { Sentry, type WorkflowRows } from './helpers/sentry.js';
import { sleep, waitFor } from './helpers/wait.js';
import { loadMigrations, loadTemplate, renderAfc } from '../src/sql/templates.js';

const DC = 'workflow_engine_datacondition';
const DCG = 'workflow_engine_dataconditiongroup';
const WDCG = 'workflow_engine_workflowdataconditiongroup';

/** A generous bound against the old behaviour (writers queued the whole 5 s budget, or 1 s until a deadlock was detected). */
const MAX_WRITER_STALL_MS = 1000;

interface WriterRows {
  workflow: WorkflowRows;
  link: number;
  group: number;
  otherGroup: number;
  condition: number;
}

/** One writer's transaction: statements run in order, each on the writer's own rows (writers never contend with each other). */
type Pattern = (rows: WriterRows, round: number) => Array<[string, unknown[]]>;

const insertCondition = (group: number): [string, unknown[]] => [
  `INSERT INTO ${DC} (comparison, condition_result, type, condition_group_id) VALUES ('{"value": 2}', 'true', 'eq', $1)`,
  [group],
];

/** Different orders across the three tables, some transactions touching two tables in opposite orders. */
const PATTERNS: Pattern[] = [
  // DataCondition, then DataConditionGroup.
  (r, n) => [
    [`UPDATE ${DC} SET type = $1 WHERE id = $2`, [`t${n}`, r.condition]],
    [`UPDATE ${DCG} SET logic_type = $1 WHERE id = $2`, [n % 2 ? 'any' : 'all', r.group]],
  ],
  // DataConditionGroup, then DataCondition: the opposite order.
  (r, n) => [
    [`UPDATE ${DCG} SET logic_type = $1 WHERE id = $2`, [n % 2 ? 'any' : 'all', r.group]],
    [`UPDATE ${DC} SET type = $1 WHERE id = $2`, [`t${n}`, r.condition]],
  ],
  // WorkflowDataConditionGroup, then a DataCondition inserted and deleted.
  (r) => [
    [`UPDATE ${WDCG} SET date_updated = now() WHERE id = $1`, [r.link]],
    insertCondition(r.group),
    [`DELETE FROM ${DC} WHERE condition_group_id = $1 AND type = 'eq' AND comparison = '{"value": 2}'`, [r.group]],
  ],
  // A DataCondition moved between two groups (the row trigger's case), then WorkflowDataConditionGroup.
  (r, n) => [
    [`UPDATE ${DC} SET condition_group_id = $1 WHERE id = $2`, [n % 2 ? r.otherGroup : r.group, r.condition]],
    [`UPDATE ${WDCG} SET date_updated = now() WHERE id = $1`, [r.link]],
  ],
];

interface WriterStats {
  statements: number;
  transactions: number;
  /** Longest single statement, BEGIN and COMMIT included. */
  maxMs: number;
  /** Errors counted by SQLSTATE (40P01 is a deadlock). */
  errors: Map<string, number>;
  firstError: string | undefined;
}

interface Writers {
  stats: WriterStats;
  /** Stops the loops and returns what they recorded. */
  stop(): Promise<WriterStats>;
}

async function writerRows(sentry: Sentry): Promise<WriterRows> {
  const workflow = await sentry.workflow([1, 1]);
  const [group, otherGroup] = workflow.groups;
  const link = await sentry.one(`SELECT id FROM ${WDCG} WHERE condition_group_id = $1`, [group]);
  return { workflow, link, group, otherGroup, condition: workflow.conditions.get(group)![0] };
}

/** Starts one writer connection per pattern, each looping over its own rows until stop(). */
async function startWriters(t: TestContext, url: string, sentry: Sentry, patterns: Pattern[]): Promise<Writers> {
  const stats: WriterStats = { statements: 0, transactions: 0, maxMs: 0, errors: new Map(), firstError: undefined };
  let stopping = false;
  const loops: Array<() => Promise<void>> = [];
  for (const pattern of patterns) {
    const rows = await writerRows(sentry);
    const client = await connect(t, url);
    const timed = async (sql: string, params: unknown[] = []) => {
      const started = performance.now();
      try {
        await client.query(sql, params);
      } finally {
        stats.maxMs = Math.max(stats.maxMs, performance.now() - started);
        stats.statements++;
      }
    };
    loops.push(async () => {
      for (let round = 0; !stopping; round++) {
        try {
          await timed('BEGIN');
          for (const [sql, params] of pattern(rows, round)) await timed(sql, params);
          await timed('COMMIT');
          stats.transactions++;
        } catch (error) {
          const code = (error as { code?: string }).code ?? 'unknown';
          stats.errors.set(code, (stats.errors.get(code) ?? 0) + 1);
          stats.firstError ??= `${code}: ${(error as Error).message}`;
          await client.query('ROLLBACK').catch(() => undefined);
        }
      }
    });
  }
  const running = loops.map((loop) => loop());
  return {
    stats,
    stop: async () => {
      stopping = true;
      await Promise.all(running);
      return stats;
    },
  };
}

const errorCount = (stats: WriterStats) => [...stats.errors.values()].reduce((a, b) => a + b, 0);

async function afcTriggers(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM pg_trigger WHERE tgname LIKE 'afc%' AND NOT tgisinternal`);
  return Number(rows[0].n);
}

async function sentryDatabase(t: TestContext, label: string) {
  const url = await createTestDatabase(t, label);
  const db = await connect(t, url);
  await createSentrySchema(db);
  return { url, db, sentry: new Sentry(db) };
}

/** Runs the bin and measures how long it took, start of the process to its exit. */
async function timedCli(args: string[]): Promise<CliResult & { ms: number }> {
  const started = Date.now();
  const r = await runCli(AFC_BIN, args);
  return { ...r, ms: Date.now() - started };
}

/** A session that updated one DataCondition and keeps its transaction open: its row lock holds ROW EXCLUSIVE on the table. */
async function holdConditionRowLock(t: TestContext, url: string, condition: number): Promise<pg.Client> {
  const holder = await connect(t, url);
  await holder.query('BEGIN');
  await holder.query(`UPDATE ${DC} SET type = 'held' WHERE id = $1`, [condition]);
  return holder;
}

t.test('migrate and uninstall, five rounds under four writers: no deadlock, no writer error, no long stall', async (t) => {
  const { url, db, sentry } = await sentryDatabase(t, 'locks_rounds');
  const writers = await startWriters(t, url, sentry, PATTERNS);
  const results: Array<{ cmd: string; r: CliResult & { ms: number } }> = [];
  try {
    await waitFor(() => writers.stats.transactions > 20, 'the writers to get going');
    for (let round = 0; round < 5; round++) {
      for (const cmd of ['migrate', 'uninstall']) {
        // Quiet, afc gets the tables within 0.1-2 s of its 5 s default budget; a loaded test machine slows
        // writers and afc alike, and how soon afc gets in is not what this test is about.
        results.push({ cmd: `${cmd} (round ${round + 1})`, r: await timedCli([cmd, '--db', url, '--lock-timeout', '10000']) });
        // Writers' triggers run (or not) between the commands too.
        await sleep(50);
      }
    }
  } finally {
    await writers.stop();
  }
  const stats = writers.stats;
  for (const { cmd, r } of results) t.equal(r.code, 0, `${cmd} exits 0 ${r.stderr}`);
  t.equal(stats.errors.get('40P01') ?? 0, 0, 'no deadlock');
  t.equal(errorCount(stats), 0, `no writer error (${stats.firstError ?? 'none'})`);
  t.ok(stats.maxMs < MAX_WRITER_STALL_MS, `longest writer statement ${stats.maxMs.toFixed(0)} ms (< ${MAX_WRITER_STALL_MS} ms)`);
  t.ok(stats.transactions > 100, `the writers kept writing throughout (${stats.transactions} transactions, ${stats.statements} statements)`);
  t.equal(await afcTriggers(db), 0, 'uninstalled at the end');
  t.comment(`rounds: writers' longest statement ${stats.maxMs.toFixed(0)} ms over ${stats.statements} statements; afc runs took ${results.map((x) => x.r.ms).join(', ')} ms`);
});

t.test('a DataCondition row locked by an open transaction: afc gives up after its budget while other writers go on', async (t) => {
  const { url, db, sentry } = await sentryDatabase(t, 'locks_held');
  const held = await writerRows(sentry);
  const afcFailsWhileHeld = async (cmd: 'migrate' | 'uninstall') => {
    const holder = await holdConditionRowLock(t, url, held.condition);
    const writers = await startWriters(t, url, sentry, [PATTERNS[0], PATTERNS[3]]);
    let r: CliResult & { ms: number };
    try {
      await waitFor(() => writers.stats.transactions > 10, 'the writers to get going');
      r = await timedCli([cmd, '--db', url, '--lock-timeout', '1500']);
    } finally {
      await writers.stop();
    }
    const stats = writers.stats;
    t.equal(r.code, 1, `${cmd} fails while the row stays locked`);
    t.match(r.stderr, /stayed locked by other sessions for over 1500 ms; nothing was changed/);
    t.ok(r.ms >= 1000 && r.ms < 10_000, `${cmd} gave up after about its budget (${r.ms} ms)`);
    t.equal(errorCount(stats), 0, `no writer error (${stats.firstError ?? 'none'})`);
    t.ok(stats.maxMs < MAX_WRITER_STALL_MS, `writers on other rows never queued behind ${cmd}: longest statement ${stats.maxMs.toFixed(0)} ms`);
    t.ok(stats.transactions > 20, `the writers kept writing (${stats.transactions} transactions)`);
    t.comment(`${cmd} while a row is held: gave up after ${r.ms} ms, writers' longest statement ${stats.maxMs.toFixed(0)} ms`);
    return holder;
  };

  const beforeMigrate = await afcFailsWhileHeld('migrate');
  t.equal(await afcTriggers(db), 0, 'nothing was installed');
  t.equal((await db.query(`SELECT to_regclass('afc_migrations') AS t`)).rows[0].t, null, 'not even the tracking table');
  await beforeMigrate.query('ROLLBACK');
  const migrated = await runCli(AFC_BIN, ['migrate', '--db', url]);
  t.equal(migrated.code, 0, `migrate succeeds once the row is released ${migrated.stderr}`);
  t.equal(await afcTriggers(db), 12);

  const beforeUninstall = await afcFailsWhileHeld('uninstall');
  t.equal(await afcTriggers(db), 12, 'every trigger is still there');
  await beforeUninstall.query('ROLLBACK');
  const removed = await runCli(AFC_BIN, ['uninstall', '--db', url]);
  t.equal(removed.code, 0, `uninstall succeeds once the row is released ${removed.stderr}`);
  t.equal(await afcTriggers(db), 0);
});

t.test('a lock released within the budget: migrate retries and succeeds instead of failing', async (t) => {
  const { url, db } = await sentryDatabase(t, 'locks_retry');
  const holder = await connect(t, url);
  const watcher = await connect(t, url);
  await holder.query('BEGIN');
  await holder.query(`LOCK TABLE ${DC} IN ROW EXCLUSIVE MODE`);
  const run = timedCli(['migrate', '--db', url, '--lock-timeout', '5000']);
  const afcWaits = async () =>
    (
      await watcher.query(
        `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE a.application_name = 'afc-migrate' AND a.datname = current_database() AND NOT l.granted`,
      )
    ).rows.length > 0;
  await waitFor(afcWaits, 'afc migrate to wait for the table', 10_000, 2);
  const seen = Date.now();
  // Between two attempts afc leaves the lock queue, and the writers queued behind it go through.
  await waitFor(async () => !(await afcWaits()), 'afc to leave the lock queue between attempts', 1000, 2);
  t.pass(`afc left the lock queue ${Date.now() - seen} ms after joining it, the table still locked`);
  // Held ~300 ms after afc first waited for it: a later attempt, not the first, gets it.
  await sleep(Math.max(0, 300 - (Date.now() - seen)));
  await holder.query('ROLLBACK');
  const r = await run;
  t.equal(r.code, 0, `migrate succeeds once the lock is gone ${r.stderr}`);
  t.match(r.stdout, /applied migration 3/);
  t.equal(await afcTriggers(db), 12);
  t.ok(r.ms < 5000, `well within its budget (${r.ms} ms)`);
});

t.test('an upgrade that only replaces functions, and re-pointing the channel, take no table lock', async (t) => {
  const { url, db, sentry } = await sentryDatabase(t, 'locks_none');
  // What an older package left behind: migrations 1 and 2, the ones that create triggers.
  await db.query(renderAfc(loadTemplate('tracking.sql'), 'public'));
  for (const m of loadMigrations().filter((m) => m.version <= 2)) {
    await db.query(renderAfc(m.template, 'public'));
    await db.query('INSERT INTO afc_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
  }
  const held = await writerRows(sentry);
  const holder = await holdConditionRowLock(t, url, held.condition);
  const upgrade = await timedCli(['migrate', '--db', url, '--lock-timeout', '1000']);
  t.equal(upgrade.code, 0, `the upgrade went through the locked table ${upgrade.stderr}`);
  t.match(upgrade.stdout, /applied migration 3 \(signed_payloads\)/);
  t.notMatch(upgrade.stdout, /applied migration [12] /);
  const repoint = await timedCli(['migrate', '--db', url, '--lock-timeout', '1000', '--channel', 'afc_other']);
  t.equal(repoint.code, 0, `so did re-pointing the channel ${repoint.stderr}`);
  t.match(repoint.stdout, /now NOTIFY channel afc_other/);
  await holder.query('ROLLBACK');
  t.equal(await afcTriggers(db), 12, 'the triggers of migrations 1 and 2, untouched');
});
