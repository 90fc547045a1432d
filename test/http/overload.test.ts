// Overload pushes back instead of growing memory: with the memory budget's bounds shrunk through
// test-only options, capture is driven past each bound (the SQLite derived backlog, the group-commit
// queue, the bodies in flight). At the bound both capture routes answer 503 `overloaded` with
// Retry-After, the structures stay within their bounds, other routes keep answering, ingest takes
// events again once the backlog is gone, and every acknowledged event is counted exactly once.
// Nothing here sleeps or compares clock times: the tests wait for conditions only.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { Overloaded } from '../../src/domain/errors.js';
import { GroupCommitter } from '../../src/ingest/group-commit.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { AppendOutcome } from '../../src/store/store.js';
import { REFERENCE_CONFIG, TEST_STORE, buildTestApp, type TestApp } from '../helpers/app.js';

const CONFIG = { ...REFERENCE_CONFIG, periods: ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] };
let n = 0;
const fresh = (label: string) => `${label}_${++n}`;

/** Waits for a condition, turn by turn of the event loop; fails after many turns instead of hanging. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let turn = 0; !cond(); turn++) {
    if (turn > 200_000) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

function assertOverloaded(
  res: LightMyRequestResponse | { statusCode: number; headers: Record<string, unknown>; body: string },
  what: string,
): void {
  assert.equal(res.statusCode, 503, `${what}: ${res.body}`);
  assert.match(String(res.headers['retry-after']), /^[1-5]$/, `${what}: Retry-After`);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  assert.equal(body.code, 'overloaded', what);
  assert.equal(typeof body.error, 'string', what);
  assert.equal(typeof body.requestId, 'string', what);
}

async function usageOf(t: TestApp, customerId: string): Promise<{ events: Record<string, number>; eventCounts: Record<string, number> }> {
  const res = await t.app.inject({ method: 'GET', url: `/customers/${customerId}/usage?period=monthly`, headers: t.headers });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
}

/** Asserts a customer's monthly usage is exactly one event of `value`. */
async function countedOnce(t: TestApp, customerId: string, value: number): Promise<void> {
  const u = await usageOf(t, customerId);
  assert.deepEqual(
    { events: u.events, eventCounts: u.eventCounts },
    { events: { 'api.calls': value }, eventCounts: { 'api.calls': 1 } },
    customerId,
  );
}

