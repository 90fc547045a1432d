// Owns group commit: ingest units that arrive together share one transaction, and each caller is
// answered only after that commit. Must never acknowledge before commit or queue without bound.

import type { Period } from '../domain/periods.js';
import { Overloaded, StoreUnavailable } from '../domain/errors.js';
import type { AppendOutcome, AppendUnit, Store } from '../store/store.js';

export interface GroupCommitOptions {
  /** Most events committed in one transaction; larger groups wait for the next flush. */
  maxEventsPerGroup?: number;
  /** Events allowed to wait; beyond it callers get Overloaded (HTTP 503 + Retry-After). */
  maxQueuedEvents?: number;
}

interface Pending {
  unit: AppendUnit;
  resolve: (o: AppendOutcome) => void;
  reject: (e: unknown) => void;
}

export class GroupCommitter {
  private queue: Pending[] = [];
  private queuedEvents = 0;
  private flushing = false;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  private readonly maxGroup: number;
  private readonly maxQueued: number;

  constructor(private readonly store: Store, private readonly periods: () => readonly Period[], opts: GroupCommitOptions = {}) {
    this.maxGroup = opts.maxEventsPerGroup ?? 20_000;
    this.maxQueued = opts.maxQueuedEvents ?? 200_000;
  }

  get depth(): number {
    return this.queuedEvents;
  }

  submit(unit: AppendUnit): Promise<AppendOutcome> {
    if (this.queuedEvents > 0 && this.queuedEvents + unit.events.length > this.maxQueued) {
      return Promise.reject(new Overloaded(1));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ unit, resolve, reject });
      this.queuedEvents += unit.events.length;
      this.schedule();
    });
  }

  /** Resolves once everything submitted so far is committed or failed; used on shutdown. */
  drain(): Promise<void> {
    if (this.queue.length === 0 && !this.flushing) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    // setImmediate lets every request already parsed in this I/O turn join the same transaction.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private take(): Pending[] {
    let n = 0;
    let i = 0;
    while (i < this.queue.length) {
      const size = this.queue[i]!.unit.events.length;
      if (i > 0 && n + size > this.maxGroup) break;
      n += size;
      i++;
    }
    const group = this.queue.splice(0, i);
    this.queuedEvents -= n;
    return group;
  }

  private async commitEach(group: Pending[]): Promise<void> {
    for (const p of group) {
      try {
        const [outcome] = await this.store.appendEvents([p.unit], this.periods());
        p.resolve(outcome!);
      } catch (err) {
        p.reject(err);
      }
    }
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const group = this.take();
        try {
          const outcomes = await this.store.appendEvents(group.map((p) => p.unit), this.periods());
          group.forEach((p, i) => p.resolve(outcomes[i]!));
        } catch (err) {
          // A failure tied to one unit must not fail the others that shared its transaction: each
          // is committed alone, and only the unit that fails again gets the error.
          if (group.length > 1 && !(err instanceof StoreUnavailable)) {
            await this.commitEach(group);
            continue;
          }
          for (const p of group) p.reject(err);
          // The store is down: everyone waiting would only queue for another failing connection
          // attempt. Answer them now (503 + Retry-After) instead of seconds later.
          if (err instanceof StoreUnavailable) {
            const waiting = this.queue.splice(0);
            this.queuedEvents = 0;
            for (const p of waiting) p.reject(err);
          }
        }
      }
    } finally {
      this.flushing = false;
      if (this.queue.length > 0) this.schedule();
      else for (const w of this.idleWaiters.splice(0)) w();
    }
  }
}
