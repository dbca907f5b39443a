// Protects PostgreSQL from a relay that stops reading: a LISTEN session whose client does not consume
// holds the NOTIFY queue back for every session of the server (at 8 GB every notifying commit fails). A
// thread of its own watches the daemon's event loop beat; when it has not beaten for `stallMs` (a GC
// storm, a blocked loop, CPU starvation) the thread ends the daemon's LISTEN session from its own
// connection. When the loop runs again the listener reconnects and reports the gap like any other loss.
// (A process that is stopped entirely stops this thread too: `afc status` names such a session.)
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DatabaseConfig } from '../config/database.js';
import type { Logger } from '../log.js';

export interface StallWatchdog {
  /** Resolves once the watching thread runs (or could not start: then it was logged). */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

export function startStallWatchdog(options: { db: DatabaseConfig; applicationName: string; stallMs: number; log: Logger }): StallWatchdog {
  const beat = new BigInt64Array(new SharedArrayBuffer(8));
  const tick = () => Atomics.store(beat, 0, BigInt(Date.now()));
  tick();
  const beating = setInterval(tick, Math.max(20, Math.min(500, options.stallMs / 10)));
  beating.unref();
  // The worker is this module's sibling, compiled (.js) or, under the test runner, TypeScript (.ts).
  const here = fileURLToPath(import.meta.url);
  const worker = new Worker(new URL(`./stall-watchdog-worker${extname(here)}`, import.meta.url), {
    workerData: { beat, connectionString: options.db.url, applicationName: options.applicationName, stallMs: options.stallMs },
  });
  worker.unref();
  let started: () => void = () => {};
  const ready = new Promise<void>((resolve) => (started = resolve));
  worker.on('message', (m: { ready?: boolean; terminated?: number; stalledMs?: number; failed?: string }) => {
    if (m.ready) started();
    else if (m.failed) options.log.error({ msg: 'stall watchdog could not end the LISTEN session', err: m.failed });
    else options.log.warn({ msg: 'event loop stalled: LISTEN session ended', stalledMs: m.stalledMs, sessions: m.terminated });
  });
  worker.on('error', (err) => {
    options.log.error({ msg: 'stall watchdog failed', err: err.message });
    started();
  });
  return {
    ready,
    async stop() {
      clearInterval(beating);
      await worker.terminate();
    },
  };
}
