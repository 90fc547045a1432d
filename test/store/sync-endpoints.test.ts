// syncEndpoints is one transaction on both stores: when holding the deliveries of an endpoint no longer
// configured fails (forced by a real trigger that refuses the hold), the endpoint upserts are rolled back
// too, so the configuration is never half-synced. Runs on SQLite and PostgreSQL.
// store-contract: sqlite, postgres
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { CloseDecider } from '../../src/domain/records.js';
import type { PostgresStore } from '../../src/store/postgres/pg-store.js';
import type { Store } from '../../src/store/store.js';
import { openTestStore, tempDir, TEST_STORE } from '../helpers/app.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 2, 9, 14, 0, 0);

/** Runs DDL on the store's own database through a second connection. */
async function ddl(store: Store, dir: string, sqlite: string, postgres: string): Promise<void> {
  if (TEST_STORE === 'postgres') {
    await (store as PostgresStore).pool.query(postgres);
    return;
  }
  const side = new Database(path.join(dir, 'meterhook.db'));
  try {
    side.exec(sqlite);
  } finally {
    side.close();
  }
}

const REFUSE_HOLD = {
  sqlite: `CREATE TRIGGER refuse_hold BEFORE UPDATE OF status ON deliveries WHEN NEW.status = 'held'
           BEGIN SELECT RAISE(ABORT, 'hold refused'); END`,
  postgres: `CREATE FUNCTION refuse_hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hold refused'; END $$;
             CREATE TRIGGER refuse_hold BEFORE UPDATE ON deliveries FOR EACH ROW WHEN (NEW.status = 'held') EXECUTE FUNCTION refuse_hold()`,
};
const ALLOW_HOLD = { sqlite: 'DROP TRIGGER refuse_hold', postgres: 'DROP TRIGGER refuse_hold ON deliveries' };

/** One pending delivery to `endpointId`, written by a close as the service writes them. */
async function pendingDelivery(store: Store, endpointId: string): Promise<void> {
  const ev = { customerId: 'cust', eventType: 'api.calls', value: 1, metadata: null, ts: T0 + 1000, tsExplicit: true, id: null };
  await store.appendEvents([{ receivedAt: T0, events: [ev] }], ['hourly']);
  const now = T0 + 2 * HOUR;
  const decide: CloseDecider = () => ({
    aggregation: {
      id: 'agg_1',
      customerId: 'cust',
      period: 'hourly',
      periodKey: '2026030914',
      periodStart: T0,
      periodEnd: T0 + HOUR - 1,
      events: { 'api.calls': 1 },
      eventsDecimal: { 'api.calls': '1' },
      eventCounts: { 'api.calls': 1 },
      final: true,
      revision: 1,
      computedAt: now,
      finalizedAt: now,
      webhookStatus: { delivered: false, attempts: 0 },
    },
    message: {
      id: 'msg_1',
      aggregationId: 'agg_1',
      revision: 1,
      type: 'aggregation.completed',
      customerId: 'cust',
      period: 'hourly',
      createdAt: now,
      body: '{}',
    },
    deliveries: [{ id: 'dlv_1', endpointId, deadlineAt: now + HOUR }],
  });
  await store.closePeriods(await store.listDueMarks('hourly', T0 + HOUR, 10), decide);
}

describe('syncEndpoints: all or nothing', () => {
  it('a hold that fails leaves the endpoints as they were; once it can hold, the sync applies whole', async () => {
    const dir = tempDir('meterhook-sync-');
    const store = await openTestStore(dir);
    try {
      await store.syncEndpoints([
        { id: 'gone', url: 'http://127.0.0.1:9/a' },
        { id: 'kept', url: 'http://127.0.0.1:9/b' },
      ]);
      await pendingDelivery(store, 'gone');
      const endpoints = async () => (await store.listEndpoints()).map((e) => [e.id, e.url]);
      const statuses = async () => (await store.listDeliveries({ limit: 10 })).map((d) => d.status);
      assert.deepEqual(await statuses(), ['pending']);

      // 'gone' leaves the configuration, 'kept' changes its URL and 'new' arrives; holding 'gone''s delivery fails.
      const next = [
        { id: 'kept', url: 'http://127.0.0.1:9/b2' },
        { id: 'new', url: 'http://127.0.0.1:9/c' },
      ];
      await ddl(store, dir, REFUSE_HOLD.sqlite, REFUSE_HOLD.postgres);
      await assert.rejects(() => store.syncEndpoints(next), /hold refused/);
      assert.deepEqual(await endpoints(), [
        ['gone', 'http://127.0.0.1:9/a'],
        ['kept', 'http://127.0.0.1:9/b'],
      ]);
      assert.deepEqual(await statuses(), ['pending']);

      await ddl(store, dir, ALLOW_HOLD.sqlite, ALLOW_HOLD.postgres);
      await store.syncEndpoints(next);
      assert.deepEqual(await endpoints(), [
        ['gone', 'http://127.0.0.1:9/a'],
        ['kept', 'http://127.0.0.1:9/b2'],
        ['new', 'http://127.0.0.1:9/c'],
      ]);
      assert.deepEqual(await statuses(), ['held']);
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
