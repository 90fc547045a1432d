// Period intervals in src/domain/periods: periodInterval on calendar edges, the first and last millisecond of
// each period, displayEnd, hoursIn and periodsContaining.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  HOUR_MS,
  PERIODS,
  displayEnd,
  hoursIn,
  parsePeriodKey,
  periodInterval,
  periodKey,
  periodsContaining,
  type Period,
} from '../../src/domain/periods.js';
import { DAY_MS, T, iso, iv } from '../helpers/period-instants.js';

describe('periodInterval: calendar edges', () => {
  const cases: Array<[period: Period, instant: string, start: string, end: string]> = [
    ['hourly', '2024-02-29T23:30:00.000Z', '2024-02-29T23:00:00.000Z', '2024-03-01T00:00:00.000Z'],
    ['daily', '2024-02-29T12:00:00.000Z', '2024-02-29T00:00:00.000Z', '2024-03-01T00:00:00.000Z'],
    ['daily', '2023-02-28T23:59:59.999Z', '2023-02-28T00:00:00.000Z', '2023-03-01T00:00:00.000Z'],
    ['daily', '2024-01-31T18:00:00.000Z', '2024-01-31T00:00:00.000Z', '2024-02-01T00:00:00.000Z'],
    ['daily', '2024-12-31T23:00:00.000Z', '2024-12-31T00:00:00.000Z', '2025-01-01T00:00:00.000Z'],
    ['weekly', '2024-12-31T10:00:00.000Z', '2024-12-30T00:00:00.000Z', '2025-01-06T00:00:00.000Z'],
    ['weekly', '2024-03-03T23:59:59.999Z', '2024-02-26T00:00:00.000Z', '2024-03-04T00:00:00.000Z'],
    ['weekly', '2024-03-04T00:00:00.000Z', '2024-03-04T00:00:00.000Z', '2024-03-11T00:00:00.000Z'],
    ['monthly', '2024-02-10T00:00:00.000Z', '2024-02-01T00:00:00.000Z', '2024-03-01T00:00:00.000Z'],
    ['monthly', '2023-02-10T00:00:00.000Z', '2023-02-01T00:00:00.000Z', '2023-03-01T00:00:00.000Z'],
    ['monthly', '2024-01-31T23:59:59.999Z', '2024-01-01T00:00:00.000Z', '2024-02-01T00:00:00.000Z'],
    ['monthly', '2024-12-31T23:59:59.999Z', '2024-12-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'],
    ['monthly', '2024-04-30T12:00:00.000Z', '2024-04-01T00:00:00.000Z', '2024-05-01T00:00:00.000Z'],
    ['yearly', '2024-12-31T23:59:59.999Z', '2024-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'],
    ['yearly', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'],
    ['yearly', '1969-07-20T20:17:00.000Z', '1969-01-01T00:00:00.000Z', '1970-01-01T00:00:00.000Z'],
    ['hourly', '1969-12-31T23:59:59.999Z', '1969-12-31T23:00:00.000Z', '1970-01-01T00:00:00.000Z'],
  ];
  for (const [period, instant, start, end] of cases) {
    it(`${period} of ${instant} is [${start}, ${end})`, () => {
      assert.deepEqual(periodInterval(period, T(instant)), iv(start, end));
    });
  }

  const lengths: Array<[period: Period, instant: string, days: number]> = [
    ['monthly', '2024-02-15T00:00:00.000Z', 29],
    ['monthly', '2023-02-15T00:00:00.000Z', 28],
    ['monthly', '2000-02-15T00:00:00.000Z', 29],
    ['monthly', '1900-02-15T00:00:00.000Z', 28],
    ['monthly', '2024-01-15T00:00:00.000Z', 31],
    ['monthly', '2024-04-15T00:00:00.000Z', 30],
    ['yearly', '2024-06-01T00:00:00.000Z', 366],
    ['yearly', '2023-06-01T00:00:00.000Z', 365],
    ['weekly', '2024-06-01T00:00:00.000Z', 7],
    ['daily', '2024-06-01T00:00:00.000Z', 1],
  ];
  for (const [period, instant, days] of lengths) {
    it(`${period} containing ${instant} is ${days} days long`, () => {
      const { start, end } = periodInterval(period, T(instant));
      assert.equal(end - start, days * DAY_MS);
    });
  }

  it('weekly intervals always start on a Monday at 00:00 UTC', () => {
    for (let t = T('2019-12-20T05:00:00.000Z'); t < T('2021-02-01T00:00:00.000Z'); t += 13 * HOUR_MS) {
      const { start } = periodInterval('weekly', t);
      const d = new Date(start);
      assert.equal(d.getUTCDay(), 1, iso(t));
      assert.equal(start % DAY_MS, 0, iso(t));
    }
  });
});

describe('first and last millisecond of each period', () => {
  const anchors = [
    '2024-02-29T13:45:12.345Z',
    '2023-12-31T23:59:59.999Z',
    '2024-01-01T00:00:00.000Z',
    '2020-12-31T23:30:00.000Z',
    '2027-01-01T00:30:00.000Z',
    '2024-12-30T10:00:00.000Z',
    '1969-12-31T23:59:59.999Z',
  ];
  for (const period of PERIODS) {
    for (const anchor of anchors) {
      it(`${period} around ${anchor}`, () => {
        const interval = periodInterval(period, T(anchor));
        const key = periodKey(period, T(anchor));
        assert.ok(interval.start <= T(anchor) && T(anchor) < interval.end);
        // First and last millisecond are inside and share the key.
        assert.deepEqual(periodInterval(period, interval.start), interval);
        assert.deepEqual(periodInterval(period, interval.end - 1), interval);
        assert.equal(periodKey(period, interval.start), key);
        assert.equal(periodKey(period, interval.end - 1), key);
        // The end belongs to the next period, which starts exactly there; start - 1 to the previous one.
        assert.equal(periodInterval(period, interval.end).start, interval.end);
        assert.notEqual(periodKey(period, interval.end), key);
        assert.equal(periodInterval(period, interval.start - 1).end, interval.start);
        assert.notEqual(periodKey(period, interval.start - 1), key);
      });
    }
  }
});

describe('displayEnd', () => {
  const cases: Array<[period: Period, instant: string, shown: string]> = [
    ['daily', '2024-02-29T10:00:00.000Z', '2024-02-29T23:59:59.999Z'],
    ['hourly', '2024-02-29T10:20:00.000Z', '2024-02-29T10:59:59.999Z'],
    ['weekly', '2027-01-01T00:30:00.000Z', '2027-01-03T23:59:59.999Z'],
    ['monthly', '2024-02-01T00:00:00.000Z', '2024-02-29T23:59:59.999Z'],
    ['monthly', '2023-02-01T00:00:00.000Z', '2023-02-28T23:59:59.999Z'],
    ['yearly', '2024-07-01T00:00:00.000Z', '2024-12-31T23:59:59.999Z'],
  ];
  for (const [period, instant, shown] of cases) {
    it(`${period} of ${instant} displays end ${shown}`, () => {
      const interval = periodInterval(period, T(instant));
      assert.equal(displayEnd(interval), shown);
      assert.equal(displayEnd(interval), new Date(interval.end - 1).toISOString());
    });
  }
});

describe('hoursIn', () => {
  const cases: Array<[label: string, period: Period, instant: string, count: number]> = [
    ['a day', 'daily', '2024-03-10T12:00:00.000Z', 24],
    ['an hour', 'hourly', '2024-03-10T12:34:00.000Z', 1],
    ['an ISO week', 'weekly', '2024-12-31T00:00:00.000Z', 168],
    ['leap-year February', 'monthly', '2024-02-10T00:00:00.000Z', 696],
    ['common-year February', 'monthly', '2023-02-10T00:00:00.000Z', 672],
    ['a 31-day month', 'monthly', '2024-03-31T00:00:00.000Z', 744],
    ['a leap year', 'yearly', '2024-05-05T00:00:00.000Z', 8784],
    ['a common year', 'yearly', '2023-05-05T00:00:00.000Z', 8760],
  ];
  for (const [label, period, instant, count] of cases) {
    it(`${label} has ${count} hours, ascending and contiguous`, () => {
      const interval = periodInterval(period, T(instant));
      const hours = hoursIn(interval);
      assert.equal(hours.length, count);
      assert.equal(hours[0], interval.start);
      assert.equal(hours.at(-1), interval.end - HOUR_MS);
      for (let i = 1; i < hours.length; i++) assert.equal(hours[i]! - hours[i - 1]!, HOUR_MS);
    });
  }

  it('returns [] for an empty interval', () => {
    const h = T('2024-01-01T05:00:00.000Z');
    assert.deepEqual(hoursIn({ start: h, end: h }), []);
  });

  it('lists exact UTC hour starts', () => {
    assert.deepEqual(hoursIn(iv('2024-12-31T22:00:00.000Z', '2025-01-01T01:00:00.000Z')).map(iso), [
      '2024-12-31T22:00:00.000Z',
      '2024-12-31T23:00:00.000Z',
      '2025-01-01T00:00:00.000Z',
    ]);
  });

  it('throws on misaligned or inverted intervals instead of inventing hour starts', () => {
    const h = T('2024-01-01T05:00:00.000Z');
    assert.throws(() => hoursIn({ start: h + 1, end: h + HOUR_MS }), RangeError);
    assert.throws(() => hoursIn({ start: h, end: h + 30 * 60_000 }), RangeError);
    assert.throws(() => hoursIn({ start: h + HOUR_MS, end: h }), RangeError);
  });
});

describe('periodsContaining', () => {
  it('returns one entry per period, in order, each containing the hour', () => {
    const h = T('2027-01-01T00:00:00.000Z');
    const got = periodsContaining(PERIODS, h);
    assert.deepEqual(got, [
      { period: 'hourly', key: '2027010100', interval: iv('2027-01-01T00:00:00.000Z', '2027-01-01T01:00:00.000Z') },
      { period: 'daily', key: '20270101', interval: iv('2027-01-01T00:00:00.000Z', '2027-01-02T00:00:00.000Z') },
      { period: 'weekly', key: '202653', interval: iv('2026-12-28T00:00:00.000Z', '2027-01-04T00:00:00.000Z') },
      { period: 'monthly', key: '202701', interval: iv('2027-01-01T00:00:00.000Z', '2027-02-01T00:00:00.000Z') },
      { period: 'yearly', key: '2027', interval: iv('2027-01-01T00:00:00.000Z', '2028-01-01T00:00:00.000Z') },
    ]);
  });

  it('keys and intervals agree with parsePeriodKey for every hour of a leap February', () => {
    for (const h of hoursIn(periodInterval('monthly', T('2024-02-01T00:00:00.000Z')))) {
      for (const entry of periodsContaining(PERIODS, h)) {
        assert.ok(entry.interval.start <= h && h < entry.interval.end);
        assert.deepEqual(parsePeriodKey(entry.period, entry.key), entry.interval);
      }
    }
  });

  it('honours the subset and order asked for, and collapses duplicates', () => {
    const h = T('2024-12-30T10:00:00.000Z');
    assert.deepEqual(
      periodsContaining(['yearly', 'weekly'], h).map((e) => [e.period, e.key]),
      [
        ['yearly', '2024'],
        ['weekly', '202501'],
      ],
    );
    assert.deepEqual(
      periodsContaining(['daily', 'daily', 'monthly'], h).map((e) => e.key),
      ['20241230', '202412'],
    );
    assert.deepEqual(periodsContaining([], h), []);
  });
});
