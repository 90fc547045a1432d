// Owns the aggregation operators: their names and the exact value each reads from a merged hour state.
// To add an operator, add it here; configuration, the API schemas and the close all take the list from here.
// Must never load raw events or do I/O: an operator is a pure function of a merged RollupState (and, for unique,
// of the count of distinct values in the period's stored set).

import { divideFixed, fixedOfCount, fixedOfNumber, formatFixed, numberText, type Fixed } from './decimal.js';
import type { RollupState } from './rollup-state.js';

export const OPERATORS = ['sum', 'avg', 'min', 'max', 'count', 'first', 'last', 'unique'] as const;
export type Operator = (typeof OPERATORS)[number];

/** The part of a merged state beside its count that an operator's value reads: first and last read (ts, seq, value). */
export type StateField = 'sum' | 'min' | 'max' | 'first' | 'last';

/** The meters with groupBy and each one's operator: what a read of their groups must be able to value. */
export type GroupOperators = ReadonlyMap<string, Operator>;

/** What each operator reads (null: the count alone, or for unique the distinct count, which no state holds). */
export const OPERATOR_READS: Readonly<Record<Operator, StateField | null>> = {
  sum: 'sum',
  avg: 'sum',
  min: 'min',
  max: 'max',
  count: null,
  first: 'first',
  last: 'last',
  unique: null,
};

/**
 * The exact value an operator reports for a merged state. avg is the exact sum / n, rounded half away from zero to 12
 * places. unique is `distinct`, the number of distinct values of its field, which no hour state can hold: the caller
 * counts them in the period's set of values (0 when none is given).
 */
export function operatorValue(op: Operator, s: RollupState, distinct = 0): Fixed {
  switch (op) {
    case 'sum':
      return s.sum;
    case 'avg':
      return divideFixed(s.sum, s.count);
    case 'min':
      return fixedOfNumber(s.min);
    case 'max':
      return fixedOfNumber(s.max);
    case 'count':
      return fixedOfCount(s.count);
    case 'first':
      return fixedOfNumber(s.firstValue);
    case 'last':
      return fixedOfNumber(s.lastValue);
    case 'unique':
      return fixedOfCount(distinct);
  }
}

/** formatFixed(operatorValue(op, s, distinct)), the canonical text, without a bigint where the value is one number. */
export function operatorText(op: Operator, s: RollupState, distinct = 0): string {
  switch (op) {
    case 'sum':
      return formatFixed(s.sum);
    case 'avg':
      return formatFixed(divideFixed(s.sum, s.count));
    case 'min':
      return numberText(s.min);
    case 'max':
      return numberText(s.max);
    case 'count':
      return String(s.count);
    case 'first':
      return numberText(s.firstValue);
    case 'last':
      return numberText(s.lastValue);
    case 'unique':
      return String(distinct);
  }
}
