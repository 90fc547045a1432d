// Webhook failure modes against real loopback receivers, endpoint by endpoint: 410 disables an endpoint and
// holds its messages until it is enabled or recovered; deliveries give up after the schedule or the deadline,
// and can be replayed or recovered by hand.
// store-contract: sqlite, postgres

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import type { TestApp } from '../helpers/app.js';
import {
  api,
  endpointDeliveries,
  finalize,
  getDelivery,
  hookApp,
  listDeliveries,
  postEvents,
  settle,
  startReceiver,
  verifyLegacy,
  verifyStandard,
  waitFor,
  waitForDeliveries,
} from '../helpers/receiver.js';
import { cleanup, SECRET } from '../helpers/webhook-suites.js';

const WHSEC_FORM = `whsec_${Buffer.from(SECRET, 'utf8').toString('base64')}`;

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

describe('410 Gone', () => {
  it('cancels the delivery, disables the endpoint, holds its new messages, and enabling releases them', async (tc) => {
    const rx = await startReceiver((_r, n) => (n === 1 ? { status: 410, body: 'gone' } : { status: 200 }));
    const other = await startReceiver();
    const t = await hookApp({
      webhooks: [
        { id: 'gone', url: rx.url, secret: SECRET },
        { id: 'other', url: other.url, secret: SECRET },
      ],
    });
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
    await postEvents(t, [
      { customerId: 'c2', value: 2 },
      { customerId: 'c3', value: 3 },
    ]);
    await finalize(t);
    await waitForDeliveries(t, 'other', 3, (d) => d.status === 'succeeded');
    await settle(t);
    const held = (await endpointDeliveries(t, 'gone')).filter((d) => d.id !== cancelled!.id);
    assert.equal(held.length, 2);
    assert.ok(
      held.every((d) => d.status === 'held' && d.attempts === 0),
      JSON.stringify(held),
    );
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
    const held = await listDeliveries(t, { status: 'held' });
    assert.equal(held.length, 1);
    const rec = await api<{ requeued: number }>(t, 'POST', '/webhooks/recover', { since });
    assert.equal(rec.status, 200);
    assert.equal(rec.body.requeued, 1, 'the held delivery is re-queued; the cancelled one is not');
    await waitFor(t, 'the held delivery to be delivered', async () => (await getDelivery(t, held[0]!.id)).status === 'succeeded');
    assert.equal((await endpoint(t, 'gone')).status, 'active');
    assert.equal(rx.requests.length, 2);
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
    await postEvents(t, [
      { customerId: 'c1', value: 1 },
      { customerId: 'c2', value: 2 },
    ]);
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
      assert.deepEqual(
        detail.attempts.map((a) => a.errorClass),
        ['http_5xx', 'http_5xx', 'http_5xx'],
      );
    }
    assert.equal((await listDeliveries(t, { status: 'failed' })).length, 2);

    // Manual replay of one failed delivery, against a receiver that now accepts.
    answer = 200;
    const [one, two] = failed;
    t.clock.advance(5_000);
    const replayAt = Math.floor(t.clock.now() / 1000);
    const before = rx.requests.length;
    const replay = await api<{
      delivery: { status: string; attempts: number };
      attempt: { statusCode: number; errorClass: null; dryRun: boolean };
    }>(t, 'POST', `/webhooks/deliveries/${one!.id}/retry`, {});
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
    assert.deepEqual(
      oneDetail.attempts.map((a) => a.manual),
      [false, false, false, true],
    );
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
      t,
      'POST',
      `/webhooks/deliveries/${d!.id}/retry`,
      {},
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
