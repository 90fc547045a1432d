// Every response the in-process app sends, on every operation, is described by its route's schema for
// that status, and the schema-driven serializer sent exactly what the route built: the same bytes as
// JSON.stringify of the object handed to reply.send (no field dropped, coerced or reordered).
// store-contract: sqlite, postgres
// The serializer writes a schema's required fields first: a route listed in REORDERED has an optional
// field before a required one, and has always been sent in that order, so only its values are compared.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { Value } from 'typebox/value';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { ENDPOINTS } from '../../src/http/routes/meta.js';
import { buildTestApp, REFERENCE_CONFIG, TEST_KEY, type TestApp } from '../helpers/app.js';

interface Sent {
  /** Undefined when the answer is not JSON (text, an empty body). */
  json: string | undefined;
  status: number;
  route: string | undefined;
  responses: Record<string, unknown> | undefined;
}

type ReplyLike = {
  statusCode: number;
  getHeader(name: string): unknown;
  request: { id: string; method: string; routeOptions?: { url?: string; schema?: { response?: Record<string, unknown> } } };
};

/** What each request's reply was last given as an object, before serialization (by request id). */
const sent = new Map<string, Sent>();
const Reply = createRequire(import.meta.url)('fastify/lib/reply.js') as { prototype: { send(this: ReplyLike, payload: unknown): unknown } };
const originalSend = Reply.prototype.send;

function spyOnSend(): void {
  Reply.prototype.send = function send(this: ReplyLike, payload: unknown) {
    const isObject =
      payload !== null &&
      typeof payload === 'object' &&
      !(payload instanceof Error) &&
      !Buffer.isBuffer(payload) &&
      typeof (payload as { pipe?: unknown }).pipe !== 'function';
    // JSON sent as bytes keeps its content type exactly (OpenMeter's application/problem+json).
    const jsonBytes = Buffer.isBuffer(payload) && /json/.test(String(this.getHeader('content-type')));
    const ro = this.request.routeOptions;
    if (isObject || jsonBytes) {
      sent.set(this.request.id, {
        json: jsonBytes ? (payload as Buffer).toString() : JSON.stringify(payload),
        status: this.statusCode,
        route: ro?.url === undefined ? undefined : `${this.request.method} ${ro.url}`,
        responses: ro?.schema?.response,
      });
    } else if (ro?.url !== undefined && !sent.has(this.request.id)) {
      sent.set(this.request.id, {
        json: undefined,
        status: this.statusCode,
        route: `${this.request.method} ${ro.url}`,
        responses: ro.schema?.response,
      });
    }
    return originalSend.call(this, payload);
  };
}

const REORDERED: Record<string, string> = {
  'POST /usage/:eventType': 'the optional timestamp comes after duplicate, as it has since the route had a schema',
};

const PUBLIC = new Set(['GET /healthz', 'GET /readyz']);

const ENDPOINT = { id: 'billing', url: 'http://127.0.0.1:9/hooks', secret: 'whsec_Y29udHJhY3Qtc3VpdGUtc2VjcmV0LTEyMzQ1Ng==' };
const CONFIG = {
  ...REFERENCE_CONFIG,
  periods: ['hourly', 'daily'],
  webhooks: [ENDPOINT, { id: 'filtered', url: 'http://127.0.0.1:9/other', secret: 'plain-secret-value-123', periods: ['daily'] }],
  webhookDelivery: { allowCidrs: ['127.0.0.1/32'], retrySchedule: ['1s'] },
  maxBatchSize: 5,
};

