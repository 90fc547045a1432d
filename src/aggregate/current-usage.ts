// Owns real-time usage for one customer and period, computed from hour rollups.
// Must never read raw events: its cost depends on hours in the period, not on event count.

import { computeValues, sameValues } from '../domain/aggregation.js';
import { displayEnd, periodInterval, periodKey, type Period } from '../domain/periods.js';
import type { ServiceContext } from './context.js';

export interface CurrentUsage {
  customerId: string;
  period: Period;
  periodKey: string;
  periodStart: string;
  periodEnd: string;
  final: boolean;
  events: Record<string, number>;
  /** Exact decimal text of each total. */
  eventsDecimal: Record<string, string>;
  eventCounts: Record<string, number>;
}

export async function currentUsage(ctx: ServiceContext, customerId: string, period: Period, at: number): Promise<CurrentUsage> {
  const iv = periodInterval(period, at);
  // One pre-merged row per event type: the cost no longer grows with the hours in the period.
  const rollups = await ctx.store.mergedRollups(customerId, iv.start, iv.end);
  const values = computeValues(rollups, ctx.config) ?? { events: {}, eventsDecimal: {}, eventCounts: {} };
  const agg = await ctx.store.getAggregation(customerId, period, iv.start);
  return {
    customerId,
    period,
    periodKey: periodKey(period, iv.start),
    periodStart: new Date(iv.start).toISOString(),
    periodEnd: displayEnd(iv),
    // Final only while the closed numbers still match every stored event (no late data pending).
    final: agg?.final === true && sameValues(agg, values),
    events: values.events,
    eventsDecimal: values.eventsDecimal,
    eventCounts: values.eventCounts,
  };
}
