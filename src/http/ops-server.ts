// The operator's HTTP endpoint (off unless --http is given): /metrics in Prometheus text format,
// /healthz (the process answers) and /readyz (LISTEN active and store reachable, else 503 with why).
import http from 'node:http';
import type { Registry } from 'prom-client';
import { listen, type Listening } from './listen.js';

export interface Readiness {
  ready: boolean;
  reason?: string;
}

export interface OpsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  readiness: () => Promise<Readiness>;
}

export type OpsServer = Listening;

export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const server = http.createServer((req, res) => {
    void handle(options, req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`internal error: ${error instanceof Error ? error.message : String(error)}\n`);
    });
  });
  // A scraper that keeps its connection open must not hold up shutdown.
  server.keepAliveTimeout = 1000;
  return listen(server, options.host, options.port);
}

async function handle(options: OpsServerOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  if (path === '/metrics') {
    const body = await options.registry.metrics();
    res.writeHead(200, { 'content-type': options.registry.contentType }).end(body);
  } else if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
  } else if (path === '/readyz') {
    const r = await options.readiness();
    res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(r.ready ? 'ready\n' : `not ready: ${r.reason}\n`);
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
  }
}
