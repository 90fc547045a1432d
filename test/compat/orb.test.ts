// orb-billing, pointed at a real meterhook server by baseURL only, with a meterhook API key: single and batch
// ingest, repeats counted once, Orb's per-event model (valid events stored, invalid and conflicting ones
// reported by idempotency_key in a 400 the SDK raises as BadRequestError), debug, a wrong key; totals read
// back through meterhook's usage API.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Orb from 'orb-billing';
import { type CompatServer, startCompatServer } from '../helpers/compat-server.js';

describe('drop-in Orb ingest, through orb-billing', () => {
  let s: CompatServer;
  const client = (apiKey: string) => new Orb({ apiKey, baseURL: `${s.url}/compat/orb/v1`, maxRetries: 0 });
  before(async () => {
    s = await startCompatServer();
  });
  after(() => s.close());

  const ev = (key: string, over: Record<string, unknown> = {}) => ({
    idempotency_key: key,
    external_customer_id: 'cus_orb',
    event_name: 'api.calls',
    timestamp: '2026-01-12T10:00:00Z',
    properties: { value: 2, route: '/x' },
    ...over,
  });

  it('ingests one event and a batch; repeats count once; the answer lists no failures', async () => {
    const orb = client(s.key);
    assert.deepEqual(await orb.events.ingest({ events: [ev('o-1')] }), { validation_failed: [] });
    const batch = [
      ev('o-1'),
      ev('o-2'),
      ev('o-3', { event_name: 'llm.tokens', customer_id: 'cus_orb_b', external_customer_id: undefined, properties: { tokens: 11 } }),
    ];
    assert.deepEqual(await orb.events.ingest({ events: batch }), { validation_failed: [] });
    assert.deepEqual(await orb.events.ingest({ events: batch }), { validation_failed: [] });
    const usage = await s.usage('cus_orb');
    assert.equal(usage.events['api.calls'], 4);
    assert.equal(usage.eventCounts['api.calls'], 2);
    assert.equal(
      (await s.usage('cus_orb_b')).events['llm.tokens'],
      11,
      'customer_id names the customer when external_customer_id is absent',
    );
  });

  it('per event: stores the valid events and reports the others, a conflicting key among them, with BadRequestError', async () => {
    const orb = client(s.key);
    await orb.events.ingest({ events: [ev('p-1', { external_customer_id: 'cus_orb_p' })] });
    await assert.rejects(
      orb.events.ingest({
        events: [
          ev('p-2', { external_customer_id: 'cus_orb_p' }),
          ev('p-3', { external_customer_id: 'cus_orb_p', event_name: 'no.such.metric' }),
          ev('p-1', { external_customer_id: 'cus_orb_p', properties: { value: 7 } }),
          ev('p-4', { external_customer_id: 'cus_orb_p', properties: { value: 'x' }, timestamp: 'today' }),
          ev('p-5', { external_customer_id: 'cus_orb_p', customer_id: 'orb_id' }),
          ev('p-6', { external_customer_id: 'cus_orb_p' }),
        ],
      }),
      (err: unknown) => {
        assert.ok(err instanceof Orb.BadRequestError, String(err));
        const failed = (err.error as { validation_failed: Array<{ idempotency_key: string; validation_errors: string[] }> })
          .validation_failed;
        assert.deepEqual(
          failed.map((f) => f.idempotency_key),
          ['p-3', 'p-1', 'p-4', 'p-5'],
        );
        assert.match(failed[0]!.validation_errors[0]!, /Invalid event type: no\.such\.metric/);
        assert.deepEqual(failed[1]!.validation_errors, ['idempotency_key was already used for an event with different content']);
        assert.deepEqual(failed[2]!.validation_errors, [
          'properties.value must be a number (got "x")',
          'timestamp must be an ISO 8601 date-time in UTC such as 2026-01-12T10:00:00Z',
        ]);
        assert.deepEqual(failed[3]!.validation_errors, ['give exactly one of customer_id and external_customer_id']);
        return true;
      },
    );
    const usage = await s.usage('cus_orb_p');
    assert.equal(usage.eventCounts['api.calls'], 3, 'p-1 (first content), p-2 and p-6 are stored');
    assert.equal(usage.events['api.calls'], 6);
  });

  it('debug=true names the ingested and duplicate keys', async () => {
    const res = await fetch(`${s.url}/compat/orb/v1/ingest?debug=true`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: [ev('d-1', { external_customer_id: 'cus_orb_d' }), ev('o-1')] }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { validation_failed: [], debug: { duplicate: ['o-1'], ingested: ['d-1'] } });
  });

  it('a wrong key raises AuthenticationError', async () => {
    await assert.rejects(
      client('orb_not_a_key').events.ingest({ events: [ev('w-1', { external_customer_id: 'cus_orb_w' })] }),
      (err: unknown) => err instanceof Orb.AuthenticationError && err.status === 401,
    );
    const res = await fetch(`${s.url}/customers/cus_orb_w/usage`, { headers: { 'x-apikey': s.key } });
    assert.deepEqual(((await res.json()) as { events: object }).events, {});
  });

  it('takes at most 500 events, and refuses a body without events', async () => {
    const orb = client(s.key);
    const many = Array.from({ length: 501 }, (_, i) => ev(`big-${i}`, { external_customer_id: 'cus_orb_big' }));
    await assert.rejects(orb.events.ingest({ events: many }), (err: unknown) => err instanceof Orb.APIError && err.status === 413);
    await assert.rejects(orb.events.ingest({ events: [] }), (err: unknown) => err instanceof Orb.BadRequestError);
    const res = await fetch(`${s.url}/customers/cus_orb_big/usage`, { headers: { 'x-apikey': s.key } });
    assert.deepEqual(((await res.json()) as { events: object }).events, {});
  });
});
