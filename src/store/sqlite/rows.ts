// Owns the mapping between SQLite rows and the store port's records.
// Must never hold business rules: it only renames and (de)serialises columns.

import { numbersOf } from '../../domain/aggregation.js';
import { parseFixed } from '../../domain/decimal.js';
import type { Period } from '../../domain/periods.js';
import type { AggregationRecord, ApiKeyRecord, RollupRow, StoredEvent } from '../../domain/records.js';
import type { OutboxMessage } from '../../domain/deliveries.js';

export interface AggregationRow {
  id: string;
  customer_id: string;
  period: string;
  period_key: string;
  period_start: number;
  period_end: number;
  events: string;
  event_counts: string;
  final: number;
  revision: number;
  computed_at: number;
  finalized_at: number | null;
  webhook_status: string;
}

export const toAggregation = (r: AggregationRow): AggregationRecord => {
  const eventsDecimal = JSON.parse(r.events) as Record<string, string>;
  return {
  id: r.id,
  customerId: r.customer_id,
  period: r.period as Period,
  periodKey: r.period_key,
  periodStart: r.period_start,
  periodEnd: r.period_end,
  events: numbersOf(eventsDecimal),
  eventsDecimal,
  eventCounts: JSON.parse(r.event_counts),
  final: r.final === 1,
  revision: r.revision,
  computedAt: r.computed_at,
  finalizedAt: r.finalized_at,
  webhookStatus: JSON.parse(r.webhook_status),
  };
};

export const aggregationParams = (a: AggregationRecord) => [
  a.id, a.customerId, a.period, a.periodKey, a.periodStart, a.periodEnd,
  JSON.stringify(a.eventsDecimal), JSON.stringify(a.eventCounts), a.final ? 1 : 0, a.revision,
  a.computedAt, a.finalizedAt, JSON.stringify(a.webhookStatus),
];

export const toEvent = (r: {
  seq: number; customer_id: string; event_type: string; event_id: string | null; ts: number;
  received_at: number; value: number; metadata: string | null;
}): StoredEvent => ({
  seq: r.seq,
  customerId: r.customer_id,
  eventType: r.event_type,
  id: r.event_id,
  ts: r.ts,
  receivedAt: r.received_at,
  value: r.value,
  metadata: r.metadata,
});

export const toRollup = (r: {
  event_type: string; hour: number; count: number; sum: string; vmin: number; vmax: number;
  first_ts: number; first_seq: number; first_value: number; last_ts: number; last_seq: number; last_value: number;
}): RollupRow => ({
  eventType: r.event_type,
  hour: r.hour,
  count: r.count,
  sum: parseFixed(r.sum),
  min: r.vmin,
  max: r.vmax,
  firstTs: r.first_ts,
  firstSeq: r.first_seq,
  firstValue: r.first_value,
  lastTs: r.last_ts,
  lastSeq: r.last_seq,
  lastValue: r.last_value,
});

export const toMessage = (r: {
  id: string; aggregation_id: string; revision: number; type: string; customer_id: string;
  period: string; created_at: number; body: string;
}): OutboxMessage => ({
  id: r.id,
  aggregationId: r.aggregation_id,
  revision: r.revision,
  type: r.type as OutboxMessage['type'],
  customerId: r.customer_id,
  period: r.period as Period,
  createdAt: r.created_at,
  body: r.body,
});

export const toApiKey = (r: {
  id: string; hash: string; prefix: string; name: string; created_at: number; revoked_at: number | null;
}): ApiKeyRecord => ({
  id: r.id,
  hash: r.hash,
  prefix: r.prefix,
  name: r.name,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});
