// Merged reads sum stored decimal totals exactly in SQLite's integers (whole parts and 12-place fractions
// apart), and fall back to the JavaScript aggregate for text it cannot take and sums past 64 bits. Both are
// compared with BigInt sums of the same text, on a real SQLite database with meterhook's schema.
// store-contract: sqlite — SQLite's merged-read SQL; PostgreSQL sums numeric natively

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { formatFixed, parseFixed } from '../../src/domain/decimal.js';
import { exactMergedRead } from '../../src/store/sqlite/exact-sum.js';
import { migrate } from '../../src/store/sqlite/migrations.js';
import {
  MERGED_GROUPS_SQL,
  MERGED_GROUPS_UDF_SQL,
  MERGED_ROLLUPS_SQL,
  MERGED_ROLLUPS_UDF_SQL,
  MERGED_SOLE_GROUPS_SQL,
  MERGED_SOLE_GROUPS_UDF_SQL,
} from '../../src/store/sqlite/sqlite-sql.js';

const HOUR = 3_600_000;

/** Canonical decimal text as meterhook writes totals: up to 18 whole digits and 12 places, either sign. */
const canonical = fc
  .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 18n - 1n }), fc.bigInt({ min: 0n, max: 10n ** 12n - 1n }), fc.nat(3))
  .map(([neg, whole, frac, shape]) => {
    const w = shape === 0 ? whole % 1000n : whole; // small totals are the common case
    const f = shape === 1 ? 0n : frac;
    const v = w * 10n ** 12n + f;
    return formatFixed(neg ? -v : v);
  });

/** Rows of hour totals, of groups, or of totals that keep their hour's one group (sole_grp). */
function dbWith(kind: 'rollups' | 'group_rollups' | 'sole groups', sums: readonly string[]): Database.Database {
  const db = new Database(':memory:');
  migrate(db);
  const table = kind === 'sole groups' ? 'rollups' : kind;
  const cols = kind === 'rollups' ? '' : kind === 'group_rollups' ? ', grp' : ', sole_grp';
  const vals = kind === 'rollups' ? '' : ", 'g'";
  const ins = db.prepare(
    `INSERT INTO ${table} (customer_id, hour, event_type${cols}, count, sum, vmin, vmax, first_ts, first_seq, first_value,
       last_ts, last_seq, last_value) VALUES ('c', ?, 't'${vals}, 1, ?, 0, 0, ?, ?, 0, ?, ?, 0)`,
  );
  for (const [i, s] of sums.entries()) ins.run(i * HOUR, s, i * HOUR, i + 1, i * HOUR, i + 1);
  return db;
}

const oracle = (sums: readonly string[]): string => formatFixed(sums.reduce((a, s) => a + parseFixed(s), 0n));
const params = (n: number) => ({ c: 'c', from: 0, to: n * HOUR });

describe('exact sums in merged reads (SQLite)', () => {
  for (const [table, native, udf] of [
    ['rollups', MERGED_ROLLUPS_SQL, MERGED_ROLLUPS_UDF_SQL],
    ['group_rollups', MERGED_GROUPS_SQL, MERGED_GROUPS_UDF_SQL],
    ['sole groups', MERGED_SOLE_GROUPS_SQL, MERGED_SOLE_GROUPS_UDF_SQL],
  ] as const) {
    it(`${table}: equals the BigInt sum of the stored text, native or through the fallback`, () => {
      fc.assert(
        fc.property(fc.array(canonical, { minLength: 1, maxLength: 40 }), (sums) => {
          const db = dbWith(table, sums);
          try {
            const rows = exactMergedRead<{ sum: string }>(db, native, udf)(params(sums.length));
            assert.equal(rows.length, 1);
            assert.equal(rows[0]!.sum, oracle(sums));
          } finally {
            db.close();
          }
        }),
        { numRuns: 300 },
      );
    });

    it(`${table}: sums in SQLite's integers when the parts fit, with no JavaScript aggregate`, () => {
      const sums = ['0.000000000001', '-0.5', '12.25', '-12.125', '999999999999999.999999999999', '7', '-3'];
      const db = dbWith(table, sums);
      try {
        // The native query alone: its columns, joined in BigInt, are the exact sum.
        const [row] = db.prepare(native).all(params(sums.length)) as Array<{ sum_int: string; sum_frac: string; sum_odd: number }>;
        assert.equal(row!.sum_odd, 0);
        assert.equal(formatFixed(BigInt(row!.sum_int) * 10n ** 12n + BigInt(row!.sum_frac)), oracle(sums));
      } finally {
        db.close();
      }
    });

    it(`${table}: whole parts that overflow 64 bits, and text it cannot take, go through the fallback exactly`, () => {
      for (const sums of [
        Array.from({ length: 11 }, () => '900000000000000000'), // 9.9e18 > 2^63: SQLite's sum() overflows
        ['1234567890123456789.5', '1'], // 19 whole digits
        ['1e5', '2'], // not canonical text
        ['0.0000000000001', '1'], // 13 places
      ]) {
        const db = dbWith(table, sums);
        try {
          const [raw] = (() => {
            try {
              return db.prepare(native).all(params(sums.length)) as Array<{ sum_odd: number }>;
            } catch (err) {
              return [{ sum_odd: /integer overflow/.test(String(err)) ? 2 : -1 }];
            }
          })();
          assert.ok(raw!.sum_odd >= 1, `${sums[0]}: the native sum must refuse this (got ${JSON.stringify(raw)})`);
          const [row] = exactMergedRead<{ sum: string }>(db, native, udf)(params(sums.length));
          assert.equal(row!.sum, oracle(sums), sums.join(' + '));
        } finally {
          db.close();
        }
      }
    });
  }
});
