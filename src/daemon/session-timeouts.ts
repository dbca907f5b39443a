// A server (or a role, or a database) with idle_session_timeout, idle_in_transaction_session_timeout or
// statement_timeout set would cut the daemon's LISTEN session: measured with idle_session_timeout below
// the heartbeat, 62 reconnects and 63 full flushes a minute. Before its first LISTEN the daemon asks
// what its sessions get, and turns those off for its own session only (a startup `options` parameter,
// sent only when needed, so a connection through a pooler that refuses it is not affected otherwise).
import pg from 'pg';
import { clientConfig, type DatabaseConfig } from '../config/database.js';
import type { Logger } from '../log.js';

const CUTTING = ['idle_session_timeout', 'idle_in_transaction_session_timeout', 'statement_timeout'];

/** The `options` startup parameter that turns off what would cut the session, or undefined when nothing would. */
export async function sessionOverrides(db: DatabaseConfig, connectTimeoutMs: number, log: Logger): Promise<string | undefined> {
  const client = new pg.Client(clientConfig(db, 'afc-daemon-probe', { connectionTimeoutMillis: connectTimeoutMs }));
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
      'SELECT name, setting, unit FROM pg_catalog.pg_settings WHERE name = ANY($1)',
      [CUTTING],
    );
    const set = rows.filter((r) => r.setting !== '0');
    if (set.length === 0) return undefined;
    log.warn({
      msg: 'server would cut the LISTEN session',
      settings: Object.fromEntries(set.map((r) => [r.name, `${r.setting}${r.unit ?? ''}`])),
      action: "turned off for afc-daemon's own session",
    });
    return set.map((r) => `-c ${r.name}=0`).join(' ');
  } finally {
    await client.end().catch(() => undefined);
  }
}
