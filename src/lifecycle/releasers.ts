// Cleanup in reverse order of setup (graphile-worker's releasers): whatever was opened last is closed
// first, each exactly once, and one that fails does not stop the others from being released.

export class Releasers {
  private readonly stack: Array<{ what: string; release: () => Promise<unknown> | unknown }> = [];
  private releasing: Promise<void> | undefined;

  /** Registers how to undo what was just set up. */
  push(what: string, release: () => Promise<unknown> | unknown): void {
    this.stack.push({ what, release });
  }

  /** Releases everything, last first; resolves when done (idempotent). `onError` hears each failure. */
  releaseAll(onError: (what: string, error: unknown) => void = () => undefined): Promise<void> {
    this.releasing ??= (async () => {
      while (this.stack.length > 0) {
        const { what, release } = this.stack.pop()!;
        try {
          await release();
        } catch (error) {
          onError(what, error);
        }
      }
    })();
    return this.releasing;
  }
}
