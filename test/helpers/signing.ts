// Payloads as afc's triggers sign them (migration 3), for tests that must speak to a daemon directly:
// the key is read from the database (the tests connect as a superuser) and the HMAC computed here.
import { createHmac } from 'node:crypto';
import type pg from 'pg';
import { encode, withSignature, type Message } from '../../src/codec.js';
import { quoteIdent } from '../../src/sql/quote.js';

/** The signing key of `schema`, or undefined where signing is not installed. */
export async function signingKey(db: pg.Client, schema = 'public'): Promise<Buffer | undefined> {
  const { rows } = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${quoteIdent(schema)}.afc_secret`]);
  if (rows[0].t === null) return undefined;
  const { rows: key } = await db.query<{ key: Buffer }>(`SELECT key FROM ${quoteIdent(schema)}.afc_secret`);
  return key[0]?.key;
}

export function sign(key: Buffer, body: string): string {
  return withSignature(body, createHmac('sha256', key).update(body).digest('hex'));
}

/** The payload a trigger would send for `message`: signed v2 where signing is installed, else v1. */
export async function triggerPayload(db: pg.Client, message: Message, schema = 'public'): Promise<string> {
  const key = await signingKey(db, schema);
  return key ? sign(key, encode(message, 2)) : encode(message);
}
