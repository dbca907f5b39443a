// Options more than one command declares the same way.
import { PG_ENV_DATABASE, parseDatabaseUrl, type DatabaseConfig } from './database.js';
import { option } from './option-table.js';

export const dbOption = option<DatabaseConfig>({
  flag: '--db <url>',
  env: 'DATABASE_URL',
  help: 'PostgreSQL URL (postgres://user:pass@host:port/db); without it and DATABASE_URL, libpq PG* variables',
  default: PG_ENV_DATABASE,
  defaultText: 'PG* variables',
  parse: parseDatabaseUrl,
});
