// Webhook delivery, in-process against real loopback receivers: the wire format and signatures as a
// receiver sees them (secret formats, rotation) and retries to success, re-signed per attempt.
// store-contract: sqlite, postgres

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { WebhookVerificationError } from 'standardwebhooks';

import {
  api,
  endpointDeliveries,
  finalize,
  getDelivery,
  hookApp,
  HOUR,
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
  type Receiver,
} from '../helpers/receiver.js';
import { CUSTOMER, cleanup, PLAIN, PLAIN_2, whsecOf } from '../helpers/webhook-suites.js';

const WHSEC = `whsec_${randomBytes(32).toString('base64')}`;

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

    // The API names each secret by a fingerprint and never shows it in any form; receivers derive the whsec_ form.
    const eps = await api<Array<{ id: string; secretFingerprint: string; secretFormat: string; status: string }>>(
      t,
      'GET',
      '/webhooks/endpoints',
    );
    assert.equal(eps.status, 200);
    const shown = JSON.stringify(eps.body);
    for (const s of [PLAIN, WHSEC, PLAIN_2, whsecOf(PLAIN), whsecOf(PLAIN_2)])
      assert.ok(!shown.includes(s), 'secret leaked by GET /webhooks/endpoints');
    const fingerprint = (s: string) => `sha256:${createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 16)}`;
    const byId = (id: string) => eps.body.find((e) => e.id === id)!;
    assert.deepEqual(
      ['plain', 'whsec', 'bare'].map((id) => [byId(id).secretFormat, byId(id).secretFingerprint]),
      [
        ['plain', fingerprint(PLAIN)],
        ['whsec', fingerprint(WHSEC)],
        ['plain', fingerprint(PLAIN_2)],
      ],
    );

    const cases: Array<[Receiver, string, string, string, boolean]> = [
      [plainRx, 'plain', PLAIN, whsecOf(PLAIN), true],
      [whsecRx, 'whsec', WHSEC, WHSEC, true],
      [bareRx, 'bare', PLAIN_2, whsecOf(PLAIN_2), false],
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
      assert.deepEqual(Object.keys(body.data), [
        'periodStart',
        'periodEnd',
        'periodKey',
        'timestamp',
        'events',
        'eventCounts',
        'eventsDecimal',
      ]);
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
      assert.throws(
        () => verifyStandard(standardSecret, req.rawBody, { ...req.headers, 'webhook-id': `${webhookId}x` }),
        WebhookVerificationError,
      );
      const ts = Number(req.headers['webhook-timestamp']);
      assert.throws(
        () => verifyStandard(standardSecret, req.rawBody, { ...req.headers, 'webhook-timestamp': String(ts - 1) }),
        WebhookVerificationError,
      );
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
    assert.deepEqual(
      rx.requests.map((r) => r.headers['x-meterhook-attempt']),
      ['1', '2', '3'],
    );
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
      [
        [1, 500, 'http_5xx', false, false],
        [2, 500, 'http_5xx', false, false],
        [3, 200, null, false, false],
      ],
    );
    assert.deepEqual(
      detail.attempts.map((a) => a.webhookTimestamp),
      stamps,
    );
    assert.deepEqual(
      detail.attempts.map((a) => a.responseBody),
      ['boom 1', 'boom 2', 'thanks'],
    );
    assert.equal(detail.attempts[0]!.error, 'HTTP 500');
    assert.equal(detail.lastStatusCode, 200);
    assert.equal(detail.lastError, null);
    assert.ok(detail.deliveredAt);
    assert.equal(detail.nextAttemptAt, null);
  });
});
