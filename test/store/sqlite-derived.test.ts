// SQLite appends events in the ingest transaction and derives rollups, marks, idempotency keys and
// listing indexes later. These tests pin down that no reader, restart or second process can tell.
// store-contract: sqlite — about SQLite's deferred derived state, which PostgreSQL does not have

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { fixedToNumber } from '../../src/domain/decimal.js';
import type { NewEvent } from '../../src/domain/event-rules.js';
import { registerDecimalFunctions } from '../../src/store/sqlite/decimal-functions.js';
import { MIGRATIONS } from '../../src/store/sqlite/migrations.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { MERGED_ROLLUPS_SQL } from '../../src/store/sqlite/sqlite-sql.js';
import { WriterLockTaken } from '../../src/store/sqlite/writer-lock.js';
import type { AppendOutcome } from '../../src/store/store.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 9, 5, 10, 0, 0);
const PERIODS = ['hourly', 'daily', 'monthly'] as const;
/** Derived tables are never brought up to date in the background: only readers can do it. */
const LAZY = { intervalMs: 3_600_000, minSlice: 1_000_000, maxSlice: 1_000_000 };
const LAZY_LISTING = { intervalMs: 3_600_000, maxLag: 1_000_000 };

function tmpFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-derived-'));
  test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'meterhook.db');
}

function ev(customerId: string, value: number, id: string | null, ts = T0): NewEvent {
  return { customerId, eventType: 'api.calls', value, metadata: null, ts, tsExplicit: true, id };
}

async function append(store: SqliteStore, ...events: NewEvent[]): Promise<AppendOutcome> {
  const [out] = await store.appendEvents([{ events, receivedAt: T0 }], PERIODS);
  return out!;
}

async function total(store: SqliteStore, customerId: string): Promise<{ count: number; sum: number }> {
  const rows = await store.readRollups(customerId, T0 - 24 * HOUR, T0 + 24 * HOUR);
  return { count: rows.reduce((a, r) => a + r.count, 0), sum: fixedToNumber(rows.reduce((a, r) => a + r.sum, 0n)) };
}

test('every reader sees an appended event before any background work has run', async () => {
  const store = new SqliteStore({ file: tmpFile(), derived: LAZY, listing: LAZY_LISTING });
  try {
    await append(store, ev('c1', 2, 'a'), ev('c1', 3, null, T0 + HOUR), ev('c2', 5, 'b'));
    assert.equal(store.pendingDerivedEvents(), 3);
    assert.deepEqual(await total(store, 'c1'), { count: 2, sum: 5 });
    assert.equal(store.pendingDerivedEvents(), 0);

    await append(store, ev('c1', 7, 'c', T0 + 2 * HOUR));
    const marks = await store.listOpenMarks('hourly', 0, 100);
    assert.deepEqual(
      marks.filter((m) => m.customerId === 'c1').map((m) => m.periodStart),
      [T0, T0 + HOUR, T0 + 2 * HOUR],
    );

    await append(store, ev('c3', 1, 'd', T0 + 30_000));
    assert.equal(store.unindexedEvents(), 5);
    assert.deepEqual(
      (await store.listEvents({ customerId: 'c3', limit: 10 })).map((e) => e.id),
      ['d'],
    );
    assert.equal(store.unindexedEvents(), 0);
    assert.deepEqual(
      (await store.listEvents({ limit: 2 })).map((e) => e.id),
      ['c', null],
    );
    await append(store, ev('c3', 1, 'e', T0 + 40_000));
    assert.deepEqual(
      (await store.listEvents({ customerId: 'c3', limit: 10 })).map((e) => e.id),
      ['e', 'd'],
    );
    assert.deepEqual(
      (await store.listCustomers({ limit: 10 })).map((c) => c.customerId),
      ['c1', 'c2', 'c3'],
    );
  } finally {
    await store.close();
  }
});

