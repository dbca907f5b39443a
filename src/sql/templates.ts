// The one renderer of the SQL under migrations/: numbered migrations, the tracking table, uninstall, and
// the demo/test/bench fixtures. Placeholders are {{name}}; an unknown one is an error, never left in.
// Values that the SQL and the TypeScript must agree on (channel, payload version, chunk bounds, the list
// of afc's objects) come from src/contract.ts, src/codec.ts and src/sql/manifest.ts.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHUNK_ID_BYTES, MAX_CHUNKS_PER_STATEMENT, PAYLOAD_VERSION, SIGNED_PAYLOAD_VERSION } from '../codec.js';
import { DEFAULT_CHANNEL } from '../contract.js';
import { MANIFEST } from './manifest.js';
import { quoteIdent, quoteLiteral } from './quote.js';

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

/** A non-migration template by its path under migrations/ (e.g. 'uninstall.sql', 'demo/seed.sql'). */
export function loadTemplate(file: string, dir = migrationsDir()): string {
  return readFileSync(join(dir, file), 'utf8');
}

export function render(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`afc: unknown placeholder {{${key}}} in SQL template`);
    return value;
  });
}

const sqlArray = (names: readonly string[]) => `ARRAY[${names.map(quoteLiteral).join(', ')}]::text[]`;

/** The values afc's own templates (migrations, tracking, uninstall, channel) are rendered with. */
export function afcValues(schema: string, channel = DEFAULT_CHANNEL): Record<string, string> {
  return {
    schema: quoteIdent(schema),
    schema_literal: quoteLiteral(schema),
    channel: quoteLiteral(channel),
    payload_version: String(PAYLOAD_VERSION),
    chunk_id_bytes: String(CHUNK_ID_BYTES),
    max_chunks: String(MAX_CHUNKS_PER_STATEMENT),
    trigger_names: sqlArray(MANIFEST.triggers.map((t) => t.name)),
    function_names: sqlArray([...MANIFEST.functions, ...MANIFEST.retiredFunctions]),
    signed_payload_version: String(SIGNED_PAYLOAD_VERSION),
    tracking_table: quoteLiteral(MANIFEST.trackingTable),
  };
}

/** Renders one of afc's own templates for `schema` (and the channel its triggers NOTIFY). */
export function renderAfc(template: string, schema: string, channel?: string): string {
  return render(template, afcValues(schema, channel));
}

/** Sentry's tables as Django creates them, for the demo, the tests and the bench; `cascade` for the other kind of user. */
export function renderSentrySchema(schema: string, options: { cascade?: boolean } = {}): string {
  return render(loadTemplate('demo/sentry-schema.sql'), { schema: quoteIdent(schema), on_delete: options.cascade ? 'ON DELETE CASCADE' : '' });
}

/** A fixture (demo seed and edits, bench data) whose placeholders are {{schema}} and `extra`. */
export function renderFixture(template: string, schema: string, extra: Record<string, string> = {}): string {
  return render(template, { ...extra, schema: quoteIdent(schema) });
}
