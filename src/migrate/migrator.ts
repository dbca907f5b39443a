// Installs, upgrades and removes afc's triggers. Every change runs in one transaction, under an advisory
// lock (two hosts migrating at once: one installs, the other then finds nothing to do), and with a
// lock_timeout, so a table busy with writes makes it fail fast instead of queueing production writes
// behind the SHARE ROW EXCLUSIVE lock that CREATE TRIGGER waits for.
import type { Client } from 'pg';
import { TABLES } from '../contract.js';
import { AfcError } from '../errors.js';
import { loadMigrations, loadTemplate, quoteIdent, render, type Migration } from './sql-files.js';

export interface MigrateOptions {
  schema: string;
  dryRun: boolean;
  /** How long DDL may wait for a lock on a Sentry table before giving up. */
  lockTimeoutMs: number;
}

export interface MigrateResult {
  applied: Migration[];
  /** Highest version installed once this run is done (or would be, for a dry run). */
  version: number;
  /** The SQL that ran, or would run with dryRun. */
  sql: string;
  warnings: string[];
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
    const tracking = render(loadTemplate('tracking.sql'), options.schema);
    const rendered = pending.map((m) => render(m.template, options.schema));
    const sql = pending.length > 0 ? [tracking, ...rendered].join('\n') : '';
    if (!options.dryRun && pending.length > 0) {
      await client.query(tracking);
      for (const [i, m] of pending.entries()) {
        await runDdl(client, rendered[i], `migration ${m.version} (${m.name})`, options.lockTimeoutMs);
        await client.query(
          `INSERT INTO ${quoteIdent(options.schema)}.afc_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
          [m.version, m.name, m.checksum],
        );
      }
    }
    await client.query(options.dryRun ? 'ROLLBACK' : 'COMMIT');
    const version = Math.max(0, ...tracked.keys(), ...pending.map((m) => m.version));
    return { applied: pending, version, sql, warnings };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Removes afc from `schema`, or from every schema it is installed in. Returns the schemas it cleaned. */
export async function uninstall(client: Client, options: { schema?: string; lockTimeoutMs: number }): Promise<string[]> {
  await client.query('BEGIN');
  try {
    const schemas = options.schema !== undefined ? [options.schema] : await installedSchemas(client);
    for (const schema of schemas) {
      await lockForDdl(client, schema, options.lockTimeoutMs);
      await runDdl(client, render(loadTemplate('uninstall.sql'), schema), `uninstall from schema ${schema}`, options.lockTimeoutMs);
    }
    await client.query('COMMIT');
    return schemas;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Schemas holding an afc tracking table or an afc trigger function. */
export async function installedSchemas(client: Client): Promise<string[]> {
  const { rows } = await client.query<{ nspname: string }>(
    `SELECT DISTINCT n.nspname FROM pg_catalog.pg_namespace n
      WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'afc_migrations')
         OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace = n.oid AND p.proname = 'afc_notify_ids')
      ORDER BY 1`,
  );
  return rows.map((r) => r.nspname);
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
  const { rows: exists } = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${quoteIdent(schema)}.afc_migrations`]);
  if (exists[0].t === null) return new Map();
  const { rows } = await client.query<{ version: number; checksum: string }>(
    `SELECT version, checksum FROM ${quoteIdent(schema)}.afc_migrations ORDER BY version`,
  );
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
