// The signing key of migration 0003: 32 random bytes from this process (never written into a migration
// file or a dry run's output), stored with its HMAC pads, once per schema; and the daemon roles that may
// read it (afc migrate --daemon-role).
import { randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import { MANIFEST } from '../sql/manifest.js';
import { quoteIdent } from '../sql/quote.js';
import { loadTemplate, render, renderFixture } from '../sql/templates.js';

/** Stores a key in `schema`'s afc_secret when there is a table without one. */
export async function ensureSigningKey(client: Client, schema: string): Promise<void> {
  const { rows } = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${quoteIdent(schema)}.${MANIFEST.secretTable}`]);
  if (rows[0].t === null) return;
  const key = randomBytes(32);
  const { ipad, opad } = hmacPads(key);
  await client.query(renderFixture(loadTemplate('queries/secret-insert.sql'), schema), [key, ipad, opad]);
}

/** Lets `role` read the signing key of `schema` (and nothing else of afc's). */
export async function grantDaemonRole(client: Client, schema: string, role: string): Promise<void> {
  await client.query(render(loadTemplate('queries/daemon-role-grant.sql'), { schema: quoteIdent(schema), role: quoteIdent(role) }));
}

/** The HMAC pads migration 0003 stores beside the key (RFC 2104, SHA-256's 64-byte block). */
function hmacPads(key: Buffer): { ipad: Buffer; opad: Buffer } {
  const block = Buffer.alloc(64);
  key.copy(block);
  return { ipad: Buffer.from(block.map((b) => b ^ 0x36)), opad: Buffer.from(block.map((b) => b ^ 0x5c)) };
}
