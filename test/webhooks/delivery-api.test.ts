// The webhook delivery API and per-endpoint isolation, in-process against real loopback receivers: listing
// with filters and cursor paging, the derived webhookStatus, slow endpoints and perEndpointConcurrency.
// store-contract: sqlite, postgres

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  api,
  endpointDeliveries,
  finalize,
  hookApp,
  listDeliveries,
  MIN,
  pastHourAt,
  postEvents,
  startReceiver,
  waitForDeliveries,
  type DeliveryJson,
} from '../helpers/receiver.js';
import { cleanup, hourlyAggregation, PLAIN, PLAIN_2 } from '../helpers/webhook-suites.js';

describe('delivery API', () => {
  it('lists deliveries filtered by status, endpoint, aggregation and creation time, with cursor paging', async (tc) => {
    const ok = await startReceiver();
    const down = await startReceiver(() => ({ status: 503, body: 'maintenance' }));
    const t = await hookApp({
      webhooks: [
        { id: 'ok', url: ok.url, secret: PLAIN },
        { id: 'down', url: down.url, secret: PLAIN_2 },
      ],
      delivery: { retrySchedule: ['1h', '1h', '1h'] },
    });
    cleanup(tc, [ok, down], t);
    await t.dispatcher.start();

    await postEvents(t, [
      { customerId: 'c1', value: 1 },
      { customerId: 'c2', value: 2 },
    ]);
    const t1 = t.clock.now();
    await finalize(t);
    t.clock.advance(MIN);
    await postEvents(t, [{ customerId: 'c3', value: 3, at: pastHourAt(t, 30) }]);
    const t2 = t.clock.now();
    await finalize(t);
    await waitForDeliveries(t, 'ok', 3, (d) => d.status === 'succeeded');
    await waitForDeliveries(t, 'down', 3, (d) => d.status === 'retry_scheduled' && d.attempts === 1);

    const all = await listDeliveries(t);
    assert.equal(all.length, 6);
    const ids = (ds: DeliveryJson[]) => ds.map((d) => d.id).sort();

    const succeeded = await listDeliveries(t, { status: 'succeeded' });
    assert.deepEqual(ids(succeeded), ids(all.filter((d) => d.endpointId === 'ok')));
    const retrying = await listDeliveries(t, { status: 'retry_scheduled' });
    assert.deepEqual(ids(retrying), ids(all.filter((d) => d.endpointId === 'down')));
    for (const d of retrying) {
      assert.equal(d.lastStatusCode, 503);
      assert.equal(d.lastError, 'HTTP 503');
      assert.ok(d.nextAttemptAt && Date.parse(d.nextAttemptAt) > t.clock.now());
    }
    assert.equal((await listDeliveries(t, { status: 'failed' })).length, 0);
    assert.equal((await listDeliveries(t, { endpointId: 'down' })).length, 3);
    assert.equal((await listDeliveries(t, { endpointId: 'nope' })).length, 0);

    const c1 = (await hourlyAggregation(t, 'c1')).id;
    const byAgg = await listDeliveries(t, { aggregationId: c1 });
    assert.deepEqual(byAgg.map((d) => d.endpointId).sort(), ['down', 'ok']);
    assert.ok(byAgg.every((d) => d.aggregationId === c1));

    const iso = (ms: number) => new Date(ms).toISOString();
    assert.equal((await listDeliveries(t, { from: iso(t2) })).length, 2);
    assert.equal((await listDeliveries(t, { to: iso(t1) })).length, 4);
    assert.equal((await listDeliveries(t, { from: iso(t1), to: iso(t1) })).length, 4);
    assert.equal((await listDeliveries(t, { from: iso(t2 + 1) })).length, 0);
    assert.equal((await listDeliveries(t, { endpointId: 'ok', from: iso(t2) })).length, 1);

    const bad = await api(t, 'GET', '/webhooks/deliveries?status=bogus');
    assert.equal(bad.status, 400);
    const badFrom = await api(t, 'GET', '/webhooks/deliveries?from=yesterday');
    assert.equal(badFrom.status, 400);
    const missing = await api(t, 'GET', '/webhooks/deliveries/dlv_does_not_exist');
    assert.equal(missing.status, 404);

    // Newest first, ties by id descending; paging by cursor visits every delivery once.
    const order = [...all].sort((x, y) => Date.parse(y.createdAt) - Date.parse(x.createdAt) || (y.id < x.id ? -1 : y.id > x.id ? 1 : 0));
    assert.deepEqual(
      all.map((d) => d.id),
      order.map((d) => d.id),
    );
    for (const [query, expected] of [
      [{}, all],
      [{ endpointId: 'ok' }, all.filter((d) => d.endpointId === 'ok')],
    ] as const) {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const qs = new URLSearchParams({ ...query, limit: '2', ...(cursor ? { cursor } : {}) }).toString();
        const r = await api<DeliveryJson[]>(t, 'GET', `/webhooks/deliveries?${qs}`);
        assert.equal(r.status, 200);
        assert.ok(r.body.length <= 2);
        seen.push(...r.body.map((d) => d.id));
        cursor = r.headers['x-next-cursor'] as string | undefined;
        pages++;
        assert.ok(pages <= 10, 'paging terminates');
      } while (cursor);
      assert.deepEqual(
        seen,
        expected.map((d) => d.id),
      );
      assert.equal(pages, Math.ceil(expected.length / 2));
    }
  });

  it('derives the aggregation webhookStatus from every endpoint of the newest message', async (tc) => {
    const good = await startReceiver();
    const bad = await startReceiver(() => ({ status: 500, body: 'nope' }));
    const t = await hookApp({
      webhooks: [
        { id: 'good', url: good.url, secret: PLAIN },
        { id: 'bad', url: bad.url, secret: PLAIN },
      ],
    });
    cleanup(tc, [good, bad], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);

    await waitForDeliveries(t, 'good', 1, (d) => d.status === 'succeeded');
    // Exactly one retry: the clock moves to the first retry's due time once, and no further, so the
    // second attempt is the last one whatever the polling speed.
    const [first] = await waitForDeliveries(t, 'bad', 1, (d) => d.attempts === 1 && d.status === 'retry_scheduled');
    t.clock.set(Date.parse(first!.nextAttemptAt!));
    await waitForDeliveries(t, 'bad', 1, (d) => d.attempts === 2 && d.status === 'retry_scheduled');
    let st = (await hourlyAggregation(t, 'c1')).webhookStatus;
    assert.equal(st.delivered, false, 'one failing endpoint means not delivered');
    assert.equal(st.attempts, 3, 'attempts are summed over endpoints');
    assert.match(st.lastError ?? '', /HTTP 500/);
    assert.equal(st.deliveredAt, undefined);
    const eps = (
      await api<Array<{ id: string; failureStreak: number; lastFailureAt: string | null; lastSuccessAt: string | null }>>(
        t,
        'GET',
        '/webhooks/endpoints',
      )
    ).body;
    const badEp = eps.find((e) => e.id === 'bad')!;
    const goodEp = eps.find((e) => e.id === 'good')!;
    assert.equal(badEp.failureStreak, 2);
    assert.ok(badEp.lastFailureAt);
    assert.equal(badEp.lastSuccessAt, null);
    assert.equal(goodEp.failureStreak, 0);
    assert.ok(goodEp.lastSuccessAt);

    bad.setResponder(() => ({ status: 204 }));
    await waitForDeliveries(t, 'bad', 1, (d) => d.status === 'succeeded', { advanceMs: 150 });
    st = (await hourlyAggregation(t, 'c1')).webhookStatus;
    assert.equal(st.delivered, true);
    assert.equal(st.attempts, 4);
    assert.equal(st.lastError, undefined);
    assert.ok(st.deliveredAt && Number.isFinite(Date.parse(st.deliveredAt)));
    assert.equal(st.dryRun, undefined);
  });
});

