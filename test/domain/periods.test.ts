// Period keys in src/domain/periods: the period list, periodKey and minuteKey on ISO week-year edges and in
// their formats, parsePeriodKey and its round trips, and the same answers under a non-UTC process TZ.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import {
  HOUR_MS,
  PERIODS,
  eventPeriodKeys,
  isPeriod,
  minuteKey,
  parsePeriodKey,
  periodInterval,
  periodKey,
  type Period,
} from '../../src/domain/periods.js';
import { DAY_MS, T, iso, iv } from '../helpers/period-instants.js';

describe('PERIODS / isPeriod', () => {
  it('lists the five periods in order', () => {
    assert.deepEqual([...PERIODS], ['hourly', 'daily', 'weekly', 'monthly', 'yearly']);
    assert.equal(HOUR_MS, 3_600_000);
  });

  it('accepts exactly the listed periods', () => {
    for (const p of PERIODS) assert.equal(isPeriod(p), true, p);
    for (const x of ['Hourly', 'minute', 'week', 'daily ', '', 1, null, undefined, {}, ['daily']]) {
      assert.equal(isPeriod(x), false, JSON.stringify(x));
    }
  });
});

describe('periodKey: ISO week-year edges', () => {
  const cases: Array<[instant: string, week: string, month: string, year: string]> = [
    ['2020-12-31T12:00:00.000Z', '202053', '202012', '2020'],
    ['2021-01-01T00:00:00.000Z', '202053', '202101', '2021'],
    ['2021-01-03T23:59:59.999Z', '202053', '202101', '2021'],
    ['2021-01-04T00:00:00.000Z', '202101', '202101', '2021'],
    ['2026-12-31T12:00:00.000Z', '202653', '202612', '2026'],
    ['2027-01-01T00:30:00.000Z', '202653', '202701', '2027'],
    ['2027-01-03T23:59:59.999Z', '202653', '202701', '2027'],
    ['2027-01-04T00:00:00.000Z', '202701', '202701', '2027'],
    ['2024-12-30T10:00:00.000Z', '202501', '202412', '2024'],
    ['2024-12-29T23:59:59.999Z', '202452', '202412', '2024'],
    ['2019-12-30T00:00:00.000Z', '202001', '201912', '2019'],
    ['2019-12-29T23:59:59.999Z', '201952', '201912', '2019'],
    ['2016-01-03T12:00:00.000Z', '201553', '201601', '2016'],
    ['2016-01-04T00:00:00.000Z', '201601', '201601', '2016'],
    ['2008-12-29T00:00:00.000Z', '200901', '200812', '2008'],
    ['2010-01-03T00:00:00.000Z', '200953', '201001', '2010'],
    ['2024-01-01T00:00:00.000Z', '202401', '202401', '2024'],
    ['2023-01-01T00:00:00.000Z', '202252', '202301', '2023'],
    ['2024-03-04T08:00:00.000Z', '202410', '202403', '2024'],
  ];
  for (const [instant, week, month, year] of cases) {
    it(`${instant} → week ${week}, month ${month}, year ${year}`, () => {
      const t = T(instant);
      assert.equal(periodKey('weekly', t), week);
      assert.equal(periodKey('monthly', t), month);
      assert.equal(periodKey('yearly', t), year);
    });
  }

  it('2020-W53 runs Monday 2020-12-28 to Monday 2021-01-04', () => {
    assert.deepEqual(periodInterval('weekly', T('2020-12-31T12:00:00.000Z')), iv('2020-12-28T00:00:00.000Z', '2021-01-04T00:00:00.000Z'));
    assert.deepEqual(parsePeriodKey('weekly', '202053'), iv('2020-12-28T00:00:00.000Z', '2021-01-04T00:00:00.000Z'));
  });

  it('2027-01-01T00:30Z has the documented full key set', () => {
    assert.deepEqual(eventPeriodKeys(T('2027-01-01T00:30:00.000Z')), {
      minute: '202701010030',
      hour: '2027010100',
      day: '20270101',
      week: '202653',
      month: '202701',
      year: '2027',
    });
  });
});

describe('periodKey / minuteKey formats', () => {
  const cases: Array<[instant: string, minute: string, hour: string, day: string]> = [
    ['2024-02-29T00:00:00.000Z', '202402290000', '2024022900', '20240229'],
    ['2024-02-29T23:59:59.999Z', '202402292359', '2024022923', '20240229'],
    ['2023-03-05T07:09:30.000Z', '202303050709', '2023030507', '20230305'],
    ['1970-01-01T00:00:00.000Z', '197001010000', '1970010100', '19700101'],
    ['1969-12-31T23:59:59.999Z', '196912312359', '1969123123', '19691231'],
    ['1000-06-15T05:05:00.000Z', '100006150505', '1000061505', '10000615'],
    ['9999-12-31T23:59:00.000Z', '999912312359', '9999123123', '99991231'],
  ];
  for (const [instant, minute, hour, day] of cases) {
    it(`${instant} → ${minute}`, () => {
      const t = T(instant);
      assert.equal(minuteKey(t), minute);
      assert.equal(periodKey('hourly', t), hour);
      assert.equal(periodKey('daily', t), day);
      const keys = eventPeriodKeys(t);
      assert.equal(keys.minute, minute);
      assert.equal(keys.hour, hour);
      assert.equal(keys.day, day);
      assert.equal(keys.week, periodKey('weekly', t));
      assert.equal(keys.month, day.slice(0, 6));
      assert.equal(keys.year, day.slice(0, 4));
    });
  }

  it('rejects non-finite instants rather than producing "NaN" keys', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      assert.throws(() => periodKey('daily', bad), RangeError);
      assert.throws(() => periodInterval('hourly', bad), RangeError);
      assert.throws(() => minuteKey(bad), RangeError);
    }
  });
});