describe('the SQLite derived backlog at its bound', { skip: TEST_STORE !== 'sqlite' }, () => {
  // The bytes bound (about 40 events of these) comes before the events bound.
  const LIMITS = { maxPending: 60, maxPendingBytes: 8_000, maxSliceBytes: 20_000, maxMarkCacheBytes: 4_000 };
  let t: TestApp;
  let store: SqliteStore;
  before(async () => {
    t = await buildTestApp({
      config: CONFIG,
      limits: {
        // Nothing drains in the background, so the backlog only moves when the test says.
        sqlite: {
          derived: { intervalMs: 3_600_000, minSlice: 1_000_000, maxSlice: 1_000_000, ...LIMITS },
          listing: { intervalMs: 3_600_000, maxLag: 1_000_000 },
        },
        committer: { maxQueuedEvents: 1_000 },
      },
    });
    store = t.store as SqliteStore;
  });
  after(() => t.close());

  it('refuses both capture routes with 503 + Retry-After, keeps its maps bounded, and counts every acknowledged event once', async () => {
    const acknowledged = new Map<string, number>();
    const refused: string[] = [];
    const firstRefusal: Record<string, LightMyRequestResponse> = {};
    const checkBounds = () => {
      const m = store.memoryStats();
      // The bound is checked when a unit is admitted, so one unit (10 events here) may pass it.
      assert.ok(m.pendingEvents < LIMITS.maxPending, `pending ${m.pendingEvents}`);
      assert.ok(m.pendingBytes < LIMITS.maxPendingBytes + 10 * 400, `pending bytes ${m.pendingBytes}`);
      assert.ok(m.pendingIds <= m.pendingEvents, `pending ids ${m.pendingIds}`);
      assert.ok(m.largestSliceBytes <= LIMITS.maxSliceBytes, `slice bytes ${m.largestSliceBytes}`);
      assert.ok(m.markCacheBytes <= LIMITS.maxMarkCacheBytes + 400, `mark cache bytes ${m.markCacheBytes}`);
      assert.ok(t.committer.stats().peakQueuedEvents <= 1_000);
    };
    for (let round = 0; round < 12; round++) {
      const batch = Array.from({ length: 10 }, (_, j) => ({
        eventType: 'api.calls',
        customerId: fresh('hc'),
        value: round * 10 + j + 1,
        id: `b${round}-${j}`,
      }));
      const b = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: batch });
      if (b.statusCode === 201) for (const e of batch) acknowledged.set(e.customerId, e.value);
      else {
        firstRefusal.batch ??= b;
        refused.push(...batch.map((e) => e.customerId));
      }
      checkBounds();
      const one = { customerId: fresh('hc'), value: 1000 + round, id: `s${round}` };
      const s = await t.app.inject({ method: 'POST', url: '/usage/api.calls', headers: t.headers, payload: one });
      if (s.statusCode === 201) acknowledged.set(one.customerId, one.value);
      else {
        firstRefusal.single ??= s;
        refused.push(one.customerId);
      }
      checkBounds();
    }
    assert.ok(firstRefusal.batch && firstRefusal.single, 'both routes reached the bound');
    assertOverloaded(firstRefusal.batch, 'POST /usagebatch');
    assertOverloaded(firstRefusal.single, 'POST /usage/:eventType');
    assert.ok(store.backlogRetryAfter() > 0);
    assert.equal(store.memoryStats().slices, 0, 'nothing was applied yet');

    // Other routes keep answering while capture is refused.
    assert.equal((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    assert.equal((await t.app.inject({ method: 'GET', url: '/config', headers: t.headers })).statusCode, 200);
    const listed = await t.app.inject({ method: 'GET', url: '/events?limit=1000', headers: t.headers });
    assert.equal(listed.statusCode, 200);
    assert.equal((listed.json() as unknown[]).length, acknowledged.size);
    assert.ok(store.backlogRetryAfter() > 0, 'listing events does not apply the derived backlog');

    // A usage read applies the backlog, in slices cut by the slice budget.
    const [someone, itsValue] = [...acknowledged][0]!;
    assert.deepEqual((await usageOf(t, someone)).events, { 'api.calls': itsValue });
    const drained = store.memoryStats();
    assert.equal(drained.pendingEvents, 0);
    assert.equal(drained.pendingIds, 0);
    assert.equal(drained.pendingBytes, 0);
    assert.ok(drained.slices > 3, `${drained.slices} slices: each holds a handful of new customers`);
    checkBounds();
    assert.equal(store.backlogRetryAfter(), 0);

    // Ingest takes events again, on both routes; a retry of an acknowledged event is a duplicate.
    const again = { customerId: fresh('hc'), value: 7, id: 'again' };
    assert.equal((await t.app.inject({ method: 'POST', url: '/usage/api.calls', headers: t.headers, payload: again })).statusCode, 201);
    acknowledged.set(again.customerId, 7);
    const later = [{ eventType: 'api.calls', customerId: fresh('hc'), value: 8, id: 'later' }];
    assert.equal((await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: later })).statusCode, 201);
    acknowledged.set(later[0]!.customerId, 8);
    assert.equal((await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: later })).statusCode, 200);

    for (const [customerId, value] of acknowledged) await countedOnce(t, customerId, value);
    for (const customerId of refused) assert.deepEqual((await usageOf(t, customerId)).events, {}, `${customerId} was refused`);
    const marks = await t.store.listOpenMarks('yearly', 0, 10_000);
    assert.equal(marks.length, acknowledged.size, 'one yearly mark per acknowledged customer');
    checkBounds();
  });
});

