// Customer portal keys: a key confined to one customer calls only the routes that opt in (x-meterhook-customer-keys),
// every other one answering 403; on those routes it sees only its customer (another customer, existing or not, is the
// same 404; lists are filtered to it) and stores only for its customer (a request with any event for another customer
// is refused 403 on every capture surface, the vendor drop-ins and Stripe's session stream included, storing nothing).
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { buildTestApp, TEST_KEY, type TestApp } from '../helpers/app.js';

const OWN = 'cust_own';
const OTHER = 'cust_other';
const admin = { 'x-apikey': TEST_KEY };

/** Every route a customer key may call, and a request of it reaching the handler for the key's own customer. */
const CUSTOMER_ROUTES: Record<string, { url: string; payload?: unknown; form?: boolean; status: number }> = {
  'GET /ping': { url: '/ping', status: 200 },
  'GET /session': { url: '/session', status: 200 },
  'GET /events': { url: '/events', status: 200 },
  'GET /aggregations': { url: '/aggregations', status: 200 },
  'GET /customers': { url: '/customers', status: 200 },
  'GET /customers/:customerId/usage': { url: `/customers/${OWN}/usage`, status: 200 },
  'GET /customers/:customerId/usage/series': { url: `/customers/${OWN}/usage/series`, status: 200 },
  'POST /usage/:eventType': { url: '/usage/api.calls', payload: { customerId: OWN, value: 1 }, status: 201 },
  'POST /usagebatch': { url: '/usagebatch', payload: [{ eventType: 'api.calls', customerId: OWN, value: 1 }], status: 201 },
  'POST /v1/billing/meter_events': {
    url: '/v1/billing/meter_events',
    payload: `event_name=api.calls&payload[stripe_customer_id]=${OWN}&payload[value]=1&identifier=own-v1`,
    form: true,
    status: 200,
  },
  'POST /v2/billing/meter_events': {
    url: '/v2/billing/meter_events',
    payload: { event_name: 'api.calls', payload: { stripe_customer_id: OWN, value: '1' } },
    status: 200,
  },
  'POST /v2/billing/meter_event_session': { url: '/v2/billing/meter_event_session', status: 200 },
  'POST /v2/billing/meter_event_stream': {
    url: '/v2/billing/meter_event_stream',
    payload: { events: [{ event_name: 'api.calls', payload: { stripe_customer_id: OWN, value: '1' } }] },
    status: 200,
  },
  'POST /compat/openmeter/api/v1/events': {
    url: '/compat/openmeter/api/v1/events',
    payload: [{ id: 'own-om', source: 's', type: 'api.calls', subject: OWN, data: { value: 1 } }],
    status: 204,
  },
  'POST /compat/lago/api/v1/events': {
    url: '/compat/lago/api/v1/events',
    payload: { event: { transaction_id: 'own-lg', external_customer_id: OWN, code: 'api.calls', properties: { value: 1 } } },
    status: 200,
  },
  'POST /compat/lago/api/v1/events/batch': {
    url: '/compat/lago/api/v1/events/batch',
    payload: { events: [{ transaction_id: 'own-lgb', external_customer_id: OWN, code: 'api.calls', properties: { value: 1 } }] },
    status: 200,
  },
  'POST /compat/orb/v1/ingest': {
    url: '/compat/orb/v1/ingest',
    payload: {
      events: [
        {
          idempotency_key: 'own-orb',
          external_customer_id: OWN,
          event_name: 'api.calls',
          timestamp: '2026-01-12T10:00:00Z',
          properties: { value: 1 },
        },
      ],
    },
    status: 200,
  },
  'POST /compat/metronome/v1/ingest': {
    url: '/compat/metronome/v1/ingest',
    payload: [
      { transaction_id: 'own-met', customer_id: OWN, event_type: 'api.calls', timestamp: '2026-01-12T10:00:00Z', properties: { value: 1 } },
    ],
    status: 200,
  },
};

