// Owns the mapping between PostgreSQL rows and the store port's records (bigint columns arrive as
// strings from the driver and become numbers here). Must never hold business rules.

import { numbersOf } from '../../domain/aggregation.js';
import { parseFixed } from '../../domain/decimal.js';
import type { Period } from '../../domain/periods.js';
import type { AggregationRecord, ApiKeyRecord, RollupRow, StoredEvent } from '../../domain/records.js';
import type { OutboxMessage } from '../../domain/deliveries.js';

type Row = Record<string, unknown>;
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export const toPgMessage = (r: Row): OutboxMessage => ({
  id: r.id as string,
  aggregationId: r.aggregation_id as string,
  revision: num(r.revision),
  type: r.type as OutboxMessage['type'],
  customerId: r.customer_id as string,
  period: r.period as Period,
  createdAt: num(r.created_at),
  body: r.body as string,
});

export const toPgAggregation = (r: Row): AggregationRecord => {
  const eventsDecimal = JSON.parse(r.events as string) as Record<string, string>;
  return {
  id: r.id as string,
  customerId: r.customer_id as string,
  period: r.period as Period,
  periodKey: r.period_key as string,
  periodStart: num(r.period_start),
  periodEnd: num(r.period_end),
  events: numbersOf(eventsDecimal),
  eventsDecimal,
  eventCounts: JSON.parse(r.event_counts as string),
  final: r.final === true,
  revision: num(r.revision),
  computedAt: num(r.computed_at),
  finalizedAt: numOrNull(r.finalized_at),
  webhookStatus: JSON.parse(r.webhook_status as string),
  };
};

export const toPgEvent = (r: Row): StoredEvent => ({
  seq: num(r.seq),
  customerId: r.customer_id as string,
  eventType: r.event_type as string,
  id: (r.event_id as string | null) ?? null,
  ts: num(r.ts),
  receivedAt: num(r.received_at),
  value: num(r.value),
  metadata: (r.metadata as string | null) ?? null,
});

export const toPgRollup = (r: Row): RollupRow => ({
  eventType: r.event_type as string,
  hour: num(r.hour),
  count: num(r.count),
  // numeric arrives as text from the driver.
  sum: parseFixed(String(r.sum)),
  min: num(r.vmin),
  max: num(r.vmax),
  firstTs: num(r.first_ts),
  firstSeq: num(r.first_seq),
  firstValue: num(r.first_value),
  lastTs: num(r.last_ts),
  lastSeq: num(r.last_seq),
  lastValue: num(r.last_value),
});

export const toPgApiKey = (r: Row): ApiKeyRecord => ({
  id: r.id as string,
  hash: r.hash as string,
  prefix: r.prefix as string,
  name: r.name as string,
  createdAt: num(r.created_at),
  revokedAt: numOrNull(r.revoked_at),
});

/** Column arrays for an unnest() upsert of aggregation records. */
export function aggregationColumns(list: AggregationRecord[]): unknown[] {
  return [
    list.map((a) => a.id), list.map((a) => a.customerId), list.map((a) => a.period), list.map((a) => a.periodKey),
    list.map((a) => a.periodStart), list.map((a) => a.periodEnd), list.map((a) => JSON.stringify(a.eventsDecimal)),
    list.map((a) => JSON.stringify(a.eventCounts)), list.map((a) => a.final), list.map((a) => a.revision),
    list.map((a) => a.computedAt), list.map((a) => a.finalizedAt), list.map((a) => JSON.stringify(a.webhookStatus)),
  ];
}

export const UPSERT_AGGREGATIONS = `
  INSERT INTO aggregations AS a (id, customer_id, period, period_key, period_start, period_end, events, event_counts,
      final, revision, computed_at, finalized_at, webhook_status)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[],
      $9::boolean[], $10::int[], $11::bigint[], $12::bigint[], $13::text[])
  ON CONFLICT (customer_id, period, period_start) DO UPDATE SET
    events = excluded.events, event_counts = excluded.event_counts, final = excluded.final, revision = excluded.revision,
    computed_at = excluded.computed_at, finalized_at = excluded.finalized_at, webhook_status = excluded.webhook_status`;
