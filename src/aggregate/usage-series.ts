// Owns usage over time, computed from hourly rollups: one customer's event type in hour or day buckets
// (the dashboard's charts), and the overview of recent ingest across customers.
// Must never read raw events: values are merges of hour states, so cost depends on hours, not events.

import { fixedToNumber, formatFixed } from '../domain/decimal.js';
import { InvalidQuery } from '../domain/errors.js';
import { displayEnd, HOUR_MS } from '../domain/periods.js';
import { operatorValue, type Operator } from '../domain/operators.js';
import { mergeInto, type RollupState } from '../domain/rollup-state.js';
import type { RollupRow } from '../domain/records.js';
import type { ServiceContext } from './context.js';
import { checkSeriesGroupBy, groupSeries, uniqueBucketPeriod, uniqueTotals, type GroupSeries } from './group-series.js';
import type { SeriesBucket, SeriesPoint, SeriesRange } from './series-types.js';

export { SERIES_BUCKETS, type SeriesBucket, type SeriesPoint, type SeriesRange } from './series-types.js';

const DAY_MS = 24 * HOUR_MS;
const BUCKET_MS: Record<SeriesBucket, number> = { hour: HOUR_MS, day: DAY_MS };

/** Range used when `from` is not given: the last 7 days of hours, or the last 30 days. */
export const DEFAULT_SERIES_DAYS: Record<SeriesBucket, number> = { hour: 7, day: 30 };
/** Most buckets one request may span: 31 days of hours, 400 days. */
export const MAX_SERIES_BUCKETS: Record<SeriesBucket, number> = { hour: 31 * 24, day: 400 };

export interface UsageSeries {
  customerId: string;
  eventType: string;
  op: Operator;
  bucket: SeriesBucket;
  /** First bucket start, inclusive. */
  from: string;
  /** Last instant of the last bucket (…:59:59.999Z), inclusive like the `to` parameter. */
  to: string;
  /** Buckets with data only, oldest first. */
  points: SeriesPoint[];
  /** With groupBy: the dimension split on, and one series per value of it. */
  groupBy?: string;
  groups?: GroupSeries[];
}

const floorTo = (t: number, step: number): number => t - (((t % step) + step) % step);

/**
 * The bucket-aligned range [from, to) for a request. Both bounds are inclusive instants: the buckets
 * containing them are included. `to` defaults to now, `from` to DEFAULT_SERIES_DAYS before the end.
 * Throws InvalidQuery for a reversed range, or one of more than MAX_SERIES_BUCKETS buckets.
 */
export function seriesRange(bucket: SeriesBucket, from: number | undefined, to: number | undefined, now: number): SeriesRange {
  const step = BUCKET_MS[bucket];
  if (from !== undefined && to !== undefined && to < from) throw new InvalidQuery('to must not be before from');
  const last = to ?? now;
  if (from !== undefined && last < from) throw new InvalidQuery('from is in the future: give to as well (to defaults to now)');
  const end = floorTo(last, step) + step;
  const start = from === undefined ? end - DEFAULT_SERIES_DAYS[bucket] * DAY_MS : floorTo(from, step);
  const buckets = (end - start) / step;
  const max = MAX_SERIES_BUCKETS[bucket];
  if (buckets > max) {
    const limit = bucket === 'hour' ? `${max} hours (31 days)` : `${max} days`;
    const hint = bucket === 'hour' ? ': narrow the range or use bucket=day' : ': narrow the range';
    throw new InvalidQuery(`from..to spans ${buckets} ${bucket} buckets, more than the ${limit} allowed with bucket=${bucket}${hint}`);
  }
  return { from: start, to: end };
}

function stateOf(r: RollupState): RollupState {
  return {
    count: r.count,
    sum: r.sum,
    min: r.min,
    max: r.max,
    firstTs: r.firstTs,
    firstSeq: r.firstSeq,
    firstValue: r.firstValue,
    lastTs: r.lastTs,
    lastSeq: r.lastSeq,
    lastValue: r.lastValue,
  };
}

/** Pure: merges one event type's hour rollups into buckets and applies the operator. Oldest first. */
export function bucketRollups(rollups: RollupRow[], eventType: string, op: Operator, bucket: SeriesBucket): SeriesPoint[] {
  const step = BUCKET_MS[bucket];
  const byBucket = new Map<number, RollupState>();
  for (const r of rollups) {
    if (r.eventType !== eventType) continue;
    const b = floorTo(r.hour, step);
    const acc = byBucket.get(b);
    if (acc) mergeInto(acc, r);
    else byBucket.set(b, stateOf(r));
  }
  return [...byBucket.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([t, s]) => {
      const exact = operatorValue(op, s);
      return { t: new Date(t).toISOString(), value: fixedToNumber(exact), valueDecimal: formatFixed(exact), count: s.count };
    });
}

/** Usage of one configured event type of one customer over `range` (already validated by seriesRange). */
export async function usageSeries(
  ctx: ServiceContext,
  customerId: string,
  eventType: string,
  bucket: SeriesBucket,
  range: SeriesRange,
  groupBy?: string,
): Promise<UsageSeries> {
  const op = ctx.config.events[eventType]!.op;
  if (groupBy !== undefined) checkSeriesGroupBy(ctx, eventType, groupBy);
  if (op === 'unique') uniqueBucketPeriod(ctx, eventType, bucket);
  const rollups = await ctx.store.readRollups(customerId, range.from, range.to);
  let points = bucketRollups(rollups, eventType, op, bucket);
  if (op === 'unique') points = await uniqueTotals(ctx, customerId, eventType, bucket, range, points);
  const series: UsageSeries = {
    customerId,
    eventType,
    op,
    bucket,
    from: new Date(range.from).toISOString(),
    to: displayEnd({ start: range.from, end: range.to }),
    points,
  };
  if (groupBy === undefined) return series;
  return { ...series, groupBy, groups: await groupSeries(ctx, customerId, eventType, groupBy, bucket, range) };
}

