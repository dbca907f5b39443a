// Test databases: each test file gets its own database on the shared server, dropped when it ends, so
// files run in parallel without seeing each other's rows or notifications.
import tap from 'tap';
import pg from 'pg';
import { startEmbeddedServer } from '../../src/embedded/embedded-server.js';
import { quoteIdent } from '../../src/sql/quote.js';
import { renderSentrySchema } from '../../src/sql/templates.js';

export interface TestContext {
  teardown(fn: () => unknown): void;
}

const LOCAL_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
let chosen: Promise<string> | undefined;

/**
 * The server this test file uses: DATABASE_URL when set, else the local one on 127.0.0.1:5432 when it
 * answers, else an embedded PostgreSQL of this test process (stopped and removed when the process exits),
 * so `npm test` also runs on a machine with no PostgreSQL installed.
 */
export function serverUrl(): Promise<string> {
  chosen ??= chooseServer();
  return chosen;
}

async function chooseServer(): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  if (process.env.AFC_TEST_EMBEDDED !== '1' && (await answers(LOCAL_URL))) return LOCAL_URL;
  const server = await startEmbeddedServer();
  // The root test's teardown runs after every subtest's, when this file is done with the server.
  tap.teardown(() => server.dispose());
  return server.url;
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Creates a fresh database for one test file and drops it on teardown. Returns its URL. */
export async function createTestDatabase(t: TestContext, label: string): Promise<string> {
  const name = `afc_test_${label}_${process.pid}_${Date.now() % 100000}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const server = await serverUrl();
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
    await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } finally {
    await admin.end();
  }
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: server });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    await c.end();
  });
  return withDatabase(server, name);
}

export async function connect(t: TestContext, url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  t.teardown(() => client.end().catch(() => undefined));
  return client;
}

export async function createSentrySchema(client: pg.Client, schema = 'public', options: { cascade?: boolean } = {}): Promise<void> {
  await client.query(renderSentrySchema(schema, options));
}
