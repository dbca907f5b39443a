// Installs, upgrades and removes afc's triggers. Every change runs in one transaction, under an advisory
// lock (two hosts migrating at once: one installs, the other then finds nothing to do). The Sentry tables
// a change touches are taken up front, in one fixed order and in short attempts within the --lock-timeout
// budget (ddl-locks.ts), so a busy table makes afc give up instead of queueing production writes behind it,
// and afc never deadlocks with a writer.
import type { Client } from 'pg';
import { DEFAULT_CHANNEL, TABLES } from '../contract.js';
import { AfcError } from '../errors.js';
import { MANIFEST } from '../sql/manifest.js';
import { quoteIdent } from '../sql/quote.js';
import { loadMigrations, loadTemplate, renderAfc, type Migration } from '../sql/templates.js';
import { ensureSigningKey, grantDaemonRole } from './signing-key.js';
import { addLock, DROP_TRIGGER_LOCK, inLockOrder, isLockWait, locksForTemplate, withTableLocks, type LockMode, type TableLock } from './ddl-locks.js';

export interface MigrateOptions {
  schema: string;
  dryRun: boolean;
  /** How long DDL may wait for a lock on a Sentry table before giving up, over all its short attempts. */
  lockTimeoutMs: number;
  /** The channel the triggers NOTIFY (default afc_action_filters). */
  channel?: string;
  /** Roles of afc-daemons that may read the signing key (and nothing else of afc's). */
  daemonRoles?: readonly string[];
}

export interface MigrateResult {
  applied: Migration[];
  /** Highest version installed once this run is done (or would be, for a dry run). */
  version: number;
  /** The SQL that ran, or would run with dryRun. */
  sql: string;
  warnings: string[];
  /** The channel the triggers NOTIFY once this run is done. */
  channel: string;
  /** Set when this run moved the triggers from another channel. */
  channelChanged: { from: string | null } | undefined;
}

/** Waiting for another afc migrate/uninstall is normal; waiting longer than this is not. */
const ADVISORY_LOCK_WAIT_MS = 60_000;
const MIN_SERVER_VERSION = 110000;
const REQUIRED_COLUMNS: Record<string, string[]> = {
  [TABLES.wdcg]: ['id', 'workflow_id', 'condition_group_id'],
  [TABLES.dcg]: ['id', 'logic_type'],
  [TABLES.dc]: ['id', 'condition_group_id'],
};