test('a repeated id is a duplicate while pending, after it was applied, and within one batch', async () => {
  const store = new SqliteStore({ file: tmpFile(), derived: LAZY, listing: LAZY_LISTING });
  try {
    const first = await append(store, ev('c1', 2, 'k1'));
    assert.ok(first.ok);
    const seq = first.results[0]!.seq;

    const pendingRepeat = await append(store, ev('c1', 2, 'k1'));
    assert.deepEqual(pendingRepeat, { ok: true, results: [{ seq, duplicate: true }], inserted: 0, duplicates: 1 });
    assert.deepEqual(await append(store, ev('c1', 9, 'k1')), { ok: false, conflicts: [{ index: 0, id: 'k1' }] });

    await total(store, 'c1'); // applies everything pending
    assert.equal(store.pendingDerivedEvents(), 0);
    const appliedRepeat = await append(store, ev('c1', 2, 'k1'));
    assert.deepEqual(appliedRepeat, { ok: true, results: [{ seq, duplicate: true }], inserted: 0, duplicates: 1 });
    assert.deepEqual(await append(store, ev('c1', 9, 'k1')), { ok: false, conflicts: [{ index: 0, id: 'k1' }] });

    // The same id under another customer or event type is another event.
    const other = await append(store, ev('c2', 2, 'k1'), { ...ev('c1', 2, 'k1'), eventType: 'storage.gb' });
    assert.ok(other.ok);
    assert.equal(other.inserted, 2);

    const inBatch = await append(store, ev('c3', 1, 'x'), ev('c3', 1, 'x'));
    assert.ok(inBatch.ok);
    assert.deepEqual(
      inBatch.results.map((r) => r.duplicate),
      [false, true],
    );
    assert.equal(inBatch.results[0]!.seq, inBatch.results[1]!.seq);

    // A conflicting batch is rolled back whole, and its ids stay free.
    assert.deepEqual(await append(store, ev('c4', 1, 'y'), ev('c4', 2, 'y')), { ok: false, conflicts: [{ index: 1, id: 'y' }] });
    const retry = await append(store, ev('c4', 2, 'y'));
    assert.ok(retry.ok);
    assert.equal(retry.inserted, 1);
    assert.deepEqual(await total(store, 'c4'), { count: 1, sum: 2 });
    // c1: k1 once as api.calls and once as storage.gb; every repeat and conflict above stored nothing.
    assert.deepEqual(await total(store, 'c1'), { count: 2, sum: 4 });
    assert.deepEqual(await total(store, 'c3'), { count: 1, sum: 1 });
  } finally {
    await store.close();
  }
});

test('a second process opening the file applies pending events, and they are never counted twice', async () => {
  const file = tmpFile();
  const server = new SqliteStore({ file, derived: LAZY, listing: LAZY_LISTING });
  const cli = { store: undefined as SqliteStore | undefined };
  try {
    await append(server, ev('c1', 2, 'a'), ev('c1', 3, 'b'));
    cli.store = new SqliteStore({ file, derived: LAZY, listing: LAZY_LISTING });
    assert.deepEqual(await total(cli.store, 'c1'), { count: 2, sum: 5 });
    await cli.store.close();
    cli.store = undefined;

    // The first process still holds those events as pending; applying them must skip what was done.
    assert.deepEqual(await total(server, 'c1'), { count: 2, sum: 5 });
    const repeat = await append(server, ev('c1', 2, 'a'));
    assert.ok(repeat.ok);
    assert.equal(repeat.duplicates, 1);
    await append(server, ev('c1', 4, 'c'));
    assert.deepEqual(await total(server, 'c1'), { count: 3, sum: 9 });
    assert.equal((await server.listEvents({ customerId: 'c1', limit: 10 })).length, 3);
  } finally {
    await cli.store?.close();
    await server.close();
  }
});

test('events committed by a process that died before applying them are replayed at the next start', async () => {
  const file = tmpFile();
  // The child appends and exits without closing the store, as a kill -9 after the commit would.
  const script = `
    import { SqliteStore } from ${JSON.stringify(path.resolve('src/store/sqlite/sqlite-store.ts'))};
    const store = new SqliteStore({ file: ${JSON.stringify(file)}, derived: ${JSON.stringify(LAZY)} });
    const ev = (c, v, id, ts) => ({ customerId: c, eventType: 'api.calls', value: v, metadata: null, ts, tsExplicit: true, id });
    await store.appendEvents([{ events: [ev('c1', 2, 'a', ${T0}), ev('c1', 3, 'b', ${T0 + HOUR})],
      receivedAt: ${T0} }], ['hourly', 'daily']);
    process.exit(0);
  `;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);

  const raw = new Database(file, { readonly: true });
  const before = raw
    .prepare(
      'SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM rollups) AS rollups, ' +
        '(SELECT applied_seq FROM derived_state) AS applied',
    )
    .get();
  raw.close();
  assert.deepEqual(before, { events: 2, rollups: 0, applied: 0 }, 'the child should have died with both events unapplied');

  const store = new SqliteStore({ file });
  try {
    assert.deepEqual(await total(store, 'c1'), { count: 2, sum: 5 });
    // The replay marks the periods the dead process was appending for, no more and no fewer.
    const daily = await store.listOpenMarks('daily', 0, 10);
    const monthly = await store.listOpenMarks('monthly', 0, 10);
    assert.deepEqual(
      daily.map((m) => m.customerId),
      ['c1'],
    );
    assert.deepEqual(monthly, []);
    const repeat = await append(store, ev('c1', 3, 'b', T0 + HOUR));
    assert.ok(repeat.ok);
    assert.equal(repeat.duplicates, 1);
  } finally {
    await store.close();
  }
});

