// CORS for browser portals: a preflight from an allowed origin to a read route or GET /session is answered
// 204 without a key, naming the methods and headers; an allowed origin's answers carry its origin and
// Vary: Origin; a disallowed origin and every admin or ingest route get no Access-Control-* header at all.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiKey } from '../../src/auth/api-keys.js';
import { buildTestApp, REFERENCE_CONFIG, TEST_KEY, type TestApp } from '../helpers/app.js';

const PORTAL = 'https://portal.example.com';
const OTHER = 'https://evil.example.com';

const corsHeaders = (h: Record<string, unknown>): string[] => Object.keys(h).filter((k) => k.startsWith('access-control-'));

describe('CORS', () => {
  let t: TestApp;
  let readKey: string;
  before(async () => {
    t = await buildTestApp({ config: { ...REFERENCE_CONFIG, cors: { allowedOrigins: [PORTAL, 'http://127.0.0.1:8080'] } } });
    readKey = (await createApiKey(t.store, t.clock, 'portal', ['read'])).key;
    await t.apiKeys.reload();
  });
  after(() => t.close());

  const preflight = (url: string, origin: string, method = 'GET') =>
    t.app.inject({
      method: 'OPTIONS',
      url,
      headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization' },
    });

  it('answers a preflight from an allowed origin to a read route or GET /session with 204, no key needed', async () => {
    for (const url of ['/customers/cust_1/usage', '/aggregations?period=daily', '/session', '/customers/', '/stats']) {
      const res = await preflight(url, PORTAL);
      assert.equal(res.statusCode, 204, `${url}: ${res.body}`);
      assert.equal(res.headers['access-control-allow-origin'], PORTAL);
      assert.equal(res.headers['access-control-allow-methods'], 'GET, HEAD');
      assert.match(String(res.headers['access-control-allow-headers']), /authorization/);
      assert.match(String(res.headers['access-control-allow-headers']), /x-apikey/);
      assert.equal(res.headers.vary, 'Origin');
      assert.equal(res.headers['access-control-allow-credentials'], undefined, 'keys go in a header, never cookies');
    }
  });

  it('gives a disallowed origin, an unlisted method and every admin or ingest route no CORS headers', async () => {
    const refused = [
      await preflight('/customers/cust_1/usage', OTHER),
      await preflight('/customers/cust_1/usage', 'null'),
      await preflight('/customers/cust_1/usage', PORTAL, 'DELETE'),
      await preflight('/audit', PORTAL),
      await preflight('/config', PORTAL),
      await preflight('/webhooks/deliveries', PORTAL),
      await preflight('/aggregations/trigger', PORTAL, 'POST'),
      await preflight('/usage/api.calls', PORTAL, 'POST'),
      await preflight('/usagebatch', PORTAL, 'POST'),
      await preflight('/no/such/route', PORTAL),
    ];
    for (const res of refused) {
      assert.deepEqual(corsHeaders(res.headers), [], `${res.statusCode} ${res.body}`);
      assert.notEqual(res.statusCode, 204, 'no preflight answer');
    }
  });

  it("adds the allowed origin to a read route's answers, errors included, with Vary: Origin", async () => {
    const ok = await t.app.inject({ method: 'GET', url: '/customers/cust_1/usage', headers: { origin: PORTAL, 'x-apikey': readKey } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.headers['access-control-allow-origin'], PORTAL);
    assert.match(String(ok.headers['access-control-expose-headers']), /x-next-cursor/);
    assert.equal(ok.headers.vary, 'Origin');
    const session = await t.app.inject({ method: 'GET', url: '/session', headers: { origin: PORTAL, authorization: `Bearer ${readKey}` } });
    assert.equal(session.headers['access-control-allow-origin'], PORTAL);
    const unauthorized = await t.app.inject({ method: 'GET', url: '/customers/cust_1/usage', headers: { origin: PORTAL } });
    assert.equal(unauthorized.statusCode, 401);
    assert.equal(unauthorized.headers['access-control-allow-origin'], PORTAL, 'a page can read why it was refused');
    const other = await t.app.inject({ method: 'GET', url: '/customers/cust_1/usage', headers: { origin: OTHER, 'x-apikey': readKey } });
    assert.equal(other.statusCode, 200, 'CORS is a browser rule: the server still answers a valid key');
    assert.deepEqual(corsHeaders(other.headers), []);
    assert.equal(other.headers.vary, 'Origin', 'caches keep answers per origin');
  });

  it('never adds CORS headers to admin or ingest answers', async () => {
    const admin = await t.app.inject({ method: 'GET', url: '/config', headers: { origin: PORTAL, 'x-apikey': TEST_KEY } });
    assert.equal(admin.statusCode, 200);
    assert.deepEqual(corsHeaders(admin.headers), []);
    const capture = await t.app.inject({
      method: 'POST',
      url: '/usage/api.calls',
      headers: { origin: PORTAL, 'x-apikey': TEST_KEY, 'content-type': 'application/json' },
      payload: { customerId: 'cust_1', value: 1 },
    });
    assert.equal(capture.statusCode, 201, capture.body);
    assert.deepEqual(corsHeaders(capture.headers), []);
  });

  it('has no allowed origin unless configured', async () => {
    const plain = await buildTestApp();
    try {
      const res = await plain.app.inject({
        method: 'OPTIONS',
        url: '/session',
        headers: { origin: PORTAL, 'access-control-request-method': 'GET' },
      });
      assert.deepEqual(corsHeaders(res.headers), []);
    } finally {
      await plain.close();
    }
  });
});
