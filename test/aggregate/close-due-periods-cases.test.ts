// Provisional aggregations (POST /aggregations/trigger), the reference's defects that must not come back, first/last
// ties on event time, and every operator on one day.
// store-contract: sqlite, postgres
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { currentUsage } from '../../src/aggregate/current-usage.js';
import { triggerAggregation } from '../../src/aggregate/trigger.js';
import type { TestApp } from '../helpers/app.js';
import { T, OPS, type In, withApp, post, aggs, onlyAgg, ev, toOracle, WITH_YEARLY } from '../helpers/close-due-periods.js';
import { docKey, oracleAggregations } from '../helpers/oracle.js';

describe('provisional aggregations (POST /aggregations/trigger)', () => {
  it('writes real-time numbers for the open day, updates them on a second trigger, and never blocks the close', async () => {
    await withApp({ now: '2026-01-12T10:30:00Z' }, async (t) => {
      await post(t, [
        ev('api.calls', 'c', 10, '2026-01-12T08:00:00Z'),
        ev('api.calls', 'c', 2.5, '2026-01-12T09:15:00Z'),
        ev('response.time.ms', 'c', 100, '2026-01-12T09:15:00Z'),
        ev('response.time.ms', 'c', 51, '2026-01-12T10:20:00Z'),
        ev('test.min', 'c', -4, '2026-01-12T10:20:00Z'),
      ]);
      const r1 = await t.app.inject({ method: 'POST', url: '/aggregations/trigger', headers: t.headers });
      assert.equal(r1.statusCode, 202, r1.body);
      // Hours 08 and 09 are due (closed: 2), hour 10, the day, week and month are open (provisional: 4).
      // Events scanned: hour 08 (1) + hour 09 (2) + hour 10 (2) + day, week, month (5 each) = 20.
      assert.deepEqual(r1.json(), {
        message: 'Aggregation jobs queued for processing',
        jobsCreated: 6,
        jobsUpdated: 0,
        jobsQueued: 6,
        customersFound: 1,
        periodsConfigured: 4,
        eventsScanned: 20,
        finalized: 2,
        provisional: 4,
      });

      const day1 = await onlyAgg(t, { customerId: 'c', period: 'daily' });
      assert.equal(day1._id, 'c_daily_20260112');
      assert.equal(day1.final, false);
      assert.equal(day1.revision, 0);
      assert.equal(day1.timestamp, '2026-01-12T10:30:00.000Z');
      assert.deepEqual(day1.events, { 'api.calls': 12.5, 'response.time.ms': 75.5, 'test.min': -4 });
      assert.deepEqual(day1.eventCounts, { 'api.calls': 2, 'response.time.ms': 2, 'test.min': 1 });
      assert.deepEqual(await t.store.listMessages(day1.id), [], 'a provisional document has no webhook message');
      const hour9 = await onlyAgg(t, { customerId: 'c', period: 'hourly', periodKey: '2026011209' });
      assert.deepEqual([hour9.final, hour9.revision], [true, 1]);
      const hour10 = await onlyAgg(t, { customerId: 'c', period: 'hourly', periodKey: '2026011210' });
      assert.deepEqual([hour10.final, hour10.revision], [false, 0]);

      t.clock.set('2026-01-12T10:45:00Z');
      await post(t, [ev('api.calls', 'c', 1, '2026-01-12T10:40:00Z'), ev('test.min', 'c', -9, '2026-01-12T10:41:00Z')]);
      const r2 = await triggerAggregation(t.ctx);
      assert.equal(r2.finalized, 0);
      assert.equal(r2.jobsCreated, 0);
      assert.equal(r2.jobsUpdated, 4);
      assert.equal(r2.provisional, 4);
      const day2 = await onlyAgg(t, { customerId: 'c', period: 'daily' });
      assert.equal(day2.id, day1.id);
      assert.equal(day2.final, false);
      assert.equal(day2.revision, 0);
      assert.equal(day2.timestamp, '2026-01-12T10:45:00.000Z');
      assert.deepEqual(day2.events, { 'api.calls': 13.5, 'response.time.ms': 75.5, 'test.min': -9 });
      assert.deepEqual(day2.eventCounts, { 'api.calls': 3, 'response.time.ms': 2, 'test.min': 2 });

      // The day comes due: the provisional document is replaced by the final one, revision 1.
      t.clock.set('2026-01-13T00:05:00Z');
      const closed = await closeDuePeriods(t.ctx);
      assert.equal(closed.finalized, 2); // hour 10 and the day
      const day3 = await onlyAgg(t, { customerId: 'c', period: 'daily' });
      assert.equal(day3.id, day1.id);
      assert.equal(day3.final, true);
      assert.equal(day3.revision, 1);
      assert.deepEqual(day3.events, day2.events);
      assert.deepEqual(day3.eventCounts, day2.eventCounts);
      const msgs = await t.store.listMessages(day3.id);
      assert.equal(msgs.length, 1);
      assert.equal(msgs[0]!.type, 'aggregation.completed');
      const hour10Final = await onlyAgg(t, { customerId: 'c', period: 'hourly', periodKey: '2026011210' });
      assert.deepEqual(
        [hour10Final.final, hour10Final.revision, hour10Final.eventCounts],
        [true, 1, { 'api.calls': 1, 'response.time.ms': 1, 'test.min': 2 }],
      );
      // Week and month remain provisional.
      assert.equal((await onlyAgg(t, { customerId: 'c', period: 'monthly' })).final, false);
    });
  });

  it('a trigger inside the grace window keeps the just-ended day provisional; the close still finalizes it', async () => {
    await withApp({ now: '2026-01-12T23:50:00Z' }, async (t) => {
      await post(t, [ev('api.calls', 'c', 1, '2026-01-12T23:50:00Z')]);
      t.clock.set('2026-01-13T00:02:00Z');
      const r = await triggerAggregation(t.ctx);
      assert.equal(r.finalized, 0);
      const day = await onlyAgg(t, { customerId: 'c', period: 'daily' });
      assert.deepEqual([day.periodKey, day.final, day.revision], ['20260112', false, 0]);
      t.clock.set('2026-01-13T00:05:00Z');
      const r2 = await triggerAggregation(t.ctx);
      assert.equal(r2.finalized, 2); // hour 23 and the day
      const closed = await onlyAgg(t, { customerId: 'c', period: 'daily' });
      assert.deepEqual([closed.final, closed.revision], [true, 1]);
      assert.equal((await t.store.listMessages(closed.id)).length, 1);
    });
  });

  it('with no events answers 200 "No events to aggregate"', async () => {
    await withApp({ now: '2026-01-12T10:30:00Z' }, async (t) => {
      const r = await t.app.inject({ method: 'POST', url: '/aggregations/trigger', headers: t.headers });
      assert.equal(r.statusCode, 200);
      const body = r.json() as Record<string, unknown>;
      assert.equal(body.message, 'No events to aggregate');
      assert.equal(body.jobsQueued, 0);
      assert.deepEqual(await aggs(t, {}), []);
    });
  });
});

