// Webhook delivery, in-process against real loopback receivers: the wire format and signatures as a
// receiver sees them, retries to success, one message per finalization, revisions and endpoint
// filters, DRY_RUN, the delivery listing API, the derived webhookStatus and per-endpoint isolation.
// store-contract: sqlite, postgres

import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { WebhookVerificationError } from 'standardwebhooks';

import { Dispatcher } from '../../src/webhooks/dispatcher.js';
import { createSender } from '../../src/webhooks/sender.js';
import { createSsrfGuard } from '../../src/webhooks/ssrf-guard.js';
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
  parseBody,
  pastHourAt,
  postEvents,
  settle,
  startReceiver,
  verifyLegacy,
  verifyStandard,
  waitFor,
  waitForDeliveries,
  type DeliveryJson,
  type Receiver,
} from '../helpers/receiver.js';

const PLAIN = 'plain-shared-secret-äöü-1';
const PLAIN_2 = 'second-plain-secret-2222';
const WHSEC = `whsec_${randomBytes(32).toString('base64')}`;
const whsecOf = (plain: string): string => `whsec_${Buffer.from(plain, 'utf8').toString('base64')}`;
const CUSTOMER = 'kunde_äöü_日本';

/** Closes receivers first (so in-flight sends end), then the app. */
function cleanup(tc: TestContext, receivers: Receiver[], t?: TestApp): void {
  tc.after(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await t?.close();
  });
}

interface AggJson {
  id: string;
  customerId: string;
  period: string;
  revision: number;
  final: boolean;
  webhookStatus: { delivered: boolean; attempts: number; deliveredAt?: string; lastError?: string; dryRun?: boolean };
}

