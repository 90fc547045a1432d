// The shared fold: hour states and dirty marks from events, compared with a brute-force oracle, in its one key order.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fixedOfNumber } from '../../src/domain/decimal.js';
import { HourFold, type FoldedEvent, type MarkRaise } from '../../src/domain/fold.js';
import { HOUR_MS, periodInterval, PERIODS, type Period } from '../../src/domain/periods.js';
import { mergeInto, type RollupState } from '../../src/domain/rollup-state.js';

const T0 = Date.UTC(2026, 0, 30, 20);

const eventArb = fc.record({
  customerId: fc.constantFrom('a', 'b', 'B', 'é', 'a\u0000x'),
  eventType: fc.constantFrom('api.calls', 'storage', 'x'),
  // Across a month boundary, a week boundary and many hours.
  ts: fc.integer({ min: T0 - 3 * 86_400_000, max: T0 + 3 * 86_400_000 }),
  value: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true })),
});

const eventsArb = fc.array(eventArb, { minLength: 1, maxLength: 60 }).map((evs) => evs.map((e, i) => ({ ...e, seq: i + 1 })));
const periodsArb = fc.subarray([...PERIODS], { minLength: 1 });

type Hours = Map<string, RollupState>;

function foldedHours(fold: HourFold): { keys: string[]; hours: Hours } {
  const keys: string[] = [];
  const hours: Hours = new Map();
  fold.forEachHour((c, t, h, s) => {
    const k = JSON.stringify([c, t, h]);
    keys.push(k);
    hours.set(k, { ...s });
  });
  return { keys, hours };
}

/** The states a correct fold gives, computed event by event from first principles. */
function oracleHours(evs: readonly FoldedEvent[]): Hours {
  const out: Hours = new Map();
  for (const e of evs) {
    const k = JSON.stringify([e.customerId, e.eventType, Math.floor(e.ts / HOUR_MS) * HOUR_MS]);
    const s = out.get(k);
    const one: RollupState = {
      count: 1,
      sum: fixedOfNumber(e.value),
      min: e.value,
      max: e.value,
      firstTs: e.ts,
      firstSeq: e.seq,
      firstValue: e.value,
      lastTs: e.ts,
      lastSeq: e.seq,
      lastValue: e.value,
    };
    if (s) mergeInto(s, one);
    else out.set(k, one);
  }
  return out;
}

function oracleMarks(evs: readonly FoldedEvent[], periods: readonly Period[]): MarkRaise[] {
  const by = new Map<string, MarkRaise>();
  for (const e of evs) {
    for (const period of periods) {
      const periodStart = periodInterval(period, e.ts).start;
      const k = JSON.stringify([period, periodStart, e.customerId]);
      const m = by.get(k);
      if (!m || m.changeSeq < e.seq) by.set(k, { period, periodStart, customerId: e.customerId, changeSeq: e.seq });
    }
  }
  return [...by.values()];
}

