// What signing the payloads costs the writers: a schema `afc_unsigned` with bench/data.sql's data and afc
// at the migration before signing (installed as the previous package did: the tracking table and each
// earlier migration from the rendered templates, each recorded; unsigned v1 payloads) against the bench's
// `afc` schema (every migration, signed). The signing migration is found by what it creates (afc_secret),
// so renumbered migrations do not change what is compared. Single-row UPDATEs from one client, both
// schemas' statements interleaved in one pgbench session as bench/writer-cost.ts does it, with a session
// LISTENing as a daemon would. The unsigned schema is dropped afterwards, so no other measurement ever
// sees its payloads.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DEFAULT_CHANNEL } from '../src/contract.js';
import { loadMigrations, loadTemplate, migrationsDir, renderAfc, renderFixture, renderSentrySchema } from '../src/sql/templates.js';
import { ratio, round } from './stats.js';
import { interleavedSingleRow } from './writer-cost.js';

export interface SigningCostOptions {
  url: string;
  quick: boolean;
  /** Workflows in the `afc` schema (bench/data.sql), and so in `v3`. */
  workflows: number;
  log: (line: string) => void;
}

const UNSIGNED = 'afc_unsigned';

export async function measureSigningCost(opts: SigningCostOptions): Promise<Record<string, number>> {
  const db = new pg.Client({ connectionString: opts.url });
  await db.connect();
  const listener = new pg.Client({ connectionString: opts.url });
  await listener.connect();
  const dir = await mkdtemp(join(tmpdir(), 'afc-bench-signing-'));
  try {
    await db.query(renderSentrySchema(UNSIGNED));
    await db.query(renderFixture(await readFile(join(migrationsDir(), '..', 'bench/data.sql'), 'utf8'), UNSIGNED, { workflows: String(opts.workflows) }));
    await db.query(renderAfc(loadTemplate('tracking.sql'), UNSIGNED));
    const migrations = loadMigrations();
    const signing = migrations.find((m) => m.template.includes('afc_secret'));
    if (!signing) throw new Error('no migration creates afc_secret: nothing signs payloads');
    for (const m of migrations.filter((m) => m.version < signing.version)) {
      await db.query(renderAfc(m.template, UNSIGNED));
      await db.query(`INSERT INTO ${UNSIGNED}.afc_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [m.version, m.name, m.checksum]);
    }
    const { rows } = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${UNSIGNED}.afc_secret`]);
    if (rows[0].t !== null) throw new Error(`${UNSIGNED} has a signing key: it must stay before migration ${signing.version}`);

    await listener.query(`LISTEN ${DEFAULT_CHANNEL}`);
    const [unsigned, signed] = await interleavedSingleRow(dir, opts.url, opts.workflows, [UNSIGNED, 'afc'], opts.quick ? 2 : 20);
    opts.log(
      `  single row, 1 client: migration ${signing.version - 1} (unsigned) ${unsigned.mean.toFixed(0)} µs, all ${migrations.length} (signed) ${signed.mean.toFixed(0)} µs (mean of ${unsigned.n} and ${signed.n})`,
    );
    return {
      signing_migration: signing.version,
      signing_single_row_tps_unsigned: Math.round(1e6 / unsigned.mean),
      signing_single_row_tps_signed: Math.round(1e6 / signed.mean),
      signing_overhead_single_row_ratio: ratio(signed.mean, unsigned.mean),
      signing_overhead_single_row_p50_ratio: ratio(signed.p50, unsigned.p50),
      signing_cost_single_row_us: round(signed.mean - unsigned.mean, 1),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
    await listener.end();
    await db.query(`DROP SCHEMA IF EXISTS ${UNSIGNED} CASCADE`).catch((error: unknown) => opts.log(`  could not drop schema ${UNSIGNED}: ${String(error)}`));
    await db.end();
  }
}
