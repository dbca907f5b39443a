// The Redis connection of a relay or a host: one Redis or a Redis Cluster, failing fast while
// disconnected (so a relay knows an append was lost) and reconnecting forever.
import { Cluster, Redis } from 'ioredis';
import type { StreamTarget } from './stream-target.js';

export type StreamClient = Redis | Cluster;

export function createStreamClient(target: StreamTarget, options: { retryMaxMs: number; commandTimeoutMs?: number; onError: (error: Error) => void }): StreamClient {
  const retry = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 10), options.retryMaxMs);
  // A command in flight when the connection drops fails at once instead of being sent again later: the
  // caller must know (a relay's append may be lost; a host's read must resume from where it was).
  const common = { enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 1, connectTimeout: 5000, commandTimeout: options.commandTimeoutMs };
  const client: StreamClient =
    target.kind === 'redis'
      ? new Redis(target.url, { ...common, retryStrategy: retry })
      : new Cluster(target.nodes, {
          enableOfflineQueue: false,
          clusterRetryStrategy: retry,
          redisOptions: { ...common, username: target.username, password: target.password, tls: target.tls ? {} : undefined },
        });
  client.on('error', options.onError);
  return client;
}

/** Waits until the client is ready (or `deadline`), without an offline queue to do it for us. */
export function whenReady(client: StreamClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    client.once('ready', onReady);
  });
}

/**
 * `work` (a command on `client`), failing as soon as the connection closes. ioredis keeps a command that
 * was in flight when the connection dropped and, without resending, never settles it; the commandTimeout
 * of these clients is the backstop for that, this the quick way.
 */
export function unlessClosed<T>(client: StreamClient, work: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onClose = () => reject(new Error('Redis connection closed'));
    client.once('close', onClose);
    work.then(
      (value) => {
        client.off('close', onClose);
        resolve(value);
      },
      (error: unknown) => {
        client.off('close', onClose);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Closes without waiting on a server that may be gone. */
export async function closeStreamClient(client: StreamClient): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}
