// The shared store on a Redis Cluster, through ioredis' Cluster client.
//
// Design rule: a master that changed, or that we lost, may have taken acknowledged evictions with it, so
// afc flushes. Replication is asynchronous: an UNLINK the old master acknowledged but had not yet sent to
// its replica is gone once that replica is promoted, and the entry is back, stale. So every topology event
// that may hide such a loss counts: a slot whose master differs after a slots refresh (failover, manual
// or automatic, or a resharding); a master that restarted in place (its INFO run_id changed: it came back
// without whatever it had not persisted); or the whole cluster ready again after being lost. Once every
// master answers again, each onRecovered listener is called and the daemon flushes by enumerating
// workflow ids (a cluster cannot be listed by SCAN in one place, hence no scanFlush). A spurious flush only
// costs a refill; a missed one leaves a stale entry, so where in doubt the rule flushes.
//
// ioredis 5 emits 'refresh' after each CLUSTER SLOTS it applied (at connect, every slotsRefreshInterval,
// after a MOVED or a failed node), '+node'/'-node' as node connections are made and end, 'node error',
// 'error' and the status events ('ready', 'close', 'end', …). Slot masters are compared on 'refresh' against
// a copy of our own, because ioredis rewrites its slot table in place on MOVED. A '-node' of a master only
// makes us read every master's run_id again: a connection dropped by a master that kept running (an idle
// timeout, a network blip) lost nothing, and flushing for it would be a needless refill.
//
// Commands fail fast while the cluster is unreachable (no offline queue), so the evictor knows an eviction
// was not applied. Multi-key commands only ever name keys of one hash slot: no CROSSSLOT, whatever the prefix.
import { randomUUID } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import { cacheKey } from '../contract.js';
import { LEASE_PLACEHOLDER, type ActionFilter, type CacheStore, type Leases } from './store.js';

