// A redis-server of the test's own on a spare port, for tests that stop and restart it (never the shared one).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { TestContext } from './pg.js';
import { START_REDIS } from './redis.js';
import { waitFor } from './wait.js';
import { freePort } from '../../src/embedded/embedded-server.js';

export interface PrivateRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => (socket.destroy(), resolve(d.toString().startsWith('+PONG'))));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

export async function startPrivateRedis(t: TestContext): Promise<PrivateRedis> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const start = async () => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    proc = child;
    const failed = new Promise<never>((_, reject) =>
      child.once('error', (e) => reject(new Error('cannot run redis-server: install Redis (apt-get install redis-server); the shared one starts with: ' + START_REDIS, { cause: e }))),
    );
    await Promise.race([waitFor(() => answers(port), `private redis-server on port ${port}`, 10_000), failed]);
  };
  const stop = async () => {
    const child = proc;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  await start();
  t.teardown(stop);
  return { url: `redis://127.0.0.1:${port}/0`, port, stop, start };
}
