// Timers that fire only when a test advances them, each at its own time on a ManualClock, in due order.
// Must never wait for wall-clock time: between timers it only yields to the event loop, so promises settle.

import type { ManualClock } from '../../src/domain/clock.js';
import type { Timers } from '../../src/aggregate/scheduler.js';

/** Lets every settled promise run its continuations (no wall-clock wait). */
export const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

export class ManualTimers implements Timers {
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();

  constructor(readonly clock: ManualClock) {}

  setTimeout(fn: () => void, ms: number): number {
    const id = ++this.seq;
    this.pending.set(id, { at: this.clock.now() + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Timers armed and not yet fired or cleared. */
  get size(): number {
    return this.pending.size;
  }

  /** The delays (from now) of the armed timers. */
  delays(): number[] {
    return [...this.pending.values()].map((p) => p.at - this.clock.now());
  }

  /**
   * Moves the clock forward by `ms`, firing each timer that comes due on the way with the clock at its time
   * (timers already overdue fire first, at the current time), yielding to the event loop after each one.
   */
  async advance(ms: number): Promise<void> {
    const end = this.clock.now() + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.pending) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.pending.delete(next[0]);
      if (next[1].at > this.clock.now()) this.clock.set(next[1].at);
      next[1].fn();
      await yieldToEventLoop();
    }
    this.clock.set(end);
    await yieldToEventLoop();
  }
}
