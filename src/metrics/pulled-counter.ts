// A Prometheus counter whose value is read from the owner's own plain counter when scraped, so the code
// that counts stays a simple `n++` and the registry is only a view of it.
import { Counter, type Registry } from 'prom-client';

export function pulledCounter(registry: Registry, name: string, help: string, value: () => number): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(value());
    },
  });
}
