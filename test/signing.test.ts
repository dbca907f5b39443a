// Signed payloads (migration 3): the triggers sign every payload with a key only afc's owner and the
// daemon's role can read; the daemon applies what verifies and rejects forged, unsigned and replayed
// payloads, while a writer's real change is still evicted exactly. Roles are cluster-wide, so each gets
// a name of this process's own.
import t from 'tap';
import NodeCache from 'node-cache';
import { startDaemon, createMemoryStore } from 'afc';
import { encode } from '../src/codec.js';
import { cacheKey, DEFAULT_CHANNEL } from '../src/contract.js';
import { migrate } from '../src/migrate/migrator.js';
import { quoteIdent } from '../src/sql/quote.js';
import { loadMigrations, loadTemplate, renderAfc } from '../src/sql/templates.js';
import { AFC_BIN, runCli } from './helpers/cli.js';
import { connect, createSentrySchema, createTestDatabase, type TestContext } from './helpers/pg.js';
import { migratedSentryDatabase, Sentry } from './helpers/sentry.js';
import { settle as settleDaemon } from './helpers/settle.js';
import { sign, signingKey } from './helpers/signing.js';
import { waitFor } from './helpers/wait.js';

const { url, db, sentry } = await migratedSentryDatabase(t, 'signing');
const key = (await signingKey(db))!;

async function role(t: TestContext, name: string, grants: string): Promise<string> {
  const r = `afc_sig_${name}_${process.pid}`;
  await db.query(`DROP ROLE IF EXISTS ${quoteIdent(r)}; CREATE ROLE ${quoteIdent(r)} LOGIN; ${grants.replaceAll('$ROLE', quoteIdent(r))}`);
  t.teardown(() => db.query(`DROP OWNED BY ${quoteIdent(r)}; DROP ROLE IF EXISTS ${quoteIdent(r)}`).catch(() => undefined));
  return r;
}

const as = (r: string, target = url) => {
  const u = new URL(target);
  u.username = r;
  u.password = '';
  return u.toString();
};

const cache = new NodeCache({ useClones: false });
const daemon = await startDaemon({ db: url, store: createMemoryStore({ keyPrefix: '', cache }), flushFloorMs: 0 });
t.teardown(() => daemon.stop());
await waitFor(() => daemon.stats.flushes.connect === 1, 'the connect flush');
const entry = (id: number) => cacheKey('', id);
/** Everything committed so far has been applied (the creations' own evictions included). */
const settle = () => settleDaemon(db, { fill: (id) => cache.set(entry(id), []), exists: (id) => cache.has(entry(id)) });

t.test('migrate stores a 32-byte key no ordinary role can read or use', async (t) => {
  t.equal(key.length, 32);
  const outsider = await role(t, 'outsider', '');
  const client = await connect(t, as(outsider));
  await t.rejects(client.query('SELECT key FROM afc_secret'), /permission denied/);
  await t.rejects(client.query(`SELECT afc_notify_flush('dc', 'truncate')`), /permission denied/, 'cannot make afc sign a flush');
  await t.rejects(client.query(`SELECT afc_emit('dc', 'evict', '"ids":[1]')`), /permission denied/, 'nor an eviction');
  await t.rejects(client.query(`SELECT afc_send('dc', '1', 1)`), /permission denied/);
});

