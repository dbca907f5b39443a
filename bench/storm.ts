// Hostile NOTIFY storms against a real afc-daemon (Redis store, --http for its own counters), from a role
// created for it with nothing but CONNECT (dropped afterwards). Three phases of one daemon's life:
//   none:   no storm: the baseline of every figure below, in the same run (20 s; quick: 2 s);
//   flush:  forged flush payloads at a paced rate, 5,000 in 5 s (quick: 1,000 in 1 s), half unsigned
//           (v1), half signed with a key of the bench's own;
//   evict:  forged evict payloads, each naming 20 "bystander" workflows, as fast as one client can send
//           them for 20 s (quick: 2 s): statements of 1,000 pg_notify calls back to back (200 per
//           statement sent about a fifth fewer), half unsigned, half forged-signed.
// Throughout each phase a real change is committed every 100 ms (a single-row UPDATE of an action-filter
// condition in the afc schema, as superuser), and its time to eviction (`_commit_to_gone`) is taken from
// the writer's reply to the moment a watcher process sees the key deleted (keyspace events, timestamped
// on receipt in the watcher; both on the shared monotonic clock, read in ns), and also from the send.
// The daemon's RSS is sampled every 100 ms (max, and at the end of the storm), and so is
// pg_notification_queue_usage(). After the storm the bench waits until the daemon has counted every
// forged payload (afc_bad_payloads_total from /metrics; the time it took is `_drain_ms`), then reads its
// flush count and how many bystander entries disappeared: both 0 when every forgery was rejected.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { encode, type Message } from '../src/codec.js';
import { cacheKey, DEFAULT_CHANNEL } from '../src/contract.js';
import { freePort } from '../src/embedded/embedded-server.js';
import { quoteIdent, quoteLiteral } from '../src/sql/quote.js';
import { startDaemonProcess, startWatcher, type Child, type Watcher } from './children.js';
import { putEntries } from './entries.js';
import { readMetrics } from './metrics.js';
import { rssMb } from './proc-stats.js';
import { ratio, round, summarize } from './stats.js';
import { forgerKey, signed } from './signing.js';

export interface StormOptions {
  /** The bench database (afc installed in schema `afc`, bench/data.sql's layout). */
  url: string;
  /** The bench's private Redis (keyspace events on), database 0. */
  redisUrl: string;
  /** Name of the role to create (with only CONNECT) and drop. */
  role: string;
  workflows: number;
  quick: boolean;
  log: (line: string) => void;
}

type Phase = 'none' | 'flush' | 'evict';

const CHANGE_EVERY_MS = 100;
const IDS_PER_FORGED_EVICT = 20;
const EVICT_BATCH = 1000;
const FLUSH_TICK_MS = 10;
const CONDITIONS_PER_WORKFLOW = 7;

const nowNs = () => process.hrtime.bigint();
const ms = (ns: bigint) => Number(ns) / 1e6;
const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec));

/** The role's URL: the bench database, as that role. */
function asRole(url: string, role: string, password: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = password;
  return u.toString();
}

/** Forged payloads, unique within a statement (PostgreSQL drops a duplicate NOTIFY of one transaction). */
function forger(phase: 'flush' | 'evict', bystanders: [number, number]) {
  const key = forgerKey();
  let seq = 0;
  return (): string => {
    seq++;
    const ts = Math.floor(Date.now()) + (seq % 1000) / 1000;
    const first = bystanders[0] + ((seq * IDS_PER_FORGED_EVICT) % (bystanders[1] - bystanders[0] - IDS_PER_FORGED_EVICT));
    const message: Message =
      phase === 'flush'
        ? { op: 'flush', src: 'dc', ts, reason: 'truncate' }
        : { op: 'evict', src: 'dc', ts, ids: Array.from({ length: IDS_PER_FORGED_EVICT }, (_, i) => first + i) };
    return seq % 2 === 0 ? encode(message) : signed(key, message);
  };
}

interface PhaseResult {
  afterAck: number[];
  fromSend: number[];
  missed: number;
  sent: number;
  stormSeconds: number;
  drainMs: number;
  rss: number[];
  rssEnd: number;
  queueUsageMax: number;
  badPayloads: number;
  flushes: number;
  notifications: number;
  bystandersEvicted: number;
}

