// Owns the rules that turn hour rollups into aggregation documents and webhook messages: operator
// values, revisions, and when nothing changed. Must never do I/O; adapters call it inside transactions.

import type { DeliveryRules, MeterRules } from './rules.js';
import {
  NO_PERIOD_DIMENSIONS,
  type AggregationRecord,
  type CloseDecider,
  type DirtyMark,
  type GroupState,
  type GroupTotal,
  type PeriodDimensions,
  type ProvisionalDecider,
  type RollupRow,
} from './records.js';
import { ALL_GROUPS, sortByGroupKey } from './dimensions.js';
import type { NewDelivery, OutboxMessage } from './deliveries.js';
import { fixedToNumber, parseFixed } from './decimal.js';
import { timedDeterministicId } from './ids.js';
import { displayEnd, periodInterval, periodKey, type Period } from './periods.js';
import { operatorText } from './operators.js';
import { mergeInto, type RollupState } from './rollup-state.js';

export interface PeriodValues {
  /** The nearest JSON number of each total, for reference clients. */
  events: Record<string, number>;
  /** Each total as exact canonical decimal text: what billing should read. */
  eventsDecimal: Record<string, string>;
  eventCounts: Record<string, number>;
  /** Per-group totals of the meters with groupBy that have data; absent when none has. */
  groups?: Record<string, GroupTotal[]>;
}

/** The reference's number fields of exact totals. */
export function numbersOf(decimals: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(decimals)) out[k] = fixedToNumber(parseFixed(decimals[k]!));
  return out;
}

type EventsConfig = Pick<MeterRules, 'events'>;

/**
 * Merges rollup rows per event type and applies each type's operator; null when no configured type has data.
 * `dimensions` holds the period's merged groups and unique counts: a unique meter's total is its distinct count,
 * and each meter with groupBy gets its groups, in compareGroupKeys order, valued by the same operator.
 */
export function computeValues(
  rollups: RollupRow[],
  config: EventsConfig,
  dimensions: PeriodDimensions = NO_PERIOD_DIMENSIONS,
): PeriodValues | null {
  const byType = new Map<string, RollupState>();
  for (const r of rollups) {
    if (!Object.hasOwn(config.events, r.eventType)) continue;
    const acc = byType.get(r.eventType);
    if (acc) mergeInto(acc, r);
    else byType.set(r.eventType, { ...r });
  }
  if (byType.size === 0) return null;
  const events: Record<string, number> = {};
  const eventsDecimal: Record<string, string> = {};
  const eventCounts: Record<string, number> = {};
  const distinct = new Map<string, number>();
  for (const u of dimensions.uniques) distinct.set(`${u.eventType}\u0000${u.group}`, u.count);
  // Only a unique meter has distinct counts: no other pays for the key.
  const distinctOf = (t: string, g: string): number => (distinct.size === 0 ? 0 : (distinct.get(`${t}\u0000${g}`) ?? 0));
  let groups: Record<string, GroupTotal[]> | undefined;
  const groupsByType = new Map<string, GroupState[]>();
  for (const g of dimensions.groups) {
    const list = groupsByType.get(g.eventType);
    if (list) list.push(g);
    else groupsByType.set(g.eventType, [g]);
  }
  for (const t of [...byType.keys()].sort()) {
    const s = byType.get(t)!;
    const meter = config.events[t]!;
    const unique = meter.op === 'unique';
    const text = operatorText(meter.op, s, unique ? distinctOf(t, ALL_GROUPS) : 0);
    eventsDecimal[t] = text;
    // fixedToNumber is Number of the canonical text: format once.
    events[t] = Number(text);
    eventCounts[t] = s.count;
    if (!meter.groupBy) continue;
    const mine = sortByGroupKey(groupsByType.get(t) ?? [], (g) => g.group);
    groups ??= {};
    groups[t] = mine.map(({ item: g, group: { dimensions: dims } }) => {
      const text = operatorText(meter.op, g, unique ? distinctOf(t, g.group) : 0);
      const total: GroupTotal = { dimensions: dims ?? {}, value: Number(text), valueDecimal: text, count: g.count };
      if (dims === null) total.overflow = true;
      return total;
    });
  }
  return groups ? { events, eventsDecimal, eventCounts, groups } : { events, eventsDecimal, eventCounts };
}

/** Same types, counts and exact values: totals are exact, so any order of merging gives equal text. */
export function sameValues(a: PeriodValues, b: PeriodValues): boolean {
  const ka = Object.keys(a.eventsDecimal);
  if (ka.length !== Object.keys(b.eventsDecimal).length) return false;
  if (!ka.every((k) => a.eventsDecimal[k] === b.eventsDecimal[k] && a.eventCounts[k] === b.eventCounts[k])) return false;
  // Groups are built in one deterministic order, so equal groups serialise alike.
  return JSON.stringify(a.groups ?? null) === JSON.stringify(b.groups ?? null);
}

export function aggregationId(customerId: string, period: Period, periodStart: number): string {
  return timedDeterministicId('agg', periodStart, customerId, period, periodStart);
}

