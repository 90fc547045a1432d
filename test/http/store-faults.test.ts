// Store faults, caused for real under the in-process app: every route answers 503 JSON with Retry-After
// (never a 500), GET /readyz is 503 while writes fail and ready again by itself once they work, and
// every acknowledged event is counted exactly once afterwards (usage and the events listing). SQLite: a
// full database (max_page_count), derived state that cannot be written after its commit, a read-only
// connection and another connection holding the write lock. PostgreSQL: a table lock held by another
// connection (55P03), a statement canceled (57014) and a backend terminated (57P01) while waiting on it.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type pg from 'pg';
import { ENDPOINTS } from '../../src/http/routes/meta.js';
import { buildTestApp, REFERENCE_CONFIG, TEST_STORE, type TestApp } from '../helpers/app.js';
import { fullDisk, heldWriteLock, noBusyWait, pgSideConnection, readOnly } from '../helpers/store-faults.js';

/**
 * Background work (derived slices, listing indexes) only when a reader or readiness asks: no timers in
 * play. Its failures are expected here; readiness reports them.
 */
const ON_DEMAND = { derived: { intervalMs: 3_600_000 }, listing: { intervalMs: 3_600_000 }, onBackgroundError: () => undefined };
const CONFIG = {
  ...REFERENCE_CONFIG,
  webhooks: [{ id: 'billing', url: 'https://billing.example/hooks', secret: 'whsec_c3RvcmUtZmF1bHRzLXNlY3JldC0xMjM0NTY=' }],
};

interface Res {
  status: number;
  headers: Record<string, unknown>;
  body: any;
}

async function call(t: TestApp, method: string, url: string, payload?: unknown): Promise<Res> {
  const r = await t.app.inject({
    method: method as 'GET',
    url,
    headers: method === 'GET' ? { 'x-apikey': t.headers['x-apikey']! } : t.headers,
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  });
  let body: unknown;
  try {
    body = r.json();
  } catch {
    if (url !== '/metrics' || r.statusCode !== 200)
      assert.fail(`${method} ${url} answered ${r.statusCode} with a non-JSON body: ${r.body.slice(0, 200)}`);
  }
  return { status: r.statusCode, headers: r.headers, body };
}

function assertUnavailable(r: Res, what: string, reason?: RegExp, retryAfter?: string): void {
  assert.equal(r.status, 503, `${what}: ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(r.body.code, 'store_unavailable', what);
  assert.match(r.body.error, /^Storage is temporarily unavailable/, what);
  if (reason) assert.match(r.body.error, reason, what);
  assert.equal(typeof r.body.requestId, 'string', what);
  assert.match(String(r.headers['retry-after']), retryAfter ? new RegExp(`^${retryAfter}$`) : /^[1-9]\d*$/, `${what}: Retry-After`);
}

async function assertNotReady(t: TestApp, reason?: RegExp): Promise<void> {
  const r = await call(t, 'GET', '/readyz');
  assert.equal(r.status, 503, `readyz: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.status, 'not_ready');
  assert.equal(r.body.reason, 'writes_failing');
  if (reason) assert.match(r.body.error, reason);
  assert.match(String(r.headers['retry-after']), /^[1-9]\d*$/);
}

async function assertReady(t: TestApp): Promise<void> {
  const r = await call(t, 'GET', '/readyz');
  assert.equal(r.status, 200, `readyz: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.status, 'ready');
}

interface Ev {
  eventType: string;
  customerId: string;
  value: number;
  id: string;
}

/** Events sent and acknowledged, to check that each acknowledged one is counted exactly once. */
class Ledger {
  readonly acked = new Map<string, Ev>();
  private n = 0;
  constructor(private readonly customers: string[]) {}

  make(count: number): Ev[] {
    return Array.from({ length: count }, () => {
      const i = this.n++;
      return { eventType: 'api.calls', customerId: this.customers[i % this.customers.length]!, value: 1 + (i % 7), id: `ev-${i}` };
    });
  }

  async batch(t: TestApp, events: Ev[]): Promise<Res> {
    const r = await call(t, 'POST', '/usagebatch', events);
    if (r.status === 200 || r.status === 201) for (const e of events) this.acked.set(e.id, e);
    return r;
  }

  async single(t: TestApp, e: Ev): Promise<Res> {
    const r = await call(t, 'POST', `/usage/${e.eventType}`, { customerId: e.customerId, value: e.value, id: e.id });
    if (r.status === 200 || r.status === 201) this.acked.set(e.id, e);
    return r;
  }

  /** Usage of every customer and the events listing hold each acknowledged event exactly once. */
  async assertExactlyOnce(t: TestApp): Promise<void> {
    for (const c of new Set([...this.acked.values()].map((e) => e.customerId))) {
      const mine = [...this.acked.values()].filter((e) => e.customerId === c);
      const r = await call(t, 'GET', `/customers/${encodeURIComponent(c)}/usage?period=monthly`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(
        [r.body.eventCounts['api.calls'], r.body.events['api.calls']],
        [mine.length, mine.reduce((s, e) => s + e.value, 0)],
        c,
      );
    }
    const ids: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await call(t, 'GET', `/events?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      ids.push(...r.body.map((e: { id: string }) => e.id));
      cursor = r.headers['x-next-cursor'] as string | undefined;
      if (!cursor) break;
    }
    assert.equal(ids.length, new Set(ids).size, 'no event is listed twice');
    assert.deepEqual(ids.sort(), [...this.acked.keys()].sort());
  }
}

