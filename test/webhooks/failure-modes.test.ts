// Webhook failure modes against real loopback receivers: each network and HTTP failure is recorded
// with its error class, 410 disables an endpoint, Retry-After is honoured, the SSRF guard holds,
// deliveries give up after the schedule or the deadline, and can be replayed or recovered by hand.
// store-contract: sqlite, postgres

import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';

import type { TestApp } from '../helpers/app.js';
import {
  api,
  endpointDeliveries,
  finalize,
  getDelivery,
  hookApp,
  HOUR,
  listDeliveries,
  MIN,
  pastHourAt,
  postEvents,
  settle,
  startReceiver,
  unusedPort,
  verifyLegacy,
  verifyStandard,
  waitFor,
  waitForDeliveries,
  type Receiver,
} from '../helpers/receiver.js';

const SECRET = 'failure-mode-secret-0001';
const WHSEC_FORM = `whsec_${Buffer.from(SECRET, 'utf8').toString('base64')}`;

function cleanup(tc: TestContext, receivers: Receiver[], t?: TestApp): void {
  tc.after(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await t?.close();
  });
}

interface EndpointJson {
  id: string;
  status: string;
  disabledReason: string | null;
  disabledAt: string | null;
  lastSuccessAt: string | null;
  lastFailureAt: string | null;
  failureStreak: number;
}

async function endpoint(t: TestApp, id: string): Promise<EndpointJson> {
  const r = await api<EndpointJson[]>(t, 'GET', '/webhooks/endpoints');
  assert.equal(r.status, 200);
  const e = r.body.find((x) => x.id === id);
  assert.ok(e, `endpoint ${id} listed`);
  return e;
}

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
      assert.deepEqual(d.attempts.slice(0, 2).map((a) => a.errorClass), ['http_4xx', 'http_4xx']);
    }
    assert.ok(notFound.requests.length >= 2);
    assert.ok(unauthorized.requests.length >= 2);
    assert.equal(target.requests.length, 0);
  });

  it('a receiver answering 3xx never has the redirect followed, even on retries', async (tc) => {
    const target = await startReceiver();
    const redirector = await startReceiver((_r, n) => ({ status: n % 2 ? 307 : 301, headers: { location: target.url } }));
    const t = await hookApp({ webhooks: [{ id: 'r', url: redirector.url, secret: SECRET }], delivery: { retrySchedule: ['100ms', '100ms'] } });
    cleanup(tc, [target, redirector], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    const [d] = await waitForDeliveries(t, 'r', 1, (x) => x.status === 'failed', { advanceMs: 150 });
    const detail = await getDelivery(t, d!.id);
    assert.deepEqual(detail.attempts.map((a) => [a.statusCode, a.errorClass]), [[307, 'redirect'], [301, 'redirect'], [307, 'redirect']]);
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
    assert.deepEqual(receivers.map((r) => r.requests.length), [1, 1, 1]);
  });
});

describe('410 Gone', () => {
  it('cancels the delivery, disables the endpoint, holds its new messages, and enabling releases them', async (tc) => {
    const rx = await startReceiver((_r, n) => (n === 1 ? { status: 410, body: 'gone' } : { status: 200 }));
    const other = await startReceiver();
    const t = await hookApp({ webhooks: [{ id: 'gone', url: rx.url, secret: SECRET }, { id: 'other', url: other.url, secret: SECRET }] });
    cleanup(tc, [rx, other], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);

    const [cancelled] = await waitForDeliveries(t, 'gone', 1, (d) => d.status === 'cancelled');
    await settle(t);
    assert.equal(rx.requests.length, 1, 'no further attempts after 410');
    const detail = await getDelivery(t, cancelled!.id);
    assert.equal(detail.attempts.length, 1);
    assert.equal(detail.attempts[0]!.statusCode, 410);
    assert.equal(detail.attempts[0]!.errorClass, 'http_4xx');
    assert.equal(detail.nextAttemptAt, null);

    const ep = await endpoint(t, 'gone');
    assert.equal(ep.status, 'disabled');
    assert.match(ep.disabledReason ?? '', /410/);
    assert.ok(ep.disabledAt);
    assert.equal((await endpoint(t, 'other')).status, 'active', 'only the endpoint that answered 410 is disabled');

    // Later messages for the disabled endpoint are held; other endpoints still get theirs.
    await postEvents(t, [{ customerId: 'c2', value: 2 }, { customerId: 'c3', value: 3 }]);
    await finalize(t);
    await waitForDeliveries(t, 'other', 3, (d) => d.status === 'succeeded');
    await settle(t);
    const held = (await endpointDeliveries(t, 'gone')).filter((d) => d.id !== cancelled!.id);
    assert.equal(held.length, 2);
    assert.ok(held.every((d) => d.status === 'held' && d.attempts === 0), JSON.stringify(held));
    assert.equal(rx.requests.length, 1);
    assert.equal((await listDeliveries(t, { status: 'held' })).length, 2);

    const unknown = await api(t, 'POST', '/webhooks/endpoints/nope/enable', {});
    assert.equal(unknown.status, 404);
    const enabled = await api<{ id: string; status: string; released: number }>(t, 'POST', '/webhooks/endpoints/gone/enable', {});
    assert.equal(enabled.status, 200);
    assert.deepEqual(enabled.body, { id: 'gone', status: 'active', released: 2 });
    assert.equal((await endpoint(t, 'gone')).status, 'active');

    const after = await waitForDeliveries(t, 'gone', 3, (d) => d.status === 'succeeded' || d.id === cancelled!.id);
    assert.equal(after.find((d) => d.id === cancelled!.id)!.status, 'cancelled', 'the cancelled delivery stays cancelled');
    assert.equal(rx.requests.length, 3);
    for (const r of rx.requests.slice(1)) {
      assert.doesNotThrow(() => verifyStandard(WHSEC_FORM, r.rawBody, r.headers));
      assert.equal(verifyLegacy(SECRET, r.rawBody, r.headers), true);
    }
  });
});

