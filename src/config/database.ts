// Which PostgreSQL to talk to: --db, then DATABASE_URL, then libpq's PG* variables (which the pg driver
// reads itself when given no connection string). The CLI chooses among them; this module parses and masks.
import type { ClientConfig } from 'pg';
import { UsageError } from '../errors.js';

export interface DatabaseConfig {
  /** Connection string, or undefined to let pg use PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE. */
  url: string | undefined;
  /** Where it connects, with any password masked: safe to print and log. */
  display: string;
}

/** The database libpq's PG* variables name: pg reads them itself when given no connection string. */
export const PG_ENV_DATABASE: DatabaseConfig = { url: undefined, display: 'the libpq PG* variables' };

/** Parses a postgres:// URL given as `label` (--db, DATABASE_URL, or the library's `db`). */
export function parseDatabaseUrl(url: string, label: string): DatabaseConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new UsageError(`invalid database URL in ${label}: expected postgres://user:password@host:port/dbname`, { cause });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new UsageError(`unsupported database URL scheme '${parsed.protocol}' in ${label}: use postgres://user:password@host:port/dbname`);
  }
  return { url, display: redactUrl(url) };
}

/** How the CLI names the PG* fallback, from the variables it read. */
export function pgEnvDisplay(env: NodeJS.ProcessEnv): DatabaseConfig {
  const display = `${env.PGUSER ?? '(default user)'}@${env.PGHOST ?? 'localhost'}:${env.PGPORT ?? '5432'}/${env.PGDATABASE ?? '(default db)'} (from PG* variables)`;
  return { url: undefined, display };
}

/** The URL with its password replaced by ***, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

export function clientConfig(db: DatabaseConfig, applicationName: string, extra: ClientConfig = {}): ClientConfig {
  return { connectionString: db.url, application_name: applicationName, connectionTimeoutMillis: 10_000, ...extra };
}