describe('response contract', () => {
  let t: TestApp;
  /** Operations ("METHOD /route") answered 2xx at least once, and every status seen per operation. */
  const seen = new Map<string, Set<number>>();

  before(async () => {
    spyOnSend();
    t = await buildTestApp({ now: '2026-01-12T10:30:00Z', config: CONFIG, authThrottle: { failures: 3, windowMs: 60_000 } });
  });
  after(async () => {
    Reply.prototype.send = originalSend;
    await t.close();
  });

  /** Sends one request and checks its answer against the contract; returns the parsed body. */
  async function call(opts: InjectOptions & { key?: string | null }, expectStatus: number): Promise<unknown> {
    const { key, ...inject } = opts;
    const headers: Record<string, string> = { ...(inject.headers as Record<string, string> | undefined) };
    if (key !== null) headers['x-apikey'] = key ?? TEST_KEY;
    const isJson = inject.payload !== undefined && typeof inject.payload !== 'string';
    if (isJson && !headers['content-type']) headers['content-type'] = 'application/json';
    const res = await t.app.inject({ ...inject, headers });
    const what = `${inject.method} ${inject.url}`;
    assert.equal(res.statusCode, expectStatus, `${what}: ${res.body.slice(0, 300)}`);
    const id = String(res.headers['x-request-id']);
    const s = sent.get(id);
    if (!/^application\/(problem\+)?json/.test(String(res.headers['content-type']))) {
      assert.equal(s?.json, undefined, `${what}: a non-JSON answer was not built as an object`);
      if (s?.route !== undefined && res.body === '') {
        // An empty answer (204, Metronome's 200): its status is declared, and counts as checked.
        assert.ok(s.responses?.[String(res.statusCode)], `${s.route}: declares a response schema for ${res.statusCode}`);
        seen.set(s.route, (seen.get(s.route) ?? new Set<number>()).add(res.statusCode));
      }
      return res.body;
    }
    assert.ok(s?.json !== undefined, `${what}: the JSON answer went through reply.send`);
    const body = JSON.parse(res.body) as unknown;
    assert.deepEqual(body, JSON.parse(s.json!), `${what}: no field dropped or coerced`);
    if (s.route === undefined || !(s.route in REORDERED)) {
      assert.equal(res.body, s.json, `${what}: the serializer sent exactly JSON.stringify of the reply object`);
    }
    if (s.route !== undefined) {
      const schema = s.responses?.[String(res.statusCode)];
      assert.ok(schema, `${s.route}: declares a response schema for ${res.statusCode}`);
      const errors = [...Value.Errors(schema as never, body)].slice(0, 3);
      assert.deepEqual(errors, [], `${s.route} ${res.statusCode}: the body matches its schema`);
      const statuses = seen.get(s.route) ?? new Set<number>();
      statuses.add(res.statusCode);
      seen.set(s.route, statuses);
    }
    return body;
  }

  const get = (url: string, status = 200, key?: string | null) => call({ method: 'GET', url, key }, status);
  const post = (url: string, payload: unknown, status: number, headers: Record<string, string> = {}) =>
    call({ method: 'POST', url, payload: payload as InjectOptions['payload'], headers }, status);

  it('holds for the service routes, auth failures and unknown routes', async () => {
    await get('/');
    await get('/ping');
    await get('/healthz', 200, null);
    await get('/readyz', 200, null);
    await get('/config');
    await get('/ping', 401, null);
    await get('/ping', 401, 'not-the-key');
    await get('/no/such/route', 404);
    const metrics = await get('/metrics');
    assert.match(String(metrics), /meterhook_/);
  });

  it('holds for capture: stored, duplicate, conflicts and every reference-compatible refusal', async () => {
    await post('/aggregations/trigger', undefined, 200);
    const event = {
      customerId: 'c1',
      value: 1.5,
      id: 'e1',
      timestamp: '2026-01-12T08:10:00Z',
      metadata: { 'line\nbreak': 1, nested: { list: [1, null, 'x'] }, __proto__x: true },
    };
    await post('/usage/api.calls', event, 201);
    await post('/usage/api.calls', event, 200);
    await post('/usage/api.calls', { ...event, value: 2 }, 409);
    await post('/usage/api.calls', { customerId: 'c2', value: 3 }, 201);
    await post('/usage/no.such.type', { customerId: 'c1', value: 1 }, 400);
    await post('/usage/api.calls', [], 400);
    await post('/usage/api.calls', { customerId: '', value: 'x' }, 422);
    await post('/usage/api.calls', '{"customerId":', 400, { 'content-type': 'application/json' });
    await post('/usage/api.calls', 'customerId=c1', 415, { 'content-type': 'text/plain' });

    const batch = [
      { eventType: 'api.calls', customerId: 'c1', value: 2, timestamp: '2026-01-12T08:20:00Z', id: 'b1' },
      { eventType: 'storage.bytes', customerId: 'c3', value: 10, timestamp: '2026-01-12T09:05:00Z' },
    ];
    await post('/usagebatch', batch, 201, { 'idempotency-key': 'k1' });
    await post('/usagebatch', batch, 200, { 'idempotency-key': 'k1' });
    await post('/usagebatch', [batch[1]], 409, { 'idempotency-key': 'k1' });
    await post('/usagebatch', [{ ...batch[0], value: 9 }], 409);
    await post('/usagebatch', batch, 400, { 'idempotency-key': 'k\u00e9' });
    await post('/usagebatch', [], 400);
    await post('/usagebatch', { not: 'an array' }, 400);
    await post(
      '/usagebatch',
      Array.from({ length: 6 }, () => batch[1]),
      413,
    );
    await post('/usagebatch', [batch[1], { eventType: 'api.calls', value: 1 }, 7], 422);
  });

  it('holds for the read routes, their paging and their parameter errors', async () => {
    await post('/aggregations/trigger', undefined, 202);
    await closeDuePeriods(t.ctx);
    const events = (await get('/events?limit=2')) as unknown[];
    assert.equal(events.length, 2);
    await get('/events?customerId=c1&from=2026-01-12&to=2026-01-13T00:00:00Z');
    await get('/events?from=yesterday', 400);
    await get('/events?limit=0', 400);
    await get('/events?cursor=not-a-cursor', 400);
    const aggs = (await get('/aggregations')) as Array<{ final: boolean }>;
    assert.ok(aggs.some((a) => a.final) && aggs.some((a) => !a.final), 'final and provisional documents both checked');
    await get('/aggregations?period=daily&final=false&limit=1');
    await get('/aggregations?period=fortnightly', 400);
    await get('/customers/c1/usage');
    await get('/customers/c1/usage?period=hourly&at=2026-01-12T08:30:00Z');
    await get('/customers/c1/usage?at=2026-13-40', 400);
    await get('/customers?limit=1');
    await get('/customers?search=c');
    await get('/customers/c1/usage/series?bucket=hour');
    await get('/customers/c1/usage/series?eventType=storage.bytes&bucket=day');
    const refused = (await get('/customers/c1/usage/series?eventType=nope', 400)) as { allowed?: string[] };
    assert.ok(Array.isArray(refused.allowed));
    await get('/stats');
  });

  it('holds for the webhook operations', async () => {
    const deliveries = (await get('/webhooks/deliveries')) as Array<{ id: string }>;
    assert.ok(deliveries.length > 0, 'closing the hour created deliveries');
    const id = deliveries[0]!.id;
    await get('/webhooks/deliveries?status=pending&limit=1');
    await get('/webhooks/deliveries?status=lost', 400);
    await post(`/webhooks/deliveries/${id}/retry`, undefined, 200);
    const detail = (await get(`/webhooks/deliveries/${id}`)) as { attempts: unknown[] };
    assert.ok(detail.attempts.length > 0, 'a failed attempt (all nullable fields) was checked');
    await get('/webhooks/deliveries/no-such-delivery', 404);
    await post('/webhooks/deliveries/no-such-delivery/retry', undefined, 404);
    await post('/webhooks/recover', { since: '2026-01-01T00:00:00Z' }, 200);
    await post('/webhooks/recover', { since: Date.parse('2026-01-01T00:00:00Z') }, 200);
    await post('/webhooks/recover', {}, 400);
    await get('/webhooks/endpoints');
    await post('/webhooks/endpoints/billing/enable', undefined, 200);
    await post('/webhooks/endpoints/nope/enable', undefined, 404);
  });

  it('holds for the key management routes', async () => {
    const created = (await post(
      '/keys',
      { name: 'portal', scopes: ['read'], customerId: 'c1', rateLimit: { requestsPerSecond: 2, burst: 4 } },
      201,
    )) as {
      id: string;
    };
    await post('/keys', { name: 'bad', scopes: ['admin'], customerId: 'c1' }, 400);
    await post('/keys', { name: 'bad', scopes: [] }, 400);
    await get('/keys');
    await get(`/keys/${created.id}`);
    await get('/keys/key_nope', 404);
    await call({ method: 'DELETE', url: `/keys/${created.id}` }, 200);
    await call({ method: 'DELETE', url: '/keys/key_nope' }, 404);
  });

  it('holds for the session and the audit log', async () => {
    await get('/session');
    await get('/session', 401, null);
    const records = (await get('/audit?limit=1')) as unknown[];
    assert.equal(records.length, 1, 'the webhook operations above were recorded');
    await get('/audit?action=delivery.retry&keyId=env');
    await get('/audit?action=nope', 400);
  });

  it("holds for the drop-in vendor routes: stored, repeated and refused, each in its vendor's shape", async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const at = Date.parse('2026-01-12T10:00:00Z') / 1000;
    const v1 = `event_name=api.calls&payload[stripe_customer_id]=v1&payload[value]=2&identifier=s1&timestamp=${at}`;
    await post('/v1/billing/meter_events', v1, 200, form);
    await post('/v1/billing/meter_events', v1.replace('value]=2', 'value]=3'), 400, form);
    const v2 = { event_name: 'api.calls', payload: { stripe_customer_id: 'v2', value: '1' }, timestamp: '2026-01-12T10:00:00Z' };
    await post('/v2/billing/meter_events', v2, 200);
    await post('/v2/billing/meter_events', { ...v2, payload: {} }, 400);
    const session = (await post('/v2/billing/meter_event_session', undefined, 200)) as { authentication_token: string };
    const bearer = { authorization: `Bearer ${session.authentication_token}` };
    const stream = (payload: unknown, status: number) =>
      call(
        { method: 'POST', url: '/v2/billing/meter_event_stream', payload: payload as InjectOptions['payload'], headers: bearer, key: null },
        status,
      );
    await stream({ events: [v2, { ...v2, identifier: 'st1' }] }, 200);
    await stream({ events: [] }, 400);

    const cloud = { id: 'o1', source: 'svc', type: 'api.calls', subject: 'om', time: '2026-01-12T10:00:00Z', data: { value: 1 } };
    await post('/compat/openmeter/api/v1/events', [cloud], 204);
    await post('/compat/openmeter/api/v1/events', [{ ...cloud, data: { value: 2 } }], 409);
    await post('/compat/openmeter/api/v1/events', { ...cloud, subject: undefined }, 400);

    const lago = { transaction_id: 'l1', external_customer_id: 'lg', code: 'api.calls', properties: { value: 1 } };
    await post('/compat/lago/api/v1/events', { event: lago }, 200);
    await post('/compat/lago/api/v1/events', { event: { ...lago, properties: { value: 5 } } }, 422);
    await post('/compat/lago/api/v1/events/batch', { events: [lago, { ...lago, transaction_id: 'l2' }] }, 200);
    await post('/compat/lago/api/v1/events/batch', { events: [{ ...lago, code: 'nope' }] }, 422);

    const orb = {
      idempotency_key: 'b1',
      external_customer_id: 'orb',
      event_name: 'api.calls',
      timestamp: '2026-01-12T10:00:00Z',
      properties: { value: 1 },
    };
    await post('/compat/orb/v1/ingest', { events: [orb] }, 200);
    await post('/compat/orb/v1/ingest?debug=true', { events: [orb] }, 200);
    await post('/compat/orb/v1/ingest', { events: [orb, { ...orb, idempotency_key: 'b2', properties: {} }] }, 400);
    await post('/compat/orb/v1/ingest', { events: 'none' }, 400);

    const met = {
      transaction_id: 'm1',
      customer_id: 'met',
      event_type: 'api.calls',
      timestamp: '2026-01-12T10:00:00Z',
      properties: { value: 1 },
    };
    await post('/compat/metronome/v1/ingest', [met], 200);
    await post('/compat/metronome/v1/ingest', [{ ...met, properties: { value: 9 } }], 409);
    await post('/compat/metronome/v1/ingest', [{ ...met, properties: {} }], 400);
  });

  it('covered a 2xx and an error answer of every operation in ENDPOINTS', () => {
    for (const route of Object.keys(ENDPOINTS)) {
      if (route === 'GET /metrics') continue; // text, not JSON: its 200 is checked above
      const statuses = [...(seen.get(route) ?? [])];
      assert.ok(
        statuses.some((s) => s >= 200 && s < 300),
        `${route}: a 2xx was checked (saw ${statuses.join(', ')})`,
      );
    }
  });

  it('holds for a refused key and a throttled address on every operation that needs a key', async () => {
    const routes = Object.keys(ENDPOINTS).filter((r) => !PUBLIC.has(r));
    for (const [i, route] of routes.entries()) {
      const [method, path] = route.split(' ') as ['GET' | 'POST', string];
      // One failure per address, below the throttle.
      await call({ method, url: path.replace(/:(\w+)/g, 'sample'), key: 'not-the-key', remoteAddress: `192.0.2.${i + 1}` }, 401);
    }
    for (let i = 0; i < 3; i++) await call({ method: 'GET', url: '/ping', key: 'not-the-key', remoteAddress: '198.51.100.1' }, 401);
    for (const route of routes) {
      const [method, path] = route.split(' ') as ['GET' | 'POST', string];
      await call({ method, url: path.replace(/:(\w+)/g, 'sample'), remoteAddress: '198.51.100.1' }, 429);
    }
    for (const route of Object.keys(ENDPOINTS)) {
      const statuses = [...(seen.get(route) ?? [])];
      if (!PUBLIC.has(route))
        assert.ok(
          statuses.some((s) => s >= 400),
          `${route}: an error answer was checked`,
        );
    }
  });
});
