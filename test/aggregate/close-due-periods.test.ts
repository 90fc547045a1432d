// closeDuePeriods: periods close exactly at their end plus grace, once, with catch-up after downtime,
// idle customers and absent types (late data: close-due-periods-late.test.ts).
// store-contract: sqlite, postgres
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { parseConfig } from '../../src/config/load-config.js';
import { aggregationId } from '../../src/domain/aggregation.js';
import type { Period } from '../../src/domain/periods.js';
import { captureBatch } from '../../src/ingest/ingest-service.js';
import type { AggregationRecord } from '../../src/domain/records.js';
import { REFERENCE_CONFIG, type TestApp } from '../helpers/app.js';
import { T, MIN, OPS, withApp, post, aggs, onlyAgg, getAgg, ev, toOracle, WITH_YEARLY } from '../helpers/close-due-periods.js';
import { docKey, oracleAggregations } from '../helpers/oracle.js';

describe('closeDuePeriods: a period closes exactly at periodEnd + grace', () => {
  const cases: Array<{
    period: Period;
    at: string;
    key: string;
    start: string;
    end: string;
    due: string;
  }> = [
    {
      period: 'hourly',
      at: '2026-01-12T10:15:00Z',
      key: '2026011210',
      start: '2026-01-12T10:00:00.000Z',
      end: '2026-01-12T10:59:59.999Z',
      due: '2026-01-12T11:05:00.000Z',
    },
    {
      period: 'daily',
      at: '2026-01-12T10:15:00Z',
      key: '20260112',
      start: '2026-01-12T00:00:00.000Z',
      end: '2026-01-12T23:59:59.999Z',
      due: '2026-01-13T00:05:00.000Z',
    },
    {
      period: 'weekly',
      at: '2026-01-14T10:15:00Z',
      key: '202603',
      start: '2026-01-12T00:00:00.000Z',
      end: '2026-01-18T23:59:59.999Z',
      due: '2026-01-19T00:05:00.000Z',
    },
    {
      period: 'monthly',
      at: '2026-01-14T10:15:00Z',
      key: '202601',
      start: '2026-01-01T00:00:00.000Z',
      end: '2026-01-31T23:59:59.999Z',
      due: '2026-02-01T00:05:00.000Z',
    },
    {
      period: 'yearly',
      at: '2025-12-20T10:15:00Z',
      key: '2025',
      start: '2025-01-01T00:00:00.000Z',
      end: '2025-12-31T23:59:59.999Z',
      due: '2026-01-01T00:05:00.000Z',
    },
  ];

  for (const c of cases) {
    it(`${c.period}: not final 1 ms before ${c.due}, final (revision 1, one message) at exactly ${c.due}`, async () => {
      await withApp({ now: c.at, config: WITH_YEARLY }, async (t) => {
        const events = [
          ev('api.calls', 'cust_a', 3, c.at, 'e1'),
          ev('api.calls', 'cust_a', 4.5, c.at, 'e2'),
          ev('storage.bytes', 'cust_a', -1, c.at),
          ev('test.count', 'cust_a', 0, c.at),
        ];
        await post(t, events);
        const aggId = aggregationId('cust_a', c.period, T(c.start));

        t.clock.set(T(c.due) - 1);
        await closeDuePeriods(t.ctx);
        const early = await getAgg(t, 'cust_a', c.period, T(c.at));
        assert.ok(early === undefined || early.final === false, `${c.period} finalized before it was due`);
        assert.deepEqual(await t.store.listMessages(aggId), []);
        assert.deepEqual(await aggs(t, { customerId: 'cust_a', period: c.period, final: 'true' }), []);

        t.clock.set(T(c.due));
        const r = await closeDuePeriods(t.ctx);
        assert.ok(r.finalized >= 1);

        const doc = await onlyAgg(t, { customerId: 'cust_a', period: c.period });
        assert.equal(doc._id, `cust_a_${c.period}_${c.key}`);
        assert.equal(doc.id, aggId);
        assert.equal(doc.customerId, 'cust_a');
        assert.equal(doc.period, c.period);
        assert.equal(doc.periodKey, c.key);
        assert.equal(doc.periodStart, c.start);
        assert.equal(doc.periodEnd, c.end);
        assert.equal(doc.final, true);
        assert.equal(doc.revision, 1);
        assert.equal(doc.timestamp, c.due);
        assert.deepEqual(doc.events, { 'api.calls': 7.5, 'storage.bytes': -1, 'test.count': 1 });
        assert.deepEqual(doc.eventCounts, { 'api.calls': 2, 'storage.bytes': 1, 'test.count': 1 });
        assert.deepEqual(doc.webhookStatus, { delivered: false, attempts: 0 });

        const msgs = await t.store.listMessages(aggId);
        assert.equal(msgs.length, 1);
        const m = msgs[0]!;
        assert.equal(m.type, 'aggregation.completed');
        assert.equal(m.revision, 1);
        assert.equal(m.aggregationId, aggId);
        assert.equal(m.customerId, 'cust_a');
        assert.equal(m.period, c.period);
        assert.equal(m.createdAt, T(c.due));
        const body = JSON.parse(m.body) as Record<string, unknown>;
        assert.deepEqual(Object.keys(body), [
          'type',
          'customerId',
          'period',
          'data',
          'created',
          'id',
          'aggregationId',
          'revision',
          'final',
        ]);
        assert.deepEqual(body, {
          type: 'aggregation.completed',
          customerId: 'cust_a',
          period: c.period,
          data: {
            periodStart: c.start,
            periodEnd: c.end,
            periodKey: c.key,
            timestamp: c.due,
            events: { 'api.calls': 7.5, 'storage.bytes': -1, 'test.count': 1 },
            eventCounts: { 'api.calls': 2, 'storage.bytes': 1, 'test.count': 1 },
            eventsDecimal: { 'api.calls': '7.5', 'storage.bytes': '-1', 'test.count': '1' },
          },
          created: Math.floor(T(c.due) / 1000),
          id: m.id,
          aggregationId: aggId,
          revision: 1,
          final: true,
        });
        assert.deepEqual(Object.keys(body.data as object), [
          'periodStart',
          'periodEnd',
          'periodKey',
          'timestamp',
          'events',
          'eventCounts',
          'eventsDecimal',
        ]);
        assert.match(m.id, /^msg_[0-9a-z]+$/);
      });
    });
  }

  it('an event inside the grace window is part of the period it belongs to', async () => {
    await withApp({ now: '2026-01-12T10:59:59.999Z' }, async (t) => {
      await post(t, [ev('api.calls', 'c', 1, '2026-01-12T10:59:59.999Z')]);
      // Arrives at 11:03 with its own time in the previous hour: still before 11:05, so it counts.
      t.clock.set('2026-01-12T11:03:00Z');
      await post(t, [ev('api.calls', 'c', 2, '2026-01-12T10:59:00Z')]);
      await post(t, [ev('api.calls', 'c', 100, '2026-01-12T11:00:00.000Z')]);
      t.clock.set('2026-01-12T11:05:00Z');
      const r = await closeDuePeriods(t.ctx);
      assert.equal(r.finalized, 1);
      const doc = await onlyAgg(t, { customerId: 'c', period: 'hourly', final: 'true' });
      assert.equal(doc.periodKey, '2026011210');
      assert.deepEqual(doc.events, { 'api.calls': 3 });
      assert.deepEqual(doc.eventCounts, { 'api.calls': 2 });
    });
  });

  it('the grace period is configurable', async () => {
    await withApp({ now: '2026-01-12T10:15:00Z', config: { ...REFERENCE_CONFIG, gracePeriod: '30m' } }, async (t) => {
      await post(t, [ev('api.calls', 'c', 1, '2026-01-12T10:15:00Z')]);
      t.clock.set('2026-01-12T11:29:59.999Z');
      assert.equal((await closeDuePeriods(t.ctx)).finalized, 0);
      t.clock.set('2026-01-12T11:30:00Z');
      assert.equal((await closeDuePeriods(t.ctx)).finalized, 1);
      assert.equal((await onlyAgg(t, { customerId: 'c', period: 'hourly' })).final, true);
    });
  });
});

