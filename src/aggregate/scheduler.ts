// Owns the periodic finalization engine: a croner job (UTC) that runs closeDuePeriods, plus one
// catch-up run at start. Must never leave a timer running after stop(), or overlap its own runs.

import { Cron } from 'croner';
import type { Logger } from 'pino';

export interface SchedulerOptions {
  schedule: string;
  run: () => Promise<unknown>;
  logger: Logger;
  /** Run once immediately on start, to catch up on periods that came due while the process was down. */
  catchUpOnStart?: boolean;
}

export class Scheduler {
  private job: Cron | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(private readonly opts: SchedulerOptions) {}

  start(): void {
    if (this.job) return;
    this.job = new Cron(this.opts.schedule, { timezone: 'UTC', protect: true }, () => this.tick());
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
    return this.job?.nextRun() ?? null;
  }

  async stop(): Promise<void> {
    this.job?.stop();
    this.job = null;
    await this.inFlight;
  }
}
