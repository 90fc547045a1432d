// @metronome/sdk, pointed at a real meterhook server by baseURL only, with a meterhook API key as its bearer
// token: single and batch ingest, repeats counted once, a conflicting transaction_id raising ConflictError
// (not retried), bad events raising BadRequestError, the 100-event limit, a wrong key; totals read back
// through meterhook's usage API.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Metronome from '@metronome/sdk';
import { type CompatServer, startCompatServer } from '../helpers/compat-server.js';

describe('drop-in Metronome ingest, through @metronome/sdk', () => {
  let s: CompatServer;
  const client = (bearerToken: string) => new Metronome({ bearerToken, baseURL: `${s.url}/compat/metronome`, maxRetries: 0 });
  before(async () => {
    s = await startCompatServer();
  });
  after(() => s.close());

  const usage = (id: string, over: Record<string, unknown> = {}) => ({
    transaction_id: id,
    customer_id: 'cus_met',
    event_type: 'llm.tokens',
    timestamp: '2026-01-12T10:00:00Z',
    properties: { tokens: 10, model: 'small' },
    ...over,
  });

  it('ingests one event and a batch; a repeat counts once', async () => {
    const met = client(s.key);
    await met.v1.usage.ingest({ usage: [usage('m-1')] });
    await met.v1.usage.ingest({
      usage: [usage('m-1'), usage('m-2', { properties: { tokens: 5 } }), usage('m-3', { event_type: 'api.requests', properties: {} })],
    });
    await met.v1.usage.ingest({ usage: [usage('m-2', { properties: { tokens: 5 } })] });
    const u = await s.usage('cus_met');
    assert.equal(u.events['llm.tokens'], 15);
    assert.equal(u.eventCounts['llm.tokens'], 2);
    assert.equal(u.eventCounts['api.requests'], 1);
  });

  it('a conflicting transaction_id raises ConflictError, told not to retry, and stores nothing of the batch', async () => {
    const met = client(s.key);
    await met.v1.usage.ingest({ usage: [usage('c-1', { customer_id: 'cus_met_c' })] });
    await assert.rejects(
      met.v1.usage.ingest({
        usage: [usage('c-2', { customer_id: 'cus_met_c' }), usage('c-1', { customer_id: 'cus_met_c', properties: { tokens: 99 } })],
      }),
      (err: unknown) => err instanceof Metronome.ConflictError && err.headers.get('x-should-retry') === 'false' && /c-1/.test(err.message),
    );
    assert.equal((await s.usage('cus_met_c')).eventCounts['llm.tokens'], 1);
  });

  it('a bad event raises BadRequestError naming it, and nothing of the batch is stored', async () => {
    const met = client(s.key);
    await assert.rejects(
      met.v1.usage.ingest({
        usage: [
          usage('b-1', { customer_id: 'cus_met_b' }),
          usage('b-2', { customer_id: 'cus_met_b', properties: { value: 3 } }),
          usage('b-3', { customer_id: 'cus_met_b', event_type: 'no.such.metric' }),
        ],
      }),
      (err: unknown) => {
        assert.ok(err instanceof Metronome.BadRequestError, String(err));
        const { message } = err.error as { message: string };
        assert.match(message, /^usage\[1\]: properties\.tokens is required; usage\[2\]: Invalid event type: no\.such\.metric/);
        return true;
      },
    );
    const many = Array.from({ length: 101 }, (_, i) => usage(`n-${i}`, { customer_id: 'cus_met_b' }));
    await assert.rejects(met.v1.usage.ingest({ usage: many }), (err: unknown) => err instanceof Metronome.APIError && err.status === 413);
    const res = await fetch(`${s.url}/customers/cus_met_b/usage`, { headers: { 'x-apikey': s.key } });
    assert.deepEqual(((await res.json()) as { events: object }).events, {});
  });

  it('a wrong bearer token raises AuthenticationError', async () => {
    await assert.rejects(
      client('met_not_a_key').v1.usage.ingest({ usage: [usage('w-1', { customer_id: 'cus_met_w' })] }),
      (err: unknown) => err instanceof Metronome.AuthenticationError && err.status === 401,
    );
    const res = await fetch(`${s.url}/customers/cus_met_w/usage`, { headers: { 'x-apikey': s.key } });
    assert.deepEqual(((await res.json()) as { events: object }).events, {});
  });
});
