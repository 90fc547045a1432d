// MeterhookClient close() and its refusal of lone UTF-16 surrogates before sending, against a fake server.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeterhookClosedError, MeterhookError, MeterhookFlushError, MeterhookValidationError } from '../../src/client/index.js';
import { batchOk, idsOf } from './fake-server.js';
import { client, fake } from './client-harness.js';

describe('MeterhookClient close()', () => {
  it('flushes, then refuses track() with MeterhookClosedError', async () => {
    const s = await fake(batchOk);
    const c = client(s.url, { flushIntervalMs: 60_000 });
    const p = c.track('api.calls', { customerId: 'c1', value: 1 });
    await c.close();
    await p;
    assert.equal(s.requests.length, 1);
    await assert.rejects(c.track('api.calls', { customerId: 'c1', value: 2 }), MeterhookClosedError);
    assert.equal(c.pending, 0);
  });

  it('rejects flush() with the events that failed', async () => {
    const s = await fake(() => ({ status: 400, body: { error: 'Request body must be an array of events' } }));
    const c = client(s.url, { flushIntervalMs: 60_000 });
    void c.track('api.calls', { customerId: 'c1', value: 1, id: 'x1' }); // not awaited: must not be an unhandled rejection
    const err = await c.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof MeterhookFlushError, String(err));
    assert.equal(err.failures.length, 1);
    assert.equal(err.failures[0]!.event.id, 'x1');
    assert.equal(err.acknowledged, 0);
  });

  it('rejects a non-finite value at once, without a request', async () => {
    const s = await fake(batchOk);
    const c = client(s.url);
    await assert.rejects(c.track('api.calls', { customerId: 'c1', value: Number.NaN }), TypeError);
    await c.flush();
    assert.equal(s.requests.length, 0);
  });
});

describe('MeterhookClient refuses lone UTF-16 surrogates before sending', () => {
  const LONE = 'must not contain lone UTF-16 surrogates';
  const refused = (status: number, details: string[]) => (e: unknown) => {
    assert.ok(e instanceof MeterhookValidationError, String(e));
    assert.ok(e instanceof MeterhookError, 'handled like a server refusal');
    assert.equal(e.status, status);
    assert.deepEqual(e.details, details);
    assert.match(e.message, /refused before sending/);
    return true;
  };

  it("track() rejects such an event at once with the server's messages; the others are still sent", async () => {
    const s = await fake(batchOk);
    const c = client(s.url, { flushIntervalMs: 60_000 });
    const good = c.track('api.calls', { customerId: 'c1', value: 1, id: 'ok', metadata: { emoji: '\ud83d\ude00' } });
    await assert.rejects(c.track('api.calls', { customerId: 'c\ud800', value: 1 }), refused(422, [`customerId ${LONE}`]));
    await assert.rejects(
      c.track('api.calls\udc00', { customerId: 'c1', value: 1, id: 'k\ud800' }),
      refused(422, [`eventType ${LONE}`, `id ${LONE}`]),
    );
    await assert.rejects(
      c.track('api.calls', { customerId: 'c1', value: 1, metadata: { a: [{ b: 'x\udfff' }] } }),
      refused(422, [`metadata values ${LONE} (at metadata.a[0].b)`]),
    );
    await assert.rejects(
      c.track('api.calls', { customerId: 'c1', value: 1, metadata: { '\ud800': 1 } }),
      refused(422, [`metadata keys ${LONE} (in metadata)`]),
    );
    assert.equal(c.pending, 1);
    await c.flush();
    assert.deepEqual(await good, { id: 'ok' });
    assert.equal(s.requests.length, 1);
    assert.deepEqual(idsOf(s.requests[0]!), ['ok']);
  });

  it('capture() and the read helpers throw it without a request', async () => {
    const s = await fake(() => ({ status: 200, body: [] }));
    const c = client(s.url);
    await assert.rejects(c.capture('api.calls', { customerId: 'c1', value: 1, id: '\ud800' }), refused(422, [`id ${LONE}`]));
    await assert.rejects(c.capture('api.calls\ud800', { customerId: 'c1', value: 1 }), refused(422, [`eventType ${LONE}`]));
    await assert.rejects(c.usage('c\ud800'), refused(400, [`customerId ${LONE}`]));
    await assert.rejects(async () => c.events({ customerId: 'c\udc00' }), refused(400, [`customerId ${LONE}`]));
    await assert.rejects(async () => c.events({ eventType: '\ud800' }), refused(400, [`eventType ${LONE}`]));
    await assert.rejects(async () => c.aggregations({ customerId: '\ud800' }), refused(400, [`customerId ${LONE}`]));
    await assert.rejects(c.deliveries.get('d\ud800'), refused(400, [`id ${LONE}`]));
    await assert.rejects(c.enableEndpoint('\udc00'), refused(400, [`endpointId ${LONE}`]));
    assert.equal(s.requests.length, 0);
    // A surrogate pair is text like any other.
    await c.events({ customerId: 'c\ud83d\ude00' });
    assert.equal(s.requests[0]!.path, '/events?customerId=c%F0%9F%98%80');
  });

  it('sendBatch() reports such events in rejected, by index, and sends the rest', async () => {
    const s = await fake(batchOk);
    const c = client(s.url);
    const report = await c.sendBatch([
      { eventType: 'api.calls', customerId: 'a', value: 1, id: 'a1' },
      { eventType: 'api.calls', customerId: 'b\ud800', value: 1, id: 'b1' },
      { eventType: 'api.calls', customerId: 'c', value: 1, id: 'c1' },
      { eventType: 'api.calls', customerId: 'd', value: 1, metadata: { k: ['\udc00'] } },
    ]);
    assert.equal(report.inserted, 2);
    assert.equal(report.failed, null);
    assert.deepEqual(
      report.rejected.map((r) => [r.index, r.error.status, r.error.details]),
      [
        [1, 422, [`customerId ${LONE}`]],
        [3, 422, [`metadata values ${LONE} (at metadata.k[0])`]],
      ],
    );
    assert.ok(report.rejected.every((r) => r.error instanceof MeterhookValidationError));
    assert.equal(s.requests.length, 1);
    assert.deepEqual(idsOf(s.requests[0]!), ['a1', 'c1']);
    const all = await c.sendBatch([{ eventType: 'api.calls', customerId: '\ud800', value: 1 }]);
    assert.equal(all.rejected.length, 1);
    assert.equal(s.requests.length, 1, 'nothing left to send');
  });
});
