// POST /usagebatch against a real SQLite store: the reference's check order and exact bodies, all-or-nothing
// storage, dedupe and id conflicts, and group commit under concurrent load.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { buildTestApp, TEST_STORE, type TestApp } from '../helpers/app.js';
import { PostgresStore } from '../../src/store/postgres/pg-store.js';
import { requestBodyHash } from '../../src/domain/request-keys.js';
import type { AppendUnit } from '../../src/store/store.js';

const TYPES_LIST = 'api.calls, storage.bytes, response.time.ms, test.min, test.count, test.first, test.last';
const NO_TYPES = { error: 'Service misconfigured: no event types available' };

let seq = 0;
const cid = (label: string): string => `batch_${label}_${++seq}`;

interface Usage {
  events: Record<string, number>;
  eventCounts: Record<string, number>;
}

interface EventDoc {
  eventId: string;
  id: string | null;
  customerId: string;
  eventType: string;
  value: number;
  metadata: Record<string, unknown>;
}

function json<T = Record<string, unknown>>(res: LightMyRequestResponse): T {
  assert.match(String(res.headers['content-type']), /^application\/json/, `content-type of ${res.statusCode}: ${res.body}`);
  return res.json() as T;
}

async function batch(t: TestApp, payload: unknown, headers: Record<string, string> = t.headers): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url: '/usagebatch',
    headers,
    ...(payload === undefined ? {} : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
  });
}

async function eventsOf(t: TestApp, customerId?: string): Promise<EventDoc[]> {
  const out: EventDoc[] = [];
  let cursor: string | undefined;
  // Pages through everything so counts above one page are exact.
  for (;;) {
    const qs = new URLSearchParams({ limit: '1000' });
    if (customerId !== undefined) qs.set('customerId', customerId);
    if (cursor !== undefined) qs.set('cursor', cursor);
    const res = await t.app.inject({ method: 'GET', url: `/events?${qs}`, headers: t.headers });
    assert.equal(res.statusCode, 200, res.body);
    out.push(...(res.json() as EventDoc[]));
    const next = res.headers['x-next-cursor'];
    if (typeof next !== 'string') return out;
    cursor = next;
  }
}

async function usageOf(t: TestApp, customerId: string): Promise<Usage> {
  const res = await t.app.inject({ method: 'GET', url: `/customers/${customerId}/usage?period=daily`, headers: t.headers });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as Usage;
}

async function rejected(t: TestApp, status: number, send: () => Promise<LightMyRequestResponse>): Promise<Record<string, unknown>> {
  const before = (await eventsOf(t)).length;
  const res = await send();
  assert.equal(res.statusCode, status, res.body);
  const body = json(res);
  assert.equal(typeof body.error, 'string');
  assert.equal((await eventsOf(t)).length, before, 'a rejected batch must store nothing');
  return body;
}

const ev = (customerId: string, value: number, extra: Record<string, unknown> = {}) => ({ eventType: 'api.calls', customerId, value, ...extra });

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
      const raw = `[{"eventType":"api.calls","customerId":"${c}","value":1e400},` +
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
      assert.deepEqual(errs.map((e) => e.index), [0, 1, 2, 3, 4, 5]);
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
        ev(c, i, { id: `t-${i}`, metadata: { region: i % 2 ? 'eu' : 'us', tags: ['a', 'b'], nested: { i, s: 'x'.repeat(200) } } }));
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
      const res = await batch(t, [ev(c, 4, { id: 'dup', metadata: { a: 1, b: 2 } }), ev(c, 1), ev(c, 4, { id: 'dup', metadata: { b: 2, a: 1 } })]);
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
      const body = await rejected(t, 409, () => batch(t, [ev(c, 5, { id: 'new-1' }), ev(c, 2, { id: 'x1' }), ev(c, 7), ev(c, 5, { id: 'new-2' })]));
      assert.deepEqual(body.conflicts, [{ index: 1, id: 'x1' }]);
      const docs = await eventsOf(t, c);
      assert.deepEqual(docs.map((d) => d.id), ['x1']);
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
      assert.deepEqual(body.conflicts, [{ index: 0, id: 'a' }, { index: 2, id: 'b' }]);
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
        const pair = [batchRes[2 * b]!, batchRes[2 * b + 1]!].map((r) => ({ status: r.statusCode, body: r.json() as Record<string, unknown> }));
        pair.sort((x, y) => y.status - x.status);
        assert.deepEqual(pair, [
          { status: 201, body: { message: 'Events captured', count: 10, inserted: 10, duplicates: 0 } },
          { status: 200, body: { message: 'Events captured', count: 10, inserted: 0, duplicates: 10 } },
        ], `batch ${b}`);
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
    const res = await batch(t, Array.from({ length: 5 }, () => ev(c, 1)));
    assert.equal(res.statusCode, 201, res.body);
    assert.equal((await eventsOf(t, c)).length, 5);
  });

  it('6 events → 413 naming the configured limit', async () => {
    const c = cid('max5_over');
    const body = await rejected(t, 413, () => batch(t, Array.from({ length: 6 }, () => ev(c, 1))));
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
    assert.deepEqual(await rejected(t, 413, () => batch(t, Array.from({ length: 1001 }, () => ev('x', 1)))), {
      error: 'Batch size exceeds maximum limit of 1000 events',
      received: 1001,
      maxAllowed: 1000,
    });
  });
});

