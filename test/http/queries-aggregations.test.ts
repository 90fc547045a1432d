// The read side of the HTTP contract for aggregates, in-process against a real store: GET /aggregations
// (fields, numbers, filters, paging) and GET /customers/:id/usage. See /work/shared/spec/reference-api.md.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { ISO_RE, assertJsonError, capture, captureBatch, get, nextCursor, post, walk, type Json } from '../helpers/queries.js';

describe('GET /aggregations', () => {
  let t: TestApp;
  let all: Json[];

  before(async () => {
    // 10:30Z: hour 09 is due (ended 10:00, grace 5m), hour 10, the day, week and month are open.
    t = await buildTestApp();
    await capture(t, 'api.calls', { customerId: 'cust_a', value: 5, timestamp: '2026-01-12T09:10:00Z' });
    await capture(t, 'api.calls', { customerId: 'cust_a', value: 7, timestamp: '2026-01-12T10:05:00Z' });
    await capture(t, 'storage.bytes', { customerId: 'cust_a', value: 300, timestamp: '2026-01-12T10:06:00Z' });
    await capture(t, 'storage.bytes', { customerId: 'cust_a', value: 100, timestamp: '2026-01-12T10:07:00Z' });
    await capture(t, 'api.calls', { customerId: 'cust_b', value: 1, timestamp: '2026-01-12T10:20:00Z' });
    // Last week (ISO week 2) and last month, both long closed.
    await capture(t, 'api.calls', { customerId: 'cust_a', value: 11, timestamp: '2026-01-05T12:00:00Z' });
    await capture(t, 'api.calls', { customerId: 'cust_b', value: 2, timestamp: '2025-12-31T23:59:59.999Z' });
    const tr = await post(t, '/aggregations/trigger', {});
    assert.equal(tr.status, 202, JSON.stringify(tr.body));
    const r = await get(t, '/aggregations?limit=1000');
    assert.equal(r.status, 200);
    all = r.body;
  });
  after(async () => t?.close());

  it('returns an array of documents with the reference fields plus final and revision', async () => {
    assert.ok(Array.isArray(all));
    // cust_a: hours 09, 10, 2026-01-05 12; days 12th and 5th; weeks 3 and 2; month 202601 = 8.
    // cust_b: hours 10 and 2025-12-31 23; days 12th and 31st; weeks 3 and 202601 (Dec 31 2025 is in ISO week 1 of 2026);
    // months 202601 and 202512 = 8.
    assert.equal(all.length, 16, JSON.stringify(all.map((a: Json) => a._id)));
    for (const a of all) {
      assert.equal(a._id, `${a.customerId}_${a.period}_${a.periodKey}`);
      assert.equal(typeof a.customerId, 'string');
      assert.ok(['hourly', 'daily', 'weekly', 'monthly'].includes(a.period));
      assert.match(a.periodStart, ISO_RE);
      assert.match(a.periodEnd, /\.999Z$/);
      assert.match(a.timestamp, ISO_RE);
      assert.equal(typeof a.events, 'object');
      assert.equal(typeof a.eventCounts, 'object');
      assert.deepEqual(Object.keys(a.events).sort(), Object.keys(a.eventCounts).sort());
      for (const n of Object.values(a.eventCounts)) assert.ok(Number.isInteger(n) && (n as number) > 0);
      assert.equal(typeof a.webhookStatus, 'object');
      assert.equal(typeof a.webhookStatus.delivered, 'boolean');
      assert.ok(Number.isInteger(a.webhookStatus.attempts));
      assert.equal(typeof a.final, 'boolean');
      assert.ok(Number.isInteger(a.revision));
    }
  });

  it('is ordered newest periodStart first', () => {
    for (let i = 1; i < all.length; i++) {
      assert.ok(Date.parse(all[i - 1].periodStart) >= Date.parse(all[i].periodStart), `${all[i - 1]._id} before ${all[i]._id}`);
    }
  });

  it('has the right numbers, bounds and finality', () => {
    const by = (id: string) => {
      const a = all.find((x: Json) => x._id === id);
      assert.ok(a, `${id} present`);
      return a;
    };
    const day = by('cust_a_daily_20260112');
    assert.deepEqual(day.events, { 'api.calls': 12, 'storage.bytes': 300 });
    assert.deepEqual(day.eventCounts, { 'api.calls': 2, 'storage.bytes': 2 });
    assert.equal(day.periodStart, '2026-01-12T00:00:00.000Z');
    assert.equal(day.periodEnd, '2026-01-12T23:59:59.999Z');
    assert.equal(day.final, false);
    assert.equal(day.timestamp, '2026-01-12T10:30:00.000Z');

    const h9 = by('cust_a_hourly_2026011209');
    assert.equal(h9.final, true);
    assert.ok(h9.revision >= 1);
    assert.deepEqual(h9.events, { 'api.calls': 5 });
    assert.equal(h9.periodEnd, '2026-01-12T09:59:59.999Z');

    const h10 = by('cust_a_hourly_2026011210');
    assert.equal(h10.final, false);

    const week = by('cust_a_weekly_202603');
    assert.equal(week.periodStart, '2026-01-12T00:00:00.000Z');
    assert.equal(week.periodEnd, '2026-01-18T23:59:59.999Z');
    assert.equal(week.final, false);
    assert.deepEqual(week.events, { 'api.calls': 12, 'storage.bytes': 300 });

    const lastWeek = by('cust_a_weekly_202602');
    assert.equal(lastWeek.final, true);
    assert.deepEqual(lastWeek.events, { 'api.calls': 11 });

    const month = by('cust_a_monthly_202601');
    assert.deepEqual(month.events, { 'api.calls': 23, 'storage.bytes': 300 });
    assert.equal(month.periodEnd, '2026-01-31T23:59:59.999Z');

    const dec = by('cust_b_monthly_202512');
    assert.equal(dec.final, true);
    assert.deepEqual(dec.events, { 'api.calls': 2 });
    const bWeek1 = by('cust_b_weekly_202601');
    assert.equal(bWeek1.periodStart, '2025-12-29T00:00:00.000Z');
  });

  it('filters by customerId, period, periodKey and final', async () => {
    const ids = async (q: string) => {
      const r = await get(t, `/aggregations?${q}`);
      assert.equal(r.status, 200, `${q}: ${JSON.stringify(r.body)}`);
      return r.body.map((a: Json) => a._id).sort();
    };
    assert.deepEqual(await ids('customerId=cust_b&period=daily'), ['cust_b_daily_20251231', 'cust_b_daily_20260112']);
    assert.deepEqual(await ids('period=monthly'), ['cust_a_monthly_202601', 'cust_b_monthly_202512', 'cust_b_monthly_202601']);
    assert.deepEqual(await ids('periodKey=2026011210'), ['cust_a_hourly_2026011210', 'cust_b_hourly_2026011210']);
    assert.deepEqual(await ids('customerId=cust_a&periodKey=20260112'), ['cust_a_daily_20260112']);

    const finals = await get(t, '/aggregations?final=true&limit=1000');
    const opens = await get(t, '/aggregations?final=false&limit=1000');
    assert.ok(finals.body.length > 0 && opens.body.length > 0);
    assert.ok(finals.body.every((a: Json) => a.final === true));
    assert.ok(opens.body.every((a: Json) => a.final === false));
    assert.equal(finals.body.length + opens.body.length, all.length);
    assert.deepEqual(await ids('customerId=cust_a&period=hourly&final=true'), ['cust_a_hourly_2026010512', 'cust_a_hourly_2026011209']);

    assert.deepEqual(await ids('customerId=nobody'), []);
  });

  it('from/to bound periodStart, inclusive', async () => {
    const ids = async (q: string) => {
      const r = await get(t, `/aggregations?customerId=cust_a&period=daily&${q}`);
      assert.equal(r.status, 200, `${q}: ${JSON.stringify(r.body)}`);
      return r.body.map((a: Json) => a.periodKey);
    };
    assert.deepEqual(await ids('from=2026-01-12'), ['20260112']);
    assert.deepEqual(await ids('from=2026-01-12T00:00:00.001Z'), []);
    assert.deepEqual(await ids('to=2026-01-12T00:00:00Z'), ['20260112', '20260105']);
    assert.deepEqual(await ids('to=2026-01-11T23:59:59.999Z'), ['20260105']);
    assert.deepEqual(await ids(`from=${Date.parse('2026-01-05T00:00:00Z')}&to=2026-01-05`), ['20260105']);
    assertJsonError(await get(t, '/aggregations?from=last-week'));
    assertJsonError(await get(t, '/aggregations?to=2026-02-30'));
  });

  it('pages with a cursor through every document exactly once, in order', async () => {
    const seen = await walk(t, '/aggregations?limit=3');
    assert.deepEqual(
      seen.map((a: Json) => a._id),
      all.map((a: Json) => a._id),
    );
    const filtered = await walk(t, '/aggregations?customerId=cust_a&limit=2');
    assert.deepEqual(
      filtered.map((a: Json) => a._id),
      all.filter((a: Json) => a.customerId === 'cust_a').map((a: Json) => a._id),
    );
  });

  it('bad period, periodKey, final, limit or cursor values are 400', async () => {
    for (const q of [
      'period=annual',
      'period=Daily',
      'period=',
      'final=maybe',
      'limit=0',
      'limit=abc',
      'periodKey=2026-01',
      'cursor=not-a-cursor',
    ]) {
      assertJsonError(await get(t, `/aggregations?${q}`), 400);
    }
    const page = await get(t, '/aggregations?limit=1');
    const c = nextCursor(page);
    assert.ok(c);
    // An events cursor ([ts, seq]) is not an aggregations cursor ([periodStart, id]).
    const eventsCursor = Buffer.from(JSON.stringify([1, 2])).toString('base64url');
    assertJsonError(await get(t, `/aggregations?cursor=${eventsCursor}`), 400);
    assertJsonError(await get(t, `/aggregations?cursor=${encodeURIComponent(c.slice(3))}`), 400);
  });

  it('limit defaults to 100', async () => {
    const many = await buildTestApp();
    try {
      // 120 customers × 4 periods = 480 documents.
      await captureBatch(
        many,
        Array.from({ length: 120 }, (_, i) => ({ eventType: 'api.calls', customerId: `c${i}`, value: 1 })),
      );
      assert.equal((await post(many, '/aggregations/trigger', {})).status, 202);
      const r = await get(many, '/aggregations');
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 100);
      assert.ok(nextCursor(r));
      assert.equal((await walk(many, '/aggregations?limit=1000')).length, 480);
    } finally {
      await many.close();
    }
  });
});

