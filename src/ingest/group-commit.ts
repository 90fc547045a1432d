// Owns group commit: ingest units that arrive together share one transaction, and each caller is
// answered only after that commit. As many transactions run at once as the store allows
// (concurrentAppends); the units waiting meanwhile form the next group. Owns ingest admission too: a unit is refused (Overloaded, HTTP 503
// with Retry-After) when the queue is at its bound in events or estimated bytes, or when the store says
// its own backlog is full. Must never acknowledge before commit or queue without bound.

import { MEMORY_BUDGET, queuedEventBytes } from '../config/memory-budget.js';
import type { Period } from '../domain/periods.js';
import { NO_DIMENSIONS, type DimensionRules } from '../domain/rules.js';
import { Overloaded, StoreUnavailable } from '../domain/errors.js';
import type { AppendOutcome, AppendUnit, EventPort, StoreLifecycle } from '../store/store.js';

export interface GroupCommitOptions {
  /** Most events committed in one transaction; larger groups wait for the next flush. */
  maxEventsPerGroup?: number;
  /** Events allowed to wait, and their estimated heap; beyond either, callers get Overloaded (HTTP 503 + Retry-After). */
  maxQueuedEvents?: number;
  maxQueuedBytes?: number;
  /** The dimension rules events are folded with (groups and unique values); none by default. */
  dimensions?: () => DimensionRules;
}

interface Pending {
  unit: AppendUnit;
  bytes: number;
  resolve: (o: AppendOutcome) => void;
  reject: (e: unknown) => void;
}

export class GroupCommitter {
  private queue: Pending[] = [];
  private queuedEvents = 0;
  private queuedBytes = 0;
  private peakEvents = 0;
  private peakBytes = 0;
  private refused = 0;
  private inFlight = 0;
  private readonly maxInFlight: number;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  private readonly maxGroup: number;
  private readonly maxQueued: number;
  private readonly maxBytes: number;
  private readonly dimensions: () => DimensionRules;

  constructor(
    private readonly store: Pick<EventPort, 'appendEvents' | 'concurrentAppends'> & Pick<StoreLifecycle, 'backlogRetryAfter'>,
    private readonly periods: () => readonly Period[],
    opts: GroupCommitOptions = {},
  ) {
    this.maxGroup = opts.maxEventsPerGroup ?? 20_000;
    this.maxQueued = opts.maxQueuedEvents ?? MEMORY_BUDGET.queuedEvents;
    this.maxBytes = opts.maxQueuedBytes ?? MEMORY_BUDGET.queuedBytes;
    this.dimensions = opts.dimensions ?? (() => NO_DIMENSIONS);
    this.maxInFlight = Math.max(1, store.concurrentAppends ?? 1);
  }

  get depth(): number {
    return this.queuedEvents;
  }

  /** The queue and its bounds, for stats and tests. */
  stats() {
    return {
      queuedEvents: this.queuedEvents,
      queuedBytes: this.queuedBytes,
      maxQueuedEvents: this.maxQueued,
      maxQueuedBytes: this.maxBytes,
      peakQueuedEvents: this.peakEvents,
      peakQueuedBytes: this.peakBytes,
      refused: this.refused,
    };
  }

  /**
   * Seconds after which a new unit should be retried, or 0 when one would be taken now (the queue is
   * not full and the store's backlog is not at its bound). Cheap: capture asks before reading a body.
   */
  retryAfter(): number {
    if (this.queuedEvents >= this.maxQueued || this.queuedBytes >= this.maxBytes) return 1;
    return this.store.backlogRetryAfter();
  }

  submit(unit: AppendUnit): Promise<AppendOutcome> {
    let bytes = 0;
    for (const e of unit.events) bytes += queuedEventBytes(e);
    // An empty queue always takes one unit, so a unit larger than the bound is not refused forever.
    const full =
      this.queuedEvents > 0 && (this.queuedEvents + unit.events.length > this.maxQueued || this.queuedBytes + bytes > this.maxBytes);
    const wait = full ? 1 : this.store.backlogRetryAfter();
    if (wait > 0) {
      this.refused++;
      return Promise.reject(new Overloaded(wait));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ unit, bytes, resolve, reject });
      this.queuedEvents += unit.events.length;
      this.queuedBytes += bytes;
      this.peakEvents = Math.max(this.peakEvents, this.queuedEvents);
      this.peakBytes = Math.max(this.peakBytes, this.queuedBytes);
      this.schedule();
    });
  }

  /** Resolves once everything submitted so far is committed or failed; used on shutdown. */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    // setImmediate lets every request already parsed in this I/O turn join the same transaction.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Starts a transaction per free slot while units wait. */
  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const group = this.take();
      this.inFlight++;
      void this.commitGroup(group).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) this.schedule();
        else if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private take(): Pending[] {
    let n = 0;
    let bytes = 0;
    let i = 0;
    while (i < this.queue.length) {
      const size = this.queue[i]!.unit.events.length;
      if (i > 0 && n + size > this.maxGroup) break;
      n += size;
      bytes += this.queue[i]!.bytes;
      i++;
    }
    const group = this.queue.splice(0, i);
    this.queuedEvents -= n;
    this.queuedBytes -= bytes;
    return group;
  }

  private async commitEach(group: Pending[]): Promise<void> {
    for (const p of group) {
      try {
        const [outcome] = await this.store.appendEvents([p.unit], this.periods(), this.dimensions());
        p.resolve(outcome!);
      } catch (err) {
        p.reject(err);
      }
    }
  }

  private async commitGroup(group: Pending[]): Promise<void> {
    try {
      const outcomes = await this.store.appendEvents(
        group.map((p) => p.unit),
        this.periods(),
        this.dimensions(),
      );
      group.forEach((p, i) => {
        p.resolve(outcomes[i]!);
      });
    } catch (err) {
      // A failure tied to one unit must not fail the others that shared its transaction: each
      // is committed alone, and only the unit that fails again gets the error.
      if (group.length > 1 && !(err instanceof StoreUnavailable)) {
        await this.commitEach(group);
        return;
      }
      for (const p of group) p.reject(err);
      // The store is down: everyone waiting would only queue for another failing connection
      // attempt. Answer them now (503 + Retry-After) instead of seconds later.
      if (err instanceof StoreUnavailable) {
        const waiting = this.queue.splice(0);
        this.queuedEvents = 0;
        this.queuedBytes = 0;
        for (const p of waiting) p.reject(err);
      }
    }
  }
}