describe('POST /usagebatch refuses lone UTF-16 surrogates', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(() => t.close());

  const LONE = 'must not contain lone UTF-16 surrogates';

  it('in eventType, customerId, id and metadata: per-index validationErrors, nothing stored', async () => {
    const c = cid('lone');
    const body = await rejected(t, 422, () =>
      batch(t, [
        ev(c, 1, { id: 'ok-1' }),
        { eventType: 'api.calls\ud800', customerId: c, value: 1 },
        ev(`${c}\udc00`, 1),
        ev(c, 1, { id: 'k\ud800' }),
        ev(c, 1, { metadata: { tags: ['a', 'b\udfff'] } }),
        ev(c, 1, { metadata: { nested: { ['\ud801']: 1 } } }),
        { eventType: '\ud800', customerId: `${c}\ud800`, value: 1, id: '\udc00' },
        ev(c, 2, { id: 'ok-2', metadata: { emoji: '\ud83d\ude00' } }),
      ]),
    );
    assert.deepEqual(body, {
      error: 'Validation failed for some events',
      validationErrors: [
        { index: 1, errors: [`eventType ${LONE}`] },
        { index: 2, errors: [`customerId ${LONE}`] },
        { index: 3, errors: [`id ${LONE}`] },
        { index: 4, errors: [`metadata values ${LONE} (at metadata.tags[1])`] },
        { index: 5, errors: [`metadata keys ${LONE} (in metadata.nested)`] },
        { index: 6, errors: [`eventType ${LONE}`, `customerId ${LONE}`, `id ${LONE}`] },
      ],
      validCount: 2,
      invalidCount: 6,
    });
    assert.deepEqual((await usageOf(t, c)).events, {});
    // The same batch without the bad elements is stored whole.
    const ok = await batch(t, [ev(c, 1, { id: 'ok-1' }), ev(c, 2, { id: 'ok-2', metadata: { emoji: '\ud83d\ude00' } })]);
    assert.equal(ok.statusCode, 201, ok.body);
    assert.deepEqual((await usageOf(t, c)).events, { 'api.calls': 3 });
  });
});

describe('POST /usagebatch: absent, null and {} metadata are the same content', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(() => t.close());

  it('a retried batch that adds or drops an empty metadata is all duplicates', async () => {
    const c = cid('meta_same');
    const first = await batch(t, [ev(c, 1, { id: 'a' }), ev(c, 2, { id: 'b', metadata: {} }), ev(c, 3, { id: 'c', metadata: null })]);
    assert.equal(first.statusCode, 201, first.body);
    const retry = await batch(t, [ev(c, 1, { id: 'a', metadata: {} }), ev(c, 2, { id: 'b' }), ev(c, 3, { id: 'c', metadata: {} })]);
    assert.equal(retry.statusCode, 200, retry.body);
    assert.deepEqual(retry.json(), { message: 'Events captured', count: 3, inserted: 0, duplicates: 3 });
    const docs = await eventsOf(t, c);
    assert.equal(docs.length, 3);
    for (const d of docs) assert.deepEqual(d.metadata, {});
    assert.deepEqual((await usageOf(t, c)).eventCounts, { 'api.calls': 3 });
  });
});

