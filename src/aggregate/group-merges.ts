// Owns keeping the running merges of open periods' groups current (store/group-merge-plan.ts): each scheduler
// tick extends the merge of every customer with usage in the open week, month and year up to the settled hour,
// rebuilds the ones a read found stale (a late event since), and drops those of periods that have ended.
// Must never be needed for a right answer: a read checks the merge against the hour totals and, when it is
// stale or missing, merges the hours itself. This only keeps reads of long periods from growing with them.

import type { GroupOperators, Operator } from '../domain/operators.js';
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
  return groupedOperators(config).size > 0;
}

const operatorsOf = new WeakMap<ServiceContext['config'], GroupOperators>();

/** Each meter with groupBy and its operator (what a read of a merge decodes), once per configuration. */
export function groupedOperators(config: ServiceContext['config']): GroupOperators {
  let ops = operatorsOf.get(config);
  if (!ops) {
    const m = new Map<string, Operator>();
    for (const t of config.eventTypes) if ((config.events[t]!.groupBy?.length ?? 0) > 0) m.set(t, config.events[t]!.op);
    ops = m;
    operatorsOf.set(config, ops);
  }
  return ops;
}

/**
 * Brings the merges of the open week, month and year up to the hour that `now` less the grace period is in
 * (events sent at the end of an hour may arrive a little after it), and drops the others. A merge is a cache:
 * a failure is logged and leaves the period to the next tick, and reads stay right meanwhile.
 */
export async function advanceGroupMerges(ctx: ServiceContext, now = ctx.clock.now()): Promise<GroupMergeSummary> {
  const { store, config } = ctx;
  const sum: GroupMergeSummary = { advanced: 0, rebuilt: 0, dropped: 0 };
  const settled = now - config.gracePeriodMs;
  const through = settled - (((settled % HOUR_MS) + HOUR_MS) % HOUR_MS);
  const grouped = hasGroups(config);
  for (const period of MERGED_PERIODS) {
    try {
      if (!grouped || !config.periods.includes(period)) {
        // No meter groups any more, or the period is gone from the configuration: nothing reads these.
        sum.dropped += await store.dropGroupMerges(period, Number.MAX_SAFE_INTEGER);
        continue;
      }
      const iv = periodInterval(period, now);
      sum.dropped += await store.dropGroupMerges(period, iv.start);
      await advancePeriod(ctx, period, iv.start, through, sum);
    } catch (err) {
      ctx.logger.warn({ err, period }, 'running merges of groups not advanced; reads merge the hours meanwhile');
    }
  }
  // What is left names merges of customers without usage in an open period, or of periods that ended.
  ctx.staleMerges?.clear();
  return sum;
}

async function advancePeriod(ctx: ServiceContext, period: Period, start: number, through: number, sum: GroupMergeSummary) {
  const chunk = marksPerChunk(period);
  let after: DirtyMark | undefined;
  for (;;) {
    const marks = await ctx.store.listOpenMarks(period, start, chunk, after);
    const customers = marks
      .filter((m) => m.periodStart === start)
      .map((m) => ({ customerId: m.customerId, recheck: ctx.staleMerges?.delete(staleKey(m.customerId, period, start)) === true }));
    if (customers.length > 0) {
      const r = await ctx.store.advanceGroupMerges(period, start, through, customers);
      sum.advanced += r.advanced;
      sum.rebuilt += r.rebuilt;
    }
    if (marks.length < chunk || marks[marks.length - 1]!.periodStart !== start) return;
    after = marks[marks.length - 1];
    await yieldToEventLoop();
  }
}
