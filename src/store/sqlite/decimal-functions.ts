// Owns the SQL functions that give SQLite exact decimal arithmetic over the TEXT totals it stores
// (rollups.sum): addition in upserts, an aggregate sum for merged reads, and the conversion of REAL
// totals written by older versions. Must never return a float: every result is canonical decimal text.

import type Database from 'better-sqlite3';
import { fixedOfNumber, formatFixed, parseFixed, type Fixed } from '../../domain/decimal.js';

/** A stored value as a fixed decimal: TEXT totals, or REAL/INTEGER values of events and old rows. */
function fixedOfSql(v: unknown): Fixed {
  if (typeof v === 'string') return parseFixed(v);
  if (typeof v === 'number') return fixedOfNumber(v);
  if (typeof v === 'bigint') return v * 10n ** 12n;
  throw new TypeError(`not a number: ${String(v)}`);
}

export function registerDecimalFunctions(db: Database.Database): void {
  db.function('meterhook_dec_add', { deterministic: true }, (a: unknown, b: unknown) => formatFixed(fixedOfSql(a) + fixedOfSql(b)));
  db.function('meterhook_dec', { deterministic: true }, (a: unknown) => formatFixed(fixedOfSql(a)));
  db.aggregate('meterhook_dec_sum', {
    start: () => 0n,
    step: (acc: Fixed, v: unknown) => (v === null ? acc : acc + fixedOfSql(v)),
    result: (acc: Fixed) => formatFixed(acc),
  });
}
