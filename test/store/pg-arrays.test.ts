// The column-array literals the set-based PostgreSQL statements send are read back by a real server
// as exactly the values given: strings with quotes, backslashes, braces, commas, spaces, the word NULL,
// empty strings and non-ASCII text; nulls; floats by their shortest text; bigints and numeric text.
// Random strings over the characters that matter in an array literal are checked the same way.
// store-contract: self — the literals are about PostgreSQL's array syntax; it starts its own cluster (or uses TEST_DATABASE_URL's server)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { numberArray, textArray } from '../../src/store/postgres/pg-arrays.js';
import { startPgCluster, type PgCluster } from '../helpers/postgres-cluster.js';

let cluster: PgCluster;
let client: pg.Client;

before(async () => {
  cluster = await startPgCluster();
  client = new pg.Client({ connectionString: await cluster.createDatabase('pgarrays') });
  await client.connect();
});
after(async () => {
  await client?.end().catch(() => undefined);
  await cluster?.stop();
});

/** What the server reads the literal as, one row per element, in order. */
async function readBack(literal: string, type: string): Promise<Array<string | null>> {
  const r = await client.query(`SELECT x::text AS x FROM unnest($1::${type}[]) WITH ORDINALITY AS u(x, i) ORDER BY i`, [literal]);
  return r.rows.map((row) => row.x as string | null);
}

describe('PostgreSQL array literals', () => {
  it('text: every awkward string and null comes back as given', async () => {
    const values = [
      '',
      ' ',
      'a b',
      '"',
      '\\',
      '\\"',
      'a,b',
      '{x}',
      '}',
      'NULL',
      'null',
      "it's",
      'ünïcødé ✓ 🧪',
      '\t\n',
      'x'.repeat(500),
      null,
    ];
    assert.deepEqual(await readBack(textArray(values), 'text'), values);
  });

  it('text: random strings over quote, backslash, brace, comma, space and letters round-trip', async () => {
    const alphabet = ['"', '\\', '{', '}', ',', ' ', 'a', 'N', 'U', 'L', "'", 'é'];
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const values = Array.from({ length: 2000 }, () =>
      Array.from({ length: Math.floor(rnd() * 8) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join(''),
    );
    assert.deepEqual(await readBack(textArray(values), 'text'), values);
  });

  it('float8: the same doubles, null kept', async () => {
    const values = [0, -0, 0.1, 1 / 3, -2.5, 1e-7, 5e-324, 1.7976931348623157e308, 123456789.123456, 2 ** 53, null];
    const back = await readBack(numberArray(values), 'float8');
    assert.deepEqual(
      back.map((x) => (x === null ? null : Number(x))),
      values.map((v) => (v === null ? null : v === 0 ? 0 : v)),
    );
  });

  it('bigint and numeric: integers and decimal text exactly', async () => {
    assert.deepEqual(await readBack(numberArray([0, -1, 9_007_199_254_740_991, 1_767_225_600_000, null]), 'bigint'), [
      '0',
      '-1',
      '9007199254740991',
      '1767225600000',
      null,
    ]);
    const sums = ['0', '-0.000001', '12345678901234567890.123456', '7'];
    assert.deepEqual(await readBack(numberArray(sums), 'numeric'), sums);
  });

  it('refuses what is no number rather than sending it', () => {
    assert.throws(() => numberArray([Number.NaN]), RangeError);
    assert.throws(() => numberArray([Number.POSITIVE_INFINITY]), RangeError);
    assert.throws(() => numberArray(['1},{2']), RangeError);
    assert.throws(() => numberArray(['1e5']), RangeError);
  });

  it('empty arrays', async () => {
    assert.equal(textArray([]), '{}');
    assert.deepEqual(await readBack(numberArray([]), 'bigint'), []);
  });
});
