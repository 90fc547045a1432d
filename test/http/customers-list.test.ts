// The dashboard's API routes on the in-process app (SQLite, and PostgreSQL when the runner re-runs
// this suite): GET /customers (id order, prefix search, cursor paging), GET
// /customers/:customerId/usage/series (every operator, hour and day buckets, ranges and their
// validation), GET /stats, and the dashboard's static files (public, listed at startup, locked-down headers).
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { eventsOverview } from '../../src/aggregate/usage-series.js';
import { buildTestApp, REFERENCE_CONFIG, type TestApp } from '../helpers/app.js';
import { getAny as get } from '../helpers/queries.js';

async function post(t: TestApp, events: Array<{ eventType: string; customerId: string; value: number; timestamp: string }>): Promise<void> {
  const r = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: events });
  assert.equal(r.statusCode, 201, r.body);
}

/** Follows X-Next-Cursor to the end; returns every page's ids. */
async function allPages(t: TestApp, query: string): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 50; i++) {
    const r = await get<Array<{ customerId: string }>>(t, `/customers?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(r.status, 200, r.text);
    pages.push(r.body.map((c) => c.customerId));
    cursor = r.headers['x-next-cursor'] as string | undefined;
    if (!cursor) return pages;
  }
  throw new Error('paging did not end');
}

describe('GET /customers', () => {
  let t: TestApp;
  const IDS = ['acme-1', 'acme-10', 'acme-2', 'acme_x', 'acmex', 'beta', 'gamma/1', 'zeta'];

  before(async () => {
    t = await buildTestApp();
    // Each customer's latest usage is a different hour; beta also has older usage.
    await post(
      t,
      IDS.map((c, i) => ({ eventType: 'api.calls', customerId: c, value: 1, timestamp: `2026-01-12T0${i % 9}:15:00Z` })),
    );
    await post(t, [{ eventType: 'storage.bytes', customerId: 'beta', value: 1, timestamp: '2026-01-01T00:00:00Z' }]);
  });
  after(() => t.close());

  it('is empty before any usage, and lists customers in id order with their latest usage hour', async () => {
    const empty = await buildTestApp();
    try {
      const r = await get(empty, '/customers');
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, []);
      assert.equal(r.headers['x-next-cursor'], undefined);
    } finally {
      await empty.close();
    }
    const r = await get<Array<{ customerId: string; lastUsageAt: string }>>(t, '/customers');
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.map((c) => c.customerId),
      [...IDS].sort(),
    );
    const byId = new Map(r.body.map((c) => [c.customerId, c.lastUsageAt]));
    IDS.forEach((c, i) => {
      assert.equal(byId.get(c), `2026-01-12T0${i % 9}:00:00.000Z`, c);
    });
    assert.equal(r.headers['x-next-cursor'], undefined);
  });

  it('pages with limit and X-Next-Cursor, without gaps or repeats', async () => {
    const pages = await allPages(t, 'limit=3');
    assert.deepEqual(
      pages.map((p) => p.length),
      [3, 3, 2],
    );
    assert.deepEqual(pages.flat(), [...IDS].sort());
    // An exact multiple of the page size ends without an empty extra page.
    assert.deepEqual(
      (await allPages(t, 'limit=4')).map((p) => p.length),
      [4, 4],
    );
  });

  it('search is a case-sensitive id prefix (no wildcards), and pages too', async () => {
    const ids = async (q: string) => (await allPages(t, q)).flat();
    assert.deepEqual(await ids('search=acme'), ['acme-1', 'acme-10', 'acme-2', 'acme_x', 'acmex']);
    assert.deepEqual(await ids('search=acme-'), ['acme-1', 'acme-10', 'acme-2']);
    assert.deepEqual(await ids('search=acme-1'), ['acme-1', 'acme-10']);
    // `_` and `%` are plain characters, not LIKE wildcards.
    assert.deepEqual(await ids('search=acme_'), ['acme_x']);
    assert.deepEqual(await ids('search=acme%25'), []);
    assert.deepEqual(await ids('search=ACME'), []);
    assert.deepEqual(await ids(`search=${encodeURIComponent('gamma/')}`), ['gamma/1']);
    assert.deepEqual(await ids('search=nobody'), []);
    assert.deepEqual(await ids('search='), [...IDS].sort(), 'an empty search lists everyone');
    const pages = await allPages(t, 'search=acme&limit=2');
    assert.deepEqual(pages, [['acme-1', 'acme-10'], ['acme-2', 'acme_x'], ['acmex']]);
  });

  it('rejects bad input with 400 and an error string', async () => {
    for (const q of [
      'limit=0',
      'limit=abc',
      'cursor=%%%',
      `cursor=${Buffer.from('[1]').toString('base64url')}`,
      `search=${'s'.repeat(257)}`,
      'search=a%00b',
      'search=a&search=b',
    ]) {
      const r = await get(t, `/customers?${q}`);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.equal(typeof r.body.error, 'string');
    }
    const capped = await get(t, '/customers?limit=5000');
    assert.equal(capped.status, 200);
  });
});

describe('GET /customers/:customerId/usage/series', () => {
  let t: TestApp;
  const C = 'cust/1 é'; // a customer id that needs URL encoding
  const enc = encodeURIComponent(C);
  const TYPES = Object.keys(REFERENCE_CONFIG.events);

  before(async () => {
    t = await buildTestApp(); // clock: 2026-01-12T10:30:00Z
    // The same values for every type, in this arrival order. In 22:00 the first by time arrives second;
    // in 23:00 two events tie on time, so arrival order decides first and last.
    const plan: Array<[number, string]> = [
      [4, '2026-01-10T22:10:00Z'],
      [2, '2026-01-10T22:05:00Z'],
      [10, '2026-01-10T23:30:00Z'],
      [1, '2026-01-10T23:30:00Z'],
      [7, '2026-01-11T01:20:00Z'],
      [3, '2026-01-11T01:40:00Z'],
      [5, '2026-01-11T01:00:00Z'],
    ];
    for (const [value, timestamp] of plan) {
      // One request per event, so arrival order is the plan's order.
      await post(
        t,
        TYPES.map((eventType) => ({ eventType, customerId: C, value, timestamp })),
      );
    }
    // Another customer and an event just outside the ranges used below must not leak in.
    await post(t, [
      { eventType: 'api.calls', customerId: 'other', value: 1000, timestamp: '2026-01-10T22:30:00Z' },
      { eventType: 'api.calls', customerId: C, value: 500, timestamp: '2026-01-09T23:59:59Z' },
    ]);
  });
  after(() => t.close());

  const series = (q: string) => get(t, `/customers/${enc}/usage/series?${q}`);
  const RANGE = 'from=2026-01-10&to=2026-01-11T23:59:59Z';

  const HOURLY: Record<string, number[]> = {
    // hours 2026-01-10T22, 2026-01-10T23, 2026-01-11T01
    'api.calls': [6, 11, 15], // sum
    'storage.bytes': [4, 10, 7], // max
    'response.time.ms': [3, 5.5, 5], // avg
    'test.min': [2, 1, 3],
    'test.count': [2, 2, 3],
    'test.first': [2, 10, 5],
    'test.last': [4, 1, 3],
  };
  const DAILY: Record<string, number[]> = {
    // days 2026-01-10 (its two hours merged), 2026-01-11
    'api.calls': [17, 15],
    'storage.bytes': [10, 7],
    'response.time.ms': [4.25, 5],
    'test.min': [1, 3],
    'test.count': [4, 3],
    'test.first': [2, 5],
    'test.last': [1, 3],
  };
  const OPS: Record<string, string> = {
    'api.calls': 'sum',
    'storage.bytes': 'max',
    'response.time.ms': 'avg',
    'test.min': 'min',
    'test.count': 'count',
    'test.first': 'first',
    'test.last': 'last',
  };

  it('hour buckets: each operator over each hour, only hours with data', async () => {
    const hours = ['2026-01-10T22:00:00.000Z', '2026-01-10T23:00:00.000Z', '2026-01-11T01:00:00.000Z'];
    for (const type of TYPES) {
      const r = await series(`eventType=${type}&bucket=hour&${RANGE}`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(
        r.body,
        {
          customerId: C,
          eventType: type,
          op: OPS[type],
          bucket: 'hour',
          from: '2026-01-10T00:00:00.000Z',
          to: '2026-01-11T23:59:59.999Z',
          points: hours.map((t, i) => ({ t, value: HOURLY[type]![i], valueDecimal: String(HOURLY[type]![i]), count: [2, 2, 3][i] })),
        },
        type,
      );
    }
  });

  it('day buckets merge the hour states of each UTC day with the operator', async () => {
    for (const type of TYPES) {
      const r = await series(`eventType=${type}&bucket=day&${RANGE}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.op, OPS[type]);
      assert.equal(r.body.bucket, 'day');
      assert.deepEqual(
        r.body.points,
        [
          { t: '2026-01-10T00:00:00.000Z', value: DAILY[type]![0], valueDecimal: String(DAILY[type]![0]), count: 4 },
          { t: '2026-01-11T00:00:00.000Z', value: DAILY[type]![1], valueDecimal: String(DAILY[type]![1]), count: 3 },
        ],
        type,
      );
    }
  });

  it('from and to are inclusive instants; their buckets are included, the rest is not', async () => {
    const r = await series('eventType=api.calls&bucket=hour&from=2026-01-10T23:59:00Z&to=2026-01-11T01:00:00Z');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.from, '2026-01-10T23:00:00.000Z');
    assert.equal(r.body.to, '2026-01-11T01:59:59.999Z');
    assert.deepEqual(
      r.body.points.map((p: { value: number }) => p.value),
      [11, 15],
    );
    // The day before holds the 500 at 23:59:59; a day range starting on the 9th includes it.
    const d = await series('eventType=api.calls&bucket=day&from=2026-01-09T12:00:00Z&to=2026-01-10');
    assert.deepEqual(d.body.points, [
      { t: '2026-01-09T00:00:00.000Z', value: 500, valueDecimal: '500', count: 1 },
      { t: '2026-01-10T00:00:00.000Z', value: 17, valueDecimal: '17', count: 4 },
    ]);
    // A single instant is one bucket.
    const one = await series('eventType=api.calls&bucket=hour&from=2026-01-10T22:30:00Z&to=2026-01-10T22:30:00Z');
    assert.deepEqual(one.body.points, [{ t: '2026-01-10T22:00:00.000Z', value: 6, valueDecimal: '6', count: 2 }]);
  });

  it('defaults: the first configured event type, hour buckets, the last 7 days (30 for days) up to now', async () => {
    const r = await series('');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.eventType, 'api.calls');
    assert.equal(r.body.bucket, 'hour');
    assert.equal(r.body.from, '2026-01-05T11:00:00.000Z');
    assert.equal(r.body.to, '2026-01-12T10:59:59.999Z');
    assert.equal(r.body.points.length, 4); // the 500 on the 9th plus the three hours
    const d = await series('bucket=day&eventType=test.count');
    assert.equal(d.body.from, '2025-12-14T00:00:00.000Z');
    assert.equal(d.body.to, '2026-01-12T23:59:59.999Z');
    assert.deepEqual(
      d.body.points.map((p: { value: number }) => p.value),
      [4, 3],
    );
    // Only `to` given: the default span ends there.
    const to = await series('bucket=day&to=2026-01-10T05:00:00Z');
    assert.equal(to.body.from, '2025-12-12T00:00:00.000Z');
    assert.equal(to.body.to, '2026-01-10T23:59:59.999Z');
  });

  it('an unknown customer has no points (not a 404)', async () => {
    const r = await get(t, `/customers/nobody/usage/series?${RANGE}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.points, []);
  });

  it('caps the range: 744 hours or 400 days per request', async () => {
    const ok = await series('bucket=hour&from=2026-01-01T00:00:00Z&to=2026-01-31T23:59:59Z');
    assert.equal(ok.status, 200, ok.text);
    const tooMany = await series('bucket=hour&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z');
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.code, 'invalid_query');
    assert.match(
      tooMany.body.error,
      /745 hour buckets, more than the 744 hours \(31 days\) allowed with bucket=hour: narrow the range or use bucket=day/,
    );
    const days = await series('bucket=day&from=2025-01-01&to=2026-02-04');
    assert.equal(days.status, 200, days.text);
    const tooManyDays = await series('bucket=day&from=2025-01-01&to=2026-02-05');
    assert.equal(tooManyDays.status, 400);
    assert.match(tooManyDays.body.error, /401 day buckets, more than the 400 days allowed/);
  });

  it('rejects bad input with 400 and a clear message', async () => {
    const unknown = await series('eventType=nope');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.code, 'invalid_event_type');
    assert.deepEqual(unknown.body.allowed, TYPES);
    assert.equal(unknown.body.error, `eventType must be one of: ${TYPES.join(', ')}`);
    assert.equal(typeof unknown.body.requestId, 'string');
    for (const [q, pattern] of [
      ['bucket=week', /bucket/],
      ['bucket=Hour', /bucket/],
      ['from=yesterday', /from must be an ISO-8601 instant/],
      ['to=2026-01-12T10:00:00', /to must be an ISO-8601 instant/],
      ['from=2026-01-11&to=2026-01-10', /to must not be before from/],
      ['from=2026-02-01T00:00:00Z', /from is in the future/],
      ['eventType=', /eventType/],
    ] as const) {
      const r = await series(q);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.match(r.body.error, pattern, q);
    }
  });

  it('says so when no event types are configured', async () => {
    const bare = await buildTestApp({ config: { ...REFERENCE_CONFIG, events: {} } });
    try {
      const r = await get(bare, '/customers/c/usage/series');
      assert.equal(r.status, 400);
      assert.deepEqual(r.body.allowed, []);
      assert.match(r.body.error, /No event types are configured/);
    } finally {
      await bare.close();
    }
  });
});

describe('GET /stats', () => {
  let t: TestApp;

  before(async () => {
    t = await buildTestApp({
      config: {
        ...REFERENCE_CONFIG,
        periods: ['hourly', 'daily'],
        webhooks: [
          { id: 'billing', url: 'http://127.0.0.1:9/hooks', secret: 'stats-test-secret-123', periods: ['hourly'] },
          { id: 'off', url: 'http://127.0.0.1:9/off', secret: 'stats-test-secret-456', enabled: false },
        ],
        webhookDelivery: { allowCidrs: ['127.0.0.1/32'] },
      },
    });
  });
  after(() => t.close());

  it('is all zeros on an empty store, with 168 hours in the window', async () => {
    const r = await get(t, '/stats');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.events.total, 0);
    assert.equal(r.body.events.points.length, 168);
    assert.equal(r.body.events.from, '2026-01-05T11:00:00.000Z');
    assert.equal(r.body.events.to, '2026-01-12T10:59:59.999Z');
    assert.equal(r.body.events.complete, true);
    assert.deepEqual(r.body.deliveries, { pending: 0, sending: 0, succeeded: 0, retry_scheduled: 0, failed: 0, cancelled: 0, held: 0 });
    assert.deepEqual(r.body.endpoints, { total: 2, active: 1, disabled: 1, failing: 0 });
    assert.deepEqual(r.body.eventTypes, Object.fromEntries(Object.entries(REFERENCE_CONFIG.events).map(([k, v]) => [k, v.op])));
  });

  it('counts events per hour and type over the last 7 days, aggregations, and deliveries by status', async () => {
    await post(t, [
      { eventType: 'api.calls', customerId: 'a', value: 5, timestamp: '2026-01-12T08:10:00Z' },
      { eventType: 'api.calls', customerId: 'a', value: 5, timestamp: '2026-01-12T08:20:00Z' },
      { eventType: 'storage.bytes', customerId: 'b', value: 9, timestamp: '2026-01-12T08:30:00Z' },
      { eventType: 'api.calls', customerId: 'b', value: 1, timestamp: '2026-01-12T10:00:00Z' },
      // Older than the window: not counted.
      { eventType: 'api.calls', customerId: 'old', value: 1, timestamp: '2026-01-01T00:00:00Z' },
    ]);
    await closeDuePeriods(t.ctx); // finalizes the hours of 2026-01-01 00:00 and 2026-01-12 08:00
    const r = await get(t, '/stats');
    assert.equal(r.status, 200, r.text);
    const ev = r.body.events;
    assert.equal(ev.total, 4);
    assert.deepEqual(ev.byType, { 'api.calls': 3, 'storage.bytes': 1 });
    assert.equal(ev.customersWithUsage, 2);
    assert.equal(ev.customersScanned, 3);
    const nonEmpty = ev.points.filter((p: { count: number }) => p.count > 0);
    assert.deepEqual(nonEmpty, [
      { t: '2026-01-12T08:00:00.000Z', count: 3, byType: { 'api.calls': 2, 'storage.bytes': 1 } },
      { t: '2026-01-12T10:00:00.000Z', count: 1, byType: { 'api.calls': 1 } },
    ]);
    // Final: hourly 08:00 of customers a and b (the 2026-01-01 ones start before the window).
    assert.deepEqual(r.body.aggregations, { from: '2026-01-05T11:00:00.000Z', final: 2, provisional: 0, complete: true });
    assert.equal(r.body.deliveries.pending, 3); // hourly closes of a, b and old go to billing (hourly only)
    assert.equal(r.body.deliveries.failed, 0);
  });

  it('pages through customers, and says when it stopped at its cap (numbers are then a lower bound)', async () => {
    const now = t.clock.now();
    const pick = (o: Awaited<ReturnType<typeof eventsOverview>>) => [o.total, o.customersScanned, o.customersWithUsage, o.complete];
    assert.deepEqual(pick(await eventsOverview(t.ctx, now)), [4, 3, 2, true]);
    assert.deepEqual(pick(await eventsOverview(t.ctx, now, { pageSize: 1 })), [4, 3, 2, true]);
    assert.deepEqual(pick(await eventsOverview(t.ctx, now, { pageSize: 3, maxCustomers: 3 })), [4, 3, 2, true]);
    assert.deepEqual(pick(await eventsOverview(t.ctx, now, { pageSize: 1, maxCustomers: 2 })), [4, 2, 2, false]);
    assert.deepEqual(pick(await eventsOverview(t.ctx, now, { maxCustomers: 1 })), [2, 1, 1, false]);
  });
});
