// PostgreSQL transactions opened by a query of several statements (the ingest transaction opens with
// BEGIN, its lock bound and its sequence numbers in one round trip): when a statement after BEGIN fails,
// the transaction is rolled back and the connection goes back to the pool usable, not stuck in an
// aborted block that fails every later command.
// store-contract: self — a PostgreSQL store on a schema of its own (TEST_DATABASE_URL's server, or a throwaway cluster)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
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

describe('PostgreSQL transactions with a multi-statement opening', () => {
  it('a failing statement after BEGIN rolls back and leaves the one pooled connection usable', async () => {
    store = await PostgresStore.open({ url: cluster.url, schema: `tx_${process.pid}`, poolSize: 1 });
    await assert.rejects(
      store.tx(async () => 'unreachable', 'BEGIN ISOLATION LEVEL READ COMMITTED; SELECT 1 / 0'),
      (err: unknown) => (err as { code?: string }).code === '22012',
    );
    // The pool has one connection: this runs on the same one, which must not be in an aborted block.
    const r = await store.tx(async (c, opened) => {
      assert.ok(!Array.isArray(opened), 'a single-statement opening answers one result');
      return (await c.query('SELECT 41 + 1 AS n')).rows[0].n as number;
    });
    assert.equal(r, 42);
    // And the ingest path, whose opening has three statements, still takes its sequence numbers.
    const out = await store.appendEvents(
      [
        {
          receivedAt: Date.now(),
          events: [{ customerId: 'c', eventType: 'api.calls', value: 1, metadata: null, ts: Date.now(), tsExplicit: true, id: 'x' }],
        },
      ],
      ['hourly'],
    );
    assert.ok(out[0]!.ok && out[0]!.inserted === 1, JSON.stringify(out[0]));
  });
});
