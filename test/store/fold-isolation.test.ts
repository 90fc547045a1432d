// No input can block the store: an event whose fold fails (forced here by a real SQLite trigger or a
// PostgreSQL constraint on the rollups of one customer, and by a stored value no fold can read) never
// stops other customers, reads, closes or a restart, and is counted once it can be folded. On
// PostgreSQL the events that fail alone stay in their derive-queue row, set aside; the rest is derived.
// store-contract: self — opens a SQLite store and a PostgreSQL store on its own cluster itself
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseConfig } from '../../src/config/load-config.js';
import { closeDecider } from '../../src/domain/aggregation.js';
import { formatFixed } from '../../src/domain/decimal.js';
import type { NewEvent } from '../../src/domain/event-rules.js';
import { GroupCommitter } from '../../src/ingest/group-commit.js';
import { PostgresStore } from '../../src/store/postgres/pg-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { startPgCluster, type PgCluster } from '../helpers/postgres-cluster.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 9, 5, 10, 0, 0);
const PERIODS = ['hourly', 'daily'] as const;
const CONFIG = parseConfig({ periods: [...PERIODS], events: { 'api.calls': { op: 'sum' } }, webhooks: [] }, { env: {}, source: '<test>' });
/** Only readers bring derived state up to date, so each test decides when a slice runs. */
const LAZY = { intervalMs: 3_600_000, minSlice: 1_000_000, maxSlice: 1_000_000, quarantineRetryMs: 3_600_000 };

function tmpFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-fold-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'meterhook.db');
}

function ev(customerId: string, value: number, id: string | null, ts = T0): NewEvent {
  return { customerId, eventType: 'api.calls', value, metadata: null, ts, tsExplicit: true, id };
}

async function sumOf(store: Store, customerId: string): Promise<string> {
  const rows = await store.readRollups(customerId, T0 - 24 * HOUR, T0 + 24 * HOUR);
  return formatFixed(rows.reduce((a, r) => a + r.sum, 0n));
}

async function closeAll(store: Store, now: number): Promise<string[]> {
  const marks = await store.listDueMarks('hourly', now, 1000);
  await store.closePeriods(marks, closeDecider(CONFIG, now));
  return marks.map((m) => m.customerId).sort();
}

/** One group: the poison customer's events sit between two healthy customers'; the healthy ones are counted. */
async function appendAroundPoison(store: Store): Promise<void> {
  const out = await store.appendEvents(
    [
      { receivedAt: T0, events: [ev('a', 0.1, 'a1'), ev('a', 0.2, 'a2')] },
      { receivedAt: T0, events: [ev('poison', 5, 'p1'), ev('poison', 7, null)] },
      { receivedAt: T0, events: [ev('b', 1.5, 'b1')] },
    ],
    PERIODS,
  );
  assert.ok(out.every((o) => o.ok));
  assert.equal(await sumOf(store, 'a'), '0.3');
  assert.equal(await sumOf(store, 'b'), '1.5');
  assert.equal(await sumOf(store, 'poison'), '0');
}

const POISON_TRIGGER = `CREATE TRIGGER poison BEFORE INSERT ON rollups WHEN NEW.customer_id = 'poison'
  BEGIN SELECT RAISE(ABORT, 'rollup rejected for poison'); END`;

describe('SQLite: an event that cannot be folded is set aside, never blocking anyone', () => {
  it('other customers, reads, closes and a restart go on; once it folds it is counted exactly once', async () => {
    const file = tmpFile();
    const quarantined: Array<[number, string]> = [];
    const opts = { file, derived: { ...LAZY, onQuarantine: (seq: number, c: string) => void quarantined.push([seq, c]) } };
    let store = new SqliteStore(opts);
    const side = new Database(file);
    try {
      side.exec(POISON_TRIGGER);
      // One group, one slice. Readers are not blocked: the slice runs, the two poison events are set aside, the rest is folded.
      await appendAroundPoison(store);
      assert.deepEqual(
        quarantined.map(([, c]) => c),
        ['poison', 'poison'],
      );
      assert.equal(store.stats().deferred.quarantined, 2);
      assert.equal(store.stats().deferred.derived, 0);
      // The close goes on for the others.
      assert.deepEqual(await closeAll(store, T0 + 2 * HOUR), ['a', 'b']);
      // A retry of a set-aside event is still a duplicate: its key was kept.
      const [again] = await store.appendEvents([{ receivedAt: T0, events: [ev('poison', 5, 'p1')] }], PERIODS);
      assert.ok(again?.ok && again.results[0]!.duplicate);
      await store.close();

      // A restart with the fault still there starts, and the events stay set aside (retried at start).
      store = new SqliteStore(opts);
      assert.equal(store.stats().deferred.quarantined, 2);
      assert.equal(await sumOf(store, 'a'), '0.3');

      // Once the fault is gone, the next retry folds them, and their periods close like late data.
      side.exec('DROP TRIGGER poison');
      (store as unknown as { derived: { retryQuarantined(): number } }).derived.retryQuarantined();
      assert.equal(store.stats().deferred.quarantined, 0);
      assert.equal(await sumOf(store, 'poison'), '12');
      assert.deepEqual(await closeAll(store, T0 + 3 * HOUR), ['poison']);
      const agg = await store.getAggregation('poison', 'hourly', T0);
      assert.deepEqual([agg?.final, agg?.eventsDecimal], [true, { 'api.calls': '12' }]);
      // Nothing was counted twice anywhere.
      assert.equal(await sumOf(store, 'a'), '0.3');
      const events = await store.listEvents({ limit: 100 });
      assert.equal(events.length, 5);
    } finally {
      side.close();
      await store.close();
    }
  });

  it('a stored value no fold can read (written by hand or by an old version) is set aside at startup', async () => {
    const file = tmpFile();
    let store = new SqliteStore({ file, derived: LAZY });
    await store.appendEvents([{ receivedAt: T0, events: [ev('a', 1, null)] }], PERIODS);
    await store.close();
    const side = new Database(file);
    // Infinity can be stored as a REAL, but it is no decimal: folding it fails.
    side
      .prepare(`INSERT INTO events (seq, customer_id, event_type, event_id, ts, received_at, value, metadata)
                  VALUES ((SELECT max(seq) + 1 FROM events), 'bad', 'api.calls', NULL, ?, ?, 9e999, NULL)`)
      .run(T0, T0);
    side
      .prepare(`INSERT INTO events (seq, customer_id, event_type, event_id, ts, received_at, value, metadata)
                  VALUES ((SELECT max(seq) + 1 FROM events), 'c', 'api.calls', NULL, ?, ?, 2.5, NULL)`)
      .run(T0, T0);
    side.close();
    store = new SqliteStore({ file, derived: LAZY });
    try {
      assert.equal(await sumOf(store, 'a'), '1');
      assert.equal(await sumOf(store, 'c'), '2.5');
      assert.equal(store.stats().deferred.quarantined, 1);
      assert.deepEqual(await closeAll(store, T0 + 2 * HOUR), ['a', 'c']);
    } finally {
      await store.close();
    }
  });
});