describe('endpoint isolation', () => {
  it('a slow endpoint does not delay deliveries to a fast one', async (tc) => {
    const slow = await startReceiver(() => ({ status: 200, delayMs: 3_000 }));
    const fast = await startReceiver();
    const t = await hookApp({
      webhooks: [
        { id: 'slow', url: slow.url, secret: PLAIN, timeout: '5s' },
        { id: 'fast', url: fast.url, secret: PLAIN },
      ],
      delivery: { perEndpointConcurrency: 1 },
    });
    cleanup(tc, [slow, fast], t);
    await t.dispatcher.start();
    await postEvents(t, [
      { customerId: 'c1', value: 1 },
      { customerId: 'c2', value: 1 },
      { customerId: 'c3', value: 1 },
    ]);
    const started = Date.now();
    await finalize(t);
    await waitForDeliveries(t, 'fast', 3, (d) => d.status === 'succeeded', { timeoutMs: 2_500 });
    assert.ok(Date.now() - started < 2_900, 'fast deliveries completed before the slow receiver answered once');
    assert.equal(fast.requests.length, 3);
    const slowNow = await endpointDeliveries(t, 'slow');
    assert.equal(slowNow.length, 3);
    assert.ok(
      slowNow.every((d) => d.status !== 'succeeded'),
      'the slow endpoint is still pending',
    );
  });

  it('perEndpointConcurrency bounds the requests in flight to one endpoint', async (tc) => {
    const slow = await startReceiver(() => ({ status: 200, delayMs: 300 }));
    const t = await hookApp({
      webhooks: [{ id: 'slow', url: slow.url, secret: PLAIN }],
      delivery: { perEndpointConcurrency: 1 },
    });
    cleanup(tc, [slow], t);
    await t.dispatcher.start();
    await postEvents(t, [
      { customerId: 'c1', value: 1 },
      { customerId: 'c2', value: 1 },
      { customerId: 'c3', value: 1 },
    ]);
    await finalize(t);
    await waitForDeliveries(t, 'slow', 3, (d) => d.status === 'succeeded');
    assert.equal(slow.requests.length, 3);
    assert.equal(slow.maxConcurrent, 1, `at most 1 request in flight to the endpoint, saw ${slow.maxConcurrent}`);
  });
});
