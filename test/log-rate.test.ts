// A flood of one kind of log line is cut to a few per window, and what was left out is counted in one line.
import t from 'tap';
import { rateLimit } from '../src/log-rate.js';
import { waitFor } from './helpers/wait.js';

t.test('at most perWindow per window, then one summary with the count of the rest', async (t) => {
  const summaries: number[] = [];
  const limit = rateLimit({ perWindow: 3, windowMs: 100, onDropped: (count) => summaries.push(count) });
  t.teardown(() => limit.close());
  const first = Array.from({ length: 50 }, () => limit.allow());
  t.equal(first.filter(Boolean).length, 3, 'three allowed');
  t.same(summaries, [], 'the summary waits for the end of the window');
  await waitFor(() => summaries.length === 1, 'the summary', 2000, 5);
  t.same(summaries, [47]);
  t.ok(limit.allow(), 'a new window allows again');
});

t.test('close reports what is still unreported', async (t) => {
  const summaries: number[] = [];
  const limit = rateLimit({ perWindow: 1, windowMs: 60_000, onDropped: (count) => summaries.push(count) });
  limit.allow();
  limit.allow();
  limit.allow();
  limit.close();
  t.same(summaries, [2]);
});
