// The stall watchdog's thread (stall-watchdog.ts): it runs while the daemon's own thread is blocked, and
// ends that thread's LISTEN session when the daemon has not beaten for `stallMs`, from a connection of its
// own: a listener that does not read holds PostgreSQL's NOTIFY queue back for every session.
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';

interface Data {
  beat: BigInt64Array;
  connectionString: string | undefined;
  applicationName: string;
  stallMs: number;
}

const { beat, connectionString, applicationName, stallMs } = workerData as Data;
let terminatedFor = 0n;

async function terminate(): Promise<number> {
  const client = new pg.Client({ connectionString, application_name: 'afc-daemon-watchdog', connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query('SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE application_name = $1', [applicationName]);
    return rows.length;
  } finally {
    await client.end().catch(() => undefined);
  }
}

parentPort?.postMessage({ ready: true });
setInterval(() => {
  const last = Atomics.load(beat, 0);
  if (last === 0n || last === terminatedFor || BigInt(Date.now()) - last < BigInt(stallMs)) return;
  terminatedFor = last;
  void terminate().then(
    (sessions) => parentPort?.postMessage({ terminated: sessions, stalledMs: Date.now() - Number(last) }),
    (error: unknown) => parentPort?.postMessage({ failed: error instanceof Error ? error.message : String(error) }),
  );
}, Math.max(50, Math.min(1000, stallMs / 4)));
