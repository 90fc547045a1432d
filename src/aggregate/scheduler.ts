// Owns the periodic finalization engine: runs closeDuePeriods at each time its cron pattern (UTC) names, plus one
// catch-up run at start. Must never leave a timer running after stop(), or overlap its own runs.

import { Cron } from 'croner';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../domain/clock.js';

/** Where the scheduler's timers come from; tests pass timers that fire as their manual clock advances. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** The longest single wait (croner's too): a wall clock that jumps, or a host that slept, is noticed within it. */
export const MAX_WAIT_MS = 30_000;

export interface SchedulerOptions {
  schedule: string;
  run: () => Promise<unknown>;
  logger: Logger;
  /** Run once immediately on start, to catch up on periods that came due while the process was down. */
  catchUpOnStart?: boolean;
  /** The time the cron pattern is matched against (default: the system clock). */
  clock?: Clock;
  /** Default: the global setTimeout/clearTimeout. */
  timers?: Timers;
}

export class Scheduler {
  /** Evaluates the pattern only: a Cron without a callback schedules nothing itself. */
  private readonly pattern: Cron;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private started = false;
  private timer: unknown = null;
  /** The scheduled time being waited for, kept until it is reached, so a capped or early wake waits again for it. */
  private due: number | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(private readonly opts: SchedulerOptions) {
    this.pattern = new Cron(opts.schedule, { timezone: 'UTC' });
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? systemTimers;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.arm();
    if (this.opts.catchUpOnStart !== false) void this.tick();
  }

  /** One run; a tick that finds a run in progress joins it instead of starting another. */
  tick(): Promise<void> {
    this.inFlight ??= this.opts
      .run()
      .then(() => undefined)
      .catch((err: unknown) => this.opts.logger.error({ err }, 'scheduled aggregation failed; the next tick retries'))
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  nextRun(): Date | null {
    return this.started && this.due !== null ? new Date(this.due) : null;
  }

  async stop(): Promise<void> {
    this.started = false;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.due = null;
    await this.inFlight;
  }

  private arm(): void {
    const now = this.clock.now();
    this.due ??= this.pattern.nextRun(new Date(now))?.getTime() ?? null;
    if (this.due === null) return; // the pattern names no future time
    this.timer = this.timers.setTimeout(() => this.wake(), Math.min(Math.max(this.due - now, 0), MAX_WAIT_MS));
  }

  private wake(): void {
    this.timer = null;
    if (!this.started) return;
    if (this.due !== null && this.clock.now() >= this.due) {
      // However many scheduled times passed (a slept host), one run catches up; the next time counts from now.
      this.due = null;
      void this.tick();
    }
    this.arm();
  }
}
