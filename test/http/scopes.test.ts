// The route × scope matrix: every operation of the OpenAPI document needs the scope this table names
// (the README's table), and a stored key of each scope set reaches exactly the routes its scopes grant,
// every other one answering 403 forbidden before the body is read, so a refused capture stores nothing.
// Keys from the environment are admin keys.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiKey } from '../../src/auth/api-keys.js';
import { grants, type RouteScope, type Scope } from '../../src/domain/scopes.js';
import { buildTestApp, TEST_KEY, type TestApp } from '../helpers/app.js';
import { SAMPLE_CONFIG, seedDelivery, validRequest } from '../helpers/route-samples.js';

/** What each operation needs; a change here is a change of the documented contract. */
const MATRIX: Record<string, RouteScope> = {
  'GET /': 'any',
  'GET /ping': 'any',
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /config': 'admin',
  'POST /usage/:eventType': 'ingest',
  'POST /usagebatch': 'ingest',
  'GET /events': 'read',
  'GET /aggregations': 'read',
  'POST /aggregations/trigger': 'admin',
  'GET /customers/:customerId/usage': 'read',
  'GET /customers': 'read',
  'GET /customers/:customerId/usage/series': 'read',
  'GET /stats': 'read',
  'GET /webhooks/deliveries': 'admin',
  'GET /webhooks/deliveries/:id': 'admin',
  'POST /webhooks/deliveries/:id/retry': 'admin',
  'POST /webhooks/recover': 'admin',
  'GET /webhooks/endpoints': 'admin',
  'POST /webhooks/endpoints/:endpointId/enable': 'admin',
  'GET /metrics': 'admin',
  'POST /keys': 'admin',
  'GET /keys': 'admin',
  'GET /keys/:keyId': 'admin',
  'DELETE /keys/:keyId': 'admin',
  'GET /session': 'any',
  'GET /audit': 'admin',
};

/** The drop-in vendor routes: capture only; Stripe's stream checks its own credential (a session token or an ingest key). */
const DROP_IN: Record<string, RouteScope> = {
  'POST /v1/billing/meter_events': 'ingest',
  'POST /v2/billing/meter_events': 'ingest',
  'POST /v2/billing/meter_event_session': 'ingest',
  'POST /v2/billing/meter_event_stream': 'public',
  'POST /compat/openmeter/api/v1/events': 'ingest',
  'POST /compat/lago/api/v1/events': 'ingest',
  'POST /compat/lago/api/v1/events/batch': 'ingest',
  'POST /compat/orb/v1/ingest': 'ingest',
  'POST /compat/metronome/v1/ingest': 'ingest',
};

const KEY_SETS: Scope[][] = [['ingest'], ['read'], ['admin'], ['ingest', 'read']];

describe('route × scope matrix', () => {
  let t: TestApp;
  const keys: Array<{ scopes: Scope[]; key: string }> = [];
  before(async () => {
    t = await buildTestApp({ config: SAMPLE_CONFIG });
    await seedDelivery(t);
    for (const scopes of KEY_SETS) keys.push({ scopes, key: (await createApiKey(t.store, t.clock, scopes.join('+'), scopes)).key });
    await t.apiKeys.reload();
  });
  after(() => t.close());

  it('the OpenAPI document names this scope for every operation', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { 'x-meterhook-scope'?: string }>>;
    };
    const declared = Object.fromEntries(
      Object.entries(doc.paths).flatMap(([p, ops]) =>
        Object.entries(ops).map(([m, op]) => [`${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`, op['x-meterhook-scope']]),
      ),
    );
    assert.deepEqual(declared, { ...MATRIX, ...DROP_IN });
  });

  it('the drop-in routes refuse a key without the ingest scope, before the body, and let an ingest key through', async () => {
    const readKey = keys.find((k) => k.scopes.length === 1 && k.scopes[0] === 'read')!.key;
    const ingestKey = keys.find((k) => k.scopes.length === 1 && k.scopes[0] === 'ingest')!.key;
    const wrong: string[] = [];
    for (const route of Object.keys(DROP_IN)) {
      const url = route.split(' ')[1]!;
      const refused = await t.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${readKey}` } });
      if (refused.statusCode !== 403) wrong.push(`${route} with a read key: ${refused.statusCode} ${refused.body.slice(0, 120)}`);
      const passed = await t.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${ingestKey}` } });
      // No body: the request passes authentication and is refused by the route itself (or, for the session, served).
      if ([401, 403, 429].includes(passed.statusCode))
        wrong.push(`${route} with an ingest key: ${passed.statusCode} ${passed.body.slice(0, 120)}`);
    }
    assert.deepEqual(wrong, []);
  });

  for (const scopes of KEY_SETS) {
    it(`a key with scopes ${scopes.join(',')} reaches exactly the routes they grant`, async () => {
      const { key } = keys.find((k) => k.scopes === scopes)!;
      const wrong: string[] = [];
      for (const [route, need] of Object.entries(MATRIX)) {
        const r = await t.app.inject(validRequest(route, { 'x-apikey': key }));
        const allowed = grants(scopes, need);
        if (allowed && !(r.statusCode >= 200 && r.statusCode < 300)) wrong.push(`${route}: ${r.statusCode} ${r.body.slice(0, 120)}`);
        if (!allowed) {
          const body = r.json() as { code?: string; error?: string };
          if (r.statusCode !== 403 || body.code !== 'forbidden' || !body.error?.includes(`the ${need} scope`)) {
            wrong.push(`${route}: expected 403 forbidden naming ${need}, got ${r.statusCode} ${r.body.slice(0, 120)}`);
          }
        }
      }
      assert.deepEqual(wrong, []);
    });
  }

  it('a refused capture stores nothing, and a key from the environment is an admin key', async () => {
    const before = (await t.store.listEvents({ limit: 1000 })).length;
    const readKey = keys.find((k) => k.scopes.length === 1 && k.scopes[0] === 'read')!.key;
    for (const route of ['POST /usage/:eventType', 'POST /usagebatch']) {
      assert.equal((await t.app.inject(validRequest(route, { 'x-apikey': readKey }))).statusCode, 403);
    }
    assert.equal((await t.store.listEvents({ limit: 1000 })).length, before);
    for (const route of Object.keys(MATRIX)) {
      const r = await t.app.inject(validRequest(route, { authorization: `Bearer ${TEST_KEY}` }));
      assert.ok(r.statusCode >= 200 && r.statusCode < 300, `${route}: ${r.statusCode} ${r.body.slice(0, 120)}`);
    }
  });
});
