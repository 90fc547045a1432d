// POST /usagebatch: lone UTF-16 surrogates refused whole, absent/null/{} metadata as the same content,
// and the Idempotency-Key that makes a whole request idempotent, on both stores.
// store-contract: sqlite, postgres

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { buildTestApp, TEST_STORE, type TestApp } from '../helpers/app.js';
import { PostgresStore } from '../../src/store/postgres/pg-store.js';
import { requestBodyHash } from '../../src/domain/request-keys.js';
import type { AppendUnit } from '../../src/store/store.js';
import { cid, json, batch, eventsOf, usageOf, rejected, ev } from '../helpers/capture-batch.js';

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
        ev(c, 1, { metadata: { nested: { '\ud801': 1 } } }),
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
    for (const other of [
      [ev(c, 1), ev(c, 3)],
      [ev(c, 2), ev(c, 1)],
      [ev(c, 1), ev(c, 2), ev(c, 3)],
      [ev(c, 1)],
      [ev(c, 1), ev(c, 2, { id: 'x' })],
    ]) {
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
      events: body.map((b) => ({
        customerId: 'two_stores',
        eventType: 'api.calls',
        value: b.value,
        metadata: null,
        ts: NOW,
        tsExplicit: false,
        id: null,
      })),
      receivedAt: NOW,
      requestKey: { key, hash: requestBodyHash(body), createdAt: NOW },
    });

    it('the same key and body committed by both at once is stored once', async () => {
      const body = [{ value: 1 }, { value: 2 }];
      const outcomes = (
        await Promise.all([one.appendEvents([unit('two-same', body)], ['daily']), two.appendEvents([unit('two-same', body)], ['daily'])])
      ).flat();
      const summary = outcomes.map((o) => (o.ok ? ('replayed' in o ? 'replayed' : `inserted ${o.inserted}`) : 'conflict')).sort();
      assert.deepEqual(summary, ['inserted 2', 'replayed']);
      const rows = await one.readRollups('two_stores', NOW - 86_400_000, NOW + 86_400_000);
      assert.equal(
        rows.reduce((n, r) => n + r.count, 0),
        2,
      );
    });

    it('the same key with two bodies at once: one is stored, the other is a conflict', async () => {
      const outcomes = (
        await Promise.all([
          one.appendEvents([unit('two-diff', [{ value: 10 }])], ['daily']),
          two.appendEvents([unit('two-diff', [{ value: 20 }])], ['daily']),
        ])
      ).flat();
      assert.deepEqual(outcomes.map((o) => (o.ok ? 'stored' : 'requestKeyConflict' in o ? 'key conflict' : 'other')).sort(), [
        'key conflict',
        'stored',
      ]);
      const rows = await two.readRollups('two_stores', NOW - 86_400_000, NOW + 86_400_000);
      assert.equal(
        rows.reduce((n, r) => n + r.count, 0),
        3,
      );
    });
  });
}