describe('POST /usagebatch with an Idempotency-Key: the whole request is idempotent', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(() => t.close());

  const NOW = Date.parse('2026-01-12T10:30:00Z');
  const DAY = 86_400_000;
  const keyed = (key: string, payload: unknown) => batch(t, payload, { ...t.headers, 'idempotency-key': key });
  const replay = (n: number) => ({ message: 'Events captured', count: n, inserted: 0, duplicates: n });
  const conflict = (key: string) => ({
    error: `Idempotency-Key ${JSON.stringify(key)} was used with a different request body`,
    code: 'idempotency_key_conflict',
  });
  function assertReplay(res: LightMyRequestResponse, n: number): void {
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['idempotent-replayed'], 'true');
    assert.deepEqual(json(res), replay(n));
  }

  it('a retry with the same key and body (object keys in any order) is a replay: 200, nothing stored', async () => {
    const c = cid('rk_same');
    const first = await keyed('rk-same-1', [ev(c, 1), ev(c, 2, { metadata: { a: 1, b: [1, { x: 1, y: 2 }] } }), ev(c, 3)]);
    assert.equal(first.statusCode, 201, first.body);
    assert.deepEqual(json(first), { message: 'Events captured', count: 3, inserted: 3, duplicates: 0 });
    assert.equal(first.headers['idempotent-replayed'], undefined);
    const reordered =
      `[ {"value":1,"customerId":"${c}","eventType":"api.calls"},` +
      `{"metadata":{"b":[1,{"y":2,"x":1}],"a":1},"eventType":"api.calls","value":2,"customerId":"${c}"},` +
      `{"customerId":"${c}","eventType":"api.calls","value":3} ]`;
    assertReplay(await keyed('rk-same-1', reordered), 3);
    assertReplay(await keyed('rk-same-1', [ev(c, 1), ev(c, 2, { metadata: { a: 1, b: [1, { x: 1, y: 2 }] } }), ev(c, 3)]), 3);
    assert.equal((await eventsOf(t, c)).length, 3);
    assert.deepEqual((await usageOf(t, c)).eventCounts, { 'api.calls': 3 });
    assert.deepEqual((await usageOf(t, c)).events, { 'api.calls': 6 });
  });

  it('the same key with another body → 409 idempotency_key_conflict; nothing stored', async () => {
    const c = cid('rk_diff');
    const body = [ev(c, 1), ev(c, 2)];
    assert.equal((await keyed('rk-diff', body)).statusCode, 201);
    for (const other of [[ev(c, 1), ev(c, 3)], [ev(c, 2), ev(c, 1)], [ev(c, 1), ev(c, 2), ev(c, 3)], [ev(c, 1)], [ev(c, 1), ev(c, 2, { id: 'x' })]]) {
      const res = await rejected(t, 409, () => keyed('rk-diff', other));
      assert.equal(typeof res.requestId, 'string');
      delete res.requestId;
      assert.deepEqual(res, conflict('rk-diff'), JSON.stringify(other));
    }
    assert.deepEqual((await usageOf(t, c)).eventCounts, { 'api.calls': 2 });
  });

  it('keys are 1–128 printable ASCII characters, otherwise 400 before anything else; nothing stored', async () => {
    const c = cid('rk_bad');
    for (const key of ['', 'k'.repeat(129), 'tab\there', 'café']) {
      const res = await rejected(t, 400, () => keyed(key, [ev(c, 1)]));
      assert.equal(res.code, 'invalid_idempotency_key', JSON.stringify(key));
      assert.equal(res.error, 'Idempotency-Key must be 1 to 128 printable ASCII characters');
    }
    assert.equal((await rejected(t, 400, () => keyed('', 'null'))).code, 'invalid_idempotency_key');
    for (const key of ['k'.repeat(128), 'a key with spaces ~!@#$%^&*()', '7']) {
      const res = await keyed(key, [ev(c, 1)]);
      assert.equal(res.statusCode, 201, `${key}: ${res.body}`);
    }
    assert.deepEqual((await usageOf(t, c)).eventCounts, { 'api.calls': 3 });
  });

  it('a batch refused with 422 or 409 records no key: the corrected batch with that key is stored', async () => {
    const c = cid('rk_refused');
    const invalidBody = await rejected(t, 422, () => keyed('rk-422', [ev(c, 1), { eventType: 'api.calls', customerId: c }]));
    assert.equal(invalidBody.invalidCount, 1);
    const fixed = await keyed('rk-422', [ev(c, 1), ev(c, 2)]);
    assert.equal(fixed.statusCode, 201, fixed.body);

    assert.equal((await batch(t, [ev(c, 10, { id: 'taken' })])).statusCode, 201);
    const idConflict = await rejected(t, 409, () => keyed('rk-409', [ev(c, 4), ev(c, 99, { id: 'taken' })]));
    assert.equal(idConflict.code, 'event_id_conflict');
    const retried = await keyed('rk-409', [ev(c, 4)]);
    assert.equal(retried.statusCode, 201, retried.body);
    assert.deepEqual((await usageOf(t, c)).events, { 'api.calls': 17 });
    assert.deepEqual((await usageOf(t, c)).eventCounts, { 'api.calls': 4 });
  });

  it('per-event ids keep working inside keyed batches, across keys', async () => {
    const c = cid('rk_ids');
    assert.equal((await keyed('rk-ids-1', [ev(c, 1, { id: 'a' }), ev(c, 2, { id: 'b' })])).statusCode, 201);
    const other = await keyed('rk-ids-2', [ev(c, 1, { id: 'a' }), ev(c, 2, { id: 'b' })]);
    assert.equal(other.statusCode, 200, other.body);
    assert.equal(other.headers['idempotent-replayed'], undefined, 'a new key is not a replay, its events are duplicates');
    assert.deepEqual(json(other), { message: 'Events captured', count: 2, inserted: 0, duplicates: 2 });
    const mixed = await keyed('rk-ids-3', [ev(c, 1, { id: 'a' }), ev(c, 3, { id: 'c' })]);
    assert.deepEqual([mixed.statusCode, json(mixed)], [201, { message: 'Events captured', count: 2, inserted: 1, duplicates: 1 }]);
    assertReplay(await keyed('rk-ids-3', [ev(c, 1, { id: 'a' }), ev(c, 3, { id: 'c' })]), 2);
    const conflicting = await rejected(t, 409, () => keyed('rk-ids-4', [ev(c, 9, { id: 'a' })]));
    assert.equal(conflicting.code, 'event_id_conflict');
    assert.deepEqual((await usageOf(t, c)).events, { 'api.calls': 6 });
  });

  it('concurrent requests with the same key (one group commit): exactly one stores', async () => {
    const c = cid('rk_conc');
    const body = [ev(c, 1), ev(c, 2)];
    const same = await Promise.all(Array.from({ length: 10 }, () => keyed('rk-conc', body)));
    const stored = same.filter((r) => r.statusCode === 201);
    assert.equal(stored.length, 1, same.map((r) => r.statusCode).join());
    for (const r of same.filter((x) => x.statusCode !== 201)) assertReplay(r, 2);
    assert.deepEqual((await usageOf(t, c)).eventCounts, { 'api.calls': 2 });

    const [a, b] = await Promise.all([keyed('rk-conc-2', [ev(c, 10)]), keyed('rk-conc-2', [ev(c, 20)])]);
    assert.deepEqual([a!.statusCode, b!.statusCode].sort(), [201, 409]);
    const loser = a!.statusCode === 409 ? a! : b!;
    assert.equal(json(loser).code, 'idempotency_key_conflict');
    const usage = await usageOf(t, c);
    assert.equal(usage.eventCounts['api.calls'], 3);
    assert.ok([13, 23].includes(usage.events['api.calls']!), String(usage.events['api.calls']));
  });

  it('a retry that no longer passes validation (its timestamps aged) is still answered by its key', async () => {
    const c = cid('rk_aged');
    const ts = new Date(NOW - 35 * DAY + 60_000).toISOString();
    const body = [ev(c, 1, { timestamp: ts })];
    assert.equal((await keyed('rk-aged', body)).statusCode, 201);
    t.clock.advance(5 * 60_000);
    try {
      assertReplay(await keyed('rk-aged', body), 1);
      const other = await rejected(t, 409, () => keyed('rk-aged', [ev(c, 2, { timestamp: ts })]));
      assert.equal(other.code, 'idempotency_key_conflict');
      const fresh = await rejected(t, 422, () => keyed('rk-aged-new', body));
      assert.match(JSON.stringify(fresh.validationErrors), /older than the maximum event age/);
    } finally {
      t.clock.set(NOW);
    }
    const res = await t.app.inject({ method: 'GET', url: `/events?customerId=${c}`, headers: t.headers });
    assert.equal((res.json() as unknown[]).length, 1);
  });

  it('keys are kept for maxEventAge (35 days), then deleted by the maintenance run', async () => {
    const { applyRequestKeyRetention } = await import('../../src/aggregate/retention.js');
    const c = cid('rk_kept');
    const body = [ev(c, 1)];
    assert.equal((await keyed('rk-kept', body)).statusCode, 201);
    try {
      t.clock.advance(35 * DAY);
      const early = await applyRequestKeyRetention(t.ctx);
      assert.equal(early.cutoff, NOW);
      assertReplay(await keyed('rk-kept', body), 1);
      t.clock.advance(1);
      const late = await applyRequestKeyRetention(t.ctx);
      assert.ok(late.deleted >= 1, String(late.deleted));
      assert.equal(await t.ctx.store.requestKeyHash('rk-kept'), undefined);
      const again = await keyed('rk-kept', body);
      assert.equal(again.statusCode, 201, again.body);
      assert.equal(again.headers['idempotent-replayed'], undefined);
      assert.notEqual(await t.ctx.store.requestKeyHash('rk-kept'), undefined, 'recorded anew');
    } finally {
      t.clock.set(NOW);
    }
    assert.equal((await eventsOf(t, c)).length, 2);
  });
});

