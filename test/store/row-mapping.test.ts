// Every record the port returns reads back exactly as it was written, through the one row mapping both
// adapters share: numbers stay numbers (PostgreSQL sends bigint as text), booleans stay booleans (SQLite
// stores 0/1), sums stay exact decimals, and a NULL column stays null. Runs on SQLite and PostgreSQL.
// store-contract: sqlite, postgres
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseFixed } from '../../src/domain/decimal.js';
import { goneReason, type AttemptRecord, type OutboxMessage } from '../../src/domain/deliveries.js';
import type { NewEvent } from '../../src/domain/event-rules.js';
import type { AggregationRecord, ApiKeyRecord, CloseDecider } from '../../src/domain/records.js';
import type { Store } from '../../src/store/store.js';
import { withTempStore } from '../helpers/app.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 2, 9, 14, 0, 0);

const withStore = (fn: (store: Store) => Promise<void>): Promise<void> => withTempStore('meterhook-rows-', fn);

const ev = (customerId: string, value: number, ts: number, id: string | null, metadata: string | null): NewEvent => ({
  customerId,
  eventType: 'api.calls',
  value,
  metadata,
  ts,
  tsExplicit: true,
  id,
});

describe('row mapping: records read back exactly as written', () => {
  it('events, hour states, aggregations, messages, deliveries, attempts, endpoints and API keys', async () => {
    await withStore(async (store) => {
      // Events: float values, null and non-null id and metadata.
      const out = await store.appendEvents(
        [{ receivedAt: T0 + 5, events: [ev('cust', 0.1, T0 + 1000, null, null), ev('cust', 2.5, T0 + 2000, 'e2', '{"k":"v"}')] }],
        ['hourly'],
      );
      const first = out[0]!;
      assert.ok(first.ok && first.results.length === 2, JSON.stringify(first));
      const [s1, s2] = first.results.map((r) => r.seq);
      const events = await store.listEvents({ customerId: 'cust', limit: 10 });
      const common = { customerId: 'cust', eventType: 'api.calls', receivedAt: T0 + 5 };
      assert.deepStrictEqual(events, [
        { seq: s2, ...common, id: 'e2', ts: T0 + 2000, value: 2.5, metadata: '{"k":"v"}' },
        { seq: s1, ...common, id: null, ts: T0 + 1000, value: 0.1, metadata: null },
      ]);

      // Hour state: the sum exact (0.1 + 2.5 is 2.6, not 2.6000000000000001), the rest numbers.
      assert.deepStrictEqual(await store.readRollups('cust', T0, T0 + HOUR), [
        {
          eventType: 'api.calls',
          hour: T0,
          count: 2,
          sum: parseFixed('2.6'),
          min: 0.1,
          max: 2.5,
          firstTs: T0 + 1000,
          firstSeq: s1,
          firstValue: 0.1,
          lastTs: T0 + 2000,
          lastSeq: s2,
          lastValue: 2.5,
        },
      ]);

      // An aggregation, its message and one delivery, written by a close.
      await store.syncEndpoints([{ id: 'ep1', url: 'http://127.0.0.1:9/hook' }]);
      const now = T0 + 2 * HOUR;
      const agg: AggregationRecord = {
        id: 'agg_1',
        customerId: 'cust',
        period: 'hourly',
        periodKey: '2026030914',
        periodStart: T0,
        periodEnd: T0 + HOUR - 1,
        events: { 'api.calls': 2.6 },
        eventsDecimal: { 'api.calls': '2.6' },
        eventCounts: { 'api.calls': 2 },
        final: true,
        revision: 1,
        computedAt: now,
        finalizedAt: now,
        webhookStatus: { delivered: false, attempts: 0 },
      };
      const msg: OutboxMessage = {
        id: 'msg_1',
        aggregationId: 'agg_1',
        revision: 1,
        type: 'aggregation.completed',
        customerId: 'cust',
        period: 'hourly',
        createdAt: now,
        body: '{"x":1}',
      };
      const deliveries = [{ id: 'dlv_1', endpointId: 'ep1', deadlineAt: now + HOUR }];
      const decide: CloseDecider = () => ({ aggregation: agg, message: msg, deliveries });
      const marks = await store.listDueMarks('hourly', T0 + HOUR, 10);
      assert.equal(marks.length, 1);
      await store.closePeriods(marks, decide);
      assert.deepStrictEqual(await store.getAggregation('cust', 'hourly', T0), agg);
      assert.deepStrictEqual(await store.listAggregations({ customerId: 'cust', final: true, limit: 10 }), [agg]);
      assert.deepStrictEqual(await store.listAggregations({ customerId: 'cust', final: false, limit: 10 }), []);
      assert.deepStrictEqual(await store.listMessages('agg_1'), [msg]);
      const pending = {
        id: 'dlv_1',
        messageId: 'msg_1',
        endpointId: 'ep1',
        aggregationId: 'agg_1',
        status: 'pending',
        attempts: 0,
        nextAttemptAt: now,
        leaseOwner: null,
        leaseUntil: null,
        createdAt: now,
        updatedAt: now,
        deadlineAt: now + HOUR,
        lastStatusCode: null,
        lastError: null,
        deliveredAt: null,
        dryRun: false,
      };
      assert.deepStrictEqual(await store.listDeliveries({ limit: 10 }), [pending]);

      // A claimed delivery carries its message; an attempt answered 410 disables the endpoint.
      const claimed = await store.claimDelivery('dlv_1', { now: now + 10, leaseMs: 30_000, owner: 'w1' });
      assert.deepStrictEqual(claimed, {
        ...pending,
        status: 'sending',
        leaseOwner: 'w1',
        leaseUntil: now + 30_010,
        updatedAt: now + 10,
        message: msg,
        previousStatus: 'pending',
      });
      const attempt: AttemptRecord = {
        deliveryId: 'dlv_1',
        attempt: 1,
        startedAt: now + 10,
        durationMs: 7,
        statusCode: 410,
        errorClass: 'http',
        error: 'HTTP 410',
        responseBody: null,
        webhookTimestamp: Math.floor((now + 10) / 1000),
        dryRun: false,
        manual: true,
      };
      const at = now + 20;
      const gone = { status: 'cancelled', nextAttemptAt: null, deliveredAt: null, endpoint: 'gone' } as const;
      assert.equal(await store.recordAttempt(attempt, 'w1', gone, at), true);
      const got = await store.getDelivery('dlv_1');
      assert.deepStrictEqual(got, {
        delivery: {
          ...pending,
          status: 'cancelled',
          attempts: 1,
          nextAttemptAt: null,
          updatedAt: at,
          lastStatusCode: 410,
          lastError: 'HTTP 410',
        },
        attempts: [attempt],
        message: msg,
      });
      assert.deepStrictEqual(await store.listEndpoints(), [
        {
          id: 'ep1',
          url: 'http://127.0.0.1:9/hook',
          disabledAt: at,
          disabledReason: goneReason(at),
          lastSuccessAt: null,
          lastFailureAt: at,
          failureStreak: 1,
        },
      ]);

      // API keys: revoked_at null, then a number; scopes as a list in canonical order; no restriction read as
      // nulls, a customer, an expiry and a fractional rate read back exactly; every insert and revocation moves
      // the key version.
      const key: ApiKeyRecord = {
        id: 'key_1',
        hash: 'h'.repeat(64),
        prefix: 'mh_ab',
        name: 'ci',
        scopes: ['ingest', 'read'],
        createdAt: T0,
        revokedAt: null,
        customerId: null,
        expiresAt: null,
        rateLimit: null,
      };
      const v0 = await store.keyVersion();
      await store.insertApiKey(key);
      assert.deepStrictEqual(await store.listApiKeys(), [key]);
      assert.equal(await store.revokeApiKey('key_1', at), true);
      assert.deepStrictEqual(await store.listApiKeys(), [{ ...key, revokedAt: at }]);
      assert.equal(await store.revokeApiKey('key_1', at), false);
      const portal: ApiKeyRecord = {
        ...key,
        id: 'key_2',
        hash: 'p'.repeat(64),
        customerId: 'cust_ü',
        expiresAt: T0 + 86_400_000,
        rateLimit: { requestsPerSecond: 0.5, burst: 3 },
      };
      await store.insertApiKey(portal);
      assert.deepStrictEqual((await store.listApiKeys())[1], portal);
      assert.equal(await store.keyVersion(), v0 + 3);
    });
  });

  it('an append of no units, or of units without events, answers each unit and stores nothing', async () => {
    await withStore(async (store) => {
      assert.deepStrictEqual(await store.appendEvents([], ['hourly']), []);
      const out = await store.appendEvents(
        [
          { receivedAt: T0, events: [] },
          { receivedAt: T0, events: [ev('cust', 1, T0 + 1000, 'only', null)] },
          { receivedAt: T0, events: [] },
        ],
        ['hourly'],
      );
      assert.equal(out.length, 3);
      for (const i of [0, 2]) assert.deepStrictEqual(out[i], { ok: true, results: [], inserted: 0, duplicates: 0 });
      const one = out[1]!;
      assert.ok(one.ok && one.inserted === 1 && one.results.length === 1 && !one.results[0]!.duplicate, JSON.stringify(one));
      assert.deepStrictEqual(
        (await store.listEvents({ customerId: 'cust', limit: 10 })).map((e) => e.id),
        ['only'],
      );
    });
  });
});
