// closeDuePeriods: periods close exactly at their end plus grace, once, with catch-up, late data and provisional numbers.
// store-contract: sqlite, postgres
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { currentUsage } from '../../src/aggregate/current-usage.js';
import { triggerAggregation } from '../../src/aggregate/trigger.js';
import { parseConfig } from '../../src/config/load-config.js';
import { aggregationId } from '../../src/domain/aggregation.js';
import { periodInterval, type Period } from '../../src/domain/periods.js';
import { captureBatch } from '../../src/ingest/ingest-service.js';
import type { AggregationRecord } from '../../src/store/store.js';
import { buildTestApp, REFERENCE_CONFIG, type TestApp } from '../helpers/app.js';
import { docKey, oracleAggregations, type OracleEvent } from '../helpers/oracle.js';

const T = (iso: string): number => {
  const ms = Date.parse(iso);
  assert.ok(Number.isFinite(ms) && iso.endsWith('Z'), `bad test instant ${iso}`);
  return ms;
};
const MIN = 60_000;
const GRACE = 5 * MIN;
const ALL_PERIODS: Period[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];
const OPS = Object.fromEntries(Object.entries(REFERENCE_CONFIG.events).map(([t, v]) => [t, v.op])) as Record<
  string,
  'sum' | 'avg' | 'min' | 'max' | 'count' | 'first' | 'last'
>;

interface In {
  eventType: string;
  customerId: string;
  value: number;
  timestamp: string;
  id?: string;
}

/** The JSON an aggregation has in GET /aggregations. */
interface AggJson {
  _id: string;
  id: string;
  customerId: string;
  period: Period;
  periodKey: string;
  periodStart: string;
  periodEnd: string;
  timestamp: string;
  events: Record<string, number>;
  eventsDecimal: Record<string, string>;
  eventCounts: Record<string, number>;
  final: boolean;
  revision: number;
  webhookStatus: { delivered: boolean; attempts: number };
}

async function withApp(
  opts: { now: string; config?: Record<string, unknown> },
  fn: (t: TestApp) => Promise<void>,
): Promise<void> {
  const t = await buildTestApp({ now: opts.now, ...(opts.config ? { config: opts.config } : {}) });
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

/** Stores a batch through the real HTTP ingest path; the batch must be accepted. */
async function post(t: TestApp, events: In[]): Promise<{ count: number; inserted: number; duplicates: number }> {
  const r = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: events });
  assert.ok(r.statusCode === 201 || r.statusCode === 200, `POST /usagebatch → ${r.statusCode} ${r.body}`);
  return r.json();
}

async function aggs(t: TestApp, query: Record<string, string>): Promise<AggJson[]> {
  const r = await t.app.inject({ method: 'GET', url: '/aggregations', query: { limit: '1000', ...query }, headers: t.headers });
  assert.equal(r.statusCode, 200, r.body);
  return r.json();
}

async function onlyAgg(t: TestApp, query: Record<string, string>): Promise<AggJson> {
  const list = await aggs(t, query);
  assert.equal(list.length, 1, `expected exactly one aggregation for ${JSON.stringify(query)}, got ${JSON.stringify(list)}`);
  return list[0]!;
}

async function getAgg(t: TestApp, customerId: string, period: Period, at: number): Promise<AggregationRecord | undefined> {
  return t.store.getAggregation(customerId, period, periodInterval(period, at).start);
}

const ev = (eventType: string, customerId: string, value: number, timestamp: string, id?: string): In =>
  id === undefined ? { eventType, customerId, value, timestamp } : { eventType, customerId, value, timestamp, id };

const toOracle = (events: In[]): OracleEvent[] =>
  events.map((e) => ({ customerId: e.customerId, eventType: e.eventType, value: e.value, ts: T(e.timestamp), id: e.id ?? null }));

const WITH_YEARLY = { ...REFERENCE_CONFIG, periods: ALL_PERIODS };

