// The host-local sidecar (afc-daemon --serve): workers in any language read action filters over HTTP
// through this process's read-through cache. GET /v1/action-filters?workflow_id=1&workflow_id=2 answers
// {"1": [...], "2": []}; bad ids are a 400 that says why; a database that cannot answer is a 503.
import http from 'node:http';
import type { ActionFilterCache } from '../cache/action-filter-cache.js';
import { listen, type Listening } from './listen.js';

export const MAX_IDS_PER_REQUEST = 1000;

export type Sidecar = Listening;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}

export async function startSidecar(options: { host: string; port: number; cache: ActionFilterCache }): Promise<Sidecar> {
  const server = http.createServer((req, res) => {
    void handle(options.cache, req, res).catch((error: unknown) => send(res, 500, { error: `internal error: ${String(error)}` }));
  });
  server.keepAliveTimeout = 5000;
  return listen(server, options.host, options.port);
}

async function handle(cache: ActionFilterCache, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname !== '/v1/action-filters') return send(res, 404, { error: 'not found: GET /v1/action-filters?workflow_id=ID[&workflow_id=ID…]' });
  if (req.method !== 'GET') return send(res, 405, { error: 'only GET' });
  const raw = url.searchParams.getAll('workflow_id');
  if (raw.length === 0) return send(res, 400, { error: 'give at least one workflow_id, e.g. ?workflow_id=12&workflow_id=40' });
  if (raw.length > MAX_IDS_PER_REQUEST) return send(res, 400, { error: `at most ${MAX_IDS_PER_REQUEST} workflow_id per request, got ${raw.length}` });
  const bad = raw.filter((v) => !/^[1-9]\d{0,15}$/.test(v) || !Number.isSafeInteger(Number(v)));
  if (bad.length > 0) return send(res, 400, { error: `workflow_id must be a positive integer, got ${bad.slice(0, 5).map((v) => JSON.stringify(v)).join(', ')}` });
  let filters;
  try {
    filters = await cache.get(raw.map(Number));
  } catch (error) {
    return send(res, 503, { error: `action filters unavailable: ${error instanceof Error ? error.message : String(error)}` });
  }
  send(res, 200, Object.fromEntries([...filters].map(([id, value]) => [String(id), value])));
}