export async function migrate(client: Client, options: MigrateOptions): Promise<MigrateResult> {
  await checkServerVersion(client);
  await client.query('BEGIN');
  try {
    await serializeAfcRuns(client, [options.schema], options.lockTimeoutMs);
    await checkSentryTables(client, options.schema);
    const migrations = loadMigrations();
    const tracked = await appliedMigrations(client, options.schema);
    const warnings = checksumWarnings(migrations, tracked);
    const pending = migrations.filter((m) => !tracked.has(m.version));
    const channel = options.channel ?? DEFAULT_CHANNEL;
    const tracking = renderAfc(loadTemplate('tracking.sql'), options.schema, channel);
    const rendered = pending.map((m) => renderAfc(m.template, options.schema, channel));
    // A migration that already ran rendered some other channel: re-point the triggers (no table lock).
    // No pending migration changes what the installed one reads, so it can be read before they run.
    const installed = pending.some((m) => m.template.includes('afc_channel()')) ? channel : await installedChannel(client, options.schema);
    const repoint = installed !== channel ? renderAfc(loadTemplate('channel.sql'), options.schema, channel) : undefined;
    const parts = [...(pending.length > 0 ? [tracking, ...rendered] : []), ...(repoint !== undefined ? [repoint] : [])];
    if (!options.dryRun && parts.length > 0) {
      // Only the tables the pending migrations put triggers on; replacing functions locks none.
      const needs = new Map<string, LockMode>();
      for (const m of pending) for (const [table, mode] of locksForTemplate(m.template)) addLock(needs, table, mode);
      const what = pending.length > 0 ? describeMigrations(pending) : `re-pointing the triggers to channel ${channel}`;
      await withTableLocks(client, { locks: inLockOrder(options.schema, needs), budgetMs: options.lockTimeoutMs, what }, async () => {
        if (pending.length > 0) await client.query(tracking);
        for (const [i, m] of pending.entries()) {
          await runDdl(client, rendered[i], `migration ${m.version} (${m.name})`);
          await client.query(
            `INSERT INTO ${quoteIdent(options.schema)}.${MANIFEST.trackingTable} (version, name, checksum) VALUES ($1, $2, $3)`,
            [m.version, m.name, m.checksum],
          );
        }
        if (repoint !== undefined) await runDdl(client, repoint, `re-pointing the triggers to channel ${channel}`);
        // Migration 4's signing key, generated here: never written into the SQL or a dry run's output.
        await ensureSigningKey(client, options.schema);
      });
    }
    if (!options.dryRun) {
      for (const role of options.daemonRoles ?? []) {
        await grantDaemonRole(client, options.schema, role).catch((cause: unknown) => {
          throw new AfcError(`cannot let role ${role} read the signing key; nothing was changed`, { cause });
        });
      }
    }
    await client.query(options.dryRun ? 'ROLLBACK' : 'COMMIT');
    const version = Math.max(0, ...tracked.keys(), ...pending.map((m) => m.version));
    return { applied: pending, version, sql: parts.join('\n'), warnings, channel, channelChanged: repoint !== undefined ? { from: installed } : undefined };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Removes afc from `schema`, or from every schema it is installed in. Returns the schemas it cleaned. */
export async function uninstall(client: Client, options: { schema?: string; lockTimeoutMs: number }): Promise<string[]> {
  await client.query('BEGIN');
  try {
    const installed = await installedSchemas(client);
    if (options.schema !== undefined && !installed.includes(options.schema)) {
      throw new AfcError(`afc is not installed in schema ${options.schema}: nothing to remove (installed in: ${installed.join(', ') || 'no schema'})`);
    }
    const schemas = options.schema !== undefined ? [options.schema] : installed;
    if (schemas.length > 0) {
      await serializeAfcRuns(client, schemas, options.lockTimeoutMs);
      // Every table holding one of afc's triggers, in DROP TRIGGER's mode (ddl-locks.ts says why).
      const locks: TableLock[] = [];
      for (const schema of schemas) locks.push(...inLockOrder(schema, await triggeredTables(client, schema)));
      await withTableLocks(client, { locks, budgetMs: options.lockTimeoutMs, what: `uninstall from schema ${schemas.join(', ')}` }, async () => {
        for (const schema of schemas) await runDdl(client, renderAfc(loadTemplate('uninstall.sql'), schema), `uninstall from schema ${schema}`);
      });
    }
    await client.query('COMMIT');
    return schemas;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Schemas holding afc's tracking table or any function of the manifest (a half-removed install counts). */
export async function installedSchemas(client: Client): Promise<string[]> {
  const { rows } = await client.query<{ nspname: string }>(
    `SELECT DISTINCT n.nspname FROM pg_catalog.pg_namespace n
      WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid AND c.relname = $1)
         OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace = n.oid AND p.proname = ANY($2))
      ORDER BY 1`,
    [MANIFEST.trackingTable, MANIFEST.functions],
  );
  return rows.map((r) => r.nspname);
}

/**
 * The channel afc's triggers in `schema` NOTIFY: afc_channel() since migration 3, the default before it
 * (0001 and 0002 render it as a constant), null when afc is not installed there.
 */
export async function installedChannel(client: Client, schema: string): Promise<string | null> {
  const { rows } = await client.query<{ fn: string | null; send: string | null }>(
    `SELECT to_regprocedure($1) AS fn, to_regprocedure($2) AS send`,
    [`${quoteIdent(schema)}.afc_channel()`, `${quoteIdent(schema)}.afc_notify_flush(text,text)`],
  );
  if (rows[0].fn !== null) {
    const { rows: channel } = await client.query<{ c: string }>(`SELECT ${quoteIdent(schema)}.afc_channel() AS c`);
    return channel[0].c;
  }
  return rows[0].send !== null ? DEFAULT_CHANNEL : null;
}

async function checkServerVersion(client: Client): Promise<void> {
  const { rows } = await client.query<{ v: string }>('SHOW server_version_num');
  if (Number(rows[0].v) < MIN_SERVER_VERSION) {
    throw new AfcError(`PostgreSQL ${rows[0].v} is too old: afc needs 11 or newer (statement triggers with transition tables)`);
  }
}

/** Waits for any other afc migrate or uninstall on `schemas` (in the order given) to finish. */
async function serializeAfcRuns(client: Client, schemas: string[], lockTimeoutMs: number): Promise<void> {
  await client.query(`SET LOCAL lock_timeout = ${ADVISORY_LOCK_WAIT_MS}`);
  for (const schema of schemas) {
    try {
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('afc.migrate'), hashtext($1))`, [schema]);
    } catch (cause) {
      throw new AfcError(`another afc migrate or uninstall on schema ${schema} held its lock for over ${ADVISORY_LOCK_WAIT_MS} ms`, { cause });
    }
  }
  await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.trunc(lockTimeoutMs))}`);
}

/** Runs one step of DDL. A lock wait goes through as it is, for withTableLocks to retry. */
async function runDdl(client: Client, sql: string, what: string): Promise<void> {
  try {
    await client.query(sql);
  } catch (cause) {
    if (isLockWait(cause)) throw cause;
    throw new AfcError(`${what} failed; nothing was changed`, { cause });
  }
}

/** The tables of `schema` that carry one of afc's triggers: what uninstall.sql will drop triggers from. */
async function triggeredTables(client: Client, schema: string): Promise<Map<string, LockMode>> {
  const { rows } = await client.query<{ relname: string }>(
    `SELECT DISTINCT c.relname FROM pg_catalog.pg_trigger t
       JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND NOT t.tgisinternal AND t.tgname = ANY($2)`,
    [schema, MANIFEST.triggers.map((tr) => tr.name)],
  );
  return new Map(rows.map((r) => [r.relname, DROP_TRIGGER_LOCK]));
}

function describeMigrations(pending: Migration[]): string {
  return `migration${pending.length > 1 ? 's' : ''} ${pending.map((m) => `${m.version} (${m.name})`).join(', ')}`;
}

async function checkSentryTables(client: Client, schema: string): Promise<void> {
  const { rows: ns } = await client.query('SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1', [schema]);
  if (ns.length === 0) throw new AfcError(`schema ${schema} does not exist in this database; pass --schema NAME with the schema that holds Sentry's workflow_engine_* tables`);
  const { rows } = await client.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = $1 AND table_name = ANY($2)`,
    [schema, Object.keys(REQUIRED_COLUMNS)],
  );
  for (const [table, columns] of Object.entries(REQUIRED_COLUMNS)) {
    const present = new Set(rows.filter((r) => r.table_name === table).map((r) => r.column_name));
    if (present.size === 0) {
      throw new AfcError(`table ${schema}.${table} not found: this is not a Sentry workflow-engine database (or pass --schema NAME); nothing was installed`);
    }
    const missing = columns.filter((c) => !present.has(c));
    if (missing.length > 0) throw new AfcError(`table ${schema}.${table} has no column ${missing.join(', ')}; nothing was installed`);
  }
}

async function appliedMigrations(client: Client, schema: string): Promise<Map<number, string>> {
  const table = `${quoteIdent(schema)}.${MANIFEST.trackingTable}`;
  const { rows: exists } = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [table]);
  if (exists[0].t === null) return new Map();
  const { rows } = await client.query<{ version: number; checksum: string }>(`SELECT version, checksum FROM ${table} ORDER BY version`);
  return new Map(rows.map((r) => [r.version, r.checksum]));
}

function checksumWarnings(migrations: Migration[], tracked: Map<number, string>): string[] {
  const warnings: string[] = [];
  const known = new Map(migrations.map((m) => [m.version, m]));
  for (const [version, checksum] of tracked) {
    const m = known.get(version);
    if (m === undefined) warnings.push(`the database has afc migration ${version}, which this package does not know: is a newer afc installed?`);
    else if (m.checksum !== checksum) warnings.push(`migration ${version} (${m.name}) changed since it was applied; afc does not re-apply it`);
  }
  return warnings;
}