describe('a replay after a crash', { skip: TEST_STORE !== 'sqlite' }, () => {
  it('applies a long unapplied tail in slices within the slice budget, each event once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-replay-'));
    const file = path.join(dir, 'meterhook.db');
    try {
      // The child commits 25,000 events (2,500 customers) and exits without applying any, as a kill -9 would.
      const script = `
        import { SqliteStore } from ${JSON.stringify(path.resolve('src/store/sqlite/sqlite-store.ts'))};
        const store = new SqliteStore({
          file: ${JSON.stringify(file)},
          derived: { intervalMs: 3600000, minSlice: 1000000, maxSlice: 1000000, maxPending: 1000000, maxPendingBytes: 1e9 }
        });
        for (let b = 0; b < 25; b++) {
          const events = Array.from({ length: 1000 }, (_, i) => ({
            customerId: 'r' + ((b * 1000 + i) % 2500), eventType: 'api.calls', value: 1, metadata: null,
            ts: Date.UTC(2026, 0, 12, 10), tsExplicit: true, id: b + '-' + i
          }));
          await store.appendEvents([{ events, receivedAt: 0 }], ['hourly', 'monthly']);
        }
        process.exit(0);
      `;
      const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.equal(child.status, 0, child.stderr);
      const store = new SqliteStore({ file, derived: { maxSliceBytes: 200_000, maxPending: 1_000 } });
      try {
        const m = store.memoryStats();
        assert.equal(m.pendingEvents, 0, 'the replay at open applied everything');
        assert.ok(m.slices >= 10, `${m.slices} slices`);
        assert.ok(m.largestSliceBytes <= 200_000, `slice bytes ${m.largestSliceBytes}`);
        const rows = await store.readRollups('r7', 0, Date.UTC(2027, 0, 1));
        assert.deepEqual(
          rows.map((r) => r.count),
          [10],
        );
        assert.equal((await store.listOpenMarks('monthly', 0, 10_000)).length, 2_500);
      } finally {
        await store.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the group-commit queue at its bound', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ config: CONFIG });
  });
  after(() => t.close());

  const unit = (label: string, events: number, metadata: string | null = null) => ({
    events: Array.from({ length: events }, (_, i) => ({
      customerId: fresh(label),
      eventType: 'api.calls',
      value: i + 1,
      metadata,
      ts: t.clock.now(),
      tsExplicit: false,
      id: `${label}-${i}`,
    })),
    receivedAt: t.clock.now(),
  });

  async function settle(ps: Array<Promise<AppendOutcome>>) {
    const out = await Promise.allSettled(ps);
    return {
      ok: out.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : [])),
      refused: out.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : [])),
    };
  }

  it('refuses units past its events and bytes bounds, and commits each admitted one once', async () => {
    const byEvents = new GroupCommitter(t.store, () => t.config.periods, { maxQueuedEvents: 30 });
    // Submitted in one turn: the first flush starts only after all of them were admitted or refused.
    const units = Array.from({ length: 10 }, () => unit('qe', 10));
    const r = await settle(units.map((u) => byEvents.submit(u)));
    assert.deepEqual(r.ok, [0, 1, 2]);
    assert.equal(r.refused.length, 7);
    for (const e of r.refused) assert.ok(e instanceof Overloaded && e.retryAfterSeconds === 1, String(e));
    assert.equal(byEvents.stats().peakQueuedEvents, 30);
    assert.equal(byEvents.stats().queuedEvents, 0);

    const byBytes = new GroupCommitter(t.store, () => t.config.periods, { maxQueuedBytes: 40_000 });
    const heavy = Array.from({ length: 6 }, () => unit('qb', 5, JSON.stringify({ note: 'x'.repeat(1_000) })));
    const rb = await settle(heavy.map((u) => byBytes.submit(u)));
    assert.ok(rb.ok.length >= 1 && rb.refused.length >= 1, `admitted ${rb.ok.length}, refused ${rb.refused.length}`);
    assert.ok(byBytes.stats().peakQueuedBytes <= 40_000, `peak ${byBytes.stats().peakQueuedBytes}`);

    // Once the queue drained, it takes units again.
    assert.equal((await byEvents.submit(unit('qe', 10))).ok, true);
    const admitted = [...r.ok.map((i) => units[i]!), ...rb.ok.map((i) => heavy[i]!)];
    const refused = [...units.filter((_, i) => !r.ok.includes(i)), ...heavy.filter((_, i) => !rb.ok.includes(i))];
    for (const u of admitted) for (const e of u.events) await countedOnce(t, e.customerId, e.value);
    for (const u of refused) for (const e of u.events) assert.deepEqual((await usageOf(t, e.customerId)).events, {});
  });

  it('runs as many transactions at once as the store allows, never more, and drains after the last', async () => {
    const allowed = t.store.concurrentAppends ?? 1;
    let inFlight = 0;
    let most = 0;
    let calls = 0;
    // The real store, counted: every call goes through to it.
    const counted = {
      concurrentAppends: t.store.concurrentAppends,
      backlogRetryAfter: () => t.store.backlogRetryAfter(),
      appendEvents: async (...args: Parameters<typeof t.store.appendEvents>) => {
        inFlight++;
        calls++;
        most = Math.max(most, inFlight);
        try {
          return await t.store.appendEvents(...args);
        } finally {
          inFlight--;
        }
      },
    };
    const committer = new GroupCommitter(counted, () => t.config.periods);
    // One unit per turn: each flush takes what is waiting, so several transactions are asked for.
    const units = Array.from({ length: 24 }, () => unit('cc', 3));
    const pending: Array<Promise<AppendOutcome>> = [];
    for (const u of units) {
      pending.push(committer.submit(u));
      await new Promise((r) => setImmediate(r));
    }
    await committer.drain();
    assert.equal(inFlight, 0, 'drain waits for every transaction');
    const r = await settle(pending);
    assert.equal(r.ok.length, units.length);
    assert.ok(calls > 1 && calls <= units.length, `${calls} transactions`);
    assert.equal(most, allowed, `at most ${allowed} at once, and that many were used`);
    for (const u of units) for (const e of u.events) await countedOnce(t, e.customerId, e.value);
  });
});