t.test('a real change is signed and evicted; forged, unsigned and replayed payloads evict nothing', async (t) => {
  const [w, bystander] = [await sentry.workflow([1]), await sentry.workflow([1])];
  await settle();
  const attackerRole = await role(t, 'attacker', '');
  const attacker = await connect(t, as(attackerRole));
  // Any role may LISTEN too: the attacker records what the triggers send, to replay it.
  const recorded: string[] = [];
  attacker.on('notification', (n) => recorded.push(n.payload ?? ''));
  await attacker.query(`LISTEN ${DEFAULT_CHANNEL}`);

  cache.set(entry(w.id), []);
  await db.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', w.groups[0]]);
  await waitFor(() => !cache.has(entry(w.id)), 'the real change evicted');
  await waitFor(() => recorded.length > 0, 'the attacker saw the payload');
  t.match(recorded[0], /^\{"v":2,"op":"evict","src":"dcg","ts":[\d.]+,"x":\d+,"ids":\[\d+\],"sig":"[0-9a-f]{64}"\}$/);

  cache.set(entry(w.id), []);
  cache.set(entry(bystander.id), []);
  const bad = daemon.stats.badPayloads;
  const flushes = Object.values(daemon.stats.flushes).reduce((a, b) => a + b, 0);
  const forgedBody = encode({ op: 'evict', src: 'dc', ts: Date.now(), ids: [bystander.id] }, 2);
  const hostile = [
    encode({ op: 'evict', src: 'dc', ts: Date.now(), ids: [bystander.id] }),
    encode({ op: 'flush', src: 'dc', ts: Date.now(), reason: 'truncate' }),
    sign(Buffer.alloc(32, 7), forgedBody),
    forgedBody,
    sign(key, forgedBody).replace(/"sig":"(.)/, (_, c: string) => `"sig":"${c === 'a' ? 'b' : 'a'}`),
    recorded[0],
  ];
  for (const payload of hostile) await attacker.query('SELECT pg_notify($1, $2)', [DEFAULT_CHANNEL, payload]);
  await waitFor(() => daemon.stats.badPayloads - bad === hostile.length, 'every hostile payload rejected');
  t.ok(cache.has(entry(bystander.id)), 'a forged eviction evicted nothing');
  t.ok(cache.has(entry(w.id)), 'the replayed eviction was not applied again');
  t.equal(Object.values(daemon.stats.flushes).reduce((a, b) => a + b, 0), flushes, 'and no flush happened');

  const genuine = sign(key, encode({ op: 'evict', src: 'dc', ts: Date.now(), ids: [bystander.id] }, 2));
  await attacker.query('SELECT pg_notify($1, $2)', [DEFAULT_CHANNEL, genuine]);
  await waitFor(() => !cache.has(entry(bystander.id)), 'a payload signed with the key is applied');
});

t.test("a writer with only write privileges: its change is signed with a key it cannot read, and evicted exactly", async (t) => {
  const writerRole = await role(t, 'writer', `GRANT USAGE ON SCHEMA public TO $ROLE; GRANT SELECT, UPDATE ON workflow_engine_datacondition TO $ROLE`);
  const writer = await connect(t, as(writerRole));
  const [w, other] = [await sentry.workflow([2]), await sentry.workflow([1])];
  await settle();
  cache.set(entry(w.id), []);
  cache.set(entry(other.id), []);
  const flushes = daemon.stats.flushes['trigger-error'];
  await writer.query('UPDATE workflow_engine_datacondition SET type = $1 WHERE condition_group_id = $2', ['x', w.groups[0]]);
  await waitFor(() => !cache.has(entry(w.id)), 'the change evicted');
  t.ok(cache.has(entry(other.id)), `exactly: no flush (${JSON.stringify(daemon.stats.flushes)})`);
  t.equal(daemon.stats.flushes['trigger-error'], flushes);
});

t.test('a daemon role that cannot read the key fails start-up saying how to fix it; --daemon-role grants it', async (t) => {
  const daemonRole = await role(t, 'daemon', `GRANT CONNECT ON DATABASE ${quoteIdent(new URL(url).pathname.slice(1))} TO $ROLE`);
  const refused = await startDaemon({ db: as(daemonRole), store: createMemoryStore({ keyPrefix: '' }), startupTimeoutMs: 5000 }).catch((e: unknown) => e);
  t.type(refused, Error);
  t.match((refused as Error).message, new RegExp(`role ${daemonRole} cannot read its key .*run afc migrate --daemon-role ${daemonRole}`));
  const r = await runCli(AFC_BIN, ['migrate', '--db', url, '--daemon-role', daemonRole]);
  t.equal(r.code, 0, r.stderr);
  const ok = await startDaemon({ db: as(daemonRole), store: createMemoryStore({ keyPrefix: '' }) });
  t.equal(ok.listening, true, 'starts once granted');
  await ok.stop();
  const client = await connect(t, as(daemonRole));
  await t.rejects(client.query('UPDATE workflow_engine_datacondition SET type = type'), /permission denied/, 'and may do nothing else');
});

t.test('a database upgraded to signing while the daemon runs: nothing is missed, then payloads are verified', async (t) => {
  const url2 = await createTestDatabase(t, 'signing_upgrade');
  const db2 = await connect(t, url2);
  await createSentrySchema(db2);
  // What the previous package installed: migrations 1 and 2.
  await db2.query(renderAfc(loadTemplate('tracking.sql'), 'public'));
  for (const m of loadMigrations().filter((m) => m.version <= 2)) {
    await db2.query(renderAfc(m.template, 'public'));
    await db2.query('INSERT INTO afc_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
  }
  const cache2 = new NodeCache({ useClones: false });
  const d2 = await startDaemon({ db: url2, store: createMemoryStore({ keyPrefix: '', cache: cache2 }), flushFloorMs: 0 });
  t.teardown(() => d2.stop());
  const s2 = new Sentry(db2);
  const [a, b] = [await s2.workflow([1]), await s2.workflow([1])];
  await waitFor(() => d2.stats.flushes.connect === 1, 'connected');
  await migrate(db2, { schema: 'public', dryRun: false, lockTimeoutMs: 5000 });
  cache2.set(entry(a.id), []);
  await db2.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['none', a.groups[0]]);
  await waitFor(() => !cache2.has(entry(a.id)), 'the first signed payload, not yet verifiable, still clears the entry (a flush)');
  t.ok(d2.stats.flushes.unverified >= 1, 'as a flush');
  // Once the key is read, payloads are verified and exact again.
  await waitFor(() => d2.signing === 'on', 'the daemon read the new key');
  cache2.set(entry(a.id), []);
  cache2.set(entry(b.id), []);
  const before = d2.stats.flushes.unverified;
  await db2.query('UPDATE workflow_engine_dataconditiongroup SET logic_type = $1 WHERE id = $2', ['all', b.groups[0]]);
  await waitFor(() => !cache2.has(entry(b.id)), 'evicted');
  t.ok(cache2.has(entry(a.id)), 'exactly: the other entry stays');
  t.equal(d2.stats.flushes.unverified, before);
});
