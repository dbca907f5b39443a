// Collects what the triggers NOTIFY. `drain()` sends a sentinel from the listening session itself and
// waits for it: notifications arrive in commit order, so everything committed before is in hand by then.
import pg from 'pg';
import { decode, type Message } from '../../src/codec.js';
import { DEFAULT_CHANNEL } from '../../src/contract.js';
import { quoteIdent } from '../../src/sql/quote.js';
import { connect, type TestContext } from './pg.js';
import { sign, signingKey } from './signing.js';

export interface Drained {
  payloads: string[];
  messages: Message[];
  /** Union of the ids of every evict message. */
  ids: number[];
  /** Reasons of every flush message. */
  flushes: string[];
}

export interface Collector {
  drain(): Promise<Drained>;
}

export async function collectNotifications(t: TestContext, url: string, channel = DEFAULT_CHANNEL, schema = 'public'): Promise<Collector> {
  const client: pg.Client = await connect(t, url);
  const received: string[] = [];
  let waiter: { token: string; resolve: () => void } | undefined;
  client.on('notification', (n) => {
    const payload = n.payload ?? '';
    if (waiter && payload === waiter.token) waiter.resolve();
    else received.push(payload);
  });
  await client.query(`LISTEN ${quoteIdent(channel)}`);
  let seq = 0;
  return {
    async drain() {
      const token = `afc-test-sentinel-${++seq}`;
      const arrived = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('sentinel notification did not arrive within 10 s')), 10_000);
        waiter = { token, resolve: () => (clearTimeout(timer), resolve()) };
      });
      await client.query('SELECT pg_notify($1, $2)', [channel, token]);
      await arrived;
      const payloads = received.splice(0);
      const key = await signingKey(client, schema);
      const messages = payloads.map((p) => {
        const d = decode(p);
        if (!d.ok) throw new Error(`trigger sent an undecodable payload (${d.error}): ${p.slice(0, 200)}`);
        // Where signing is installed every payload must carry a signature that verifies.
        if (key && (!d.signature || sign(key, d.signature.signed) !== p)) throw new Error(`trigger sent a payload that is not signed right: ${p.slice(0, 200)}`);
        return d.message;
      });
      const ids = [...new Set(messages.flatMap((m) => (m.op === 'evict' ? m.ids : [])))].sort((a, b) => a - b);
      const flushes = messages.flatMap((m) => (m.op === 'flush' ? [m.reason] : []));
      return { payloads, messages, ids, flushes };
    },
  };
}
