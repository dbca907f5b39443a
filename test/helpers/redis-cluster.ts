// A Redis Cluster of the test's own: private redis-server processes on free ports (never 6379), joined with
// `redis-cli --cluster create`, stopped and removed on teardown. Tests kill, restart and fail over its nodes;
// every query here goes straight to one node, never through the code under test.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../src/embedded/embedded-server.js';
import type { TestContext } from './pg.js';
import { waitFor } from './wait.js';

export interface ClusterNode {
  host: string;
  port: number;
}

export interface RedisClusterHandle {
  /** Every node, in the order given to `redis-cli --cluster create` (use masters() for the roles). */
  nodes: ClusterNode[];
  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…` */
  url: string;
  /** Runs one command on one node (a fresh connection each time, so a dead node rejects promptly). */
  call(port: number, ...args: Array<string | number>): Promise<unknown>;
  /** The port of the master serving `slot`, as the live nodes see it now. */
  masterOf(slot: number): Promise<number>;
  /** The ports of the current masters that serve slots. */
  masters(): Promise<number[]>;
  /** The ports of the replicas of the master on `port`. */
  replicasOf(port: number): Promise<number[]>;
  /** SIGKILLs the node on `port` (no goodbye to the cluster, no persistence: its data is gone). */
  kill(port: number): Promise<void>;
  /** Starts the node on `port` again with its old cluster config, and waits until it answers. */
  start(port: number): Promise<void>;
  /** `CLUSTER FAILOVER` on `replicaPort`, then waits until it is a master. */
  failover(replicaPort: number): Promise<void>;
  /** Waits until every live node says cluster_state:ok with all 16384 slots served. */
  waitHealthy(timeoutMs?: number): Promise<void>;
}

const HOST = '127.0.0.1';

function missing(program: string, debianPackage: string, cause: unknown): Error {
  return new Error(`cannot run ${program}: install Redis (apt-get install ${debianPackage})`, { cause });
}

/** Runs a program to completion; rejects with its output when it fails. */
function run(program: string, args: string[], debianPackage: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('error', (e) => reject(missing(program, debianPackage, e)));
    child.once('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${program} ${args.join(' ')} exited with ${code}: ${output}`))));
  });
}

async function call(port: number, ...args: Array<string | number>): Promise<unknown> {
  const client = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000, commandTimeout: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    client.disconnect();
  }
}

/** CLUSTER SLOTS as seen by the first live node of `ports`: one [start, end, masterPort, ...replicaPorts] per range. */
async function slotRanges(ports: number[], alive: (port: number) => boolean): Promise<number[][]> {
  let lastError: unknown;
  for (const port of ports.filter(alive)) {
    try {
      const ranges = (await call(port, 'CLUSTER', 'SLOTS')) as Array<[number, number, ...Array<[string, number]>]>;
      return ranges.map(([start, end, ...nodes]) => [start, end, ...nodes.map((n) => Number(n[1]))]);
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error('no live cluster node answered CLUSTER SLOTS', { cause: lastError });
}

export async function startRedisCluster(t: TestContext, { masters = 3, replicasPerMaster = 0 } = {}): Promise<RedisClusterHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'afc-redis-cluster-'));
  const processes = new Map<number, ChildProcess>();
  const ports: number[] = [];
  /** Client port → cluster bus port, given explicitly: the default (port + 10000) may be taken, or above 65535. */
  const busPorts = new Map<number, number>();
  const count = masters * (1 + replicasPerMaster);
  // freePort lets go of each port before returning it; keep asking until the set has no duplicates.
  const taken = new Set<number>([6379]);
  const another = async () => {
    for (;;) {
      const port = await freePort();
      if (taken.has(port)) continue;
      taken.add(port);
      return port;
    }
  };
  while (ports.length < count) {
    const port = await another();
    ports.push(port);
    busPorts.set(port, await another());
  }
  const alive = (port: number) => {
    const child = processes.get(port);
    return child !== undefined && child.exitCode === null && child.signalCode === null && !child.killed;
  };

  const kill = async (port: number) => {
    const child = processes.get(port);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  // If the test process is ended before its teardown runs, its servers must not outlive it.
  const killAllNow = () => processes.forEach((child) => child.kill('SIGKILL'));
  process.once('exit', killAllNow);
  // Registered before anything can fail, so a half-started cluster is cleaned up too.
  t.teardown(async () => {
    await Promise.all(ports.map(kill));
    process.removeListener('exit', killAllNow);
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (port: number) => {
    const child = spawn(
      'redis-server',
      [
        '--port', String(port), '--bind', HOST, '--dir', dir,
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '1000',
        '--cluster-port', String(busPorts.get(port)),
        // A replica whose link to its master broke may still be promoted (the tests break links on purpose).
        '--cluster-replica-validity-factor', '0',
        '--save', '', '--appendonly', 'no',
        // A replica's first sync starts at once (the default waits 5 s for more replicas to share it).
        '--repl-diskless-sync-delay', '0',
      ],
      { stdio: 'ignore' },
    );
    processes.set(port, child);
    let failure: Error | undefined;
    child.once('error', (e) => (failure = missing('redis-server', 'redis-server', e)));
    child.once('exit', (code, signal) => (failure ??= new Error(`redis-server on port ${port} exited (${code ?? signal})`)));
    await waitFor(async () => failure ?? (await call(port, 'PING')) === 'PONG', `redis-server on port ${port}`, 10_000);
    if (failure) throw failure;
  };

  const handle: RedisClusterHandle = {
    nodes: ports.map((port) => ({ host: HOST, port })),
    url: `redis+cluster://${ports.map((p) => `${HOST}:${p}`).join(',')}`,
    call,
    async masterOf(slot) {
      const range = (await slotRanges(ports, alive)).find(([from, to]) => from <= slot && slot <= to);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return range[2];
    },
    async masters() {
      return [...new Set((await slotRanges(ports, alive)).map((r) => r[2]))].sort((a, b) => a - b);
    },
    async replicasOf(port) {
      const myId = String(await call(port, 'CLUSTER', 'MYID'));
      return ((await call(port, 'CLUSTER', 'REPLICAS', myId)) as string[]).map((line) => Number(/:(\d+)@/.exec(line)![1]));
    },
    kill,
    async start(port) {
      await start(port);
    },
    async failover(replicaPort) {
      await call(replicaPort, 'CLUSTER', 'FAILOVER');
      await waitFor(async () => /^role:master/m.test(String(await call(replicaPort, 'INFO', 'replication'))), `node ${replicaPort} to become a master`);
    },
    async waitHealthy(timeoutMs = 15_000) {
      await waitFor(
        async () => {
          for (const port of ports.filter(alive)) {
            const info = String(await call(port, 'CLUSTER', 'INFO'));
            if (!/^cluster_state:ok/m.test(info) || !/^cluster_slots_ok:16384/m.test(info)) return false;
          }
          return true;
        },
        'every cluster node to report cluster_state:ok with all slots served',
        timeoutMs,
      );
    },
  };

  await Promise.all(ports.map(start));
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], 'redis-tools');
  await handle.waitHealthy();
  if (replicasPerMaster > 0) {
    // A replica only counts once its first sync is done; until then it could not take over without data loss.
    await waitFor(
      async () => {
        for (const port of await handle.masters()) {
          const info = String(await call(port, 'INFO', 'replication'));
          const online = info.match(/^slave\d+:.*state=online/gm)?.length ?? 0;
          if (online < replicasPerMaster) return false;
        }
        return true;
      },
      'every replica to finish its first sync',
    );
  }
  return handle;
}