describe('parsePeriodKey', () => {
  const valid: Array<[period: Period, key: string, start: string, end: string]> = [
    ['hourly', '2024022923', '2024-02-29T23:00:00.000Z', '2024-03-01T00:00:00.000Z'],
    ['hourly', '2024010100', '2024-01-01T00:00:00.000Z', '2024-01-01T01:00:00.000Z'],
    ['daily', '20240229', '2024-02-29T00:00:00.000Z', '2024-03-01T00:00:00.000Z'],
    ['daily', '20001231', '2000-12-31T00:00:00.000Z', '2001-01-01T00:00:00.000Z'],
    ['weekly', '202053', '2020-12-28T00:00:00.000Z', '2021-01-04T00:00:00.000Z'],
    ['weekly', '202653', '2026-12-28T00:00:00.000Z', '2027-01-04T00:00:00.000Z'],
    ['weekly', '202501', '2024-12-30T00:00:00.000Z', '2025-01-06T00:00:00.000Z'],
    ['weekly', '201553', '2015-12-28T00:00:00.000Z', '2016-01-04T00:00:00.000Z'],
    ['weekly', '202452', '2024-12-23T00:00:00.000Z', '2024-12-30T00:00:00.000Z'],
    ['monthly', '202402', '2024-02-01T00:00:00.000Z', '2024-03-01T00:00:00.000Z'],
    ['monthly', '202412', '2024-12-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'],
    ['yearly', '2024', '2024-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'],
    ['yearly', '1000', '1000-01-01T00:00:00.000Z', '1001-01-01T00:00:00.000Z'],
    ['yearly', '9999', '9999-01-01T00:00:00.000Z', '+010000-01-01T00:00:00.000Z'],
  ];
  for (const [period, key, start, end] of valid) {
    it(`${period} '${key}' names [${start}, ${end})`, () => {
      const interval = parsePeriodKey(period, key);
      assert.deepEqual(interval, { start: Date.parse(start), end: Date.parse(end) });
      assert.ok(interval);
      assert.equal(periodKey(period, interval.start), key);
    });
  }

  const invalid: Array<[period: Period, key: string]> = [
    ['monthly', '2024'],
    ['daily', '2024'],
    ['weekly', '2024'],
    ['hourly', '2024'],
    ['monthly', '20241'],
    ['weekly', '20241'],
    ['monthly', '202413'],
    ['monthly', '202400'],
    ['daily', '20230229'],
    ['daily', '20240230'],
    ['daily', '20240431'],
    ['daily', '20241301'],
    ['daily', '20240100'],
    ['daily', '2024022'],
    ['hourly', '2024010124'],
    ['hourly', '2023022900'],
    ['hourly', '20240101'],
    ['weekly', '202454'],
    ['weekly', '202453'],
    ['weekly', '202153'],
    ['weekly', '202400'],
    ['weekly', '202499'],
    ['weekly', 'abcdef'],
    ['monthly', 'abcdef'],
    ['yearly', 'abcd'],
    ['daily', '2024022900'],
    ['yearly', '0999'],
    ['yearly', '10000'],
    ['yearly', '+2024'],
    ['yearly', ' 2024'],
    ['yearly', '2024 '],
    ['yearly', '2024\n'],
    ['yearly', '２０２４'],
    ['monthly', '2024-1'],
    ['daily', '2024-2-9'],
    ['monthly', '0999.1'],
  ];
  for (const period of PERIODS) invalid.push([period, '']);
  for (const [period, key] of invalid) {
    it(`${period} rejects ${JSON.stringify(key)}`, () => {
      assert.equal(parsePeriodKey(period, key), null);
    });
  }

  it('accepts week 53 exactly in the years that have one (2015–2032)', () => {
    const longYears = new Set([2015, 2020, 2026, 2032]);
    for (let year = 2015; year <= 2032; year++) {
      for (let week = 1; week <= 53; week++) {
        const key = `${year}${String(week).padStart(2, '0')}`;
        const interval = parsePeriodKey('weekly', key);
        if (week <= 52 || longYears.has(year)) {
          assert.ok(interval, key);
          assert.equal(interval.end - interval.start, 7 * DAY_MS, key);
          assert.equal(periodKey('weekly', interval.start), key);
          assert.equal(periodKey('weekly', interval.end - 1), key);
        } else {
          assert.equal(interval, null, key);
        }
      }
    }
  });

  it('round-trips periodKey → parsePeriodKey over many deterministic pseudo-random instants', () => {
    // Small LCG so failures are reproducible without extra dependencies.
    let seed = 0x2f6b3c1d;
    const next = (): number => {
      seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
      return seed / 2 ** 32;
    };
    const lo = T('1001-01-01T00:00:00.000Z');
    const hi = T('9998-12-31T23:59:59.999Z');
    let checked = 0;
    for (let i = 0; i < 4000; i++) {
      const t = lo + Math.floor(next() * (hi - lo));
      for (const period of PERIODS) {
        const key = periodKey(period, t);
        const interval = periodInterval(period, t);
        assert.deepEqual(parsePeriodKey(period, key), interval, `${period} ${iso(t)} ${key}`);
        assert.ok(interval.start <= t && t < interval.end, `${period} ${iso(t)}`);
        checked++;
      }
    }
    assert.equal(checked, 4000 * PERIODS.length);
  });

  it('round-trips at every hour across two year-ends with 53-week ISO years', () => {
    for (const [from, to] of [
      ['2020-12-20T00:00:00.000Z', '2021-01-15T00:00:00.000Z'],
      ['2026-12-20T00:00:00.000Z', '2027-01-15T00:00:00.000Z'],
    ] as const) {
      for (let t = T(from); t < T(to); t += HOUR_MS) {
        for (const probe of [t, t + HOUR_MS - 1]) {
          for (const period of PERIODS) {
            assert.deepEqual(parsePeriodKey(period, periodKey(period, probe)), periodInterval(period, probe), `${period} ${iso(probe)}`);
          }
        }
      }
    }
  });
});

