// The service's own HTTP routes, in-process: /, /ping, /config (secrets redacted), /healthz and /readyz.
// See /work/shared/spec/reference-api.md.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { REFERENCE_CONFIG, buildTestApp, type TestApp } from '../helpers/app.js';
import { assertJsonError, get } from '../helpers/queries.js';

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
      'GET /ping',
      'GET /config',
      'POST /usage/:eventType',
      'POST /usagebatch',
      'GET /events',
      'GET /aggregations',
      'POST /aggregations/trigger',
      'GET /customers/:customerId/usage',
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
