// A backlog on one endpoint must never keep another endpoint's due deliveries from being claimed.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { buildTestApp, REFERENCE_CONFIG, type TestApp } from '../helpers/app.js';

describe('delivery claims are fair between endpoints', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({
      now: '2026-01-13T00:30:00Z',
      config: {
        ...REFERENCE_CONFIG,
        periods: ['hourly', 'daily'],
        webhooks: [
          // Both on a port nothing listens on: the test only claims, it never sends.
          { id: 'slow', url: 'http://127.0.0.1:9/slow', secret: 'slow-endpoint-secret-123', periods: ['hourly'] },
          { id: 'fast', url: 'http://127.0.0.1:9/fast', secret: 'fast-endpoint-secret-123', periods: ['daily'] },
        ],
        webhookDelivery: { allowCidrs: ['127.0.0.1/32'] },
      },
    });
  });
  after(() => t.close());

  it('claims the fast endpoint while the slow one is saturated, however long its backlog', async () => {
    // 300 customers with usage in one hour of Jan 12: 300 hourly messages (slow endpoint only).
    const events = Array.from({ length: 300 }, (_, i) => ({
      eventType: 'api.calls',
      customerId: `c${String(i).padStart(3, '0')}`,
      value: 1,
      timestamp: '2026-01-12T10:15:00Z',
    }));
    assert.equal((await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: events })).statusCode, 201);
    t.clock.set('2026-01-12T11:10:00Z');
    await closeDuePeriods(t.ctx);
    // Later, the day closes: 300 daily messages for the fast endpoint, due after all the slow ones.
    t.clock.set('2026-01-13T00:10:00Z');
    await closeDuePeriods(t.ctx);
    const counts = await t.store.deliveryCounts();
    assert.equal(counts.pending, 600);

    const claimed = await t.store.claimDeliveries({
      now: t.clock.now(),
      limit: 16,
      leaseMs: 60_000,
      owner: 'w1',
      perEndpointLimit: 4,
      inFlight: { slow: 4 },
      endpoints: ['slow', 'fast'],
    });
    assert.deepEqual(
      claimed.map((d) => d.endpointId),
      ['fast', 'fast', 'fast', 'fast'],
      'the saturated slow endpoint gets none; the fast one gets its room',
    );

    const both = await t.store.claimDeliveries({
      now: t.clock.now(),
      limit: 16,
      leaseMs: 60_000,
      owner: 'w2',
      perEndpointLimit: 4,
      inFlight: {},
      endpoints: ['slow', 'fast'],
    });
    assert.equal(both.filter((d) => d.endpointId === 'slow').length, 4);
    assert.equal(both.filter((d) => d.endpointId === 'fast').length, 4);
  });
});
