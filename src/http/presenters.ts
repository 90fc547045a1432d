// Owns the JSON shape of stored records as clients see them (reference field names first).
// Must never compute business numbers: it only formats what services return.

import { compatAggregationId } from '../domain/aggregation.js';
import { eventIdFromSeq } from '../domain/ids.js';
import { displayEnd, eventPeriodKeys } from '../domain/periods.js';
import type { AggregationRecord, StoredEvent } from '../store/store.js';

const iso = (ms: number): string => new Date(ms).toISOString();

export function presentEvent(e: StoredEvent) {
  return {
    eventId: eventIdFromSeq(e.seq),
    id: e.id,
    customerId: e.customerId,
    eventType: e.eventType,
    value: e.value,
    metadata: e.metadata === null ? {} : (JSON.parse(e.metadata) as Record<string, unknown>),
    timestamp: iso(e.ts),
    receivedAt: iso(e.receivedAt),
    ...eventPeriodKeys(e.ts),
  };
}

export function presentAggregation(a: AggregationRecord) {
  return {
    _id: compatAggregationId(a),
    id: a.id,
    customerId: a.customerId,
    period: a.period,
    periodKey: a.periodKey,
    periodStart: iso(a.periodStart),
    periodEnd: displayEnd({ start: a.periodStart, end: a.periodEnd }),
    timestamp: iso(a.computedAt),
    events: a.events,
    eventCounts: a.eventCounts,
    final: a.final,
    revision: a.revision,
    finalizedAt: a.finalizedAt === null ? null : iso(a.finalizedAt),
    webhookStatus: a.webhookStatus,
  };
}
