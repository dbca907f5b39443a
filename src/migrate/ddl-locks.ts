// Takes Sentry's tables for afc's DDL. Design rule: afc waits for its table locks one short attempt at a
// time, so a writer never queues behind afc for longer than one attempt (at most ATTEMPT_MAX_MS, plus the
// few ms of DDL once afc holds the tables), and a wait cycle through afc is always broken by afc giving
// up, never by a writer's deadlock error.
//
// Why: PostgreSQL queues lock requests, and a strong request that waits blocks every weaker one behind it.
// While afc waits for the lock CREATE TRIGGER or DROP TRIGGER needs, every writer of that table waits too;
// and DDL that takes the tables one by one, in an order other than the writers', deadlocks with them. So
// each attempt, inside a savepoint:
//  1. takes every table the run will touch, before any DDL, in one fixed order (LOCK_ORDER), with one LOCK
//     statement per lock mode, all of it bounded by the attempt's lock_timeout and statement_timeout;
//  2. runs the DDL, which then waits for nothing on those tables.
// On a lock wait that gave up (55P03, 57014 in step 1, or 40P01 should afc be a deadlock victim) it rolls
// back to the savepoint, which releases the tables it took and undoes its DDL, sleeps a jittered backoff
// while the writers go through, and tries again until the --lock-timeout budget is spent.
//
// Attempt lengths follow the Luby sequence (10, 10, 20, 10, 10, 20, 40, 10, … ms, up to the cap), the
// universal restart schedule when how long a try needs is unknown: every length gets about the same share
// of the budget. Under steady writes that cross the tables in other orders, an attempt mostly fails
// because a writer that started after it holds a table afc still needs while queued behind one afc holds:
// waiting longer does not help, trying again does, so short attempts come often. Long ones still come,
// for writers whose own transactions take a while to finish.
import type { Client } from 'pg';
import { TABLES } from '../contract.js';
import { AfcError } from '../errors.js';
import { quoteIdent } from '../sql/quote.js';

export type LockMode = 'SHARE ROW EXCLUSIVE' | 'ACCESS EXCLUSIVE';

/** CREATE TRIGGER's lock: it blocks writes to the table, not reads. (CREATE OR REPLACE FUNCTION locks no table.) */
export const CREATE_TRIGGER_LOCK: LockMode = 'SHARE ROW EXCLUSIVE';
/**
 * DROP TRIGGER's lock, which blocks reads too; uninstall holds it on every table before its first DROP
 * (taking it table by table, at each DROP, is what deadlocked with writers). An attempt takes it in two
 * statements: SHARE ROW EXCLUSIVE on every table, then ACCESS EXCLUSIVE on every table. Taken at once,
 * ACCESS EXCLUSIVE on the first table also stops what writers still in flight need last: the reads of
 * afc's own triggers (ACCESS SHARE on the link table) and the deferred foreign-key checks at their COMMIT
 * (ROW SHARE on the group table), so most attempts met a writer holding a table afc still needed. SHARE
 * ROW EXCLUSIVE lets those through; once afc holds it on every table no write is in flight, and the
 * second statement only waits for plain readers. (4 writers, uninstall with 10-100 ms attempts: median
 * 0.3-0.6 s to get the tables in two steps against 2.7-10 s, often never, in one.)
 */
export const DROP_TRIGGER_LOCK: LockMode = 'ACCESS EXCLUSIVE';

/**
 * Sentry's tables in the one order afc locks them: links and conditions before the group they reference,
 * the order most writers reach them in (Django deletes the children first, and a writer's deferred
 * foreign-key checks reach the group table at its COMMIT). Writers that cross it only cost afc a retry.
 */
export const LOCK_ORDER: readonly string[] = [TABLES.wdcg, TABLES.dc, TABLES.dcg];

export interface TableLock {
  schema: string;
  table: string;
  mode: LockMode;
}

export interface LockedRun {
  /** Taken in this order at the start of every attempt (see inLockOrder). */
  locks: readonly TableLock[];
  /** How long the run may wait for its tables, over all attempts (--lock-timeout). */
  budgetMs: number;
  /** What the run does, to start the error message with ("migration 1 (triggers)"). */
  what: string;
}

const ATTEMPT_MAX_MS = 100;
const ATTEMPT_UNIT_MS = 10;
const STATEMENT_SLACK_MS = 20;
const SAVEPOINT = 'afc_lock_attempt';
const STRENGTH: Record<LockMode, number> = { 'SHARE ROW EXCLUSIVE': 1, 'ACCESS EXCLUSIVE': 2 };

/** A lock wait that gave up (lock_timeout) or lost a deadlock: retrying the attempt is the answer to both. */
export function isLockWait(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return code === '55P03' || code === '40P01';
}

/**
 * The tables an afc SQL template (with its {{schema}} placeholder) changes, with the lock each needs.
 * Only trigger DDL and ALTER TABLE lock a table; a template that only replaces functions needs none.
 */
export function locksForTemplate(template: string): Map<string, LockMode> {
  const sql = template.replace(/--[^\n]*/g, '');
  const locks = new Map<string, LockMode>();
  const rules: Array<[RegExp, LockMode]> = [
    [/\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\b[^;]*?\bON\s+\{\{schema\}\}\.(\w+)/gi, CREATE_TRIGGER_LOCK],
    [/\bDROP\s+TRIGGER\b[^;]*?\bON\s+\{\{schema\}\}\.(\w+)/gi, DROP_TRIGGER_LOCK],
    [/\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?\{\{schema\}\}\.(\w+)/gi, 'ACCESS EXCLUSIVE'],
  ];
  for (const [pattern, mode] of rules) {
    for (const m of sql.matchAll(pattern)) addLock(locks, m[1], mode);
  }
  return locks;
}

