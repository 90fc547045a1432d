// POST /usagebatch against a real SQLite store: the reference's check order and exact bodies, all-or-nothing
// storage, dedupe and id conflicts, and group commit under concurrent load.
// store-contract: sqlite, postgres

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { TYPES_LIST, NO_TYPES, cid, json, batch, eventsOf, usageOf, rejected, ev } from '../helpers/capture-batch.js';

describe('POST /usagebatch', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(() => t.close());

  describe('body checks', () => {
    it('400 "Request body is required" without a body', async () => {
      const noBody = await rejected(t, 400, () => batch(t, undefined, { 'x-apikey': t.headers['x-apikey']! }));
      assert.deepEqual(noBody, { error: 'Request body is required' });
      const emptyJson = await rejected(t, 400, () => batch(t, undefined));
      assert.deepEqual(emptyJson, { error: 'Request body is required' });
      const blank = await rejected(t, 400, () => batch(t, '  '));
      assert.deepEqual(blank, { error: 'Request body is required' });
    });

    it('400 "Request body is required" for a JSON null', async () => {
      assert.deepEqual(await rejected(t, 400, () => batch(t, 'null')), { error: 'Request body is required' });
    });

    it('400 "Request body must be an array of events" for non-arrays', async () => {
      for (const payload of ['{}', JSON.stringify(ev('x', 1)), '"events"', '42', 'true', '{"0":{"eventType":"api.calls"}}']) {
        assert.deepEqual(await rejected(t, 400, () => batch(t, payload)), { error: 'Request body must be an array of events' }, payload);
      }
    });

    it('400 "Events array cannot be empty"', async () => {
      assert.deepEqual(await rejected(t, 400, () => batch(t, '[]')), { error: 'Events array cannot be empty' });
    });

    it('413 with received and maxAllowed for 1001 events, before validating any of them', async () => {
      const c = cid('too_many');
      const valid = Array.from({ length: 1001 }, (_, i) => ev(c, i));
      assert.deepEqual(await rejected(t, 413, () => batch(t, valid)), {
        error: 'Batch size exceeds maximum limit of 1000 events',
        received: 1001,
        maxAllowed: 1000,
      });
      const invalid = Array.from({ length: 1500 }, () => 5);
      assert.deepEqual(await rejected(t, 413, () => batch(t, invalid)), {
        error: 'Batch size exceeds maximum limit of 1000 events',
        received: 1500,
        maxAllowed: 1000,
      });
      assert.equal((await eventsOf(t, c)).length, 0);
    });

    it('malformed JSON → 400 JSON; non-JSON content types → 415 JSON', async () => {
      await rejected(t, 400, () => batch(t, '[{"eventType":'));
      for (const ct of ['text/plain', 'application/x-www-form-urlencoded']) {
        await rejected(t, 415, () => batch(t, JSON.stringify([ev(cid('media'), 1)]), { ...t.headers, 'content-type': ct }));
      }
    });
  });

  describe('422 element validation, all or nothing', () => {
    it('reports every invalid element with its index and stores none of the valid ones', async () => {
      const c = cid('mixed');
      const payload = [
        ev(c, 1),
        5,
        null,
        [],
        'str',
        { customerId: c, value: 1 },
        { eventType: 5, customerId: c, value: 1 },
        { eventType: 'bogus', customerId: c, value: 1 },
        { eventType: 'api.calls', customerId: 7, value: '5', metadata: [] },
        { eventType: '', customerId: c, value: 1 },
        { eventType: 5 },
        { eventType: 'constructor', customerId: c, value: 1 },
        ev(c, 2, { metadata: { ok: true } }),
      ];
      const body = await rejected(t, 422, () => batch(t, payload));
      assert.deepEqual(body, {
        error: 'Validation failed for some events',
        validationErrors: [
          { index: 1, errors: ['Event must be an object'] },
          { index: 2, errors: ['Event must be an object'] },
          { index: 3, errors: ['Event must be an object'] },
          { index: 4, errors: ['Event must be an object'] },
          { index: 5, errors: ['eventType is required'] },
          { index: 6, errors: ['eventType must be a string'] },
          { index: 7, errors: [`Invalid event type: bogus. Must be one of: ${TYPES_LIST}`] },
          { index: 8, errors: ['customerId must be a string', 'value must be a finite number', 'metadata must be an object if provided'] },
          { index: 9, errors: ['eventType is required'] },
          { index: 10, errors: ['eventType must be a string', 'customerId is required', 'value is required'] },
          { index: 11, errors: [`Invalid event type: constructor. Must be one of: ${TYPES_LIST}`] },
        ],
        validCount: 2,
        invalidCount: 11,
      });
      assert.equal((await eventsOf(t, c)).length, 0);
    });

    it('field errors use the single-route messages', async () => {
      const c = cid('fields');
      const body = await rejected(t, 422, () =>
        batch(t, [
          { eventType: 'api.calls', value: 1 },
          { eventType: 'api.calls', customerId: null, value: null },
          { eventType: 'api.calls', customerId: '', value: true },
          { eventType: 'api.calls', customerId: c, value: { n: 1 }, metadata: 'x' },
          ev(c, 1),
        ]),
      );
      assert.deepEqual(body.validationErrors, [
        { index: 0, errors: ['customerId is required'] },
        { index: 1, errors: ['customerId is required', 'value is required'] },
        { index: 2, errors: ['customerId is required', 'value must be a finite number'] },
        { index: 3, errors: ['value must be a finite number', 'metadata must be an object if provided'] },
      ]);
      assert.equal(body.validCount, 1);
      assert.equal(body.invalidCount, 4);
    });

    it('1e400 (Infinity), bad timestamps, bad ids and oversize fields are element errors', async () => {
      const c = cid('limits');
      const raw =
        `[{"eventType":"api.calls","customerId":"${c}","value":1e400},` +
        JSON.stringify([
          ev(c, 1, { timestamp: 'yesterday' }),
          ev(c, 1, { timestamp: '2025-01-01T00:00:00Z' }),
          ev(c, 1, { id: '' }),
          ev(`d${'x'.repeat(256)}`, 1),
          ev(c, 1, { metadata: { s: 'x'.repeat(9000) } }),
          ev(c, 1),
        ]).slice(1);
      const body = await rejected(t, 422, () => batch(t, raw));
      const errs = body.validationErrors as Array<{ index: number; errors: string[] }>;
      assert.deepEqual(
        errs.map((e) => e.index),
        [0, 1, 2, 3, 4, 5],
      );
      assert.deepEqual(errs[0]!.errors, ['value must be a finite number']);
      assert.match(errs[1]!.errors[0]!, /timestamp/);
      assert.match(errs[2]!.errors[0]!, /maximum event age/);
      assert.match(errs[3]!.errors[0]!, /\bid\b/);
      assert.match(errs[4]!.errors[0]!, /customerId/);
      assert.match(errs[5]!.errors[0]!, /metadata/);
      assert.equal(body.validCount, 1);
      assert.equal(body.invalidCount, 6);
      assert.equal((await eventsOf(t, c)).length, 0);
    });
  });

  describe('stored batches', () => {
    it('201 with count, inserted and duplicates; every event is stored', async () => {
      const c = cid('ok');
      const res = await batch(t, [ev(c, 1), ev(c, 2.5), { eventType: 'storage.bytes', customerId: c, value: 40 }, ev(c, -0.5)]);
      assert.equal(res.statusCode, 201, res.body);
      const body = json(res);
      assert.equal(body.message, 'Events captured');
      assert.equal(body.count, 4);
      assert.equal(body.inserted, 4);
      assert.equal(body.duplicates, 0);
      assert.equal((await eventsOf(t, c)).length, 4);
      const usage = await usageOf(t, c);
      assert.deepEqual(usage.events, { 'api.calls': 3, 'storage.bytes': 40 });
      assert.deepEqual(usage.eventCounts, { 'api.calls': 3, 'storage.bytes': 1 });
    });

    it('a 1000-event batch with metadata succeeds', async () => {
      const c = cid('thousand');
      const payload = Array.from({ length: 1000 }, (_, i) =>
        ev(c, i, { id: `t-${i}`, metadata: { region: i % 2 ? 'eu' : 'us', tags: ['a', 'b'], nested: { i, s: 'x'.repeat(200) } } }),
      );
      const res = await batch(t, payload);
      assert.equal(res.statusCode, 201, res.body);
      assert.deepEqual(json(res), { message: 'Events captured', count: 1000, inserted: 1000, duplicates: 0 });
      const docs = await eventsOf(t, c);
      assert.equal(docs.length, 1000);
      const one = docs.find((d) => d.id === 't-7');
      assert.deepEqual(one?.metadata, { region: 'eu', tags: ['a', 'b'], nested: { i: 7, s: 'x'.repeat(200) } });
      const usage = await usageOf(t, c);
      assert.equal(usage.events['api.calls'], (999 * 1000) / 2);
      assert.equal(usage.eventCounts['api.calls'], 1000);
    });
  });

  describe('dedupe and id conflicts', () => {
    it('a re-sent batch → 200 with no inserts and every event a duplicate; nothing stored twice', async () => {
      const c = cid('resend');
      const payload = [ev(c, 1, { id: 'r1' }), ev(c, 2, { id: 'r2' }), ev(c, 3, { id: 'r3', metadata: { a: 1, b: 2 } })];
      const first = await batch(t, payload);
      assert.equal(first.statusCode, 201, first.body);
      assert.deepEqual(json(first), { message: 'Events captured', count: 3, inserted: 3, duplicates: 0 });
      t.clock.advance(60_000);
      try {
        const again = await batch(t, payload);
        assert.equal(again.statusCode, 200, again.body);
        assert.deepEqual(json(again), { message: 'Events captured', count: 3, inserted: 0, duplicates: 3 });
      } finally {
        t.clock.set('2026-01-12T10:30:00Z');
      }
      assert.equal((await eventsOf(t, c)).length, 3);
      assert.equal((await usageOf(t, c)).events['api.calls'], 6);
    });

    it('a partly re-sent batch inserts only the new events', async () => {
      const c = cid('partial_resend');
      assert.equal((await batch(t, [ev(c, 1, { id: 'p1' })])).statusCode, 201);
      const res = await batch(t, [ev(c, 1, { id: 'p1' }), ev(c, 10, { id: 'p2' }), ev(c, 100)]);
      assert.equal(res.statusCode, 201, res.body);
      assert.deepEqual(json(res), { message: 'Events captured', count: 3, inserted: 2, duplicates: 1 });
      assert.equal((await usageOf(t, c)).events['api.calls'], 111);
    });

    it('the same id twice with the same content in one batch is stored once', async () => {
      const c = cid('twice');
      const res = await batch(t, [
        ev(c, 4, { id: 'dup', metadata: { a: 1, b: 2 } }),
        ev(c, 1),
        ev(c, 4, { id: 'dup', metadata: { b: 2, a: 1 } }),
      ]);
      assert.equal(res.statusCode, 201, res.body);
      const body = json(res);
      assert.equal(body.inserted, 2);
      assert.equal(body.duplicates, 1);
      assert.equal((await eventsOf(t, c)).length, 2);
      assert.equal((await usageOf(t, c)).events['api.calls'], 5);
    });

    it('a conflict with a stored event → 409 listing the index; none of the batch is stored', async () => {
      const c = cid('conflict_stored');
      assert.equal((await batch(t, [ev(c, 1, { id: 'x1' })])).statusCode, 201);
      const body = await rejected(t, 409, () =>
        batch(t, [ev(c, 5, { id: 'new-1' }), ev(c, 2, { id: 'x1' }), ev(c, 7), ev(c, 5, { id: 'new-2' })]),
      );
      assert.deepEqual(body.conflicts, [{ index: 1, id: 'x1' }]);
      const docs = await eventsOf(t, c);
      assert.deepEqual(
        docs.map((d) => d.id),
        ['x1'],
      );
      assert.equal((await usageOf(t, c)).events['api.calls'], 1);
    });

    it('a conflict inside the batch → 409 listing the later index; none of the batch is stored', async () => {
      const c = cid('conflict_inside');
      const body = await rejected(t, 409, () => batch(t, [ev(c, 1, { id: 'd' }), ev(c, 3, { id: 'e' }), ev(c, 2, { id: 'd' })]));
      assert.deepEqual(body.conflicts, [{ index: 2, id: 'd' }]);
      assert.equal((await eventsOf(t, c)).length, 0);
    });

    it('several conflicts are all listed', async () => {
      const c = cid('conflict_many');
      assert.equal((await batch(t, [ev(c, 1, { id: 'a' }), ev(c, 1, { id: 'b' })])).statusCode, 201);
      const body = await rejected(t, 409, () => batch(t, [ev(c, 2, { id: 'a' }), ev(c, 1, { id: 'ok' }), ev(c, 2, { id: 'b' })]));
      assert.deepEqual(body.conflicts, [
        { index: 0, id: 'a' },
        { index: 2, id: 'b' },
      ]);
      assert.equal((await eventsOf(t, c)).length, 2);
    });

    it('the same id under another event type or customer is not a conflict', async () => {
      const c = cid('scope');
      const c2 = cid('scope2');
      const res = await batch(t, [
        ev(c, 1, { id: 's' }),
        { eventType: 'storage.bytes', customerId: c, value: 2, id: 's' },
        ev(c2, 3, { id: 's' }),
      ]);
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(json(res).inserted, 3);
      assert.equal((await eventsOf(t, c)).length, 2);
      assert.equal((await eventsOf(t, c2)).length, 1);
    });
  });

  describe('concurrency (group commit)', () => {
    it('20 batches (each sent twice) and 300 single requests at once: nothing lost, nothing doubled', async () => {
      const c = cid('load');
      const batches = Array.from({ length: 20 }, (_, b) => Array.from({ length: 10 }, (_, j) => ev(c, j + 1, { id: `b${b}-${j}` })));
      const singleNoId = Array.from({ length: 100 }, () => ({ customerId: c, value: 2 }));
      const singleWithId = Array.from({ length: 100 }, (_, i) => ({ customerId: c, value: 3, id: `s-${i}` }));
      const single = (p: unknown) =>
        t.app.inject({ method: 'POST', url: '/usage/api.calls', headers: t.headers, payload: JSON.stringify(p) });

      const [batchRes, noIdRes, idRes, idRes2] = await Promise.all([
        Promise.all(batches.flatMap((p) => [batch(t, p), batch(t, p)])),
        Promise.all(singleNoId.map(single)),
        Promise.all(singleWithId.map(single)),
        Promise.all(singleWithId.map(single)),
      ]);

      // Each batch pair: exactly one inserted everything, the other was all duplicates.
      for (let b = 0; b < 20; b++) {
        const pair = [batchRes[2 * b]!, batchRes[2 * b + 1]!].map((r) => ({
          status: r.statusCode,
          body: r.json() as Record<string, unknown>,
        }));
        pair.sort((x, y) => y.status - x.status);
        assert.deepEqual(
          pair,
          [
            { status: 201, body: { message: 'Events captured', count: 10, inserted: 10, duplicates: 0 } },
            { status: 200, body: { message: 'Events captured', count: 10, inserted: 0, duplicates: 10 } },
          ],
          `batch ${b}`,
        );
      }
      for (const r of noIdRes) assert.equal(r.statusCode, 201, r.body);
      for (let i = 0; i < 100; i++) {
        const statuses = [idRes[i]!.statusCode, idRes2[i]!.statusCode].sort();
        assert.deepEqual(statuses, [200, 201], `single ${i}`);
      }

      const docs = await eventsOf(t, c);
      assert.equal(docs.length, 20 * 10 + 100 + 100);
      assert.equal(new Set(docs.map((d) => d.eventId)).size, docs.length);
      const usage = await usageOf(t, c);
      assert.equal(usage.eventCounts['api.calls'], 400);
      assert.equal(usage.events['api.calls'], 20 * 55 + 100 * 2 + 100 * 3);
    });
  });
});