/** One request per route of the API, with the path filled in and a valid body (events from `ledger`). */
function everyRoute(ledger: Ledger): Array<{ method: string; url: string; body?: unknown; events?: Ev[] }> {
  const one = ledger.make(1)[0]!;
  const two = ledger.make(2);
  const events: Record<string, Ev[]> = { 'POST /usage/:eventType': [one], 'POST /usagebatch': two };
  const bodies: Record<string, unknown> = {
    'POST /usage/:eventType': { customerId: one.customerId, value: one.value, id: one.id },
    'POST /usagebatch': two,
    'POST /webhooks/recover': { since: '2026-01-01T00:00:00Z' },
    'POST /aggregations/trigger': {},
    'POST /webhooks/deliveries/:id/retry': {},
    'POST /webhooks/endpoints/:endpointId/enable': {},
  };
  return Object.keys(ENDPOINTS).map((key) => {
    const [method, path] = key.split(' ') as [string, string];
    const url = path
      .replace(':eventType', 'api.calls')
      .replace(':customerId', 'cust_a')
      .replace(':id', 'dlv_unknown')
      .replace(':endpointId', 'billing');
    return { method, url, body: bodies[key], events: events[key] };
  });
}

/**
 * Every route answers below 500, or 503 with Retry-After and the store_unavailable code: never a 500.
 * Events the capture routes acknowledge go into `ledger`.
 */
async function sweep(t: TestApp, ledger: Ledger): Promise<Map<string, number>> {
  const statuses = new Map<string, number>();
  for (const r of everyRoute(ledger)) {
    const res = await call(t, r.method, r.url, r.body);
    const what = `${r.method} ${r.url}`;
    statuses.set(what, res.status);
    if (r.events && (res.status === 200 || res.status === 201)) for (const e of r.events) ledger.acked.set(e.id, e);
    if (res.status < 500) continue;
    assert.equal(res.status, 503, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
    assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/, `${what}: Retry-After`);
    if (r.url === '/readyz') assert.equal(res.body.status, 'not_ready');
    else assert.equal(res.body.code, 'store_unavailable', `${what}: ${JSON.stringify(res.body)}`);
  }
  return statuses;
}

