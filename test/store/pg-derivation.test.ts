// PostgreSQL derives hour states, marks and dimensions after the ingest commit, from a queue any
// process may claim. Two stores on one database stand for two processes (each has its own pool and
// memory). Checked against totals computed here from the events: two processes deriving at once; a
// process that dies after its commit and one that dies mid-derivation (its backend terminated while
// it holds the queue rows); sequence numbers committing out of order; and a close racing an ingest
// at the period boundary. Every check ends with the queue empty.
// store-contract: self — two PostgreSQL stores on one database of its own (TEST_DATABASE_URL's server, or a throwaway cluster)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { formatFixed } from '../../src/domain/decimal.js';
import { StoreUnavailable } from '../../src/domain/errors.js';
import type { NewEvent } from '../../src/domain/event-rules.js';
import type { Period } from '../../src/domain/periods.js';
import { PostgresStore } from '../../src/store/postgres/pg-store.js';
import type { DeriverOptions } from '../../src/store/postgres/pg-deriver.js';
import { buildTestApp } from '../helpers/app.js';
import { aggs, post } from '../helpers/close-due-periods.js';
import { startPgCluster, type PgCluster } from '../helpers/postgres-cluster.js';

const HOUR = 3_600_000;
// Sunday 2026-01-04 22:00 UTC: the hours run over a day, an ISO week and (with HOURS) a month edge.
const T0 = Date.UTC(2026, 0, 4, 22, 0, 0);
const HOURS = 4;
const PERIODS: Period[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];
const TYPES = ['api.calls', 'test.first', 'test.last'];

let cluster: PgCluster;
let schemaN = 0;
const opened: PostgresStore[] = [];

before(async () => {
  cluster = await startPgCluster();
});
after(async () => {
  for (const s of opened) await s.close().catch(() => undefined);
  await cluster.stop();
});

/** Two stores ("processes") on one fresh schema. */
async function twoStores(a: DeriverOptions = {}, b: DeriverOptions = {}): Promise<[PostgresStore, PostgresStore, string]> {
  const schema = `derive_${process.pid}_${++schemaN}`;
  const open = (derive: DeriverOptions) =>
    PostgresStore.open({
      url: cluster.url,
      schema,
      poolSize: 6,
      derive,
      partitionsFrom: Date.UTC(2025, 11, 1),
      partitionsTo: Date.UTC(2026, 2, 1),
    });
  const sa = await open(a);
  const sb = await open(b);
  opened.push(sa, sb);
  return [sa, sb, schema];
}

async function sql(schema: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: cluster.url, options: `-c search_path=${schema}` });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

const queued = async (schema: string) => Number((await sql(schema, 'SELECT count(*) AS n FROM derive_queue')).rows[0].n);

let idN = 0;
function event(customerId: string, eventType: string, ts: number, value: number): NewEvent {
  return { customerId, eventType, value, metadata: null, ts, tsExplicit: true, id: `e${++idN}`, group: null, unique: null };
}

/** Units of `size` events with distinct timestamps, spread over customers, types and HOURS hours. */
function units(n: number, size: number, seed: number): NewEvent[][] {
  const out: NewEvent[][] = [];
  for (let u = 0; u < n; u++) {
    const evs: NewEvent[] = [];
    for (let i = 0; i < size; i++) {
      const k = (u * size + i) * 7919 + seed;
      const ts = T0 + ((k * 104_729) % (HOURS * HOUR)) + (seed % 1000);
      evs.push(event(`c${k % 5}`, TYPES[k % 3]!, ts, 1 + (k % 97)));
    }
    out.push(evs);
  }
  return out;
}

interface Expected {
  count: number;
  sum: bigint;
  min: number;
  max: number;
  first: [number, number];
  last: [number, number];
}

/** Per customer, type and hour, from the events themselves; ties in ts go to the lower seq. */
function expectedOf(events: Array<{ e: NewEvent; seq: number }>): Map<string, Expected> {
  const m = new Map<string, Expected>();
  for (const { e, seq } of events) {
    const k = `${e.customerId}|${e.eventType}|${Math.floor(e.ts / HOUR) * HOUR}`;
    const x = m.get(k);
    const v = BigInt(e.value);
    if (!x) {
      m.set(k, { count: 1, sum: v, min: e.value, max: e.value, first: [e.ts, seq], last: [e.ts, seq] });
      continue;
    }
    x.count++;
    x.sum += v;
    x.min = Math.min(x.min, e.value);
    x.max = Math.max(x.max, e.value);
    if (e.ts < x.first[0] || (e.ts === x.first[0] && seq < x.first[1])) x.first = [e.ts, seq];
    if (e.ts > x.last[0] || (e.ts === x.last[0] && seq > x.last[1])) x.last = [e.ts, seq];
  }
  return m;
}