describe('reference defects that must not come back', () => {
  it('on a Sunday the current ISO week is not finalized (not even by a trigger)', async () => {
    await withApp({ now: '2026-01-18T23:00:00Z' }, async (t) => {
      await post(t, [ev('api.calls', 'c', 1, '2026-01-12T09:00:00Z'), ev('api.calls', 'c', 2, '2026-01-18T22:00:00Z')]);
      await closeDuePeriods(t.ctx);
      const trig = await triggerAggregation(t.ctx);
      assert.ok(trig.provisional > 0);
      const week = await onlyAgg(t, { customerId: 'c', period: 'weekly' });
      assert.deepEqual([week.periodKey, week.final, week.revision], ['202603', false, 0]);
      // Sunday 23:59:59.999 plus the grace period minus 1 ms: still open.
      t.clock.set(T('2026-01-19T00:05:00Z') - 1);
      await closeDuePeriods(t.ctx);
      assert.equal((await onlyAgg(t, { customerId: 'c', period: 'weekly' })).final, false);
      t.clock.set('2026-01-19T00:05:00Z');
      await closeDuePeriods(t.ctx);
      const closed = await onlyAgg(t, { customerId: 'c', period: 'weekly' });
      assert.deepEqual([closed.final, closed.revision, closed.events], [true, 1, { 'api.calls': 3 }]);
      assert.equal(closed.periodStart, '2026-01-12T00:00:00.000Z');
      assert.equal(closed.periodEnd, '2026-01-18T23:59:59.999Z');
    });
  });

  it('yearly works: a year is finalized with key YYYY and the other periods still close', async () => {
    await withApp({ now: '2025-12-31T23:59:59.999Z', config: WITH_YEARLY }, async (t) => {
      await post(t, [ev('test.last', 'c', 1, '2025-12-01T00:00:00Z'), ev('test.last', 'c', 2, '2025-12-31T23:59:59.999Z')]);
      t.clock.set('2026-01-01T00:05:00Z');
      const r = await closeDuePeriods(t.ctx);
      // hours: 2, days: 2, week 202549 (202601 runs to Sunday 2026-01-04), month 202512, year 2025.
      assert.equal(r.finalized, 2 + 2 + 1 + 1 + 1);
      const year = await onlyAgg(t, { customerId: 'c', period: 'yearly' });
      assert.deepEqual(
        [year._id, year.periodKey, year.periodStart, year.periodEnd, year.final, year.revision],
        ['c_yearly_2025', '2025', '2025-01-01T00:00:00.000Z', '2025-12-31T23:59:59.999Z', true, 1],
      );
      assert.deepEqual(year.events, { 'test.last': 2 });
      assert.deepEqual(year.eventCounts, { 'test.last': 2 });
      const msgs = await t.store.listMessages(year.id);
      assert.equal(msgs.length, 1);
      assert.equal(JSON.parse(msgs[0]!.body).data.periodKey, '2025');
      // Week 202601 (Mon 2025-12-29 … Sun 2026-01-04) is still open, so it has no final document.
      assert.deepEqual(await aggs(t, { customerId: 'c', period: 'weekly', periodKey: '202601' }), []);
      assert.equal((await onlyAgg(t, { customerId: 'c', period: 'weekly', periodKey: '202549' })).final, true);
    });
  });

  it('a weekly period spanning a month boundary holds both months; each month holds only its own', async () => {
    await withApp({ now: '2026-02-01T12:00:00Z' }, async (t) => {
      await post(t, [ev('api.calls', 'c', 3, '2026-01-30T10:00:00Z'), ev('api.calls', 'c', 4, '2026-02-01T11:00:00Z')]);
      t.clock.set(T('2026-02-02T00:05:00Z') - 1);
      await closeDuePeriods(t.ctx);
      const jan = await onlyAgg(t, { customerId: 'c', period: 'monthly', periodKey: '202601' });
      assert.deepEqual([jan.final, jan.events], [true, { 'api.calls': 3 }]);
      assert.deepEqual(await aggs(t, { customerId: 'c', period: 'weekly' }), []);

      t.clock.set('2026-02-02T00:05:00Z');
      await closeDuePeriods(t.ctx);
      const week = await onlyAgg(t, { customerId: 'c', period: 'weekly' });
      assert.deepEqual(
        [week.periodKey, week.periodStart, week.periodEnd, week.final, week.events, week.eventCounts],
        ['202605', '2026-01-26T00:00:00.000Z', '2026-02-01T23:59:59.999Z', true, { 'api.calls': 7 }, { 'api.calls': 2 }],
      );
      assert.deepEqual(await aggs(t, { customerId: 'c', period: 'monthly', periodKey: '202602' }), []);
      t.clock.set('2026-03-01T00:05:00Z');
      await closeDuePeriods(t.ctx);
      const feb = await onlyAgg(t, { customerId: 'c', period: 'monthly', periodKey: '202602' });
      assert.deepEqual([feb.final, feb.events], [true, { 'api.calls': 4 }]);
    });
  });

  it('the ISO week spanning new year has the week-year key; each calendar year gets its own events', async () => {
    await withApp({ now: '2027-01-02T12:00:00Z', config: WITH_YEARLY }, async (t) => {
      await post(t, [ev('api.calls', 'c', 1, '2026-12-31T12:00:00Z'), ev('api.calls', 'c', 2, '2027-01-01T00:30:00Z')]);
      t.clock.set('2027-01-04T00:05:00Z');
      await closeDuePeriods(t.ctx);
      const week = await onlyAgg(t, { customerId: 'c', period: 'weekly' });
      assert.deepEqual([week.periodKey, week.periodStart, week.events], ['202653', '2026-12-28T00:00:00.000Z', { 'api.calls': 3 }]);
      const y2026 = await onlyAgg(t, { customerId: 'c', period: 'yearly', periodKey: '2026' });
      assert.deepEqual([y2026.final, y2026.events], [true, { 'api.calls': 1 }]);
      assert.deepEqual(await aggs(t, { customerId: 'c', period: 'yearly', periodKey: '2027' }), []);
    });
  });
});

