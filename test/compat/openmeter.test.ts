// @openmeter/sdk, pointed at a real meterhook server by baseUrl only, with a meterhook API key: single and
// batch ingest, (source, id) dedupe, a conflicting repeat, bad events raising the SDK's HTTPError with the
// problem detail, a wrong key, the three content types; totals read back through meterhook's usage API.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HTTPError, OpenMeter } from '@openmeter/sdk';
import { type CompatServer, startCompatServer } from '../helpers/compat-server.js';

describe('drop-in OpenMeter ingest, through @openmeter/sdk', () => {
  let s: CompatServer;
  const client = (apiKey: string) => new OpenMeter({ baseUrl: `${s.url}/compat/openmeter`, apiKey });
  const at = (iso: string) => new Date(iso);
  before(async () => {
    s = await startCompatServer();
  });
  after(() => s.close());

  it('ingests one event and a batch; a repeat of (source, id) counts once, another source is another event', async () => {
    const om = client(s.key);
    const one = {
      id: 'om-1',
      source: 'billing-svc',
      type: 'api.calls',
      subject: 'cus_om',
      time: at('2026-01-12T10:00:00Z'),
      data: { value: 4 },
    };
    await om.events.ingest(one);
    await om.events.ingest([
      one,
      { ...one, source: 'other-svc' },
      {
        id: 'om-2',
        source: 'billing-svc',
        type: 'llm.tokens',
        subject: 'cus_om',
        time: at('2026-01-12T10:01:00Z'),
        data: { tokens: 25, model: 'm' },
      },
    ]);
    await om.events.ingest(one);
    const usage = await s.usage('cus_om');
    assert.equal(usage.events['api.calls'], 8);
    assert.equal(usage.eventCounts['api.calls'], 2);
    assert.equal(usage.events['llm.tokens'], 25);
    const res = await fetch(`${s.url}/events?customerId=cus_om&eventType=llm.tokens`, { headers: { 'x-apikey': s.key } });
    const [stored] = (await res.json()) as Array<{ id: string; metadata: unknown }>;
    assert.equal(stored?.id, 'billing-svc/om-2');
    assert.deepEqual(stored?.metadata, { model: 'm' });
  });

  it('refuses a conflicting repeat with 409, storing nothing of the batch', async () => {
    const om = client(s.key);
    const ev = { id: 'om-c', source: 'svc', type: 'api.calls', subject: 'cus_om_c', time: at('2026-01-12T10:00:00Z'), data: { value: 1 } };
    await om.events.ingest(ev);
    await assert.rejects(
      om.events.ingest([
        { ...ev, id: 'om-c2' },
        { ...ev, data: { value: 2 } },
      ]),
      (err: unknown) => err instanceof HTTPError && err.status === 409 && /om-c/.test(err.message),
    );
    assert.equal((await s.usage('cus_om_c')).eventCounts['api.calls'], 1);
  });

  it('a bad event raises HTTPError 400 with every problem, and nothing of the batch is stored', async () => {
    const om = client(s.key);
    const time = at('2026-01-12T10:00:00Z');
    await assert.rejects(
      om.events.ingest([
        { id: 'ok', source: 'svc', type: 'api.calls', subject: 'cus_om_bad', time, data: { value: 1 } },
        { id: 'b1', source: 'svc', type: 'no.such.meter', subject: 'cus_om_bad', time, data: { value: 1 } },
        { id: 'b2', source: 'svc', type: 'api.calls', subject: 'cus_om_bad', time, data: { value: 'lots' } },
        { id: 'b3', source: 'svc', type: 'llm.tokens', subject: 'cus_om_bad', time, data: { value: 3 } },
      ]),
      (err: unknown) => {
        assert.ok(err instanceof HTTPError);
        assert.equal(err.status, 400);
        assert.equal(
          err.getField('detail'),
          [
            'events[1]: Invalid event type: no.such.meter. Must be one of: api.calls, storage.bytes, response.time.ms, ' +
              'test.min, test.count, test.first, test.last, llm.tokens, api.requests',
            'events[2]: data.value must be a number (got "lots")',
            'events[3]: data.tokens is required',
          ].join('; '),
        );
        return true;
      },
    );
    const res = await fetch(`${s.url}/customers/cus_om_bad/usage`, { headers: { 'x-apikey': s.key } });
    assert.deepEqual(((await res.json()) as { events: object }).events, {});
  });

  it('a wrong key raises HTTPError 401', async () => {
    const ev = { type: 'api.calls', subject: 'cus_om_auth', time: at('2026-01-12T10:00:00Z'), data: { value: 1 } };
    await assert.rejects(client('om_not_a_key').events.ingest(ev), (err: unknown) => err instanceof HTTPError && err.status === 401);
    const res = await fetch(`${s.url}/customers/cus_om_auth/usage`, { headers: { 'x-apikey': s.key } });
    assert.deepEqual(((await res.json()) as { events: object }).events, {});
  });

  it('takes application/cloudevents+json, the batch type and plain JSON, and answers 204', async () => {
    const ev = (id: string) => ({
      specversion: '1.0',
      id,
      source: 'curl',
      type: 'api.calls',
      subject: 'cus_om_ct',
      time: '2026-01-12T10:00:00Z',
      data: { value: 2 },
    });
    const send = (contentType: string, body: unknown) =>
      fetch(`${s.url}/compat/openmeter/api/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.key}`, 'content-type': contentType },
        body: JSON.stringify(body),
      });
    for (const [type, body] of [
      ['application/cloudevents+json', ev('a')],
      ['application/cloudevents-batch+json', [ev('b'), ev('c')]],
      ['application/json', ev('d')],
      ['application/json', [ev('e')]],
    ] as const) {
      const res = await send(type, body);
      assert.equal(res.status, 204, `${type}: ${await res.text()}`);
    }
    const refused = await send('application/cloudevents+json', { ...ev('f'), source: undefined });
    assert.equal(refused.status, 400);
    assert.equal(refused.headers.get('content-type'), 'application/problem+json');
    assert.deepEqual(await refused.json(), {
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'events[0]: source is required',
    });
    assert.equal((await send('application/json', [])).status, 400);
    assert.equal((await s.usage('cus_om_ct')).events['api.calls'], 10);
  });
});
