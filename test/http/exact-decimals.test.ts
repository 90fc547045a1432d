// Billing-grade numbers over HTTP, on both stores: totals are exact decimals whatever the batching,
// values beyond the documented limits get a clear 422 with nothing stored, and inputs that used to
// break the store (±1e308) leave every route working.
// store-contract: sqlite, postgres
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';

let t: TestApp;
before(async () => {
  t = await buildTestApp({ now: '2026-01-12T10:30:00Z' });
});
after(async () => {
  await t.close();
});

const AT = '2026-01-12T10:00:00Z';
const ev = (customerId: string, value: number, eventType = 'api.calls', timestamp = AT) => ({ eventType, customerId, value, timestamp });

async function batch(events: unknown[]) {
  return t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: JSON.stringify(events) });
}
async function single(type: string, body: unknown) {
  return t.app.inject({ method: 'POST', url: `/usage/${type}`, headers: t.headers, payload: JSON.stringify(body) });
}
async function usage(customerId: string, period = 'daily') {
  const r = await t.app.inject({ method: 'GET', url: `/customers/${customerId}/usage?period=${period}&at=${AT}`, headers: t.headers });
  assert.equal(r.statusCode, 200, r.body);
  return r.json() as { events: Record<string, number>; eventsDecimal: Record<string, string>; eventCounts: Record<string, number> };
}

describe('totals are exact decimals', () => {
  it('ten events of 0.1 make exactly 1, in one batch or in two', async () => {
    assert.equal((await batch(Array.from({ length: 10 }, () => ev('one-batch', 0.1)))).statusCode, 201);
    assert.equal((await batch(Array.from({ length: 4 }, () => ev('two-batches', 0.1)))).statusCode, 201);
    assert.equal((await batch(Array.from({ length: 6 }, () => ev('two-batches', 0.1)))).statusCode, 201);
    for (const c of ['one-batch', 'two-batches']) {
      const u = await usage(c);
      assert.equal(u.eventsDecimal['api.calls'], '1', c);
      assert.equal(u.events['api.calls'], 1, c);
      assert.equal(u.eventCounts['api.calls'], 10, c);
    }
  });

  it('0.1 + 0.2 is 0.3, and 1e14 + 1 + 1 keeps both ones', async () => {
    assert.equal((await single('api.calls', { customerId: 'tenths', value: 0.1, timestamp: AT })).statusCode, 201);
    assert.equal((await single('api.calls', { customerId: 'tenths', value: 0.2, timestamp: AT })).statusCode, 201);
    assert.deepEqual((await usage('tenths')).eventsDecimal, { 'api.calls': '0.3' });
    assert.equal((await usage('tenths')).events['api.calls'], 0.3);
    assert.equal((await batch([ev('big', 1e14), ev('big', 1), ev('big', 1)])).statusCode, 201);
    assert.deepEqual((await usage('big')).eventsDecimal, { 'api.calls': '100000000000002' });
  });

  it('totals grow past any single value without overflow', async () => {
    assert.equal((await batch(Array.from({ length: 1000 }, () => ev('huge', 999_999_999_999_999)))).statusCode, 201);
    assert.equal((await batch(Array.from({ length: 1000 }, () => ev('huge', 999_999_999_999_999)))).statusCode, 201);
    const u = await usage('huge');
    assert.equal(u.eventsDecimal['api.calls'], '1999999999999998000');
    assert.equal(u.events['api.calls'], 1999999999999998000);
  });

  it('avg is the exact sum over the count, rounded half away from zero at 12 places', async () => {
    assert.equal((await batch([1, 2, 2].map((v) => ev('avg', v, 'response.time.ms')))).statusCode, 201);
    assert.deepEqual((await usage('avg')).eventsDecimal, { 'response.time.ms': '1.666666666667' });
  });

  it('documents, the series and the webhook message carry the exact text beside the number', async () => {
    const r = await t.app.inject({ method: 'POST', url: '/aggregations/trigger', headers: t.headers });
    assert.ok(r.statusCode === 202 || r.statusCode === 200, r.body);
    const docs = await t.app.inject({ method: 'GET', url: '/aggregations?customerId=tenths&period=daily', headers: t.headers });
    const [doc] = docs.json() as Array<{ events: Record<string, number>; eventsDecimal: Record<string, string> }>;
    assert.deepEqual(doc!.eventsDecimal, { 'api.calls': '0.3' });
    assert.deepEqual(doc!.events, { 'api.calls': 0.3 });
    const s = await t.app.inject({
      method: 'GET',
      url: `/customers/tenths/usage/series?eventType=api.calls&bucket=day&from=${AT}&to=${AT}`,
      headers: t.headers,
    });
    assert.equal(s.statusCode, 200, s.body);
    assert.deepEqual((s.json() as { points: unknown[] }).points, [
      { t: '2026-01-12T00:00:00.000Z', value: 0.3, valueDecimal: '0.3', count: 2 },
    ]);
  });
});

describe('values beyond the limits get 422 and nothing is stored', () => {
  it('single events name the limit in details', async () => {
    const cases: Array<[number, RegExp]> = [
      [1e15, /less than 1e15/],
      [1e308, /less than 1e15/],
      [0.1 + 0.2, /at most 12 decimal places/],
      [1e-13, /at most 12 decimal places/],
      [12345678.123456789, /at most 15 significant digits/],
    ];
    for (const [value, msg] of cases) {
      const r = await single('api.calls', { customerId: 'limits', value, timestamp: AT });
      assert.equal(r.statusCode, 422, `${value}: ${r.body}`);
      const body = r.json() as { error: string; details: string[] };
      assert.equal(body.error, 'Validation failed');
      assert.ok(
        body.details.some((d) => msg.test(d)),
        `${value}: ${r.body}`,
      );
    }
    assert.deepEqual((await usage('limits')).eventCounts, {});
  });

  it('a batch with one value out of range stores none of it', async () => {
    const r = await batch([ev('limits-b', 1), ev('limits-b', -1e15), ev('limits-b', 2)]);
    assert.equal(r.statusCode, 422, r.body);
    assert.deepEqual((r.json() as { validationErrors: unknown }).validationErrors, [
      { index: 1, errors: ['value must be less than 1e15 in absolute value'] },
    ]);
    assert.deepEqual((await usage('limits-b')).eventCounts, {});
  });

  it('the ±1e308 sequence that used to break the store leaves every route working', async () => {
    const r1 = await batch([ev('extreme', 1e308), ev('extreme', 1e308)]);
    assert.equal(r1.statusCode, 422, r1.body);
    await usage('extreme');
    const r2 = await batch([ev('extreme', -1e308), ev('extreme', -1e308)]);
    assert.equal(r2.statusCode, 422, r2.body);
    const r3 = await single('api.calls', { customerId: 'extreme', value: 1e308, timestamp: AT });
    assert.equal(r3.statusCode, 422, r3.body);
    // Everything else keeps answering, for this customer and the others.
    assert.equal((await batch([ev('extreme', 4.25), ev('healthy', 1)])).statusCode, 201);
    assert.deepEqual((await usage('extreme')).eventsDecimal, { 'api.calls': '4.25' });
    for (const url of ['/customers', '/stats', '/customers/healthy/usage']) {
      const r = await t.app.inject({ method: 'GET', url, headers: t.headers });
      assert.equal(r.statusCode, 200, `${url}: ${r.body}`);
    }
    const trig = await t.app.inject({ method: 'POST', url: '/aggregations/trigger', headers: t.headers });
    assert.ok(trig.statusCode === 202 || trig.statusCode === 200, trig.body);
  });
});
