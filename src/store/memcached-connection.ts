// One pipelined binary-protocol connection to one memcached node, for the memcached store: requests are
// encoded here and sent through memjs's Server (which does the socket, SASL PLAIN and reply routing by
// opaque). memjs's Client cannot be used as is: its get/add/set have no CAS, and its one socket write per
// request made a 20,000-key eviction four times slower. A Connection is never reused after a failure (memjs
// keeps half a reply of a dead socket, and an old socket's 'close' can orphan a new one).
import memjs from 'memjs';

export const OP = { get: 0x00, set: 0x01, add: 0x02, delete: 0x04 } as const;
export const STATUS = { ok: 0x00, notFound: 0x01, exists: 0x02, tooLarge: 0x03, notStored: 0x05, noMemory: 0x82 } as const;
export const STATUS_NAMES: Record<number, string> = { 1: 'not found', 2: 'exists', 3: 'value too large', 4: 'invalid arguments', 5: 'not stored', 0x20: 'authentication error', 0x81: 'unknown command', 0x82: 'out of memory' };
export const FRAMES_PER_WRITE = 2048;

export interface Frame {
  opcode: number;
  key: Buffer;
  extras?: Buffer;
  value?: Buffer;
  cas?: Buffer;
}

export interface Reply {
  status: number;
  cas: Buffer;
  value: Buffer;
}

export const asError = (value: unknown): Error => (value instanceof Error ? value : new Error(String(value)));

export function encode(frames: readonly Frame[], seqs: readonly number[]): Buffer {
  let size = 0;
  for (const f of frames) size += 24 + (f.extras?.length ?? 0) + f.key.length + (f.value?.length ?? 0);
  const buf = Buffer.alloc(size);
  let at = 0;
  frames.forEach((f, i) => {
    const extras = f.extras?.length ?? 0;
    const value = f.value?.length ?? 0;
    buf[at] = 0x80;
    buf[at + 1] = f.opcode;
    buf.writeUInt16BE(f.key.length, at + 2);
    buf[at + 4] = extras;
    buf.writeUInt32BE(extras + f.key.length + value, at + 8);
    buf.writeUInt32BE(seqs[i], at + 12);
    f.cas?.copy(buf, at + 16);
    at += 24;
    if (f.extras) at += f.extras.copy(buf, at);
    at += f.key.copy(buf, at);
    if (f.value) at += f.value.copy(buf, at);
  });
  return buf;
}

/** One socket to one node, pipelined. A request with no reply for timeoutMs breaks it for good. */
export class Connection {
  private readonly server: memjs.Server;
  private seq = 0;
  private lastReplyAt = 0;
  private broken?: Error;

  constructor(host: string, port: number, username?: string, password?: string) {
    // memjs's own timeouts are pushed out of the way: the watchdog in send() is the one that counts.
    this.server = new memjs.Server(host, port, username, password, { timeout: 3600, conntimeout: 3600, keepAlive: true });
    // Without credentials memjs would take MEMCACHIER_*/MEMCACHE_* from the environment: afc's come from options.
    Object.assign(this.server, { username, password });
  }

  send(frames: readonly Frame[], timeoutMs: number): Promise<Reply[]> {
    if (this.broken) return Promise.reject(this.broken);
    if (frames.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const replies = new Array<Reply>(frames.length);
      let left = frames.length;
      let settled = false;
      const started = Date.now();
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error === undefined) resolve(replies);
        else reject(asError(error));
      };
      // Replies come in order, so "no reply for timeoutMs" bounds a dead node without failing a busy one.
      const watch = () => {
        const idle = Date.now() - Math.max(started, this.lastReplyAt);
        if (idle >= timeoutMs) this.destroy(new Error(`no reply within ${timeoutMs} ms`));
        else timer = setTimeout(watch, timeoutMs - idle);
      };
      let timer = setTimeout(watch, timeoutMs);
      for (let from = 0; from < frames.length; from += FRAMES_PER_WRITE) {
        const chunk = frames.slice(from, from + FRAMES_PER_WRITE);
        const seqs = chunk.map((_, j) => {
          this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1;
          const index = from + j;
          this.server.onResponse(this.seq, (r) => {
            this.lastReplyAt = Date.now();
            replies[index] = { status: r.header.status, cas: r.header.cas, value: r.val };
            if (--left === 0) finish();
          });
          this.server.onError(this.seq, finish);
          return this.seq;
        });
        this.server.write(encode(chunk, seqs));
      }
    });
  }

  /** Fails every request in flight and closes the socket now (memjs's close() only half-closes it). */
  destroy(error: Error): void {
    this.broken ??= error;
    this.server.error(error);
  }
}
