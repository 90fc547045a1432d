// Group keys and their order, against oracles: the key is the JSON of the dimension values in groupBy
// order whether or not it was interned, and sorting many keys gives compareGroupKeys' order.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compareGroupKeys, dimensionValue, groupKey, KEY_MEMO_LIMIT, OVERFLOW_GROUP, sortByGroupKey } from '../../src/domain/dimensions.js';

/** The key as the dimension docs define it, built as an object and serialised. */
function oracleKey(metadata: Record<string, unknown> | null, groupBy: readonly string[]): string {
  const o: Record<string, string | null> = {};
  for (const k of groupBy) o[k] = dimensionValue(metadata !== null && Object.hasOwn(metadata, k) ? metadata[k] : undefined);
  return JSON.stringify(o);
}

const valueArb = fc.oneof(
  fc.constantFrom('gpt-4o', 'llama', 'eu', ''),
  fc.string({ maxLength: 80 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant({ nested: 1 }),
  fc.constant([1, 2]),
);

describe('groupKey', () => {
  it('is the JSON of the dimension values in groupBy order, the same text each time, interned or not', () => {
    const groupBy = ['model', 'region', 'tier'];
    fc.assert(
      fc.property(
        fc.array(fc.dictionary(fc.constantFrom('model', 'region', 'tier', 'other'), valueArb), { minLength: 1, maxLength: 30 }),
        (metas) => {
          for (const m of metas) {
            const want = oracleKey(m, groupBy);
            assert.equal(groupKey(m, groupBy), want);
            assert.equal(groupKey(m, groupBy), want, 'a second derivation of the same metadata');
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('stays exact past the memo limit and for values too long to intern', () => {
    const groupBy = ['user', 'region'];
    const long = 'x'.repeat(200);
    for (let i = 0; i < KEY_MEMO_LIMIT * 2 + 10; i++) {
      const m = { user: `u${i}`, region: i % 3 === 0 ? null : `r${i % 5}` };
      assert.equal(groupKey(m, groupBy), oracleKey(m, groupBy));
    }
    assert.equal(groupKey({ user: long, region: 'eu' }, groupBy), oracleKey({ user: long, region: 'eu' }, groupBy));
    assert.equal(groupKey(null, groupBy), '{"user":null,"region":null}');
    // Keys of short values come back as the same string, not a copy.
    const a = groupKey({ user: 'same', region: 'eu' }, groupBy);
    const b = groupKey({ region: 'eu', user: 'same', other: 1 }, groupBy);
    assert.equal(a, b);
  });
});

describe('sortByGroupKey', () => {
  it('orders keys as compareGroupKeys does, each with its parsed dimensions, the overflow group last', () => {
    const groupBy = ['model', 'region'];
    fc.assert(
      fc.property(fc.array(fc.record({ model: valueArb, region: valueArb }), { maxLength: 40 }), fc.boolean(), (metas, overflow) => {
        const keys = [...new Set(metas.map((m) => groupKey(m, groupBy)))];
        if (overflow) keys.splice(Math.floor(keys.length / 2), 0, OVERFLOW_GROUP);
        const sorted = sortByGroupKey(keys, (k) => k);
        assert.deepEqual(
          sorted.map((s) => s.item),
          [...keys].sort(compareGroupKeys),
        );
        // The documented order, from the values themselves: by model then region, null first, overflow last.
        const rank = (k: string): Array<[number, string]> =>
          k === OVERFLOW_GROUP
            ? [[2, '']]
            : Object.values(JSON.parse(k) as Record<string, string | null>).map((v) => (v === null ? [0, ''] : [1, v]));
        const byRank = (x: string, y: string): number => {
          const [a, b] = [rank(x), rank(y)];
          for (let i = 0; i < Math.min(a.length, b.length); i++) {
            if (a[i]![0] !== b[i]![0]) return a[i]![0] - b[i]![0];
            if (a[i]![1] !== b[i]![1]) return a[i]![1] < b[i]![1] ? -1 : 1;
          }
          return a.length - b.length;
        };
        assert.deepEqual(
          sorted.map((s) => s.item),
          [...keys].sort(byRank),
        );
        for (const s of sorted) assert.deepEqual(s.group.dimensions, s.item === OVERFLOW_GROUP ? null : JSON.parse(s.item));
        if (overflow) assert.equal(sorted.at(-1)!.item, OVERFLOW_GROUP);
      }),
      { numRuns: 300 },
    );
  });
});
