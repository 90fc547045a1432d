// Retention of raw events, on whichever store the suite runs against: old events go, rollups and
// aggregations stay, and nothing inside a period that is not final yet is touched.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { applyRetention } from '../../src/aggregate/retention.js';
import { parseConfig } from '../../src/config/load-config.js';
import { buildTestApp, REFERENCE_CONFIG, TEST_STORE, type TestApp } from '../helpers/app.js';

const NOW = '2026-06-15T12:00:00Z';

async function post(t: TestApp, events: Array<{ customerId: string; value: number; timestamp: string; id: string }>) {
  const res = await t.app.inject({
    method: 'POST',
    url: '/usagebatch',
    headers: t.headers,
    payload: events.map((e) => ({ eventType: 'api.calls', ...e })),
  });
  assert.equal(res.statusCode, 201, res.body);
}

async function eventCount(t: TestApp, customerId: string): Promise<number> {
  const res = await t.app.inject({ method: 'GET', url: `/events?customerId=${customerId}&limit=1000`, headers: t.headers });
  return (res.json() as unknown[]).length;
}

describe('retention of raw events', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({
      now: NOW,
      config: { ...REFERENCE_CONFIG, periods: ['daily', 'monthly'], maxEventAge: '400d', retention: { events: '90d' } },
    });
  });
  after(() => t.close());

  it('deletes events older than retention.events, keeps newer ones and every aggregation', async () => {
    // January and February 2026 are older than 90 days on 2026-06-15; May is not.
    await post(t, [
      { customerId: 'old', value: 1, timestamp: '2026-01-10T10:00:00Z', id: 'o1' },
      { customerId: 'old', value: 2, timestamp: '2026-02-10T10:00:00Z', id: 'o2' },
      { customerId: 'old', value: 4, timestamp: '2026-05-10T10:00:00Z', id: 'o3' },
    ]);
    await closeDuePeriods(t.ctx);
    const before = await t.app.inject({ method: 'GET', url: '/aggregations?customerId=old&period=monthly', headers: t.headers });
    assert.equal((before.json() as unknown[]).length, 3);

    const r = await applyRetention(t.ctx);
    assert.ok(r);
    assert.equal(r.cutoff, Date.parse(NOW) - 90 * 86_400_000);
    assert.equal(r.deleted, 2);
    if (TEST_STORE === 'postgres') {
      // Whole months before the cutoff go as partitions: January and February 2026 among them.
      assert.ok(
        r.partitionsDropped.includes('events_y2026m01') && r.partitionsDropped.includes('events_y2026m02'),
        r.partitionsDropped.join(),
      );
      assert.ok(!r.partitionsDropped.includes('events_y2026m03'), 'March ends after the cutoff and is kept');
    } else {
      assert.deepEqual(r.partitionsDropped, []);
    }
    assert.equal(await eventCount(t, 'old'), 1);
    const afterRes = await t.app.inject({ method: 'GET', url: '/aggregations?customerId=old&period=monthly', headers: t.headers });
    assert.deepEqual(afterRes.json(), before.json(), 'aggregations are untouched');
    const usage = await t.app.inject({
      method: 'GET',
      url: '/customers/old/usage?period=monthly&at=2026-01-15T00:00:00Z',
      headers: t.headers,
    });
    assert.deepEqual(usage.json().events, { 'api.calls': 1 }, 'usage still comes from the kept rollups');
  });

  it('never deletes events of a period that is not final yet', async () => {
    // 2026-03-10 is older than the cutoff (2026-03-17), but it leaves March (and its day) open.
    await post(t, [{ customerId: 'late', value: 5, timestamp: '2026-03-10T10:00:00Z', id: 'l1' }]);
    const r = await applyRetention(t.ctx);
    assert.ok(r);
    assert.ok(r.cutoff <= Date.parse('2026-03-01T00:00:00Z'), `cutoff ${new Date(r.cutoff).toISOString()} moved back to the open month`);
    assert.equal(await eventCount(t, 'late'), 1);
    await closeDuePeriods(t.ctx);
    const again = await applyRetention(t.ctx);
    assert.ok(again);
    assert.equal(again.cutoff, Date.parse(NOW) - 90 * 86_400_000);
    // Once March is final its old events may go: row by row on SQLite; on PostgreSQL only whole
    // months go, and March (which ends after the cutoff) stays until it is entirely older.
    assert.equal(await eventCount(t, 'late'), TEST_STORE === 'postgres' ? 1 : 0);
    const later = await applyRetention(t.ctx, Date.parse('2026-07-05T00:00:00Z'));
    assert.ok(later);
    assert.equal(await eventCount(t, 'late'), 0, 'gone once the whole month is older than retention');
  });

  it('does nothing without retention.events', async () => {
    const t2 = await buildTestApp({ now: NOW });
    try {
      assert.equal(await applyRetention(t2.ctx), null);
    } finally {
      await t2.close();
    }
  });
});

describe('retention configuration', () => {
  it('rejects a malformed or too short retention', () => {
    assert.throws(() => parseConfig({ retention: { events: '40m' } }, { env: {} }), /retention\.events: must be at least 1d/);
    assert.throws(() => parseConfig({ retention: { events: 'forever' } }, { env: {} }), /retention\.events: invalid duration/);
    assert.throws(() => parseConfig({ retention: '400d' }, { env: {} }), /retention: must be an object/);
    assert.equal(parseConfig({ retention: { events: '400d' } }, { env: {} }).retentionEventsMs, 400 * 86_400_000);
    assert.equal(parseConfig({}, { env: {} }).retentionEventsMs, null);
  });
});
