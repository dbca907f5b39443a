// Parses --cache / AFC_CACHE into what the daemon will open (design.md §7): 'memory', one Redis
// (redis:// or rediss://, with an optional ACL user), a Redis Cluster (redis+cluster:// or rediss+cluster://
// with a list of seed nodes) or a memcached pool (memcached:// with a list of nodes). A URL the daemon
// could not honour exactly is a usage error that says how to fix it (exit 2), never a fall-back. The value
// is echoed back in that error, so its password is masked first.
import { UsageError } from '../errors.js';
import { redactUrl } from '../config/database.js';

export interface Node {
  host: string;
  port: number;
}

export type CacheChoice =
  | { kind: 'memory' }
  | { kind: 'redis'; url: string; display: string }
  | { kind: 'redis-cluster'; nodes: Node[]; tls: boolean; username?: string; password?: string; display: string }
  | { kind: 'memcached'; servers: Node[]; username?: string; password?: string; display: string };

export const CACHE_URL_FORMS =
  "'memory', 'redis://[user:pass@]host:port[/db]', 'rediss://…', 'redis+cluster://host:port[,host:port…]' or 'memcached://host:port[,host:port…]'";

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

const validPort = (text: string) => /^\d{1,5}$/.test(text) && Number(text) > 0 && Number(text) < 65536;

export function parseCacheOption(value: string): CacheChoice {
  if (value === 'memory') return { kind: 'memory' };
  const fail = (why: string) => new UsageError(`unsupported cache URL '${masked(value)}': use ${CACHE_URL_FORMS} (${why})`);
  const list = /^(redis\+cluster|rediss\+cluster|memcached):\/\/(.*)$/.exec(value);
  if (list) return parseNodeList(list[1], list[2], value, fail);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // No cause on purpose: Node's ERR_INVALID_URL carries the raw value (password included) as `input`.
    throw fail('not a URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw fail(`scheme '${url.protocol}'`);
  if (!url.hostname) throw fail('no host');
  if (url.port !== '' && !validPort(url.port)) throw fail('bad port');
  if (url.search || url.hash) throw fail(`options in the URL ('${url.search}${url.hash}') are not supported: use rediss:// for TLS`);
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw fail(`database '${db}' is not a number`);
  return { kind: 'redis', url: value, display: redactUrl(value) };
}

function parseNodeList(scheme: string, rest: string, value: string, fail: (why: string) => UsageError): CacheChoice {
  const at = rest.lastIndexOf('@');
  const userinfo = at < 0 ? undefined : rest.slice(0, at);
  const hostlist = (at < 0 ? rest : rest.slice(at + 1)).replace(/\/$/, '');
  if (/[/?#]/.test(hostlist)) throw fail(scheme === 'memcached' ? 'a memcached pool has no database or options' : 'a cluster has no database (only database 0) or options');
  const defaultPort = scheme === 'memcached' ? 11211 : 6379;
  const nodes = hostlist.split(',').map((part) => {
    const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d+))?$/.exec(part.trim());
    if (!m) throw fail(part.trim() === '' ? 'no host' : `'${part}' is not host:port`);
    if (m[2] !== undefined && !validPort(m[2])) throw fail(`bad port in '${part}'`);
    return { host: m[1].replace(/^\[|\]$/g, ''), port: m[2] === undefined ? defaultPort : Number(m[2]) };
  });
  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    try {
      username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon)) || undefined;
      password = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
    } catch {
      throw fail('bad percent-encoding in the user or password');
    }
  }
  const display = `${scheme}://${userinfo === undefined ? '' : `${username ?? ''}${password === undefined ? '' : ':***'}@`}${hostlist}`;
  if (scheme === 'memcached') return { kind: 'memcached', servers: nodes, username, password, display };
  return { kind: 'redis-cluster', nodes, tls: scheme === 'rediss+cluster', username, password, display };
}

/** How a choice is shown in logs and messages (never with a password). */
export function cacheDisplay(choice: CacheChoice): string {
  return choice.kind === 'memory' ? 'memory' : choice.display;
}
