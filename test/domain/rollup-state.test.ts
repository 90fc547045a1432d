import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { OPERATORS } from '../../src/config/schema.js';
import { fixedOfNumber, formatFixed } from '../../src/domain/decimal.js';
import { operatorValue } from '../../src/domain/operators.js';
import { mergeAll, mergeInto, stateOfEvent, type RollupState } from '../../src/domain/rollup-state.js';

interface Ev {
  ts: number;
  seq: number;
  value: number;
}

const stateOf = (evs: readonly Ev[]): RollupState => {
  const [head, ...rest] = evs;
  assert.ok(head, 'a state needs at least one event');
  const s = stateOfEvent(head.ts, head.seq, head.value);
  for (const e of rest) mergeInto(s, stateOfEvent(e.ts, e.seq, e.value));
  return s;
};

/** The state a correct merge must produce for these events, computed without mergeInto. */
function bruteForce(evs: readonly Ev[]): RollupState {
  const byTime = [...evs].sort((a, b) => a.ts - b.ts || a.seq - b.seq);
  const first = byTime[0]!;
  const last = byTime[byTime.length - 1]!;
  return {
    count: evs.length,
    sum: evs.reduce((s, e) => s + fixedOfNumber(e.value), 0n),
    min: Math.min(...evs.map((e) => e.value)),
    max: Math.max(...evs.map((e) => e.value)),
    firstTs: first.ts,
    firstSeq: first.seq,
    firstValue: first.value,
    lastTs: last.ts,
    lastSeq: last.seq,
    lastValue: last.value,
  };
}

const merged = (a: RollupState, b: RollupState): RollupState => mergeInto({ ...a }, b);

// Values are multiples of 1/4 well inside 2^53, so every sum is exact and associativity can be checked
// with strict equality. Timestamps come from a tiny range so ties on firstTs/lastTs are the common case.
const valueArb = fc.integer({ min: -4_000_000, max: 4_000_000 }).map((n) => (n === 0 ? 0 : n / 4));
const tsArb = fc.integer({ min: 1_767_225_600_000, max: 1_767_225_600_003 });

/** Disjoint event sets with globally unique seqs (as in the store), split into `parts` non-empty states. */
function statesArb(parts: number) {
  return fc
    .array(fc.record({ ts: tsArb, value: valueArb, part: fc.integer({ min: 0, max: parts - 1 }) }), {
      minLength: parts,
      maxLength: 30,
    })
    .chain((raw) =>
      fc
        .shuffledSubarray(
          raw.map((_, i) => i + 1),
          { minLength: raw.length, maxLength: raw.length },
        )
        .map((seqs) => {
          const evs = raw.map((r, i) => ({ ts: r.ts, value: r.value, seq: seqs[i]!, part: r.part }));
          // Guarantee every part is non-empty: the first `parts` events seed one part each.
          evs.forEach((e, i) => {
            if (i < parts) e.part = i;
          });
          const groups = Array.from({ length: parts }, (_, p) => evs.filter((e) => e.part === p));
          return { all: evs as Ev[], groups: groups as Ev[][] };
        }),
    );
}

describe('stateOfEvent', () => {
  it('is a one-event state whose first and last are that event', () => {
    assert.deepEqual(stateOfEvent(1_000, 7, -2.5), {
      count: 1,
      sum: fixedOfNumber(-2.5),
      min: -2.5,
      max: -2.5,
      firstTs: 1_000,
      firstSeq: 7,
      firstValue: -2.5,
      lastTs: 1_000,
      lastSeq: 7,
      lastValue: -2.5,
    });
  });

  it('keeps zero and fractions as given: the sum of 0.1 is exactly one tenth', () => {
    const s = stateOfEvent(0, 1, 0);
    assert.equal(s.sum, 0n);
    assert.equal(s.min, 0);
    assert.equal(s.max, 0);
    assert.equal(formatFixed(stateOfEvent(5, 2, 0.1).sum), '0.1');
  });

  it('sums exactly where binary floats drift: ten 0.1 make 1, 0.1 + 0.2 makes 0.3, 1e16 + 1 + 1 keeps both ones', () => {
    const tenths = mergeAll(Array.from({ length: 10 }, (_, i) => stateOfEvent(i, i + 1, 0.1)))!;
    assert.equal(formatFixed(tenths.sum), '1');
    assert.equal(formatFixed(mergeAll([stateOfEvent(1, 1, 0.1), stateOfEvent(2, 2, 0.2)])!.sum), '0.3');
    const big = mergeAll([stateOfEvent(1, 1, 1e14), stateOfEvent(2, 2, 1), stateOfEvent(3, 3, 1)])!;
    assert.equal(formatFixed(big.sum), '100000000000002');
    let huge = stateOfEvent(1, 1, 999_999_999_999_999);
    for (let i = 0; i < 100; i++) huge = merged(huge, stateOfEvent(2, i + 2, 999_999_999_999_999));
    assert.equal(formatFixed(huge.sum), '100999999999999899');
  });
});

