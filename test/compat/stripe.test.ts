// stripe-node, pointed at a real meterhook server by host, port and protocol only, with a meterhook API key
// as its secret key: v1 and v2 meter events, a meter event session and its stream; repeats counted once, a
// conflicting identifier, bad events raising Stripe's own typed errors, wrong keys and expired sessions;
// totals read back through meterhook's usage API.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Stripe from 'stripe';
import { type CompatServer, startCompatServer, unixSeconds } from '../helpers/compat-server.js';

describe('drop-in Stripe meter events, through stripe-node', () => {
  let s: CompatServer;
  const client = (key: string) => new Stripe(key, { host: s.host, port: s.port, protocol: 'http', maxNetworkRetries: 0 });
  before(async () => {
    s = await startCompatServer();
  });
  after(() => s.close());

  it('v1: stores an event once however often it is repeated, and answers with a billing.meter_event', async () => {
    const stripe = client(s.key);
    const params = {
      event_name: 'api.calls',
      payload: { stripe_customer_id: 'cus_v1', value: '5', region: 'eu' },
      identifier: 'v1-1',
      timestamp: unixSeconds('2026-01-12T10:00:00Z'),
    };
    const ev = await stripe.billing.meterEvents.create(params);
    assert.equal(ev.object, 'billing.meter_event');
    assert.equal(ev.identifier, 'v1-1');
    assert.equal(ev.timestamp, params.timestamp);
    assert.deepEqual(ev.payload, params.payload);
    const again = await stripe.billing.meterEvents.create(params);
    assert.equal(again.identifier, 'v1-1');
    await stripe.billing.meterEvents.create({ event_name: 'api.calls', payload: { stripe_customer_id: 'cus_v1', value: '2.5' } });
    const usage = await s.usage('cus_v1');
    assert.equal(usage.events['api.calls'], 7.5);
    assert.equal(usage.eventCounts['api.calls'], 2);

    const stored = await fetch(`${s.url}/events?customerId=cus_v1`, { headers: { 'x-apikey': s.key } });
    const events = (await stored.json()) as Array<{ id: string | null; metadata: Record<string, unknown> | null }>;
    assert.deepEqual(events.find((e) => e.id === 'v1-1')?.metadata, { region: 'eu' }, 'the other payload keys are metadata');
  });

  it('v1: refuses a conflicting identifier, with a 400 stripe-node does not retry', async () => {
    const stripe = client(s.key);
    const base = { event_name: 'api.calls', identifier: 'v1-conflict' };
    await stripe.billing.meterEvents.create({ ...base, payload: { stripe_customer_id: 'cus_conflict', value: '1' } });
    await assert.rejects(
      stripe.billing.meterEvents.create({ ...base, payload: { stripe_customer_id: 'cus_conflict', value: '2' } }),
      (err: unknown) =>
        err instanceof Stripe.errors.StripeInvalidRequestError &&
        err.code === 'resource_already_exists' &&
        err.param === 'identifier' &&
        err.headers?.['stripe-should-retry'] === 'false',
    );
    assert.equal((await s.usage('cus_conflict')).events['api.calls'], 1);
  });

  it('v1: a bad event raises StripeInvalidRequestError naming the field, and nothing is stored', async () => {
    const stripe = client(s.key);
    const cases: Array<[Stripe.Billing.MeterEventCreateParams, RegExp, string | undefined]> = [
      [
        { event_name: 'no.such.meter', payload: { stripe_customer_id: 'cus_bad', value: '1' } },
        /Invalid event type: no\.such\.meter/,
        undefined,
      ],
      [
        { event_name: 'api.calls', payload: { stripe_customer_id: 'cus_bad', value: 'many' } },
        /payload\[value\] must be a number/,
        'payload[value]',
      ],
      [{ event_name: 'api.calls', payload: { stripe_customer_id: 'cus_bad' } }, /payload\[value\] is required/, 'payload[value]'],
      [{ event_name: 'api.calls', payload: { value: '1' } }, /payload\[stripe_customer_id\] is required/, 'payload[stripe_customer_id]'],
      [
        { event_name: 'api.calls', payload: { stripe_customer_id: 'cus_bad', value: '1' }, timestamp: unixSeconds('2025-01-01T00:00:00Z') },
        /timestamp is older than the maximum event age/,
        'timestamp',
      ],
    ];
    for (const [params, message, param] of cases) {
      await assert.rejects(stripe.billing.meterEvents.create(params), (err: unknown) => {
        assert.ok(err instanceof Stripe.errors.StripeInvalidRequestError, String(err));
        assert.equal(err.statusCode, 400);
        assert.match(err.message, message);
        assert.equal(err.param, param);
        return true;
      });
    }
    const res = await fetch(`${s.url}/customers/cus_bad/usage`, { headers: { 'x-apikey': s.key } });
    assert.deepEqual(((await res.json()) as { events: object }).events, {});
  });

  it('a wrong key raises StripeAuthenticationError on every Stripe route', async () => {
    const stripe = client('sk_test_not_a_meterhook_key');
    const payload = { stripe_customer_id: 'cus_auth', value: '1' };
    const isAuth = (err: unknown) => err instanceof Stripe.errors.StripeAuthenticationError && err.statusCode === 401;
    await assert.rejects(stripe.billing.meterEvents.create({ event_name: 'api.calls', payload }), isAuth);
    await assert.rejects(stripe.v2.billing.meterEvents.create({ event_name: 'api.calls', payload }), isAuth);
    await assert.rejects(stripe.v2.billing.meterEventSession.create(), isAuth);
    await assert.rejects(stripe.v2.billing.meterEventStream.create({ events: [{ event_name: 'api.calls', payload }] }), isAuth);
    await assert.rejects(
      client('mhes_1_AAAA').v2.billing.meterEventStream.create({ events: [{ event_name: 'api.calls', payload }] }),
      isAuth,
    );
  });

  it('v2: stores a meter event with an RFC 3339 timestamp, once', async () => {
    const stripe = client(s.key);
    const params = {
      event_name: 'api.calls',
      payload: { stripe_customer_id: 'cus_v2', value: '3' },
      identifier: 'v2-1',
      timestamp: '2026-01-12T10:05:00Z',
    };
    const ev = await stripe.v2.billing.meterEvents.create(params);
    assert.equal(ev.object, 'v2.billing.meter_event');
    assert.equal(ev.timestamp, '2026-01-12T10:05:00.000Z');
    await stripe.v2.billing.meterEvents.create(params);
    await assert.rejects(
      stripe.v2.billing.meterEvents.create({ ...params, timestamp: 'yesterday' }),
      (err: unknown) => err instanceof Stripe.errors.StripeInvalidRequestError && /timestamp must be an RFC 3339/.test(err.message),
    );
    assert.equal((await s.usage('cus_v2')).events['api.calls'], 3);
  });

  it('stream: a session token sends batches, a repeated batch counts once, a bad event refuses the whole batch', async () => {
    const session = await client(s.key).v2.billing.meterEventSession.create();
    assert.equal(session.object, 'v2.billing.meter_event_session');
    assert.equal(Date.parse(session.expires_at) - Date.parse(session.created), 15 * 60_000);
    const stream = client(session.authentication_token);
    const events: Array<{ event_name: string; payload: Record<string, string>; identifier: string }> = [
      { event_name: 'llm.tokens', payload: { stripe_customer_id: 'cus_stream', tokens: '120', model: 'small' }, identifier: 'st-1' },
      { event_name: 'llm.tokens', payload: { stripe_customer_id: 'cus_stream', tokens: '30' }, identifier: 'st-2' },
      { event_name: 'api.requests', payload: { stripe_customer_id: 'cus_stream' }, identifier: 'st-3' },
    ];
    await stream.v2.billing.meterEventStream.create({ events });
    await stream.v2.billing.meterEventStream.create({ events });
    await assert.rejects(
      stream.v2.billing.meterEventStream.create({
        events: [
          { event_name: 'llm.tokens', payload: { stripe_customer_id: 'cus_stream', tokens: '1' }, identifier: 'st-4' },
          { event_name: 'llm.tokens', payload: { stripe_customer_id: 'cus_stream', value: '5' }, identifier: 'st-5' },
        ],
      }),
      (err: unknown) => err instanceof Stripe.errors.StripeInvalidRequestError && err.message === 'events[1]: payload[tokens] is required',
    );
    const usage = await s.usage('cus_stream');
    assert.equal(usage.events['llm.tokens'], 150, 'the valueProperty of llm.tokens is tokens; the refused batch stored nothing');
    assert.equal(usage.eventCounts['api.requests'], 1);
  });

  it('stream: takes at most 100 events, and refuses a conflicting identifier', async () => {
    const session = await client(s.key).v2.billing.meterEventSession.create();
    const stream = client(session.authentication_token);
    const ev = (i: number, value = '1') => ({
      event_name: 'api.calls',
      payload: { stripe_customer_id: 'cus_limit', value },
      identifier: `l-${i}`,
    });
    await stream.v2.billing.meterEventStream.create({ events: Array.from({ length: 100 }, (_, i) => ev(i)) });
    await assert.rejects(
      stream.v2.billing.meterEventStream.create({ events: Array.from({ length: 101 }, (_, i) => ev(1000 + i)) }),
      (err: unknown) => err instanceof Stripe.errors.StripeInvalidRequestError && /maximum limit of 100/.test(err.message),
    );
    await assert.rejects(
      stream.v2.billing.meterEventStream.create({ events: [ev(200), ev(0, '9')] }),
      (err: unknown) => err instanceof Stripe.errors.StripeInvalidRequestError && err.code === 'resource_already_exists',
    );
    const usage = await s.usage('cus_limit');
    assert.equal(usage.eventCounts['api.calls'], 100);
  });

  it('stream: an expired session raises TemporarySessionExpiredError; a session token opens nothing else', async () => {
    const session = await client(s.key).v2.billing.meterEventSession.create();
    const stream = client(session.authentication_token);
    const events = [{ event_name: 'api.calls', payload: { stripe_customer_id: 'cus_expiry', value: '1' } }];
    await stream.v2.billing.meterEventStream.create({ events });
    await assert.rejects(
      stream.billing.meterEvents.create(events[0]!),
      (err: unknown) => err instanceof Stripe.errors.StripeAuthenticationError,
    );
    const read = await fetch(`${s.url}/events`, { headers: { authorization: `Bearer ${session.authentication_token}` } });
    assert.equal(read.status, 401);
    s.t.clock.advance(15 * 60_000);
    await assert.rejects(
      stream.v2.billing.meterEventStream.create({ events }),
      (err: unknown) => err instanceof Stripe.errors.TemporarySessionExpiredError && err.statusCode === 401,
    );
    s.t.clock.advance(-15 * 60_000);
    assert.equal((await s.usage('cus_expiry')).eventCounts['api.calls'], 1);
  });
});
