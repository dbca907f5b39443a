// Loads the SQL under migrations/ and fills in its {{placeholders}}. The values come from the contract and
// the codec, so the SQL and the TypeScript cannot disagree on the channel, the payload or the chunk bounds.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHUNK_ID_BYTES, MAX_CHUNKS_PER_STATEMENT, PAYLOAD_VERSION } from '../codec.js';
import { DEFAULT_CHANNEL } from '../contract.js';

export interface Migration {
  version: number;
  name: string;
  /** sha256 of the template, so a file edited after it was applied can be noticed. */
  checksum: string;
  template: string;
}

/** The migrations/ folder of this package, found upwards from this module (it runs from src/ and dist/src/). */
export function migrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'migrations');
    if (existsSync(join(candidate, 'tracking.sql'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`afc: no migrations/ folder found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export function loadMigrations(dir = migrationsDir()): Migration[] {
  return readdirSync(dir)
    .map((file) => /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => {
      const template = readFileSync(join(dir, m[0]), 'utf8');
      return { version: Number(m[1]), name: m[2], template, checksum: createHash('sha256').update(template).digest('hex') };
    })
    .sort((a, b) => a.version - b.version);
}

export function loadTemplate(file: 'tracking.sql' | 'uninstall.sql', dir = migrationsDir()): string {
  return readFileSync(join(dir, file), 'utf8');
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

export function render(template: string, schema: string): string {
  const values: Record<string, string> = {
    schema: quoteIdent(schema),
    schema_literal: quoteLiteral(schema),
    channel: quoteLiteral(DEFAULT_CHANNEL),
    payload_version: String(PAYLOAD_VERSION),
    chunk_id_bytes: String(CHUNK_ID_BYTES),
    max_chunks: String(MAX_CHUNKS_PER_STATEMENT),
  };
  return template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`afc: unknown placeholder {{${key}}} in migration SQL`);
    return value;
  });
}

export interface ExpectedTrigger {
  name: string;
  event: string;
  table: string;
}

/** The triggers the migrations create, read from the SQL itself so that `afc status` cannot drift from it. */
export function expectedTriggers(migrations: Migration[] = loadMigrations()): ExpectedTrigger[] {
  const found = new Map<string, ExpectedTrigger>();
  for (const m of migrations) {
    for (const match of m.template.matchAll(/CREATE TRIGGER (\w+) AFTER (\w+) ON \{\{schema\}\}\.(\w+)/g)) {
      found.set(match[1], { name: match[1], event: match[2], table: match[3] });
    }
  }
  return [...found.values()];
}
