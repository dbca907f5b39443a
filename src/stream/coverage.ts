// Whether a host heard everything, when several relays feed one stream (active-active). Design rule: an
// instant of commit time is covered when some relay was in one unbroken session around it (listening on
// PostgreSQL and appending to the stream throughout), or when the host flushed after it; a stretch no
// relay covered makes the host flush, once, after a relay listens again.
//
// Each relay's entries carry its session and when it began (since), and come every heartbeat at least, so
// a session covers [since, at of its latest entry]. A relay that loses its LISTEN connection or fails to
// append starts a new session (and says so with a gap entry); one that dies goes silent. The host keeps a
// watermark, checkedUntil: everything committed before it is known to be covered. The watermark advances
// through the relays' sessions, with a margin for the clocks of relay hosts (which must agree within it).
// When it stops advancing, the host flushes as soon as no live relay can cover it any more (each has begun
// a session after it), or when no relay has been heard for 3 heartbeats (they may all be dead: then once,
// and again when one listens).
import type { StreamEntry } from './entry.js';

interface RelayState {
  session: number;
  since: number;
  /** `at` of its latest entry in this session (relay clock). */
  lastAt: number;
  lastSeq: number;
  /** When this host last heard from it (host clock). */
  heardAt: number;
}

export interface CoverageOptions {
  heartbeatMs: number;
  /** How far apart relay and host clocks may be. */
  marginMs: number;
  now?: () => number;
}

export class Coverage {
  private readonly relays = new Map<string, RelayState>();
  /** Ended sessions, for gaps that another relay's past session covers. */
  private ended: Array<{ since: number; until: number }> = [];
  private checkedUntil: number;
  private readonly now: () => number;
  /** No relay was live at the last flush: the next flush waits until one listens again. */
  private waitingForRelay = false;

  constructor(
    private readonly options: CoverageOptions,
    startedAt: number,
  ) {
    this.now = options.now ?? Date.now;
    this.checkedUntil = startedAt - options.marginMs;
  }

  /**
   * Takes one entry into account. Returns 'lost' when this relay's sequence skipped numbers: entries of
   * it went missing from the stream (a failover, a restart), and only a flush makes up for them.
   */
  onEntry(entry: StreamEntry): 'ok' | 'lost' {
    const known = this.relays.get(entry.relay);
    const lost = known !== undefined && entry.seq !== known.lastSeq + 1;
    if (!known || known.session !== entry.session) {
      if (known) {
        // The old session ended: it covered up to its last entry, or less if the relay says so (a gap's
        // `from`: its LISTEN may have been dead a while before it noticed).
        const until = entry.op === 'gap' ? Math.min(known.lastAt, entry.from) : known.lastAt;
        this.ended.push({ since: known.since, until });
      }
      this.relays.set(entry.relay, { session: entry.session, since: entry.since, lastAt: entry.at, lastSeq: entry.seq, heardAt: this.now() });
      this.waitingForRelay = false;
    } else {
      known.lastAt = Math.max(known.lastAt, entry.at);
      known.lastSeq = entry.seq;
      known.heardAt = this.now();
    }
    return lost ? 'lost' : 'ok';
  }

  /** The host flushed at `at` (host clock): everything committed before it is covered. */
  flushed(at: number): void {
    this.checkedUntil = Math.max(this.checkedUntil, at - this.options.marginMs);
    if (this.live().length === 0) this.waitingForRelay = true;
  }

  /** Forgets sequence numbers (after the host flushed because the stream lost entries it needed). */
  resetSequences(): void {
    for (const [relay, state] of this.relays) this.relays.set(relay, { ...state, lastSeq: Number.NaN });
  }

  /** Advances the watermark; true when a stretch is known to be uncovered and the host must flush now. */
  mustFlush(): boolean {
    this.advance();
    const { heartbeatMs, marginMs } = this.options;
    const now = this.now();
    // In steady state the watermark trails the clock by a heartbeat and the margin.
    if (this.checkedUntil >= now - (2 * heartbeatMs + 2 * marginMs)) return false;
    if (this.waitingForRelay) return false;
    const live = this.live();
    if (live.length === 0) return now - this.lastHeard() > 3 * heartbeatMs;
    // Every live relay began its session after the watermark: nothing can cover it any more.
    return live.every((r) => r.since > this.checkedUntil - marginMs) || now - this.lastHeard() > 3 * heartbeatMs;
  }

  /** How far back commits are known covered (for tests and metrics). */
  get watermark(): number {
    return this.checkedUntil;
  }

  private live(): RelayState[] {
    const now = this.now();
    return [...this.relays.values()].filter((r) => now - r.heardAt <= 3 * this.options.heartbeatMs);
  }

  private lastHeard(): number {
    return Math.max(Number.NEGATIVE_INFINITY, ...[...this.relays.values()].map((r) => r.heardAt));
  }

  private advance(): void {
    const m = this.options.marginMs;
    const segments = [...this.ended, ...[...this.relays.values()].map((r) => ({ since: r.since, until: r.lastAt }))];
    for (;;) {
      let next = this.checkedUntil;
      for (const s of segments) if (s.since <= this.checkedUntil - m && s.until - m > next) next = s.until - m;
      if (next <= this.checkedUntil) break;
      this.checkedUntil = next;
    }
    // Old sessions that end before the watermark can no longer matter.
    this.ended = this.ended.filter((s) => s.until - m > this.checkedUntil);
  }
}