test('a database written by version 3 gets its idempotency keys and listing indexes derived', async () => {
  const file = tmpFile();
  const old = new Database(file);
  old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  for (const m of MIGRATIONS.filter((x) => x.version <= 3)) {
    old.exec(m.sql);
    old.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 0);
  }
  const insert = old.prepare(
    'INSERT INTO events (customer_id, event_type, event_id, ts, received_at, value, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  insert.run('c1', 'api.calls', 'old-1', T0, T0, 2, null);
  insert.run('c1', 'api.calls', null, T0 + 1000, T0, 3, null);
  insert.run('c2', 'api.calls', 'old-2', T0 + 2000, T0, 4, '{"a":1}');
  old.close();

  const store = new SqliteStore({ file, derived: LAZY, listing: LAZY_LISTING });
  try {
    const dup = await store.appendEvents(
      [{ events: [{ ...ev('c2', 4, 'old-2', T0 + 2000), metadata: '{"a":1}' }], receivedAt: T0 }],
      PERIODS,
    );
    assert.deepEqual(dup, [{ ok: true, results: [{ seq: 3, duplicate: true }], inserted: 0, duplicates: 1 }]);
    const fresh = await append(store, ev('c1', 5, 'new-1', T0 + 3000));
    assert.ok(fresh.ok);
    assert.equal(fresh.results[0]!.seq, 4);
    assert.deepEqual(
      (await store.listEvents({ limit: 10 })).map((e) => e.seq),
      [4, 3, 2, 1],
    );
    assert.deepEqual(
      (await store.listEvents({ customerId: 'c1', limit: 10 })).map((e) => e.seq),
      [4, 2, 1],
    );
  } finally {
    await store.close();
  }
});

test('retention deletes events from every index, and a deleted newest seq is never given again', async () => {
  const file = tmpFile();
  const store = new SqliteStore({ file, derived: LAZY, listing: LAZY_LISTING });
  let deletedSeq: number;
  try {
    await append(store, ev('c1', 1, 'keep', T0 + 10 * HOUR));
    const old = await append(store, ev('c1', 2, 'gone', T0));
    assert.ok(old.ok);
    deletedSeq = old.results[0]!.seq;
    assert.deepEqual(await store.deleteEventsBefore(T0 + HOUR), { deleted: 1, partitionsDropped: [] });
    assert.deepEqual(
      (await store.listEvents({ limit: 10 })).map((e) => e.id),
      ['keep'],
    );
    assert.deepEqual(
      (await store.listEvents({ customerId: 'c1', limit: 10 })).map((e) => e.id),
      ['keep'],
    );
    // Rollups are kept: usage already counted stays counted.
    assert.deepEqual(await total(store, 'c1'), { count: 2, sum: 3 });
  } finally {
    await store.close();
  }
  const reopened = new SqliteStore({ file, derived: LAZY, listing: LAZY_LISTING });
  try {
    const again = await append(reopened, ev('c1', 2, 'gone', T0 + 11 * HOUR));
    assert.ok(again.ok);
    assert.equal(again.inserted, 1, 'the id of a deleted event is free again');
    assert.ok(again.results[0]!.seq > deletedSeq, `seq ${again.results[0]!.seq} reuses ${deletedSeq}`);
  } finally {
    await reopened.close();
  }
});

