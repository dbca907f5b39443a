// `afc demo`: afc working end to end in one command. Sentry-shaped tables with a few workflows in a fresh
// schema (of an embedded PostgreSQL, or of --db), afc migrate, the daemon with an in-process cache, then a
// series of edits, printing for each which entries were evicted and how long after the commit.
// Everything it creates is removed on the way out: after a normal end, on Ctrl-C, after a failed start.
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createActionFilterCache } from '../cache/action-filter-cache.js';
import { cacheKey } from '../contract.js';
import { clientConfig, redactUrl, type DatabaseConfig } from '../config/database.js';
import { resolveDaemonSettings } from '../daemon/options.js';
import { runDaemon, type Daemon } from '../daemon/start.js';
import { startEmbeddedServer, type EmbeddedServer } from '../embedded/embedded-server.js';
import { AfcError } from '../errors.js';
import { migrate } from '../migrate/migrator.js';
import { quoteIdent } from '../sql/quote.js';
import { loadTemplate, renderFixture, renderSentrySchema } from '../sql/templates.js';
import { createMemoryStore } from '../store/memory-store.js';

export interface DemoOptions {
  /** An existing database to use (a fresh schema in it); without it, an embedded PostgreSQL. */
  db?: DatabaseConfig;
  /** Port for the embedded PostgreSQL; a free one by default. */
  port?: number;
  out: (line: string) => void;
  /** Resolves when the user interrupts (Ctrl-C): the demo then cleans up and stops early. */
  interrupted: Promise<void>;
}

interface Edit {
  title: string;
  expect: number[] | 'all';
  sql: string;
}

class Interrupted extends Error {}

function loadEdits(schema: string): Edit[] {
  return renderFixture(loadTemplate('demo/edits.sql'), schema)
    .split(/^-- edit: /m)
    .slice(1)
    .map((block) => {
      const [head, ...rest] = block.split('\n');
      const [title, expect] = head.split(' | expect:').map((x) => x.trim());
      return { title, expect: expect === 'all' ? 'all' : expect.split(/\s+/).filter(Boolean).map(Number), sql: rest.join('\n') };
    });
}

/** Runs the demo; resolves once everything it made is gone, saying whether it ran to the end. */
export async function runDemo(options: DemoOptions): Promise<'done' | 'interrupted'> {
  const { out } = options;
  const cleanups: Array<() => Promise<unknown>> = [];
  let stopped = false;
  const interrupted = options.interrupted.then(() => {
    stopped = true;
  });
  // Waits end early on Ctrl-C; calls that create something are awaited in full (so their cleanup is
  // registered) and the interruption is noticed right after.
  const step = async <T>(work: Promise<T>): Promise<T> => {
    const result = await Promise.race([work, interrupted.then(() => undefined)]);
    if (stopped) throw new Interrupted('interrupted');
    return result as T;
  };
  const checkpoint = () => {
    if (stopped) throw new Interrupted('interrupted');
  };
  try {
    let db: DatabaseConfig;
    if (options.db) {
      db = options.db;
      out(`using ${db.display}`);
    } else {
      out('starting an embedded PostgreSQL …');
      const server: EmbeddedServer = await startEmbeddedServer({ port: options.port });
      cleanups.push(async () => {
        await server.dispose();
        out(`stopped the embedded PostgreSQL and removed its data`);
      });
      checkpoint();
      db = { url: server.url, display: redactUrl(server.url) };
      out(`embedded PostgreSQL on 127.0.0.1:${server.port}, data in ${server.dataDir}`);
    }
    const schema = `afc_demo_${process.pid}_${Date.now() % 100000}`;
    const client = new pg.Client(clientConfig(db, 'afc-demo'));
    client.on('error', () => undefined);
    cleanups.push(() => client.end());
    await client.connect().catch((cause: unknown) => {
      throw new AfcError(`cannot connect to PostgreSQL at ${db.display}`, { cause });
    });
    checkpoint();
    await client.query(renderSentrySchema(schema));
    cleanups.push(async () => {
      await client.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`);
      out(`dropped schema ${schema}`);
    });
    await client.query(renderFixture(loadTemplate('demo/seed.sql'), schema));
    out(`created Sentry's workflow-engine tables in schema ${schema} with 4 workflows`);
    checkpoint();
    const migrated = await migrate(client, { schema, dryRun: false, lockTimeoutMs: 5000 });
    out(`afc migrate: installed migration ${migrated.version} (statement-level triggers on the three tables)`);

    const store = createMemoryStore({ keyPrefix: '' });
    const daemon: Daemon = await runDaemon({ ...resolveDaemonSettings({ schema }), db }, { store });
    // Record when each eviction lands, to print it next to the edit that caused it.
    const evictions: Array<{ at: number; ids: number[] | 'all' }> = [];
    daemon.events.on('evicted', ({ ids }) => evictions.push({ at: performance.now(), ids }));
    daemon.events.on('flushed', () => evictions.push({ at: performance.now(), ids: 'all' }));
    cleanups.push(() => daemon.stop());
    checkpoint();
    const pool = new pg.Pool({ ...clientConfig(db, 'afc-demo-reader'), max: 2 });
    cleanups.push(() => pool.end());
    const cache = createActionFilterCache({ db: pool, schema, store });
    out('afc-daemon listening, with an in-process cache\n');

    const workflows = [1, 2, 3, 4];
    for (const edit of loadEdits(schema)) {
      await step(cache.get(workflows));
      const cached = workflows.filter((id) => store.cache.has(cacheKey('', id)));
      const since = evictions.length;
      const t0 = performance.now();
      await client.query(`BEGIN;\n${edit.sql}\nCOMMIT;`);
      // Wait for the eviction; an edit that touches no action filter gets a short, bounded wait.
      const deadline = performance.now() + (edit.expect === 'all' || edit.expect.length > 0 ? 3000 : 300);
      while (evictions.length === since && performance.now() < deadline) await step(new Promise((r) => setTimeout(r, 2)));
      await step(new Promise((r) => setTimeout(r, 20)));
      const seen = evictions.slice(since);
      const flushed = seen.some((e) => e.ids === 'all');
      const ids = [...new Set(seen.flatMap((e) => (e.ids === 'all' ? [] : e.ids)))].sort((a, b) => a - b);
      const ms = seen.length > 0 ? (seen[0].at - t0).toFixed(1) : '';
      out(`• ${edit.title}`);
      out(`    cached before: workflows ${cached.join(', ')}`);
      if (flushed) out(`    flushed every entry, ${ms} ms after the statement was sent`);
      else if (ids.length > 0) out(`    evicted workflow${ids.length > 1 ? 's' : ''} ${ids.join(', ')}, ${ms} ms after the statement was sent`);
      else out('    evicted nothing (no action filter changed)');
    }
    out('');
    return 'done';
  } catch (error) {
    if (!(error instanceof Interrupted)) throw error;
    out('interrupted: cleaning up');
    return 'interrupted';
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((e: unknown) => out(`cleanup: ${String(e)}`));
  }
}