describe('mergeInto', () => {
  it('mutates and returns its first argument and leaves the second untouched', () => {
    const a = stateOfEvent(10, 1, 1);
    const b = stateOfEvent(20, 2, 5);
    const bCopy = { ...b };
    const r = mergeInto(a, b);
    assert.equal(r, a);
    assert.deepEqual(b, bCopy);
    assert.deepEqual(a, {
      count: 2,
      sum: fixedOfNumber(6),
      min: 1,
      max: 5,
      firstTs: 10,
      firstSeq: 1,
      firstValue: 1,
      lastTs: 20,
      lastSeq: 2,
      lastValue: 5,
    });
  });

  it('breaks a tie on event time by arrival sequence, in either merge direction', () => {
    const early = stateOfEvent(100, 3, 30); // arrived first
    const late = stateOfEvent(100, 9, 90); // same time, arrived later
    for (const s of [merged(early, late), merged(late, early)]) {
      assert.equal(s.firstValue, 30);
      assert.equal(s.firstSeq, 3);
      assert.equal(s.lastValue, 90);
      assert.equal(s.lastSeq, 9);
    }
  });

  it('orders first/last by event time before arrival: a late-arriving earlier event becomes first', () => {
    const arrivedFirst = stateOfEvent(200, 1, 2);
    const arrivedLaterButEarlier = stateOfEvent(150, 2, 1.5);
    const s = merged(arrivedFirst, arrivedLaterButEarlier);
    assert.equal(s.firstValue, 1.5);
    assert.equal(s.firstTs, 150);
    assert.equal(s.lastValue, 2);
    assert.equal(s.lastTs, 200);
  });

  it('takes min and max across negative, zero and positive values', () => {
    const s = mergeAll([stateOfEvent(1, 1, 0), stateOfEvent(2, 2, -7.25), stateOfEvent(3, 3, 3.5)])!;
    assert.equal(s.min, -7.25);
    assert.equal(s.max, 3.5);
    assert.equal(formatFixed(s.sum), '-3.75');
    assert.equal(s.count, 3);
  });

  it('equals the brute-force state of the union of events (property)', () => {
    fc.assert(
      fc.property(statesArb(2), ({ all, groups }) => {
        const [g1, g2] = groups as [Ev[], Ev[]];
        assert.deepEqual(merged(stateOf(g1), stateOf(g2)), bruteForce(all));
      }),
      { numRuns: 300 },
    );
  });

  it('is commutative (property, ties on time included)', () => {
    fc.assert(
      fc.property(statesArb(2), ({ groups }) => {
        const [a, b] = groups.map(stateOf) as [RollupState, RollupState];
        assert.deepEqual(merged(a, b), merged(b, a));
      }),
      { numRuns: 300 },
    );
  });

  it('is associative (property, ties on time included)', () => {
    fc.assert(
      fc.property(statesArb(3), ({ groups }) => {
        const [a, b, c] = groups.map(stateOf) as [RollupState, RollupState, RollupState];
        assert.deepEqual(merged(merged(a, b), c), merged(a, merged(b, c)));
      }),
      { numRuns: 300 },
    );
  });

  it('does not depend on the order events are folded in (property)', () => {
    fc.assert(
      fc.property(
        statesArb(1).chain(({ all }) =>
          fc.tuple(fc.constant(all), fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length })),
        ),
        ([inOrder, shuffled]) => {
          assert.deepEqual(stateOf(shuffled), stateOf(inOrder));
          assert.deepEqual(stateOf(shuffled), bruteForce(inOrder));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('mergeAll', () => {
  it('returns undefined for no states', () => {
    assert.equal(mergeAll([]), undefined);
  });

  it('copies instead of mutating its inputs', () => {
    const a = stateOfEvent(1, 1, 1);
    const b = stateOfEvent(2, 2, 2);
    const aCopy = { ...a };
    const s = mergeAll([a, b])!;
    assert.notEqual(s, a);
    assert.deepEqual(a, aCopy);
    assert.equal(s.count, 2);
    assert.equal(s.lastValue, 2);
  });

  it('handles very many states without spreading them into a call (no stack overflow)', () => {
    const states = Array.from({ length: 200_000 }, (_, i) => stateOfEvent(i, i + 1, i % 2 === 0 ? i : -i));
    const s = mergeAll(states)!;
    assert.equal(s.count, 200_000);
    assert.equal(s.min, -199_999);
    assert.equal(s.max, 199_998);
    assert.equal(s.firstValue, 0);
    assert.equal(s.lastValue, -199_999);
  });
});

describe('operatorValue', () => {
  // Events: t=10 → 4, t=20 → -2.5, t=20 (later arrival) → 0, t=5 (arrived last) → 10/3.
  const s = mergeAll([stateOfEvent(10, 1, 4), stateOfEvent(20, 2, -2.5), stateOfEvent(20, 3, 0), stateOfEvent(5, 4, 10 / 3)])!;

  it('covers every configured operator', () => {
    assert.deepEqual([...OPERATORS].sort(), ['avg', 'count', 'first', 'last', 'max', 'min', 'sum', 'unique']);
  });
  it('unique is the distinct count it is given, never a figure of the hour state', () => {
    assert.equal(formatFixed(operatorValue('unique', s, 3)), '3');
    assert.equal(formatFixed(operatorValue('unique', s)), '0');
  });

  const value = (op: Parameters<typeof operatorValue>[0], st: RollupState) => formatFixed(operatorValue(op, st));
  it('sum is exact', () => assert.equal(value('sum', s), '4.833333333333'));
  it('avg is the exact sum / n, rounded half away from zero at 12 places', () => assert.equal(value('avg', s), '1.208333333333'));
  it('min', () => assert.equal(value('min', s), '-2.5'));
  it('max', () => assert.equal(value('max', s), '4'));
  it('count is the number of events, whatever the values', () => assert.equal(value('count', s), '4'));
  it('first is the earliest event time', () => assert.equal(value('first', s), '3.333333333333'));
  it('last is the latest event time, ties to the later arrival', () => assert.equal(value('last', s), '0'));

  it('avg rounds half away from zero: 10/3, 20/3, -20/3 and an exact half', () => {
    const avgOf = (...vs: number[]) => value('avg', mergeAll(vs.map((v, i) => stateOfEvent(i, i + 1, v)))!);
    assert.equal(avgOf(10, 0, 0), '3.333333333333');
    assert.equal(avgOf(20, 0, 0), '6.666666666667');
    assert.equal(avgOf(-20, 0, 0), '-6.666666666667');
    assert.equal(avgOf(0.000000000001, 0), '0.000000000001');
    assert.equal(avgOf(-0.000000000001, 0), '-0.000000000001');
    assert.equal(avgOf(0.000000000003, 0), '0.000000000002');
  });

  it('count ignores values that are zero or negative', () => {
    const t = mergeAll([stateOfEvent(1, 1, 0), stateOfEvent(2, 2, -5)])!;
    assert.equal(value('count', t), '2');
  });

  it('a single event gives its value for every operator except count and unique', () => {
    const one = stateOfEvent(7, 1, -0.5);
    const expected = (op: string) => (op === 'count' ? '1' : op === 'unique' ? '0' : '-0.5');
    for (const op of OPERATORS) assert.equal(value(op, one), expected(op), op);
  });
});
