// The shared Redis the tests use. When it does not answer, the test fails (never skips) with how to
// start it: CI must not go green without the Redis half of afc having been tested.
import net from 'node:net';
import { Redis } from 'ioredis';
import type { TestContext } from './pg.js';

export const START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no';

export function redisUrl(): string {
  return process.env.REDIS_URL || 'redis://127.0.0.1:6379';
}

/** Resolves with the URL once Redis answers PING; rejects with the command that starts it otherwise. */
export async function requireRedis(): Promise<string> {
  const url = new URL(redisUrl());
  const ok = await new Promise<boolean>((resolve) => {
    const socket = net.connect(Number(url.port || 6379), url.hostname);
    socket.setTimeout(2000);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => (socket.destroy(), resolve(/^\+PONG|^-NOAUTH/.test(d.toString()))));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
  if (!ok) throw new Error(`Redis does not answer at ${redisUrl()}: start it with \`${START_REDIS}\` (or set REDIS_URL)`);
  return redisUrl();
}

/**
 * A key prefix of this test file's own on the shared Redis (`afc-test:<label>:<pid>:`), so files running in
 * parallel never see each other's keys; every key under it is deleted on teardown, whatever the test left.
 */
export async function testKeyPrefix(t: TestContext, label: string): Promise<string> {
  const url = await requireRedis();
  const prefix = `afc-test:${label}:${process.pid}:`;
  t.teardown(async () => {
    const client = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`, 'COUNT', 1000);
        if (keys.length > 0) await client.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      client.disconnect();
    }
  });
  return prefix;
}
