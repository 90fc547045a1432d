// The close's created/updated counts are what the committed transaction wrote: the adapter counts them,
// so PostgreSQL running the close again after a deadlock (forced here with a real second transaction
// holding row locks in the opposite order) counts each aggregation once. Runs on SQLite and PostgreSQL.
// store-contract: sqlite, postgres
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import type { PostgresStore } from '../../src/store/postgres/pg-store.js';
import { buildTestApp, TEST_STORE, type TestApp } from '../helpers/app.js';

const CONFIG = { periods: ['hourly'], events: { 'api.calls': { op: 'sum' } }, webhooks: [] };
const NOW = '2026-01-12T12:30:00Z';
const HOUR_START = Date.parse('2026-01-12T10:00:00Z');

async function post(t: TestApp, customers: string[], timestamp: string): Promise<void> {
  const payload = customers.map((customerId) => ({ eventType: 'api.calls', customerId, value: 1, timestamp }));
  const r = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload });
  assert.ok(r.statusCode === 201 || r.statusCode === 200, `POST /usagebatch → ${r.statusCode} ${r.body}`);
}

async function revisions(t: TestApp, customers: string[]): Promise<number[]> {
  return Promise.all(customers.map(async (c) => (await t.store.getAggregation(c, 'hourly', HOUR_START))?.revision ?? 0));
}

describe('closeDuePeriods counts what the close committed', () => {
  it('a first close creates, a close after late events updates, each aggregation counted once', async () => {
    const t = await buildTestApp({ now: NOW, config: CONFIG });
    try {
      await post(t, ['a', 'b', 'c'], '2026-01-12T10:15:00Z');
      const first = await closeDuePeriods(t.ctx);
      assert.deepEqual([first.finalized, first.created, first.updated], [3, 3, 0]);
      await post(t, ['b', 'c'], '2026-01-12T10:20:00Z');
      const second = await closeDuePeriods(t.ctx);
      assert.deepEqual([second.finalized, second.created, second.updated], [2, 0, 2]);
      assert.deepEqual(await revisions(t, ['a', 'b', 'c']), [1, 2, 2]);
      const third = await closeDuePeriods(t.ctx);
      assert.deepEqual([third.finalized, third.created, third.updated], [0, 0, 0]);
    } finally {
      await t.close();
    }
  });

  it('PostgreSQL: a close rolled back by a deadlock and run again counts each aggregation once', {
    skip: TEST_STORE !== 'postgres' && 'only PostgreSQL runs a close transaction again (SQLite has one writer)',
  }, async () => {
    const t = await buildTestApp({ now: NOW, config: CONFIG });
    const pool = (t.store as PostgresStore).pool;
    const other = await pool.connect();
    try {
      await post(t, ['a', 'b'], '2026-01-12T10:15:00Z');
      assert.equal((await closeDuePeriods(t.ctx)).created, 2);
      // Late events reopen both periods: the next close rewrites both documents, a before b.
      await post(t, ['a', 'b'], '2026-01-12T10:20:00Z');

      // Another transaction holds b's document; the close then writes a's and waits for b's.
      await other.query('BEGIN');
      // The close's session (default 1 s) detects the deadlock first and is the one rolled back.
      await other.query("SET LOCAL deadlock_timeout = '20s'");
      const lock = (c: string) => other.query("SELECT 1 FROM aggregations WHERE customer_id = $1 AND period = 'hourly' FOR UPDATE", [c]);
      await lock('b');
      const myPid = Number((await other.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      const closing = closeDuePeriods(t.ctx);
      for (let i = 0; ; i++) {
        const r = await pool.query('SELECT count(*) AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [myPid]);
        if (Number(r.rows[0].n) > 0) break;
        assert.ok(i < 500, 'the close never waited for the row lock');
        await new Promise((r) => setTimeout(r, 10));
      }
      // Now wait for a's document, which the close holds: a deadlock. This lock is granted only once
      // the close's transaction is rolled back; the close then runs again.
      await lock('a');
      await other.query('ROLLBACK');

      const second = await closing;
      assert.deepEqual([second.finalized, second.created, second.updated], [2, 0, 2]);
      assert.deepEqual(await revisions(t, ['a', 'b']), [2, 2]);
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
      other.release();
      await t.close();
    }
  });
});