// KEYS: the entry. ARGV: the reader's placeholder, the value, ttl seconds. One key, so it runs in a cluster;
// one script, so no eviction can slip between the check and the write.
const FILL_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0`;

/** How often ioredis re-reads the slot table, which is how a failover nobody sent a command into is seen. */
const TOPOLOGY_CHECK_MS = 2000;
/** The longest a first use waits for the very first connect, and close() for the sockets to go. */
const FIRST_CONNECT_MS = 5000;
const CLOSE_WAIT_MS = 1000;

export interface RedisClusterStoreOptions {
  /** Seed nodes: any reachable one is enough to learn the rest. */
  nodes: ReadonlyArray<{ host: string; port: number }>;
  /** TLS to every node (rediss+cluster://). */
  tls?: boolean;
  /** ACL user. */
  username?: string;
  password?: string;
  /** Non-empty. evict deletes the entry under every prefix; the read-through uses the first. */
  keyPrefixes: readonly string[];
  /** Keys per UNLINK or MGET (default 1000). */
  batchSize?: number;
  /** Longest wait between reconnect attempts (default 5000). */
  retryMaxMs?: number;
  /** Every client and node error is reported here, never left unhandled. */
  onError?: (error: Error) => void;
}

export interface RedisClusterStore extends CacheStore {
  readonly kind: 'redis-cluster';
  readonly client: Cluster;
  /** Calls `listener` whenever evictions may have been lost (see the header), once every master answers. */
  onRecovered(listener: () => void): void;
}

interface FillCommand {
  afcFill(key: string, placeholder: string, value: string, ttlSeconds: number): Promise<number>;
}

/** Groups keys by hash slot, then cuts each group into batches of at most `size`: each batch is one command. */
export function slotBatches(keys: readonly string[], size: number): string[][] {
  const bySlot = new Map<number, string[]>();
  for (const key of keys) {
    const slot = calculateSlot(key);
    const group = bySlot.get(slot);
    if (group) group.push(key);
    else bySlot.set(slot, [key]);
  }
  const batches: string[][] = [];
  for (const group of bySlot.values()) {
    for (let i = 0; i < group.length; i += size) batches.push(group.slice(i, i + size));
  }
  return batches;
}

/** Runs every command; rejects (with the first failure as cause) if any failed, after all have settled. */
async function allApplied<T>(what: string, commands: Array<Promise<T>>): Promise<T[]> {
  const settled = await Promise.allSettled(commands);
  const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed.length > 0) throw new Error(`redis cluster ${what} failed for ${failed.length} of ${settled.length} commands`, { cause: failed[0].reason });
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export function createRedisClusterStore(options: RedisClusterStoreOptions): RedisClusterStore {
  if (options.keyPrefixes.length === 0) throw new Error('a Redis Cluster store needs at least one key prefix');
  if (options.nodes.length === 0) throw new Error('a Redis Cluster store needs at least one seed node');
  const prefixes = [...options.keyPrefixes];
  const fillPrefix = prefixes[0];
  const batchSize = options.batchSize ?? 1000;
  const retryMaxMs = options.retryMaxMs ?? 5000;
  const report = (error: Error) => options.onError?.(error);

  const client = new Cluster(
    options.nodes.map(({ host, port }) => ({ host, port })),
    {
      enableOfflineQueue: false,
      enableReadyCheck: true,
      // ioredis follows MOVED and ASK itself; these bound how long a command chases a moving slot or a
      // failing-over master before it rejects (16 tries, 100 ms apart), so evict never hangs.
      maxRedirections: 16,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      // TRYAGAIN only answers a multi-key command whose keys a slot migration has split; ours then go key by
      // key (see inOneSlot), so there is no point waiting long for the migration to end.
      retryDelayOnTryAgain: 10,
      slotsRefreshTimeout: 1000,
      slotsRefreshInterval: TOPOLOGY_CHECK_MS,
      // Reconnect forever: a daemon without its store is useless, and giving up would need a restart.
      clusterRetryStrategy: (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 10), retryMaxMs),
      scripts: { afcFill: { numberOfKeys: 1, lua: FILL_SCRIPT } },
      // With TLS, connect by the seed's host name (not the address it resolves to), so the certificate matches.
      ...(options.tls ? { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) } : {}),
      redisOptions: {
        username: options.username,
        password: options.password,
        tls: options.tls ? {} : undefined,
        connectTimeout: 5000,
        commandTimeout: 10_000,
        maxRetriesPerRequest: 1,
      },
    },
  );
  const fillCommand = client as unknown as FillCommand;

  const listeners: Array<() => void> = [];
  let closed = false;
  let everReady = false;
  /** Slot → "host:port" of its master, as of the last refresh we saw. */
  let knownMasters: string[] | undefined;
  /** "host:port" → run_id of each master seen: a new run_id is a restart. */
  const runIds = new Map<string, string>();
  // Topology events that may have lost evictions, and how many of them the last onRecovered covered.
  let losses = 0;
  let signalled = 0;
  /** A master connection ended, or no run_ids are known yet: read them at the next check. */
  let runIdsStale = true;
  let checking = false;

  client.on('error', (error: Error) => report(error));
  client.on('node error', (error: Error, node: string) => report(new Error(`redis cluster node ${node}: ${error.message}`, { cause: error })));

  client.on('refresh', () => {
    if (closed) return;
    const now = Array.from({ length: 16384 }, (_, slot) => client.slots[slot]?.[0] ?? '');
    if (knownMasters && now.some((master, slot) => master !== knownMasters![slot])) losses++;
    knownMasters = now;
    void check();
  });
  client.on('-node', (node: Redis) => {
    if (!closed && !node.options.readOnly) runIdsStale = true;
  });
  client.on('ready', () => {
    if (everReady) losses++;
    everReady = true;
    void check();
  });

  /**
   * Reads every master's run_id (the pool's masters as of the last refresh), counting a changed one as a
   * loss. False unless every master answered.
   */
  async function readRunIds(): Promise<boolean> {
    const masters = client.nodes('master');
    if (masters.length === 0) return false;
    const infos = await Promise.allSettled(masters.map((node) => node.info('server')));
    if (infos.some((info) => info.status === 'rejected')) return false;
    infos.forEach((info, i) => {
      const runId = /^run_id:(\w+)/m.exec((info as PromiseFulfilledResult<string>).value)?.[1] ?? '';
      const node = `${masters[i].options.host}:${masters[i].options.port}`;
      const before = runIds.get(node);
      if (before !== undefined && before !== runId) losses++;
      runIds.set(node, runId);
    });
    return true;
  }

  // Runs after each refresh and on 'ready'. Tells the listeners once every master answers, so the flush
  // they start can reach every slot; until then losses stay pending and the next refresh (every
  // TOPOLOGY_CHECK_MS at most) checks again.
  async function check(): Promise<void> {
    if (checking || closed || client.status !== 'ready' || (losses === signalled && !runIdsStale)) return;
    checking = true;
    let covering: number | undefined;
    try {
      runIdsStale = false;
      if (!(await readRunIds())) runIdsStale = true;
      else if (!closed && losses !== signalled) covering = losses;
    } catch (error) {
      runIdsStale = true;
      report(new Error('redis cluster recovery check failed', { cause: error }));
    } finally {
      checking = false;
    }
    if (covering === undefined) return;
    signalled = covering;
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        report(new Error('an onRecovered listener threw', { cause: error }));
      }
    }
    // A loss seen while the masters were being asked is not covered by this call: check again.
    void check();
  }

  // Without an offline queue a command fails while disconnected, which is what the evictor wants; but a
  // brand-new client is not connected yet either, so the first use waits for the first connect attempt to
  // succeed or fail ('close': no seed node answered), bounded.
  const firstReady = Promise.race([
    new Promise<void>((resolve) => {
      for (const event of ['ready', 'close', 'end']) client.once(event, () => resolve());
    }),
    delay(FIRST_CONNECT_MS),
  ]);
  async function usable(): Promise<void> {
    if (closed) throw new Error('the redis cluster store is closed');
    if (!everReady) await firstReady;
  }

  // A multi-key command on keys of one slot. While that slot migrates, a node answers TRYAGAIN if it holds
  // only some of them, and ioredis retries TRYAGAIN on a random master, which answers MOVED: after its last
  // redirection the error names either. One key at a time, each follows its own ASK redirection instead.
  async function inOneSlot<T>(keys: string[], many: (keys: string[]) => Promise<T[]>, one: (key: string) => Promise<T>): Promise<T[]> {
    try {
      return await many(keys);
    } catch (error) {
      if (keys.length === 1 || !/TRYAGAIN|MOVED|ASK/.test(String((error as Error | undefined)?.message))) throw error;
      return allApplied('single-key retry', keys.map(one));
    }
  }

  async function getMany(ids: readonly number[]): Promise<Map<number, ActionFilter[]>> {
    await usable();
    const found = new Map<number, ActionFilter[]>();
    const idOf = new Map(ids.map((id) => [cacheKey(fillPrefix, id), id]));
    const batches = slotBatches([...idOf.keys()], batchSize);
    const replies = await allApplied('MGET', batches.map((keys) => inOneSlot(keys, (k) => client.mget(...k), (k) => client.get(k))));
    batches.forEach((keys, b) =>
      replies[b].forEach((raw, i) => {
        // Missing, or a reader's placeholder (its fill is still to come): a miss either way.
        if (raw === null || raw.startsWith(LEASE_PLACEHOLDER)) return;
        try {
          const value: unknown = JSON.parse(raw);
          if (Array.isArray(value)) found.set(idOf.get(keys[i])!, value as ActionFilter[]);
        } catch {
          // Not ours (another writer's format): a miss, and the guarded fill will replace it.
        }
      }),
    );
    return found;
  }

  return {
    kind: 'redis-cluster',
    client,
    onRecovered: (listener) => void listeners.push(listener),
    async evict(ids) {
      await usable();
      const keys = ids.flatMap((id) => prefixes.map((prefix) => cacheKey(prefix, id)));
      // One UNLINK per slot batch, all in flight at once: ioredis writes each node's share back to back on
      // its connection, so a burst costs about one round trip per node rather than one per key.
      await allApplied('UNLINK', slotBatches(keys, batchSize).map((batch) => inOneSlot(batch, async (k) => [await client.unlink(...k)], (k) => client.unlink(k))));
    },
    getMany,
    async lease(ids, ttlMs) {
      await usable();
      const tokens = ids.map(() => randomUUID());
      const replies = await allApplied(
        'lease SET NX',
        ids.map((id, i) => client.set(cacheKey(fillPrefix, id), LEASE_PLACEHOLDER + tokens[i], 'PX', ttlMs, 'NX')),
      );
      const taken: Leases = new Map();
      replies.forEach((reply, i) => {
        if (reply === 'OK' && !taken.has(ids[i])) taken.set(ids[i], tokens[i]);
      });
      return taken;
    },
    async fill(leases, values, ttlSeconds) {
      await usable();
      const held = [...values.keys()].filter((id) => leases.has(id));
      const refused = [...values.keys()].filter((id) => !leases.has(id));
      const written = await allApplied(
        'fill',
        held.map((id) => fillCommand.afcFill(cacheKey(fillPrefix, id), LEASE_PLACEHOLDER + leases.get(id)!, JSON.stringify(values.get(id)), ttlSeconds)),
      );
      return [...refused, ...held.filter((_, i) => written[i] !== 1)];
    },
    async ping() {
      await usable();
      if (client.status !== 'ready') throw new Error(`redis cluster is not connected (${client.status})`);
      const info = await client.cluster('INFO');
      const state = /^cluster_state:(\w+)/m.exec(String(info))?.[1];
      if (state !== 'ok') throw new Error(`redis cluster state is '${state ?? 'unknown'}'`);
      await allApplied('PING of every master', client.nodes('master').map((node) => node.ping()));
    },
    async close() {
      if (closed) return;
      closed = true;
      if (client.status === 'end') return;
      // disconnect() (not QUIT, which needs live nodes) also cancels a pending reconnect and the slots
      // refresh timer. 'end' only follows when node connections were open; while reconnecting there are none.
      const hadNodes = client.nodes().length > 0;
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      client.disconnect();
      if (hadNodes) await Promise.race([ended, delay(CLOSE_WAIT_MS)]);
    },
  };
}