describe('SQLite faults', { skip: TEST_STORE !== 'sqlite' && 'SQLite only' }, () => {
  const fullDiskTitle =
    'a full disk: capture answers 503 with Retry-After, readyz is 503, both recover when there is room again, nothing is lost';
  it(fullDiskTitle, async () => {
    const t = await buildTestApp({ config: CONFIG, sqlite: ON_DEMAND });
    const ledger = new Ledger(['cust_a', 'cust_b', 'cust_c']);
    try {
      assert.equal((await ledger.batch(t, ledger.make(50))).status, 201);
      await ledger.assertExactlyOnce(t);
      await assertReady(t);

      const full = fullDisk(t.store);
      let refused: { events: Ev[]; res: Res } | undefined;
      for (let i = 0; i < 400 && !refused; i++) {
        const events = ledger.make(25);
        const res = await ledger.batch(t, events);
        if (res.status !== 201) refused = { events, res };
      }
      assert.ok(refused, 'the database filled up');
      assertUnavailable(refused.res, 'POST /usagebatch', /the disk is full/, '5');
      let single: Res | undefined;
      for (let i = 0; i < 400; i++) {
        single = await ledger.single(t, ledger.make(1)[0]!);
        if (single.status !== 201) break;
      }
      assertUnavailable(single!, 'POST /usage/api.calls', /the disk is full/, '5');
      await assertNotReady(t, /the disk is full/);
      const statuses = await sweep(t, ledger);
      assert.equal(statuses.get('POST /usagebatch'), 503);
      assert.equal(statuses.get('GET /readyz'), 503);

      full.restore();
      await assertReady(t);
      // The refused batch was not stored: sent again, every event is new. An acknowledged one is a duplicate.
      const again = await ledger.batch(t, refused.events);
      assert.equal(again.status, 201, JSON.stringify(again.body));
      assert.equal(again.body.inserted, refused.events.length);
      const repeat = await ledger.batch(t, [...ledger.acked.values()].slice(0, 10));
      assert.deepEqual([repeat.status, repeat.body.duplicates], [200, 10]);
      await ledger.assertExactlyOnce(t);
    } finally {
      await t.close();
    }
  });

  const unwritableTitle =
    'derived state that cannot be written after its commit: readers and readyz answer 503 until it is applied, nothing is lost';
  it(unwritableTitle, async () => {
    // No slice runs on its own (the backlog stays under a slice and the bound): readers apply it.
    const t = await buildTestApp({ config: CONFIG, sqlite: { ...ON_DEMAND, derived: { intervalMs: 3_600_000, maxPending: 1_000 } } });
    // Long ids and one customer per event: the derived tables need far more room than an appended event.
    const ledger = new Ledger(Array.from({ length: 400 }, (_, i) => `cust_${String(i).padStart(3, '0')}_${'x'.repeat(200)}`));
    try {
      assert.equal((await ledger.batch(t, ledger.make(400))).status, 201);
      // Room for one more event, not for the derived state of 400 customers.
      const full = fullDisk(t.store, 4);
      const late = await ledger.single(t, ledger.make(1)[0]!);
      assert.equal(late.status, 201, `the event itself is committed: ${JSON.stringify(late.body)}`);
      assert.equal(t.store.stats().deferred.derived, 401, 'its derived state failed and stays pending');
      const first = [...ledger.acked.values()][0]!.customerId;
      assertUnavailable(await call(t, 'GET', `/customers/${first}/usage`), 'GET /customers/:id/usage', /the disk is full/, '5');
      await assertNotReady(t, /the disk is full/);
      assertUnavailable(await call(t, 'GET', `/customers/${first}/usage/series`), 'GET /customers/:id/usage/series');
      assertUnavailable(await call(t, 'GET', '/events'), 'GET /events', /the disk is full/);
      const statuses = await sweep(t, ledger);
      for (const route of ['GET /customers', 'GET /stats', 'POST /aggregations/trigger', 'GET /customers/cust_a/usage']) {
        assert.equal(statuses.get(route), 503, route);
      }
      await assertNotReady(t);

      full.restore();
      await assertReady(t);
      assert.equal(t.store.stats().deferred.derived, 0, 'readiness applied the pending events');
      await ledger.assertExactlyOnce(t);
    } finally {
      await t.close();
    }
  });

  it('a read-only database: writes answer 503, reads of applied state still answer, and it recovers', async () => {
    const t = await buildTestApp({ config: CONFIG, sqlite: ON_DEMAND });
    const ledger = new Ledger(['cust_a', 'cust_b']);
    try {
      assert.equal((await ledger.batch(t, ledger.make(20))).status, 201);
      await ledger.assertExactlyOnce(t);
      const ro = readOnly(t.store);
      const refused = ledger.make(5);
      assertUnavailable(await ledger.batch(t, refused), 'POST /usagebatch', /read-only/, '5');
      assertUnavailable(await ledger.single(t, ledger.make(1)[0]!), 'POST /usage/api.calls', /read-only/, '5');
      // Even a repeat of a stored event needs the write lock to be checked: it is a 503 too, and
      // acknowledged as a duplicate once writes work again.
      const stored = [...ledger.acked.values()][0]!;
      assertUnavailable(await ledger.single(t, stored), 'a repeat of a stored event', /read-only/);
      await assertNotReady(t, /read-only/);
      assert.equal((await call(t, 'GET', '/customers/cust_a/usage')).status, 200);
      assert.equal((await call(t, 'GET', '/events?customerId=cust_a')).status, 200);
      const statuses = await sweep(t, ledger);
      assert.equal(statuses.get('POST /usagebatch'), 503);

      ro.restore();
      await assertReady(t);
      const dup = await ledger.single(t, stored);
      assert.deepEqual([dup.status, dup.body.duplicate], [200, true]);
      assert.equal((await ledger.batch(t, refused)).status, 201);
      await ledger.assertExactlyOnce(t);
    } finally {
      await t.close();
    }
  });

  it('another connection holding the write lock: writes answer 503 with Retry-After 1 until it lets go', async () => {
    const t = await buildTestApp({ config: CONFIG, sqlite: ON_DEMAND });
    const ledger = new Ledger(['cust_a']);
    try {
      assert.equal((await ledger.batch(t, ledger.make(10))).status, 201);
      await ledger.assertExactlyOnce(t);
      const wait = noBusyWait(t.store);
      const lock = heldWriteLock(t.dir);
      const refused = ledger.make(3);
      try {
        assertUnavailable(await ledger.batch(t, refused), 'POST /usagebatch', /busy/, '1');
        await assertNotReady(t, /busy/);
        assert.equal((await call(t, 'GET', '/customers/cust_a/usage')).status, 200, 'readers do not need the write lock');
        await sweep(t, ledger);
      } finally {
        lock.release();
      }
      await assertReady(t);
      wait.restore();
      assert.equal((await ledger.batch(t, refused)).status, 201);
      await ledger.assertExactlyOnce(t);
    } finally {
      await t.close();
    }
  });
});

