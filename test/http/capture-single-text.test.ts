// POST /usage/:eventType and well-formed text: lone UTF-16 surrogates anywhere in an event are refused
// with 422 and nothing stored, and absent, null and {} metadata are the same content for a retry.
// store-contract: sqlite, postgres

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { TYPES_LIST, NOW, cid, json, post, eventsOf, usageOf, assertCaptured, rejected, invalid } from '../helpers/capture-single.js';

describe('POST /usage/:eventType refuses lone UTF-16 surrogates', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(() => t.close());

  const LONE = 'must not contain lone UTF-16 surrogates';

  it('in the id: 422 every time, so a retry can never be counted twice', async () => {
    const c = cid('lone_id');
    for (const id of ['k\ud800', '\udfffk', 'a\ud83d']) {
      await invalid(t, { customerId: c, value: 1, id }, [`id ${LONE}`]);
      await invalid(t, { customerId: c, value: 1, id }, [`id ${LONE}`]);
    }
    assert.deepEqual((await usageOf(t, c)).events, {});
    // A surrogate pair is well-formed: stored as sent, and its retry is a duplicate.
    assertCaptured(await post(t, 'api.calls', { customerId: c, value: 2, id: 'k\ud83d\ude00' }), 'api.calls', c);
    const again = await post(t, 'api.calls', { customerId: c, value: 2, id: 'k\ud83d\ude00' });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(json(again).duplicate, true);
    const docs = await eventsOf(t, c);
    assert.deepEqual(
      docs.map((d) => d.id),
      ['k😀'],
    );
    assert.deepEqual((await usageOf(t, c)).eventCounts, { 'api.calls': 1 });
  });

  it('in the customerId: 422, and no customer is created under U+FFFD', async () => {
    const c = cid('lone_cust');
    await invalid(t, { customerId: `${c}\ud800`, value: 1 }, [`customerId ${LONE}`]);
    await invalid(t, { customerId: `${c}\udc00`, value: 1 }, [`customerId ${LONE}`]);
    assert.deepEqual((await usageOf(t, `${c}\ufffd`)).events, {});
    const list = await t.app.inject({ method: 'GET', url: `/customers?search=${encodeURIComponent(c)}`, headers: t.headers });
    assert.deepEqual(list.json(), []);
  });

  it('in metadata keys and values at any depth, strings inside arrays too; every field error is listed', async () => {
    const c = cid('lone_meta');
    await invalid(t, { customerId: c, value: 1, metadata: { 'k\ud800': 1 } }, [`metadata keys ${LONE} (in metadata)`]);
    await invalid(t, { customerId: c, value: 1, metadata: { a: { b: 'x\udc00' } } }, [`metadata values ${LONE} (at metadata.a.b)`]);
    await invalid(t, { customerId: c, value: 1, metadata: { list: ['ok', ['\ud800']] } }, [
      `metadata values ${LONE} (at metadata.list[1][0])`,
    ]);
    await invalid(t, { customerId: c, value: 1, metadata: { 'my key': [{ '\udbff': true }] } }, [
      `metadata keys ${LONE} (in metadata["my key"][0])`,
    ]);
    await invalid(t, { customerId: `${c}\ud800`, value: 'x', metadata: { a: '\ud800' }, id: '\ud800' }, [
      `customerId ${LONE}`,
      'value must be a finite number',
      `metadata values ${LONE} (at metadata.a)`,
      `id ${LONE}`,
    ]);
    assert.deepEqual((await usageOf(t, c)).events, {});
  });

  it('metadata with well-formed text that looks like an escape is stored exactly', async () => {
    const c = cid('meta_escape');
    const metadata = { note: '\\ud800 is not a character', emoji: ['\ud83d\ude00'], '\\udc00': 'key' };
    assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, metadata }), 'api.calls', c);
    assert.deepEqual((await eventsOf(t, c))[0]!.metadata, metadata);
  });

  it('in the path event type: a clear 4xx JSON, never a stored event', async () => {
    const c = cid('lone_path');
    for (const type of ['api.calls%ED%A0%80', '%ED%A0%80', 'api.calls%ED%A0', '%ED%B0%80api.calls']) {
      const body = await rejected(t, 400, () => post(t, type, { customerId: c, value: 1 }));
      assert.equal(body.code, 'invalid_url', type);
      assert.match(String(body.error), /not valid percent-encoded UTF-8/);
      assert.equal(typeof body.requestId, 'string');
    }
    // An escape that does decode (U+FFFD itself) names an unknown type with the reference body.
    const body = await rejected(t, 400, () => post(t, 'api.calls%EF%BF%BD', { customerId: c, value: 1 }));
    assert.deepEqual(body, { error: `Invalid event type: api.calls\ufffd. Must be one of: ${TYPES_LIST}` });
    assert.deepEqual((await usageOf(t, c)).events, {});
  });

  it('in an event type that reaches the service some other way: 422 naming eventType', async () => {
    const { captureOne } = await import('../../src/ingest/ingest-service.js');
    const { EventValidationFailed } = await import('../../src/domain/errors.js');
    const c = cid('lone_type');
    await assert.rejects(captureOne(t.ctx, 'api.calls\ud800', { customerId: c, value: 1 }), (err: unknown) => {
      assert.ok(err instanceof EventValidationFailed);
      assert.deepEqual(err.details, [`eventType ${LONE}`]);
      return true;
    });
    assert.deepEqual((await usageOf(t, c)).events, {});
  });

  it('GET filters that cannot be decoded are a 400, not a silent empty match', async () => {
    const c = cid('lone_query');
    assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1 }), 'api.calls', c);
    for (const url of [
      `/events?customerId=${c}%ED%A0%80`,
      '/events?eventType=api.calls%ED%A0%80',
      `/events?customerId=${c}&eventType=%ED`,
      `/customers?search=${c}%ED%A0%80`,
      `/aggregations?customerId=${c}%ED%B0%80`,
      `/customers/${c}/usage/series?eventType=api.calls%ED%A0%80`,
    ]) {
      const res = await t.app.inject({ method: 'GET', url, headers: t.headers });
      assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
      const body = json(res);
      assert.equal(body.code, 'invalid_query', url);
      assert.match(String(body.error), /^Query parameter (customerId|eventType|search) is not valid percent-encoded UTF-8/, url);
    }
    for (const url of [`/customers/${c}%ED%A0%80/usage`, `/customers/${c}%ED%A0%80/usage/series`]) {
      const res = await t.app.inject({ method: 'GET', url, headers: t.headers });
      assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
      assert.equal(json(res).code, 'invalid_url', url);
    }
    // Well-formed escapes still decode: '+' is a space, %2B a plus, an astral character stays one.
    const found = await t.app.inject({
      method: 'GET',
      url: `/events?customerId=${encodeURIComponent(c)}&eventType=api%2Ecalls`,
      headers: t.headers,
    });
    assert.equal(found.statusCode, 200, found.body);
    assert.equal((found.json() as unknown[]).length, 1);
    const astral = await t.app.inject({
      method: 'GET',
      url: `/customers?search=${encodeURIComponent('\ud83d\ude00')}`,
      headers: t.headers,
    });
    assert.equal(astral.statusCode, 200, astral.body);
    // A parameter the route does not read stays ignored, whatever it holds.
    const ignored = await t.app.inject({
      method: 'GET',
      url: `/events?customerId=${encodeURIComponent(c)}&other=%ED%A0%80`,
      headers: t.headers,
    });
    assert.equal(ignored.statusCode, 200, ignored.body);
    assert.equal((ignored.json() as unknown[]).length, 1);
    // Without an API key the answer is still 401 first.
    const anon = await t.app.inject({ method: 'GET', url: '/events?customerId=%ED%A0%80' });
    assert.equal(anon.statusCode, 401);
  });
});

