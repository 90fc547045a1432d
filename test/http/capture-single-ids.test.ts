// POST /usage/:eventType ids: body ids and the Idempotency-Key header, and dedupe of a retried event by id
// and content (200 duplicate, 409 conflict), per customer and event type.
// store-contract: sqlite, postgres

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { NOW, MINUTE, cid, json, post, eventsOf, usageOf, assertCaptured, rejected, invalidMatching } from '../helpers/capture-single.js';

describe('POST /usage/:eventType ids and dedupe', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(() => t.close());

  describe('event ids', () => {
    it('accepts ids of 1 and 128 characters', async () => {
      for (const id of ['a', 'i'.repeat(128)]) {
        const c = cid('id_ok');
        assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, id }), 'api.calls', c);
        const [doc] = await eventsOf(t, c);
        assert.equal(doc!.id, id);
      }
    });

    it('rejects an id of 129 characters, an empty id and a non-string id', async () => {
      for (const id of ['i'.repeat(129), '', 42, true, ['x'], { id: 'x' }]) {
        await invalidMatching(t, { customerId: cid('id_bad'), value: 1, id }, /\bid\b/);
      }
    });

    it('the Idempotency-Key header acts as the id', async () => {
      const c = cid('idem');
      const key = `key_${c}`;
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 3 }, { 'idempotency-key': key }), 'api.calls', c);
      const [doc] = await eventsOf(t, c);
      assert.equal(doc!.id, key);
      // The same id sent in the body is the same event.
      const again = await post(t, 'api.calls', { customerId: c, value: 3, id: key });
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(json(again).duplicate, true);
      // And the header again, too.
      const third = await post(t, 'api.calls', { customerId: c, value: 3 }, { 'idempotency-key': key });
      assert.equal(third.statusCode, 200, third.body);
      assert.equal((await eventsOf(t, c)).length, 1);
    });

    it('the header and a body id that match are accepted', async () => {
      const c = cid('idem_match');
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, id: 'same' }, { 'idempotency-key': 'same' }), 'api.calls', c);
    });

    it('a header and a body id that differ → 422', async () => {
      const payload = { customerId: cid('idem_diff'), value: 1, id: 'body-id' };
      await invalidMatching(t, payload, /Idempotency-Key/, { 'idempotency-key': 'header-id' });
    });

    it('an Idempotency-Key over 128 characters → 422', async () => {
      await invalidMatching(t, { customerId: cid('idem_long'), value: 1 }, /Idempotency-Key/, { 'idempotency-key': 'k'.repeat(129) });
    });
  });

  describe('dedupe', () => {
    it('same id and same content → 200 duplicate, stored once', async () => {
      const c = cid('dup');
      const payload = { customerId: c, value: 7, id: 'evt-1', metadata: { a: 1 } };
      const first = await post(t, 'api.calls', payload);
      assertCaptured(first, 'api.calls', c);
      assert.equal(json(first).duplicate, false);
      const second = await post(t, 'api.calls', payload);
      assert.equal(second.statusCode, 200, second.body);
      const body = json(second);
      assert.equal(body.message, 'Event captured');
      assert.equal(body.eventType, 'api.calls');
      assert.equal(body.customerId, c);
      assert.equal(body.duplicate, true);
      assert.equal((await eventsOf(t, c)).length, 1);
      const usage = await usageOf(t, c);
      assert.equal(usage.events['api.calls'], 7);
      assert.equal(usage.eventCounts['api.calls'], 1);
    });

    it('same id with the same explicit timestamp is a duplicate', async () => {
      const c = cid('dup_ts');
      const payload = { customerId: c, value: 2, id: 'evt-ts', timestamp: '2026-01-12T10:00:00Z' };
      assertCaptured(await post(t, 'api.calls', payload), 'api.calls', c);
      const again = await post(t, 'api.calls', { ...payload, timestamp: '2026-01-12T12:00:00+02:00' });
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(json(again).duplicate, true);
      assert.equal((await eventsOf(t, c)).length, 1);
    });

    it('a retry without a timestamp at a later clock time is still a duplicate', async () => {
      const c = cid('dup_later');
      const payload = { customerId: c, value: 5, id: 'evt-later' };
      assertCaptured(await post(t, 'api.calls', payload), 'api.calls', c);
      t.clock.advance(10 * MINUTE);
      try {
        const again = await post(t, 'api.calls', payload);
        assert.equal(again.statusCode, 200, again.body);
        assert.equal(json(again).duplicate, true);
        const docs = await eventsOf(t, c);
        assert.equal(docs.length, 1);
        assert.equal(docs[0]!.timestamp, '2026-01-12T10:30:00.000Z');
      } finally {
        t.clock.set(NOW);
      }
      assert.equal((await usageOf(t, c)).events['api.calls'], 5);
    });

    it('metadata with the same keys in another order is the same content', async () => {
      const c = cid('dup_order');
      const first = await post(t, 'api.calls', `{"customerId":"${c}","value":1,"id":"o","metadata":{"a":1,"b":{"x":1,"y":[1,2]}}}`);
      assertCaptured(first, 'api.calls', c);
      const second = await post(t, 'api.calls', `{"id":"o","metadata":{"b":{"y":[1,2],"x":1},"a":1},"value":1,"customerId":"${c}"}`);
      assert.equal(second.statusCode, 200, second.body);
      assert.equal(json(second).duplicate, true);
      assert.equal((await eventsOf(t, c)).length, 1);
    });

    it('same id with a different value → 409 naming the id; nothing new is stored', async () => {
      const c = cid('conflict');
      const theId = 'evt-conflict-1';
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, id: theId }), 'api.calls', c);
      const body = await rejected(t, 409, () => post(t, 'api.calls', { customerId: c, value: 2, id: theId }));
      assert.equal(body.id, theId);
      assert.ok(String(body.error).includes(theId), String(body.error));
      const docs = await eventsOf(t, c);
      assert.equal(docs.length, 1);
      assert.equal(docs[0]!.value, 1);
      assert.equal((await usageOf(t, c)).events['api.calls'], 1);
    });

    it('same id with different metadata or a different explicit timestamp → 409', async () => {
      const c = cid('conflict2');
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, id: 'm', metadata: { a: 1 } }), 'api.calls', c);
      await rejected(t, 409, () => post(t, 'api.calls', { customerId: c, value: 1, id: 'm', metadata: { a: 2 } }));
      await rejected(t, 409, () => post(t, 'api.calls', { customerId: c, value: 1, id: 'm' }));
      assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1, id: 'ts', timestamp: '2026-01-12T10:00:00Z' }), 'api.calls', c);
      await rejected(t, 409, () => post(t, 'api.calls', { customerId: c, value: 1, id: 'ts', timestamp: '2026-01-12T10:01:00Z' }));
      assert.equal((await eventsOf(t, c)).length, 2);
    });

    it('same id with metadata differing only under a "__proto__" key is not a duplicate', async () => {
      const c = cid('conflict_proto');
      const first = await post(t, 'api.calls', `{"customerId":"${c}","value":1,"id":"p","metadata":{"__proto__":{"plan":"free"}}}`);
      assertCaptured(first, 'api.calls', c);
      const second = await post(t, 'api.calls', `{"customerId":"${c}","value":1,"id":"p","metadata":{"__proto__":{"plan":"enterprise"}}}`);
      assert.notEqual(second.statusCode, 200, 'different metadata must not be answered as a duplicate');
      assert.ok([400, 409, 422].includes(second.statusCode), `${second.statusCode} ${second.body}`);
      assert.equal((await eventsOf(t, c)).length, 1);
    });

    it('the same id under another customer or another event type is a different event', async () => {
      const c1 = cid('scope_a');
      const c2 = cid('scope_b');
      const id = 'shared-id';
      assertCaptured(await post(t, 'api.calls', { customerId: c1, value: 1, id }), 'api.calls', c1);
      assertCaptured(await post(t, 'api.calls', { customerId: c2, value: 9, id }), 'api.calls', c2);
      assertCaptured(await post(t, 'storage.bytes', { customerId: c1, value: 9, id }), 'storage.bytes', c1);
      assert.equal((await eventsOf(t, c1)).length, 2);
      assert.equal((await eventsOf(t, c2)).length, 1);
      const usage = await usageOf(t, c1);
      assert.deepEqual(usage.events, { 'api.calls': 1, 'storage.bytes': 9 });
    });

    it('events without an id are never deduplicated', async () => {
      const c = cid('noid');
      for (let i = 0; i < 3; i++) assertCaptured(await post(t, 'api.calls', { customerId: c, value: 1 }), 'api.calls', c);
      assert.equal((await eventsOf(t, c)).length, 3);
    });
  });
});