// ---------------------------------------------------------------------------------------------
// Overview
// ---------------------------------------------------------------------------------------------

export const OVERVIEW_DAYS = 7;
/** Customers examined for the overview by default; past this the answer says complete: false. */
export const OVERVIEW_MAX_CUSTOMERS = 5000;
/** Aggregation documents counted for the overview; past this the answer says complete: false. */
export const OVERVIEW_MAX_AGGREGATIONS = 5000;
const PAGE = 500;
const PARALLEL_READS = 8;

export interface EventsOverview {
  from: string;
  to: string;
  bucket: 'hour';
  total: number;
  byType: Record<string, number>;
  /** Every hour of the window, oldest first: events counted by event time. */
  points: Array<{ t: string; count: number; byType: Record<string, number> }>;
  customersWithUsage: number;
  customersScanned: number;
  /** False when more customers exist than OVERVIEW_MAX_CUSTOMERS: the numbers are a lower bound. */
  complete: boolean;
}

/**
 * Events per hour over the last OVERVIEW_DAYS days, summed over customers (configured types only),
 * from hourly rollups. Examines at most OVERVIEW_MAX_CUSTOMERS customers.
 */
export async function eventsOverview(
  ctx: ServiceContext,
  now: number,
  limits: { maxCustomers?: number; pageSize?: number } = {},
): Promise<EventsOverview> {
  const maxCustomers = limits.maxCustomers ?? OVERVIEW_MAX_CUSTOMERS;
  const pageSize = limits.pageSize ?? PAGE;
  const to = floorTo(now, HOUR_MS) + HOUR_MS;
  const from = to - OVERVIEW_DAYS * DAY_MS;
  const perHour = new Map<number, Record<string, number>>();
  const byType: Record<string, number> = {};
  let total = 0;
  let scanned = 0;
  let withUsage = 0;
  let complete = true;
  let after: string | undefined;

  const add = (rows: RollupRow[]) => {
    for (const r of rows) {
      if (!Object.hasOwn(ctx.config.events, r.eventType)) continue;
      let h = perHour.get(r.hour);
      if (!h) perHour.set(r.hour, (h = {}));
      h[r.eventType] = (h[r.eventType] ?? 0) + r.count;
      byType[r.eventType] = (byType[r.eventType] ?? 0) + r.count;
      total += r.count;
    }
  };

  for (;;) {
    const room = maxCustomers - scanned;
    const want = Math.min(pageSize, room + 1);
    const page = await ctx.store.listCustomers({ after, limit: want });
    if (page.length > room) {
      complete = false;
      page.length = room;
    }
    scanned += page.length;
    const active = page.filter((c) => c.lastHour >= from).map((c) => c.customerId);
    withUsage += active.length;
    for (let i = 0; i < active.length; i += PARALLEL_READS) {
      const reads = active.slice(i, i + PARALLEL_READS).map((id) => ctx.store.readRollups(id, from, to));
      for (const rows of await Promise.all(reads)) add(rows);
    }
    const last = page[page.length - 1];
    if (!complete || !last || page.length < want) break;
    after = last.customerId;
  }

  const points: EventsOverview['points'] = [];
  for (let h = from; h < to; h += HOUR_MS) {
    const types = perHour.get(h) ?? {};
    points.push({ t: new Date(h).toISOString(), count: Object.values(types).reduce((a, b) => a + b, 0), byType: types });
  }
  return {
    from: new Date(from).toISOString(),
    to: displayEnd({ start: from, end: to }),
    bucket: 'hour',
    total,
    byType,
    points,
    customersWithUsage: withUsage,
    customersScanned: scanned,
    complete,
  };
}

export interface Overview {
  generatedAt: string;
  eventTypes: Record<string, Operator>;
  events: EventsOverview;
  aggregations: { from: string; final: number; provisional: number; complete: boolean };
  deliveries: Record<string, number>;
  endpoints: { total: number; active: number; disabled: number; failing: number };
}

/** The dashboard's overview: recent events, aggregations of the window, deliveries by status, endpoint health. */
export async function overview(ctx: ServiceContext): Promise<Overview> {
  const now = ctx.clock.now();
  const events = await eventsOverview(ctx, now);
  const from = Date.parse(events.from);
  const aggs = await ctx.store.listAggregations({ from, limit: OVERVIEW_MAX_AGGREGATIONS + 1 });
  const counted = aggs.slice(0, OVERVIEW_MAX_AGGREGATIONS);
  const final = counted.filter((a) => a.final).length;
  const states = new Map((await ctx.store.listEndpoints()).map((e) => [e.id, e]));
  let active = 0;
  let disabled = 0;
  let failing = 0;
  for (const w of ctx.config.webhooks) {
    const st = states.get(w.id);
    if (!w.enabled || st?.disabledAt) disabled++;
    else {
      active++;
      if ((st?.failureStreak ?? 0) > 0) failing++;
    }
  }
  const eventTypes: Record<string, Operator> = {};
  for (const t of ctx.config.eventTypes) eventTypes[t] = ctx.config.events[t]!.op;
  return {
    generatedAt: new Date(now).toISOString(),
    eventTypes,
    events,
    aggregations: { from: events.from, final, provisional: counted.length - final, complete: aggs.length <= OVERVIEW_MAX_AGGREGATIONS },
    deliveries: { ...(await ctx.store.deliveryCounts()) },
    endpoints: { total: ctx.config.webhooks.length, active, disabled, failing },
  };
}
