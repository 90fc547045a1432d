// Data written by the last version with binary-float totals (SQLite schema 4, PostgreSQL schema 2)
// is converted in place to exact decimals when a current meterhook opens it. The fixtures were
// written by that version through its HTTP API (see test/fixtures/legacy/README.md): ten events of
// 0.1 in one batch, 0.1 + 0.2, 1e16 + 1 + 1, an average of 1, 2, 2, and two events whose raw rows were
// then deleted as retention would.
// store-contract: self — opens legacy SQLite and PostgreSQL fixtures, the latter on its own cluster
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { formatFixed } from '../../src/domain/decimal.js';
import { PostgresStore } from '../../src/store/postgres/pg-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { startPgCluster, type PgCluster } from '../helpers/postgres-cluster.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'legacy');
const H = (iso: string) => Date.parse(iso);
const DAY9 = H('2026-03-09T00:00:00Z');
const DAY10 = H('2026-03-10T00:00:00Z');

async function hourSum(store: Store, customerId: string, hour: string, type = 'api.calls'): Promise<string | undefined> {
  const rows = await store.readRollups(customerId, H(hour), H(hour) + 3_600_000);
  const r = rows.find((x) => x.eventType === type);
  return r === undefined ? undefined : formatFixed(r.sum);
}

async function checkConverted(store: Store): Promise<void> {
  // Rollups whose events are all stored are recomputed exactly from them.
  assert.equal(await hourSum(store, 'cust_float', '2026-03-09T08:00:00Z'), '1', 'ten 0.1 in one batch');
  assert.equal(await hourSum(store, 'cust_float', '2026-03-09T09:00:00Z'), '0.3', '0.1 + 0.2');
  assert.equal(await hourSum(store, 'cust_big', '2026-03-09T11:00:00Z'), '10000000000000002', '1e16 + 1 + 1');
  assert.equal(await hourSum(store, 'cust_float', '2026-03-10T09:00:00Z'), '0.3', 'an open hour');
  // Events that retention deleted: the old float total, rounded at 12 places.
  assert.equal(await hourSum(store, 'cust_retained', '2026-03-09T13:00:00Z'), '0.3');

  // Merged reads (current usage) add the exact hour totals.
  const day = await store.mergedRollups('cust_float', DAY9, DAY10);
  const byType = Object.fromEntries(day.map((r) => [r.eventType, [formatFixed(r.sum), r.count]]));
  assert.deepEqual(byType['api.calls'], ['1.3', 12]);
  assert.deepEqual(byType['latency.ms'], ['5', 3]);

  // Stored documents keep their numbers, now as decimal text (float noise rounded at 12 places).
  const daily = await store.getAggregation('cust_float', 'daily', DAY9);
  assert.ok(daily?.final);
  assert.equal(daily.revision, 1);
  assert.deepEqual(daily.eventsDecimal, {
    'api.calls': '1.3',
    'latency.ms': '1.666666666667',
    low: '-2.5',
    seats: '7',
    'storage.bytes': '52428800',
  });
  assert.deepEqual(daily.events, { 'api.calls': 1.3, 'latency.ms': 1.666666666667, low: -2.5, seats: 7, 'storage.bytes': 52428800 });
  assert.deepEqual(daily.eventCounts, { 'api.calls': 12, 'latency.ms': 3, low: 1, seats: 1, 'storage.bytes': 1 });
  const open = await store.getAggregation('cust_float', 'daily', DAY10);
  assert.equal(open?.final, false);
  assert.deepEqual(open.eventsDecimal, { 'api.calls': '0.3' });
  // A document announced with a float total keeps that number until a late event re-closes its period.
  const big = await store.getAggregation('cust_big', 'daily', DAY9);
  assert.deepEqual(big?.eventsDecimal, { 'api.calls': '10000000000000000' });

  // Nothing else was touched: every event is still there.
  const events = await store.listEvents({ limit: 1000 });
  assert.equal(events.length, 23);
}

describe('a data file written with float totals is converted to exact decimals in place', () => {
  it('SQLite (schema version 4)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-legacy-'));
    const file = path.join(dir, 'meterhook.db');
    fs.copyFileSync(path.join(FIXTURES, 'sqlite-schema-v4.db'), file);
    try {
      let store = new SqliteStore({ file });
      await checkConverted(store);
      await store.close();
      // Opening it again migrates nothing twice.
      store = new SqliteStore({ file });
      await checkConverted(store);
      await store.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  let cluster: PgCluster | undefined;
  after(async () => {
    await cluster?.stop();
  });

  it('PostgreSQL (schema version 2)', async () => {
    cluster = await startPgCluster();
    const url = await cluster.createDatabase('mh_legacy');
    const r = spawnSync('psql', ['-v', 'ON_ERROR_STOP=1', '-q', '-f', path.join(FIXTURES, 'pg-schema-v2.sql'), url], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const opts = { url, schema: 'legacy', poolSize: 2, partitionsFrom: Date.UTC(2026, 0, 1), partitionsTo: Date.UTC(2026, 6, 1) };
    let store = await PostgresStore.open(opts);
    try {
      await checkConverted(store);
    } finally {
      await store.close();
    }
    store = await PostgresStore.open(opts);
    try {
      await checkConverted(store);
    } finally {
      await store.close();
    }
  });
});