describe('capture bodies in flight at their bound', () => {
  let t: TestApp;
  let url: string;
  let held: { body: string; customers: string[] };
  let socket: net.Socket | undefined;
  const BUDGET_SLACK = 1_000;

  before(async () => {
    const customers = Array.from({ length: 20 }, () => fresh('held'));
    const body = JSON.stringify(
      customers.map((c, i) => ({ eventType: 'api.calls', customerId: c, value: i + 1, metadata: { pad: 'p'.repeat(60) } })),
    );
    held = { body, customers };
    t = await buildTestApp({ config: CONFIG, limits: { admission: { inFlightBodyBytes: Buffer.byteLength(body) + BUDGET_SLACK } } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  // A failed assertion must not leave the held request open: closing the app would wait for it.
  after(async () => {
    socket?.destroy();
    await t.close();
  });

  const post = async (path: string, payload: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: t.headers,
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(10_000),
    });
    return { statusCode: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
  };

  it('refuses a request whose body would pass the budget before reading it, and takes it once there is room', async () => {
    // A batch whose body is still arriving holds its declared length.
    const conn = net.connect((t.app.server.address() as AddressInfo).port, '127.0.0.1');
    socket = conn;
    await new Promise<void>((r) => conn.once('connect', () => r()));
    const length = Buffer.byteLength(held.body);
    conn.write(
      `POST /usagebatch HTTP/1.1\r\nhost: x\r\nx-apikey: ${t.headers['x-apikey']}\r\n` +
        `content-type: application/json\r\ncontent-length: ${length}\r\n\r\n${held.body.slice(0, 10)}`,
    );
    let reply = '';
    conn.setEncoding('utf8').on('data', (c: string) => (reply += c));
    await until(() => t.admission.stats().inFlight === 1, 'the held request to be admitted');

    const bigSingle = { customerId: fresh('big'), value: 5, metadata: { pad: 'q'.repeat(BUDGET_SLACK) } };
    const bigBatch = [{ eventType: 'api.calls', customerId: fresh('big'), value: 6, metadata: { pad: 'q'.repeat(BUDGET_SLACK) } }];
    assertOverloaded(await post('/usage/api.calls', bigSingle), 'POST /usage/:eventType');
    assertOverloaded(await post('/usagebatch', bigBatch), 'POST /usagebatch');
    const small = { customerId: fresh('small'), value: 3 };
    assert.equal((await post('/usage/api.calls', small)).statusCode, 201, 'a body that fits the room left is taken');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.ok(t.admission.stats().inFlightBytes <= length + BUDGET_SLACK);

    conn.write(held.body.slice(10));
    await until(() => /\r\n\r\n\{.*\}$/s.test(reply), 'the held batch to be answered');
    assert.match(reply, /^HTTP\/1\.1 201 /);
    conn.destroy();
    await until(() => t.admission.stats().inFlight === 0, 'the reservation to be released');

    assert.equal((await post('/usage/api.calls', bigSingle)).statusCode, 201);
    assert.equal((await post('/usagebatch', bigBatch)).statusCode, 201);
    // Alone, a body larger than the whole budget is still taken.
    const huge = Array.from({ length: 40 }, (_, i) => ({
      eventType: 'api.calls',
      customerId: fresh('huge'),
      value: i,
      metadata: { pad: 'h'.repeat(100) },
    }));
    assert.ok(JSON.stringify(huge).length > length + BUDGET_SLACK);
    assert.equal((await post('/usagebatch', huge)).statusCode, 201);

    for (const [i, c] of held.customers.entries()) await countedOnce(t, c, i + 1);
    for (const [c, v] of [
      [bigSingle.customerId, 5],
      [bigBatch[0]!.customerId, 6],
      [small.customerId, 3],
    ] as const)
      await countedOnce(t, c, v);
    assert.ok(t.admission.stats().peakInFlightBytes <= Math.max(length + BUDGET_SLACK, JSON.stringify(huge).length));
  });
});
