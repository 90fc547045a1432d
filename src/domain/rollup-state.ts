// Owns the mergeable per-hour state behind every aggregation operator: folding events in, merging states.
// Must never load raw events: a period's value is always a merge of hour states.

import { fixedOfNumber, type Fixed } from './decimal.js';

/**
 * Everything any operator needs, kept so that merge(a, b) is associative and commutative.
 * first/last carry (time, seq) so ties on event time are broken by arrival order. `sum` is exact
 * (fixed point); min, max, first and last are each one event's value, whose decimal form is exact.
 */
export interface RollupState {
  count: number;
  sum: Fixed;
  min: number;
  max: number;
  firstTs: number;
  firstSeq: number;
  firstValue: number;
  lastTs: number;
  lastSeq: number;
  lastValue: number;
}

export function stateOfEvent(ts: number, seq: number, value: number): RollupState {
  return {
    count: 1,
    sum: fixedOfNumber(value),
    min: value,
    max: value,
    firstTs: ts,
    firstSeq: seq,
    firstValue: value,
    lastTs: ts,
    lastSeq: seq,
    lastValue: value,
  };
}

/** Folds one event into a state in place, allocating nothing but the sum: the slices' hot path. */
export function addEventInto(a: RollupState, ts: number, seq: number, value: number): RollupState {
  a.count += 1;
  a.sum += fixedOfNumber(value);
  if (value < a.min) a.min = value;
  if (value > a.max) a.max = value;
  if (before(ts, seq, a.firstTs, a.firstSeq)) {
    a.firstTs = ts;
    a.firstSeq = seq;
    a.firstValue = value;
  }
  if (before(a.lastTs, a.lastSeq, ts, seq)) {
    a.lastTs = ts;
    a.lastSeq = seq;
    a.lastValue = value;
  }
  return a;
}

function before(aTs: number, aSeq: number, bTs: number, bSeq: number): boolean {
  return aTs < bTs || (aTs === bTs && aSeq < bSeq);
}

/** Merges b into a in place and returns a; the hot path merges thousands of events per batch. */
export function mergeInto(a: RollupState, b: RollupState): RollupState {
  a.count += b.count;
  a.sum += b.sum;
  if (b.min < a.min) a.min = b.min;
  if (b.max > a.max) a.max = b.max;
  if (before(b.firstTs, b.firstSeq, a.firstTs, a.firstSeq)) {
    a.firstTs = b.firstTs;
    a.firstSeq = b.firstSeq;
    a.firstValue = b.firstValue;
  }
  if (before(a.lastTs, a.lastSeq, b.lastTs, b.lastSeq)) {
    a.lastTs = b.lastTs;
    a.lastSeq = b.lastSeq;
    a.lastValue = b.lastValue;
  }
  return a;
}

export function mergeAll(states: Iterable<RollupState>): RollupState | undefined {
  let acc: RollupState | undefined;
  for (const s of states) acc = acc ? mergeInto(acc, s) : { ...s };
  return acc;
}