describe('first/last ties on event time', () => {
  it('first is the earliest arrival and last the latest arrival among equal timestamps', async () => {
    await withApp({ now: '2026-01-12T10:30:00Z' }, async (t) => {
      const at = '2026-01-12T10:00:00.000Z';
      // Same batch: array order is arrival order.
      await post(t, [ev('test.first', 'c', 1, at), ev('test.first', 'c', 2, at), ev('test.last', 'c', 1, at), ev('test.last', 'c', 2, at)]);
      // A later batch with the same time: arrived later, so it can only become "last".
      await post(t, [ev('test.first', 'c', 3, at), ev('test.last', 'c', 3, at)]);
      // Single-event route, same time, arrives last of all.
      const one = await t.app.inject({
        method: 'POST',
        url: '/usage/test.last',
        headers: t.headers,
        payload: { customerId: 'c', value: 4, timestamp: at },
      });
      assert.equal(one.statusCode, 201, one.body);
      // An event with an earlier time that arrives last is still "first".
      await post(t, [ev('test.first', 'c', 0.5, '2026-01-12T09:59:59.999Z')]);
      // Different hour, same day: the daily merge of hour states must keep the same answer.
      t.clock.set('2026-01-13T00:05:00Z');
      await closeDuePeriods(t.ctx);
      const hour10 = await onlyAgg(t, { customerId: 'c', period: 'hourly', periodKey: '2026011210' });
      assert.deepEqual(hour10.events, { 'test.first': 1, 'test.last': 4 });
      assert.deepEqual(hour10.eventCounts, { 'test.first': 3, 'test.last': 4 });
      const day = await onlyAgg(t, { customerId: 'c', period: 'daily' });
      assert.deepEqual(day.events, { 'test.first': 0.5, 'test.last': 4 });
      assert.deepEqual(day.eventCounts, { 'test.first': 4, 'test.last': 4 });
    });
  });

  const tiesTitle =
    'ties survive the merge of hour states: across batches and hours, the earlier arrival is first and the later arrival is last';
  it(tiesTitle, async () => {
    await withApp({ now: '2026-01-12T10:30:00Z' }, async (t) => {
      // Two events at the very same instant in different batches, then a lone event in an earlier hour.
      await post(t, [ev('test.last', 'c', 10, '2026-01-12T10:00:00Z'), ev('test.first', 'c', 10, '2026-01-12T10:00:00Z')]);
      await post(t, [ev('test.first', 'c', 20, '2026-01-12T09:00:00Z'), ev('test.last', 'c', 20, '2026-01-12T09:00:00Z')]);
      await post(t, [ev('test.last', 'c', 30, '2026-01-12T10:00:00Z'), ev('test.first', 'c', 30, '2026-01-12T09:00:00Z')]);
      t.clock.set('2026-01-13T00:05:00Z');
      await closeDuePeriods(t.ctx);
      const day = await onlyAgg(t, { customerId: 'c', period: 'daily' });
      assert.deepEqual(day.events, { 'test.first': 20, 'test.last': 30 });
    });
  });
});