export async function measureStorm(opts: StormOptions): Promise<Record<string, number>> {
  const seconds: Record<Phase, number> = { none: opts.quick ? 2 : 20, flush: opts.quick ? 1 : 5, evict: opts.quick ? 2 : 20 };
  const flushPayloadsPerSecond = 1000;
  const { role } = opts;
  const password = randomBytes(12).toString('hex');
  const dbName = new URL(opts.url).pathname.slice(1);
  const prefix = `afc-bench-storm:${process.pid}:`;
  // Real changes touch workflows 1..half; forged evictions name half+1..workflows (the bystanders).
  const half = Math.floor(opts.workflows / 2);
  const bystanders: [number, number] = [half + 1, opts.workflows];
  const admin = new pg.Client({ connectionString: opts.url });
  await admin.connect();
  const redis = new Redis(opts.redisUrl);
  const started: Child[] = [];
  const clients: pg.Client[] = [];
  try {
    await admin.query(`CREATE ROLE ${quoteIdent(role)} LOGIN PASSWORD ${quoteLiteral(password)}; GRANT CONNECT ON DATABASE ${quoteIdent(dbName)} TO ${quoteIdent(role)}`);
    const attacker = new pg.Client({ connectionString: asRole(opts.url, role, password) });
    const writer = new pg.Client({ connectionString: opts.url });
    for (const c of [attacker, writer]) {
      await c.connect();
      clients.push(c);
    }
    const watcher = await startWatcher(['redis-del', opts.redisUrl, prefix]);
    started.push(watcher);
    const http = `127.0.0.1:${await freePort()}`;
    const daemon = await startDaemonProcess(['--db', opts.url, '--schema', 'afc', '--cache', opts.redisUrl, '--key-prefix', prefix, '--http', http]);
    started.push(daemon);
    await putEntries(redis, prefix, opts.workflows);

    const results = {} as Record<Phase, PhaseResult>;
    for (const phase of ['none', 'flush', 'evict'] as const) {
      results[phase] = await runPhase({ phase, seconds: seconds[phase], flushPayloadsPerSecond, opts, attacker, writer, watcher, daemon, http, redis, prefix, half, bystanders });
      const r = results[phase];
      opts.log(
        `  storm ${phase}: ${r.sent} forged payloads in ${r.stormSeconds.toFixed(1)} s, ${r.afterAck.length} real changes evicted (${r.missed} missed), ` +
          `daemon counted ${r.badPayloads} bad payloads (${Math.round(r.drainMs)} ms after the storm), ${r.flushes} flushes, RSS max ${Math.max(...r.rss)} MB`,
      );
      // Entries a forgery (or a flush) took are put back, so the next phase starts whole.
      await putEntries(redis, prefix, opts.workflows);
    }

    const out: Record<string, number> = {};
    for (const phase of ['none', 'flush', 'evict'] as const) {
      const r = results[phase];
      const key = `storm_${phase}`;
      Object.assign(out, summarize(`${key}_commit_to_gone`, r.afterAck, [50, 99]), summarize(`${key}_commit_to_gone_from_send`, r.fromSend, [50, 99]));
      out[`${key}_samples`] = r.afterAck.length;
      out[`${key}_missed`] = r.missed;
      out[`${key}_rss_max_mb`] = Math.max(...r.rss);
      out[`${key}_rss_end_mb`] = r.rssEnd;
      out[`${key}_bad_payloads`] = r.badPayloads;
      out[`${key}_flushes`] = r.flushes;
      out[`${key}_bystanders_evicted`] = r.bystandersEvicted;
      out[`${key}_notify_queue_usage_max`] = round(r.queueUsageMax, 6);
      out[`${key}_notifications_received`] = r.notifications;
      if (phase !== 'none') {
        out[`${key}_payloads_sent`] = r.sent;
        out[`${key}_payloads_per_s`] = Math.round(r.sent / r.stormSeconds);
        out[`${key}_drain_ms`] = Math.round(r.drainMs);
        for (const p of ['p50', 'p99']) out[`${key}_commit_to_gone_${p}_to_none_ratio`] = ratio(out[`${key}_commit_to_gone_${p}_ms`], out[`storm_none_commit_to_gone_${p}_ms`]);
        out[`${key}_rss_max_to_none_ratio`] = ratio(out[`${key}_rss_max_mb`], out.storm_none_rss_max_mb);
      }
    }
    return out;
  } finally {
    for (const child of started.reverse()) await child.stop();
    for (const c of clients.reverse()) await c.end().catch(() => undefined);
    redis.disconnect();
    await admin
      .query(`REVOKE CONNECT ON DATABASE ${quoteIdent(dbName)} FROM ${quoteIdent(role)}; DROP ROLE IF EXISTS ${quoteIdent(role)}`)
      .catch((error: unknown) => opts.log(`  could not drop role ${role}: ${String(error)}`));
    await admin.end();
  }
}

interface PhaseContext {
  phase: Phase;
  seconds: number;
  flushPayloadsPerSecond: number;
  opts: StormOptions;
  attacker: pg.Client;
  writer: pg.Client;
  watcher: Watcher;
  daemon: Child;
  http: string;
  redis: Redis;
  prefix: string;
  half: number;
  bystanders: [number, number];
}

