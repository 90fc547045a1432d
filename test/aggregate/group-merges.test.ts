// The scheduler tick's upkeep of running merges: the tick brings them to the settled hour (its instant less the
// grace period), so current usage of an open month reads through one; a read that finds one stale gets it
// rebuilt by the next tick at the same hour; merges nothing reads any more (groupBy removed) are dropped; and a
// store failing to advance them leaves the tick and every answer intact.
// store-contract: sqlite, postgres
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { currentUsage } from '../../src/aggregate/current-usage.js';
import { advanceGroupMerges, groupedOperators } from '../../src/aggregate/group-merges.js';
import { StoreUnavailable } from '../../src/domain/errors.js';
import { periodInterval } from '../../src/domain/periods.js';
import { buildTestApp, REFERENCE_CONFIG, type TestApp } from '../helpers/app.js';

const NOW = Date.parse('2026-03-18T10:20:00Z');
const MONTH = periodInterval('monthly', NOW);
const CONFIG = {
  ...REFERENCE_CONFIG,
  periods: ['daily', 'weekly', 'monthly', 'yearly'],
  gracePeriod: '30m',
  maxEventAge: '60d',
  events: { tokens: { op: 'sum', groupBy: ['model'] }, calls: { op: 'count' } },
};

async function send(t: TestApp, events: Array<[ts: string, model: string, value: number]>) {
  const batch = events.map(([ts, model, value]) => ({
    eventType: 'tokens',
    customerId: 'c1',
    value,
    timestamp: Date.parse(ts),
    metadata: { model },
  }));
  const r = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: batch });
  assert.equal(r.statusCode, 201, r.body);
}

const how = async (t: TestApp) =>
  (await t.store.mergedPeriod('c1', 'monthly', MONTH.start, MONTH.end, groupedOperators(t.ctx.config))).merge;
const groupsNow = async (t: TestApp) => (await currentUsage(t.ctx, 'c1', 'monthly', NOW)).groups;

describe('running merges kept by the scheduler tick', () => {
  it('advance to the settled hour, rebuild what a read found stale, drop what nothing reads', async () => {
    const t = await buildTestApp({ config: CONFIG, now: NOW });
    try {
      await send(t, [
        ['2026-03-02T08:00:00Z', 'a', 1],
        ['2026-03-17T23:10:00Z', 'b', 2],
        ['2026-03-18T09:55:00Z', 'a', 4],
        ['2026-03-18T10:05:00Z', 'b', 8],
      ]);
      await advanceGroupMerges(t.ctx);
      assert.equal(await how(t), 'current');
      // 10:20 less 30 minutes of grace is in hour 09: an event of 09:58 that arrives now finds it open.
      await send(t, [['2026-03-18T09:58:00Z', 'a', 16]]);
      assert.equal(await how(t), 'current', 'the merge covers the hours before 09:00 only');
      assert.deepEqual(await groupsNow(t), {
        tokens: [
          { dimensions: { model: 'a' }, value: 21, valueDecimal: '21', count: 3 },
          { dimensions: { model: 'b' }, value: 10, valueDecimal: '10', count: 2 },
        ],
      });
      // A late event in a covered hour: the read is still right, notes the merge, and the next tick rebuilds it.
      await send(t, [['2026-03-02T09:00:00Z', 'c', 32]]);
      assert.equal(await how(t), 'stale');
      const late = await groupsNow(t);
      assert.deepEqual(
        late?.tokens?.map((g) => [g.dimensions.model, g.value]),
        [
          ['a', 21],
          ['b', 10],
          ['c', 32],
        ],
      );
      assert.equal(t.ctx.staleMerges?.size, 1, 'the read noted the stale merge');
      const r = await advanceGroupMerges(t.ctx);
      assert.equal(r.rebuilt, 1, 'rebuilt at the same hour');
      assert.equal(await how(t), 'current');
      assert.deepEqual(await groupsNow(t), late);

      // Without groupBy nothing reads the merges: the tick drops them (month, week and year).
      const ungrouped = { ...t.ctx, config: { ...t.ctx.config, events: { ...t.ctx.config.events, tokens: { op: 'sum' as const } } } };
      const dropped = await advanceGroupMerges(ungrouped);
      assert.equal(dropped.dropped, 3);
      assert.equal(await how(t), 'none');
    } finally {
      await t.close();
    }
  });

  it('a store that fails to advance them leaves the tick and the answers intact, and says so in the log', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
    const t = await buildTestApp({ config: CONFIG, now: NOW, logger });
    try {
      await send(t, [
        ['2026-03-02T08:00:00Z', 'a', 1],
        ['2026-03-18T08:00:00Z', 'b', 2],
      ]);
      const failing = Object.create(t.store) as typeof t.store;
      failing.advanceGroupMerges = async () => {
        throw new StoreUnavailable(5, new Error('disk full'), 'the disk is full');
      };
      const r = await advanceGroupMerges({ ...t.ctx, store: failing });
      assert.deepEqual([r.advanced, r.rebuilt], [0, 0]);
      assert.equal(lines.filter((l) => l.includes('running merges of groups not advanced')).length, 3, 'one warning per period');
      assert.equal(await how(t), 'none');
      assert.deepEqual(
        (await groupsNow(t))?.tokens?.map((g) => g.value),
        [1, 2],
      );
    } finally {
      await t.close();
    }
  });
});
