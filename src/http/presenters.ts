// Owns the JSON shape of stored records as clients see them (reference field names first).
// Must never compute business numbers: it only formats what services return.

import { compatAggregationId } from '../domain/aggregation.js';
import { eventIdFromSeq } from '../domain/ids.js';
import { displayEnd, eventPeriodKeys } from '../domain/periods.js';
import type { AggregationRecord, StoredEvent, WebhookStatus } from '../domain/records.js';
import type { AttemptRecord, DeliveryRecord, OutboxMessage } from '../domain/deliveries.js';

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

export function presentAggregation(a: AggregationRecord, webhookStatus: WebhookStatus = a.webhookStatus) {
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
    eventsDecimal: a.eventsDecimal,
    ...(a.groups ? { groups: a.groups } : {}),
    final: a.final,
    revision: a.revision,
    finalizedAt: a.finalizedAt === null ? null : iso(a.finalizedAt),
    webhookStatus,
  };
}

const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

export function presentDelivery(d: DeliveryRecord) {
  return {
    id: d.id,
    messageId: d.messageId,
    endpointId: d.endpointId,
    aggregationId: d.aggregationId,
    status: d.status,
    attempts: d.attempts,
    nextAttemptAt: d.status === 'pending' || d.status === 'retry_scheduled' ? isoOrNull(d.nextAttemptAt) : null,
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
    deadlineAt: iso(d.deadlineAt),
    lastStatusCode: d.lastStatusCode,
    lastError: d.lastError,
    deliveredAt: isoOrNull(d.deliveredAt),
    dryRun: d.dryRun,
  };
}

export function presentAttempt(a: AttemptRecord) {
  return {
    attempt: a.attempt,
    startedAt: iso(a.startedAt),
    durationMs: a.durationMs,
    statusCode: a.statusCode,
    errorClass: a.errorClass,
    error: a.error,
    responseBody: a.responseBody,
    webhookTimestamp: a.webhookTimestamp,
    dryRun: a.dryRun,
    manual: a.manual,
  };
}

export function presentMessage(m: OutboxMessage) {
  return {
    id: m.id,
    type: m.type,
    aggregationId: m.aggregationId,
    revision: m.revision,
    createdAt: iso(m.createdAt),
    payload: JSON.parse(m.body) as unknown,
  };
}
