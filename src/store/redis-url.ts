// Parses --cache / AFC_CACHE: 'memory' or a redis:// URL. Anything else is a usage error that says how
// to fix it (exit 2). The value is echoed back in that error, so its password is masked first.
import { UsageError } from '../errors.js';
import { redactUrl } from '../config/database.js';

export type CacheChoice = { kind: 'memory' } | { kind: 'redis'; url: string; display: string };

// redactUrl needs a parseable URL, but a typo elsewhere in the value ('redis://u:secret@h:notaport') must
// not print the password either: mask the user-info by hand, up to the last '@' of the authority.
function masked(value: string): string {
  const redacted = redactUrl(value);
  if (redacted !== '(unparseable URL)') return redacted;
  const start = value.indexOf('://');
  if (start < 0) return value;
  const authorityEnd = value.indexOf('/', start + 3);
  const authority = authorityEnd < 0 ? value.slice(start + 3) : value.slice(start + 3, authorityEnd);
  const at = authority.lastIndexOf('@');
  const colon = authority.indexOf(':');
  if (at < 0 || colon < 0 || colon > at) return value;
  return value.slice(0, start + 3) + authority.slice(0, colon) + ':***' + value.slice(start + 3 + at);
}

export function parseCacheOption(value: string): CacheChoice {
  if (value === 'memory') return { kind: 'memory' };
  const fail = (why: string) => new UsageError(`unsupported cache URL '${masked(value)}': use 'memory' or 'redis://host:port/db' (${why})`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // No cause on purpose: Node's ERR_INVALID_URL carries the raw value (password included) as `input`.
    throw fail('not a URL');
  }
  if (url.protocol !== 'redis:') throw fail(`scheme '${url.protocol}'`);
  if (!url.hostname) throw fail('no host');
  if (url.port !== '' && !(Number(url.port) > 0 && Number(url.port) < 65536)) throw fail('bad port');
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw fail(`database '${db}' is not a number`);
  return { kind: 'redis', url: value, display: redactUrl(value) };
}
