// Webhook payloads of meters with dimensions, sent to a real loopback receiver and verified by signature: data.groups
// on the first close, and a late event that changes one group gives aggregation.updated with previous.groups.
// store-contract: sqlite, postgres
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';

import { buildTestApp } from '../helpers/app.js';
import { FAST_DELIVERY, finalize, parseBody, startReceiver, verifyStandard, waitForDeliveries } from '../helpers/receiver.js';
import { cleanup, PLAIN, whsecOf } from '../helpers/webhook-suites.js';

const HOUR = 3_600_000;

/** An app whose hourly documents go to a real receiver, an instant two hours back, and a batch sender. */
async function billingApp(tc: TestContext, events: Record<string, unknown>) {
  const rx = await startReceiver();
  const now = Math.floor(Date.now() / 1000) * 1000;
  const t = await buildTestApp({
    now,
    dryRun: false,
    rng: () => 0.5,
    config: { periods: ['hourly'], events, webhooks: [{ id: 'billing', url: rx.url, secret: PLAIN }], webhookDelivery: FAST_DELIVERY },
  });
  cleanup(tc, [rx], t);
  await t.dispatcher.start();
  const at = new Date(Math.floor(now / HOUR) * HOUR - 2 * HOUR + 600_000).toISOString();
  const send = async (batch: unknown[]) => {
    const r = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: batch });
    assert.equal(r.statusCode, 201, r.body);
  };
  return { rx, t, at, send };
}

describe('webhook payloads with groups', () => {
  it('data.groups on aggregation.completed; a late event in one group gives aggregation.updated with previous.groups', async (tc) => {
    const { rx, t, at, send } = await billingApp(tc, { tokens: { op: 'sum', groupBy: ['model'] }, calls: { op: 'count' } });
    await send([
      { eventType: 'tokens', customerId: 'acme', value: 100, timestamp: at, metadata: { model: 'gpt-4o' } },
      { eventType: 'tokens', customerId: 'acme', value: 30, timestamp: at, metadata: { model: 'llama' } },
      { eventType: 'calls', customerId: 'acme', value: 1, timestamp: at, metadata: { model: 'llama' } },
    ]);
    assert.equal((await finalize(t)).messages, 1);
    await waitForDeliveries(t, 'billing', 1, (d) => d.status === 'succeeded');
    const first = parseBody(rx.requests[0]!);
    verifyStandard(whsecOf(PLAIN), rx.requests[0]!.rawBody, rx.requests[0]!.headers);
    assert.equal(first.type, 'aggregation.completed');
    assert.deepEqual(first.data.eventsDecimal, { calls: '1', tokens: '130' });
    assert.deepEqual(first.data.groups, {
      tokens: [
        { dimensions: { model: 'gpt-4o' }, value: 100, valueDecimal: '100', count: 1 },
        { dimensions: { model: 'llama' }, value: 30, valueDecimal: '30', count: 1 },
      ],
    });

    // A late event moves only llama's group: the total and one group change, and the update says what they were.
    await send([{ eventType: 'tokens', customerId: 'acme', value: 0.5, timestamp: at, metadata: { model: 'llama' } }]);
    assert.equal((await finalize(t)).messages, 1);
    await waitForDeliveries(t, 'billing', 2, (d) => d.status === 'succeeded');
    const second = parseBody(rx.requests[1]!);
    verifyStandard(whsecOf(PLAIN), rx.requests[1]!.rawBody, rx.requests[1]!.headers);
    assert.equal(second.type, 'aggregation.updated');
    assert.equal(second.revision, 2);
    assert.deepEqual(second.data.groups.tokens[1], { dimensions: { model: 'llama' }, value: 30.5, valueDecimal: '30.5', count: 2 });
    assert.deepEqual(second.previous.groups, first.data.groups);
    assert.deepEqual(second.previous.eventsDecimal, first.data.eventsDecimal);
  });

  it('a late event that only moves usage between groups still gives a revision', async (tc) => {
    const { rx, t, at, send } = await billingApp(tc, { calls: { op: 'max', groupBy: ['region'] } });
    await send([{ eventType: 'calls', customerId: 'c', value: 9, timestamp: at, metadata: { region: 'eu' } }]);
    await finalize(t);
    // Same max (the total is unchanged), but a new group appears: the document must change.
    await send([{ eventType: 'calls', customerId: 'c', value: 2, timestamp: at, metadata: { region: 'us' } }]);
    assert.equal((await finalize(t)).messages, 1);
    await waitForDeliveries(t, 'billing', 2, (d) => d.status === 'succeeded');
    const update = parseBody(rx.requests[1]!);
    assert.equal(update.type, 'aggregation.updated');
    assert.deepEqual(update.data.eventsDecimal, update.previous.eventsDecimal);
    assert.equal(update.data.groups.calls.length, 2);
    assert.equal(update.previous.groups.calls.length, 1);
  });
});