describe('closeDuePeriods: exactly once', () => {
  const seed = (t: TestApp) =>
    post(t, [
      ev('api.calls', 'a', 1, '2026-01-12T08:10:00Z'),
      ev('api.calls', 'a', 2, '2026-01-12T09:10:00Z'),
      ev('storage.bytes', 'b', 5, '2026-01-12T09:20:00Z'),
    ]);
  // Due at 2026-01-13T00:05: hourly a@08, a@09, b@09 and daily a, b = 5 documents.
  const EXPECTED = 5;

  async function assertOneMessageEach(t: TestApp): Promise<AggregationRecord[]> {
    const all = await t.store.listAggregations({ limit: 1000, final: true });
    assert.equal(all.length, EXPECTED);
    for (const a of all) {
      assert.equal(a.revision, 1);
      const msgs = await t.store.listMessages(a.id);
      assert.equal(msgs.length, 1, `messages of ${a.customerId} ${a.period} ${a.periodKey}`);
      assert.equal(msgs[0]!.type, 'aggregation.completed');
    }
    return all;
  }

  it('a second run finalizes nothing and writes no message', async () => {
    await withApp({ now: '2026-01-12T10:30:00Z' }, async (t) => {
      await seed(t);
      t.clock.set('2026-01-13T00:05:00Z');
      const first = await closeDuePeriods(t.ctx);
      assert.equal(first.finalized, EXPECTED);
      assert.equal(first.messages, EXPECTED);
      const before = await assertOneMessageEach(t);

      t.clock.advance(15 * MIN);
      const second = await closeDuePeriods(t.ctx);
      assert.equal(second.finalized, 0);
      assert.equal(second.messages, 0);
      const after = await assertOneMessageEach(t);
      // Nothing was rewritten: the computation time is still the first close's.
      assert.deepEqual(after, before);
    });
  });

  it('two concurrent runs finalize each period once between them', async () => {
    await withApp({ now: '2026-01-12T10:30:00Z' }, async (t) => {
      await seed(t);
      t.clock.set('2026-01-13T00:05:00Z');
      const [r1, r2] = await Promise.all([closeDuePeriods(t.ctx), closeDuePeriods(t.ctx)]);
      assert.equal(r1.finalized + r2.finalized, EXPECTED);
      assert.equal(r1.messages + r2.messages, EXPECTED);
      await assertOneMessageEach(t);
      const r3 = await closeDuePeriods(t.ctx);
      assert.equal(r3.finalized, 0);
    });
  });

  it('pages through more due marks than one chunk (520 customers) and finalizes every one', async () => {
    await withApp({ now: '2026-01-12T10:30:00Z' }, async (t) => {
      const batch = Array.from({ length: 520 }, (_, i) => ev('test.count', `c${String(i).padStart(4, '0')}`, i, '2026-01-12T09:30:00Z'));
      // The ingest service directly (what the route calls), to cover the non-HTTP entry point too.
      assert.deepEqual(await captureBatch(t.ctx, batch), { count: 520, inserted: 520, duplicates: 0, replayed: false });
      t.clock.set('2026-01-12T10:05:00Z');
      const r = await closeDuePeriods(t.ctx);
      assert.equal(r.finalized, 520);
      assert.equal(r.customers.size, 520);
      const hourly = await t.store.listAggregations({ limit: 2000, period: 'hourly', final: true });
      assert.equal(hourly.length, 520);
      assert.ok(hourly.every((a) => a.eventCounts['test.count'] === 1 && a.events['test.count'] === 1));
      assert.equal((await closeDuePeriods(t.ctx)).finalized, 0);
    });
  });
});

