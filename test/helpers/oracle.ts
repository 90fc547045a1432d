// Brute-force aggregation oracle for tests: computes every (customer, period, periodKey) document straight
// from raw events. Must never reuse the rollup/merge code under test; only the period math is shared.

import type { Operator } from '../../src/config/schema.js';
import { displayEnd, periodInterval, periodKey, type Period } from '../../src/domain/periods.js';

export interface OracleEvent {
  customerId: string;
  eventType: string;
  value: number;
  /** Event time, epoch ms. */
  ts: number;
  /** Client id; events that share (customerId, eventType, id) are one event (the first arrival counts). */
  id?: string | null;
}

export interface OracleDoc {
  customerId: string;
  period: Period;
  periodKey: string;
  periodStart: string;
  periodEnd: string;
  events: Record<string, number>;
  eventCounts: Record<string, number>;
  /** Σ|value| per type: the scale against which a floating-point sum's rounding is judged. */
  absSums: Record<string, number>;
}

export const docKey = (customerId: string, period: string, key: string): string => `${customerId}\u0000${period}\u0000${key}`;

/** Events in arrival order with repeats of an id dropped; each keeps its arrival index (the tie-breaker). */
export function dedupe(arrivals: readonly OracleEvent[]): Array<OracleEvent & { arrival: number }> {
  const seen = new Set<string>();
  const out: Array<OracleEvent & { arrival: number }> = [];
  arrivals.forEach((e, arrival) => {
    if (e.id !== undefined && e.id !== null) {
      const k = `${e.customerId}\u0000${e.eventType}\u0000${e.id}`;
      if (seen.has(k)) return;
      seen.add(k);
    }
    out.push({ ...e, arrival });
  });
  return out;
}

function apply(op: Operator, evs: ReadonlyArray<OracleEvent & { arrival: number }>): number {
  const values = evs.map((e) => e.value);
  const byTime = [...evs].sort((a, b) => a.ts - b.ts || a.arrival - b.arrival);
  switch (op) {
    case 'sum':
      return values.reduce((s, v) => s + v, 0);
    case 'avg':
      return values.reduce((s, v) => s + v, 0) / values.length;
    case 'min':
      return values.reduce((m, v) => (v < m ? v : m), Infinity);
    case 'max':
      return values.reduce((m, v) => (v > m ? v : m), -Infinity);
    case 'count':
      return values.length;
    case 'first':
      return byTime[0]!.value;
    case 'last':
      return byTime[byTime.length - 1]!.value;
  }
}

/**
 * Every aggregation document the service should hold once all periods are closed, keyed by docKey.
 * Types not in `ops` are ignored, as are periods with no event of a configured type.
 */
export function oracleAggregations(
  arrivals: readonly OracleEvent[],
  periods: readonly Period[],
  ops: Readonly<Record<string, Operator>>,
): Map<string, OracleDoc> {
  const groups = new Map<string, { customerId: string; period: Period; key: string; ts: number; byType: Map<string, Array<OracleEvent & { arrival: number }>> }>();
  for (const e of dedupe(arrivals)) {
    if (!Object.hasOwn(ops, e.eventType)) continue;
    for (const period of periods) {
      const key = periodKey(period, e.ts);
      const k = docKey(e.customerId, period, key);
      let g = groups.get(k);
      if (!g) {
        g = { customerId: e.customerId, period, key, ts: e.ts, byType: new Map() };
        groups.set(k, g);
      }
      const list = g.byType.get(e.eventType) ?? [];
      list.push(e);
      g.byType.set(e.eventType, list);
    }
  }
  const out = new Map<string, OracleDoc>();
  for (const [k, g] of groups) {
    const iv = periodInterval(g.period, g.ts);
    const events: Record<string, number> = {};
    const eventCounts: Record<string, number> = {};
    const absSums: Record<string, number> = {};
    for (const [type, evs] of g.byType) {
      events[type] = apply(ops[type]!, evs);
      eventCounts[type] = evs.length;
      absSums[type] = evs.reduce((s, e) => s + Math.abs(e.value), 0);
    }
    out.set(k, {
      customerId: g.customerId,
      period: g.period,
      periodKey: g.key,
      periodStart: new Date(iv.start).toISOString(),
      periodEnd: displayEnd(iv),
      events,
      eventCounts,
      absSums,
    });
  }
  return out;
}
