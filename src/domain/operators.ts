// Owns the aggregation operators: their names and the exact value each reads from a merged hour state.
// To add an operator, add it here; configuration, the API schemas and the close all take the list from here.
// Must never load raw events or do I/O: an operator is a pure function of a merged RollupState (and, for unique,
// of the count of distinct values in the period's stored set).

import { divideFixed, fixedOfCount, fixedOfNumber, type Fixed } from './decimal.js';
import type { RollupState } from './rollup-state.js';

export const OPERATORS = ['sum', 'avg', 'min', 'max', 'count', 'first', 'last', 'unique'] as const;
export type Operator = (typeof OPERATORS)[number];

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
