// Errors that carry the exit code the CLIs turn them into: 2 for input the user must fix (flags, URLs),
// 1 for everything else (an unreachable server, a database that is not Sentry-shaped, a busy table).

export class UsageError extends Error {
  readonly exitCode = 2;
  override name = 'UsageError';
}

export class AfcError extends Error {
  readonly exitCode = 1;
  override name = 'AfcError';
}

/** The message of an error and of each of its causes, joined: what a user needs on one line. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const message = current instanceof Error ? current.message : String(current);
    if (message && !parts.includes(message)) parts.push(message);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ') || 'unknown error';
}

export function exitCodeOf(error: unknown): number {
  return error instanceof UsageError ? 2 : 1;
}
