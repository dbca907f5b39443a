// The host's coverage rule on its own (src/stream/coverage.ts), with a clock the test moves: when relays'
// sessions cover every instant no flush is asked for; an uncovered stretch asks for exactly one; relays
// that all went silent ask for one, then one more when a relay listens again; lost entries are reported.
import t from 'tap';
import { Coverage } from '../src/stream/coverage.js';
import type { StreamEntry } from '../src/stream/entry.js';

const HB = 100;
const M = 50;

function world(startAt = 10_000) {
  let now = startAt;
  const seqs = new Map<string, number>();
  const coverage = new Coverage({ heartbeatMs: HB, marginMs: M, now: () => now }, startAt);
  const hb = (relay: string, session: number, since: number, extra: Partial<StreamEntry> = {}): 'ok' | 'lost' => {
    const seq = (seqs.get(relay) ?? 0) + 1;
    seqs.set(relay, seq);
    return coverage.onEntry({ op: 'hb', relay, session, since, seq, at: now, ...extra } as StreamEntry);
  };
  /** Advances the clock in heartbeat steps, the given relays beating; returns how many flushes were asked for. */
  const run = (ms: number, beats: Array<[string, number, number]>): number => {
    let flushes = 0;
    for (let t = 0; t < ms; t += HB) {
      now += HB;
      for (const [relay, session, since] of beats) hb(relay, session, since);
      if (coverage.mustFlush()) {
        flushes++;
        coverage.flushed(now);
      }
    }
    return flushes;
  };
  return { coverage, hb, run, now: () => now, skip: (relay: string) => seqs.set(relay, (seqs.get(relay) ?? 0) + 1) };
}

t.test('relays listening since before the host started: never a flush', async (t) => {
  const w = world();
  t.equal(w.run(5000, [['a', 1, 5000], ['b', 1, 6000]]), 0);
});

t.test('one of two relays reconnects (a new session after a gap): no flush, the other covered it', async (t) => {
  const w = world();
  w.run(1000, [['a', 1, 5000], ['b', 1, 5000]]);
  const cut = w.now();
  w.hb('a', 2, cut + 300, { op: 'gap', from: cut - 200, to: cut + 300 } as Partial<StreamEntry>);
  t.equal(w.run(5000, [['a', 2, cut + 300], ['b', 1, 5000]]), 0);
});

t.test('both relays reconnect: exactly one flush', async (t) => {
  const w = world();
  w.run(1000, [['a', 1, 5000], ['b', 1, 5000]]);
  const cut = w.now();
  w.hb('a', 2, cut + 200, { op: 'gap', from: cut - 200, to: cut + 200 } as Partial<StreamEntry>);
  w.hb('b', 2, cut + 300, { op: 'gap', from: cut - 200, to: cut + 300 } as Partial<StreamEntry>);
  t.equal(w.run(5000, [['a', 2, cut + 200], ['b', 2, cut + 300]]), 1);
});

t.test('the only relay goes silent: one flush, none while no relay runs, one more when a relay listens again', async (t) => {
  const w = world();
  w.run(1000, [['a', 1, 5000]]);
  t.equal(w.run(2000, []), 1, 'one flush once it has been silent for three heartbeats');
  t.equal(w.run(5000, []), 0, 'no flush storm while no relay runs');
  const back = w.now();
  t.equal(w.run(2000, [['c', 1, back]]), 1, 'one more once a relay listens again');
  t.equal(w.run(3000, [['c', 1, back]]), 0);
});

t.test('a relay that started after the host began covers nothing before it: one flush', async (t) => {
  const w = world();
  t.equal(w.run(3000, [['late', 1, 10_050]]), 1);
});

t.test('a skipped sequence number is reported as lost entries', async (t) => {
  const w = world();
  t.equal(w.hb('a', 1, 5000), 'ok');
  t.equal(w.hb('a', 1, 5000), 'ok');
  w.skip('a');
  t.equal(w.hb('a', 1, 5000), 'lost');
  t.equal(w.hb('a', 1, 5000), 'ok');
});
