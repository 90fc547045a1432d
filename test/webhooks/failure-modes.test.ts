// Webhook failure modes against real loopback receivers, attempt by attempt: each network and HTTP failure is
// recorded with its error class, any 2xx delivers, Retry-After is honoured, the SSRF guard holds, response
// bodies are capped and retries are timed on the injected clock.
// store-contract: sqlite, postgres

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import type { TestApp } from '../helpers/app.js';
import {
  finalize,
  getDelivery,
  hookApp,
  HOUR,
  MIN,
  pastHourAt,
  postEvents,
  settle,
  startReceiver,
  unusedPort,
  waitForDeliveries,
} from '../helpers/receiver.js';
import { cleanup, SECRET } from '../helpers/webhook-suites.js';

/** Waits until the endpoint's single delivery has at least `n` recorded attempts; returns its detail. */
async function attemptsOf(t: TestApp, endpointId: string, n = 1, advanceMs?: number) {
  const [d] = await waitForDeliveries(t, endpointId, 1, (x) => x.attempts >= n, advanceMs ? { advanceMs } : {});
  return getDelivery(t, d!.id);
}

describe('error classes (failure mode 3)', () => {
  it('records a receiver slower than the endpoint timeout as timeout, and schedules a retry', async (tc) => {
    const slow = await startReceiver(() => ({ status: 200, delayMs: 1_500 }));
    const t = await hookApp({ webhooks: [{ id: 'timeout', url: slow.url, secret: SECRET, timeout: '200ms' }] });
    cleanup(tc, [slow], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    // The receiver would answer 200 after 1.5 s; recording a timeout shows the request was cut first.
    const [d] = await waitForDeliveries(t, 'timeout', 1, (x) => x.attempts >= 1, { timeoutMs: 3_000 });
    const detail = await getDelivery(t, d!.id);
    const a = detail.attempts[0]!;
    assert.equal(a.errorClass, 'timeout', String(a.error));
    assert.equal(a.statusCode, null);
    assert.ok(a.error);
    assert.equal(detail.status, 'retry_scheduled');
    assert.ok(detail.nextAttemptAt);
    assert.equal(slow.requests.length, 1);
  });

  it('counts reading the response body against the timeout (headers fast, body trickling)', async (tc) => {
    const trickler = await startReceiver(() => ({ status: 200, body: 'x'.repeat(20), trickle: { pieces: 20, trickleMs: 100 } }));
    const t = await hookApp({ webhooks: [{ id: 'trickle', url: trickler.url, secret: SECRET, timeout: '300ms' }] });
    cleanup(tc, [trickler], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    const [d] = await waitForDeliveries(t, 'trickle', 1, (x) => x.attempts >= 1, { timeoutMs: 3_000 });
    const detail = await getDelivery(t, d!.id);
    assert.equal(detail.attempts[0]!.errorClass, 'timeout', String(detail.attempts[0]!.error));
    assert.notEqual(detail.status, 'succeeded', 'a 200 whose body arrives after the timeout is not a success');
  });

  it('records refused, reset, redirect, 404 and 401 with their error classes, and retries them', async (tc) => {
    const resetter = await startReceiver(() => ({ status: 200, destroy: true }));
    const target = await startReceiver();
    const redirector = await startReceiver(() => ({ status: 302, headers: { location: target.url } }));
    const notFound = await startReceiver(() => ({ status: 404, body: 'no such route (deploying?)' }));
    const unauthorized = await startReceiver(() => ({ status: 401, body: 'who are you' }));
    const refusedPort = await unusedPort();
    const t = await hookApp({
      webhooks: [
        { id: 'refused', url: `http://127.0.0.1:${refusedPort}/hooks`, secret: SECRET },
        { id: 'reset', url: resetter.url, secret: SECRET },
        { id: 'redirect', url: redirector.url, secret: SECRET },
        { id: 'http404', url: notFound.url, secret: SECRET },
        { id: 'http401', url: unauthorized.url, secret: SECRET },
      ],
      delivery: { retrySchedule: ['1s', '1s', '1s'] },
    });
    cleanup(tc, [resetter, target, redirector, notFound, unauthorized], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);

    const expected: Array<[string, string, number | null]> = [
      ['refused', 'refused', null],
      ['reset', 'reset', null],
      ['redirect', 'redirect', 302],
      ['http404', 'http_4xx', 404],
      ['http401', 'http_4xx', 401],
    ];
    for (const [epId, errorClass, statusCode] of expected) {
      const d = await attemptsOf(t, epId);
      const a = d.attempts[0]!;
      assert.equal(a.errorClass, errorClass, `${epId}: ${a.error}`);
      assert.equal(a.statusCode, statusCode, epId);
      assert.ok(a.error, `${epId} has an error message`);
      assert.equal(d.status, 'retry_scheduled', `${epId} is retried on the schedule`);
      assert.ok(d.nextAttemptAt, `${epId} has a next attempt`);
      assert.equal(d.lastError, a.error);
    }
    // The redirect was not followed; its Location is logged in the error.
    assert.equal(target.requests.length, 0, 'the redirect target sees no request');
    const redirect = await attemptsOf(t, 'redirect');
    assert.ok(redirect.attempts[0]!.error!.includes(`Location: ${target.url}`), redirect.attempts[0]!.error!);

    // 404 and 401 really are retried: a second attempt arrives once the retry is due.
    for (const epId of ['http404', 'http401']) {
      const d = await attemptsOf(t, epId, 2, 1_000);
      assert.deepEqual(
        d.attempts.slice(0, 2).map((a) => a.errorClass),
        ['http_4xx', 'http_4xx'],
      );
    }
    assert.ok(notFound.requests.length >= 2);
    assert.ok(unauthorized.requests.length >= 2);
    assert.equal(target.requests.length, 0);
  });

  it('a receiver answering 3xx never has the redirect followed, even on retries', async (tc) => {
    const target = await startReceiver();
    const redirector = await startReceiver((_r, n) => ({ status: n % 2 ? 307 : 301, headers: { location: target.url } }));
    const t = await hookApp({
      webhooks: [{ id: 'r', url: redirector.url, secret: SECRET }],
      delivery: { retrySchedule: ['100ms', '100ms'] },
    });
    cleanup(tc, [target, redirector], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    const [d] = await waitForDeliveries(t, 'r', 1, (x) => x.status === 'failed', { advanceMs: 150 });
    const detail = await getDelivery(t, d!.id);
    assert.deepEqual(
      detail.attempts.map((a) => [a.statusCode, a.errorClass]),
      [
        [307, 'redirect'],
        [301, 'redirect'],
        [307, 'redirect'],
      ],
    );
    assert.equal(redirector.requests.length, 3);
    assert.equal(target.requests.length, 0);
  });
});

describe('success', () => {
  it('counts any 2xx as delivered', async (tc) => {
    const receivers = await Promise.all([201, 204, 299].map((status) => startReceiver(() => ({ status }))));
    const t = await hookApp({ webhooks: receivers.map((r, i) => ({ id: `ok${i}`, url: r.url, secret: SECRET })) });
    cleanup(tc, receivers, t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    for (const [i, status] of [201, 204, 299].entries()) {
      const [d] = await waitForDeliveries(t, `ok${i}`, 1, (x) => x.status === 'succeeded');
      assert.equal(d!.lastStatusCode, status);
      assert.equal(d!.attempts, 1);
    }
    await settle(t);
    assert.deepEqual(
      receivers.map((r) => r.requests.length),
      [1, 1, 1],
    );
  });
});

describe('Retry-After (failure mode 4)', () => {
  it('honours delta-seconds on 429 and an HTTP-date on 503, capped at 24 h', async (tc) => {
    let now = 0;
    const rx429 = await startReceiver((_r, n) => (n === 1 ? { status: 429, headers: { 'retry-after': '30' } } : { status: 200 }));
    const rx503 = await startReceiver((_r, n) =>
      n === 1 ? { status: 503, headers: { 'retry-after': new Date(now + 120_000).toUTCString() } } : { status: 200 },
    );
    const rxCap = await startReceiver(() => ({ status: 429, headers: { 'retry-after': String(7 * 24 * 3600) } }));
    const rx500 = await startReceiver(() => ({ status: 500, headers: { 'retry-after': '3600' } }));
    const t = await hookApp({
      webhooks: [
        { id: 'r429', url: rx429.url, secret: SECRET },
        { id: 'r503', url: rx503.url, secret: SECRET },
        { id: 'cap', url: rxCap.url, secret: SECRET },
        { id: 'r500', url: rx500.url, secret: SECRET },
      ],
    });
    cleanup(tc, [rx429, rx503, rxCap, rx500], t);
    now = t.clock.now(); // whole seconds, so the HTTP-date is exact
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);

    const due = async (epId: string) => {
      const d = await attemptsOf(t, epId);
      assert.equal(d.status, 'retry_scheduled', epId);
      return Date.parse(d.nextAttemptAt!) - Date.parse(d.attempts[0]!.startedAt);
    };
    assert.equal(await due('r429'), 30_000);
    assert.equal(await due('r503'), 120_000);
    assert.equal(await due('cap'), 24 * HOUR);
    // Retry-After is honoured on 429 and 503 only; a 500 follows the (100 ms) schedule.
    assert.equal(await due('r500'), 100);

    // Not before: 29 s later nothing has been retried; at 30 s the 429 endpoint gets its retry.
    t.clock.advance(29_000);
    await settle(t);
    assert.equal(rx429.requests.length, 1);
    assert.equal(rx503.requests.length, 1);
    t.clock.advance(1_000);
    await waitForDeliveries(t, 'r429', 1, (d) => d.status === 'succeeded');
    assert.equal(rx429.requests.length, 2);
    assert.equal(rx503.requests.length, 1);
    t.clock.advance(90_000);
    await waitForDeliveries(t, 'r503', 1, (d) => d.status === 'succeeded');
    assert.equal(rx503.requests.length, 2);
    assert.equal(rxCap.requests.length, 1, 'the capped retry is a day away');
  });
});

describe('SSRF guard in delivery (failure mode 9)', () => {
  it('never contacts a loopback receiver unless it is allowlisted', async (tc) => {
    const rx = await startReceiver();
    const byName = await startReceiver();
    const t = await hookApp({
      webhooks: [
        { id: 'literal', url: rx.url, secret: SECRET },
        { id: 'name', url: `http://localhost:${byName.port}/hooks`, secret: SECRET },
      ],
      delivery: { allowCidrs: [] },
    });
    cleanup(tc, [rx, byName], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    for (const epId of ['literal', 'name']) {
      const d = await attemptsOf(t, epId);
      assert.equal(d.attempts[0]!.errorClass, 'ssrf_blocked', `${epId}: ${d.attempts[0]!.error}`);
      assert.equal(d.attempts[0]!.statusCode, null);
    }
    await settle(t);
    assert.equal(rx.requests.length, 0);
    assert.equal(byName.requests.length, 0);
  });

  it('delivers to the same loopback receivers once allowlisted, by literal and by name', async (tc) => {
    const rx = await startReceiver();
    const byName = await startReceiver();
    const t = await hookApp({
      webhooks: [
        { id: 'literal', url: rx.url, secret: SECRET },
        { id: 'name', url: `http://localhost:${byName.port}/hooks`, secret: SECRET },
      ],
      delivery: { allowCidrs: ['127.0.0.1/32', '::1/128'] },
    });
    cleanup(tc, [rx, byName], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    await waitForDeliveries(t, 'literal', 1, (d) => d.status === 'succeeded');
    await waitForDeliveries(t, 'name', 1, (d) => d.status === 'succeeded');
    assert.equal(rx.requests.length, 1);
    assert.equal(byName.requests.length, 1);
  });

  it('blocks plain http when allowHttp is false, without contacting the receiver', async (tc) => {
    const rx = await startReceiver();
    const t = await hookApp({ webhooks: [{ id: 'rx', url: rx.url, secret: SECRET }], delivery: { allowHttp: false } });
    cleanup(tc, [rx], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    const d = await attemptsOf(t, 'rx');
    assert.equal(d.attempts[0]!.errorClass, 'ssrf_blocked');
    assert.match(d.attempts[0]!.error ?? '', /allowHttp/);
    await settle(t);
    assert.equal(rx.requests.length, 0);
  });
});

describe('response bodies', () => {
  it('keeps at most the first 16 KiB of a response body', async (tc) => {
    const big = 'x'.repeat(100 * 1024);
    const rx = await startReceiver((_r, n) => ({ status: n === 1 ? 500 : 200, body: `${n}${big}` }));
    const t = await hookApp({ webhooks: [{ id: 'rx', url: rx.url, secret: SECRET }] });
    cleanup(tc, [rx], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    const [d] = await waitForDeliveries(t, 'rx', 1, (x) => x.status === 'succeeded', { advanceMs: 150 });
    const detail = await getDelivery(t, d!.id);
    assert.equal(detail.attempts.length, 2);
    detail.attempts.forEach((a, i) => {
      assert.equal(a.responseBody!.length, 16 * 1024, `attempt ${i + 1}`);
      assert.equal(a.responseBody, `${i + 1}${big}`.slice(0, 16 * 1024));
    });
  });
});

describe('timing sanity', () => {
  it('schedules a retry relative to the attempt, on the injected clock', async (tc) => {
    const rx = await startReceiver((_r, n) => (n === 1 ? { status: 500 } : { status: 200 }));
    const t = await hookApp({ webhooks: [{ id: 'rx', url: rx.url, secret: SECRET }], delivery: { retrySchedule: ['10m'] }, rng: () => 0 });
    cleanup(tc, [rx], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1, at: pastHourAt(t, 5) }]);
    await finalize(t);
    const d = await attemptsOf(t, 'rx');
    // rng 0 → 80 % of 10 min.
    assert.equal(Date.parse(d.nextAttemptAt!) - Date.parse(d.attempts[0]!.startedAt), 8 * MIN);
    t.clock.advance(8 * MIN - 1);
    await settle(t);
    assert.equal(rx.requests.length, 1, 'not due 1 ms early');
    t.clock.advance(1);
    await waitForDeliveries(t, 'rx', 1, (x) => x.status === 'succeeded');
    assert.equal(rx.requests.length, 2);
  });
});
