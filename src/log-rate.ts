// Keeps a flood of one kind of log line (junk NOTIFY payloads: any database user can send 5,000 a
// second) from flooding the log: at most `perWindow` lines per window, then one line saying how many
// were left out.

export interface RateLimit {
  /** True if this occurrence may be logged; false counts it as dropped. */
  allow(): boolean;
  /** Stops the pending summary timer. */
  close(): void;
}

export function rateLimit(options: { perWindow: number; windowMs: number; onDropped: (count: number, windowMs: number) => void }): RateLimit {
  let windowStart = Number.NEGATIVE_INFINITY;
  let logged = 0;
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  const report = () => {
    timer = undefined;
    if (dropped > 0) options.onDropped(dropped, options.windowMs);
    dropped = 0;
  };
  return {
    allow() {
      const now = Date.now();
      if (now - windowStart >= options.windowMs) {
        windowStart = now;
        logged = 0;
      }
      if (logged < options.perWindow) {
        logged++;
        return true;
      }
      dropped++;
      if (!timer) {
        timer = setTimeout(report, windowStart + options.windowMs - now);
        timer.unref();
      }
      return false;
    },
    close() {
      if (timer) clearTimeout(timer);
      report();
    },
  };
}
