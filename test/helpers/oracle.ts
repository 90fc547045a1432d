// Brute-force aggregation oracle for tests: computes every (customer, period, periodKey) document straight
// from raw events, in exact decimal arithmetic of its own (digit strings and bigints). Must never reuse
// the rollup/merge or decimal code under test; only the period math is shared.

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
  metadata?: Record<string, unknown> | null;
}

/** A meter's dimensions as the oracle reads them: the keys it groups by, the field a unique meter counts. */
export interface OracleMeter {
  groupBy?: readonly string[];
  field?: string;
}

export interface OracleGroup {
  dimensions: Record<string, string | null>;
  valueDecimal: string;
  count: number;
}

export interface OracleDoc {
  customerId: string;
  period: Period;
  periodKey: string;
  periodStart: string;
  periodEnd: string;
  /** The nearest double of each exact total. */
  events: Record<string, number>;
  /** Each total as canonical decimal text (no exponent, no trailing zeros). */
  eventsDecimal: Record<string, string>;
  eventCounts: Record<string, number>;
  /** Only for meters with groupBy, only when such a meter has data. */
  groups?: Record<string, OracleGroup[]>;
}

/** Places kept after the point; values are expected to have no more. */
const PLACES = 12;

/** A value's decimal, scaled by 10^12: the digits of its shortest text (exponent form included). */
export function oracleScaled(v: number): bigint {
  const text = String(v);
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(text);
  if (!m) throw new Error(`oracle cannot read ${text}`);
  const digits = m[2]! + (m[3] ?? '');
  const shift = Number(m[4] ?? 0) - (m[3] ?? '').length + PLACES;
  if (shift < 0) throw new Error(`oracle values must have at most ${PLACES} decimal places: ${text}`);
  const n = BigInt(digits + '0'.repeat(shift));
  return m[1] === '-' ? -n : n;
}

/** Canonical text of a scaled value. */
export function oracleText(x: bigint): string {
  const neg = x < 0n;
  const digits = (neg ? -x : x).toString().padStart(PLACES + 1, '0');
  const int = digits.slice(0, digits.length - PLACES);
  const frac = digits.slice(digits.length - PLACES).replace(/0+$/, '');
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

/** x / n rounded half away from zero, by long division on magnitudes. */
function oracleDivide(x: bigint, n: number): bigint {
  const neg = x < 0n;
  const mag = neg ? -x : x;
  const d = BigInt(n);
  let q = mag / d;
  if ((mag % d) * 2n >= d) q += 1n;
  return neg ? -q : q;
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

function apply(op: Operator, evs: ReadonlyArray<OracleEvent & { arrival: number }>): bigint {
  const values = evs.map((e) => oracleScaled(e.value));
  const byTime = [...evs].sort((a, b) => a.ts - b.ts || a.arrival - b.arrival);
  const sum = () => values.reduce((s, v) => s + v, 0n);
  switch (op) {
    case 'sum':
      return sum();
    case 'avg':
      return oracleDivide(sum(), values.length);
    case 'min':
      // biome-ignore lint/complexity/useMathMinMax: the values are bigint
      return values.reduce((m, v) => (v < m ? v : m));
    case 'max':
      // biome-ignore lint/complexity/useMathMinMax: the values are bigint
      return values.reduce((m, v) => (v > m ? v : m));
    case 'count':
      return BigInt(values.length) * 10n ** BigInt(PLACES);
    case 'first':
      return oracleScaled(byTime[0]!.value);
    case 'last':
      return oracleScaled(byTime[byTime.length - 1]!.value);
    case 'unique':
      throw new Error('unique is counted from metadata: use oracleValue');
  }
}

/** The dimension text of a metadata value, written from the rule's words: strings as is, numbers' JSON, booleans. */
function dimText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : null;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return null;
}

const field = (e: OracleEvent, k: string): unknown => (e.metadata && Object.hasOwn(e.metadata, k) ? e.metadata[k] : undefined);

function oracleValue(op: Operator, meter: OracleMeter | undefined, evs: ReadonlyArray<OracleEvent & { arrival: number }>): bigint {
  if (op !== 'unique') return apply(op, evs);
  const seen = new Set<string>();
  for (const e of evs) {
    const v = dimText(field(e, meter!.field!));
    if (v !== null) seen.add(v);
  }
  return BigInt(seen.size) * 10n ** BigInt(PLACES);
}

function oracleGroups(
  op: Operator,
  meter: OracleMeter & { groupBy: readonly string[] },
  evs: ReadonlyArray<OracleEvent & { arrival: number }>,
): OracleGroup[] {
  const byKey = new Map<string, { dims: Array<string | null>; evs: Array<OracleEvent & { arrival: number }> }>();
  for (const e of evs) {
    const dims = meter.groupBy.map((k) => dimText(field(e, k)));
    const k = JSON.stringify(dims);
    const g = byKey.get(k) ?? { dims, evs: [] };
    g.evs.push(e);
    byKey.set(k, g);
  }
  const cmp = (a: Array<string | null>, b: Array<string | null>): number => {
    for (let i = 0; i < a.length; i++) {
      if (a[i] === b[i]) continue;
      if (a[i] === null) return -1;
      if (b[i] === null) return 1;
      return a[i]! < b[i]! ? -1 : 1;
    }
    return 0;
  };
  return [...byKey.values()]
    .sort((a, b) => cmp(a.dims, b.dims))
    .map((g) => ({
      dimensions: Object.fromEntries(meter.groupBy.map((k, i) => [k, g.dims[i]!])),
      valueDecimal: oracleText(oracleValue(op, meter, g.evs)),
      count: g.evs.length,
    }));
}

/**
 * Every aggregation document the service should hold once all periods are closed, keyed by docKey.
 * Types not in `ops` are ignored, as are periods with no event of a configured type.
 */
export function oracleAggregations(
  arrivals: readonly OracleEvent[],
  periods: readonly Period[],
  ops: Readonly<Record<string, Operator>>,
  meters: Readonly<Record<string, OracleMeter>> = {},
): Map<string, OracleDoc> {
  const groups = new Map<
    string,
    { customerId: string; period: Period; key: string; ts: number; byType: Map<string, Array<OracleEvent & { arrival: number }>> }
  >();
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
    const eventsDecimal: Record<string, string> = {};
    const eventCounts: Record<string, number> = {};
    let groups: Record<string, OracleGroup[]> | undefined;
    for (const [type, evs] of g.byType) {
      const meter = meters[type];
      eventsDecimal[type] = oracleText(oracleValue(ops[type]!, meter, evs));
      events[type] = Number(eventsDecimal[type]);
      eventCounts[type] = evs.length;
      if (meter?.groupBy) {
        groups ??= {};
        groups[type] = oracleGroups(ops[type]!, { ...meter, groupBy: meter.groupBy }, evs);
      }
    }
    out.set(k, {
      customerId: g.customerId,
      period: g.period,
      periodKey: g.key,
      periodStart: new Date(iv.start).toISOString(),
      periodEnd: displayEnd(iv),
      events,
      eventsDecimal,
      eventCounts,
      ...(groups ? { groups } : {}),
    });
  }
  return out;
}
