// GET /customers?search= reads a bounded index range on both stores: the prefix becomes [prefix, next),
// proved by the query plan (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL after ANALYZE), which
// must search an index with both bounds and scan no table, also for a prefix that matches nothing. The
// answers are every id with the prefix, in byte order, across pages, non-ASCII prefixes included.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { customerListSql, prefixUpperBound } from '../../src/store/customer-listing.js';
import type { PostgresStore } from '../../src/store/postgres/pg-store.js';
import { buildTestApp, TEST_STORE, type TestApp } from '../helpers/app.js';
import { captureBatch, walk } from '../helpers/queries.js';

const IDS = [
  ...Array.from({ length: 2500 }, (_, i) => `acme_${i}`),
  ...Array.from({ length: 2500 }, (_, i) => `zulu_${i}`),
  'añil',
  'año',
  'an',
  'b\u{10FFFF}x',
  'b\u{10FFFF}',
  '日本_1',
  '日本_2',
  '日本',
  '😀_a',
];
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** The plan lines of the listing query, as the store would run it. */
async function plan(t: TestApp, prefix: string): Promise<string[]> {
  if (TEST_STORE === 'postgres') {
    const pool = (t.store as PostgresStore).pool;
    await pool.query('ANALYZE rollups');
    const { sql, params } = customerListSql('postgres', { prefix, limit: 101 });
    const r = await pool.query(`EXPLAIN ${sql}`, params);
    return r.rows.map((x) => String(x['QUERY PLAN']));
  }
  const db = new Database(path.join(t.dir, 'meterhook.db'), { readonly: true });
  try {
    const { sql, params } = customerListSql('sqlite', { prefix, limit: 101 });
    return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail);
  } finally {
    db.close();
  }
}

describe('customer listing: a bounded index range', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
    for (let i = 0; i < IDS.length; i += 1000) {
      await captureBatch(
        t,
        IDS.slice(i, i + 1000).map((customerId) => ({ eventType: 'api.calls', customerId, value: 1 })),
      );
    }
    // Folds SQLite's pending events into the rollups the plan reads.
    assert.equal((await t.store.listCustomers({ limit: 1 })).length, 1);
  });
  after(() => t.close());

  it('raises the last code point of a prefix, skipping surrogates and dropping U+10FFFF', () => {
    assert.equal(prefixUpperBound('acme_1'), 'acme_2');
    assert.equal(prefixUpperBound('a\u{D7FF}'), 'a\u{E000}');
    assert.equal(prefixUpperBound('b\u{10FFFF}'), 'c');
    assert.equal(prefixUpperBound('日本'), '日\u{672D}');
    assert.equal(prefixUpperBound('😀'), '😁');
    assert.equal(prefixUpperBound('\u{10FFFF}\u{10FFFF}'), undefined);
  });

  for (const prefix of ['b', 'acme_1', 'zz']) {
    it(`searches "${prefix}" with both bounds on an index and scans no table`, async () => {
      const lines = await plan(t, prefix);
      const text = lines.join('\n');
      if (TEST_STORE === 'postgres') {
        // An index scan of the range, or a bitmap of it: either reads only the rows in [prefix, next).
        assert.match(text, /(Index (Only )?Scan using|Bitmap Index Scan on) rollups_customer_c\b/, text);
        assert.match(
          text,
          /Index Cond: \(\(+customer_id\)?(::text)? >= '[^']*'::text\) AND \(+customer_id\)?(::text)? < '[^']*'::text\)\)/,
          text,
        );
        assert.doesNotMatch(text, /Seq Scan/, text);
      } else {
        assert.match(text, /SEARCH rollups USING (COVERING INDEX \w+|PRIMARY KEY) \(customer_id>\? AND customer_id<\?\)/, text);
        assert.doesNotMatch(text, /\bSCAN rollups\b/, text);
      }
    });
  }

  it('answers every id with the prefix, in byte order, page by page', async () => {
    for (const prefix of ['acme_1', 'a', 'añ', 'b\u{10FFFF}', '日本', '😀', 'zulu_249', 'b', 'zz', 'acme_10000']) {
      const expected = IDS.filter((id) => id.startsWith(prefix)).sort(byBytes);
      const got = await walk(t, `/customers?limit=97&search=${encodeURIComponent(prefix)}`);
      assert.deepEqual(
        got.map((c: { customerId: string }) => c.customerId),
        expected,
        prefix,
      );
    }
    const all = await walk(t, '/customers?limit=1000');
    assert.deepEqual(
      all.map((c: { customerId: string }) => c.customerId),
      [...IDS].sort(byBytes),
      'the whole listing is in byte order on both stores',
    );
  });
});
