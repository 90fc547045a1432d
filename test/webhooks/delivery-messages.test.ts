// Webhook messages, in-process against real loopback receivers: one message per finalization, revisions
// as aggregation.updated with endpoint filters, and DRY_RUN (nothing sent, the would-be request logged).
// store-contract: sqlite, postgres

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';

import { Dispatcher } from '../../src/webhooks/dispatcher.js';
import { createSender } from '../../src/webhooks/sender.js';
import { createSsrfGuard } from '../../src/webhooks/ssrf-guard.js';
import {
  api,
  endpointDeliveries,
  finalize,
  getDelivery,
  hookApp,
  listDeliveries,
  parseBody,
  pastHourAt,
  postEvents,
  settle,
  startReceiver,
  verifyLegacy,
  verifyStandard,
  waitFor,
  waitForDeliveries,
} from '../helpers/receiver.js';
import { CUSTOMER, cleanup, hourlyAggregation, PLAIN, PLAIN_2, whsecOf } from '../helpers/webhook-suites.js';

describe('one message per finalization (failure mode 7)', () => {
  it('finalizing the same aggregation twice, sequentially or concurrently, gives one message and one delivery per endpoint', async (tc) => {
    const a = await startReceiver();
    const b = await startReceiver();
    const t = await hookApp({
      webhooks: [
        { id: 'a', url: a.url, secret: PLAIN },
        { id: 'b', url: b.url, secret: PLAIN_2 },
      ],
    });
    cleanup(tc, [a, b], t);
    await t.dispatcher.start();

    await postEvents(t, [{ customerId: 'c_seq', value: 1 }]);
    const first = await finalize(t);
    const second = await finalize(t);
    assert.equal(first.messages, 1);
    assert.equal(second.messages, 0);

    await postEvents(t, [{ customerId: 'c_conc', value: 1 }]);
    const both = await Promise.all([finalize(t), finalize(t), finalize(t)]);
    assert.equal(
      both.reduce((n, s) => n + s.messages, 0),
      1,
    );

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
    assert.deepEqual(rev2.previous, {
      events: { 'api.calls': 5 },
      eventCounts: { 'api.calls': 1 },
      eventsDecimal: { 'api.calls': '5' },
      revision: 1,
    });
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
    const offEp = (await api<Array<{ id: string; status: string; disabledReason: string }>>(t, 'GET', '/webhooks/endpoints')).body.find(
      (e) => e.id === 'off',
    )!;
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
      store: t.store,
      config: t.config,
      clock: t.clock,
      logger,
      sender,
      dryRun: true,
      userAgent: 'meterhook/test',
      rng: () => 0.5,
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
