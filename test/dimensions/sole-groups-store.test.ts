// Hours whose events are all in one group keep that group in their total's row, on both stores: whatever
// the order in which later slices bring a second group, an event of no group (a type that lost its groupBy)
// or a group past the bound, every read of groups (merged, per hour) equals an oracle over the raw events.
// store-contract: sqlite, postgres
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseFixed } from '../../src/domain/decimal.js';
import { groupKey } from '../../src/domain/dimensions.js';
import type { NewEvent } from '../../src/domain/event-rules.js';
import type { GroupState } from '../../src/domain/records.js';
import type { DimensionRules } from '../../src/domain/rules.js';
import type { Store } from '../../src/store/store.js';
import { withTempStore } from '../helpers/app.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 4, 4, 10, 0, 0);
const GROUP_BY = ['model'];

const rules = (grouped: boolean, maxGroupsPerHour: number): DimensionRules => ({
  types: Object.assign(Object.create(null), grouped ? { tokens: { groupBy: GROUP_BY, uniqueField: null } } : {}),
  maxGroupsPerHour,
});

/** One append: whether the type has groupBy for it (false: its events carry no group), and its events. */
const stepArb = fc.record({
  grouped: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  events: fc.array(
    fc.record({
      model: fc.constantFrom('a', 'b', 'c'),
      hour: fc.integer({ min: 0, max: 2 }),
      minute: fc.integer({ min: 0, max: 59 }),
      value: fc.integer({ min: -20, max: 20 }),
    }),
    { minLength: 1, maxLength: 4 },
  ),
});

type Folded = { group: string; hour: number; ts: number; seq: number; value: number };

/** The oracle: each group's count, sum, min, max, first and last value, from the events that carried a group. */
function oracle(events: readonly Folded[], bound: number, byHour: boolean) {
  // Groups admitted per hour in the order their first events were stored; later new ones go to '*'.
  const admitted = new Map<number, string[]>();
  const out = new Map<string, { count: number; sum: number; min: number; max: number; first: Folded; last: Folded }>();
  for (const e of [...events].sort((x, y) => x.seq - y.seq)) {
    const seen = admitted.get(e.hour) ?? [];
    admitted.set(e.hour, seen);
    if (!seen.includes(e.group) && seen.length < bound) seen.push(e.group);
    const g = seen.includes(e.group) ? e.group : '*';
    const k = byHour ? `${e.hour}|${g}` : g;
    const o = out.get(k);
    if (!o) out.set(k, { count: 1, sum: e.value, min: e.value, max: e.value, first: e, last: e });
    else {
      o.count++;
      o.sum += e.value;
      o.min = Math.min(o.min, e.value);
      o.max = Math.max(o.max, e.value);
      if (e.ts < o.first.ts || (e.ts === o.first.ts && e.seq < o.first.seq)) o.first = e;
      if (e.ts > o.last.ts || (e.ts === o.last.ts && e.seq > o.last.seq)) o.last = e;
    }
  }
  return new Map([...out].map(([k, o]) => [k, [o.count, o.sum, o.min, o.max, o.first.value, o.last.value]]));
}

const shape = (g: GroupState) => [g.count, Number(g.sum / 10n ** 12n), g.min, g.max, g.firstValue, g.lastValue];

describe('sole groups kept in the hour totals', () => {
  it('every read of groups equals the oracle after each append, however hours split', async () => {
    await withTempStore('meterhook-sole-', async (store: Store) => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 6 }), fc.constantFrom(1, 2, 1000), async (steps, bound) => {
          // Each run has a customer of its own on one store.
          const customerId = `c${run++}`;
          const folded: Folded[] = [];
          let total = 0;
          for (const step of steps) {
            const events: NewEvent[] = step.events.map((e) => ({
              customerId,
              eventType: 'tokens',
              value: e.value,
              metadata: JSON.stringify({ model: e.model }),
              ts: T0 + e.hour * HOUR + e.minute * 60_000,
              tsExplicit: true,
              id: null,
            }));
            const [out] = await store.appendEvents([{ receivedAt: T0, events }], ['hourly'], rules(step.grouped, bound));
            assert.ok(out?.ok === true && !('replayed' in out));
            const seqs = out.results.map((r) => r.seq);
            total += step.events.length;
            step.events.forEach((e, i) => {
              if (step.grouped)
                folded.push({
                  group: groupKey({ model: e.model }, GROUP_BY),
                  hour: e.hour,
                  ts: events[i]!.ts,
                  seq: seqs[i]!,
                  value: e.value,
                });
            });
            // A read between appends derives what is stored, so the next append is a later slice.
            const merged = await store.mergedGroups(customerId, T0, T0 + 3 * HOUR);
            const got = new Map(merged.map((g) => [g.group, shape(g)]));
            assert.deepEqual(got, oracle(folded, bound, false));
            const hours = await store.readGroups(customerId, 'tokens', T0, T0 + 3 * HOUR);
            const gotHours = new Map(hours.map((g) => [`${(g.hour - T0) / HOUR}|${g.group}`, shape(g)]));
            assert.equal(gotHours.size, hours.length, 'one row per hour and group');
            assert.deepEqual(gotHours, oracle(folded, bound, true));
            const totals = await store.mergedRollups(customerId, T0, T0 + 3 * HOUR);
            assert.equal(totals[0]!.count, total, 'the totals count every event, grouped or not');
          }
          const sum = (await store.mergedGroups(customerId, T0, T0 + 3 * HOUR)).reduce((n, g) => n + g.sum, 0n);
          assert.equal(sum, parseFixed(String(folded.reduce((n, e) => n + e.value, 0))));
        }),
        { numRuns: 60 },
      );
    });
  });
});
