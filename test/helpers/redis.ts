// The shared Redis the tests use. When it does not answer, the test fails (never skips) with how to
// start it: CI must not go green without the Redis half of afc having been tested.
import net from 'node:net';

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