describe('410 Gone, then recover', () => {
  it('POST /webhooks/recover releases held deliveries and re-enables their endpoint', async (tc) => {
    const rx = await startReceiver((_r, n) => (n === 1 ? { status: 410 } : { status: 200 }));
    const t = await hookApp({ webhooks: [{ id: 'gone', url: rx.url, secret: SECRET }] });
    cleanup(tc, [rx], t);
    await t.dispatcher.start();
    const since = new Date(t.clock.now()).toISOString();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    await waitForDeliveries(t, 'gone', 1, (d) => d.status === 'cancelled');
    await postEvents(t, [{ customerId: 'c2', value: 1 }]);
    await finalize(t);
    const held = (await listDeliveries(t, { status: 'held' }));
    assert.equal(held.length, 1);
    const rec = await api<{ requeued: number }>(t, 'POST', '/webhooks/recover', { since });
    assert.equal(rec.status, 200);
    assert.equal(rec.body.requeued, 1, 'the held delivery is re-queued; the cancelled one is not');
    await waitFor(t, 'the held delivery to be delivered', async () => (await getDelivery(t, held[0]!.id)).status === 'succeeded');
    assert.equal((await endpoint(t, 'gone')).status, 'active');
    assert.equal(rx.requests.length, 2);
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

describe('giving up, replay and recovery', () => {
  it('fails after the schedule is used up; a manual retry is one new re-signed attempt; recover re-queues once', async (tc) => {
    let answer = 500;
    const rx = await startReceiver(() => ({ status: answer, body: `status ${answer}` }));
    const t = await hookApp({ webhooks: [{ id: 'rx', url: rx.url, secret: SECRET }], delivery: { retrySchedule: ['100ms', '100ms'] } });
    cleanup(tc, [rx], t);
    await t.dispatcher.start();
    const since = new Date(t.clock.now()).toISOString();
    await postEvents(t, [{ customerId: 'c1', value: 1 }, { customerId: 'c2', value: 2 }]);
    await finalize(t);

    const failed = await waitForDeliveries(t, 'rx', 2, (d) => d.status === 'failed', { advanceMs: 150 });
    await settle(t);
    assert.equal(rx.requests.length, 6, 'three attempts per delivery, then no more');
    for (const d of failed) {
      assert.equal(d.attempts, 3);
      assert.equal(d.nextAttemptAt, null);
      assert.match(d.lastError ?? '', /HTTP 500/);
      assert.match(d.lastError ?? '', /retry schedule used up/);
      const detail = await getDelivery(t, d.id);
      assert.deepEqual(detail.attempts.map((a) => a.errorClass), ['http_5xx', 'http_5xx', 'http_5xx']);
    }
    assert.equal((await listDeliveries(t, { status: 'failed' })).length, 2);

    // Manual replay of one failed delivery, against a receiver that now accepts.
    answer = 200;
    const [one, two] = failed;
    t.clock.advance(5_000);
    const replayAt = Math.floor(t.clock.now() / 1000);
    const before = rx.requests.length;
    const replay = await api<{ delivery: { status: string; attempts: number }; attempt: { statusCode: number; errorClass: null; dryRun: boolean } }>(
      t, 'POST', `/webhooks/deliveries/${one!.id}/retry`, {},
    );
    assert.equal(replay.status, 200, JSON.stringify(replay.body));
    assert.equal(replay.body.delivery.status, 'succeeded');
    assert.equal(replay.body.delivery.attempts, 4);
    assert.equal(replay.body.attempt.statusCode, 200);
    assert.equal(replay.body.attempt.errorClass, null);
    assert.equal(rx.requests.length, before + 1, 'exactly one new request');
    const req = rx.requests[before]!;
    assert.equal(req.headers['webhook-timestamp'], String(replayAt), 're-signed with a fresh timestamp');
    assert.equal(req.headers['x-meterhook-attempt'], '4');
    assert.doesNotThrow(() => verifyStandard(WHSEC_FORM, req.rawBody, req.headers));
    assert.equal(verifyLegacy(SECRET, req.rawBody, req.headers), true);
    const oneDetail = await getDelivery(t, one!.id);
    assert.equal(oneDetail.status, 'succeeded');
    assert.deepEqual(oneDetail.attempts.map((a) => a.manual), [false, false, false, true]);
    assert.equal(oneDetail.attempts[3]!.webhookTimestamp, replayAt);
    assert.equal(req.headers['webhook-id'], oneDetail.message.id);

    assert.equal((await api(t, 'POST', '/webhooks/deliveries/dlv_nope/retry', {})).status, 404);

    // Recover: the remaining failed delivery is re-queued once and delivered.
    const rec = await api<{ requeued: number; since: string }>(t, 'POST', '/webhooks/recover', { since });
    assert.equal(rec.status, 200, JSON.stringify(rec.body));
    assert.equal(rec.body.requeued, 1);
    assert.equal(rec.body.since, since);
    await waitForDeliveries(t, 'rx', 2, (d) => d.status === 'succeeded');
    const again = await api<{ requeued: number }>(t, 'POST', '/webhooks/recover', { since });
    assert.equal(again.body.requeued, 0, 'a second recover re-queues nothing');
    await settle(t);
    assert.equal(rx.requests.length, before + 2);
    const twoReq = rx.requests[before + 1]!;
    assert.equal(twoReq.headers['webhook-id'], (await getDelivery(t, two!.id)).message.id, 'same webhook-id as the failed attempts');
    assert.doesNotThrow(() => verifyStandard(WHSEC_FORM, twoReq.rawBody, twoReq.headers));

    assert.equal((await api(t, 'POST', '/webhooks/recover', { since: 'not a time' })).status, 400);
  });

  it('a manual retry that fails leaves a failed delivery failed', async (tc) => {
    const rx = await startReceiver(() => ({ status: 502 }));
    const t = await hookApp({ webhooks: [{ id: 'rx', url: rx.url, secret: SECRET }], delivery: { retrySchedule: [] } });
    cleanup(tc, [rx], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    const [d] = await waitForDeliveries(t, 'rx', 1, (x) => x.status === 'failed');
    const r = await api<{ delivery: { status: string; attempts: number }; attempt: { statusCode: number; errorClass: string } }>(
      t, 'POST', `/webhooks/deliveries/${d!.id}/retry`, {},
    );
    assert.equal(r.status, 200);
    assert.equal(r.body.attempt.statusCode, 502);
    assert.equal(r.body.attempt.errorClass, 'http_5xx');
    assert.equal(r.body.delivery.status, 'failed');
    assert.equal(r.body.delivery.attempts, 2);
    await settle(t);
    assert.equal(rx.requests.length, 2);
  });

  it('gives up at the deadline even while the schedule has entries left', async (tc) => {
    const rx = await startReceiver(() => ({ status: 500 }));
    const t = await hookApp({
      webhooks: [{ id: 'rx', url: rx.url, secret: SECRET }],
      delivery: { retrySchedule: ['600ms', '600ms', '600ms', '600ms'], deadline: '1s' },
    });
    cleanup(tc, [rx], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }]);
    await finalize(t);
    // The first attempt starts at the close time; only then does the clock move.
    await waitForDeliveries(t, 'rx', 1, (x) => x.attempts >= 1);
    const [d] = await waitForDeliveries(t, 'rx', 1, (x) => x.status === 'failed', { advanceMs: 200 });
    assert.equal(d!.attempts, 2, 'attempt 1 at 0 ms, attempt 2 at ~600 ms, the next would start after the 1 s deadline');
    assert.match(d!.lastError ?? '', /deadline/);
    assert.equal(Date.parse(d!.deadlineAt) - Date.parse(d!.createdAt), 1_000);
    await settle(t);
    assert.equal(rx.requests.length, 2);
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
