// Signed payloads (migration 0003): which notifications the daemon believes. Design rule: a payload is
// applied only if afc's triggers could have sent it, and a doubt is resolved with a flush, never by
// dropping an eviction a real change needs.
//   * Signing installed and the key read: v2 payloads whose HMAC verifies are applied once (a replay of
//     a recent one is dropped: any role can LISTEN, copy and re-send them); v1 payloads and bad
//     signatures are rejected: no trigger sends them any more.
//   * Signing not installed (an older migration): v1 payloads are applied as before. A v2 payload means
//     the database was just upgraded: the key is read again and, since it could not be checked, it
//     becomes a flush (at most one per flush floor, however many arrive).
//   * Signing installed but the key unreadable (a role without SELECT on afc_secret): every v2 payload
//     becomes a flush, and the reason is reported until fixed.
import { createHmac, timingSafeEqual } from 'node:crypto';
import pg from 'pg';
import type { Decoded } from '../codec.js';
import { clientConfig, type DatabaseConfig } from '../config/database.js';
import { AfcError } from '../errors.js';
import { quoteIdent } from '../sql/quote.js';
import { loadTemplate, renderFixture } from '../sql/templates.js';

export type Verdict = 'apply' | 'flush' | { rejected: string };

export type SigningState = { state: 'unknown' } | { state: 'off' } | { state: 'on'; key: Buffer } | { state: 'unreadable'; reason: string };

/** Signatures remembered to drop replays; an older replay gets through and costs one idempotent eviction. */
const REMEMBERED = 100_000;

export class Verifier {
  /** Until the first read, nothing is believed: every payload is a flush (the connect flush is coming anyway). */
  private current: SigningState = { state: 'unknown' };
  private readonly seen = new Set<string>();
  private refreshing: Promise<void> | undefined;
  /** When a payload last made it re-read the key: at most one such read every 2 s, however many arrive. */
  private lastSurprise = Number.NEGATIVE_INFINITY;

  constructor(private readonly source: { db: DatabaseConfig; schema: string }) {}

  get signing(): SigningState {
    return this.current;
  }

  /** Reads whether signing is installed and its key (every connect, and when a v2 payload surprises us). */
  refresh(): Promise<void> {
    this.refreshing ??= readSigning(this.source)
      .then((state) => void (this.current = state))
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  check(decoded: Extract<Decoded, { ok: true }>): Verdict {
    const { signature } = decoded;
    const state = this.current;
    if (state.state === 'unknown') return 'flush';
    if (!signature) return state.state === 'off' ? 'apply' : { rejected: 'unsigned (v1) payload: this database signs its payloads' };
    if (state.state !== 'on') {
      // Not verifiable now: re-read the key (at most every 2 s), and stay correct meanwhile with a flush.
      if (Date.now() - this.lastSurprise > 2000) {
        this.lastSurprise = Date.now();
        void this.refresh().catch(() => undefined);
      }
      return 'flush';
    }
    const expected = createHmac('sha256', state.key).update(signature.signed).digest();
    if (!timingSafeEqual(expected, Buffer.from(signature.sig, 'hex'))) return { rejected: 'signature does not verify' };
    if (this.seen.has(signature.sig)) return { rejected: 'replay of a payload already applied' };
    this.seen.add(signature.sig);
    if (this.seen.size > REMEMBERED) this.seen.delete(this.seen.values().next().value!);
    return 'apply';
  }
}

async function readSigning(source: { db: DatabaseConfig; schema: string }): Promise<SigningState> {
  const client = new pg.Client(clientConfig(source.db, 'afc-daemon-key', { connectionTimeoutMillis: 5000 }));
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${quoteIdent(source.schema)}.afc_secret`]);
    if (rows[0].t === null) return { state: 'off' };
    try {
      const { rows: key } = await client.query<{ key: Buffer }>(renderFixture(loadTemplate('queries/secret-select.sql'), source.schema));
      if (key.length === 0) return { state: 'unreadable', reason: `${source.schema}.afc_secret holds no key: run afc migrate` };
      return { state: 'on', key: key[0].key };
    } catch (cause) {
      const { rows: who } = await client.query<{ u: string }>('SELECT current_user AS u');
      return {
        state: 'unreadable',
        reason:
          `payload signing is installed in schema ${source.schema} but role ${who[0].u} cannot read its key ` +
          `(${cause instanceof Error ? cause.message : String(cause)}): run afc migrate --daemon-role ${who[0].u}, or connect as afc's owner`,
      };
    }
  } catch (cause) {
    throw new AfcError('cannot read the payload signing key', { cause });
  } finally {
    await client.end().catch(() => undefined);
  }
}
