// lago-javascript-client, pointed at a real meterhook server by baseUrl only, with a meterhook API key as its
// API key: one event and batches, repeats counted once, a conflicting transaction_id, bad events raising the
// client's thrown response with Lago's error body, a wrong key; totals read back through meterhook's usage API.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, type EventInputObject, getLagoError } from 'lago-javascript-client';
import { type CompatServer, startCompatServer, unixSeconds } from '../helpers/compat-server.js';

/** The client's type asks for external_subscription_id; meterhook, as Lago did, also takes external_customer_id. */
const lagoEv = (e: Record<string, unknown>): EventInputObject => e as unknown as EventInputObject;

/** What the client throws for a non-2xx answer: the fetch Response, with Lago's body parsed. */
async function lagoFailure(p: Promise<unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof Response, `the client throws its response, got ${String(err)}`);
    return { status: err.status, body: (await getLagoError(err)) as Record<string, unknown> };
  }
  throw new Error('expected the call to fail');
}

describe('drop-in Lago events, through lago-javascript-client', () => {
  let s: CompatServer;
  const client = (key: string) => Client(key, { baseUrl: `${s.url}/compat/lago/api/v1` });
  before(async () => {
    s = await startCompatServer();
  });
  after(() => s.close());

  it('stores one event once however often it is sent, and answers with the Lago event object', async () => {
    const lago = client(s.key);
    const event = lagoEv({
      transaction_id: 'lg-1',
      external_customer_id: 'cus_lago',
      code: 'api.calls',
      timestamp: unixSeconds('2026-01-12T10:00:00Z'),
      properties: { value: 6, plan: 'pro' },
    });
    const first = await lago.events.createEvent({ event });
    assert.equal(first.status, 200);
    assert.equal(first.data.event.transaction_id, 'lg-1');
    assert.equal(first.data.event.code, 'api.calls');
    assert.equal(first.data.event.timestamp, '2026-01-12T10:00:00.000Z');
    assert.deepEqual(first.data.event.properties, { value: 6, plan: 'pro' });
    const again = await lago.events.createEvent({ event });
    assert.equal(again.data.event.lago_id, first.data.event.lago_id, 'the repeat names the stored event');
    const usage = await s.usage('cus_lago');
    assert.equal(usage.events['api.calls'], 6);
    assert.equal(usage.eventCounts['api.calls'], 1);
  });

  it('stores a batch; the customer is external_customer_id, else external_subscription_id; timestamps as strings', async () => {
    const lago = client(s.key);
    const events = [
      {
        transaction_id: 'lb-1',
        external_subscription_id: 'sub_lago',
        code: 'llm.tokens',
        timestamp: '1768212000.250',
        properties: { tokens: '40' },
      },
      {
        transaction_id: 'lb-2',
        external_subscription_id: 'sub_lago',
        code: 'llm.tokens',
        timestamp: 1768212060,
        properties: { tokens: 2 },
      },
      lagoEv({ transaction_id: 'lb-3', external_customer_id: 'cus_lago_b', external_subscription_id: 'sub_lago', code: 'api.requests' }),
    ];
    const res = await lago.events.createBatchEvents({ events });
    assert.equal(res.data.events.length, 3);
    assert.equal(res.data.events[0]!.timestamp, '2026-01-12T10:00:00.250Z');
    await lago.events.createBatchEvents({ events });
    assert.equal((await s.usage('sub_lago')).events['llm.tokens'], 42);
    assert.equal((await s.usage('cus_lago_b')).eventCounts['api.requests'], 1);
  });

  it('refuses a conflicting transaction_id with 422 value_already_exist, storing nothing of the batch', async () => {
    const lago = client(s.key);
    const ev = { transaction_id: 'lc-1', external_customer_id: 'cus_lago_c', code: 'api.calls', properties: { value: 1 } };
    await lago.events.createEvent({ event: lagoEv(ev) });
    const single = await lagoFailure(lago.events.createEvent({ event: lagoEv({ ...ev, properties: { value: 2 } }) }));
    assert.equal(single.status, 422);
    assert.deepEqual(single.body.error_details, { transaction_id: ['value_already_exist'] });
    const batch = await lagoFailure(
      lago.events.createBatchEvents({
        events: [
          { ...ev, transaction_id: 'lc-2' },
          { ...ev, properties: { value: 3 } },
        ].map(lagoEv),
      }),
    );
    assert.deepEqual(batch.body.error_details, { 1: { transaction_id: ['value_already_exist'] } });
    assert.equal((await s.usage('cus_lago_c')).eventCounts['api.calls'], 1);
  });

  it('a bad event is a 422 with Lago details by event and field, and nothing of the batch is stored', async () => {
    const lago = client(s.key);
    const ok = { transaction_id: 'ld-0', external_customer_id: 'cus_lago_d', code: 'api.calls', properties: { value: 1 } };
    const failed = await lagoFailure(
      lago.events.createBatchEvents({
        events: [
          ok,
          { ...ok, transaction_id: 'ld-1', code: 'no.such.metric' },
          { ...ok, transaction_id: 'ld-2', properties: { value: 'x' }, timestamp: 'soon' },
          { ...ok, transaction_id: '', external_customer_id: undefined },
        ].map(lagoEv),
      }),
    );
    assert.equal(failed.status, 422);
    assert.equal(failed.body.code, 'validation_errors');
    const details = failed.body.error_details as Record<string, Record<string, string[]>>;
    assert.deepEqual(Object.keys(details), ['1', '2', '3']);
    assert.match(details['1']!.code![0]!, /Invalid event type: no\.such\.metric/);
    assert.deepEqual(details['2'], {
      'properties.value': ['properties.value must be a number (got "x")'],
      timestamp: ['timestamp must be a Unix timestamp in seconds (a number or a string, decimals allowed)'],
    });
    assert.deepEqual(details['3'], {
      transaction_id: ['transaction_id is required'],
      external_customer_id: ['external_customer_id is required'],
    });
    const tooMany = await lagoFailure(
      lago.events.createBatchEvents({ events: Array.from({ length: 101 }, (_, i) => lagoEv({ ...ok, transaction_id: `m${i}` })) }),
    );
    assert.equal(tooMany.status, 413);
    const res = await fetch(`${s.url}/customers/cus_lago_d/usage`, { headers: { 'x-apikey': s.key } });
    assert.deepEqual(((await res.json()) as { events: object }).events, {});
  });

  it("a wrong key answers 401 in Lago's shape on both routes", async () => {
    const lago = client('lago_not_a_key');
    const event = lagoEv({ transaction_id: 'la-1', external_customer_id: 'cus_lago_auth', code: 'api.calls', properties: { value: 1 } });
    for (const call of [lago.events.createEvent({ event }), lago.events.createBatchEvents({ events: [event] })]) {
      const f = await lagoFailure(call);
      assert.equal(f.status, 401);
      assert.equal(f.body.error, 'Unauthorized');
    }
  });
});
