// Per-key rate limits: a key's own token bucket (or the server default) refuses requests over it with 429
// rate_limited and Retry-After, before the body is read, counted in meterhook_rate_limited_total{scope}; the bucket
// refills by the injected clock, the drop-in routes answer in their vendor's shape, and the bucket map is bounded.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiKey } from '../../src/auth/api-keys.js';
import { KeyRateLimiter } from '../../src/auth/key-rate-limit.js';
import { buildTestApp, TEST_KEY, type TestApp } from '../helpers/app.js';

describe('per-key rate limits', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ keyRateLimit: { requestsPerSecond: 1, burst: 3 } });
  });
  after(() => t.close());

  const ping = (key: string) => t.app.inject({ method: 'GET', url: '/ping', headers: { 'x-apikey': key } });

  it("a key's own bucket refuses past its burst with 429 and Retry-After, and refills by the clock", async () => {
    const { key } = await createApiKey(t.store, t.clock, 'limited', ['read', 'ingest'], {
      rateLimit: { requestsPerSecond: 0.5, burst: 2 },
    });
    await t.apiKeys.reload();
    assert.equal((await ping(key)).statusCode, 200);
    assert.equal((await ping(key)).statusCode, 200);
    const refused = await ping(key);
    assert.equal(refused.statusCode, 429);
    assert.equal((refused.json() as { code: string }).code, 'rate_limited');
    assert.equal(refused.headers['retry-after'], '2');
    t.clock.advance(2_000);
    assert.equal((await ping(key)).statusCode, 200);
    assert.equal((await ping(key)).statusCode, 429);
  });

  it('is checked before the body is read: a refused capture stores nothing, and is counted by scope', async () => {
    const { key } = await createApiKey(t.store, t.clock, 'one', ['ingest'], { rateLimit: { requestsPerSecond: 1, burst: 1 } });
    await t.apiKeys.reload();
    const send = (id: string) =>
      t.app.inject({
        method: 'POST',
        url: '/usage/api.calls',
        headers: { 'x-apikey': key, 'content-type': 'application/json' },
        payload: { customerId: 'rl', value: 1, id },
      });
    assert.equal((await send('a')).statusCode, 201);
    assert.equal((await send('b')).statusCode, 429);
    const events = (
      await t.app.inject({ method: 'GET', url: '/events?customerId=rl', headers: { 'x-apikey': TEST_KEY } })
    ).json() as unknown[];
    assert.equal(events.length, 1);
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics', headers: { 'x-apikey': TEST_KEY } });
    assert.match(metrics.body, /meterhook_rate_limited_total\{scope="ingest"\} [1-9]/);
  });

  it('the server default applies to keys without their own limit; the drop-ins answer in their own shape', async () => {
    const { key } = await createApiKey(t.store, t.clock, 'default', ['ingest']);
    await t.apiKeys.reload();
    const lago = () =>
      t.app.inject({
        method: 'POST',
        url: '/compat/lago/api/v1/events',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        payload: {
          event: { transaction_id: `t${Math.random()}`, external_customer_id: 'lg', code: 'api.calls', properties: { value: 1 } },
        },
      });
    for (let i = 0; i < 3; i++) assert.equal((await lago()).statusCode, 200);
    const refused = await lago();
    assert.equal(refused.statusCode, 429);
    assert.ok(refused.headers['retry-after']);
    assert.ok(!('requestId' in (refused.json() as object)) || 'status' in (refused.json() as object), refused.body);
  });
});

describe('KeyRateLimiter', () => {
  it('keeps at most its bound of buckets, forgetting the least recently used', () => {
    let now = 0;
    const limiter = new KeyRateLimiter({ requestsPerSecond: 1, burst: 1 }, () => now, 3);
    for (const id of ['a', 'b', 'c', 'd']) assert.equal(limiter.take(id, null), 0);
    assert.equal(limiter.size, 3);
    assert.ok(limiter.take('d', null) > 0, 'd is remembered');
    assert.equal(limiter.take('a', null), 0, 'a was forgotten: a fresh bucket');
    now += 1_000;
    assert.equal(limiter.take('d', null), 0, 'refilled');
  });

  it('is off without a default or an own limit', () => {
    const limiter = new KeyRateLimiter(null, () => 0);
    for (let i = 0; i < 100; i++) assert.equal(limiter.take('k', null), 0);
    assert.equal(limiter.size, 0);
  });
});
