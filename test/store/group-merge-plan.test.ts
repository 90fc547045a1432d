// The rules of the running merge, pure: when stored counts prove a merge current, how the hours after it are
// combined with it (a group may come once per hour), and what an advance covers next.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GroupState, RollupRow } from '../../src/domain/records.js';
import { mergeAll, stateOfEvent } from '../../src/domain/rollup-state.js';
import {
  advanceTarget,
  combineGroups,
  combineTotals,
  coveredIsCurrent,
  headTotals,
  mergeIsCurrent,
  parseHead,
} from '../../src/store/group-merge-plan.js';

const counted = (eventType: string, count: number) => ({ eventType, count });
/** A type's total of events of these values, at seqs from `at` on. */
const total = (eventType: string, values: number[], at = 1): RollupRow => ({
  eventType,
  hour: 0,
  ...mergeAll(values.map((v, i) => stateOfEvent(at + i, at + i, v)))!,
});
const headOf = (through: number, totals: RollupRow[]) => parseHead({ through, totals: headTotals(totals) })!;
const group = (eventType: string, g: string, ts: number, value: number): GroupState => ({
  eventType,
  group: g,
  ...stateOfEvent(ts, ts, value),
});

describe('group merge plan', () => {
  it('a merge is current only while every type holds the events it was built from', () => {
    const head = headOf(10, [total('a', [1, 2, 3]), total('b', [4])]);
    assert.equal(mergeIsCurrent(head, [counted('a', 5), counted('b', 1)], [counted('a', 1), counted('a', 1)]), true);
    assert.equal(mergeIsCurrent(head, [counted('a', 6), counted('b', 1)], [counted('a', 2)]), false, 'a late event of a');
    assert.equal(mergeIsCurrent(head, [counted('a', 3)], []), false, 'b lost: counts never shrink, so this is not it');
    assert.equal(mergeIsCurrent(head, [counted('a', 3), counted('b', 1), counted('c', 1)], []), false, 'a late event of a new type');
    assert.equal(mergeIsCurrent(head, [counted('a', 3), counted('b', 1), counted('c', 2)], [counted('c', 2)]), true, 'c only after');
    assert.equal(mergeIsCurrent(head, [counted('a', 2), counted('a', 1), counted('b', 1)], []), true, 'one row per hour');
    assert.equal(mergeIsCurrent(headOf(10, []), [], []), true);
  });

  it("a read's check is one sum of the covered hours' counts: any late event, of any type, makes it larger", () => {
    const head = headOf(10, [total('a', [1, 2, 3]), total('b', [4])]);
    assert.equal(coveredIsCurrent(head, 4), true);
    assert.equal(coveredIsCurrent(head, 5), false, 'a late event of a, of b, or of a new type');
    assert.equal(coveredIsCurrent(head, 3), false);
    assert.equal(coveredIsCurrent(headOf(10, []), 0), true, 'a merge of no events, over hours that hold none');
    assert.equal(coveredIsCurrent(headOf(10, []), 1), false);
  });

  it("a head keeps each type's exact total, and the hours after it merge into it", () => {
    const head = headOf(7, [total('a', [0.1, 0.2]), total('b', [5])]);
    assert.equal(head.through, 7);
    assert.deepEqual(
      [...head.counts],
      [
        ['a', 2],
        ['b', 1],
      ],
    );
    assert.equal(parseHead({ through: 7, totals: '[["a",1' }), undefined, 'a damaged head is as good as none');
    assert.equal(parseHead({ through: 'x', totals: '[]' }), undefined);
    const out = combineTotals(head, [total('a', [0.3], 50), total('c', [-1], 60)], 99);
    assert.deepEqual(
      out.map((r) => [r.eventType, r.hour, r.count, r.sum, r.firstValue, r.lastValue]),
      [
        ['a', 99, 3, 600_000_000_000n, 0.1, 0.3],
        ['b', 99, 1, 5_000_000_000_000n, 5, 5],
        ['c', 99, 1, -1_000_000_000_000n, -1, -1],
      ],
    );
  });

  it('combines a group that comes once per hour into one state, new or cached', () => {
    const cached = [group('t', 'x', 1, 1)];
    const out = combineGroups(cached, [group('t', 'x', 5, 2), group('t', 'y', 6, 3), group('t', 'y', 9, 4), group('u', 'x', 7, 5)]);
    assert.deepEqual(
      out.map((g) => [g.eventType, g.group, g.count, g.sum, g.firstValue, g.lastValue]),
      [
        ['t', 'x', 2, 3_000_000_000_000n, 1, 2],
        ['t', 'y', 2, 7_000_000_000_000n, 3, 4],
        ['u', 'x', 1, 5_000_000_000_000n, 5, 5],
      ],
    );
  });

  it('an advance covers up to the hour, or rechecks a merge at the hour it reaches', () => {
    assert.equal(advanceTarget(undefined, 0, 0, false), undefined, 'no complete hour yet');
    assert.equal(advanceTarget(undefined, 0, 5, false), 5);
    assert.equal(advanceTarget(headOf(5, []), 0, 5, false), undefined);
    assert.equal(advanceTarget(headOf(5, []), 0, 5, true), 5);
    assert.equal(advanceTarget(headOf(5, []), 0, 8, false), 8);
    assert.equal(advanceTarget(headOf(9, []), 0, 8, true), 9, 'never moves back');
  });
});
