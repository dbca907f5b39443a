// The processes a benchmark run starts: the real afc-daemon bin, watchers (bench/watcher.ts), baseline Node
// processes and a private redis-server. Each is stopped by the caller (in reverse order of start), and a
// child that dies early fails the run with what it printed instead of hanging it.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freePort } from '../src/embedded/embedded-server.js';

export interface Child {
  readonly pid: number;
  /** It has not exited. */
  running(): boolean;
  /** Resolves once the child has exited (after SIGTERM, or SIGKILL 5 s later). */
  stop(): Promise<void>;
}

export interface Watcher extends Child {
  /** Called with each `<id> <hrtime ns>` line the watcher prints. */
  onEvent(listener: (id: string, ns: bigint) => void): void;
  /** Called with each `# <name> <value>` line: figures about the watcher itself (its resolution). */
  onStat(listener: (name: string, value: number) => void): void;
  /** Writes one line to the watcher's stdin (the modes that take requests, e.g. memcached-poll). */
  send(line: string): void;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DAEMON_BIN = fileURLToPath(new URL('../../bin/afc-daemon.js', import.meta.url));
const WATCHER = fileURLToPath(new URL('./watcher.js', import.meta.url));

/** Every child still running: killed if the benchmark process exits without stopping them. */
const LIVE = new Set<ChildProcess>();
process.once('exit', () => LIVE.forEach((child) => child.kill('SIGKILL')));


/** Watches a spawned server or script: its last output is printed if it exits before stop() is called. */
export function track(child: ChildProcess, what: string): Child {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // If the benchmark itself dies (an uncaught error skips every finally), take the child with it. One
  // 'exit' listener for all of them: a run starts more children than Node's default listener limit.
  LIVE.add(child);
  void exited.then(() => LIVE.delete(child));
  let stopping = false;
  child.once('exit', (code, signal) => {
    if (!stopping) process.stderr.write(`bench: ${what} exited early (code ${code}, signal ${signal}): ${stderr}\n`);
  });
  return {
    pid: child.pid!,
    running: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves when `child` prints a line matching `ready`, rejects if it exits or stays silent for 30 s. */
function whenReady(child: ChildProcess, ready: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${what} not ready within 30 s: ${seen.slice(-500)}`)), 30_000);
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (ready.test(seen)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before it was ready: ${seen.slice(-500)}`));
    });
  });
}

/**
 * `node <args>` from the checkout's root (so `-e` scripts resolve its node_modules); resolves once its
 * stdout matches `ready`, after which its stdout is left to `onStdout` or drained so it never blocks.
 */
export async function startNodeProcess(
  what: string,
  args: string[],
  ready: RegExp,
  options: { env?: NodeJS.ProcessEnv; onStdout?: (d: Buffer) => void; stdin?: (write: (line: string) => void) => void } = {},
): Promise<Child> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const tracked = track(child, what);
  if (options.stdin) {
    child.stdin!.on('error', () => undefined);
    options.stdin((line) => void (child.stdin!.writable && child.stdin!.write(`${line}\n`)));
  }
  if (options.onStdout) child.stdout!.on('data', options.onStdout);
  try {
    await whenReady(child, ready, what);
  } catch (error) {
    await tracked.stop();
    throw error;
  }
  if (!options.onStdout) child.stdout!.resume();
  return tracked;
}

export interface DaemonChild extends Child {
  /** Flushes it has logged so far, the start-up one included, by cause. */
  flushes(): string[];
}

/** The real `afc-daemon` bin, started with `args`; resolves once it listens and has done its first flush. */
export async function startDaemonProcess(args: string[]): Promise<DaemonChild> {
  const causes: string[] = [];
  let partial = '';
  const onStdout = (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const cause = /"msg":"flushed","cause":"([^"]+)"/.exec(line)?.[1];
      if (cause) causes.push(cause);
    }
  };
  const child = await startNodeProcess('afc-daemon', [DAEMON_BIN, ...args, '--log-level', 'info'], /"msg":"flushed"/, { onStdout });
  return Object.assign(child, { flushes: () => [...causes] });
}

export async function startWatcher(args: string[]): Promise<Watcher> {
  const listeners: Array<(id: string, ns: bigint) => void> = [];
  const statListeners: Array<(name: string, value: number) => void> = [];
  let partial = '';
  let ready = false;
  let write: (line: string) => void = () => undefined;
  const onStdout = (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!ready) {
        ready = line === 'ready';
        continue;
      }
      if (line.startsWith('# ')) {
        const [, name, value] = line.split(' ');
        for (const l of statListeners) l(name, Number(value));
        continue;
      }
      const space = line.indexOf(' ');
      const id = line.slice(0, space);
      const ns = BigInt(line.slice(space + 1));
      for (const l of listeners) l(id, ns);
    }
  };
  const tracked = await startNodeProcess(`watcher ${args[0]}`, [WATCHER, ...args], /^ready$/m, { onStdout, stdin: (w) => (write = w) });
  return { ...tracked, onEvent: (l) => listeners.push(l), onStat: (l) => statListeners.push(l), send: (line) => write(line) };
}

export interface BenchRedis extends Child {
  url: string;
}

/**
 * A redis-server of the benchmark's own on a spare port, with keyspace events for deletions turned on
 * (`keyspaceEvents: false`: off), and DEBUG allowed with `debug` (for DEBUG POPULATE).
 */
export async function startBenchRedis(options: { keyspaceEvents?: boolean; debug?: boolean } = {}): Promise<BenchRedis> {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  if (options.keyspaceEvents !== false) args.push('--notify-keyspace-events', 'Eg');
  if (options.debug) args.push('--enable-debug-command', 'yes');
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const tracked = track(child, 'redis-server');
  const url = `redis://127.0.0.1:${port}/0`;
  const failed = new Promise<never>((_, reject) => child.once('error', (cause) => reject(new Error('cannot run redis-server (is Redis installed?)', { cause }))));
  const client = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  try {
    const silent = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`redis-server on port ${port} did not answer within 10 s`)), 10_000).unref());
    await Promise.race([client.ping(), failed, silent]);
  } catch (error) {
    await tracked.stop();
    throw error;
  } finally {
    client.disconnect();
  }
  child.stdout?.resume();
  return { ...tracked, url };
}
