// Owns finalization: every period whose end plus the grace period has passed and that has unclosed
// data gets its final aggregation and outbox message. Must never scan raw events or idle customers.

import { closeDecider } from '../domain/aggregation.js';
import { periodInterval } from '../domain/periods.js';
import type { DirtyMark } from '../domain/records.js';
import { marksPerChunk, yieldToEventLoop } from './chunking.js';
import type { ServiceContext } from './context.js';

export interface CloseSummary {
  finalized: number;
  unchanged: number;
  messages: number;
  created: number;
  updated: number;
  eventsScanned: number;
  customers: Set<string>;
}

/**
 * Works from stored dirty marks, not from "the previous period", so downtime of any length is
 * caught up and late events reopen exactly the periods they belong to.
 */
export async function closeDuePeriods(ctx: ServiceContext, now = ctx.clock.now()): Promise<CloseSummary> {
  const { store, config } = ctx;
  const sum: CloseSummary = { finalized: 0, unchanged: 0, messages: 0, created: 0, updated: 0, eventsScanned: 0, customers: new Set() };
  const decide = closeDecider(config, now, (agg, bytes) =>
    ctx.logger.error({ aggregationId: agg.id, bytes }, 'webhook payload over 256 KiB; aggregation stored, no message written'),
  );
  for (const period of config.periods) {
    // A period is due when end + grace <= now, i.e. when it started before the period holding now - grace.
    const bound = periodInterval(period, now - config.gracePeriodMs).start;
    const chunk = marksPerChunk(period);
    let after: DirtyMark | undefined;
    for (;;) {
      const marks = await store.listDueMarks(period, bound, chunk, after);
      if (marks.length === 0) break;
      const r = await store.closePeriods(marks, decide);
      sum.finalized += r.finalized;
      if (r.finalized > 0) ctx.metrics?.finalizations.inc({ period }, r.finalized);
      sum.unchanged += r.unchanged;
      sum.created += r.created;
      sum.updated += r.updated;
      sum.messages += r.messages;
      sum.eventsScanned += r.eventsScanned;
      for (const m of marks) sum.customers.add(m.customerId);
      after = marks[marks.length - 1];
      if (marks.length < chunk) break;
      await yieldToEventLoop();
    }
  }
  if (sum.messages > 0) ctx.onMessages?.();
  if (sum.finalized > 0) {
    ctx.logger.info({ finalized: sum.finalized, messages: sum.messages, unchanged: sum.unchanged }, 'periods finalized');
  }
  return sum;
}