describe('every operator on one day', () => {
  it('matches the brute-force oracle for negatives, zero and fractions', async () => {
    await withApp({ now: '2026-01-12T23:00:00Z' }, async (t) => {
      const values = [0, -1.25, 3.5, 1e-3, -0.1, 7, 0.3];
      // Multiples computed in binary floating point would carry more than 12 places (0.3 * 3 is
      // 0.8999999999999999): send each as the decimal it denotes instead.
      const events: In[] = [];
      Object.keys(OPS).forEach((type, ti) => {
        values.forEach((v, vi) => {
          events.push(ev(type, 'c', Number((v * (ti + 1)).toPrecision(12)), `2026-01-12T${String(vi * 3).padStart(2, '0')}:0${ti}:00Z`));
        });
      });
      await post(t, events);
      t.clock.set('2026-01-13T00:05:00Z');
      await closeDuePeriods(t.ctx);
      const oracle = oracleAggregations(toOracle(events), ['daily'], OPS);
      const o = oracle.get(docKey('c', 'daily', '20260112'))!;
      const day = await onlyAgg(t, { customerId: 'c', period: 'daily' });
      assert.deepEqual(day.eventCounts, o.eventCounts);
      // Exact decimals: every operator matches the oracle to the digit, sums and averages included.
      assert.deepEqual(day.eventsDecimal, o.eventsDecimal);
      assert.deepEqual(day.events, o.events);
      assert.equal(day.events['test.min'], -1.25 * 4);
      assert.equal(day.events['storage.bytes'], 7 * 2);
      assert.equal(day.events['test.count'], 7);
      assert.equal(day.events['test.first'], 0);
      assert.equal(day.events['test.last'], 2.1);
      assert.equal(day.eventsDecimal['test.last'], '2.1');
    });
  });
});