describe('closeDuePeriods: catch-up after downtime', () => {
  it('one call after a 3-day jump finalizes every due hour and day, and the finished week', async () => {
    await withApp({ now: '2026-01-12T13:00:00Z' }, async (t) => {
      const events = [
        // Saturday 10th, Sunday 11th: ISO week 202602. Monday 12th: week 202603 (not due on the 15th).
        ev('api.calls', 'a', 1, '2026-01-10T01:10:00Z'),
        ev('api.calls', 'a', 2, '2026-01-10T01:40:00Z'),
        ev('test.count', 'a', 9, '2026-01-10T05:00:00Z'),
        ev('api.calls', 'a', 3, '2026-01-11T23:59:59.999Z'),
        ev('api.calls', 'a', 4, '2026-01-12T00:00:00.000Z'),
        ev('test.last', 'b', 5, '2026-01-11T12:30:00Z'),
        ev('test.last', 'b', 6, '2026-01-12T12:30:00Z'),
      ];
      await post(t, events);
      t.clock.set('2026-01-15T12:00:00Z');
      const r = await closeDuePeriods(t.ctx);

      const oracle = oracleAggregations(toOracle(events), ['hourly', 'daily', 'weekly'], OPS);
      const expected = [...oracle.values()].filter((d) => !(d.period === 'weekly' && d.periodKey === '202603'));
      const hours = expected.filter((d) => d.period === 'hourly').length;
      const days = expected.filter((d) => d.period === 'daily').length;
      const weeks = expected.filter((d) => d.period === 'weekly').length;
      // a: hours 10T01, 10T05, 11T23, 12T00; b: 11T12, 12T12. a: days 10, 11, 12; b: 11, 12. a, b: week 202602.
      assert.equal(hours, 6);
      assert.equal(days, 5);
      assert.equal(weeks, 2);
      assert.equal(r.finalized, hours + days + weeks);
      assert.equal(r.messages, hours + days + weeks);

      const finals = await t.store.listAggregations({ limit: 1000, final: true });
      assert.equal(finals.length, hours + days + weeks);
      for (const a of finals) {
        const o = oracle.get(docKey(a.customerId, a.period, a.periodKey));
        assert.ok(o, `unexpected aggregation ${a.customerId} ${a.period} ${a.periodKey}`);
        assert.deepEqual(a.events, o.events);
        assert.deepEqual(a.eventsDecimal, o.eventsDecimal);
        assert.deepEqual(a.eventCounts, o.eventCounts);
        assert.equal(a.revision, 1);
      }
      // Week 202603 and January are still open: no final document for them.
      assert.deepEqual(await aggs(t, { period: 'monthly' }), []);
      assert.deepEqual(await aggs(t, { period: 'weekly', periodKey: '202603' }), []);
      assert.equal((await closeDuePeriods(t.ctx)).finalized, 0);
    });
  });
});

