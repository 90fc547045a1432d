// POST /usage/:eventType against a real store: the reference's check order and exact messages,
// timestamps, size limits, and "a rejected request stores nothing" (ids and dedupe: capture-single-ids).
// store-contract: sqlite, postgres

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildTestApp, REFERENCE_CONFIG, TEST_KEY, type TestApp } from '../helpers/app.js';
import {
  TYPES_LIST,
  NOW,
  DAY,
  MINUTE,
  cid,
  post,
  eventsOf,
  usageOf,
  assertCaptured,
  rejected,
  invalid,
  invalidMatching,
  nested,
  type Usage,
} from '../helpers/capture-single.js';

describe('POST /usage/:eventType with no event types configured', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ config: { events: {} } });
  });
  after(() => t.close());

  it('answers 503 with the compat body for a valid event', async () => {
    const body = await rejected(t, 503, () => post(t, 'api.calls', { customerId: cid('noevents'), value: 1 }));
    assert.deepEqual(body, { error: 'Service misconfigured: no event types available' });
  });

  it('answers 503 before looking at the type or the body', async () => {
    for (const [type, payload] of [
      ['nope', { value: 'x' }],
      ['api.calls', '[1,2]'],
      ['constructor', 'null'],
    ] as const) {
      const body = await rejected(t, 503, () => post(t, type, payload));
      assert.deepEqual(body, { error: 'Service misconfigured: no event types available' }, `${type} ${JSON.stringify(payload)}`);
    }
  });
});

describe('POST /usage/:eventType lists types in config order', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({
      config: { events: { 'zeta.calls': { op: 'sum' }, 'alpha.calls': { op: 'max' }, 'mid.calls': { op: 'count' } } },
    });
  });
  after(() => t.close());

  it('names the configured types in file order, not sorted', async () => {
    const body = await rejected(t, 400, () => post(t, 'api.calls', { customerId: cid('order'), value: 1 }));
    assert.deepEqual(body, { error: 'Invalid event type: api.calls. Must be one of: zeta.calls, alpha.calls, mid.calls' });
  });

  it('captures a configured type', async () => {
    const c = cid('order_ok');
    assertCaptured(await post(t, 'alpha.calls', { customerId: c, value: 3 }), 'alpha.calls', c);
    assert.equal((await eventsOf(t, c)).length, 1);
  });
});

describe('POST /usage/:eventType accepts the longest type name the config allows', () => {
  const longType = `t${'x'.repeat(127)}`;
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ config: { events: { [longType]: { op: 'sum' } } } });
  });
  after(() => t.close());

  it('captures an event of a configured 128-character type', async () => {
    assert.equal(longType.length, 128);
    const c = cid('longtype');
    assertCaptured(await post(t, longType, { customerId: c, value: 2 }), longType, c);
    const docs = await eventsOf(t, c);
    assert.equal(docs.length, 1);
    assert.equal(docs[0]!.eventType, longType);
  });
});

