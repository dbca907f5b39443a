// Parses --cache / AFC_CACHE: 'memory' or a redis:// URL. Anything else is a usage error that says how
// to fix it (exit 2).
import { UsageError } from '../errors.js';
import { redactUrl } from '../config/database.js';

export type CacheChoice = { kind: 'memory' } | { kind: 'redis'; url: string; display: string };

export function parseCacheOption(value: string): CacheChoice {
  if (value === 'memory') return { kind: 'memory' };
  const shown = redactUrl(value) === '(unparseable URL)' ? value : redactUrl(value);
  const fail = (why: string) => new UsageError(`unsupported cache URL '${shown}': use 'memory' or 'redis://host:port/db' (${why})`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fail('not a URL');
  }
  if (url.protocol !== 'redis:') throw fail(`scheme '${url.protocol}'`);
  if (!url.hostname) throw fail('no host');
  if (url.port !== '' && !(Number(url.port) > 0 && Number(url.port) < 65536)) throw fail('bad port');
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw fail(`database '${db}' is not a number`);
  return { kind: 'redis', url: value, display: redactUrl(value) };
}
