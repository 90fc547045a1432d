// Owns real-time (provisional) aggregation documents for periods that are still open.
// Must never mark anything final or clear a dirty mark: the close does that.

import { provisionalDecider } from '../domain/aggregation.js';
import { periodInterval } from '../domain/periods.js';
import type { DirtyMark } from '../domain/records.js';
import { marksPerChunk, yieldToEventLoop } from './chunking.js';
import type { ServiceContext } from './context.js';

export interface ProvisionalSummary {
  created: number;
  updated: number;
  eventsScanned: number;
  customers: Set<string>;
}

export async function writeProvisional(ctx: ServiceContext, now = ctx.clock.now()): Promise<ProvisionalSummary> {
  const { store, config } = ctx;
  const sum: ProvisionalSummary = { created: 0, updated: 0, eventsScanned: 0, customers: new Set() };
  const decide = provisionalDecider(config, now);
  for (const period of config.periods) {
    const openFrom = periodInterval(period, now - config.gracePeriodMs).start;
    const chunk = marksPerChunk(period);
    let after: DirtyMark | undefined;
    for (;;) {
      const marks = await store.listOpenMarks(period, openFrom, chunk, after);
      if (marks.length === 0) break;
      const r = await store.writeProvisional(marks, decide);
      sum.created += r.created;
      sum.updated += r.updated;
      sum.eventsScanned += r.eventsScanned;
      for (const m of marks) sum.customers.add(m.customerId);
      after = marks[marks.length - 1];
      if (marks.length < chunk) break;
      await yieldToEventLoop();
    }
  }
  return sum;
}
