// Owns usage over time split by one dimension (GET /customers/:id/usage/series?groupBy=<key>) and the series
// of unique meters: per-group hour states merged into buckets per value of the key; distinct counts read from
// the unique sets of the period a bucket is. Must never read raw events or approximate a unique count.

import { fixedOfCount, fixedToNumber, formatFixed } from '../domain/decimal.js';
import { dimensionsOf, OVERFLOW_GROUP, ALL_GROUPS } from '../domain/dimensions.js';
import { InvalidQuery } from '../domain/errors.js';
import { operatorValue } from '../domain/operators.js';
import { HOUR_MS, type Period } from '../domain/periods.js';
import { mergeInto, type RollupState } from '../domain/rollup-state.js';
import type { ServiceContext } from './context.js';
import type { SeriesBucket, SeriesPoint, SeriesRange } from './series-types.js';

/** One value of the split dimension and its points; the overflow group is a series of its own, last. */
export interface GroupSeries {
  /** The dimension's value (null: missing, null or not a scalar); null too for the overflow series. */
  value: string | null;
  overflow?: true;
  points: SeriesPoint[];
}

const BUCKET_MS: Record<SeriesBucket, number> = { hour: HOUR_MS, day: 24 * HOUR_MS };
const BUCKET_PERIOD: Record<SeriesBucket, Period> = { hour: 'hourly', day: 'daily' };
const floorTo = (t: number, step: number): number => t - (((t % step) + step) % step);
const iso = (t: number): string => new Date(t).toISOString();

/** The period whose unique sets a bucket reads; a unique meter's series needs it configured. */
export function uniqueBucketPeriod(ctx: ServiceContext, eventType: string, bucket: SeriesBucket): Period {
  const period = BUCKET_PERIOD[bucket];
  if (!ctx.config.periods.includes(period)) {
    throw new InvalidQuery(
      `bucket=${bucket} for the unique meter ${eventType} needs "${period}" in periods: distinct values are kept per configured period`,
    );
  }
  return period;
}

/** Checks `groupBy` against the meter: one of its groupBy keys; for a unique meter, its only key (counts stay exact). */
export function checkSeriesGroupBy(ctx: ServiceContext, eventType: string, key: string): void {
  const meter = ctx.config.events[eventType]!;
  if (!meter.groupBy?.includes(key)) {
    const keys = meter.groupBy ? `one of its groupBy keys: ${meter.groupBy.join(', ')}` : 'a meter with groupBy';
    throw new InvalidQuery(`groupBy=${key} is not a dimension of ${eventType}: give ${keys}`);
  }
  if (meter.op === 'unique' && meter.groupBy.length > 1) {
    throw new InvalidQuery(
      `groupBy for the unique meter ${eventType} must be its whole groupBy (one key): distinct values are kept per full group`,
    );
  }
}

const compareValues = (a: GroupSeries, b: GroupSeries): number => {
  if (a.overflow !== b.overflow) return a.overflow ? 1 : -1;
  if (a.value === b.value) return 0;
  if (a.value === null) return -1;
  if (b.value === null) return 1;
  return a.value < b.value ? -1 : 1;
};

/** Points of the buckets with data, oldest first: each bucket's merged state, valued by `value`. */
function pointsOf(
  byBucket: Map<number, RollupState>,
  value: (t: number, s: RollupState) => ReturnType<typeof operatorValue>,
): SeriesPoint[] {
  return [...byBucket.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([t, s]) => {
      const exact = value(t, s);
      return { t: iso(t), value: fixedToNumber(exact), valueDecimal: formatFixed(exact), count: s.count };
    });
}

/** The series of one meter split by the values of one of its groupBy keys. */
export async function groupSeries(
  ctx: ServiceContext,
  customerId: string,
  eventType: string,
  key: string,
  bucket: SeriesBucket,
  range: SeriesRange,
): Promise<GroupSeries[]> {
  const meter = ctx.config.events[eventType]!;
  const step = BUCKET_MS[bucket];
  const rows = await ctx.store.readGroups(customerId, eventType, range.from, range.to);
  const series = new Map<string, { value: string | null; overflow: boolean; buckets: Map<number, RollupState>; groups: Set<string> }>();
  for (const r of rows) {
    const dims = dimensionsOf(r.group);
    const value = dims === null ? null : (dims[key] ?? null);
    const id = r.group === OVERFLOW_GROUP ? OVERFLOW_GROUP : JSON.stringify(value);
    let s = series.get(id);
    if (!s) series.set(id, (s = { value, overflow: dims === null, buckets: new Map(), groups: new Set() }));
    s.groups.add(r.group);
    const b = floorTo(r.hour, step);
    const acc = s.buckets.get(b);
    if (acc) mergeInto(acc, r);
    else s.buckets.set(b, { ...r });
  }
  const distinct = meter.op === 'unique' ? await distinctByBucket(ctx, customerId, eventType, bucket, range) : undefined;
  const out: GroupSeries[] = [];
  for (const s of series.values()) {
    // A unique meter groups by this one key, so each series is one stored group.
    const group = [...s.groups][0]!;
    const points = pointsOf(s.buckets, (t, st) => operatorValue(meter.op, st, distinct?.get(`${t}\u0000${group}`) ?? 0));
    out.push(s.overflow ? { value: null, overflow: true, points } : { value: s.value, points });
  }
  return out.sort(compareValues);
}

/** Distinct counts per (bucket start, group) of a unique meter over the range. */
async function distinctByBucket(
  ctx: ServiceContext,
  customerId: string,
  eventType: string,
  bucket: SeriesBucket,
  range: SeriesRange,
): Promise<Map<string, number>> {
  const period = uniqueBucketPeriod(ctx, eventType, bucket);
  const counts = await ctx.store.uniqueCountsOver(customerId, eventType, period, range.from, range.to);
  return new Map(counts.map((c) => [`${c.periodStart}\u0000${c.group}`, c.count]));
}

/** A unique meter's total series: each bucket's distinct count over its whole set, beside the bucket's event count. */
export async function uniqueTotals(
  ctx: ServiceContext,
  customerId: string,
  eventType: string,
  bucket: SeriesBucket,
  range: SeriesRange,
  points: SeriesPoint[],
): Promise<SeriesPoint[]> {
  const distinct = await distinctByBucket(ctx, customerId, eventType, bucket, range);
  return points.map((p) => {
    const exact = fixedOfCount(distinct.get(`${Date.parse(p.t)}\u0000${ALL_GROUPS}`) ?? 0);
    return { ...p, value: fixedToNumber(exact), valueDecimal: formatFixed(exact) };
  });
}
