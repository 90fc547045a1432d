// PostgreSQL retention, both of its paths: whole monthly partitions older than the cutoff are dropped with
// their idempotency keys (found by the index on event_keys.ts), and events that sit in the
// default partition (their month had no partition when they arrived) are deleted in chunks with their keys
// (found by primary key). Every deleted event counts, with or without an id, and a deleted key no longer
// makes its id a duplicate.
// store-contract: self — a PostgreSQL store on a schema of its own (TEST_DATABASE_URL's server, or a throwaway cluster)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { NewEvent } from '../../src/domain/event-rules.js';
import { PostgresStore } from '../../src/store/postgres/pg-store.js';
import { startPgCluster, type PgCluster } from '../helpers/postgres-cluster.js';

let cluster: PgCluster;
let store: PostgresStore | undefined;

before(async () => {
  cluster = await startPgCluster();
});
after(async () => {
  await store?.close().catch(() => undefined);
  await cluster.stop();
});

const ev = (id: string | null, ts: number): NewEvent => ({
  customerId: 'cust',
  eventType: 'api.calls',
  value: 1,
  metadata: null,
  ts,
  tsExplicit: true,
  id,
});

async function sql(schema: string, text: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: cluster.url, options: `-c search_path=${schema}` });
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

describe('PostgreSQL retention', () => {
  it('deletes the default partition stragglers and dropped months with their keys, counting every event', async () => {
    const schema = `retention_${process.pid}`;
    // Partitions from March 2026 only: January's events land in the default partition.
    store = await PostgresStore.open({
      url: cluster.url,
      schema,
      poolSize: 4,
      partitionsFrom: Date.UTC(2026, 2, 1),
      partitionsTo: Date.UTC(2026, 5, 1),
    });
    const jan = Date.UTC(2026, 0, 10, 10);
    const mar = Date.UTC(2026, 2, 10, 10);
    const out = await store.appendEvents(
      [
        {
          receivedAt: mar,
          events: [ev('j1', jan), ev('j2', jan + 1), ev(null, jan + 2), ev('j3', jan + 3), ev(null, jan + 4), ev('m1', mar)],
        },
      ],
      ['hourly'],
    );
    assert.ok(out[0]!.ok && out[0]!.inserted === 6, JSON.stringify(out[0]));
    assert.equal(Number((await sql(schema, 'SELECT count(*) AS n FROM events_default')).rows[0].n), 5);

    // Cutoff 1 February: the five January events go from the default partition, ids or not; March stays.
    assert.deepEqual(await store.deleteEventsBefore(Date.UTC(2026, 1, 1)), { deleted: 5, partitionsDropped: [] });
    assert.deepEqual(
      (await sql(schema, 'SELECT event_id FROM event_keys ORDER BY 1')).rows.map((r) => r.event_id),
      ['m1'],
    );
    // A deleted key no longer makes its id a duplicate.
    const again = await store.appendEvents([{ receivedAt: mar, events: [ev('j1', jan)] }], ['hourly']);
    assert.ok(again[0]!.ok && again[0]!.inserted === 1 && again[0]!.duplicates === 0, JSON.stringify(again[0]));

    // Cutoff 1 April: March's partition is dropped with its key; January's new event goes as a straggler.
    assert.deepEqual(await store.deleteEventsBefore(Date.UTC(2026, 3, 1)), { deleted: 2, partitionsDropped: ['events_y2026m03'] });
    assert.equal(Number((await sql(schema, 'SELECT count(*) AS n FROM event_keys')).rows[0].n), 0);
    assert.equal(Number((await sql(schema, 'SELECT count(*) AS n FROM events')).rows[0].n), 0);
    const m1 = await store.appendEvents([{ receivedAt: mar, events: [ev('m1', mar)] }], ['hourly']);
    assert.ok(m1[0]!.ok && m1[0]!.inserted === 1, JSON.stringify(m1[0]));
  });
});