/** Adds `table` to `locks` in `mode`, unless it is already there in a mode at least as strong. */
export function addLock(locks: Map<string, LockMode>, table: string, mode: LockMode): Map<string, LockMode> {
  const held = locks.get(table);
  if (held === undefined || STRENGTH[mode] > STRENGTH[held]) locks.set(table, mode);
  return locks;
}

/** The locks of one schema in LOCK_ORDER (any other table after Sentry's, by name). */
export function inLockOrder(schema: string, locks: Map<string, LockMode>): TableLock[] {
  const rank = (table: string) => (LOCK_ORDER.includes(table) ? LOCK_ORDER.indexOf(table) : LOCK_ORDER.length);
  return [...locks]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([table, mode]) => ({ schema, table, mode }));
}

/**
 * Runs `ddl` in the current transaction once `run.locks` are all held, retrying in short attempts until
 * `run.budgetMs` is spent; then fails with an AfcError, the transaction as it was before the call.
 * `ddl` must let lock waits (isLockWait) through unwrapped, so that they are retried too.
 */
export async function withTableLocks<T>(client: Client, run: LockedRun, ddl: () => Promise<T>): Promise<T> {
  const { capMs, lockTimeout, statementTimeout } = await timeouts(client);
  const phases = lockPhases(run.locks);
  const deadline = Date.now() + run.budgetMs;
  await client.query(`SAVEPOINT ${SAVEPOINT}`);
  for (let attempt = 1; ; attempt++) {
    const attemptMs = Math.max(1, Math.min(attemptLengthMs(attempt, capMs), deadline - Date.now()));
    const attemptEnd = Date.now() + attemptMs;
    let locking = true;
    try {
      for (const statement of phases) {
        // One bound for the whole attempt: what a statement waited is taken off the next one. lock_timeout
        // bounds each table's wait, statement_timeout (a little longer, never tiny) the tables' together.
        const ms = Math.max(1, attemptEnd - Date.now());
        await client.query(`SET LOCAL lock_timeout = ${ms}; SET LOCAL statement_timeout = ${ms + STATEMENT_SLACK_MS}`);
        await client.query(statement);
      }
      await client.query(`SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`, [String(capMs), statementTimeout]);
      locking = false;
      const result = await ddl();
      await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      await client.query(`SELECT set_config('lock_timeout', $1, true)`, [lockTimeout]);
      return result;
    } catch (cause) {
      const code = (cause as { code?: string }).code;
      if (!isLockWait(cause) && !(locking && code === '57014')) throw cause;
      // Releases every table this attempt took, undoes its DDL and its SETs; the savepoint stays for the next one.
      await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        const tables = [...new Set(run.locks.map((l) => `${l.schema}.${l.table}`))];
        const which = tables.length > 1 ? `one of the tables ${tables.join(', ')}` : tables.length === 1 ? `table ${tables[0]}` : 'a Sentry table';
        throw new AfcError(
          `${run.what}: ${which} stayed locked by other sessions for over ${run.budgetMs} ms; nothing was changed. ` +
            `Retry when writes are calmer, or raise --lock-timeout (afc tried ${attempt} times, each wait at most ${capMs} ms, so no write queued behind it for longer)`,
          { cause },
        );
      }
      await sleep(Math.min(left, backoffMs(attemptMs)));
    }
  }
}

/** One LOCK statement per mode: every table in SHARE ROW EXCLUSIVE, then those needing more in theirs (see DROP_TRIGGER_LOCK). */
function lockPhases(locks: readonly TableLock[]): string[] {
  const lockAll = (tables: readonly TableLock[], mode: LockMode) =>
    `LOCK TABLE ${tables.map((l) => `${quoteIdent(l.schema)}.${quoteIdent(l.table)}`).join(', ')} IN ${mode} MODE`;
  const stronger = locks.filter((l) => STRENGTH[l.mode] > STRENGTH[CREATE_TRIGGER_LOCK]);
  return [
    ...(locks.length > 0 ? [lockAll(locks, CREATE_TRIGGER_LOCK)] : []),
    ...(stronger.length > 0 ? [lockAll(stronger, DROP_TRIGGER_LOCK)] : []),
  ];
}

/**
 * The longest attempt (capMs): ATTEMPT_MAX_MS, and half of deadlock_timeout, when a session waiting behind
 * afc first looks for a cycle. And the caller's timeouts, which the DDL and what follows it run under again.
 */
async function timeouts(client: Client): Promise<{ capMs: number; lockTimeout: string; statementTimeout: string }> {
  const { rows } = await client.query<{ deadlock_ms: string; lock: string; statement: string }>(
    `SELECT (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'deadlock_timeout') AS deadlock_ms,
            current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement`,
  );
  const deadlockMs = Number(rows[0].deadlock_ms ?? 1000);
  return { capMs: Math.max(1, Math.min(ATTEMPT_MAX_MS, Math.floor(deadlockMs / 2))), lockTimeout: rows[0].lock, statementTimeout: rows[0].statement };
}

/** Attempt n's length: ATTEMPT_UNIT_MS times the n-th term of the Luby sequence (1, 1, 2, 1, 1, 2, 4, …), at most `capMs`. */
function attemptLengthMs(attempt: number, capMs: number): number {
  return Math.min(capMs, ATTEMPT_UNIT_MS * luby(attempt));
}

function luby(i: number): number {
  let k = 1;
  while (2 ** k - 1 < i) k++;
  return i === 2 ** k - 1 ? 2 ** (k - 1) : luby(i - 2 ** (k - 1) + 1);
}

/** A quarter to three quarters of the attempt that failed, jittered so retries do not fall in step with a periodic writer. */
function backoffMs(attemptMs: number): number {
  return 2 + attemptMs * (0.25 + Math.random() / 2);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
