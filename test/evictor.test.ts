// The evictor on its own, against a store whose calls the test sees and controls (blocked, failing):
// batching, slices, flush precedence and coalescing, retry with backoff, redelete, and the bound on
// pending ids. Timings are a few milliseconds: nothing here waits longer than the behaviour needs.
import t from 'tap';
import { DaemonEvents, type DaemonEventMap } from '../src/daemon/events.js';
import { Evictor, type EvictorOptions } from '../src/daemon/evictor.js';
import type { EvictionStore } from '../src/store/store.js';
import { waitFor } from './helpers/wait.js';

/** A store that records each operation and can be told to hold or fail the next ones. */
class ControlledStore implements EvictionStore {
  readonly kind = 'redis' as const;
  readonly calls: Array<number[] | 'flush'> = [];
  failures = 0;
  private gate: Promise<void> | undefined;
  private open: () => void = () => {};

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.gate = undefined;
    this.open();
  }

  async evict(ids: readonly number[]): Promise<void> {
    await this.step([...ids]);
  }

  async flush(): Promise<void> {
    await this.step('flush');
  }

  async ping(): Promise<void> {}
  async close(): Promise<void> {}

  private async step(call: number[] | 'flush'): Promise<void> {
    this.calls.push(call);
    await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('store down');
    }
  }
}

function setup(options: Partial<EvictorOptions> = {}) {
  const store = new ControlledStore();
  const events = new DaemonEvents();
  const seen: { [K in keyof DaemonEventMap]?: DaemonEventMap[K][0][] } = {};
  const record = <K extends 'evicted' | 'flushed' | 'store-error' | 'redeleted'>(name: K) =>
    (events as unknown as { on(n: string, f: (e: unknown) => void): void }).on(name, (e) => ((seen[name] ??= []) as unknown[]).push(e));
  for (const name of ['evicted', 'flushed', 'store-error', 'redeleted'] as const) record(name);
  const evictor = new Evictor(store, { flush: () => store.flush(), events, retryMaxMs: 40, retryBaseMs: 5, ...options });
  t.teardown(() => evictor.close());
  return { store, events, seen, evictor };
}

const origin = { src: 'dc' as const, ts: Date.now() };

t.test('ids that arrive while an operation is in flight are merged into the next one', async (t) => {
  const { store, evictor } = setup();
  store.hold();
  evictor.evict([1], origin);
  await waitFor(() => store.calls.length === 1, 'the first eviction started');
  evictor.evict([2, 3], origin);
  evictor.evict([3, 4], origin);
  evictor.evict([5], origin);
  store.release();
  await evictor.idle();
  t.same(store.calls, [[1], [2, 3, 4, 5]], 'one more operation for everything that arrived meanwhile, each id once');
});

t.test('a burst is applied in slices of at most maxBatch ids, oldest first', async (t) => {
  const { store, evictor } = setup({ maxBatch: 3 });
  evictor.evict([1, 2, 3, 4, 5, 6, 7], origin);
  await evictor.idle();
  t.same(store.calls, [[1, 2, 3], [4, 5, 6], [7]]);
});

t.test('a flush takes precedence: pending ids are dropped, and ids arriving before it starts are covered by it', async (t) => {
  const { store, evictor, seen } = setup();
  store.hold();
  evictor.evict([1], origin);
  await waitFor(() => store.calls.length === 1, 'the first eviction started');
  evictor.evict([2, 3], origin);
  evictor.flush('truncate');
  evictor.evict([4], origin);
  store.release();
  await evictor.idle();
  t.same(store.calls, [[1], 'flush'], 'no eviction of 2, 3 or 4: the flush removed their entries');
  t.same(seen.flushed?.map((f) => f.cause), ['truncate']);
});

t.test('ids arriving while a flush runs are evicted after it: the flush may have passed their keys already', async (t) => {
  const { store, evictor } = setup();
  store.hold();
  evictor.flush('connect');
  await waitFor(() => store.calls.length === 1, 'the flush started');
  evictor.evict([9], origin);
  store.release();
  await evictor.idle();
  t.same(store.calls, ['flush', [9]]);
});

t.test('flush requests during a running flush make exactly one more flush, labelled by the first', async (t) => {
  const { store, evictor, seen } = setup();
  store.hold();
  evictor.flush('connect');
  await waitFor(() => store.calls.length === 1, 'the flush started');
  for (let i = 0; i < 50; i++) evictor.flush(i === 0 ? 'truncate' : 'overflow');
  store.release();
  await evictor.idle();
  t.same(store.calls, ['flush', 'flush'], '51 requests, 2 flushes');
  t.same(seen.flushed?.map((f) => f.cause), ['connect', 'truncate']);
});