describe('HourFold', () => {
  it('gives the oracle hour states and marks, whatever order the events come in', () => {
    fc.assert(
      fc.property(eventsArb, periodsArb, fc.boolean(), (evs, periods, reverse) => {
        const fold = new HourFold();
        for (const e of reverse ? [...evs].reverse() : evs) fold.add(e, periods);
        assert.equal(fold.size, evs.length);
        const { hours } = foldedHours(fold);
        assert.deepEqual(hours, oracleHours(evs));
        const sortKey = (m: MarkRaise) => JSON.stringify([m.period, m.periodStart, m.customerId]);
        assert.deepEqual(
          [...fold.marks()].sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
          oracleMarks(evs, periods).sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("gives the oracle's groups per hour, with each group's first seq, whether an hour holds one group or several", () => {
    // Few customers and hours, so hours hold one group, several, or groups and ungrouped events together.
    const grouped = fc
      .array(
        fc.record({
          customerId: fc.constantFrom('a', 'b'),
          eventType: fc.constantFrom('t', 'u'),
          ts: fc.integer({ min: T0, max: T0 + 3 * HOUR_MS - 1 }),
          value: fc.integer({ min: -50, max: 50 }),
          group: fc.constantFrom<string | null>('g1', 'g2', 'g3', null),
        }),
        { minLength: 1, maxLength: 40 },
      )
      .map((evs) => evs.map((e, i) => ({ ...e, seq: i + 1 })));
    fc.assert(
      fc.property(grouped, fc.boolean(), (evs, reverse) => {
        const fold = new HourFold();
        for (const e of reverse ? [...evs].reverse() : evs) fold.add(e, ['hourly']);
        assert.deepEqual(foldedHours(fold).hours, oracleHours(evs));
        const got = new Map<string, { state: RollupState; firstSeq: number }>();
        const hoursWithGroups = new Set<string>();
        fold.forEachHour((c, t, h, _s, groups) => {
          assert.equal(fold.hasGroups(c, t, h), groups !== null);
          if (!groups) return;
          assert.deepEqual([groups.customerId, groups.eventType, groups.hour], [c, t, h]);
          hoursWithGroups.add(JSON.stringify([c, t, h]));
          for (const [g, fg] of groups.groups) got.set(JSON.stringify([c, t, h, g]), { state: { ...fg.state }, firstSeq: fg.firstSeq });
        });
        const want = new Map<string, { state: RollupState; firstSeq: number }>();
        const withGroup = evs.filter((e) => e.group !== null);
        for (const [k, state] of oracleHours(withGroup.map((e) => ({ ...e, customerId: JSON.stringify([e.customerId, e.group]) })))) {
          const [ck, t, h] = JSON.parse(k) as [string, string, number];
          const [c, g] = JSON.parse(ck) as [string, string];
          const firstSeq = Math.min(
            ...withGroup
              .filter((e) => e.customerId === c && e.eventType === t && e.group === g && Math.floor(e.ts / HOUR_MS) * HOUR_MS === h)
              .map((e) => e.seq),
          );
          want.set(JSON.stringify([c, t, h, g]), { state, firstSeq });
        }
        assert.deepEqual(got, want);
        assert.deepEqual(hoursWithGroups, new Set([...want.keys()].map((k) => JSON.stringify((JSON.parse(k) as unknown[]).slice(0, 3)))));
        assert.equal(fold.groupHours().length, hoursWithGroups.size);
        // The writers' walk gives the same groups: an hour of one group by its key, sharing the hour's state.
        const viaSole = new Map<string, { state: RollupState; firstSeq: number }>();
        fold.forEachHourOrSole((c, t, h, s, groups, sole, soleFirstSeq) => {
          assert.ok(groups === null || sole === null, 'an hour gives its groups or its sole group, never both');
          if (sole !== null) viaSole.set(JSON.stringify([c, t, h, sole]), { state: { ...s }, firstSeq: soleFirstSeq });
          for (const [g, fg] of groups?.groups ?? [])
            viaSole.set(JSON.stringify([c, t, h, g]), { state: { ...fg.state }, firstSeq: fg.firstSeq });
        });
        assert.deepEqual(viaSole, want);
      }),
      { numRuns: 500 },
    );
  });

  it('visits hours in (customer, type, hour) order and lists marks in (period, start, customer) order', () => {
    fc.assert(
      fc.property(eventsArb, periodsArb, (evs, periods) => {
        const fold = new HourFold();
        for (const e of evs) fold.add(e, periods);
        const seen: Array<[string, string, number]> = [];
        fold.forEachHour((c, t, h) => void seen.push([c, t, h]));
        const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
        for (let i = 1; i < seen.length; i++) {
          const [a, b] = [seen[i - 1]!, seen[i]!];
          assert.ok(
            cmp(a[0], b[0]) < 0 || (a[0] === b[0] && (cmp(a[1], b[1]) < 0 || (a[1] === b[1] && a[2] < b[2]))),
            JSON.stringify([a, b]),
          );
        }
        const marks = fold.marks();
        for (let i = 1; i < marks.length; i++) {
          const [a, b] = [marks[i - 1]!, marks[i]!];
          const order = cmp(a.period, b.period) || a.periodStart - b.periodStart || cmp(a.customerId, b.customerId);
          assert.ok(order < 0, JSON.stringify([a, b]));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('drops the marks a store says it already has, and keeps their newest seq otherwise', () => {
    const fold = new HourFold();
    const ts = Date.UTC(2026, 2, 1, 10, 30);
    fold.add({ customerId: 'c', eventType: 't', ts, seq: 7, value: 1 }, ['hourly', 'monthly']);
    fold.add({ customerId: 'c', eventType: 't', ts: ts + 60_000, seq: 9, value: 2 }, ['hourly', 'monthly']);
    assert.deepEqual(fold.marks(), [
      { period: 'hourly', periodStart: Date.UTC(2026, 2, 1, 10), customerId: 'c', changeSeq: 9 },
      { period: 'monthly', periodStart: Date.UTC(2026, 2, 1), customerId: 'c', changeSeq: 9 },
    ]);
    assert.deepEqual(
      fold.marks((p) => p !== 'hourly').map((m) => m.period),
      ['monthly'],
    );
  });

  it('lists the period instances of its marks once each, in (period, start) order', () => {
    const fold = new HourFold();
    const periods = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
    // Over a year edge, several customers and hours, out of order.
    const times = [Date.UTC(2027, 0, 1, 0, 5), Date.UTC(2026, 11, 31, 23, 59), Date.UTC(2026, 11, 31, 22, 1), Date.UTC(2027, 0, 1, 0, 6)];
    times.forEach((ts, i) => {
      fold.add({ customerId: `c${i % 3}`, eventType: 't', ts, seq: i + 1, value: 1 }, periods);
    });
    const expected: Array<{ period: string; periodStart: number }> = [];
    for (const m of fold.marks())
      if (!expected.some((x) => x.period === m.period && x.periodStart === m.periodStart))
        expected.push({ period: m.period, periodStart: m.periodStart });
    assert.deepEqual(fold.markInstances(), expected);
    assert.equal(expected.length, 3 + 2 + 1 + 2 + 2, 'hours 22, 23, 0; two days; one ISO week; two months; two years');
  });
});