async function runPhase(ctx: PhaseContext): Promise<PhaseResult> {
  const { phase, opts } = ctx;
  const m0 = await readMetrics(ctx.http);
  const admin = new pg.Client({ connectionString: opts.url });
  await admin.connect();
  try {
    // Real changes: one at a time, each on a workflow whose entry is present; evicted → put back.
    const pending = new Map<number, { t0: bigint; ack?: bigint }>();
    const afterAck: number[] = [];
    const fromSend: number[] = [];
    ctx.watcher.onEvent((id, at) => {
      const w = Number(id);
      const sent = pending.get(w);
      if (!sent || at < sent.t0) return;
      pending.delete(w);
      fromSend.push(ms(at - sent.t0));
      if (sent.ack !== undefined) afterAck.push(ms(at - sent.ack));
      void ctx.redis.set(cacheKey(ctx.prefix, w), '[]');
    });
    let running = true;
    const rss: number[] = [];
    let queueUsageMax = 0;
    const sampler = (async () => {
      while (running) {
        rss.push(await rssMb(ctx.daemon.pid));
        const { rows } = await admin.query<{ u: number }>('SELECT pg_notification_queue_usage() AS u');
        queueUsageMax = Math.max(queueUsageMax, Number(rows[0].u));
        await sleep(100);
      }
    })();
    const start = performance.now();
    const end = start + ctx.seconds * 1000;
    const changes = (async () => {
      let w = 0;
      for (let next = start; performance.now() < end; next += CHANGE_EVERY_MS) {
        await sleep(Math.max(0, next - performance.now()));
        do w = (w % ctx.half) + 1;
        while (pending.has(w));
        const sent: { t0: bigint; ack?: bigint } = { t0: nowNs() };
        pending.set(w, sent);
        const id = (w - 1) * CONDITIONS_PER_WORKFLOW + 2;
        await ctx.writer.query('UPDATE afc.workflow_engine_datacondition SET comparison = $1 WHERE id = $2', [`{"storm": "${phase}-${w}"}`, id]);
        sent.ack = nowNs();
      }
    })();
    let sent = 0;
    const forge = phase === 'none' ? undefined : forger(phase, ctx.bystanders);
    const storm = (async () => {
      if (!forge) return;
      const notify = (payloads: string[]) => ctx.attacker.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [DEFAULT_CHANNEL, payloads]);
      if (phase === 'evict') {
        while (performance.now() < end) {
          await notify(Array.from({ length: EVICT_BATCH }, forge));
          sent += EVICT_BATCH;
        }
        return;
      }
      const perTick = (ctx.flushPayloadsPerSecond * FLUSH_TICK_MS) / 1000;
      for (let next = start; next < end; next += FLUSH_TICK_MS) {
        await sleep(Math.max(0, next - performance.now()));
        await notify(Array.from({ length: perTick }, forge));
        sent += perTick;
      }
    })();
    await Promise.all([changes, storm]);
    const stormSeconds = (performance.now() - start) / 1000;
    const rssEnd = await rssMb(ctx.daemon.pid);
    // The daemon works through what is queued: wait until it has counted every forgery and seen every change.
    const drainStart = performance.now();
    const deadline = drainStart + (opts.quick ? 30_000 : 180_000);
    let m1 = await readMetrics(ctx.http);
    while ((m1.afc_bad_payloads_total - m0.afc_bad_payloads_total < sent || pending.size > 0) && performance.now() < deadline) {
      await sleep(20);
      m1 = await readMetrics(ctx.http);
    }
    const drainMs = performance.now() - drainStart;
    running = false;
    await sampler;
    const present = (await ctx.redis.exists(...Array.from({ length: ctx.bystanders[1] - ctx.bystanders[0] + 1 }, (_, i) => cacheKey(ctx.prefix, ctx.bystanders[0] + i))));
    if (pending.size > 0) opts.log(`  storm ${phase}: ${pending.size} real changes never evicted`);
    return {
      afterAck,
      fromSend,
      missed: pending.size,
      sent,
      stormSeconds,
      drainMs,
      rss,
      rssEnd,
      queueUsageMax,
      badPayloads: m1.afc_bad_payloads_total - m0.afc_bad_payloads_total,
      flushes: m1.afc_flushes_total - m0.afc_flushes_total,
      notifications: m1.afc_notifications_received_total - m0.afc_notifications_received_total,
      bystandersEvicted: ctx.bystanders[1] - ctx.bystanders[0] + 1 - present,
    };
  } finally {
    await admin.end();
  }
}
