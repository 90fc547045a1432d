// Owns exact decimal sums over the canonical decimal text SQLite stores (rollup and group totals), done in
// SQLite's own integer arithmetic: whole parts and 12-place fractions are summed apart and joined in BigInt
// once per result row, not once per stored row through a JavaScript aggregate. Must never round: a sum that
// could leave 64-bit integers, or text that is not plain canonical decimal, is summed by meterhook_dec_sum.

import type Database from 'better-sqlite3';
import { DECIMAL_PLACES, formatFixed } from '../../domain/decimal.js';

const UNIT = 10n ** BigInt(DECIMAL_PLACES);
const DOT = "instr(sum, '.')";
const PAD = '0'.repeat(DECIMAL_PLACES);
/** The fraction's digits as an integer of 12 places, with the text's sign ("-0.5" → -500000000000). */
const FRACTION =
  `CASE WHEN ${DOT} > 0 THEN (CASE WHEN substr(sum, 1, 1) = '-' THEN -1 ELSE 1 END) * ` +
  `CAST(substr(substr(sum, ${DOT} + 1) || '${PAD}', 1, ${DECIMAL_PLACES}) AS INTEGER) ELSE 0 END`;
/** 1 for text this sum cannot take exactly: other characters, more than 12 places, or over 18 whole digits. */
const ODD =
  `(sum GLOB '*[^0-9.-]*' OR (${DOT} > 0 AND length(sum) - ${DOT} > ${DECIMAL_PLACES}) ` +
  `OR (CASE WHEN ${DOT} > 0 THEN ${DOT} - 1 ELSE length(sum) END) > 18)`;

const WHOLE = 'CAST(sum AS INTEGER)';
/** The aggregate columns of an exact sum of `sum` (text): sum_int, sum_frac and sum_odd, for exactMergedRead. */
export const EXACT_SUM_COLUMNS = [
  `CAST(sum(${WHOLE}) AS TEXT) AS sum_int`,
  `CAST(sum(${FRACTION}) AS TEXT) AS sum_frac`,
  `max(${ODD}) AS sum_odd`,
].join(', ');
/** What the outer select of a merged read takes of the exact-sum columns. */
export const EXACT_SUM_OUT = 'a.sum_int, a.sum_frac, a.sum_odd';
/** The same result through the JavaScript aggregate, for what the native sum cannot take. */
export const UDF_SUM_COLUMNS = 'meterhook_dec_sum(sum) AS sum';

interface NativeSum {
  sum_int: string;
  sum_frac: string;
  sum_odd: number;
  sum?: string;
}

const isIntegerOverflow = (err: unknown): boolean => err instanceof Error && /integer overflow/i.test(err.message);

/**
 * A merged read: `native` selects the exact-sum columns; `fallback` is the same query with the JavaScript
 * sum. Rows come back with `sum` as canonical decimal text either way.
 */
export function exactMergedRead<R extends object>(db: Database.Database, native: string, fallback: string) {
  const fast = db.prepare(native);
  const slow = db.prepare(fallback);
  return (params: Record<string, unknown>): R[] => {
    let rows: Array<NativeSum & R>;
    try {
      rows = fast.all(params) as Array<NativeSum & R>;
    } catch (err) {
      if (isIntegerOverflow(err)) return slow.all(params) as R[];
      throw err;
    }
    for (const r of rows) {
      if (r.sum_odd) return slow.all(params) as R[];
      r.sum = formatFixed(BigInt(r.sum_int) * UNIT + BigInt(r.sum_frac));
    }
    return rows;
  };
}