async function hourlyAggregation(t: TestApp, customerId: string): Promise<AggJson> {
  const r = await api<AggJson[]>(t, 'GET', `/aggregations?period=hourly&customerId=${encodeURIComponent(customerId)}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 1, JSON.stringify(r.body));
  return r.body[0]!;
}

describe('wire format (failure mode 1)', () => {
  it('every request verifies with standardwebhooks and an independent legacy verifier over the raw bytes', async (tc) => {
    const plainRx = await startReceiver();
    const whsecRx = await startReceiver();
    const bareRx = await startReceiver();
    const t = await hookApp({
      webhooks: [
        { id: 'plain', url: plainRx.url, secret: PLAIN },
        { id: 'whsec', url: whsecRx.url, secret: WHSEC },
        { id: 'bare', url: bareRx.url, secret: PLAIN_2, legacyHeaders: false },
      ],
    });
    cleanup(tc, [plainRx, whsecRx, bareRx], t);
    await t.dispatcher.start();

    const at = pastHourAt(t, 10);
    await postEvents(t, [
      { customerId: CUSTOMER, value: 3, at },
      { customerId: CUSTOMER, value: 4.5, at: at + MIN },
      { customerId: CUSTOMER, eventType: 'test.count', value: 99, at: at + 2 * MIN },
    ]);
    const closedAt = t.clock.now();
    assert.equal((await finalize(t)).messages, 1);
    for (const ep of ['plain', 'whsec', 'bare']) await waitForDeliveries(t, ep, 1, (d) => d.status === 'succeeded');

    // The API shows the whsec_ form a Standard Webhooks receiver needs, and never the secret.
    const eps = await api<Array<{ id: string; standardSecret: string | null; secretFormat: string; status: string }>>(t, 'GET', '/webhooks/endpoints');
    assert.equal(eps.status, 200);
    const shown = JSON.stringify(eps.body);
    for (const s of [PLAIN, WHSEC, PLAIN_2]) assert.ok(!shown.includes(s), 'secret leaked by GET /webhooks/endpoints');
    const plainEp = eps.body.find((e) => e.id === 'plain')!;
    const whsecEp = eps.body.find((e) => e.id === 'whsec')!;
    assert.deepEqual([plainEp.secretFormat, plainEp.standardSecret], ['plain', whsecOf(PLAIN)]);
    assert.deepEqual([whsecEp.secretFormat, whsecEp.standardSecret], ['whsec', null]);

    const cases: Array<[Receiver, string, string, string, boolean]> = [
      [plainRx, 'plain', PLAIN, plainEp.standardSecret!, true],
      [whsecRx, 'whsec', WHSEC, WHSEC, true],
      [bareRx, 'bare', PLAIN_2, eps.body.find((e) => e.id === 'bare')!.standardSecret!, false],
    ];
    const ids = new Set<string>();
    const hourStart = Math.floor(at / HOUR) * HOUR;
    for (const [rx, epId, secret, standardSecret, legacy] of cases) {
      assert.equal(rx.requests.length, 1, `${epId} receives exactly one request`);
      const req = rx.requests[0]!;
      const [delivery] = await endpointDeliveries(t, epId);
      assert.equal(req.method, 'POST');
      assert.equal(req.path, '/hooks');

      // Standard Webhooks, with the standard library, over the exact bytes received.
      const verified = verifyStandard(standardSecret, req.rawBody, req.headers) as Record<string, unknown>;
      assert.equal(verified.customerId, CUSTOMER);
      // The legacy scheme, with a verifier independent of src/.
      assert.equal(verifyLegacy(secret, req.rawBody, req.headers), legacy, `${epId}: legacy verification`);
      if (!legacy) {
        assert.equal(req.headers['x-webhook-timestamp'], undefined);
        assert.equal(req.headers['x-webhook-signature'], undefined);
      } else {
        assert.equal(req.headers['x-webhook-timestamp'], req.headers['webhook-timestamp']);
        assert.match(String(req.headers['x-webhook-signature']), /^v1=[0-9a-f]{64}$/);
      }
      assert.match(String(req.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+=*$/);

      // Headers.
      assert.match(String(req.headers['user-agent']), /^meterhook\/\S+$/);
      assert.equal(req.headers['content-type'], 'application/json');
      assert.equal(req.headers['x-meterhook-event-type'], 'aggregation.completed');
      assert.equal(req.headers['x-meterhook-delivery-id'], delivery!.id);
      assert.equal(req.headers['x-meterhook-attempt'], '1');
      assert.equal(req.headers['webhook-timestamp'], String(Math.floor(closedAt / 1000)));
      const webhookId = String(req.headers['webhook-id']);
      assert.match(webhookId, /^msg_[^.\s]+$/);
      ids.add(webhookId);

      // Non-ASCII travels as UTF-8 bytes, not escapes, and is what was signed.
      assert.ok(req.rawBody.includes(Buffer.from(CUSTOMER, 'utf8')), 'raw body carries the UTF-8 customer id');

      // Payload: the reference fields first, in order, then meterhook's additions.
      const body = parseBody(req);
      assert.deepEqual(Object.keys(body), ['type', 'customerId', 'period', 'data', 'created', 'id', 'aggregationId', 'revision', 'final']);
      assert.deepEqual(Object.keys(body.data), ['periodStart', 'periodEnd', 'periodKey', 'timestamp', 'events', 'eventCounts', 'eventsDecimal']);
      assert.equal(body.type, 'aggregation.completed');
      assert.equal(body.customerId, CUSTOMER);
      assert.equal(body.period, 'hourly');
      assert.equal(body.data.periodStart, new Date(hourStart).toISOString());
      assert.equal(body.data.periodEnd, new Date(hourStart + HOUR - 1).toISOString());
      assert.equal(body.data.periodKey, new Date(hourStart).toISOString().slice(0, 13).replace(/[-T]/g, ''));
      assert.equal(body.data.timestamp, new Date(closedAt).toISOString());
      assert.deepEqual(body.data.events, { 'api.calls': 7.5, 'test.count': 1 });
      assert.deepEqual(body.data.eventCounts, { 'api.calls': 2, 'test.count': 1 });
      assert.equal(body.created, Math.floor(closedAt / 1000));
      assert.equal(body.id, webhookId);
      assert.equal(body.aggregationId, delivery!.aggregationId);
      assert.equal(body.revision, 1);
      assert.equal(body.final, true);

      // The stored message is the same document.
      const detail = await getDelivery(t, delivery!.id);
      assert.deepEqual(detail.message.payload, body);
      assert.equal(detail.message.id, webhookId);

      // Tampering with the body, the id or the timestamp fails verification.
      const tamperedBody = Buffer.from(req.rawBody.toString('utf8').replace('"api.calls":7.5', '"api.calls":8.5'), 'utf8');
      assert.notDeepEqual(tamperedBody, req.rawBody);
      assert.throws(() => verifyStandard(standardSecret, tamperedBody, req.headers), WebhookVerificationError);
      assert.throws(() => verifyStandard(standardSecret, req.rawBody, { ...req.headers, 'webhook-id': `${webhookId}x` }), WebhookVerificationError);
      const ts = Number(req.headers['webhook-timestamp']);
      assert.throws(() => verifyStandard(standardSecret, req.rawBody, { ...req.headers, 'webhook-timestamp': String(ts - 1) }), WebhookVerificationError);
      if (legacy) {
        assert.equal(verifyLegacy(secret, tamperedBody, req.headers), false);
        assert.equal(verifyLegacy(secret, req.rawBody, { ...req.headers, 'x-webhook-timestamp': String(ts - 1) }), false);
        assert.equal(verifyLegacy('wrong-secret', req.rawBody, req.headers), false);
      }
    }
    assert.equal(ids.size, 1, 'the webhook-id is the same for every endpoint');
  });

  it('signs with every rotation secret: receivers holding the current or the previous secret both verify', async (tc) => {
    const rx = await startReceiver();
    const t = await hookApp({ webhooks: [{ id: 'rot', url: rx.url, secret: WHSEC, previousSecrets: [PLAIN] }] });
    cleanup(tc, [rx], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c_rot', value: 1 }]);
    await finalize(t);
    await waitFor(t, 'one request', () => rx.requests.length === 1);
    const req = rx.requests[0]!;
    const entries = String(req.headers['webhook-signature']).split(' ');
    assert.equal(entries.length, 2);
    assert.doesNotThrow(() => verifyStandard(WHSEC, req.rawBody, req.headers));
    assert.doesNotThrow(() => verifyStandard(whsecOf(PLAIN), req.rawBody, req.headers));
    // The legacy header carries the current secret only.
    assert.equal(verifyLegacy(WHSEC, req.rawBody, req.headers), true);
    assert.equal(verifyLegacy(PLAIN, req.rawBody, req.headers), false);
  });
});

describe('retries to success (failure mode 2)', () => {
  it('500, 500, 200 gives exactly three attempts with one webhook-id, each re-signed with a fresh timestamp', async (tc) => {
    const rx = await startReceiver((_r, n) => (n <= 2 ? { status: 500, body: `boom ${n}` } : { status: 200, body: 'thanks' }));
    const t = await hookApp({ webhooks: [{ id: 'rx', url: rx.url, secret: PLAIN }], delivery: { retrySchedule: ['1s', '1s', '1s'] } });
    cleanup(tc, [rx], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: CUSTOMER, value: 2 }]);
    await finalize(t);

    const [d] = await waitForDeliveries(t, 'rx', 1, (x) => x.status === 'succeeded', { advanceMs: 1_000 });
    await settle(t);
    assert.equal(rx.requests.length, 3);
    const ids = new Set(rx.requests.map((r) => r.headers['webhook-id']));
    assert.equal(ids.size, 1, 'same webhook-id on every attempt');
    const stamps = rx.requests.map((r) => Number(r.headers['webhook-timestamp']));
    assert.ok(stamps[0]! < stamps[1]! && stamps[1]! < stamps[2]!, `fresh timestamps per attempt: ${stamps.join(', ')}`);
    assert.deepEqual(rx.requests.map((r) => r.headers['x-meterhook-attempt']), ['1', '2', '3']);
    for (const r of rx.requests) {
      assert.deepEqual(r.rawBody, rx.requests[0]!.rawBody, 'the body never changes');
      assert.doesNotThrow(() => verifyStandard(whsecOf(PLAIN), r.rawBody, r.headers));
      assert.equal(verifyLegacy(PLAIN, r.rawBody, r.headers), true);
    }
    // A signature from one attempt does not verify with another attempt's timestamp.
    assert.throws(
      () => verifyStandard(whsecOf(PLAIN), rx.requests[1]!.rawBody, { ...rx.requests[1]!.headers, 'webhook-timestamp': String(stamps[0]) }),
      WebhookVerificationError,
    );

    const detail = await getDelivery(t, d!.id);
    assert.equal(detail.status, 'succeeded');
    assert.equal(detail.attempts.length, 3);
    assert.deepEqual(
      detail.attempts.map((a) => [a.attempt, a.statusCode, a.errorClass, a.manual, a.dryRun]),
      [[1, 500, 'http_5xx', false, false], [2, 500, 'http_5xx', false, false], [3, 200, null, false, false]],
    );
    assert.deepEqual(detail.attempts.map((a) => a.webhookTimestamp), stamps);
    assert.deepEqual(detail.attempts.map((a) => a.responseBody), ['boom 1', 'boom 2', 'thanks']);
    assert.equal(detail.attempts[0]!.error, 'HTTP 500');
    assert.equal(detail.lastStatusCode, 200);
    assert.equal(detail.lastError, null);
    assert.ok(detail.deliveredAt);
    assert.equal(detail.nextAttemptAt, null);
  });
});

describe('one message per finalization (failure mode 7)', () => {
  it('finalizing the same aggregation twice, sequentially or concurrently, gives one message and one delivery per endpoint', async (tc) => {
    const a = await startReceiver();
    const b = await startReceiver();
    const t = await hookApp({ webhooks: [{ id: 'a', url: a.url, secret: PLAIN }, { id: 'b', url: b.url, secret: PLAIN_2 }] });
    cleanup(tc, [a, b], t);
    await t.dispatcher.start();

    await postEvents(t, [{ customerId: 'c_seq', value: 1 }]);
    const first = await finalize(t);
    const second = await finalize(t);
    assert.equal(first.messages, 1);
    assert.equal(second.messages, 0);

    await postEvents(t, [{ customerId: 'c_conc', value: 1 }]);
    const both = await Promise.all([finalize(t), finalize(t), finalize(t)]);
    assert.equal(both.reduce((n, s) => n + s.messages, 0), 1);

    await waitForDeliveries(t, 'a', 2, (d) => d.status === 'succeeded');
    await waitForDeliveries(t, 'b', 2, (d) => d.status === 'succeeded');
    await settle(t);
    for (const customer of ['c_seq', 'c_conc']) {
      const agg = await hourlyAggregation(t, customer);
      assert.equal(agg.revision, 1);
      assert.equal((await t.store.listMessages(agg.id)).length, 1, `${customer}: one message`);
      const ds = await listDeliveries(t, { aggregationId: agg.id });
      assert.deepEqual(ds.map((d) => d.endpointId).sort(), ['a', 'b']);
    }
    assert.equal(a.requests.length, 2);
    assert.equal(b.requests.length, 2);
    assert.equal(new Set(a.requests.map((r) => r.headers['webhook-id'])).size, 2);
  });
});

describe('revisions and endpoint filters (failure mode 8)', () => {
  it('late events give revision 2 as aggregation.updated with previous; filters pick the endpoints', async (tc) => {
    const all = await startReceiver();
    const completedOnly = await startReceiver();
    const monthlyOnly = await startReceiver();
    const off = await startReceiver();
    const t = await hookApp({
      periods: ['hourly', 'monthly'],
      webhooks: [
        { id: 'all', url: all.url, secret: PLAIN },
        { id: 'completed-only', url: completedOnly.url, secret: PLAIN, events: ['aggregation.completed'] },
        { id: 'monthly-only', url: monthlyOnly.url, secret: PLAIN, periods: ['monthly'] },
        { id: 'off', url: off.url, secret: PLAIN, enabled: false },
      ],
    });
    cleanup(tc, [all, completedOnly, monthlyOnly, off], t);
    await t.dispatcher.start();

    await postEvents(t, [{ customerId: CUSTOMER, value: 5, at: pastHourAt(t, 10) }]);
    await finalize(t);
    await waitFor(t, 'revision 1 at both hourly endpoints', () => all.requests.length >= 1 && completedOnly.requests.length >= 1);
    const agg1 = await hourlyAggregation(t, CUSTOMER);
    assert.equal(agg1.revision, 1);

    // A late event for the closed hour.
    await postEvents(t, [{ customerId: CUSTOMER, value: 2, at: pastHourAt(t, 20) }]);
    const s = await finalize(t);
    assert.ok(s.messages >= 1);
    const hourly = () => all.requests.filter((r) => parseBody(r).period === 'hourly');
    await waitFor(t, 'revision 2 at the unfiltered endpoint', () => hourly().length === 2);
    await settle(t);

    const [rev1, rev2] = hourly().map(parseBody);
    assert.equal(rev1.type, 'aggregation.completed');
    assert.equal(rev1.revision, 1);
    assert.equal(rev1.previous, undefined);
    assert.equal(rev2.type, 'aggregation.updated');
    assert.equal(rev2.revision, 2);
    assert.equal(rev2.aggregationId, rev1.aggregationId);
    assert.notEqual(rev2.id, rev1.id);
    assert.equal(rev2.final, true);
    assert.deepEqual(rev2.data.events, { 'api.calls': 7 });
    assert.deepEqual(rev2.data.eventCounts, { 'api.calls': 2 });
    assert.deepEqual(rev2.previous, { events: { 'api.calls': 5 }, eventCounts: { 'api.calls': 1 }, eventsDecimal: { 'api.calls': '5' }, revision: 1 });
    assert.deepEqual(Object.keys(rev2).slice(0, 5), ['type', 'customerId', 'period', 'data', 'created']);
    const rev2Req = hourly()[1]!;
    assert.equal(rev2Req.headers['x-meterhook-event-type'], 'aggregation.updated');
    assert.equal(rev2Req.headers['webhook-id'], rev2.id);
    assert.doesNotThrow(() => verifyStandard(whsecOf(PLAIN), rev2Req.rawBody, rev2Req.headers));
    assert.equal(verifyLegacy(PLAIN, rev2Req.rawBody, rev2Req.headers), true);

    const agg2 = await hourlyAggregation(t, CUSTOMER);
    assert.equal(agg2.revision, 2);
    assert.equal(agg2.id, agg1.id);
    assert.equal((await t.store.listMessages(agg2.id)).length, 2);

    // events: ['aggregation.completed'] gets revision 1 only.
    assert.equal(completedOnly.requests.length, 1);
    assert.equal(parseBody(completedOnly.requests[0]!).type, 'aggregation.completed');
    assert.equal((await endpointDeliveries(t, 'completed-only')).length, 1);
    // periods: ['monthly'] gets no hourly message (a monthly one only if a month closed meanwhile).
    assert.ok(monthlyOnly.requests.every((r) => parseBody(r).period === 'monthly'));
    assert.ok((await endpointDeliveries(t, 'monthly-only')).every((d) => d.aggregationId !== agg1.id));
    // enabled: false gets no deliveries at all, and the endpoint list says why.
    assert.equal(off.requests.length, 0);
    assert.equal((await endpointDeliveries(t, 'off')).length, 0);
    const offEp = (await api<Array<{ id: string; status: string; disabledReason: string }>>(t, 'GET', '/webhooks/endpoints')).body.find((e) => e.id === 'off')!;
    assert.deepEqual([offEp.status, offEp.disabledReason], ['disabled', 'disabled in configuration']);
  });
});

describe('DRY_RUN (failure mode 10)', () => {
  it('sends nothing, ends succeeded with dryRun: true, and webhookStatus says so', async (tc) => {
    const rx = await startReceiver();
    const t = await hookApp({ dryRun: true, webhooks: [{ id: 'rx', url: rx.url, secret: PLAIN }] });
    cleanup(tc, [rx], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: CUSTOMER, value: 4 }]);
    await finalize(t);
    const [d] = await waitForDeliveries(t, 'rx', 1, (x) => x.status === 'succeeded');
    await settle(t);
    assert.equal(rx.requests.length, 0, 'DRY_RUN never contacts the receiver');
    assert.equal(d!.dryRun, true);
    assert.ok(d!.deliveredAt);
    const detail = await getDelivery(t, d!.id);
    assert.equal(detail.attempts.length, 1);
    assert.equal(detail.attempts[0]!.dryRun, true);
    assert.equal(detail.attempts[0]!.statusCode, null);
    assert.equal(detail.message.payload.customerId, CUSTOMER);
    const agg = await hourlyAggregation(t, CUSTOMER);
    assert.equal(agg.webhookStatus.delivered, true);
    assert.equal(agg.webhookStatus.dryRun, true);
    assert.equal(agg.webhookStatus.attempts, 1);
    assert.equal(agg.webhookStatus.lastError, undefined);
  });

  it('logs the would-be request, and its logged signature verifies over the logged body', async (tc) => {
    const rx = await startReceiver();
    const t = await hookApp({ webhooks: [{ id: 'rx', url: rx.url, secret: PLAIN }] });
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
    const sender = createSender(createSsrfGuard({ allowHttp: true, allowCidrs: ['127.0.0.1/32'] }));
    const dry = new Dispatcher({
      store: t.store, config: t.config, clock: t.clock, logger, sender, dryRun: true, userAgent: 'meterhook/test', rng: () => 0.5,
    });
    tc.after(async () => {
      await dry.stop();
      await sender.close();
    });
    cleanup(tc, [rx], t);
    await dry.start();
    await postEvents(t, [{ customerId: CUSTOMER, value: 4 }]);
    await finalize(t);
    dry.notify();
    await waitFor(t, 'the dry-run delivery to succeed', async () => (await endpointDeliveries(t, 'rx'))[0]?.status === 'succeeded');

    assert.equal(rx.requests.length, 0);
    const entries = lines.map((l) => JSON.parse(l) as Record<string, any>).filter((e) => e.dryRun === true);
    assert.equal(entries.length, 1, lines.join('\n'));
    const e = entries[0]!;
    assert.equal(e.url, rx.url);
    assert.equal(typeof e.body, 'string');
    const raw = Buffer.from(e.body as string, 'utf8');
    assert.equal(JSON.parse(e.body).customerId, CUSTOMER);
    assert.doesNotThrow(() => verifyStandard(whsecOf(PLAIN), raw, e.headers));
    assert.equal(verifyLegacy(PLAIN, raw, e.headers), true);
    assert.equal(e.headers['content-type'], 'application/json');
    assert.match(e.headers['user-agent'], /^meterhook\//);
    // No secret in any log line.
    for (const l of lines) assert.ok(!l.includes(PLAIN), 'secret in a log line');
  });
});

describe('delivery API', () => {
  it('lists deliveries filtered by status, endpoint, aggregation and creation time, with cursor paging', async (tc) => {
    const ok = await startReceiver();
    const down = await startReceiver(() => ({ status: 503, body: 'maintenance' }));
    const t = await hookApp({
      webhooks: [{ id: 'ok', url: ok.url, secret: PLAIN }, { id: 'down', url: down.url, secret: PLAIN_2 }],
      delivery: { retrySchedule: ['1h', '1h', '1h'] },
    });
    cleanup(tc, [ok, down], t);
    await t.dispatcher.start();

    await postEvents(t, [{ customerId: 'c1', value: 1 }, { customerId: 'c2', value: 2 }]);
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
    assert.deepEqual(all.map((d) => d.id), order.map((d) => d.id));
    for (const [query, expected] of [[{}, all], [{ endpointId: 'ok' }, all.filter((d) => d.endpointId === 'ok')]] as const) {
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
      assert.deepEqual(seen, expected.map((d) => d.id));
      assert.equal(pages, Math.ceil(expected.length / 2));
    }
  });

  it('derives the aggregation webhookStatus from every endpoint of the newest message', async (tc) => {
    const good = await startReceiver();
    const bad = await startReceiver(() => ({ status: 500, body: 'nope' }));
    const t = await hookApp({ webhooks: [{ id: 'good', url: good.url, secret: PLAIN }, { id: 'bad', url: bad.url, secret: PLAIN }] });
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
    const eps = (await api<Array<{ id: string; failureStreak: number; lastFailureAt: string | null; lastSuccessAt: string | null }>>(t, 'GET', '/webhooks/endpoints')).body;
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
      webhooks: [{ id: 'slow', url: slow.url, secret: PLAIN, timeout: '5s' }, { id: 'fast', url: fast.url, secret: PLAIN }],
      delivery: { perEndpointConcurrency: 1 },
    });
    cleanup(tc, [slow, fast], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }, { customerId: 'c2', value: 1 }, { customerId: 'c3', value: 1 }]);
    const started = Date.now();
    await finalize(t);
    await waitForDeliveries(t, 'fast', 3, (d) => d.status === 'succeeded', { timeoutMs: 2_500 });
    assert.ok(Date.now() - started < 2_900, 'fast deliveries completed before the slow receiver answered once');
    assert.equal(fast.requests.length, 3);
    const slowNow = await endpointDeliveries(t, 'slow');
    assert.equal(slowNow.length, 3);
    assert.ok(slowNow.every((d) => d.status !== 'succeeded'), 'the slow endpoint is still pending');
  });

  it('perEndpointConcurrency bounds the requests in flight to one endpoint', async (tc) => {
    const slow = await startReceiver(() => ({ status: 200, delayMs: 300 }));
    const t = await hookApp({
      webhooks: [{ id: 'slow', url: slow.url, secret: PLAIN }],
      delivery: { perEndpointConcurrency: 1 },
    });
    cleanup(tc, [slow], t);
    await t.dispatcher.start();
    await postEvents(t, [{ customerId: 'c1', value: 1 }, { customerId: 'c2', value: 1 }, { customerId: 'c3', value: 1 }]);
    await finalize(t);
    await waitForDeliveries(t, 'slow', 3, (d) => d.status === 'succeeded');
    assert.equal(slow.requests.length, 3);
    assert.equal(slow.maxConcurrent, 1, `at most 1 request in flight to the endpoint, saw ${slow.maxConcurrent}`);
  });
});
