// A memcached of the test's own on a spare port, for tests that stop, pause and restart it, plus a raw
// client for assertions that never go through the store under test.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import memjs from 'memjs';
import { freePort } from '../../src/embedded/embedded-server.js';
import type { TestContext } from './pg.js';
import { waitFor } from './wait.js';

export interface PrivateMemcached {
  host: string;
  port: number;
  /** `host:port`, the node's name in a store. */
  name: string;
  /** SIGKILL, and wait for the exit. */
  stop(): Promise<void>;
  /** Start again on the same port (empty, as memcached always starts). */
  start(): Promise<void>;
  /** SIGSTOP: the node still accepts connections but answers nothing, like a hung server. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Every key the node holds (lru_crawler metadump); not available with SASL (no text protocol). */
  keys(): Promise<string[]>;
}

export interface SaslCredentials {
  username: string;
  password: string;
}

const INSTALL = 'install it with: apt-get install -y memcached';

/** Writes a sasldb of one user with libsasl2's own sasl_setpass (through python3's ctypes: sasl2-bin is not installed). */
function saslConfig(credentials: SaslCredentials): { dir: string; error?: string } {
  const dir = mkdtempSync(join(tmpdir(), 'afc-memcached-sasl-'));
  writeFileSync(join(dir, 'memcached.conf'), `mech_list: plain\nsasldb_path: ${join(dir, 'sasldb2')}\n`);
  const script = [
    'import ctypes, sys',
    "lib = ctypes.CDLL('libsasl2.so.2')",
    "assert lib.sasl_server_init(None, b'memcached') == 0, 'sasl_server_init'",
    'conn = ctypes.c_void_p()',
    "assert lib.sasl_server_new(b'memcached', None, None, None, None, None, 0, ctypes.byref(conn)) == 0, 'sasl_server_new'",
    'user, password = sys.argv[1].encode(), sys.argv[2].encode()',
    "assert lib.sasl_setpass(conn, user, password, len(password), None, 0, 1) == 0, 'sasl_setpass'",
  ].join('\n');
  const made = spawnSync('python3', ['-c', script, credentials.username, credentials.password], { env: { ...process.env, SASL_CONF_PATH: dir }, encoding: 'utf8' });
  if (made.error || made.status !== 0) return { dir, error: `cannot write a sasldb (needs python3 and libsasl2): ${made.error?.message ?? made.stderr.trim()}` };
  return { dir };
}

/** Whether a SASL-enabled private memcached can be made here; the reason when not. */
export function saslUnavailable(): string | undefined {
  const { dir, error } = saslConfig({ username: 'probe', password: 'probe' });
  rmSync(dir, { recursive: true, force: true });
  return error;
}

/** A binary-protocol VERSION: answered before SASL authentication too. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
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

function metadump(port: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('lru_crawler metadump all\r\n'));
    let text = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('metadump timed out')));
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (!/(^|\n)(END|BUSY[^\r\n]*|ERROR[^\r\n]*)\r\n$/.test(text)) return;
      socket.destroy();
      if (!text.endsWith('END\r\n')) return reject(new Error(`metadump: ${text.trim()}`));
      const keys = [...text.matchAll(/^key=(\S+)/gm)].map((m) => decodeURIComponent(m[1]));
      resolve(keys.sort());
    });
    socket.once('error', reject);
  });
}

export async function startPrivateMemcached(t: TestContext, options: { sasl?: SaslCredentials } = {}): Promise<PrivateMemcached> {
  const port = await freePort();
  const env = { ...process.env };
  const args = ['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-m', '64'];
  // memcached refuses to run as root unless told which user to become.
  if (process.getuid?.() === 0) args.push('-u', 'root');
  if (options.sasl) {
    const { dir, error } = saslConfig(options.sasl);
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    if (error) throw new Error(error);
    env.SASL_CONF_PATH = dir;
    args.push('-S');
  }
  let proc: ChildProcess | undefined;
  const start = async () => {
    const child = spawn('memcached', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    proc = child;
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (e) => reject(new Error(`cannot run memcached: ${INSTALL}`, { cause: e })));
      child.once('exit', (code) => reject(new Error(`memcached exited (${code}) on port ${port}: ${stderr.trim()}`)));
    });
    failed.catch(() => undefined);
    await Promise.race([waitFor(() => answers(port), `private memcached on port ${port}`, 10_000), failed]);
  };
  const stop = async () => {
    const child = proc;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  await start();
  t.teardown(stop);
  return {
    host: '127.0.0.1',
    port,
    name: `127.0.0.1:${port}`,
    stop,
    start,
    pause: () => {
      if (!proc?.pid) return;
      proc.kill('SIGSTOP');
      // Returns only once every thread of it is stopped: on a loaded machine the signal takes a moment.
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline && !isStopped(proc.pid)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    },
    resume: () => void proc?.kill('SIGCONT'),
    keys: () => metadump(port),
  };
}

export interface RawClient {
  get(key: string): Promise<string | null>;
  has(key: string): Promise<boolean>;
  set(key: string, value: string): Promise<void>;
  setMany(keys: readonly string[], value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

/** A plain memjs client of one node (closed on teardown), for planting and checking keys. */
export function rawClient(t: TestContext, port: number, credentials?: SaslCredentials): RawClient {
  const client = memjs.Client.create(`127.0.0.1:${port}`, { ...credentials, retries: 1, timeout: 5, logger: { log: () => undefined } });
  t.teardown(() => client.close());
  const set = async (key: string, value: string) => {
    if (!(await client.set(key, value, { expires: 0 }))) throw new Error(`raw set ${key} failed`);
  };
  return {
    get: async (key) => (await client.get(key)).value?.toString('utf8') ?? null,
    has: async (key) => (await client.get(key)).value !== null,
    set,
    async setMany(keys, value) {
      for (let i = 0; i < keys.length; i += 5000) await Promise.all(keys.slice(i, i + 5000).map((k) => set(k, value)));
    },
    delete: async (key) => void (await client.delete(key)),
  };
}

/**
 * A TCP proxy that delays every chunk by `delayMs` each way (in order), so a client that waits for each
 * reply before sending the next request pays the delay per request, and a pipelining one only once.
 */
export async function startLaggyProxy(t: TestContext, port: number, delayMs: number): Promise<{ host: string; port: number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    const pass = (from: net.Socket, to: net.Socket) => from.on('data', (d) => void setTimeout(() => to.destroyed || to.write(d), delayMs));
    pass(client, upstream);
    pass(upstream, client);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined).on('close', () => (sockets.delete(s), client.destroy(), upstream.destroy()));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => (sockets.forEach((s) => s.destroy()), server.close(() => resolve()))));
  return { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
}

/** Every thread of `pid` is stopped (state T in /proc). */
function isStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((task) => / T /.test(readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8').replace(/^.*\)/, ')')));
  } catch {
    return false;
  }
}