describe('POST /usage/:eventType: absent, null and {} metadata are the same content', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(() => t.close());

  for (const [first, retry] of [
    [undefined, {}],
    [{}, undefined],
    [null, {}],
    [{}, null],
    [undefined, null],
  ] as const) {
    const name = `metadata ${JSON.stringify(first) ?? 'absent'}, then ${JSON.stringify(retry) ?? 'absent'} → 200 duplicate, counted once`;
    it(name, async () => {
      const c = cid('meta_same');
      const body = (m: unknown) => ({ customerId: c, value: 3, id: 'm1', ...(m === undefined ? {} : { metadata: m }) });
      assertCaptured(await post(t, 'api.calls', body(first)), 'api.calls', c);
      const again = await post(t, 'api.calls', body(retry));
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(json(again).duplicate, true);
      const docs = await eventsOf(t, c);
      assert.equal(docs.length, 1);
      assert.deepEqual(docs[0]!.metadata, {});
      assert.deepEqual((await usageOf(t, c)).eventCounts, { 'api.calls': 1 });
    });
  }

  it('{} is stored like absent metadata, and non-empty metadata still differs from none', async () => {
    const c = cid('meta_store');
    assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, id: 'e', metadata: {} }), 'api.calls', c);
    const stored = await t.ctx.store.listEvents({ customerId: c, limit: 10 });
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.metadata, null);
    await rejected(t, 409, () => post(t, 'api.calls', { customerId: c, value: 1, id: 'e', metadata: { a: 1 } }));
    assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, id: 'f', metadata: { a: {} } }), 'api.calls', c);
    await rejected(t, 409, () => post(t, 'api.calls', { customerId: c, value: 1, id: 'f', metadata: {} }));
    assert.deepEqual((await usageOf(t, c)).eventCounts, { 'api.calls': 2 });
  });

  it('an event stored with "{}" metadata (as earlier versions did) is the same content as none', async () => {
    const c = cid('meta_legacy');
    const [outcome] = await t.ctx.store.appendEvents(
      [
        {
          events: [{ customerId: c, eventType: 'api.calls', value: 4, metadata: '{}', ts: NOW, tsExplicit: false, id: 'old' }],
          receivedAt: NOW,
        },
      ],
      t.config.periods,
    );
    assert.ok(outcome?.ok);
    for (const m of [undefined, null, {}]) {
      const again = await post(t, 'api.calls', { customerId: c, value: 4, id: 'old', ...(m === undefined ? {} : { metadata: m }) });
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(json(again).duplicate, true);
    }
    assert.deepEqual((await usageOf(t, c)).events, { 'api.calls': 4 });
  });
});
