// Payloads the benchmark sends on the channel itself: signed with the schema's key as afc's triggers sign
// them since the signing migration (the bench connects as a superuser, so it may read the key), or forged (unsigned,
// or signed with a key of the bench's own) for the storm, which the daemon must reject.
import { createHmac, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { encode, withSignature, type Message } from '../src/codec.js';
import { quoteIdent } from '../src/sql/quote.js';
import { loadTemplate, renderFixture } from '../src/sql/templates.js';

/** The signing key of `schema` (read with the daemon's own query); fails where signing is not installed. */
export async function readSigningKey(db: pg.Client, schema: string): Promise<Buffer> {
  const { rows } = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${quoteIdent(schema)}.afc_secret`]);
  if (rows[0].t === null) throw new Error(`schema ${schema} has no afc_secret: the bench expects signed payloads (afc migrate)`);
  const { rows: key } = await db.query<{ key: Buffer }>(renderFixture(loadTemplate('queries/secret-select.sql'), schema));
  if (key.length === 0) throw new Error(`${schema}.afc_secret holds no key`);
  return key[0].key;
}

/** A v2 payload signed with `key`: what a trigger would send for `message`. */
export function signed(key: Buffer, message: Message): string {
  const body = encode(message, 2);
  return withSignature(body, createHmac('sha256', key).update(body).digest('hex'));
}

/** A key nobody else has: payloads signed with it are forgeries the daemon must reject. */
export const forgerKey = () => randomBytes(32);
