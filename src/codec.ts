// The NOTIFY payload format. The triggers encode it in SQL from the constants below; the daemon decodes it
// here. A payload is only a hint: anything this module cannot decode is reported as invalid, never guessed.
//
//   v1 (migrations 1-2):  {"v":1,"op":"evict","src":"dc","ts":1732450000123.456,"ids":[12,40]}
//                         {"v":1,"op":"flush","src":"dc","ts":1732450000123.456,"reason":"truncate"}
//   v2 (migration 3 on):  the same fields with "v":2, then ,"sig":"<64 hex>" last: HMAC-SHA256 of the
//                         payload without that part (src/daemon/signing.ts checks it).
//
// `src` names the table whose statement sent it (wdcg | dcg | dc), `ts` is the epoch time in ms when the
// trigger ran (before commit), `reason` of a flush is truncate | overflow | error.
import { TABLES, type TableCode } from './contract.js';

export const PAYLOAD_VERSION = 1;
export const SIGNED_PAYLOAD_VERSION = 2;

/** PostgreSQL rejects payloads of 8000 bytes or more. */
export const MAX_PAYLOAD_BYTES = 7999;

/**
 * Bytes of id list ("12,40,") per NOTIFY. The header is at most ~90 bytes and one id at most 20, so a
 * chunk stays well under MAX_PAYLOAD_BYTES.
 */
export const CHUNK_ID_BYTES = 7600;

/** Past this many chunks in one statement the trigger sends one flush instead (a bulk rewrite). */
export const MAX_CHUNKS_PER_STATEMENT = 8;

export const FLUSH_REASONS = ['truncate', 'overflow', 'error'] as const;
export type FlushReason = (typeof FLUSH_REASONS)[number];

export type Message =
  | { op: 'evict'; src: TableCode; ts: number; ids: number[] }
  | { op: 'flush'; src: TableCode; ts: number; reason: FlushReason };

/** A v2 payload's signature and the exact text it signs. */
export interface Signature {
  sig: string;
  signed: string;
}

export type Decoded = { ok: true; message: Message; signature?: Signature } | { ok: false; error: string };

const SIG_SUFFIX = /,"sig":"([0-9a-f]{64})"\}$/;

/** Appends the signature to a v2 payload body ({"v":2,…}): for tests and tools that must speak v2. */
export function withSignature(body: string, sig: string): string {
  return `${body.slice(0, -1)},"sig":"${sig}"}`;
}

/** A v1 payload, or with `version` 2 the body a signature is computed over (see withSignature). */
export function encode(message: Message, version: 1 | 2 = PAYLOAD_VERSION): string {
  const head = `{"v":${version},"op":"${message.op}","src":"${message.src}","ts":${message.ts}`;
  return message.op === 'evict'
    ? `${head},"ids":[${message.ids.join(',')}]}`
    : `${head},"reason":"${message.reason}"}`;
}

function invalid(error: string): Decoded {
  return { ok: false, error };
}

export function decode(payload: string): Decoded {
  if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) return invalid(`payload of ${Buffer.byteLength(payload)} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return invalid('payload is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return invalid('payload is not a JSON object');
  const v = value as Record<string, unknown>;
  let signature: Signature | undefined;
  if (v.v === SIGNED_PAYLOAD_VERSION) {
    const m = SIG_SUFFIX.exec(payload);
    if (!m || v.sig !== m[1]) return invalid('a v2 payload must end with its signature, "sig":"<64 hex digits>"');
    signature = { sig: m[1], signed: `${payload.slice(0, m.index)}}` };
  } else if (v.v !== PAYLOAD_VERSION) {
    return invalid(`unsupported payload version ${JSON.stringify(v.v)}`);
  }
  if (typeof v.src !== 'string' || !Object.hasOwn(TABLES, v.src)) return invalid(`unknown src ${JSON.stringify(v.src)}`);
  if (typeof v.ts !== 'number' || !Number.isFinite(v.ts)) return invalid('ts is not a number');
  const src = v.src as TableCode;
  if (v.op === 'flush') {
    if (!FLUSH_REASONS.includes(v.reason as FlushReason)) return invalid(`unknown flush reason ${JSON.stringify(v.reason)}`);
    return { ok: true, message: { op: 'flush', src, ts: v.ts, reason: v.reason as FlushReason }, signature };
  }
  if (v.op !== 'evict') return invalid(`unknown op ${JSON.stringify(v.op)}`);
  if (!Array.isArray(v.ids)) return invalid('ids is not an array');
  for (const id of v.ids) {
    if (!Number.isSafeInteger(id) || (id as number) <= 0) return invalid(`id ${JSON.stringify(id)} is not a positive integer`);
  }
  return { ok: true, message: { op: 'evict', src, ts: v.ts, ids: v.ids as number[] }, signature };
}