describe('closeDuePeriods: a period closes exactly at periodEnd + grace', () => {
  const cases: Array<{
    period: Period;
    at: string;
    key: string;
    start: string;
    end: string;
    due: string;
  }> = [
    { period: 'hourly', at: '2026-01-12T10:15:00Z', key: '2026011210', start: '2026-01-12T10:00:00.000Z', end: '2026-01-12T10:59:59.999Z', due: '2026-01-12T11:05:00.000Z' },
    { period: 'daily', at: '2026-01-12T10:15:00Z', key: '20260112', start: '2026-01-12T00:00:00.000Z', end: '2026-01-12T23:59:59.999Z', due: '2026-01-13T00:05:00.000Z' },
    { period: 'weekly', at: '2026-01-14T10:15:00Z', key: '202603', start: '2026-01-12T00:00:00.000Z', end: '2026-01-18T23:59:59.999Z', due: '2026-01-19T00:05:00.000Z' },
    { period: 'monthly', at: '2026-01-14T10:15:00Z', key: '202601', start: '2026-01-01T00:00:00.000Z', end: '2026-01-31T23:59:59.999Z', due: '2026-02-01T00:05:00.000Z' },
    { period: 'yearly', at: '2025-12-20T10:15:00Z', key: '2025', start: '2025-01-01T00:00:00.000Z', end: '2025-12-31T23:59:59.999Z', due: '2026-01-01T00:05:00.000Z' },
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
        assert.deepEqual(Object.keys(body), ['type', 'customerId', 'period', 'data', 'created', 'id', 'aggregationId', 'revision', 'final']);
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
        assert.deepEqual(Object.keys(body.data as object), ['periodStart', 'periodEnd', 'periodKey', 'timestamp', 'events', 'eventCounts', 'eventsDecimal']);
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

describe('closeDuePeriods: late data', () => {
  it('a late event after the close gives revision 2 with aggregation.updated and the previous numbers; a duplicate re-send gives nothing', async () => {
    await withApp({ now: '2026-02-10T12:00:00Z' }, async (t) => {
      const january = [
        ev('api.calls', 'a', 10, '2026-01-10T08:00:00Z', 'j1'),
        ev('api.calls', 'a', 5.5, '2026-01-31T23:59:59.999Z', 'j2'),
        ev('storage.bytes', 'a', 100, '2026-01-15T00:00:00Z', 'j3'),
        ev('test.first', 'a', 7, '2026-01-20T00:00:00Z', 'j4'),
      ];
      await post(t, january);
      const r1 = await closeDuePeriods(t.ctx);
      assert.ok(r1.finalized > 0);
      const monthId = aggregationId('a', 'monthly', T('2026-01-01T00:00:00Z'));
      const rev1 = await onlyAgg(t, { customerId: 'a', period: 'monthly' });
      assert.equal(rev1.periodKey, '202601');
      assert.equal(rev1.revision, 1);
      assert.equal(rev1.final, true);
      assert.deepEqual(rev1.events, { 'api.calls': 15.5, 'storage.bytes': 100, 'test.first': 7 });
      assert.deepEqual(rev1.eventCounts, { 'api.calls': 2, 'storage.bytes': 1, 'test.first': 1 });

      // One more late event for January, earlier than the previous "first" and bigger than the max.
      t.clock.set('2026-02-11T12:00:00Z');
      await post(t, [ev('test.first', 'a', -3, '2026-01-08T12:00:00Z', 'late1'), ev('storage.bytes', 'a', 250, '2026-01-08T12:00:00Z', 'late2')]);
      // Not yet closed again: the final document still shows revision 1.
      assert.equal((await onlyAgg(t, { customerId: 'a', period: 'monthly' })).revision, 1);
      const r2 = await closeDuePeriods(t.ctx);
      // Reopened exactly: hourly 2026010812 and daily 20260108 (new), weekly 202602 and monthly 202601 (revised).
      assert.equal(r2.finalized, 4);
      assert.equal(r2.created, 2);
      assert.equal(r2.updated, 2);

      const rev2 = await onlyAgg(t, { customerId: 'a', period: 'monthly' });
      assert.equal(rev2.revision, 2);
      assert.equal(rev2.final, true);
      assert.equal(rev2.timestamp, '2026-02-11T12:00:00.000Z');
      assert.deepEqual(rev2.events, { 'api.calls': 15.5, 'storage.bytes': 250, 'test.first': -3 });
      assert.deepEqual(rev2.eventCounts, { 'api.calls': 2, 'storage.bytes': 2, 'test.first': 2 });

      const msgs = await t.store.listMessages(monthId);
      assert.deepEqual(msgs.map((m) => [m.revision, m.type]), [[1, 'aggregation.completed'], [2, 'aggregation.updated']]);
      assert.notEqual(msgs[0]!.id, msgs[1]!.id);
      const body = JSON.parse(msgs[1]!.body) as Record<string, unknown>;
      assert.equal(body.type, 'aggregation.updated');
      assert.equal(body.revision, 2);
      assert.equal(body.final, true);
      assert.deepEqual((body.data as { events: unknown }).events, rev2.events);
      assert.deepEqual((body.data as { eventCounts: unknown }).eventCounts, rev2.eventCounts);
      assert.deepEqual(body.previous, { events: rev1.events, eventCounts: rev1.eventCounts, eventsDecimal: rev1.eventsDecimal, revision: 1 });
      assert.deepEqual((body.data as { eventsDecimal: unknown }).eventsDecimal, rev2.eventsDecimal);
      assert.deepEqual(Object.keys(body).slice(0, 5), ['type', 'customerId', 'period', 'data', 'created']);

      // The day of the late events had nothing before: its first document is revision 1, a completed message.
      const day = await onlyAgg(t, { customerId: 'a', period: 'daily', periodKey: '20260108' });
      assert.equal(day.revision, 1);
      assert.deepEqual(day.eventCounts, { 'storage.bytes': 1, 'test.first': 1 });
      assert.deepEqual((await t.store.listMessages(day.id)).map((m) => m.type), ['aggregation.completed']);
      // Week 202602 (5–11 Jan) already held j1: it is revised, with the new events added.
      const week = await onlyAgg(t, { customerId: 'a', period: 'weekly', periodKey: '202602' });
      assert.equal(week.revision, 2);
      assert.deepEqual(week.events, { 'api.calls': 10, 'storage.bytes': 250, 'test.first': -3 });
      assert.deepEqual((await t.store.listMessages(week.id)).map((m) => m.type), ['aggregation.completed', 'aggregation.updated']);

      // A re-send of already-stored ids (same content, another batch) changes nothing.
      t.clock.set('2026-02-12T12:00:00Z');
      const resent = await post(t, [january[0]!, ev('test.first', 'a', -3, '2026-01-08T12:00:00Z', 'late1')]);
      assert.equal(resent.inserted, 0);
      assert.equal(resent.duplicates, 2);
      const r3 = await closeDuePeriods(t.ctx);
      assert.equal(r3.finalized, 0);
      assert.equal(r3.messages, 0);
      const still = await onlyAgg(t, { customerId: 'a', period: 'monthly' });
      assert.equal(still.revision, 2);
      assert.equal(still.timestamp, '2026-02-11T12:00:00.000Z');
      assert.equal((await t.store.listMessages(monthId)).length, 2);
    });
  });

  it('every late event bumps the revision again (revision 3 carries revision 2 as previous)', async () => {
    await withApp({ now: '2026-02-10T12:00:00Z' }, async (t) => {
      await post(t, [ev('test.count', 'a', 1, '2026-01-20T10:00:00Z')]);
      await closeDuePeriods(t.ctx);
      await post(t, [ev('test.count', 'a', 1, '2026-01-21T10:00:00Z')]);
      await closeDuePeriods(t.ctx);
      await post(t, [ev('test.count', 'a', 1, '2026-01-22T10:00:00Z')]);
      await closeDuePeriods(t.ctx);
      const m = await onlyAgg(t, { customerId: 'a', period: 'monthly' });
      assert.equal(m.revision, 3);
      assert.deepEqual(m.events, { 'test.count': 3 });
      const msgs = await t.store.listMessages(m.id);
      assert.deepEqual(msgs.map((x) => x.revision), [1, 2, 3]);
      const body = JSON.parse(msgs[2]!.body) as { previous: unknown };
      assert.deepEqual(body.previous, { events: { 'test.count': 2 }, eventCounts: { 'test.count': 2 }, eventsDecimal: { 'test.count': '2' }, revision: 2 });
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
      assert.deepEqual(
        janOnly.map((a) => `${a.period}:${a.periodKey}`).sort(),
        ['daily:20260120', 'hourly:2026012011', 'monthly:202601', 'weekly:202604'],
      );
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

  it('a type removed from the configuration after its events were stored is left out; a customer with only that type gets nothing', async () => {
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
      assert.deepEqual([hour10Final.final, hour10Final.revision, hour10Final.eventCounts], [true, 1, { 'api.calls': 1, 'response.time.ms': 1, 'test.min': 2 }]);
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
      await post(t, [
        ev('test.last', 'c', 1, '2025-12-01T00:00:00Z'),
        ev('test.last', 'c', 2, '2025-12-31T23:59:59.999Z'),
      ]);
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
      const one = await t.app.inject({ method: 'POST', url: '/usage/test.last', headers: t.headers, payload: { customerId: 'c', value: 4, timestamp: at } });
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

  it('ties survive the merge of hour states: across batches and hours, the earlier arrival is first and the later arrival is last', async () => {
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
        values.forEach((v, vi) => events.push(ev(type, 'c', Number((v * (ti + 1)).toPrecision(12)), `2026-01-12T${String(vi * 3).padStart(2, '0')}:0${ti}:00Z`)));
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
    const r = await t.app.inject({ method: 'GET', url: `/customers/${customerId}/usage`, query: { period: 'monthly', at }, headers: t.headers });
    assert.equal(r.statusCode, 200, r.body);
    return r.json() as { customerId: string; period: string; periodKey: string; periodStart: string; periodEnd: string; final: boolean; events: Record<string, number>; eventCounts: Record<string, number> };
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