/** The same capture surfaces, each with a request holding (also) an event for another customer. */
const lago = (c: string, id: string) => ({ transaction_id: id, external_customer_id: c, code: 'api.calls', properties: { value: 1 } });
const FOREIGN_CAPTURES: Record<string, { url: string; payload: unknown; form?: boolean; session?: boolean }> = {
  'POST /usage/:eventType': { url: '/usage/api.calls', payload: { customerId: OTHER, value: 1 } },
  'POST /usagebatch': {
    url: '/usagebatch',
    payload: [
      { eventType: 'api.calls', customerId: OWN, value: 1, id: 'f-b1' },
      { eventType: 'api.calls', customerId: OTHER, value: 1, id: 'f-b2' },
    ],
  },
  'POST /v1/billing/meter_events': {
    url: '/v1/billing/meter_events',
    payload: `event_name=api.calls&payload[stripe_customer_id]=${OTHER}&payload[value]=1&identifier=f-v1`,
    form: true,
  },
  'POST /v2/billing/meter_events': {
    url: '/v2/billing/meter_events',
    payload: { event_name: 'api.calls', identifier: 'f-v2', payload: { stripe_customer_id: OTHER, value: '1' } },
  },
  'POST /v2/billing/meter_event_stream': {
    url: '/v2/billing/meter_event_stream',
    session: true,
    payload: {
      events: [
        { event_name: 'api.calls', identifier: 'f-s1', payload: { stripe_customer_id: OWN, value: '1' } },
        { event_name: 'api.calls', identifier: 'f-s2', payload: { stripe_customer_id: OTHER, value: '1' } },
      ],
    },
  },
  'POST /compat/openmeter/api/v1/events': {
    url: '/compat/openmeter/api/v1/events',
    payload: [
      { id: 'f-om1', source: 's', type: 'api.calls', subject: OWN, data: { value: 1 } },
      { id: 'f-om2', source: 's', type: 'api.calls', subject: OTHER, data: { value: 1 } },
    ],
  },
  'POST /compat/lago/api/v1/events': { url: '/compat/lago/api/v1/events', payload: { event: lago(OTHER, 'f-lg') } },
  'POST /compat/lago/api/v1/events/batch': {
    url: '/compat/lago/api/v1/events/batch',
    payload: { events: [lago(OWN, 'f-lb1'), lago(OTHER, 'f-lb2')] },
  },
  'POST /compat/orb/v1/ingest': {
    url: '/compat/orb/v1/ingest',
    payload: {
      events: [OWN, OTHER].map((c, i) => ({
        idempotency_key: `f-orb${i}`,
        external_customer_id: c,
        event_name: 'api.calls',
        timestamp: '2026-01-12T10:00:00Z',
        properties: { value: 1 },
      })),
    },
  },
  'POST /compat/metronome/v1/ingest': {
    url: '/compat/metronome/v1/ingest',
    payload: [OWN, OTHER].map((c, i) => ({
      transaction_id: `f-met${i}`,
      customer_id: c,
      event_type: 'api.calls',
      timestamp: '2026-01-12T10:00:00Z',
      properties: { value: 1 },
    })),
  },
};

type Doc = { paths: Record<string, Record<string, { 'x-meterhook-scope'?: string; 'x-meterhook-customer-keys'?: boolean }>> };

