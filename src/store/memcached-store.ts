// A memcached pool as afc's store. Design rule: where a Django client put a key is unknowable (pymemcache
// hashes with rendezvous over its own node names, other clients with ketama or modulo), so an eviction is
// deleted on EVERY node. A node that fails is set aside (DOWN) instead of being waited for on every call,
// probed in the background, and when it answers again every onRecovered listener is told: the daemon then
// flushes by enumerating workflow ids, which is how the deletes the node missed are made good.
//
// Read-through (FillStore) is afc's own reader, so it picks ONE node per key, by rendezvous (highest random
// weight) hashing: the node whose SHA-1 digest of the UTF-8 bytes `<host>:<port>\n<key>`, read as an unsigned
// big-endian number, is greatest (see placeNode). It depends on the names only, not on the order of `servers`,
// and removing a node moves only that node's keys. The fill lease lives in the entry key: ADD of the
// placeholder `afc-lease:<token>`, whose reply carries the item's CAS; the token handed out is
// `<cas hex>:<token>`, and the fill is a SET with that CAS, which memcached refuses once the key was deleted
// (evicted, flushed) or replaced since.
//
// Transport: one pipelined binary-protocol Connection per node (memcached-connection.ts); every
// reconnection is a fresh one.
import { createHash, randomBytes } from 'node:crypto';
import { cacheKey } from '../contract.js';
import { backoffDelay } from '../daemon/backoff.js';
import { UsageError } from '../errors.js';
import { asError, Connection, OP, STATUS, STATUS_NAMES, type Frame, type Reply } from './memcached-connection.js';
import { LEASE_PLACEHOLDER, type ActionFilter, type CacheStore, type Leases } from './store.js';

export interface MemcachedStoreOptions {
  /** The pool, like Django's LOCATION list. */
  servers: ReadonlyArray<{ host: string; port: number }>;
  /** Non-empty. evict deletes cacheKey(p, id) for every p; read-through uses keyPrefixes[0] only. */
  keyPrefixes: readonly string[];
  /** SASL PLAIN credentials, sent when the server asks for them. */
  username?: string;
  password?: string;
  /** How long a node may leave a request unanswered (no reply at all for this long) before it is DOWN. */
  timeoutMs?: number;
  /** Longest wait between probes of a DOWN node. */
  retryMaxMs?: number;
  /** Every node error, with the node's host:port in the message. Never thrown. */
  onError?: (error: Error) => void;
}

export interface MemcachedStore extends CacheStore {
  readonly kind: 'memcached';
  scanFlush?: never;
  onRecovered(listener: () => void): void;
}

const MAX_KEY_BYTES = 250;
const MAX_RELATIVE_EXPIRY = 30 * 24 * 3600; // beyond this memcached reads an expiry as a unix time
const PROBE_BASE_MS = 100;

/** The node a read-through key lives on: highest SHA-1 of `<name>\n<key>`; the greater name breaks a tie. */
export function placeNode(key: string, names: readonly string[]): string {
  let best = '';
  let bestScore: Buffer | undefined;
  for (const name of names) {
    const score = createHash('sha1').update(`${name}\n${key}`, 'utf8').digest();
    const order = bestScore ? Buffer.compare(score, bestScore) : 1;
    if (order > 0 || (order === 0 && name > best)) [best, bestScore] = [name, score];
  }
  return best;
}

interface Node {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  conn: Connection;
  up: boolean;
  lastError?: Error;
  attempt: number;
  probeTimer?: NodeJS.Timeout;
  probing?: Connection;
}

function checkOptions(options: MemcachedStoreOptions): void {
  if (options.keyPrefixes.length === 0) throw new UsageError('memcached needs at least one keyPrefix');
  for (const prefix of options.keyPrefixes) {
    // memcached's text protocol (what Django's clients speak) splits keys on whitespace and cannot carry
    // control characters, and no key may exceed 250 bytes: check the longest key afc can make.
    if (/[\s\x00-\x1f\x7f]/.test(prefix)) {
      throw new UsageError(`invalid keyPrefix ${JSON.stringify(prefix)}: memcached keys cannot contain whitespace or control characters`);
    }
    const longest = Buffer.byteLength(cacheKey(prefix, Number.MAX_SAFE_INTEGER));
    if (longest > MAX_KEY_BYTES) {
      throw new UsageError(`invalid keyPrefix ${JSON.stringify(prefix)}: it makes keys of up to ${longest} bytes, memcached allows ${MAX_KEY_BYTES}`);
    }
  }
  if (options.servers.length === 0) throw new UsageError('memcached needs at least one server');
  const names = options.servers.map((s) => `${s.host}:${s.port}`);
  for (const [i, s] of options.servers.entries()) {
    if (!s.host || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) throw new UsageError(`invalid memcached server '${names[i]}'`);
    if (names.indexOf(names[i]) !== i) throw new UsageError(`memcached server '${names[i]}' is listed twice`);
  }
  for (const [name, value] of [['timeoutMs', options.timeoutMs], ['retryMaxMs', options.retryMaxMs]] as const) {
    if (value !== undefined && !(value > 0 && Number.isFinite(value))) throw new UsageError(`${name} must be a positive number of milliseconds, got ${value}`);
  }
}