t.test('a failed operation becomes a pending flush, retried with growing backoff until it succeeds', async (t) => {
  const { store, evictor, seen } = setup();
  store.failures = 3;
  evictor.evict([1, 2], origin);
  await waitFor(() => seen.flushed?.length === 1, 'the flush that finally succeeds', 5000, 2);
  t.same(store.calls, [[1, 2], 'flush', 'flush', 'flush'], 'the eviction failed, then the flush failed twice and succeeded');
  t.same(seen['store-error']?.map((e) => e.pendingFlush), ['redis-recovery', 'redis-recovery', 'redis-recovery']);
  const delays = seen['store-error']!.map((e) => e.retryInMs);
  // Full jitter halves at worst: attempt n waits between base·2^n/2 and base·2^n, capped at retryMaxMs.
  t.ok(delays[0] >= 2 && delays[0] <= 5, `first retry after ${delays[0]} ms`);
  t.ok(delays[2] >= 10 && delays[2] <= 20, `third retry after ${delays[2]} ms`);
  t.same(seen.flushed?.map((f) => f.cause), ['redis-recovery']);
  t.same(seen.evicted, undefined, 'the failed eviction is not reported as applied');
});

t.test('retryNow cuts a long backoff short (the store said it is back)', async (t) => {
  const { store, evictor, seen } = setup({ retryBaseMs: 60_000, retryMaxMs: 60_000 });
  store.failures = 1;
  evictor.evict([1], origin);
  await waitFor(() => seen['store-error']?.length === 1, 'the failure', 5000, 2);
  const started = Date.now();
  evictor.retryNow();
  await evictor.idle();
  t.ok(Date.now() - started < 1000, 'retried at once, not after a minute');
  t.same(seen.flushed?.map((f) => f.cause), ['redis-recovery']);
});

t.test('close stops a retry loop; later work is ignored', async (t) => {
  const { store, evictor } = setup({ retryBaseMs: 60_000, retryMaxMs: 60_000 });
  store.failures = 5;
  evictor.evict([1], origin);
  await waitFor(() => store.calls.length === 1, 'the failing call', 5000, 2);
  evictor.close();
  await evictor.idle();
  evictor.evict([2], origin);
  evictor.flush('truncate');
  await evictor.idle();
  t.same(store.calls, [[1]]);
});

t.test('--redelete-after evicts each batch a second time, once, and counts it apart', async (t) => {
  const { store, evictor, seen } = setup({ redeleteAfterMs: 10 });
  evictor.evict([1, 2], origin);
  await waitFor(() => seen.redeleted?.length === 1, 'the second eviction', 5000, 2);
  t.same(store.calls, [[1, 2], [1, 2]]);
  t.same(seen.redeleted, [{ store: 'redis', count: 2 }]);
  t.same(seen.evicted?.flatMap((e) => e.ids), [1, 2], 'evicted reports first evictions only');
  await new Promise((r) => setTimeout(r, 30));
  t.equal(store.calls.length, 2, 'no third eviction');
});

t.test('evicted reports each id under its table with the time since its trigger ran', async (t) => {
  let now = 1000;
  const { evictor, seen } = setup({ now: () => now });
  evictor.evict([1], { src: 'dc', ts: 990 });
  evictor.evict([2], { src: 'wdcg', ts: 995 });
  now = 1003;
  await evictor.idle();
  t.same(seen.evicted, [
    { store: 'redis', src: 'dc', ids: [1], latenciesMs: [13] },
    { store: 'redis', src: 'wdcg', ids: [2], latenciesMs: [8] },
  ]);
});

t.test('more pending ids than maxPendingIds turn into one flush: memory stays bounded whatever arrives', async (t) => {
  const { store, evictor, seen } = setup({ maxPendingIds: 1000 });
  store.hold();
  evictor.evict([1], origin);
  await waitFor(() => store.calls.length === 1, 'the first eviction started');
  for (let i = 0; i < 50; i++) evictor.evict(Array.from({ length: 100 }, (_, j) => 2 + i * 100 + j), origin);
  t.equal(evictor.pending, 0, 'past the bound the ids were dropped for a flush');
  store.release();
  await evictor.idle();
  t.same(store.calls, [[1], 'flush']);
  t.same(seen.flushed?.map((f) => f.cause), ['evict-overflow']);
});

t.test('flushes keep a floor between them; requests during the wait join the pending flush', async (t) => {
  let now = 0;
  const { store, evictor, seen } = setup({ flushFloorMs: 50, now: () => now });
  evictor.flush('connect');
  await evictor.idle();
  for (let i = 0; i < 20; i++) evictor.flush('overflow');
  evictor.evict([5], origin);
  await new Promise((r) => setTimeout(r, 20));
  t.same(store.calls, ['flush'], 'the second flush waits for the floor');
  for (let i = 0; i < 20; i++) evictor.flush('truncate');
  now = 50;
  await evictor.idle();
  t.same(store.calls, ['flush', 'flush'], '41 requests after the first flush: one more flush');
  t.same(seen.flushed?.map((f) => f.cause), ['connect', 'overflow']);
});
