// Runs the afc-daemon bin as a child process and reads its JSON log lines.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { DAEMON_BIN, cleanEnv } from './cli.js';
import type { TestContext } from './pg.js';
import { waitFor } from './wait.js';

export interface LogLine {
  msg: string;
  level: number;
  [key: string]: unknown;
}

export interface DaemonChild {
  proc: ChildProcessByStdio<null, Readable, Readable>;
  logs: LogLine[];
  stderr: () => string;
  /** Waits for a log line with this msg (and matching fields), seen after `since` lines. */
  waitForLog(msg: string, match?: (line: LogLine) => boolean, timeoutMs?: number, since?: number): Promise<LogLine>;
  count(msg: string): number;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export function spawnDaemon(t: TestContext, args: string[], env: NodeJS.ProcessEnv = cleanEnv()): DaemonChild {
  const proc = spawn(process.execPath, [DAEMON_BIN, ...args], { env: { AFC_LOG_LEVEL: 'debug', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  let stderr = '';
  let buffer = '';
  proc.stdout.on('data', (chunk) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: '(not json)', level: 0, line });
      }
    }
  });
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return {
    proc,
    logs,
    stderr: () => stderr,
    exited,
    count: (msg) => logs.filter((l) => l.msg === msg).length,
    waitForLog: (msg, match = () => true, timeoutMs = 15_000, since = 0) =>
      waitFor(() => logs.slice(since).find((l) => l.msg === msg && match(l)), `daemon log '${msg}' (stderr: ${stderr.slice(-300)})`, timeoutMs),
    async stop(signal = 'SIGTERM') {
      proc.kill(signal);
      return exited;
    },
  };
}