describe('customer-restricted keys', () => {
  let t: TestApp;
  let key: string;
  let doc: Doc;
  const as = (k: string, extra: Record<string, string> = {}) => ({ 'x-apikey': k, ...extra });
  const request = (k: string, r: { url: string; payload?: unknown; form?: boolean }, method = 'POST'): InjectOptions => {
    if (r.payload === undefined) return { method: method as 'POST', url: r.url, headers: as(k) };
    const form = r.form === true;
    return {
      method: 'POST',
      url: r.url,
      headers: as(k, { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json' }),
      payload: form ? (r.payload as string) : JSON.stringify(r.payload),
    };
  };
  const allEvents = async () =>
    (await t.app.inject({ method: 'GET', url: '/events?limit=1000', headers: admin })).json() as Array<{ customerId: string; id: string }>;

  before(async () => {
    t = await buildTestApp();
    const seed = await t.app.inject({
      method: 'POST',
      url: '/usagebatch',
      headers: t.headers,
      payload: [OWN, OTHER].map((c) => ({ eventType: 'api.calls', customerId: c, value: 2, timestamp: '2026-01-12T09:10:00Z' })),
    });
    assert.equal(seed.statusCode, 201, seed.body);
    await closeDuePeriods(t.ctx);
    key = (await createApiKey(t.store, t.clock, 'portal', ['ingest', 'read'], { customerId: OWN })).key;
    await t.apiKeys.reload();
    doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as Doc;
  });
  after(() => t.close());

  const operations = () =>
    Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).map(([m, op]) => ({ route: `${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`, op })),
    );

  it('the table names exactly the routes flagged for customer keys in the OpenAPI document', () => {
    const flagged = operations()
      .filter((o) => o.op['x-meterhook-customer-keys'] === true)
      .map((o) => o.route);
    assert.deepEqual(flagged.sort(), Object.keys(CUSTOMER_ROUTES).sort());
  });

  it('a customer key reaches every flagged route for its own customer', async () => {
    const wrong: string[] = [];
    for (const [route, r] of Object.entries(CUSTOMER_ROUTES)) {
      let opts = request(key, r, route.split(' ')[0]);
      if (route === 'POST /v2/billing/meter_event_stream') {
        const s = (await t.app.inject(request(key, CUSTOMER_ROUTES['POST /v2/billing/meter_event_session']!))).json() as {
          authentication_token: string;
        };
        opts = { ...opts, headers: { 'content-type': 'application/json', authorization: `Bearer ${s.authentication_token}` } };
      }
      const res = await t.app.inject(opts);
      if (res.statusCode !== r.status) wrong.push(`${route}: ${res.statusCode} ${res.body.slice(0, 160)}`);
    }
    assert.deepEqual(wrong, []);
  });

  it('every route without the flag answers a customer key 403 forbidden', async () => {
    const wrong: string[] = [];
    for (const { route, op } of operations()) {
      if (op['x-meterhook-customer-keys'] === true || op['x-meterhook-scope'] === 'public') continue;
      const [method, pattern] = route.split(' ') as [string, string];
      const url = pattern.replace(/:(\w+)/g, 'x');
      const res = await t.app.inject({ method: method as 'GET', url, headers: as(key) });
      if (res.statusCode !== 403 || (res.json() as { code?: string }).code !== 'forbidden')
        wrong.push(`${route}: ${res.statusCode} ${res.body.slice(0, 120)}`);
    }
    assert.deepEqual(wrong, []);
  });

  it('another customer, existing or not, is the same 404 on every read that names a customer', async () => {
    const reads = [
      (c: string) => `/customers/${c}/usage`,
      (c: string) => `/customers/${c}/usage/series`,
      (c: string) => `/events?customerId=${c}`,
      (c: string) => `/aggregations?customerId=${c}`,
    ];
    const strip = (body: string) => ({ ...(JSON.parse(body) as Record<string, unknown>), requestId: undefined });
    for (const url of reads) {
      const existing = await t.app.inject({ method: 'GET', url: url(OTHER), headers: as(key) });
      const missing = await t.app.inject({ method: 'GET', url: url('nobody-at-all'), headers: as(key) });
      assert.equal(existing.statusCode, 404, `${url(OTHER)}: ${existing.body}`);
      assert.equal(missing.statusCode, 404, url('nobody-at-all'));
      assert.deepEqual(strip(existing.body), strip(missing.body), `${url(OTHER)}: no existence oracle`);
      assert.equal((await t.app.inject({ method: 'GET', url: url(OWN), headers: as(key) })).statusCode, 200, url(OWN));
    }
  });

  it('lists are filtered to the key’s customer', async () => {
    const events = (await t.app.inject({ method: 'GET', url: '/events', headers: as(key) })).json() as Array<{ customerId: string }>;
    assert.ok(events.length > 0 && events.every((e) => e.customerId === OWN));
    const aggs = (await t.app.inject({ method: 'GET', url: '/aggregations', headers: as(key) })).json() as Array<{ customerId: string }>;
    assert.ok(aggs.length > 0 && aggs.every((a) => a.customerId === OWN));
    const adminAggs = (await t.app.inject({ method: 'GET', url: '/aggregations', headers: admin })).json() as Array<{ customerId: string }>;
    assert.ok(
      adminAggs.some((a) => a.customerId === OTHER),
      'an unrestricted key sees the other customer',
    );
    const customers = (await t.app.inject({ method: 'GET', url: '/customers', headers: as(key) })).json() as Array<{ customerId: string }>;
    assert.deepEqual(
      customers.map((c) => c.customerId),
      [OWN],
    );
    const searched = (await t.app.inject({ method: 'GET', url: '/customers?search=cust_oth', headers: as(key) })).json();
    assert.deepEqual(searched, []);
  });

  it('a capture with any event for another customer is refused 403 on every surface and stores nothing', async () => {
    const before = await allEvents();
    const wrong: string[] = [];
    for (const [route, r] of Object.entries(FOREIGN_CAPTURES)) {
      let opts = request(key, r);
      if (r.session) {
        const s = (await t.app.inject(request(key, { url: '/v2/billing/meter_event_session' }))).json() as { authentication_token: string };
        opts = { ...opts, headers: { 'content-type': 'application/json', authorization: `Bearer ${s.authentication_token}` } };
      }
      const res = await t.app.inject(opts);
      if (res.statusCode !== 403) wrong.push(`${route}: ${res.statusCode} ${res.body.slice(0, 160)}`);
    }
    assert.deepEqual(wrong, []);
    const afterwards = await allEvents();
    assert.deepEqual(
      afterwards.map((e) => e.id),
      before.map((e) => e.id),
      'nothing of any refused request was stored',
    );
  });

  it('a customer key may not be created with the admin scope', async () => {
    await assert.rejects(createApiKey(t.store, t.clock, 'bad', ['admin'], { customerId: OWN }));
  });
});