describe('PostgreSQL: a queue row that cannot be derived is set aside, never blocking anyone', () => {
  let cluster: PgCluster | undefined;
  after(async () => {
    await cluster?.stop();
  });

  it('other customers, reads and closes go on; once it derives it is counted exactly once', async () => {
    cluster = await startPgCluster();
    const url = await cluster.createDatabase('mh_aside');
    const errors: unknown[] = [];
    const store = await PostgresStore.open({
      url,
      poolSize: 3,
      derive: { onError: (err) => void errors.push(err) },
      partitionsFrom: Date.UTC(2026, 0, 1),
      partitionsTo: Date.UTC(2027, 0, 1),
    });
    const pg = (await import('pg')).default;
    const side = new pg.Client({ connectionString: url });
    await side.connect();
    try {
      await side.query(`ALTER TABLE rollups ADD CONSTRAINT poison CHECK (customer_id <> 'poison')`);
      // One group, one transaction, one queue row.
      await appendAroundPoison(store);
      assert.equal(store.stats().deferred.quarantined, 1, 'one queue row set aside');
      const left = await side.query('SELECT events, cardinality(seqs) AS n FROM derive_queue');
      assert.deepEqual(
        left.rows.map((r) => [r.events, r.n]),
        [[2, 2]],
        'the row holds only the two events that cannot be derived',
      );
      assert.ok(errors.length >= 1, 'the failure is reported');
      assert.deepEqual(await closeAll(store, T0 + 2 * HOUR), ['a', 'b']);
      const [again] = await store.appendEvents([{ receivedAt: T0, events: [ev('poison', 5, 'p1')] }], PERIODS);
      assert.ok(again?.ok && again.results[0]!.duplicate, 'a retry is still a duplicate');

      await side.query('ALTER TABLE rollups DROP CONSTRAINT poison');
      (store as unknown as { deriver: { retrySetAside(): void } }).deriver.retrySetAside();
      assert.equal(await sumOf(store, 'poison'), '12');
      assert.equal(store.stats().deferred.quarantined, 0);
      assert.deepEqual(await closeAll(store, T0 + 3 * HOUR), ['poison']);
      assert.equal(await sumOf(store, 'a'), '0.3', 'nothing counted twice');
      assert.equal(Number((await side.query('SELECT count(*) AS n FROM derive_queue')).rows[0].n), 0);
    } finally {
      await side.end();
      await store.close();
    }
  });
});

describe('group commit: a unit that fails does not fail the others in its transaction', () => {
  let cluster: PgCluster | undefined;
  after(async () => {
    await cluster?.stop();
  });

  const run = async (store: Store, poison: () => Promise<void>) => {
    await poison();
    const committer = new GroupCommitter(store, () => PERIODS);
    // Submitted in one turn: they share one group and one transaction.
    const results = await Promise.allSettled([
      committer.submit({ receivedAt: T0, events: [ev('a', 0.1, 'a1')] }),
      committer.submit({ receivedAt: T0, events: [ev('poison', 1, 'p1')] }),
      committer.submit({ receivedAt: T0, events: [ev('b', 0.2, 'b1')] }),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal(await sumOf(store, 'a'), '0.1');
    assert.equal(await sumOf(store, 'b'), '0.2');
    const events = await store.listEvents({ limit: 100 });
    assert.deepEqual(events.map((e) => e.customerId).sort(), ['a', 'b']);
  };

  it('SQLite', async () => {
    const file = tmpFile();
    const store = new SqliteStore({ file, derived: LAZY });
    const side = new Database(file);
    try {
      await run(store, async () => {
        side.exec(`CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.customer_id = 'poison'
                   BEGIN SELECT RAISE(ABORT, 'event rejected for poison'); END`);
      });
    } finally {
      side.close();
      await store.close();
    }
  });

  it('PostgreSQL', async () => {
    cluster = await startPgCluster();
    const url = await cluster.createDatabase('mh_fold');
    const store = await PostgresStore.open({ url, poolSize: 2, partitionsFrom: Date.UTC(2026, 0, 1), partitionsTo: Date.UTC(2027, 0, 1) });
    try {
      await run(store, async () => {
        const pg = (await import('pg')).default;
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        // The ingest transaction writes events (hour states are derived after it commits).
        await c.query(`ALTER TABLE events ADD CONSTRAINT poison CHECK (customer_id <> 'poison')`);
        await c.end();
      });
    } finally {
      await store.close();
    }
  });
});