describe('closeDuePeriods: idle customers and absent types', () => {
  it('a customer with events only in January gets no February aggregation; absent types are left out for every op', async () => {
    await withApp({ now: '2026-01-20T12:00:00Z' }, async (t) => {
      await post(t, [ev('api.calls', 'jan_only', 4, '2026-01-20T11:00:00Z'), ev('api.calls', 'both', 1, '2026-01-20T11:00:00Z')]);
      t.clock.set('2026-02-15T12:00:00Z');
      await post(t, [ev('test.count', 'both', 0, '2026-02-15T11:00:00Z')]);
      t.clock.set('2026-03-01T00:05:00Z');
      await closeDuePeriods(t.ctx);

      const janOnly = await aggs(t, { customerId: 'jan_only' });
      // Exactly the hour, day, week and month of its one event.
      assert.deepEqual(janOnly.map((a) => `${a.period}:${a.periodKey}`).sort(), [
        'daily:20260120',
        'hourly:2026012011',
        'monthly:202601',
        'weekly:202604',
      ]);
      for (const a of janOnly) {
        assert.deepEqual(a.events, { 'api.calls': 4 });
        assert.deepEqual(a.eventCounts, { 'api.calls': 1 });
        assert.ok(!('test.count' in a.events) && !('test.count' in a.eventCounts), 'count of an absent type must be left out, not 0');
      }
      assert.deepEqual(await aggs(t, { customerId: 'jan_only', period: 'monthly', periodKey: '202602' }), []);

      const febBoth = await onlyAgg(t, { customerId: 'both', period: 'monthly', periodKey: '202602' });
      assert.deepEqual(febBoth.events, { 'test.count': 1 });
      assert.deepEqual(febBoth.eventCounts, { 'test.count': 1 });
      const janBoth = await onlyAgg(t, { customerId: 'both', period: 'monthly', periodKey: '202601' });
      assert.deepEqual(janBoth.events, { 'api.calls': 1 });
    });
  });

  it('an unconfigured type is rejected at ingest and never reaches an aggregation', async () => {
    await withApp({ now: '2026-01-12T10:30:00Z' }, async (t) => {
      const r = await t.app.inject({
        method: 'POST',
        url: '/usagebatch',
        headers: t.headers,
        payload: [ev('api.calls', 'c', 1, '2026-01-12T10:00:00Z'), ev('not.configured', 'c', 1, '2026-01-12T10:00:00Z')],
      });
      assert.equal(r.statusCode, 422);
      await post(t, [ev('api.calls', 'c', 2, '2026-01-12T10:01:00Z')]);
      t.clock.set('2026-01-13T00:05:00Z');
      await closeDuePeriods(t.ctx);
      for (const a of await aggs(t, {})) {
        assert.deepEqual(Object.keys(a.events), ['api.calls']);
        assert.deepEqual(a.eventCounts, { 'api.calls': 1 });
      }
    });
  });

  const removedTypeTitle =
    'a type removed from the configuration after its events were stored is left out; a customer with only that type gets nothing';
  it(removedTypeTitle, async () => {
    const withLegacy = { ...REFERENCE_CONFIG, events: { ...REFERENCE_CONFIG.events, 'legacy.type': { op: 'sum' } } };
    await withApp({ now: '2026-01-12T10:30:00Z', config: withLegacy }, async (t) => {
      await post(t, [
        ev('api.calls', 'c', 2, '2026-01-12T10:00:00Z'),
        ev('legacy.type', 'c', 50, '2026-01-12T10:00:00Z'),
        ev('legacy.type', 'legacy_only', 50, '2026-01-12T10:00:00Z'),
      ]);
      const ctx = { ...t.ctx, config: parseConfig(REFERENCE_CONFIG, { env: {}, source: '<test>' }) };
      t.clock.set('2026-01-13T00:05:00Z');
      await closeDuePeriods(ctx);
      const c = await aggs(t, { customerId: 'c' });
      assert.equal(c.length, 2);
      for (const a of c) assert.deepEqual([a.events, a.eventCounts], [{ 'api.calls': 2 }, { 'api.calls': 1 }]);
      assert.deepEqual(await aggs(t, { customerId: 'legacy_only' }), []);
      assert.deepEqual(await t.store.listMessages(aggregationId('legacy_only', 'daily', T('2026-01-12T00:00:00Z'))), []);
    });
  });
});
