// The running merge of an open period's groups, on both stores: built, extended and found current; made stale
// by a late event, and then never used until a recheck rebuilds it; two advances of one merge at once; dropped
// when its period ends. Every read through it equals the full merge of the hours, totals and groups alike.
// store-contract: sqlite, postgres
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatFixed } from '../../src/domain/decimal.js';
import type { NewEvent } from '../../src/domain/event-rules.js';
import { OPERATORS, operatorValue, type Operator } from '../../src/domain/operators.js';
import { periodInterval } from '../../src/domain/periods.js';
import type { GroupState, RollupRow } from '../../src/domain/records.js';
import type { DimensionRules } from '../../src/domain/rules.js';
import type { Store } from '../../src/store/store.js';
import { withTempStore } from '../helpers/app.js';

const HOUR = 3_600_000;
const MONTH = periodInterval('monthly', Date.UTC(2026, 4, 1));
const H = (n: number) => MONTH.start + n * HOUR;
const RULES: DimensionRules = {
  types: Object.assign(Object.create(null), { tokens: { groupBy: ['model'], uniqueField: null } }),
  maxGroupsPerHour: 1000,
};
const PERIODS = ['hourly', 'monthly'] as const;

let seq = 0;
async function append(store: Store, customerId: string, events: Array<[hour: number, model: string | null, value: number, type?: string]>) {
  const batch: NewEvent[] = events.map(([hour, model, value, type]) => ({
    customerId,
    eventType: type ?? 'tokens',
    value,
    metadata: model === null ? null : JSON.stringify({ model }),
    ts: H(hour) + (seq++ % 3_000_000),
    tsExplicit: true,
    id: null,
  }));
  const [out] = await store.appendEvents([{ receivedAt: H(0), events: batch }], PERIODS, RULES);
  assert.ok(out?.ok === true);
}

const byKey = (a: { eventType: string; group?: string }, b: { eventType: string; group?: string }) =>
  `${a.eventType}\u0000${a.group ?? ''}`.localeCompare(`${b.eventType}\u0000${b.group ?? ''}`);
// Group states as the port types them (a merged read may carry an `hour` of 0 besides).
const groupsOf = (gs: GroupState[]) => gs.map(({ hour: _h, ...g }: GroupState & { hour?: number }) => g).sort(byKey);
const totalsOf = (rs: RollupRow[]) => [...rs].sort(byKey);

/** Each `tokens` group's count and exact value under `op`, in key order. */
const valuedAs = (op: Operator, gs: GroupState[]) =>
  groupsOf(gs.filter((g) => g.eventType === 'tokens')).map((g) => `${g.group} ${g.count} ${formatFixed(operatorValue(op, g))}`);

/**
 * The read through the merge equals the full merge of the hours, whatever operator `tokens` has (a read may
 * decode only what that operator reads); returns how it was answered.
 */
async function assertRead(store: Store, customerId: string): Promise<string> {
  const full = await store.mergedGroups(customerId, MONTH.start, MONTH.end);
  const totals = totalsOf(await store.mergedRollups(customerId, MONTH.start, MONTH.end));
  const how = new Set<string>();
  for (const op of OPERATORS) {
    const r = await store.mergedPeriod(customerId, 'monthly', MONTH.start, MONTH.end, new Map([['tokens', op]]));
    assert.deepEqual(valuedAs(op, r.groups), valuedAs(op, full), `groups valued by ${op}`);
    assert.deepEqual(totalsOf(r.rollups), totals, 'totals');
    how.add(r.merge);
  }
  assert.equal(how.size, 1, 'one answer path whatever the operator');
  return [...how][0]!;
}

const advance = (store: Store, through: number, customers: Array<[string, boolean]>) =>
  store.advanceGroupMerges(
    'monthly',
    MONTH.start,
    through,
    customers.map(([customerId, recheck]) => ({ customerId, recheck })),
  );

describe('running merges of open periods', () => {
  it('build, extend, stale after a late event, rebuilt on recheck, two advances at once, dropped', async () => {
    await withTempStore('meterhook-merges-', async (store) => {
      // Hours 0–5 of the month: two groups, an event of no group, an ungrouped type, a second customer.
      await append(store, 'c1', [
        [0, 'a', 1.5],
        [0, 'b', 2],
        [1, 'a', -3],
        [2, null, 4],
        [3, 'b', 0.25],
        [4, 'c', 7],
        [5, 'a', 1],
        [5, 'x', 9, 'calls'],
      ]);
      await append(store, 'c2', [[1, 'z', 100]]);
      assert.equal(await assertRead(store, 'c1'), 'none', 'no merge yet');

      assert.deepEqual(await advance(store, H(3), [['c1', false]]), { advanced: 0, rebuilt: 1 });
      assert.equal(await assertRead(store, 'c1'), 'current', 'hours 0–2 from the merge, 3–5 from the hours');
      assert.equal(await assertRead(store, 'c2'), 'none', 'another customer has its own merge');
      assert.deepEqual(await advance(store, H(3), [['c1', false]]), { advanced: 0, rebuilt: 0 }, 'already at the hour');
      assert.deepEqual(await advance(store, H(5), [['c1', false]]), { advanced: 1, rebuilt: 0 });
      assert.equal(await assertRead(store, 'c1'), 'current');

      // New events after the merge leave it current; a late one in a covered hour makes it stale.
      await append(store, 'c1', [
        [5, 'b', 3],
        [6, 'd', 1],
      ]);
      assert.equal(await assertRead(store, 'c1'), 'current', 'events from `through` on are read from the hours');
      await append(store, 'c1', [[1, 'a', 10]]);
      assert.equal(await assertRead(store, 'c1'), 'stale', 'a late event in hour 1');
      await append(store, 'c1', [[2, 'x', 1, 'calls']]);
      assert.equal(await assertRead(store, 'c1'), 'stale', 'a late event of an ungrouped type counts too');
      assert.deepEqual(await advance(store, H(5), [['c1', false]]), { advanced: 0, rebuilt: 0 }, 'same hour, no recheck');
      assert.equal(await assertRead(store, 'c1'), 'stale');
      assert.deepEqual(await advance(store, H(5), [['c1', true]]), { advanced: 0, rebuilt: 1 }, 'a recheck rebuilds it');
      assert.equal(await assertRead(store, 'c1'), 'current');
      // A merge found stale when the hour has moved on is rebuilt by the plain advance.
      await append(store, 'c1', [[0, 'b', 5]]);
      assert.deepEqual(await advance(store, H(6), [['c1', false]]), { advanced: 0, rebuilt: 1 });
      assert.equal(await assertRead(store, 'c1'), 'current');

      // Two advances of the same stale merge at once: both finish, and the merge is right.
      await append(store, 'c1', [[3, 'e', 2]]);
      const both = await Promise.all([advance(store, H(7), [['c1', true]]), advance(store, H(7), [['c1', true]])]);
      const rebuilt = both.reduce((n, r) => n + r.rebuilt + r.advanced, 0);
      assert.ok(rebuilt >= 1 && rebuilt <= 2, `one or both did the work (${JSON.stringify(both)})`);
      assert.equal(await assertRead(store, 'c1'), 'current');

      assert.deepEqual(await advance(store, H(7), [['c2', false]]), { advanced: 0, rebuilt: 1 });
      assert.equal(await store.dropGroupMerges('monthly', MONTH.start), 0, 'the open month is kept');
      assert.equal(await store.dropGroupMerges('monthly', MONTH.end), 2, 'both merges of the month end with it');
      assert.equal(await assertRead(store, 'c1'), 'none');
      assert.equal(await assertRead(store, 'c2'), 'none');
    });
  });
});