async function actualOf(store: PostgresStore): Promise<Map<string, Expected>> {
  const m = new Map<string, Expected>();
  for (let c = 0; c < 5; c++) {
    for (const r of await store.readRollups(`c${c}`, T0 - 24 * HOUR, T0 + 48 * HOUR)) {
      m.set(`c${c}|${r.eventType}|${r.hour}`, {
        count: r.count,
        sum: BigInt(formatFixed(r.sum)),
        min: r.min,
        max: r.max,
        first: [r.firstTs, r.firstSeq],
        last: [r.lastTs, r.lastSeq],
      });
    }
  }
  return m;
}

/** Appends units through `store`, returning each stored event with its seq. */
async function append(store: PostgresStore, us: NewEvent[][]): Promise<Array<{ e: NewEvent; seq: number }>> {
  const out: Array<{ e: NewEvent; seq: number }> = [];
  const outcomes = await store.appendEvents(
    us.map((events) => ({ events, receivedAt: T0 })),
    PERIODS,
  );
  outcomes.forEach((o, i) => {
    assert.ok(o.ok, 'no conflicts');
    o.results.forEach((r, j) => {
      if (!r.duplicate) out.push({ e: us[i]![j]!, seq: r.seq });
    });
  });
  return out;
}

function assertSame(actual: Map<string, Expected>, expected: Map<string, Expected>): void {
  const keys = [...new Set([...actual.keys(), ...expected.keys()])].sort();
  for (const k of keys) assert.deepEqual(actual.get(k), expected.get(k), k);
  assert.ok(keys.length > 20, `enough hour states to mean something (${keys.length})`);
}