// Two processes share one PostgreSQL database: each has its own store and group committer, so the
// same key can be claimed by two transactions at once. The unique key decides; the other waits for
// the first to commit and then answers as a replay (or a conflict for another body).
if (TEST_STORE === 'postgres') {
  describe('POST /usagebatch Idempotency-Key across two stores on one PostgreSQL database', () => {
    const schema = `rk_two_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    let one: PostgresStore;
    let two: PostgresStore;
    before(async () => {
      const url = process.env.TEST_DATABASE_URL;
      assert.ok(url, 'the PostgreSQL run sets TEST_DATABASE_URL');
      const opts = { url, schema, poolSize: 2, partitionsFrom: Date.UTC(2026, 0, 1), partitionsTo: Date.UTC(2026, 2, 1) };
      one = await PostgresStore.open(opts);
      two = await PostgresStore.open(opts);
    });
    after(async () => {
      await one.close();
      await two.close();
    });

    const NOW = Date.parse('2026-01-12T10:30:00Z');
    const unit = (key: string, body: Array<{ value: number }>): AppendUnit => ({
      events: body.map((b) => ({ customerId: 'two_stores', eventType: 'api.calls', value: b.value, metadata: null, ts: NOW, tsExplicit: false, id: null })),
      receivedAt: NOW,
      requestKey: { key, hash: requestBodyHash(body), createdAt: NOW },
    });

    it('the same key and body committed by both at once is stored once', async () => {
      const body = [{ value: 1 }, { value: 2 }];
      const outcomes = (await Promise.all([one.appendEvents([unit('two-same', body)], ['daily']), two.appendEvents([unit('two-same', body)], ['daily'])])).flat();
      const summary = outcomes.map((o) => (o.ok ? ('replayed' in o ? 'replayed' : `inserted ${o.inserted}`) : 'conflict')).sort();
      assert.deepEqual(summary, ['inserted 2', 'replayed']);
      const rows = await one.readRollups('two_stores', NOW - 86_400_000, NOW + 86_400_000);
      assert.equal(rows.reduce((n, r) => n + r.count, 0), 2);
    });

    it('the same key with two bodies at once: one is stored, the other is a conflict', async () => {
      const outcomes = (await Promise.all([
        one.appendEvents([unit('two-diff', [{ value: 10 }])], ['daily']),
        two.appendEvents([unit('two-diff', [{ value: 20 }])], ['daily']),
      ])).flat();
      assert.deepEqual(outcomes.map((o) => (o.ok ? 'stored' : 'requestKeyConflict' in o ? 'key conflict' : 'other')).sort(), ['key conflict', 'stored']);
      const rows = await two.readRollups('two_stores', NOW - 86_400_000, NOW + 86_400_000);
      assert.equal(rows.reduce((n, r) => n + r.count, 0), 3);
    });
  });
}