/** Flags (0) and expiry: at least 1 s (0 would mean never), and beyond 30 days as a unix time. */
function storeExtras(seconds: number): Buffer {
  const relative = Math.max(1, Math.ceil(seconds));
  const extras = Buffer.alloc(8);
  extras.writeUInt32BE(relative > MAX_RELATIVE_EXPIRY ? Math.floor(Date.now() / 1000) + relative : relative, 4);
  return extras;
}

function decodeEntry(value: Buffer): ActionFilter[] | undefined {
  const text = value.toString('utf8');
  if (text.startsWith(LEASE_PLACEHOLDER)) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? (parsed as ActionFilter[]) : undefined;
  } catch {
    // Not ours (another writer's format): a miss, and the guarded fill replaces it.
    return undefined;
  }
}

/** The CAS a lease token carries, or undefined for a token this store did not hand out. */
function casOf(token: string | undefined): Buffer | undefined {
  const hex = /^([0-9a-f]{16}):/.exec(token ?? '')?.[1];
  return hex === undefined ? undefined : Buffer.from(hex, 'hex');
}

export function createMemcachedStore(options: MemcachedStoreOptions): MemcachedStore {
  checkOptions(options);
  const prefixes = [...options.keyPrefixes];
  const timeoutMs = options.timeoutMs ?? 1000;
  const retryMaxMs = options.retryMaxMs ?? 5000;
  const connect = (host: string, port: number) => new Connection(host, port, options.username, options.password);
  const nodes: Node[] = options.servers.map(({ host, port }) => ({ name: `${host}:${port}`, host, port, conn: connect(host, port), up: true, attempt: 0 }));
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const listeners: Array<() => void> = [];
  let closed = false;

  const report = (error: Error) => {
    try {
      options.onError?.(error);
    } catch {
      // A failing error handler must not turn a node error into ours.
    }
  };
  const assertOpen = () => {
    if (closed) throw new Error('memcached store is closed');
  };
  // memcached answers VERSION and NOOP before SASL authentication, so health is a read: workflow 0 never exists.
  const healthFrame = (): Frame => ({ opcode: OP.get, key: Buffer.from(cacheKey(prefixes[0], 0)) });
  const healthy = (status: number) => status === STATUS.ok || status === STATUS.notFound;

  /** Marks the node DOWN (once per outage), reports it and starts probing; returns the error to throw. */
  function fail(node: Node, conn: Connection, cause: unknown): Error {
    const error = new Error(`memcached ${node.name}: ${asError(cause).message}`, { cause });
    if (!closed && node.up && node.conn === conn) {
      node.up = false;
      node.lastError = error;
      conn.destroy(error);
      report(error);
      scheduleProbe(node);
    }
    return error;
  }

  function scheduleProbe(node: Node): void {
    node.probeTimer = setTimeout(() => void probe(node), backoffDelay(node.attempt++, Math.min(PROBE_BASE_MS, retryMaxMs), retryMaxMs));
    // A probe alone must not keep a process alive: whoever needs the store has handles of its own.
    node.probeTimer.unref();
  }

  async function probe(node: Node): Promise<void> {
    node.probeTimer = undefined;
    if (closed) return;
    const conn = connect(node.host, node.port);
    node.probing = conn;
    let failure: Error | undefined;
    try {
      const [reply] = await conn.send([healthFrame()], timeoutMs);
      if (!healthy(reply.status)) failure = new Error(STATUS_NAMES[reply.status] ?? `status ${reply.status}`);
    } catch (error) {
      failure = asError(error);
    }
    node.probing = undefined;
    if (closed) return conn.destroy(new Error('memcached store is closed'));
    if (failure) {
      conn.destroy(failure);
      node.lastError = new Error(`memcached ${node.name} is still down: ${failure.message}`, { cause: failure });
      report(node.lastError);
      return scheduleProbe(node);
    }
    node.conn = conn;
    node.up = true;
    node.attempt = 0;
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        report(new Error(`an onRecovered listener failed after memcached ${node.name} came back`, { cause: error }));
      }
    }
  }

  /** Sends frames to one node; a transport failure or a status `accept` refuses marks it DOWN. */
  async function run(node: Node, frames: readonly Frame[], accept: (status: number) => boolean): Promise<Reply[]> {
    if (!node.up) throw new Error(`memcached ${node.name} is down`, { cause: node.lastError });
    const conn = node.conn;
    let replies: Reply[];
    try {
      replies = await conn.send(frames, timeoutMs);
    } catch (error) {
      throw fail(node, conn, error);
    }
    const bad = replies.findIndex((r) => !accept(r.status));
    if (bad >= 0) {
      const status = replies[bad].status;
      throw fail(node, conn, new Error(`'${frames[bad].key.toString()}': ${STATUS_NAMES[status] ?? `status ${status}`}`));
    }
    return replies;
  }

  /** Read-through ids grouped by the node their first-prefix key lives on. */
  function place(ids: readonly number[]): Map<Node, number[]> {
    const names = nodes.map((n) => n.name);
    const groups = new Map<Node, number[]>();
    for (const id of ids) {
      const node = byName.get(placeNode(cacheKey(prefixes[0], id), names))!;
      const group = groups.get(node);
      if (group) group.push(id);
      else groups.set(node, [id]);
    }
    return groups;
  }
  const entryKey = (id: number) => Buffer.from(cacheKey(prefixes[0], id));

  return {
    kind: 'memcached',
    onRecovered: (listener) => void listeners.push(listener),

    async evict(ids) {
      assertOpen();
      if (ids.length === 0) return;
      const frames = ids.flatMap((id) => prefixes.map((p) => ({ opcode: OP.delete, key: Buffer.from(cacheKey(p, id)) })));
      const up = nodes.filter((n) => n.up);
      const outcomes = await Promise.allSettled(up.map((n) => run(n, frames, healthy)));
      if (outcomes.some((o) => o.status === 'fulfilled')) return;
      const errors = nodes.map((n) => {
        const i = up.indexOf(n);
        return i >= 0 ? ((outcomes[i] as PromiseRejectedResult).reason as Error) : new Error(`memcached ${n.name} is down`, { cause: n.lastError });
      });
      const reasons = errors.map((e) => (e.cause instanceof Error && e.message.endsWith('is down') ? `${e.message} (${e.cause.message})` : e.message));
      throw new Error(`evict of ${ids.length} workflows applied on no memcached node: ${reasons.join('; ')}`, { cause: errors.length === 1 ? errors[0] : new AggregateError(errors) });
    },

    async ping() {
      assertOpen();
      const up = nodes.filter((n) => n.up);
      try {
        await Promise.any(up.map((n) => run(n, [healthFrame()], healthy)));
      } catch {
        // Every node is DOWN now, each with the reason it failed.
        const reasons = nodes.map((n) => n.lastError?.message ?? `memcached ${n.name} is down`);
        throw new Error(`no memcached node answers (${nodes.map((n) => n.name).join(', ')} down): ${reasons.join('; ')}`, { cause: new AggregateError(nodes.map((n) => n.lastError)) });
      }
    },

    async getMany(ids) {
      assertOpen();
      const found = new Map<number, ActionFilter[]>();
      await Promise.all(
        [...place(ids)].map(async ([node, group]) => {
          const replies = await run(node, group.map((id) => ({ opcode: OP.get, key: entryKey(id) })), healthy);
          replies.forEach((r, i) => {
            const value = r.status === STATUS.ok ? decodeEntry(r.value) : undefined;
            if (value !== undefined) found.set(group[i], value);
          });
        }),
      );
      return found;
    },

    async lease(ids, ttlMs) {
      assertOpen();
      const extras = storeExtras(ttlMs / 1000);
      const taken: Leases = new Map();
      await Promise.all(
        [...place(ids)].map(async ([node, group]) => {
          const tokens = group.map(() => randomBytes(12).toString('base64url'));
          const frames = group.map((id, i) => ({ opcode: OP.add, key: entryKey(id), extras, value: Buffer.from(LEASE_PLACEHOLDER + tokens[i]) }));
          const replies = await run(node, frames, (s) => s === STATUS.ok || s === STATUS.exists || s === STATUS.notStored || s === STATUS.noMemory);
          replies.forEach((r, i) => {
            if (r.status !== STATUS.ok) return;
            // With -C memcached keeps no CAS: a fill could then not be guarded, so no lease is safer than one.
            if (r.cas.every((b) => b === 0)) throw new Error(`memcached ${node.name} returns no CAS (started with -C?): fills cannot be guarded`);
            taken.set(group[i], `${r.cas.toString('hex')}:${tokens[i]}`);
          });
        }),
      );
      return taken;
    },

    async fill(leases, values, ttlSeconds) {
      assertOpen();
      const extras = storeExtras(ttlSeconds);
      const ids = [...values.keys()];
      const refused = ids.filter((id) => casOf(leases.get(id)) === undefined);
      const guarded = ids.filter((id) => casOf(leases.get(id)) !== undefined);
      await Promise.all(
        [...place(guarded)].map(async ([node, group]) => {
          const frames = group.map((id) => ({ opcode: OP.set, key: entryKey(id), extras, value: Buffer.from(JSON.stringify(values.get(id))), cas: casOf(leases.get(id)) }));
          // Not found: deleted since the lease; exists: replaced since. A value too big is not written either.
          const notWritten = new Set<number>([STATUS.notFound, STATUS.exists, STATUS.tooLarge, STATUS.notStored, STATUS.noMemory]);
          const replies = await run(node, frames, (s) => s === STATUS.ok || notWritten.has(s));
          replies.forEach((r, i) => r.status !== STATUS.ok && refused.push(group[i]));
        }),
      );
      return refused;
    },

    async close() {
      if (closed) return;
      closed = true;
      const error = new Error('memcached store is closed');
      for (const node of nodes) {
        clearTimeout(node.probeTimer);
        node.conn.destroy(error);
        node.probing?.destroy(error);
      }
    },
  };
}