describe('TZ independence', () => {
  const probes = [
    '2027-01-01T00:30:00.000Z',
    '2024-12-30T03:00:00.000Z',
    '2024-02-29T23:59:59.999Z',
    '2021-01-04T00:00:00.000Z',
    '2024-03-10T07:30:00.000Z',
    '2024-11-03T05:30:00.000Z',
  ].map(T);

  const snapshot = (mod: {
    eventPeriodKeys: typeof eventPeriodKeys;
    periodInterval: typeof periodInterval;
    parsePeriodKey: typeof parsePeriodKey;
    PERIODS: typeof PERIODS;
  }) =>
    probes.map((t) => ({
      keys: mod.eventPeriodKeys(t),
      intervals: mod.PERIODS.map((p) => mod.periodInterval(p, t)),
      parsed: mod.PERIODS.map((p) =>
        mod.parsePeriodKey(
          p,
          mod.eventPeriodKeys(t)[({ hourly: 'hour', daily: 'day', weekly: 'week', monthly: 'month', yearly: 'year' } as const)[p]],
        ),
      ),
    }));

  for (const tz of ['America/New_York', 'Asia/Kolkata']) {
    it(`a child process with TZ=${tz} computes the same keys and intervals`, () => {
      const here = path.dirname(fileURLToPath(import.meta.url));
      const repoRoot = path.resolve(here, '../..');
      const moduleUrl = pathToFileURL(path.join(repoRoot, 'src/domain/periods.ts')).href;
      const code = `
        import(${JSON.stringify(moduleUrl)}).then((mod) => {
          const probes = ${JSON.stringify(probes)};
          const keyField = { hourly: 'hour', daily: 'day', weekly: 'week', monthly: 'month', yearly: 'year' };
          const out = probes.map((t) => ({
            keys: mod.eventPeriodKeys(t),
            intervals: mod.PERIODS.map((p) => mod.periodInterval(p, t)),
            parsed: mod.PERIODS.map((p) => mod.parsePeriodKey(p, mod.eventPeriodKeys(t)[keyField[p]])),
          }));
          process.stdout.write(JSON.stringify({ offset: new Date(0).getTimezoneOffset(), out }));
        }, (err) => { console.error(err); process.exit(1); });
      `;
      const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
        cwd: repoRoot,
        env: { ...process.env, TZ: tz },
        encoding: 'utf8',
      });
      assert.equal(child.status, 0, `child failed: ${child.stderr}`);
      const result = JSON.parse(child.stdout) as { offset: number; out: unknown };
      // Proves the child really ran in a non-UTC zone, otherwise the comparison below would prove nothing.
      assert.equal(result.offset, tz === 'America/New_York' ? 300 : -330);
      assert.deepEqual(result.out, snapshot({ eventPeriodKeys, periodInterval, parsePeriodKey, PERIODS }));
      // And the in-process answer is the known UTC answer, not merely self-consistent.
      assert.deepEqual((result.out as Array<{ keys: unknown }>)[0]?.keys, {
        minute: '202701010030',
        hour: '2027010100',
        day: '20270101',
        week: '202653',
        month: '202701',
        year: '2027',
      });
    });
  }
});
