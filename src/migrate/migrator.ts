// Installs, upgrades and removes afc's triggers. Every change runs in one transaction, under an advisory
// lock (two hosts migrating at once: one installs, the other then finds nothing to do), and with a
// lock_timeout, so a table busy with writes makes it fail fast instead of queueing production writes
// behind the SHARE ROW EXCLUSIVE lock that CREATE TRIGGER waits for.
import type { Client } from 'pg';
import { DEFAULT_CHANNEL, TABLES } from '../contract.js';
import { AfcError } from '../errors.js';
import { MANIFEST } from '../sql/manifest.js';
import { quoteIdent } from '../sql/quote.js';
import { loadMigrations, loadTemplate, renderAfc, type Migration } from '../sql/templates.js';

export interface MigrateOptions {
  schema: string;
  dryRun: boolean;
  /** How long DDL may wait for a lock on a Sentry table before giving up. */
  lockTimeoutMs: number;
  /** The channel the triggers NOTIFY (default afc_action_filters). */
  channel?: string;
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
    await lockForDdl(client, options.schema, options.lockTimeoutMs);
    await checkSentryTables(client, options.schema);
    const migrations = loadMigrations();
    const tracked = await appliedMigrations(client, options.schema);
    const warnings = checksumWarnings(migrations, tracked);
    const pending = migrations.filter((m) => !tracked.has(m.version));
    const channel = options.channel ?? DEFAULT_CHANNEL;
    const tracking = renderAfc(loadTemplate('tracking.sql'), options.schema, channel);
    const rendered = pending.map((m) => renderAfc(m.template, options.schema, channel));
    const parts = pending.length > 0 ? [tracking, ...rendered] : [];
    if (!options.dryRun && pending.length > 0) {
      await client.query(tracking);
      for (const [i, m] of pending.entries()) {
        await runDdl(client, rendered[i], `migration ${m.version} (${m.name})`, options.lockTimeoutMs);
        await client.query(
          `INSERT INTO ${quoteIdent(options.schema)}.${MANIFEST.trackingTable} (version, name, checksum) VALUES ($1, $2, $3)`,
          [m.version, m.name, m.checksum],
        );
      }
    }
    // A migration that already ran rendered some other channel: re-point the triggers (no table lock).
    const installed = pending.some((m) => m.template.includes('afc_channel()')) ? channel : await installedChannel(client, options.schema);
    const repoint = installed !== channel;
    if (repoint) {
      const sql = renderAfc(loadTemplate('channel.sql'), options.schema, channel);
      parts.push(sql);
      if (!options.dryRun) await runDdl(client, sql, `re-pointing the triggers to channel ${channel}`, options.lockTimeoutMs);
    }
    await client.query(options.dryRun ? 'ROLLBACK' : 'COMMIT');
    const version = Math.max(0, ...tracked.keys(), ...pending.map((m) => m.version));
    return { applied: pending, version, sql: parts.join('\n'), warnings, channel, channelChanged: repoint ? { from: installed } : undefined };
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
    for (const schema of schemas) {
      await lockForDdl(client, schema, options.lockTimeoutMs);
      await runDdl(client, renderAfc(loadTemplate('uninstall.sql'), schema), `uninstall from schema ${schema}`, options.lockTimeoutMs);
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

async function lockForDdl(client: Client, schema: string, lockTimeoutMs: number): Promise<void> {
  await client.query(`SET LOCAL lock_timeout = ${ADVISORY_LOCK_WAIT_MS}`);
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('afc.migrate'), hashtext($1))`, [schema]);
  } catch (cause) {
    throw new AfcError(`another afc migrate or uninstall on schema ${schema} held its lock for over ${ADVISORY_LOCK_WAIT_MS} ms`, { cause });
  }
  await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.trunc(lockTimeoutMs))}`);
}

async function runDdl(client: Client, sql: string, what: string, lockTimeoutMs: number): Promise<void> {
  try {
    await client.query(sql);
  } catch (cause) {
    if ((cause as { code?: string }).code === '55P03') {
      throw new AfcError(
        `${what}: a Sentry table stayed locked by other sessions for over ${lockTimeoutMs} ms; nothing was changed. ` +
          'Retry when writes are calmer, or raise --lock-timeout',
        { cause },
      );
    }
    throw new AfcError(`${what} failed; nothing was changed`, { cause });
  }
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
