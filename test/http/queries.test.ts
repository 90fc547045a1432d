// The read side of the HTTP contract, in-process against a real SQLite file: GET /events,
// GET /aggregations, GET /customers/:id/usage and the service's own routes (/, /ping, /config,
// /healthz, /readyz). See /work/shared/spec/reference-api.md.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { REFERENCE_CONFIG, TEST_KEY, buildTestApp, type TestApp } from '../helpers/app.js';

type Json = any;

interface Res {
  status: number;
  headers: Record<string, unknown>;
  body: Json;
}

async function get(t: TestApp, url: string, headers: Record<string, string> = t.headers): Promise<Res> {
  const r = await t.app.inject({ method: 'GET', url, headers });
  let body: Json;
  try {
    body = r.json();
  } catch {
    assert.fail(`GET ${url} answered ${r.statusCode} with a non-JSON body: ${r.body}`);
  }
  return { status: r.statusCode, headers: r.headers, body };
}

async function post(t: TestApp, url: string, payload: unknown): Promise<Res> {
  const r = await t.app.inject({ method: 'POST', url, headers: t.headers, payload: JSON.stringify(payload) });
  return { status: r.statusCode, headers: r.headers, body: r.json() };
}

async function capture(t: TestApp, eventType: string, e: Record<string, unknown>): Promise<Json> {
  const r = await post(t, `/usage/${eventType}`, e);
  assert.equal(r.status, 201, `POST /usage/${eventType} ${JSON.stringify(e)} → ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function captureBatch(t: TestApp, events: Array<Record<string, unknown>>): Promise<void> {
  const r = await post(t, '/usagebatch', events);
  assert.equal(r.status, 201, `POST /usagebatch → ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(r.body.count, events.length);
}

function nextCursor(r: Res): string | undefined {
  const c = r.headers['x-next-cursor'];
  return typeof c === 'string' ? c : undefined;
}

/** Walks every page of a list route and returns all documents, failing if the walk does not end. */
async function walk(t: TestApp, base: string, between?: (page: number) => Promise<void>): Promise<Json[]> {
  const all: Json[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const sep = base.includes('?') ? '&' : '?';
    const r = await get(t, cursor === undefined ? base : `${base}${sep}cursor=${encodeURIComponent(cursor)}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(Array.isArray(r.body));
    all.push(...r.body);
    cursor = nextCursor(r);
    if (cursor === undefined) return all;
    if (between) await between(page);
  }
  assert.fail(`paging ${base} did not end after 1000 pages`);
}

function assertJsonError(r: Res, status = 400): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(typeof r.body, 'object');
  assert.equal(typeof r.body.error, 'string');
  assert.ok(r.body.error.length > 0);
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('GET /events', () => {
  let t: TestApp;
  // Event times (the clock is at 2026-01-12T10:30Z).
  const T1 = '2026-01-12T08:00:00.000Z';
  const T2 = '2026-01-12T09:00:00.000Z';
  const T3 = '2026-01-12T10:00:00.000Z';

  before(async () => {
    t = await buildTestApp();
    // Arrival order differs from event-time order on purpose.
    await capture(t, 'api.calls', { customerId: 'cust_a', value: 2, timestamp: T2, metadata: { n: 2 } });
    t.clock.advance(1000);
    await capture(t, 'api.calls', { customerId: 'cust_a', value: 3, timestamp: T3, metadata: { n: 3 } });
    t.clock.advance(1000);
    await capture(t, 'api.calls', { customerId: 'cust_a', value: 1, timestamp: T1, metadata: { n: 1 } });
    t.clock.advance(1000);
    // Two events at the same instant: arrival breaks the tie (newer arrival first).
    await capture(t, 'storage.bytes', { customerId: 'cust_b', value: 10, timestamp: T2, metadata: { n: 'b1' } });
    t.clock.advance(1000);
    await capture(t, 'storage.bytes', { customerId: 'cust_b', value: 20, timestamp: T2, metadata: { n: 'b2' } });
  });
  after(async () => t?.close());

  it('returns an array, newest event time first, ties broken by arrival (latest first)', async () => {
    const r = await get(t, '/events');
    assert.equal(r.status, 200);
    assert.ok(Array.isArray(r.body));
    assert.deepEqual(
      r.body.map((e: Json) => e.metadata.n),
      [3, 'b2', 'b1', 2, 1],
    );
  });

  it('documents carry the reference fields, receivedAt being the arrival time', async () => {
    const r = await get(t, '/events?customerId=cust_a&eventType=api.calls');
    const e = r.body.find((x: Json) => x.value === 1);
    assert.ok(e, 'event with value 1 present');
    assert.equal(e.customerId, 'cust_a');
    assert.equal(e.eventType, 'api.calls');
    assert.equal(e.value, 1);
    assert.deepEqual(e.metadata, { n: 1 });
    assert.match(e.receivedAt, ISO_RE);
    // It was the third event captured: clock 10:30:00 + 2 s.
    assert.equal(e.receivedAt, '2026-01-12T10:30:02.000Z');
    assert.equal(e.minute, '202601120800');
    assert.equal(e.hour, '2026011208');
    assert.equal(e.day, '20260112');
    assert.equal(e.week, '202603');
    assert.equal(e.month, '202601');
    assert.equal(e.year, '2026');
  });

  it('period keys come from the event time: 2027-01-01T00:30Z is in ISO week 202653', async () => {
    const y = await buildTestApp({ now: '2027-01-01T00:40:00Z' });
    try {
      await capture(y, 'api.calls', { customerId: 'cust_y', value: 5, timestamp: '2027-01-01T00:30:00Z' });
      const r = await get(y, '/events?customerId=cust_y');
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 1);
      const e = r.body[0];
      assert.equal(e.minute, '202701010030');
      assert.equal(e.hour, '2027010100');
      assert.equal(e.day, '20270101');
      assert.equal(e.week, '202653');
      assert.equal(e.month, '202701');
      assert.equal(e.year, '2027');
      assert.equal(e.receivedAt, '2027-01-01T00:40:00.000Z');
    } finally {
      await y.close();
    }
  });

  it('events without metadata show an empty metadata object', async () => {
    const m = await buildTestApp();
    try {
      await capture(m, 'api.calls', { customerId: 'cust_m', value: 1 });
      const r = await get(m, '/events');
      assert.deepEqual(r.body[0].metadata, {});
      // Without a timestamp the event time is the arrival time.
      assert.equal(r.body[0].minute, '202601121030');
    } finally {
      await m.close();
    }
  });

  it('filters by customerId and eventType', async () => {
    const a = await get(t, '/events?customerId=cust_a');
    assert.deepEqual(a.body.map((e: Json) => e.value), [3, 2, 1]);
    assert.ok(a.body.every((e: Json) => e.customerId === 'cust_a'));

    const s = await get(t, '/events?eventType=storage.bytes');
    assert.deepEqual(s.body.map((e: Json) => e.value), [20, 10]);

    const none = await get(t, '/events?customerId=cust_a&eventType=storage.bytes');
    assert.equal(none.status, 200);
    assert.deepEqual(none.body, []);

    const unknown = await get(t, '/events?customerId=nobody');
    assert.equal(unknown.status, 200);
    assert.deepEqual(unknown.body, []);
  });

  it('from/to are inclusive instants: ISO with offset, epoch ms and YYYY-MM-DD', async () => {
    const values = async (q: string) => {
      const r = await get(t, `/events?customerId=cust_a&${q}`);
      assert.equal(r.status, 200, `${q}: ${JSON.stringify(r.body)}`);
      return r.body.map((e: Json) => e.value);
    };
    // Inclusive at both ends.
    assert.deepEqual(await values(`from=${T2}&to=${T2}`), [2]);
    assert.deepEqual(await values(`from=${T1}&to=${T2}`), [2, 1]);
    assert.deepEqual(await values(`from=${T2}`), [3, 2]);
    assert.deepEqual(await values(`to=${T2}`), [2, 1]);
    // One millisecond off excludes.
    assert.deepEqual(await values('from=2026-01-12T09:00:00.001Z'), [3]);
    assert.deepEqual(await values('to=2026-01-12T08:59:59.999Z'), [1]);
    // An offset is honoured: 10:00+01:00 is 09:00Z.
    assert.deepEqual(await values(`from=${encodeURIComponent('2026-01-12T10:00:00+01:00')}&to=${encodeURIComponent('2026-01-12T10:00:00+01:00')}`), [2]);
    // Epoch milliseconds.
    assert.deepEqual(await values(`from=${Date.parse(T2)}&to=${Date.parse(T3)}`), [3, 2]);
    // A date is UTC midnight.
    assert.deepEqual(await values('from=2026-01-12'), [3, 2, 1]);
    assert.deepEqual(await values('from=2026-01-13'), []);
    assert.deepEqual(await values('to=2026-01-12'), []);
    assert.deepEqual(await values('from=2026-01-11&to=2026-01-13'), [3, 2, 1]);
  });

  it('a from/to that is not an instant is a 400 with a JSON error, never a string comparison', async () => {
    const bad = [
      'yesterday',
      '2026-13-01',
      '2026-02-30',
      '2026-02-30T00:00:00Z',
      '2026-01-12T10:00:00', // no offset: a local time is ambiguous
      '2026-01-12T25:00:00Z',
      '12/01/2026',
      '1e12',
      '-5',
    ];
    for (const v of bad) {
      for (const name of ['from', 'to']) {
        const r = await get(t, `/events?${name}=${encodeURIComponent(v)}`);
        assert.equal(r.status, 400, `${name}=${v} → ${r.status} ${JSON.stringify(r.body)}`);
        assertJsonError(r);
      }
    }
  });

  it('limit: default 100, capped at 1000; 0, negative, fractional or non-numeric limits are 400', async () => {
    const l = await buildTestApp();
    try {
      const mk = (n: number, offset: number) =>
        Array.from({ length: n }, (_, i) => ({ eventType: 'test.count', customerId: 'cust_l', value: offset + i }));
      await captureBatch(l, mk(1000, 0));
      await captureBatch(l, mk(200, 1000));

      const d = await get(l, '/events');
      assert.equal(d.status, 200);
      assert.equal(d.body.length, 100);
      assert.ok(nextCursor(d), 'a page that is not the last carries X-Next-Cursor');

      const five = await get(l, '/events?limit=5');
      assert.equal(five.body.length, 5);

      const max = await get(l, '/events?limit=1000');
      assert.equal(max.body.length, 1000);
      const capped = await get(l, '/events?limit=5000');
      assert.equal(capped.status, 200);
      assert.equal(capped.body.length, 1000);
      assert.ok(nextCursor(capped));

      const all = await get(l, '/events?limit=1000000');
      assert.equal(all.status, 200);
      assert.equal(all.body.length, 1000);

      for (const v of ['0', 'abc', '-1', '1.5', '10abc']) {
        const r = await get(l, `/events?limit=${v}`);
        assertJsonError(r, 400);
      }
    } finally {
      await l.close();
    }
  });

  it('cursor paging visits every event exactly once, in the unpaged order, even as newer events arrive', async () => {
    const p = await buildTestApp();
    try {
      // 25 events spread over the past hours, some sharing a timestamp.
      for (let i = 0; i < 25; i++) {
        const ts = new Date(Date.parse('2026-01-12T05:00:00Z') + Math.floor(i / 3) * 60_000).toISOString();
        await capture(p, 'api.calls', { customerId: 'cust_p', value: i, timestamp: ts, id: `p-${i}` });
      }
      const expected = (await get(p, '/events?customerId=cust_p&limit=1000')).body.map((e: Json) => e.value);
      assert.equal(expected.length, 25);

      let fresh = 0;
      const seen = await walk(p, '/events?customerId=cust_p&limit=7', async () => {
        // Between pages: events that are newer than anything paged so far, both "now" and at the
        // newest existing timestamp (a later arrival sorts before it).
        p.clock.advance(1000);
        await capture(p, 'api.calls', { customerId: 'cust_p', value: 1000 + fresh++ });
        await capture(p, 'api.calls', { customerId: 'cust_p', value: 1000 + fresh++, timestamp: '2026-01-12T05:08:00Z' });
      });
      assert.ok(fresh >= 6, 'new events arrived between at least three page pairs');
      assert.deepEqual(seen.map((e: Json) => e.value), expected);
      assert.equal(new Set(seen.map((e: Json) => e.id)).size, 25, 'no event twice');

      // The new events are there for a walk that starts afterwards.
      const again = await walk(p, '/events?customerId=cust_p&limit=7');
      assert.equal(again.length, 25 + fresh);
    } finally {
      await p.close();
    }
  });

  it('the last page has no X-Next-Cursor; filters apply on every page', async () => {
    const first = await get(t, '/events?customerId=cust_a&limit=2');
    assert.equal(first.body.length, 2);
    const c = nextCursor(first);
    assert.ok(c);
    const second = await get(t, `/events?customerId=cust_a&limit=2&cursor=${encodeURIComponent(c)}`);
    assert.equal(second.status, 200);
    assert.deepEqual(second.body.map((e: Json) => e.value), [1]);
    assert.equal(nextCursor(second), undefined);
  });

  it('a tampered or foreign cursor is a 400', async () => {
    const first = await get(t, '/events?limit=1');
    const c = nextCursor(first);
    assert.ok(c);
    const tampered = [
      c.slice(0, Math.floor(c.length / 2)),
      `zz${c}`,
      'not-a-cursor',
      Buffer.from('["x","y"]').toString('base64url'),
      Buffer.from('{}').toString('base64url'),
      Buffer.from('[1]').toString('base64url'),
      Buffer.from('[1,2,3]').toString('base64url'),
    ];
    for (const bad of tampered) {
      const r = await get(t, `/events?limit=1&cursor=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400, `cursor ${bad} → ${r.status} ${JSON.stringify(r.body)}`);
      assertJsonError(r);
    }
  });

  it('requires the API key (x-apikey or Bearer)', async () => {
    const none = await get(t, '/events', {});
    assertJsonError(none, 401);
    const wrong = await get(t, '/events', { 'x-apikey': 'mh_wrong' });
    assertJsonError(wrong, 401);
    const bearer = await get(t, '/events?limit=1', { authorization: `Bearer ${TEST_KEY}` });
    assert.equal(bearer.status, 200);
  });
});

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
    // cust_b: hours 10 and 2025-12-31 23; days 12th and 31st; weeks 3 and 202601 (Dec 31 2025 is in ISO week 1 of 2026); months 202601 and 202512 = 8.
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
    assert.deepEqual(seen.map((a: Json) => a._id), all.map((a: Json) => a._id));
    const filtered = await walk(t, '/aggregations?customerId=cust_a&limit=2');
    assert.deepEqual(
      filtered.map((a: Json) => a._id),
      all.filter((a: Json) => a.customerId === 'cust_a').map((a: Json) => a._id),
    );
  });

  it('bad period, periodKey, final, limit or cursor values are 400', async () => {
    for (const q of ['period=annual', 'period=Daily', 'period=', 'final=maybe', 'limit=0', 'limit=abc', 'periodKey=2026-01', 'cursor=not-a-cursor']) {
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
      await captureBatch(many, Array.from({ length: 120 }, (_, i) => ({ eventType: 'api.calls', customerId: `c${i}`, value: 1 })));
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

describe('service routes', () => {
  let t: TestApp;
  const SECRET = 'whsec_supersecretvalue1234';
  before(async () => {
    t = await buildTestApp({
      config: {
        ...REFERENCE_CONFIG,
        _comment: 'unknown keys are ignored',
        webhooks: [{ url: 'https://billing.example/h', secret: SECRET, enabled: false }],
      },
    });
  });
  after(async () => t?.close());

  it('GET / describes the service and lists every route, the trigger included', async () => {
    const r = await get(t, '/');
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'ok');
    assert.equal(typeof r.body.service, 'string');
    assert.equal(typeof r.body.version, 'string');
    assert.equal(typeof r.body.description, 'string');
    assert.ok(Array.isArray(r.body.features) && r.body.features.length > 0);
    const routes = Object.keys(r.body.endpoints);
    for (const route of [
      'GET /ping', 'GET /config', 'POST /usage/:eventType', 'POST /usagebatch', 'GET /events',
      'GET /aggregations', 'POST /aggregations/trigger', 'GET /customers/:customerId/usage',
    ]) {
      assert.ok(routes.includes(route), `${route} listed in ${JSON.stringify(routes)}`);
    }
  });

  it('GET /ping answers ok with the server time', async () => {
    const r = await get(t, '/ping');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ok', timestamp: '2026-01-12T10:30:00.000Z' });
    t.clock.advance(60_000);
    assert.equal((await get(t, '/ping')).body.timestamp, '2026-01-12T10:31:00.000Z');
  });

  it('GET /config returns the effective configuration with webhook secrets redacted', async () => {
    const raw = await t.app.inject({ method: 'GET', url: '/config', headers: t.headers });
    assert.equal(raw.statusCode, 200);
    assert.ok(!raw.body.includes(SECRET), 'the secret is not in the body');
    assert.ok(!raw.body.includes('supersecretvalue'), 'no part of the secret beyond its tail is in the body');
    const cfg = raw.json();
    assert.equal(cfg.events['api.calls'].op, 'sum');
    assert.equal(cfg.events['test.last'].op, 'last');
    assert.deepEqual(cfg.periods, ['hourly', 'daily', 'weekly', 'monthly']);
    assert.equal(cfg.webhooks.length, 1);
    assert.equal(cfg.webhooks[0].url, 'https://billing.example/h');
    assert.equal(cfg.webhooks[0].secret, 'whsec_…1234');
    assert.equal(cfg.webhooks[0].enabled, false);
  });

  it('GET /healthz and GET /readyz answer without an API key', async () => {
    const h = await get(t, '/healthz', {});
    assert.equal(h.status, 200);
    assert.equal(h.body.status, 'ok');
    const r = await get(t, '/readyz', {});
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'ready');
    // Every other route needs a key.
    assertJsonError(await get(t, '/ping', {}), 401);
    assertJsonError(await get(t, '/config', {}), 401);
  });

  it('GET /readyz is 503 when the store cannot answer', async () => {
    const broken = await buildTestApp();
    await broken.store.close();
    try {
      const r = await get(broken, '/readyz', {});
      assert.equal(r.status, 503);
      assert.equal(r.body.status, 'not_ready');
    } finally {
      await broken.close();
    }
  });
});