test('listing indexes fall behind by at most maxLag while appends keep coming, in whole chunks', async () => {
  const store = new SqliteStore({ file: tmpFile(), derived: LAZY, listing: { intervalMs: 5, maxLag: 30, chunk: 25 } });
  try {
    for (let i = 0; i < 8; i++) {
      await append(store, ...Array.from({ length: 10 }, (_, j) => ev(`c${j}`, 1, `e${i}-${j}`, T0 + i * 1000 + j)));
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(store.unindexedEvents() < 30 + 10, `lag ${store.unindexedEvents()}`);
    const listed = await store.listEvents({ limit: 1000 });
    assert.equal(listed.length, 80);
    assert.deepEqual(
      listed.map((e) => e.ts),
      [...listed.map((e) => e.ts)].sort((a, b) => b - a),
    );
    assert.equal(new Set(listed.map((e) => e.seq)).size, 80, 'an event indexed twice would be listed twice');
  } finally {
    await store.close();
  }
});

test('at its bound the backlog refuses appends; an append that ignores it applies before returning', async () => {
  const store = new SqliteStore({
    file: tmpFile(),
    derived: { intervalMs: 3_600_000, minSlice: 1_000_000, maxSlice: 1_000_000, maxPending: 50 },
  });
  try {
    for (let i = 0; i < 10; i++) {
      const events = Array.from({ length: 20 }, (_, j) => ev(`c${j}`, 1, `e${i}-${j}`, T0 + i * 1000));
      await append(store, ...events);
      const pending = store.pendingDerivedEvents();
      assert.equal(store.backlogRetryAfter() > 0, pending >= 50, `pending ${pending} after append ${i}`);
      assert.ok(pending < 2 * 50, `pending ${pending} after append ${i}`);
    }
    assert.deepEqual(await total(store, 'c0'), { count: 10, sum: 10 });
  } finally {
    await store.close();
  }

  const eager = new SqliteStore({ file: tmpFile(), derived: { intervalMs: 10, minSlice: 1, maxSlice: 100 }, listing: { intervalMs: 10 } });
  try {
    await append(eager, ev('c1', 1, 'a'));
    const deadline = Date.now() + 5_000;
    while ((eager.pendingDerivedEvents() > 0 || eager.unindexedEvents() > 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(eager.pendingDerivedEvents(), 0, 'an idle store applies pending events by itself');
    assert.equal(eager.unindexedEvents(), 0, 'an idle store indexes events by itself');
  } finally {
    await eager.close();
  }
});

test('current usage reads one customer range once and looks first and last values up by key', async () => {
  const file = tmpFile();
  await new SqliteStore({ file }).close();
  const db = new Database(file, { readonly: true });
  registerDecimalFunctions(db);
  try {
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${MERGED_ROLLUPS_SQL}`).all({ c: 'c', from: 0, to: 1 }) as Array<{ detail: string }>).map(
      (r) => r.detail,
    );
    const rollupAccess = plan.filter((d) => /\b(rollups|f|l)\b/.test(d) && /^(SCAN|SEARCH)/.test(d));
    assert.deepEqual(
      rollupAccess,
      [
        'SEARCH rollups USING PRIMARY KEY (customer_id=? AND hour>? AND hour<?)',
        'SEARCH f USING PRIMARY KEY (customer_id=? AND hour=? AND event_type=?)',
        'SEARCH l USING PRIMARY KEY (customer_id=? AND hour=? AND event_type=?)',
      ],
      plan.join('\n'),
    );
  } finally {
    db.close();
  }
});

test('one slice takes any number of event types and timestamps far from now', async () => {
  const store = new SqliteStore({ file: tmpFile(), derived: LAZY, listing: LAZY_LISTING });
  try {
    const types = Array.from({ length: 150 }, (_, i) => `type.${i}`);
    const far = [-1_000, -7 * 24 * HOUR - 1, 2 ** 42 + 5 * HOUR + 1, Date.UTC(2200, 0, 1, 3, 30)];
    const units = [
      ...types.map((t, i) => ({ receivedAt: T0, events: [{ ...ev('c1', i, `t${i}`), eventType: t }] })),
      ...far.map((ts, i) => ({ receivedAt: T0, events: [ev('c2', i + 1, `far${i}`, ts)] })),
    ];
    await store.appendEvents(units, PERIODS);
    const rows = await store.readRollups('c1', T0 - HOUR, T0 + HOUR);
    assert.equal(rows.length, 150);
    assert.deepEqual(new Set(rows.map((r) => r.eventType)), new Set(types));
    for (const [i, ts] of far.entries()) {
      const hour = Math.floor(ts / HOUR) * HOUR;
      const at = await store.readRollups('c2', hour, hour + HOUR);
      assert.deepEqual(
        at.map((r) => [r.hour, r.count, fixedToNumber(r.sum)]),
        [[hour, 1, i + 1]],
        `ts ${ts}`,
      );
      const marks = await store.listOpenMarks('hourly', hour, 1);
      assert.deepEqual(
        marks.map((m) => [m.customerId, m.periodStart]),
        [['c2', hour]],
        `hourly mark of ts ${ts}`,
      );
    }
  } finally {
    await store.close();
  }
});

const failedSliceTitle =
  'a background slice that fails because the store cannot write is reported, kept pending and retried; nothing is lost or doubled';
test(failedSliceTitle, async () => {
  const file = tmpFile();
  const errors: unknown[] = [];
  const store = new SqliteStore({
    file,
    // Slices only from the timer, so the test takes the write lock before the first one.
    derived: { intervalMs: 10, minSlice: 1_000, maxSlice: 1_000 },
    listing: LAZY_LISTING,
    onBackgroundError: (err, work) => errors.push([work, (err as { code?: string }).code]),
  });
  // Another connection holds the write lock: every slice meets SQLITE_BUSY, a transient failure.
  (store as unknown as { db: Database.Database }).db.pragma('busy_timeout = 20');
  const saboteur = new Database(file);
  try {
    await append(store, ev('c1', 2, 'a'), ev('c1', 3, 'b'));
    saboteur.exec('BEGIN IMMEDIATE');
    const deadline = Date.now() + 5_000;
    while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(errors[0], ['derived', 'SQLITE_BUSY']);
    assert.equal(store.pendingDerivedEvents(), 2, 'the failed slice stays pending');
    assert.equal(store.stats().deferred.quarantined, 0, 'a store that cannot write sets nothing aside');
    // A reader cannot be answered without the derived state: it fails rather than return a wrong number.
    await assert.rejects(() => total(store, 'c1'), /locked|busy/i);

    saboteur.exec('ROLLBACK');
    while (store.pendingDerivedEvents() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(store.pendingDerivedEvents(), 0, 'the retry applied it');
    assert.deepEqual(await total(store, 'c1'), { count: 2, sum: 5 });
  } finally {
    saboteur.close();
    await store.close();
  }
});

test('only one process at a time appends to a file', async () => {
  const file = tmpFile();
  const first = new SqliteStore({ file, derived: LAZY, listing: LAZY_LISTING });
  const second = new SqliteStore({ file, derived: LAZY, listing: LAZY_LISTING });
  try {
    await append(first, ev('c1', 1, 'a'));
    assert.throws(() => second.claimWriter(), WriterLockTaken);
    await assert.rejects(() => append(second, ev('c1', 1, 'b')), WriterLockTaken);
    // Reading next to the writer is fine (a CLI command, for example), and sees its committed events.
    assert.deepEqual(await total(second, 'c1'), { count: 1, sum: 1 });
    assert.deepEqual(await total(first, 'c1'), { count: 1, sum: 1 });
    await first.close();
    const ok = await append(second, ev('c1', 1, 'b'));
    assert.ok(ok.ok);
    assert.deepEqual(await total(second, 'c1'), { count: 2, sum: 2 });
  } finally {
    await first.close();
    await second.close();
  }
});

test('the listing backlog returns to zero after a batch was rolled back by a conflict', async () => {
  const store = new SqliteStore({ file: tmpFile(), derived: LAZY, listing: LAZY_LISTING });
  try {
    await append(store, ev('c1', 1, 'x'));
    assert.deepEqual(await append(store, ev('c1', 5, 'y'), ev('c1', 2, 'x')), { ok: false, conflicts: [{ index: 1, id: 'x' }] });
    await store.listEvents({ limit: 10 });
    assert.deepEqual(store.stats().deferred, { derived: 1, listing_index: 0, quarantined: 0 });
    await total(store, 'c1');
    assert.deepEqual(store.stats().deferred, { derived: 0, listing_index: 0, quarantined: 0 });
  } finally {
    await store.close();
  }
});

test('a data file written by a newer schema is refused, not silently used', async () => {
  const file = tmpFile();
  await new SqliteStore({ file }).close();
  const raw = new Database(file);
  raw.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(999, 'future', 0);
  raw.close();
  assert.throws(() => new SqliteStore({ file }), /schema version 999, written by a newer meterhook/);
});
