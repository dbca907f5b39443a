// Test databases: each test file gets its own database on the shared server, dropped when it ends, so
// files run in parallel without seeing each other's rows or notifications.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { quoteIdent } from '../../src/migrate/sql-files.js';

export interface TestContext {
  teardown(fn: () => unknown): void;
}

/** The server tests use: DATABASE_URL when set, else the local one on 127.0.0.1:5432 as user postgres. */
export function serverUrl(): string {
  return process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Creates a fresh database for one test file and drops it on teardown. Returns its URL. */
export async function createTestDatabase(t: TestContext, label: string): Promise<string> {
  const name = `afc_test_${label}_${process.pid}_${Date.now() % 100000}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
    await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } finally {
    await admin.end();
  }
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: serverUrl() });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    await c.end();
  });
  return withDatabase(serverUrl(), name);
}

export async function connect(t: TestContext, url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  t.teardown(() => client.end().catch(() => undefined));
  return client;
}

export async function createSentrySchema(client: pg.Client, schema = 'public', options: { cascade?: boolean } = {}): Promise<void> {
  const template = readFileSync(new URL('../fixtures/sentry-schema.sql', import.meta.url), 'utf8');
  await client.query(
    template.replaceAll('{{schema}}', quoteIdent(schema)).replaceAll('{{on_delete}}', options.cascade ? 'ON DELETE CASCADE' : ''),
  );
}