describe('GET /customers/:id/usage', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
    await capture(t, 'api.calls', { customerId: 'cust_u', value: 5, timestamp: '2026-01-12T09:10:00Z' });
    await capture(t, 'api.calls', { customerId: 'cust_u', value: 7, timestamp: '2026-01-12T10:05:00Z' });
    await capture(t, 'response.time.ms', { customerId: 'cust_u', value: 100, timestamp: '2026-01-12T10:06:00Z' });
    await capture(t, 'response.time.ms', { customerId: 'cust_u', value: 300, timestamp: '2026-01-12T10:07:00Z' });
    await capture(t, 'api.calls', { customerId: 'cust_u', value: 20, timestamp: '2026-01-11T23:00:00Z' });
  });
  after(async () => t?.close());

  it('answers real-time usage for the period containing `at`', async () => {
    const day = await get(t, '/customers/cust_u/usage?period=daily&at=2026-01-12T15:00:00Z');
    assert.equal(day.status, 200);
    assert.equal(day.body.customerId, 'cust_u');
    assert.equal(day.body.period, 'daily');
    assert.equal(day.body.periodKey, '20260112');
    assert.equal(day.body.periodStart, '2026-01-12T00:00:00.000Z');
    assert.equal(day.body.periodEnd, '2026-01-12T23:59:59.999Z');
    assert.equal(day.body.final, false);
    assert.deepEqual(day.body.events, { 'api.calls': 12, 'response.time.ms': 200 });
    assert.deepEqual(day.body.eventCounts, { 'api.calls': 2, 'response.time.ms': 2 });

    const hour = await get(t, `/customers/cust_u/usage?period=hourly&at=${Date.parse('2026-01-12T09:59:59.999Z')}`);
    assert.equal(hour.body.periodKey, '2026011209');
    assert.deepEqual(hour.body.events, { 'api.calls': 5 });

    const prevDay = await get(t, '/customers/cust_u/usage?period=daily&at=2026-01-11');
    assert.equal(prevDay.body.periodKey, '20260111');
    assert.deepEqual(prevDay.body.events, { 'api.calls': 20 });

    const week = await get(t, '/customers/cust_u/usage?period=weekly&at=2026-01-12');
    assert.equal(week.body.periodKey, '202603');
    assert.deepEqual(week.body.events, { 'api.calls': 12, 'response.time.ms': 200 });
  });

  it('defaults to the monthly period containing now', async () => {
    const r = await get(t, '/customers/cust_u/usage');
    assert.equal(r.status, 200);
    assert.equal(r.body.period, 'monthly');
    assert.equal(r.body.periodKey, '202601');
    assert.deepEqual(r.body.events, { 'api.calls': 32, 'response.time.ms': 200 });
  });

  it('an unknown customer has empty usage, not a 404', async () => {
    const r = await get(t, '/customers/nobody/usage?period=daily');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.events, {});
    assert.deepEqual(r.body.eventCounts, {});
  });

  it('bad period or at is a 400', async () => {
    assertJsonError(await get(t, '/customers/cust_u/usage?period=fortnightly'));
    assertJsonError(await get(t, '/customers/cust_u/usage?at=tomorrow'));
    assertJsonError(await get(t, '/customers/cust_u/usage?at=2026-01-12T10:00:00'));
  });
});
