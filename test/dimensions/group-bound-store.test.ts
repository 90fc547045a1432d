// The per-hour group bound at the store port, on both stores: concurrent writers of one hour never admit more
// than maxGroupsPerHour groups between them (PostgreSQL orders them by the hour total's row lock), and events
// appended without capture-derived dimensions are derived by the store from their metadata, alike.
// store-contract: sqlite, postgres
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NewEvent } from '../../src/domain/event-rules.js';
import type { DimensionRules } from '../../src/domain/rules.js';
import type { Store } from '../../src/store/store.js';
import { withTempStore } from '../helpers/app.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 4, 4, 10, 0, 0);
const rules = (maxGroupsPerHour: number): DimensionRules => ({
  types: Object.assign(Object.create(null), {
    tokens: { groupBy: ['model'], uniqueField: null },
    users: { groupBy: null, uniqueField: 'userId' },
  }),
  maxGroupsPerHour,
});

const ev = (eventType: string, value: number, metadata: Record<string, unknown>, at = T0 + 60_000): NewEvent => ({
  customerId: 'c',
  eventType,
  value,
  metadata: JSON.stringify(metadata),
  ts: at,
  tsExplicit: true,
  id: null,
});

const withStore = (fn: (store: Store) => Promise<void>): Promise<void> => withTempStore('meterhook-groups-', fn);

describe('the group bound at the store', () => {
  it('concurrent appends of new groups to one hour admit at most the bound; the rest is in the overflow group, exactly', async () => {
    await withStore(async (store) => {
      const limit = 3;
      const writers = Array.from({ length: 8 }, (_, i) =>
        store.appendEvents([{ receivedAt: T0, events: [ev('tokens', 2 ** i, { model: `m${i}` })] }], ['hourly'], rules(limit)),
      );
      await Promise.all(writers);
      const groups = await store.mergedGroups('c', T0, T0 + HOUR);
      const regular = groups.filter((g) => g.group !== '*');
      const overflow = groups.filter((g) => g.group === '*');
      assert.equal(regular.length, limit, JSON.stringify(groups.map((g) => g.group)));
      assert.equal(overflow.length, 1);
      assert.equal(overflow[0]!.count, 8 - limit);
      const total = groups.reduce((n, g) => n + g.sum, 0n);
      const [hour] = await store.mergedRollups('c', T0, T0 + HOUR);
      assert.equal(total, hour!.sum, 'groups and overflow add up to the hour total');
      assert.equal(hour!.count, 8);
      assert.equal(store.stats().groupsOverflowed, 8 - limit);
    });
  });

  it('derives groups and unique values from stored metadata when the caller did not', async () => {
    await withStore(async (store) => {
      await store.appendEvents(
        [
          {
            receivedAt: T0,
            events: [
              ev('tokens', 5, { model: 'gpt-4o' }),
              ev('tokens', 7, { model: 1.5 }),
              ev('users', 1, { userId: 'a' }),
              ev('users', 1, { userId: 'a' }, T0 + 2 * HOUR),
              ev('users', 1, { userId: 'b' }, T0 + 2 * HOUR),
            ],
          },
        ],
        ['hourly', 'daily'],
        rules(100),
      );
      const groups = await store.mergedGroups('c', T0, T0 + 24 * HOUR);
      assert.deepEqual(groups.map((g) => [g.group, g.count]).sort(), [
        ['{"model":"1.5"}', 1],
        ['{"model":"gpt-4o"}', 1],
      ]);
      const day = Date.UTC(2026, 4, 4);
      assert.deepEqual(await store.uniqueCounts('c', 'daily', day), [{ eventType: 'users', group: '', count: 2, periodStart: 0 }]);
      const hours = await store.uniqueCountsOver('c', 'users', 'hourly', T0, T0 + 3 * HOUR);
      assert.deepEqual(
        hours.map((h) => [h.periodStart - T0, h.count]),
        [
          [0, 1],
          [2 * HOUR, 2],
        ],
      );
    });
  });
});
