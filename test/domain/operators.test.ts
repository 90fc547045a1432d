// The operators against the exact values they read: the canonical text each gives without a bigint is
// formatFixed of its exact value, and a state cut down to what OPERATOR_READS names gives the same value
// as the whole state (what a read that decodes only those columns relies on).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatFixed } from '../../src/domain/decimal.js';
import { OPERATOR_READS, OPERATORS, operatorText, operatorValue, type StateField } from '../../src/domain/operators.js';
import type { RollupState } from '../../src/domain/rollup-state.js';

const valueArb = fc.oneof(
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.tuple(fc.integer(), fc.nat(999)).map(([n, f]) => n + f / 1000),
  fc.double({ min: -1e20, max: 1e20, noNaN: true }),
);
const stateArb: fc.Arbitrary<RollupState> = fc.record({
  count: fc.integer({ min: 1, max: 1_000_000 }),
  sum: fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
  min: valueArb,
  max: valueArb,
  firstTs: fc.maxSafeNat(),
  firstSeq: fc.nat(),
  firstValue: valueArb,
  lastTs: fc.maxSafeNat(),
  lastSeq: fc.nat(),
  lastValue: valueArb,
});

/** The state fields behind each StateField, written out here apart from the code under test. */
const KEPT: Record<StateField, Array<keyof RollupState>> = {
  sum: ['sum'],
  min: ['min'],
  max: ['max'],
  first: ['firstTs', 'firstSeq', 'firstValue'],
  last: ['lastTs', 'lastSeq', 'lastValue'],
};

/** The state with only its count and `field` kept, every other field zero. */
function cutDown(s: RollupState, field: StateField | null): RollupState {
  const kept = new Set<keyof RollupState>(['count', ...(field === null ? [] : KEPT[field])]);
  const entries = Object.entries(s).map(([k, v]) => [k, kept.has(k as keyof RollupState) ? v : typeof v === 'bigint' ? 0n : 0]);
  return Object.fromEntries(entries) as RollupState;
}

describe('operators', () => {
  it('operatorText is the canonical text of operatorValue, for every operator (property)', () => {
    fc.assert(
      fc.property(stateArb, fc.nat(), (s, distinct) => {
        for (const op of OPERATORS) assert.equal(operatorText(op, s, distinct), formatFixed(operatorValue(op, s, distinct)), op);
      }),
      { numRuns: 2000 },
    );
  });

  it('an operator values a state from its count and what OPERATOR_READS names alone (property)', () => {
    fc.assert(
      fc.property(stateArb, fc.nat(), (s, distinct) => {
        for (const op of OPERATORS) {
          const field = OPERATOR_READS[op];
          assert.equal(operatorValue(op, cutDown(s, field), distinct), operatorValue(op, s, distinct), op);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('names a field for each operator that reads one: sum and avg the sum, count and unique none', () => {
    assert.deepEqual(
      OPERATORS.map((op) => `${op}:${OPERATOR_READS[op]}`),
      ['sum:sum', 'avg:sum', 'min:min', 'max:max', 'count:null', 'first:first', 'last:last', 'unique:null'],
    );
  });
});
