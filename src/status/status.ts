// `afc status`: is afc installed and working in this database? Reads the catalog and activity views
// only; changes nothing. Problems make the exit code 1; warnings are worth a look but not an alarm.
import type { Client } from 'pg';
import { DEFAULT_CHANNEL } from '../contract.js';
import { installedChannel } from '../migrate/migrator.js';
import { MANIFEST } from '../sql/manifest.js';
import { quoteIdent } from '../sql/quote.js';
import { loadMigrations, loadTemplate } from '../sql/templates.js';

export interface TriggerStatus {
  name: string;
  table: string;
  event: string;
  exists: boolean;
  enabled: boolean;
}

export interface ListeningSession {
  pid: number;
  application_name: string;
  client_addr: string | null;
  client_port: number | null;
  state: string | null;
  wait_event: string | null;
  connected_s: number;
  in_transaction_s: number | null;
  in_state_s: number | null;
}

/** Above this share of the NOTIFY queue in use, something LISTENs without reading (PostgreSQL's 8 GB fill up). */
const QUEUE_WARNING = 0.001;

export interface Status {
  schema: string;
  installedVersion: number | null;
  packageVersion: number;
  triggers: TriggerStatus[];
  /** Sessions named afc-daemon connected to this database (each LISTENs on the channel). */
  listeners: number;
  /** Every session known to LISTEN here (afc's by name, others by their last statement). */
  listening: ListeningSession[];
  /** The session most likely holding the NOTIFY queue back, when it is filling. */
  queueHolder: string | undefined;
  /** The channel the installed triggers NOTIFY (null when not installed). */
  channel: string | null;
  /** The channel the caller expects them on (--channel): a daemon LISTENing elsewhere hears nothing. */
  expectedChannel: string;
  notificationQueueUsage: number;
  standby: boolean;
  /** The server's port differs from the one we dialled: a pooler or proxy sits in between. */
  viaProxy: boolean;
  problems: string[];
  warnings: string[];
}

export async function readStatus(client: Client, options: { schema: string; dialledPort: number | undefined; channel?: string }): Promise<Status> {
  const packageVersion = Math.max(0, ...loadMigrations().map((m) => m.version));
  const { rows: tracking } = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${quoteIdent(options.schema)}.${MANIFEST.trackingTable}`]);
  let installedVersion: number | null = null;
  if (tracking[0].t !== null) {
    const { rows } = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${tracking[0].t}`);
    installedVersion = rows[0].v;
  }
  const { rows: present } = await client.query<{ tgname: string; relname: string; tgenabled: string }>(
    `SELECT t.tgname, c.relname, t.tgenabled FROM pg_catalog.pg_trigger t
       JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND NOT t.tgisinternal AND t.tgname LIKE 'afc\\_%'`,
    [options.schema],
  );
  const triggers = MANIFEST.triggers.map(({ name, event, table }) => {
    const row = present.find((p) => p.tgname === name && p.relname === table);
    // 'O' fires in origin/local mode, 'A' always; 'D' is disabled and 'R' fires only on replicas.
    return { name, event, table, exists: row !== undefined, enabled: row !== undefined && (row.tgenabled === 'O' || row.tgenabled === 'A') };
  });
  const { rows: activity } = await client.query<{ listeners: number; usage: number; standby: boolean; port: number | null }>(
    `SELECT (SELECT count(*)::int FROM pg_catalog.pg_stat_activity
              WHERE (application_name = 'afc-daemon' OR application_name LIKE 'afc-relay-%') AND datname = current_database()) AS listeners,
            pg_catalog.pg_notification_queue_usage()::float8 AS usage,
            pg_catalog.pg_is_in_recovery() AS standby,
            pg_catalog.inet_server_port() AS port`,
  );
  const a = activity[0];
  const { rows: listening } = await client.query<ListeningSession>(loadTemplate('queries/listening-sessions.sql'));
  const status: Status = {
    schema: options.schema,
    installedVersion,
    packageVersion,
    triggers,
    listeners: a.listeners,
    listening,
    queueHolder: a.usage > QUEUE_WARNING ? describeHolder((await client.query<ListeningSession>(loadTemplate('queries/queue-holders.sql'))).rows) : undefined,
    channel: await installedChannel(client, options.schema),
    expectedChannel: options.channel ?? DEFAULT_CHANNEL,
    notificationQueueUsage: a.usage,
    standby: a.standby,
    viaProxy: a.port !== null && options.dialledPort !== undefined && a.port !== options.dialledPort,
    problems: [],
    warnings: [],
  };
  judge(status);
  return status;
}

