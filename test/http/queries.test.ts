// The read side of the HTTP contract for GET /events, in-process against a real store: ordering, fields,
// filters, from/to instants, limits and cursor paging. See /work/shared/spec/reference-api.md.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TEST_KEY, buildTestApp, type TestApp } from '../helpers/app.js';
import { ISO_RE, assertJsonError, capture, captureBatch, get, nextCursor, walk, type Json } from '../helpers/queries.js';

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
    assert.deepEqual(
      a.body.map((e: Json) => e.value),
      [3, 2, 1],
    );
    assert.ok(a.body.every((e: Json) => e.customerId === 'cust_a'));

    const s = await get(t, '/events?eventType=storage.bytes');
    assert.deepEqual(
      s.body.map((e: Json) => e.value),
      [20, 10],
    );

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
    assert.deepEqual(
      await values(`from=${encodeURIComponent('2026-01-12T10:00:00+01:00')}&to=${encodeURIComponent('2026-01-12T10:00:00+01:00')}`),
      [2],
    );
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
      assert.deepEqual(
        seen.map((e: Json) => e.value),
        expected,
      );
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
    assert.deepEqual(
      second.body.map((e: Json) => e.value),
      [1],
    );
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