describe('GET /customers/:id/usage', () => {
  const usage = async (t: TestApp, customerId: string, at: string) => {
    const r = await t.app.inject({
      method: 'GET',
      url: `/customers/${customerId}/usage`,
      query: { period: 'monthly', at },
      headers: t.headers,
    });
    assert.equal(r.statusCode, 200, r.body);
    return r.json() as {
      customerId: string;
      period: string;
      periodKey: string;
      periodStart: string;
      periodEnd: string;
      final: boolean;
      events: Record<string, number>;
      eventCounts: Record<string, number>;
    };
  };

  it('is real time, equals the final aggregation after the close, and turns non-final on late data until closed again', async () => {
    await withApp({ now: '2026-01-20T12:00:00Z' }, async (t) => {
      await post(t, [
        ev('api.calls', 'c', 2, '2026-01-03T00:00:00Z'),
        ev('api.calls', 'c', 3.25, '2026-01-20T11:00:00Z'),
        ev('response.time.ms', 'c', 10, '2026-01-10T11:00:00Z'),
        ev('response.time.ms', 'c', 15, '2026-01-11T11:00:00Z'),
      ]);
      const open = await usage(t, 'c', '2026-01-15T00:00:00Z');
      assert.deepEqual(open, {
        customerId: 'c',
        period: 'monthly',
        periodKey: '202601',
        periodStart: '2026-01-01T00:00:00.000Z',
        periodEnd: '2026-01-31T23:59:59.999Z',
        final: false,
        events: { 'api.calls': 5.25, 'response.time.ms': 12.5 },
        eventsDecimal: { 'api.calls': '5.25', 'response.time.ms': '12.5' },
        eventCounts: { 'api.calls': 2, 'response.time.ms': 2 },
      });

      t.clock.set('2026-02-01T00:05:00Z');
      await closeDuePeriods(t.ctx);
      const agg = await onlyAgg(t, { customerId: 'c', period: 'monthly' });
      const closed = await usage(t, 'c', '2026-01-31T23:59:59.999Z');
      assert.equal(closed.final, true);
      assert.deepEqual(closed.events, agg.events);
      assert.deepEqual(closed.eventCounts, agg.eventCounts);
      // The function the route calls agrees.
      const direct = await currentUsage(t.ctx, 'c', 'monthly', T('2026-01-01T00:00:00Z'));
      assert.deepEqual(direct, closed);

      await post(t, [ev('api.calls', 'c', 1, '2026-01-31T00:00:00Z')]);
      const late = await usage(t, 'c', '2026-01-15T00:00:00Z');
      assert.equal(late.final, false);
      assert.deepEqual(late.events, { 'api.calls': 6.25, 'response.time.ms': 12.5 });
      // The stored final document is unchanged until the next close.
      assert.deepEqual((await onlyAgg(t, { customerId: 'c', period: 'monthly' })).events, agg.events);

      await closeDuePeriods(t.ctx);
      const again = await usage(t, 'c', '2026-01-15T00:00:00Z');
      assert.equal(again.final, true);
      const rev2 = await onlyAgg(t, { customerId: 'c', period: 'monthly' });
      assert.equal(rev2.revision, 2);
      assert.deepEqual(again.events, rev2.events);
      assert.deepEqual(again.eventCounts, rev2.eventCounts);
    });
  });

  it('an unknown customer gets 200 with empty numbers, not 404', async () => {
    await withApp({ now: '2026-01-20T12:00:00Z' }, async (t) => {
      await post(t, [ev('api.calls', 'someone_else', 1, '2026-01-20T11:00:00Z')]);
      const u = await usage(t, 'nobody', '2026-01-20T00:00:00Z');
      assert.deepEqual(u, {
        customerId: 'nobody',
        period: 'monthly',
        periodKey: '202601',
        periodStart: '2026-01-01T00:00:00.000Z',
        periodEnd: '2026-01-31T23:59:59.999Z',
        final: false,
        events: {},
        eventsDecimal: {},
        eventCounts: {},
      });
    });
  });
});