/** The backend of another connection that waits for a lock `side` holds. */
async function waitingBackend(side: pg.Client): Promise<number> {
  // Bounded by the capture's own lock_timeout (2 s): it is found within a few queries.
  for (let i = 0; i < 5_000; i++) {
    // Inside side's transaction the activity view is a snapshot taken once: take a new one each time.
    await side.query('SELECT pg_stat_clear_snapshot()');
    const r = await side.query('SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid))');
    if (r.rows[0]) return Number(r.rows[0].pid);
  }
  assert.fail('no backend waited for the lock');
}

describe('PostgreSQL faults', { skip: TEST_STORE !== 'postgres' && 'PostgreSQL only' }, () => {
  it('a table lock held by another connection: capture answers 503 with Retry-After (55P03), readyz is 503, both recover', async () => {
    const t = await buildTestApp({ config: CONFIG });
    const side = await pgSideConnection(t.store);
    const ledger = new Ledger(['cust_a', 'cust_b']);
    try {
      assert.equal((await ledger.batch(t, ledger.make(20))).status, 201);
      // SHARE blocks writers of events, not readers.
      await side.query('BEGIN');
      await side.query('LOCK TABLE events IN SHARE MODE');
      const refused = ledger.make(5);
      try {
        assertUnavailable(await ledger.batch(t, refused), 'POST /usagebatch', /lock could not be taken/, '1');
        await assertNotReady(t, /lock could not be taken/);
        assert.equal((await call(t, 'GET', '/customers/cust_a/usage')).status, 200);
        const statuses = await sweep(t, ledger);
        assert.equal(statuses.get('POST /usage/api.calls'), 503);
      } finally {
        await side.query('COMMIT');
      }
      await assertReady(t);
      assert.equal((await ledger.batch(t, refused)).status, 201);
      await ledger.assertExactlyOnce(t);
    } finally {
      await side.end();
      await t.close();
    }
  });

  it('hour states locked by another connection: capture is acknowledged; usage and readyz answer 503 until derivation runs', async () => {
    const t = await buildTestApp({ config: CONFIG });
    const side = await pgSideConnection(t.store);
    const ledger = new Ledger(['cust_a', 'cust_b']);
    try {
      assert.equal((await ledger.batch(t, ledger.make(20))).status, 201);
      assert.equal((await call(t, 'GET', '/customers/cust_a/usage')).status, 200);
      // SHARE blocks the derivation's upserts of hour states, not the ingest transaction.
      await side.query('BEGIN');
      await side.query('LOCK TABLE rollups IN SHARE MODE');
      try {
        assert.equal((await ledger.batch(t, ledger.make(6))).status, 201, 'acknowledged: its events are durable');
        // A read must not answer without those events: it waits for their derivation, then gives up.
        assertUnavailable(await call(t, 'GET', '/customers/cust_a/usage'), 'usage', /lock could not be taken/, '1');
        await assertNotReady(t, /lock could not be taken/);
      } finally {
        await side.query('COMMIT');
      }
      await assertReady(t);
      await ledger.assertExactlyOnce(t);
    } finally {
      await side.end();
      await t.close();
    }
  });

  it('a statement canceled (57014) or a backend terminated (57P01) mid-capture: 503, and the next capture succeeds', async () => {
    const t = await buildTestApp({ config: CONFIG });
    const side = await pgSideConnection(t.store);
    const ledger = new Ledger(['cust_a']);
    try {
      assert.equal((await ledger.batch(t, ledger.make(5))).status, 201);
      const canceled = ledger.make(3);
      const terminated = ledger.make(3);
      await side.query('BEGIN');
      await side.query('LOCK TABLE events IN SHARE MODE');
      try {
        const first = ledger.batch(t, canceled);
        await side.query('SELECT pg_cancel_backend($1)', [await waitingBackend(side)]);
        assertUnavailable(await first, 'canceled capture', /canceled/, '1');
        const second = ledger.batch(t, terminated);
        await side.query('SELECT pg_terminate_backend($1)', [await waitingBackend(side)]);
        assertUnavailable(await second, 'terminated capture', /closed the connection/, '5');
      } finally {
        await side.query('COMMIT');
      }
      await assertReady(t);
      assert.equal((await ledger.batch(t, [...canceled, ...terminated])).body.inserted, 6);
      await ledger.assertExactlyOnce(t);
    } finally {
      await side.end();
      await t.close();
    }
  });
});