describe('POST /usagebatch with maxBatchSize: 5', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ config: { events: { 'api.calls': { op: 'sum' } }, maxBatchSize: 5 } });
  });
  after(() => t.close());

  it('accepts 5 events', async () => {
    const c = cid('max5_ok');
    const res = await batch(
      t,
      Array.from({ length: 5 }, () => ev(c, 1)),
    );
    assert.equal(res.statusCode, 201, res.body);
    assert.equal((await eventsOf(t, c)).length, 5);
  });

  it('6 events → 413 naming the configured limit', async () => {
    const c = cid('max5_over');
    const body = await rejected(t, 413, () =>
      batch(
        t,
        Array.from({ length: 6 }, () => ev(c, 1)),
      ),
    );
    assert.deepEqual(body, { error: 'Batch size exceeds maximum limit of 5 events', received: 6, maxAllowed: 5 });
  });
});

describe('POST /usagebatch with no event types configured', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ config: { events: {} } });
  });
  after(() => t.close());

  it('503 with the single-route body for a well-formed batch', async () => {
    assert.deepEqual(await rejected(t, 503, () => batch(t, [ev(cid('nt'), 1)])), NO_TYPES);
    assert.deepEqual(await rejected(t, 503, () => batch(t, [5, {}])), NO_TYPES);
  });

  it('the body checks and the size check come first, as in the table', async () => {
    assert.deepEqual(await rejected(t, 400, () => batch(t, 'null')), { error: 'Request body is required' });
    assert.deepEqual(await rejected(t, 400, () => batch(t, '{}')), { error: 'Request body must be an array of events' });
    assert.deepEqual(await rejected(t, 400, () => batch(t, '[]')), { error: 'Events array cannot be empty' });
    assert.deepEqual(
      await rejected(t, 413, () =>
        batch(
          t,
          Array.from({ length: 1001 }, () => ev('x', 1)),
        ),
      ),
      {
        error: 'Batch size exceeds maximum limit of 1000 events',
        received: 1001,
        maxAllowed: 1000,
      },
    );
  });
});
