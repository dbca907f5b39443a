// Consistency audit: a sampled cache hit is also loaded from the database and compared. A difference is
// counted and logged with the workflow id, then re-checked twice (by default after 1 s and after 10 s):
// healed means the entry is gone or now matches the database. The figures show how eventual the
// consistency really is.
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../log.js';
import type { ActionFilter } from '../model.js';
import type { FillStore } from '../store/store.js';
import type { Loader } from './loader.js';

export interface AuditStats {
  checked: number;
  mismatches: number;
  healedWithin1s: number;
  healedWithin10s: number;
  unhealed: number;
}

export class Auditor {
  readonly stats: AuditStats = { checked: 0, mismatches: 0, healedWithin1s: 0, healedWithin10s: 0, unhealed: 0 };
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly loader: Loader,
    private readonly store: FillStore,
    private readonly log: Logger,
    /** Delays of the two re-checks; [1000, 10000] gives the figures their names. */
    private readonly recheckMs: readonly [number, number],
  ) {}

  /** Compares a value just served from the cache with the database, off the caller's path. */
  check(id: number, cached: ActionFilter[]): void {
    void this.compare(id, cached).catch((error: unknown) => this.log.warn({ msg: 'audit failed', workflowId: id, err: String(error) }));
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private async compare(id: number, cached: ActionFilter[]): Promise<void> {
    const fresh = (await this.loader.load([id])).get(id) ?? [];
    this.stats.checked++;
    if (isDeepStrictEqual(cached, fresh)) return;
    this.stats.mismatches++;
    this.log.warn({ msg: 'audit mismatch', workflowId: id });
    this.schedule(id, 0);
  }

  private schedule(id: number, stage: 0 | 1): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.recheck(id, stage).catch((error: unknown) => this.log.warn({ msg: 'audit failed', workflowId: id, err: String(error) }));
    }, this.recheckMs[stage]);
    timer.unref();
    this.timers.add(timer);
  }

  private async recheck(id: number, stage: 0 | 1): Promise<void> {
    const cached = (await this.store.getMany([id])).get(id);
    const healed = cached === undefined || isDeepStrictEqual(cached, (await this.loader.load([id])).get(id) ?? []);
    if (healed) {
      if (stage === 0) this.stats.healedWithin1s++;
      else this.stats.healedWithin10s++;
      this.log.info({ msg: 'audit mismatch healed', workflowId: id, withinMs: this.recheckMs[stage] });
    } else if (stage === 0) {
      this.schedule(id, 1);
    } else {
      this.stats.unhealed++;
      this.log.error({ msg: 'audit mismatch not healed', workflowId: id, afterMs: this.recheckMs[1] });
    }
  }
}