function judge(s: Status): void {
  if (s.installedVersion === null) s.problems.push(`afc is not installed in schema ${s.schema}: run afc migrate`);
  else if (s.installedVersion < s.packageVersion) s.problems.push(`installed migration ${s.installedVersion} is older than this package's ${s.packageVersion}: run afc migrate`);
  else if (s.installedVersion > s.packageVersion) s.warnings.push(`installed migration ${s.installedVersion} is newer than this package's ${s.packageVersion}`);
  if (s.installedVersion !== null) {
    for (const t of s.triggers) {
      if (!t.exists) s.problems.push(`trigger ${t.name} on ${t.table} is missing: ${t.event} statements there are not reported; run afc uninstall then afc migrate`);
      else if (!t.enabled) s.problems.push(`trigger ${t.name} on ${t.table} is disabled: ALTER TABLE ${t.table} ENABLE TRIGGER ${t.name}`);
    }
  }
  if (s.channel !== null && s.channel !== s.expectedChannel) {
    s.problems.push(
      `the triggers NOTIFY channel ${s.channel}, not ${s.expectedChannel}: a daemon on ${s.expectedChannel} hears nothing; ` +
        `run afc migrate --channel ${s.expectedChannel}, or start afc-daemon --channel ${s.channel}`,
    );
  }
  if (s.standby) s.problems.push('this server is a hot standby: LISTEN is not possible here and writes happen on the primary; point --db at the primary');
  if (s.notificationQueueUsage > 0.5) s.problems.push(`the NOTIFY queue is ${(s.notificationQueueUsage * 100).toFixed(0)} % full: a session LISTENs without reading (at 100 % every notifying commit fails)`);
  if (s.viaProxy) s.warnings.push('the server listens on another port than the one dialled: if this is PgBouncer in transaction mode, LISTEN does not work through it; point afc-daemon at PostgreSQL directly');
  if (s.notificationQueueUsage > QUEUE_WARNING) {
    s.warnings.push(
      `the NOTIFY queue is ${(s.notificationQueueUsage * 100).toFixed(3)} % used (above ${QUEUE_WARNING * 100} %): ${s.queueHolder ?? 'no listening session looks stuck'}; ` +
        'a listener that does not read holds every notification back, and at 100 % every notifying commit fails',
    );
  }
  if (s.listeners === 0) s.warnings.push(`no afc-daemon session is connected to this database: nothing evicts on channel ${s.channel ?? s.expectedChannel}`);
}

export function formatStatus(s: Status, display: string): string {
  const lines = [
    `database        ${display}`,
    `schema          ${s.schema}`,
    `migration       ${s.installedVersion === null ? 'not installed' : s.installedVersion} (package ${s.packageVersion})`,
    'triggers',
    ...s.triggers.map((t) => `  ${t.exists ? (t.enabled ? 'ok      ' : 'DISABLED') : 'MISSING '} ${t.name} (${t.event} on ${t.table})`),
    `channel         ${s.channel ?? '(not installed)'}${s.channel !== null && s.channel !== s.expectedChannel ? ` (expected ${s.expectedChannel})` : ''}`,
    `listeners       ${s.listeners} afc-daemon session(s)`,
    ...s.listening.map((l) => `  ${sessionName(l)}, ${l.state ?? '?'}${l.wait_event ? ` (${l.wait_event})` : ''}, connected ${Math.round(l.connected_s)} s`),
    `notify queue    ${(s.notificationQueueUsage * 100).toFixed(2)} % used`,
    `standby         ${s.standby ? 'yes' : 'no'}`,
  ];
  for (const w of s.warnings) lines.push(`warning: ${w}`);
  for (const p of s.problems) lines.push(`PROBLEM: ${p}`);
  lines.push(s.problems.length === 0 ? 'status: ok' : `status: ${s.problems.length} problem(s)`);
  return `${lines.join('\n')}\n`;
}

function sessionName(l: ListeningSession): string {
  return `pid ${l.pid} ${l.application_name || '(no application_name)'} from ${l.client_addr ?? 'local socket'}${l.client_port && l.client_port > 0 ? `:${l.client_port}` : ''}`;
}

/** The session not consuming for longest: in a transaction, or stuck writing to its client. */
function describeHolder(candidates: ListeningSession[]): string | undefined {
  const stuck = candidates
    .map((l) => ({ l, since: l.wait_event === 'ClientWrite' ? (l.in_state_s ?? 0) : (l.in_transaction_s ?? -1) }))
    .filter(({ since }) => since >= 0)
    .sort((a, b) => b.since - a.since);
  if (stuck.length === 0) return undefined;
  const { l, since } = stuck[0];
  const why = l.wait_event === 'ClientWrite' ? 'its client has not read for' : 'in a transaction for';
  return `${sessionName(l)} holds it back (${why} ${Math.round(since)} s)`;
}