describe('PostgreSQL derivation after the commit', () => {
  it('two processes deriving at once, their own commits and each other’s, derive every event exactly once', async () => {
    const [a, b, schema] = await twoStores({ sliceEvents: 300 }, { sliceEvents: 300 });
    const writes: Array<Promise<Array<{ e: NewEvent; seq: number }>>> = [];
    for (let w = 0; w < 12; w++) writes.push(append(w % 2 ? a : b, units(4, 50, w)));
    // Reads on both while they append: each read derives every row it sees, racing the background slices.
    const reads: Array<Promise<unknown>> = [];
    for (let r = 0; r < 6; r++) reads.push((r % 2 ? a : b).mergedRollups(`c${r % 5}`, T0, T0 + HOURS * HOUR));
    const stored = (await Promise.all(writes)).flat();
    await Promise.all(reads);
    assert.equal(stored.length, 12 * 4 * 50);
    assertSame(await actualOf(a), expectedOf(stored));
    assertSame(await actualOf(b), expectedOf(stored));
    assert.equal(await queued(schema), 0);
  });

  it('rows a process committed but never derived (it died) are derived by another, once, and a retry stays a duplicate', async () => {
    const [a, b, schema] = await twoStores({ auto: false }, {});
    const batch = units(6, 40, 101);
    const stored = await append(a, batch);
    assert.equal(await queued(schema), 1, 'one queue row for the transaction');
    // The process dies: its memory is gone, its connections close, its queue row stays.
    await a.pool.end();
    assertSame(await actualOf(b), expectedOf(stored));
    assert.equal(await queued(schema), 0);
    // The client did not see the acknowledgement and sends the same events again, to the other process.
    const again = await b.appendEvents(
      batch.map((events) => ({ events, receivedAt: T0 })),
      PERIODS,
    );
    assert.ok(again.every((o) => o.ok && o.duplicates === o.results.length));
    assertSame(await actualOf(b), expectedOf(stored));
  });

  it('the sweep derives the rows of a dead process without any read', async () => {
    const [a, b, schema] = await twoStores({ auto: false }, { pollMs: 20, orphanAfterMs: 0 });
    const stored = await append(a, units(3, 30, 202));
    await a.pool.end();
    b.start();
    const deadline = Date.now() + 10_000;
    while ((await queued(schema)) > 0) {
      assert.ok(Date.now() < deadline, 'the sweep derived the queue within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    assertSame(await actualOf(b), expectedOf(stored));
  });

  it('a process that dies mid-derivation leaves nothing half-derived: another derives its rows exactly once', async () => {
    const [a, b, schema] = await twoStores({ auto: false }, { auto: false });
    const first = await append(a, units(2, 40, 303));
    await a.readRollups('c0', T0, T0 + HOUR); // derived: the hour states exist
    const second = await append(a, units(4, 40, 304));
    // Hold the hour states so A's derivation blocks after it has claimed the queue rows and written marks.
    const holder = new pg.Client({ connectionString: cluster.url, options: `-c search_path=${schema}` });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT * FROM rollups FOR UPDATE');
    const dying = a.readRollups('c0', T0, T0 + HOUR).then(
      () => 'derived',
      (err: unknown) => (err instanceof StoreUnavailable ? 'StoreUnavailable' : String(err)),
    );
    let pid: number | undefined;
    for (let i = 0; i < 200 && pid === undefined; i++) {
      // The holder is inside a transaction, where the activity view is one snapshot: take a new one.
      await holder.query('SELECT pg_stat_clear_snapshot()');
      const r = await holder.query(
        `SELECT pid FROM pg_stat_activity
         WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO rollups%' AND pid <> pg_backend_pid()`,
      );
      pid = r.rows[0]?.pid;
      if (pid === undefined) await new Promise((res) => setTimeout(res, 25));
    }
    assert.ok(pid !== undefined, 'the derivation is waiting on the held hour state');
    // Its connection dies in the middle of the transaction, as when its process is killed.
    await holder.query('SELECT pg_terminate_backend($1)', [pid]);
    assert.equal(await dying, 'StoreUnavailable');
    await holder.query('COMMIT');
    await holder.end();
    assert.ok((await queued(schema)) > 0, 'its rows are still queued');
    assertSame(await actualOf(b), expectedOf([...first, ...second]));
    assert.equal(await queued(schema), 0);
  });

  it('a row another process derived in part is not derived again from the committing process’s memory', async () => {
    const [a, b, schema] = await twoStores({ auto: false, onError: () => undefined }, { auto: false, onError: () => undefined });
    await sql(schema, `ALTER TABLE rollups ADD CONSTRAINT poison CHECK (customer_id <> 'poison')`);
    const stored = await append(a, [[event('good', 'api.calls', T0 + 1, 1), event('poison', 'api.calls', T0 + 2, 1)]]);
    // B derives what it can of A's row: the good event; the row keeps the poison one, set aside.
    assert.equal((await b.readRollups('good', T0, T0 + HOUR))[0]!.count, 1);
    assert.deepEqual((await sql(schema, 'SELECT events FROM derive_queue')).rows, [{ events: 1 }]);
    // A still holds both events in memory; its read must go by what the row holds now.
    assert.equal((await a.readRollups('good', T0, T0 + HOUR))[0]!.count, 1);
    await sql(schema, 'ALTER TABLE rollups DROP CONSTRAINT poison');
    for (const s of [a, b]) (s as unknown as { deriver: { retrySetAside(): void } }).deriver.retrySetAside();
    assert.equal((await a.readRollups('poison', T0, T0 + HOUR))[0]!.count, 1);
    assert.equal((await b.readRollups('good', T0, T0 + HOUR))[0]!.count, 1, 'counted once');
    assert.equal(stored.length, 2);
    assert.equal(await queued(schema), 0);
  });

  it('sequence numbers that commit out of order are all derived, first and last by (ts, seq)', async () => {
    const [a, b, schema] = await twoStores();
    // A's transaction takes its seqs, then waits on an id another transaction holds.
    const blocker = new pg.Client({ connectionString: cluster.url, options: `-c search_path=${schema}` });
    await blocker.connect();
    await blocker.query('BEGIN');
    const ts = T0 + 10 * 60_000;
    const held = event('c1', 'test.first', ts, 5);
    await blocker.query('INSERT INTO event_keys (customer_id, event_type, event_id, ts, seq) VALUES ($1, $2, $3, $4, -1)', [
      held.customerId,
      held.eventType,
      held.id,
      held.ts,
    ]);
    const early = [event('c1', 'test.first', ts, 3), event('c1', 'test.last', ts, 3), held];
    const slow = append(a, [early]);
    await new Promise((r) => setTimeout(r, 200));
    // B commits later seqs with the same timestamp, and derives them, while A's seqs are still open.
    const late = await append(b, [[event('c1', 'test.first', ts, 9), event('c1', 'test.last', ts, 9)]]);
    const mid = await b.readRollups('c1', ts - (ts % HOUR), ts - (ts % HOUR) + HOUR);
    assert.equal(mid.find((r) => r.eventType === 'test.first')!.firstValue, 9, 'only what has committed');
    await blocker.query('ROLLBACK');
    await blocker.end();
    const early2 = await slow;
    assert.ok(Math.max(...early2.map((x) => x.seq)) < Math.min(...late.map((x) => x.seq)), 'A holds the lower seqs');
    const rows = await b.readRollups('c1', ts - (ts % HOUR), ts - (ts % HOUR) + HOUR);
    const firstRow = rows.find((r) => r.eventType === 'test.first')!;
    const lastRow = rows.find((r) => r.eventType === 'test.last')!;
    assert.equal(firstRow.count, 3);
    assert.equal(firstRow.firstValue, 3, 'first: the lower seq at the same ts, committed last');
    assert.equal(lastRow.lastValue, 9, 'last: the higher seq');
    assert.equal(await queued(schema), 0);
  });

  it('a close racing an ingest at the period boundary counts every acknowledged event (late ones in a revision)', async () => {
    const [a, b, schema] = await twoStores({ auto: false }, {});
    const boundary = Date.UTC(2026, 0, 5, 0, 0, 0); // Monday 00:00: hour, day and ISO week end together
    const cfg = { periods: ['hourly', 'daily', 'weekly'], events: { 'api.calls': { op: 'sum' } }, webhooks: [] };
    const appA = await buildTestApp({ store: a, config: cfg, now: boundary - 1_000 });
    const appB = await buildTestApp({ store: b, config: cfg, now: boundary + 6 * 60_000 });
    let sent = 0;
    const ingest = (async () => {
      for (let i = 0; i < 30; i++) {
        const events = Array.from({ length: 10 }, (_, j) => ({
          eventType: 'api.calls',
          customerId: 'edge',
          value: 1,
          timestamp: new Date(boundary - 1 - ((i * 10 + j) % 7)).toISOString(),
        }));
        await post(appA, events);
        sent += events.length;
      }
    })();
    const trigger = async () => {
      const r = await appB.app.inject({ method: 'POST', url: '/aggregations/trigger', headers: appB.headers });
      assert.ok(r.statusCode === 200 || r.statusCode === 202, r.body);
    };
    const closes = (async () => {
      for (let i = 0; i < 10; i++) await trigger();
    })();
    await Promise.all([ingest, closes]);
    assert.equal(sent, 300);
    await trigger();
    for (const period of ['hourly', 'daily', 'weekly']) {
      const [doc, ...more] = await aggs(appB, { customerId: 'edge', period });
      assert.equal(more.length, 0, period);
      assert.equal(doc!.events['api.calls'], sent, `${period}: every acknowledged event`);
    }
    assert.equal(await queued(schema), 0);
    await appA.close();
    await appB.close();
  });

  it('a mark a process saw before a close is raised again by its next late event: the close generation moved', async () => {
    const [a, b, schema] = await twoStores({}, { auto: false });
    const hour = Date.UTC(2026, 0, 5, 10, 0, 0);
    const cfg = { periods: ['hourly', 'daily'], events: { 'api.calls': { op: 'sum' } }, webhooks: [] };
    const appA = await buildTestApp({ store: a, config: cfg, now: hour + 30 * 60_000 });
    const appB = await buildTestApp({ store: b, config: cfg, now: hour + 66 * 60_000 });
    const at = (min: number) => new Date(hour + min * 60_000).toISOString();
    const trigger = async () => {
      const r = await appB.app.inject({ method: 'POST', url: '/aggregations/trigger', headers: appB.headers });
      assert.ok(r.statusCode === 200 || r.statusCode === 202, r.body);
    };
    const hourly = async () => (await aggs(appB, { customerId: 'seen', period: 'hourly' }))[0]!;
    await post(appA, [{ eventType: 'api.calls', customerId: 'seen', value: 2, timestamp: at(5) }]);
    // A derives its own rows (the read's barrier), so it knows the marks; a second event of the same hour
    // then finds them known and skips them.
    await a.mergedRollups('seen', hour, hour + HOUR);
    await post(appA, [{ eventType: 'api.calls', customerId: 'seen', value: 3, timestamp: at(6) }]);
    await a.mergedRollups('seen', hour, hour + HOUR);
    await trigger();
    const first = await hourly();
    assert.equal(first.events['api.calls'], 5);
    assert.equal((await sql(schema, "SELECT count(*) AS n FROM dirty_periods WHERE period = 'hourly'")).rows[0].n, '0');
    // The hour is closed and its mark gone; A still remembers it, at the generation before the close.
    await post(appA, [{ eventType: 'api.calls', customerId: 'seen', value: 4, timestamp: at(7) }]);
    await a.mergedRollups('seen', hour, hour + HOUR);
    assert.equal((await sql(schema, "SELECT count(*) AS n FROM dirty_periods WHERE period = 'hourly'")).rows[0].n, '1');
    await trigger();
    const revised = await hourly();
    assert.equal(revised.events['api.calls'], 9, 'the late event is in a revision');
    assert.ok(revised.revision > first.revision, 'a new revision');
    assert.equal(await queued(schema), 0);
    await appA.close();
    await appB.close();
  });
});