describe('POST /usage/:eventType', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(() => t.close());

  describe('check order and compat error bodies', () => {
    it('400 for an unknown type, listing every configured type in order', async () => {
      const body = await rejected(t, 400, () => post(t, 'nope.calls', { customerId: cid('unknown'), value: 1 }));
      assert.deepEqual(body, { error: `Invalid event type: nope.calls. Must be one of: ${TYPES_LIST}` });
    });

    it('Object.prototype names are not event types', async () => {
      for (const type of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
        const body = await rejected(t, 400, () => post(t, type, { customerId: cid('proto'), value: 1 }));
        assert.deepEqual(body, { error: `Invalid event type: ${type}. Must be one of: ${TYPES_LIST}` });
      }
    });

    it('the type check comes before the body checks (400, not 422 or the body error)', async () => {
      for (const payload of [{ value: 'x' }, {}, '[1]', '"str"', 'null']) {
        const body = await rejected(t, 400, () => post(t, 'bogus', payload));
        assert.deepEqual(body, { error: `Invalid event type: bogus. Must be one of: ${TYPES_LIST}` }, JSON.stringify(payload));
      }
    });

    it('400 "Request body must be a JSON object" for non-object bodies', async () => {
      for (const payload of ['[]', '[{"customerId":"c","value":1}]', '"hello"', '42', '0', 'null', 'true', 'false']) {
        const body = await rejected(t, 400, () => post(t, 'api.calls', payload));
        assert.deepEqual(body, { error: 'Request body must be a JSON object' }, payload);
      }
    });

    it('400 "Request body must be a JSON object" for an empty body with a JSON content type', async () => {
      const body = await rejected(t, 400, () => t.app.inject({ method: 'POST', url: '/usage/api.calls', headers: t.headers }));
      assert.deepEqual(body, { error: 'Request body must be a JSON object' });
      const body2 = await rejected(t, 400, () => post(t, 'api.calls', ''));
      assert.deepEqual(body2, { error: 'Request body must be a JSON object' });
    });

    it('the body-shape check comes before field checks', async () => {
      const body = await rejected(t, 400, () => post(t, 'api.calls', '[{"value":"x"}]'));
      assert.deepEqual(body, { error: 'Request body must be a JSON object' });
    });
  });

  describe('422 field errors (all collected, exact messages)', () => {
    it('customerId and value missing', async () => {
      await invalid(t, {}, ['customerId is required', 'value is required']);
    });

    it('customerId and value null', async () => {
      await invalid(t, { customerId: null, value: null }, ['customerId is required', 'value is required']);
    });

    it('customerId empty string', async () => {
      await invalid(t, { customerId: '', value: 1 }, ['customerId is required']);
    });

    it('customerId not a string', async () => {
      for (const customerId of [42, true, { id: 'x' }, ['a']]) {
        await invalid(t, { customerId, value: 1 }, ['customerId must be a string']);
      }
    });

    it('value missing with a valid customerId', async () => {
      await invalid(t, { customerId: cid('novalue') }, ['value is required']);
    });

    it('value not a finite number: numeric strings, booleans, objects, arrays', async () => {
      for (const value of ['5', '0', '', true, false, { n: 1 }, [1]]) {
        await invalid(t, { customerId: cid('badvalue'), value }, ['value must be a finite number']);
      }
    });

    it('1e400 in raw JSON parses to Infinity and is rejected', async () => {
      for (const raw of ['1e400', '-1e400']) {
        const c = cid('inf');
        const body = await rejected(t, 422, () => post(t, 'api.calls', `{"customerId":"${c}","value":${raw}}`));
        assert.deepEqual(body, { error: 'Validation failed', details: ['value must be a finite number'] });
      }
    });

    it('metadata not an object', async () => {
      for (const metadata of [[], [{ a: 1 }], 'str', 5, true]) {
        await invalid(t, { customerId: cid('badmeta'), value: 1, metadata }, ['metadata must be an object if provided']);
      }
    });

    it('collects every field error in one answer', async () => {
      await invalid(t, { customerId: 7, value: '5', metadata: [] }, [
        'customerId must be a string',
        'value must be a finite number',
        'metadata must be an object if provided',
      ]);
      await invalid(t, { metadata: 'x' }, ['customerId is required', 'value is required', 'metadata must be an object if provided']);
    });
  });

  describe('accepted values', () => {
    it('negative, zero and fractional values are stored as sent', async () => {
      const c = cid('values');
      for (const value of [-3.5, 0, 0.25, 1e-9, -0.5]) {
        const res = await post(t, 'api.calls', { customerId: c, value });
        assertCaptured(res, 'api.calls', c);
      }
      const docs = await eventsOf(t, c);
      assert.deepEqual(
        docs.map((d) => d.value).sort((a, b) => a - b),
        [-3.5, -0.5, 0, 1e-9, 0.25],
      );
      const usage = await usageOf(t, c);
      assert.equal(usage.eventCounts['api.calls'], 5);
      assert.ok(Math.abs(usage.events['api.calls']! - (-3.5 + 0 + 0.25 + 1e-9 - 0.5)) < 1e-12);
    });

    it('stores metadata and echoes eventType and customerId', async () => {
      const c = cid('meta');
      assertCaptured(
        await post(t, 'storage.bytes', { customerId: c, value: 10, metadata: { region: 'eu', n: [1, 2] } }),
        'storage.bytes',
        c,
      );
      const [doc] = await eventsOf(t, c);
      assert.equal(doc!.eventType, 'storage.bytes');
      assert.equal(doc!.customerId, c);
      assert.deepEqual(doc!.metadata, { region: 'eu', n: [1, 2] });
    });

    it('application/json; charset=utf-8 is accepted', async () => {
      const c = cid('charset');
      const res = await post(t, 'api.calls', { customerId: c, value: 1 }, { 'content-type': 'application/json; charset=utf-8' });
      assertCaptured(res, 'api.calls', c);
      assert.equal((await eventsOf(t, c)).length, 1);
    });

    it('metadata: null counts as not provided', async () => {
      const c = cid('nullmeta');
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, metadata: null }), 'api.calls', c);
    });
  });

  describe('timestamps', () => {
    it('an ISO timestamp with an offset sets the event time; period keys follow it', async () => {
      const c = cid('ts_offset');
      const res = await post(t, 'api.calls', { customerId: c, value: 1, timestamp: '2026-01-12T09:00:00+02:00' });
      assertCaptured(res, 'api.calls', c);
      const [doc] = await eventsOf(t, c);
      assert.equal(doc!.timestamp, '2026-01-12T07:00:00.000Z');
      assert.equal(doc!.receivedAt, '2026-01-12T10:30:00.000Z');
      assert.equal(doc!.minute, '202601120700');
      assert.equal(doc!.hour, '2026011207');
      assert.equal(doc!.day, '20260112');
      assert.equal(doc!.week, '202603');
      assert.equal(doc!.month, '202601');
      assert.equal(doc!.year, '2026');
    });

    it('epoch milliseconds set the event time; keys come from event time, not receive time', async () => {
      const c = cid('ts_epoch');
      const at = Date.parse('2025-12-20T05:42:00Z');
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 4, timestamp: at }), 'api.calls', c);
      const [doc] = await eventsOf(t, c);
      assert.equal(doc!.timestamp, '2025-12-20T05:42:00.000Z');
      assert.equal(doc!.receivedAt, '2026-01-12T10:30:00.000Z');
      assert.deepEqual(
        { minute: doc!.minute, hour: doc!.hour, day: doc!.day, week: doc!.week, month: doc!.month, year: doc!.year },
        { minute: '202512200542', hour: '2025122005', day: '20251220', week: '202551', month: '202512', year: '2025' },
      );
      // The usage of that day has it; today's does not.
      const res = await t.app.inject({
        method: 'GET',
        url: `/customers/${c}/usage?period=daily&at=2025-12-20T12:00:00Z`,
        headers: t.headers,
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((res.json() as Usage).events['api.calls'], 4);
      assert.deepEqual((await usageOf(t, c)).events, {});
    });

    it('without a timestamp the event time is the receive time', async () => {
      const c = cid('ts_none');
      await post(t, 'api.calls', { customerId: c, value: 1 });
      const [doc] = await eventsOf(t, c);
      assert.equal(doc!.timestamp, '2026-01-12T10:30:00.000Z');
      assert.equal(doc!.hour, '2026011210');
    });

    it('malformed or impossible timestamps → 422 with a timestamp message', async () => {
      const bad: unknown[] = [
        'yesterday',
        '2026-02-30T00:00:00Z',
        '2026-01-12T10:00:00',
        '2026-01-12T24:00:00Z',
        '2026-13-01T00:00:00Z',
        '',
        1.5,
        -1,
        true,
        { at: 1 },
      ];
      for (const timestamp of bad) {
        await invalidMatching(t, { customerId: cid('ts_bad'), value: 1, timestamp }, /timestamp/);
      }
    });

    it('older than maxEventAge (35d) → 422 mentioning the maximum event age; exactly 35d is accepted', async () => {
      const c = cid('ts_old');
      const limit = NOW - 35 * DAY;
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, timestamp: new Date(limit).toISOString() }), 'api.calls', c);
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, timestamp: limit }), 'api.calls', c);
      await invalidMatching(t, { customerId: c, value: 1, timestamp: limit - 1 }, /maximum event age/);
      await invalidMatching(t, { customerId: c, value: 1, timestamp: '2025-11-01T00:00:00Z' }, /maximum event age/);
      assert.equal((await eventsOf(t, c)).length, 2);
    });

    it('more than maxFutureSkew (5m) ahead → 422 mentioning the future; exactly 5m is accepted', async () => {
      const c = cid('ts_future');
      const limit = NOW + 5 * MINUTE;
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, timestamp: new Date(limit).toISOString() }), 'api.calls', c);
      await invalidMatching(t, { customerId: c, value: 1, timestamp: limit + 1 }, /future/);
      await invalidMatching(t, { customerId: c, value: 1, timestamp: '2026-01-13T00:00:00Z' }, /future/);
      assert.equal((await eventsOf(t, c)).length, 1);
    });

    it('a timestamp error is collected with the other field errors', async () => {
      const body = await rejected(t, 422, () => post(t, 'api.calls', { value: 'x', timestamp: 'yesterday' }));
      const details = body.details as string[];
      assert.deepEqual(details.slice(0, 2), ['customerId is required', 'value must be a finite number']);
      assert.equal(details.length, 3);
      assert.match(details[2]!, /timestamp/);
    });
  });

  describe('size limits and framing', () => {
    it('customerId of 256 characters is accepted, 257 → 422', async () => {
      const ok = `c${'x'.repeat(255)}`;
      assertCaptured(await post(t, 'api.calls', { customerId: ok, value: 1 }), 'api.calls', ok);
      assert.equal((await eventsOf(t, ok)).length, 1);
      await invalidMatching(t, { customerId: `d${'x'.repeat(256)}`, value: 1 }, /customerId/);
    });

    it("a 256-character customer's usage can be read back", async () => {
      const c = `u${'y'.repeat(255)}`;
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 6 }), 'api.calls', c);
      const usage = await usageOf(t, c);
      assert.equal(usage.events['api.calls'], 6);
    });

    it('metadata nested 5 levels is accepted, 6 → 422', async () => {
      const c = cid('depth');
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, metadata: nested(5) }), 'api.calls', c);
      const [doc] = await eventsOf(t, c);
      assert.deepEqual(doc!.metadata, nested(5));
      await invalidMatching(t, { customerId: c, value: 1, metadata: nested(6) }, /metadata/);
      await invalidMatching(t, { customerId: c, value: 1, metadata: { a: [[[[[1]]]]] } }, /metadata/);
    });

    it('metadata of 8192 serialized bytes is accepted, 8193 → 422 (bytes, not characters)', async () => {
      const c = cid('metasize');
      // {"s":"…"} is 8 bytes plus the string.
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, metadata: { s: 'x'.repeat(8184) } }), 'api.calls', c);
      await invalidMatching(t, { customerId: c, value: 1, metadata: { s: 'x'.repeat(8185) } }, /metadata/);
      // 5000 characters, 10000 UTF-8 bytes.
      await invalidMatching(t, { customerId: c, value: 1, metadata: { s: 'é'.repeat(5000) } }, /metadata/);
      assert.equal((await eventsOf(t, c)).length, 1);
    });

    it('a body over 64 KiB → 413 JSON', async () => {
      const payload = JSON.stringify({ customerId: cid('big'), value: 1, pad: 'x'.repeat(65 * 1024) });
      assert.ok(Buffer.byteLength(payload) > 64 * 1024);
      await rejected(t, 413, () => post(t, 'api.calls', payload));
    });

    it('malformed JSON → 400 JSON', async () => {
      for (const payload of ['{"customerId":', '{customerId: "a", value: 1}', "{'a':1}", '{"a":1}}', 'undefined']) {
        const body = await rejected(t, 400, () => post(t, 'api.calls', payload));
        assert.notEqual(body.error, 'Request body must be a JSON object', payload);
      }
    });

    it('text/plain and form-encoded bodies → 415 JSON', async () => {
      const c = cid('media');
      const valid = JSON.stringify({ customerId: c, value: 1 });
      for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
        await rejected(t, 415, () =>
          post(t, 'api.calls', ct.startsWith('application/x-www') ? `customerId=${c}&value=1` : valid, { 'content-type': ct }),
        );
      }
      assert.equal((await eventsOf(t, c)).length, 0);
    });

    it('every rejection carries a JSON content type and the request id', async () => {
      const res = await post(t, 'nope', {});
      assert.equal(res.statusCode, 400);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      assert.ok(res.headers['x-request-id']);
      assert.ok(!res.body.includes(TEST_KEY));
    });
  });

  it('the reference example config is what this suite runs against', () => {
    assert.deepEqual(Object.keys(REFERENCE_CONFIG.events).join(', '), TYPES_LIST);
    assert.deepEqual(t.config.eventTypes.join(', '), TYPES_LIST);
  });
});
