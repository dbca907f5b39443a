// The baseline every eviction latency is compared with: a raw NOTIFY → receive round trip between two
// sessions on the same server, timed the same way (from the moment the sender sends its statement).
import pg from 'pg';
import { summarize } from './stats.js';

const now = () => Number(process.hrtime.bigint()) / 1e6;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function measureNotifyRoundTrip(opts: { url: string; samples: number }): Promise<Record<string, number>> {
  const listener = new pg.Client({ connectionString: opts.url });
  const sender = new pg.Client({ connectionString: opts.url });
  await Promise.all([listener.connect(), sender.connect()]);
  try {
    await listener.query('LISTEN afc_bench_rtt');
    const times: number[] = [];
    for (let i = 0; i < opts.samples; i++) {
      const got = new Promise<number>((resolve) => listener.once('notification', () => resolve(now())));
      const t0 = now();
      await sender.query(`NOTIFY afc_bench_rtt, '${i}'`);
      times.push((await got) - t0);
      await pause(2);
    }
    return summarize('notify_rtt', times, [50, 99]);
  } finally {
    await Promise.all([listener.end(), sender.end()]);
  }
}
