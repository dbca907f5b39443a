// A TCP proxy in front of PostgreSQL, so a test can cut or freeze the daemon's connection while the
// test's own connections (straight to the server) keep committing.
import net from 'node:net';
import type { TestContext } from './pg.js';

export interface TcpProxy {
  port: number;
  /** Rewrites a postgres:// URL to go through the proxy. */
  via(url: string): string;
  /** Drops every proxied connection and refuses new ones until restore(). */
  cut(): void;
  /** Existing connections stop passing bytes (a half-open peer); new ones still work. */
  freeze(): void;
  /** New connections are refused until restore(); existing ones keep working. */
  refuseNew(): void;
  restore(): void;
  connections(): number;
  /** Local ports of the proxy's connections to the target (what the server sees as client ports). */
  upstreamPorts(): number[];
}

export async function startTcpProxy(t: TestContext, targetHost: string, targetPort: number): Promise<TcpProxy> {
  let mode: 'open' | 'cut' = 'open';
  const live = new Set<{ client: net.Socket; upstream: net.Socket; frozen: boolean }>();
  const server = net.createServer((client) => {
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const pair = { client, upstream, frozen: false };
    live.add(pair);
    client.on('data', (d) => {
      if (!pair.frozen) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!pair.frozen) client.write(d);
    });
    const end = () => {
      live.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const p of live) (p.client.destroy(), p.upstream.destroy());
        server.close(() => resolve());
      }),
  );
  return {
    port,
    via(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut() {
      mode = 'cut';
      for (const p of live) (p.client.destroy(), p.upstream.destroy());
      live.clear();
    },
    freeze() {
      for (const p of live) p.frozen = true;
    },
    refuseNew() {
      mode = 'cut';
    },
    restore() {
      mode = 'open';
    },
    connections: () => live.size,
    upstreamPorts: () => [...live].map((p) => p.upstream.localPort).filter((port): port is number => port !== undefined),
  };
}
