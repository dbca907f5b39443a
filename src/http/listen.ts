// Starts an HTTP server on host:port and gives back the bound port (port 0 picks one) and an idempotent
// close that also drops kept-alive connections, so shutdown is never held up by an idle client.
import type http from 'node:http';

export interface Listening {
  port: number;
  close(): Promise<void>;
}

export async function listen(server: http.Server, host: string, port: number): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  let closing: Promise<void> | undefined;
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