/** The reference's document id, which clients use to find a period. */
export function compatAggregationId(a: Pick<AggregationRecord, 'customerId' | 'period' | 'periodKey'>): string {
  return `${a.customerId}_${a.period}_${a.periodKey}`;
}

function buildRecord(mark: DirtyMark, values: PeriodValues, now: number, final: boolean, revision: number): AggregationRecord {
  const iv = periodInterval(mark.period, mark.periodStart);
  return {
    id: aggregationId(mark.customerId, mark.period, iv.start),
    customerId: mark.customerId,
    period: mark.period,
    periodKey: periodKey(mark.period, iv.start),
    periodStart: iv.start,
    periodEnd: iv.end,
    events: values.events,
    eventsDecimal: values.eventsDecimal,
    eventCounts: values.eventCounts,
    ...(values.groups ? { groups: values.groups } : {}),
    final,
    revision,
    computedAt: now,
    finalizedAt: final ? now : null,
    webhookStatus: { delivered: false, attempts: 0 },
  };
}

/** The webhook body, serialised once: reference fields first, then meterhook's additions. */
export function buildMessage(agg: AggregationRecord, previous: (PeriodValues & { revision: number }) | null, now: number): OutboxMessage {
  const id = timedDeterministicId('msg', agg.periodStart, agg.id, agg.revision);
  const type = agg.revision === 1 ? 'aggregation.completed' : 'aggregation.updated';
  const payload: Record<string, unknown> = {
    type,
    customerId: agg.customerId,
    period: agg.period,
    data: {
      periodStart: new Date(agg.periodStart).toISOString(),
      periodEnd: displayEnd({ start: agg.periodStart, end: agg.periodEnd }),
      periodKey: agg.periodKey,
      timestamp: new Date(agg.computedAt).toISOString(),
      events: agg.events,
      eventCounts: agg.eventCounts,
      eventsDecimal: agg.eventsDecimal,
      ...(agg.groups ? { groups: agg.groups } : {}),
    },
    created: Math.floor(now / 1000),
    id,
    aggregationId: agg.id,
    revision: agg.revision,
    final: true,
  };
  if (previous) {
    payload.previous = {
      events: previous.events,
      eventCounts: previous.eventCounts,
      eventsDecimal: previous.eventsDecimal,
      ...(previous.groups ? { groups: previous.groups } : {}),
      revision: previous.revision,
    };
  }
  return {
    id,
    aggregationId: agg.id,
    revision: agg.revision,
    type,
    customerId: agg.customerId,
    period: agg.period,
    createdAt: now,
    body: JSON.stringify(payload),
  };
}

export const MAX_MESSAGE_BYTES = 256 * 1024;

/** The endpoints a message goes to: enabled, and whose event-type and period filters match. */
export function deliveriesFor(message: OutboxMessage, config: DeliveryRules): NewDelivery[] {
  return config.webhooks
    .filter((w) => w.enabled && w.events.includes(message.type) && (w.periods === null || w.periods.includes(message.period)))
    .map((w) => ({
      id: timedDeterministicId('dlv', message.createdAt, message.id, w.id),
      endpointId: w.id,
      deadlineAt: message.createdAt + config.webhookDelivery.deadlineMs,
    }));
}

/**
 * Finalizes a due period: a first close is revision 1; a later close with different numbers is the
 * next revision and announces the previous numbers; unchanged numbers write nothing. `onOversized`
 * hears of a message over MAX_MESSAGE_BYTES, which is not written (the aggregation still is).
 */
export function closeDecider(
  config: EventsConfig & DeliveryRules,
  now: number,
  onOversized: (agg: AggregationRecord, bytes: number) => void = () => undefined,
): CloseDecider {
  return (mark, rollups, existing, dimensions) => {
    const values = computeValues(rollups, config, dimensions);
    if (!values) return null;
    if (existing?.final && sameValues(existing, values)) return null;
    const revision = existing?.final ? existing.revision + 1 : 1;
    const agg = buildRecord(mark, values, now, true, revision);
    const previous = existing?.final
      ? {
          events: existing.events,
          eventsDecimal: existing.eventsDecimal,
          eventCounts: existing.eventCounts,
          ...(existing.groups ? { groups: existing.groups } : {}),
          revision: existing.revision,
        }
      : null;
    const message = buildMessage(agg, previous, now);
    const bytes = Buffer.byteLength(message.body);
    if (bytes > MAX_MESSAGE_BYTES) {
      onOversized(agg, bytes);
      return { aggregation: agg, message: null, deliveries: [] };
    }
    return { aggregation: agg, message, deliveries: deliveriesFor(message, config) };
  };
}

/** Real-time numbers for a period that is still open; never overwrites a final document. */
export function provisionalDecider(config: EventsConfig, now: number): ProvisionalDecider {
  return (mark, rollups, existing, dimensions) => {
    if (existing?.final) return null;
    const values = computeValues(rollups, config, dimensions);
    if (!values) return null;
    return buildRecord(mark, values, now, false, 0);
  };
}
