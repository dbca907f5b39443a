// The shared stores a benchmark run starts besides its redis-server (children.ts): a memcached pool and a
// Redis Cluster, each made of private processes on spare ports (never a shared server), stopped by the
// caller. Keyspace events for deletions are on in every cluster master, so a watcher can see each one.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../src/embedded/embedded-server.js';
import { track, type Child } from './children.js';

export interface Node {
  host: string;
  port: number;
}

export interface BenchPool {
  nodes: Node[];
  /** The --cache URL: `memcached://h:p,h:p` or `redis+cluster://h:p,h:p,h:p`. */
  url: string;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Distinct spare ports (freePort lets each go before returning it, so ask until there are no repeats). */
async function ports(count: number): Promise<number[]> {
  const taken = new Set<number>([6379, 11211]);
  const out: number[] = [];
  while (out.length < count) {
    const port = await freePort();
    if (taken.has(port)) continue;
    taken.add(port);
    out.push(port);
  }
  return out;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (performance.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await pause(50);
  }
}

/** A binary-protocol VERSION gets an answer. */
function memcachedAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, HOST);
    const request = Buffer.alloc(24);
    request[0] = 0x80;
    request[1] = 0x0b;
    socket.setTimeout(500);
    socket.once('connect', () => socket.write(request));
    socket.once('data', (d) => (socket.destroy(), resolve(d[0] === 0x81 && d.readUInt16BE(6) === 0)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

async function stopAll(children: Child[]): Promise<void> {
  for (const child of [...children].reverse()) await child.stop();
}

/** `count` memcached nodes, 512 MB each (nothing the bench plants is ever evicted for lack of memory). */
export async function startBenchMemcached(count: number): Promise<BenchPool> {
  const children: Child[] = [];
  try {
    for (const port of await ports(count)) {
      const args = ['-p', String(port), '-l', HOST, '-U', '0', '-m', '512'];
      // memcached refuses to run as root unless told which user to become.
      if (process.getuid?.() === 0) args.push('-u', 'root');
      const child = spawn('memcached', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      const failed = new Promise<never>((_, reject) => child.once('error', (cause) => reject(new Error('cannot run memcached (apt-get install memcached)', { cause }))));
      children.push(Object.assign(track(child, `memcached :${port}`), { port }));
      await Promise.race([until(`memcached on port ${port} answers`, () => memcachedAnswers(port)), failed]);
    }
  } catch (error) {
    await stopAll(children);
    throw error;
  }
  const nodes = children.map((c) => ({ host: HOST, port: (c as Child & { port: number }).port }));
  return { nodes, url: `memcached://${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`, stop: () => stopAll(children) };
}

async function call(port: number, ...args: string[]): Promise<unknown> {
  const client = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(args[0], ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

function run(program: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('error', (cause) => reject(new Error(`cannot run ${program} (apt-get install redis-tools)`, { cause })));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${program} exited with ${code}: ${output.slice(-500)}`))));
  });
}

/** A Redis Cluster of `masters` masters and no replicas, keyspace events for deletions on in each. */
export async function startBenchRedisCluster(masters: number): Promise<BenchPool> {
  const dir = mkdtempSync(join(tmpdir(), 'afc-bench-cluster-'));
  const children: Child[] = [];
  const all = await ports(masters * 2);
  const clientPorts = all.slice(0, masters);
  const stop = async () => {
    await stopAll(children);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const [i, port] of clientPorts.entries()) {
      // The bus port is given explicitly: the default (port + 10000) may be taken, or above 65535.
      const args = ['--port', String(port), '--bind', HOST, '--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`)];
      args.push('--cluster-port', String(all[masters + i]), '--save', '', '--appendonly', 'no', '--notify-keyspace-events', 'Eg');
      const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      const failed = new Promise<never>((_, reject) => child.once('error', (cause) => reject(new Error('cannot run redis-server', { cause }))));
      children.push(track(child, `redis-server (cluster) :${port}`));
      await Promise.race([until(`cluster node on port ${port} answers`, async () => (await call(port, 'PING')) === 'PONG'), failed]);
    }
    await run('redis-cli', ['--cluster', 'create', ...clientPorts.map((p) => `${HOST}:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    await until('every cluster node says cluster_state:ok', async () => {
      for (const port of clientPorts) if (!/^cluster_state:ok/m.test(String(await call(port, 'CLUSTER', 'INFO')))) return false;
      return true;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  const nodes = clientPorts.map((port) => ({ host: HOST, port }));
  return { nodes, url: `redis+cluster://${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`, stop };
}
