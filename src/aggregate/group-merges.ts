// Owns keeping the running merges of open periods' groups current (store/group-merge-plan.ts): each scheduler
// tick extends the merge of every customer with usage in the open week, month and year up to the current hour,
// rebuilds the ones a read found stale (a late event since), and drops those of periods that have ended.
// Must never be needed for a right answer: a read checks the merge against the hour totals and, when it is
// stale or missing, merges the hours itself. This only keeps reads of long periods from growing with them.

import { HOUR_MS, periodInterval, type Period } from '../domain/periods.js';
import type { DirtyMark } from '../domain/records.js';
import { marksPerChunk, yieldToEventLoop } from './chunking.js';
import type { ServiceContext } from './context.js';

/** Periods long enough for a merge to pay: a day's read merges at most 24 hours. */
export const MERGED_PERIODS: ReadonlySet<Period> = new Set(['weekly', 'monthly', 'yearly']);
/** Most stale merges remembered between ticks; past it, the next tick finds the rest by the hour advancing. */
const MAX_STALE = 10_000;

export interface GroupMergeSummary {
  advanced: number;
  rebuilt: number;
  dropped: number;
}

const staleKey = (customerId: string, period: Period, periodStart: number) => `${period}\u0000${periodStart}\u0000${customerId}`;

/** Remembers that a read found this merge stale, so the next tick rebuilds it instead of waiting for the next hour. */
export function noteStaleMerge(ctx: ServiceContext, customerId: string, period: Period, periodStart: number): void {
  const stale = ctx.staleMerges;
  if (stale && stale.size < MAX_STALE) stale.add(staleKey(customerId, period, periodStart));
}

/** Whether any meter has groups: only then are merges kept. */
export function hasGroups(config: ServiceContext['config']): boolean {
  return config.eventTypes.some((t) => (config.events[t]!.groupBy?.length ?? 0) > 0);
}

export async function advanceGroupMerges(ctx: ServiceContext, now = ctx.clock.now()): Promise<GroupMergeSummary> {
  const { store, config } = ctx;
  const sum: GroupMergeSummary = { advanced: 0, rebuilt: 0, dropped: 0 };
  if (!hasGroups(config)) return sum;
  const through = now - (((now % HOUR_MS) + HOUR_MS) % HOUR_MS);
  for (const period of config.periods) {
    if (!MERGED_PERIODS.has(period)) continue;
    const iv = periodInterval(period, now);
    sum.dropped += await store.dropGroupMerges(period, iv.start);
    const chunk = marksPerChunk(period);
    let after: DirtyMark | undefined;
    for (;;) {
      const marks = await store.listOpenMarks(period, iv.start, chunk, after);
      const customers = marks
        .filter((m) => m.periodStart === iv.start)
        .map((m) => {
          const key = staleKey(m.customerId, period, iv.start);
          const recheck = ctx.staleMerges?.delete(key) === true;
          return { customerId: m.customerId, recheck };
        });
      if (customers.length > 0) {
        const r = await store.advanceGroupMerges(period, iv.start, through, customers);
        sum.advanced += r.advanced;
        sum.rebuilt += r.rebuilt;
      }
      if (marks.length < chunk || marks[marks.length - 1]!.periodStart !== iv.start) break;
      after = marks[marks.length - 1];
      await yieldToEventLoop();
    }
  }
  // What is left names merges of customers without usage in an open period, or of periods that ended.
  ctx.staleMerges?.clear();
  return sum;
}
