// Owns real-time usage for one customer and period, computed from hour rollups.
// Must never read raw events: its cost depends on hours in the period, not on event count (and, for groups, on
// the hours since the period's running merge, group-merges.ts).

import { computeValues, sameValues, type PeriodValues } from '../domain/aggregation.js';
import type { GroupState, GroupTotal, PeriodDimensions, RollupRow } from '../domain/records.js';
import { dimensionRuleOf } from '../domain/rules.js';
import { displayEnd, periodInterval, periodKey, type Period } from '../domain/periods.js';
import type { ServiceContext } from './context.js';
import { groupedOperators, MERGED_PERIODS, noteStaleMerge } from './group-merges.js';

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
  /** Per-group totals of meters with groupBy, when any has data. */
  groups?: Record<string, GroupTotal[]>;
}

export async function currentUsage(ctx: ServiceContext, customerId: string, period: Period, at: number): Promise<CurrentUsage> {
  const iv = periodInterval(period, at);
  // One pre-merged row per event type: the cost no longer grows with the hours in the period. With groups, the
  // totals and groups come from one snapshot, the groups through the period's running merge while it is current.
  let rollups: RollupRow[];
  let dims: PeriodDimensions | undefined;
  if (hasDimensions(ctx.config)) {
    let groups: GroupState[];
    const operators = groupedOperators(ctx.config);
    if (MERGED_PERIODS.has(period) && operators.size > 0) {
      const merged = await ctx.store.mergedPeriod(customerId, period, iv.start, iv.end, operators);
      if (merged.merge === 'stale') noteStaleMerge(ctx, customerId, period, iv.start);
      rollups = merged.rollups;
      groups = merged.groups;
    } else {
      rollups = await ctx.store.mergedRollups(customerId, iv.start, iv.end);
      groups = await ctx.store.mergedGroups(customerId, iv.start, iv.end);
    }
    dims = { groups, uniques: await ctx.store.uniqueCounts(customerId, period, iv.start) };
  } else {
    rollups = await ctx.store.mergedRollups(customerId, iv.start, iv.end);
  }
  const values: PeriodValues = computeValues(rollups, ctx.config, dims) ?? { events: {}, eventsDecimal: {}, eventCounts: {} };
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
    ...(values.groups ? { groups: values.groups } : {}),
  };
}

/** Whether any meter has groups or a unique count: only then are the dimension tables read. */
function hasDimensions(config: ServiceContext['config']): boolean {
  return config.eventTypes.some((t) => dimensionRuleOf(config.events[t]!) !== undefined);
}
