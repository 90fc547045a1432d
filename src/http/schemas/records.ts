// Owns the wire schemas of the records the API returns (events, aggregations, usage, deliveries,
// endpoints, capture and trigger answers), in the field order the presenters build them: the
// serializer writes fields in schema order and drops fields a schema does not name. The SDK's
// types (src/client/types.ts) are checked against these by test/client/wire-contract.test.ts.
// Must never import the web framework, nor name a field the presenters do not send.

import Type from 'typebox';
import { PERIODS } from '../../domain/periods.js';
import { MapOf, Nullable } from './common.js';

const DELIVERY_STATUS_VALUES = ['pending', 'sending', 'succeeded', 'retry_scheduled', 'failed', 'cancelled', 'held'] as const;

const Instant = (description?: string) => Type.String(description ? { description } : {});
const Period = Type.Enum([...PERIODS]);
const Totals = MapOf(Type.Number(), 'Each total as the nearest JSON number, by event type');
const Counts = MapOf(Type.Integer(), 'Events counted, by event type');
const Decimals = MapOf(Type.String(), 'Each total as exact decimal text (e.g. "0.3"): bill from this');

export const CaptureResult = Type.Object({
  message: Type.String(),
  eventType: Type.String(),
  customerId: Type.String(),
  eventId: Type.String(),
  id: Type.Union([Type.String(), Type.Null()]),
  timestamp: Type.Optional(Type.String()),
  duplicate: Type.Boolean(),
});
export const BatchResult = Type.Object({
  message: Type.String(),
  count: Type.Integer(),
  inserted: Type.Integer(),
  duplicates: Type.Integer(),
});

export const StoredEvent = Type.Object({
  eventId: Type.String(),
  id: Nullable(Type.String(), 'The idempotency id, when the event was sent with one'),
  customerId: Type.String(),
  eventType: Type.String(),
  value: Type.Number(),
  metadata: MapOf(Type.Unknown(), 'As sent; {} when none'),
  timestamp: Instant('Event time'),
  receivedAt: Instant(),
  minute: Type.String({ description: 'YYYYMMDDHHmm of the event time (UTC)' }),
  hour: Type.String(),
  day: Type.String(),
  week: Type.String({ description: 'ISO week-year and week, GGGGWW' }),
  month: Type.String(),
  year: Type.String(),
});

export const GroupTotal = Type.Object({
  dimensions: MapOf(
    Nullable(Type.String()),
    'Each groupBy key and its value (null: missing, null or not a scalar); {} for the overflow group',
  ),
  value: Type.Number({ description: "The group's value under the meter's operator (nearest double)" }),
  valueDecimal: Type.String({ description: 'The exact value as canonical decimal text' }),
  count: Type.Integer({ description: 'Events in the group' }),
  overflow: Type.Optional(
    Type.Literal(true, { description: 'The overflow group: groups first seen after their hour held maxGroupsPerHour groups' }),
  ),
});

/** Present only when a meter with groupBy has data: documents of other meters are unchanged. */
export const Groups = Type.Optional(
  MapOf(Type.Array(GroupTotal), 'Per-group totals of each meter with groupBy, in a deterministic order; the overflow group last'),
);

export const WebhookStatus = Type.Object({
  delivered: Type.Boolean(),
  attempts: Type.Integer(),
  deliveredAt: Type.Optional(Type.String()),
  lastError: Type.Optional(Type.String()),
  dryRun: Type.Optional(Type.Boolean()),
});

export const Aggregation = Type.Object({
  _id: Type.String({ description: '<customerId>_<period>_<periodKey>' }),
  id: Type.String(),
  customerId: Type.String(),
  period: Period,
  periodKey: Type.String(),
  periodStart: Instant(),
  periodEnd: Instant('Last millisecond of the period (…59.999Z)'),
  timestamp: Instant('When the numbers were computed'),
  events: Totals,
  eventCounts: Counts,
  eventsDecimal: Decimals,
  groups: Groups,
  final: Type.Boolean(),
  revision: Type.Integer(),
  finalizedAt: Nullable(Type.String()),
  webhookStatus: WebhookStatus,
});

export const Usage = Type.Object({
  customerId: Type.String(),
  period: Period,
  periodKey: Type.String(),
  periodStart: Instant(),
  periodEnd: Instant(),
  final: Type.Boolean({ description: 'The period is closed and no late event changed it since' }),
  events: Totals,
  eventsDecimal: Decimals,
  eventCounts: Counts,
  groups: Groups,
});

export const TriggerNothing = Type.Object(
  {
    message: Type.String(),
    jobsQueued: Type.Integer(),
    finalized: Type.Integer(),
    provisional: Type.Integer(),
  },
  { description: 'No events to aggregate' },
);
export const TriggerQueued = Type.Object(
  {
    message: Type.String(),
    jobsCreated: Type.Integer(),
    jobsUpdated: Type.Integer(),
    jobsQueued: Type.Integer(),
    customersFound: Type.Integer(),
    periodsConfigured: Type.Integer(),
    eventsScanned: Type.Integer(),
    finalized: Type.Integer(),
    provisional: Type.Integer(),
  },
  { description: 'Done before the answer: due periods finalized, open ones computed' },
);

const DeliveryFields = {
  id: Type.String(),
  messageId: Type.String(),
  endpointId: Type.String(),
  aggregationId: Type.String(),
  status: Type.Enum([...DELIVERY_STATUS_VALUES]),
  attempts: Type.Integer(),
  nextAttemptAt: Nullable(Type.String()),
  createdAt: Instant(),
  updatedAt: Instant(),
  deadlineAt: Instant(),
  lastStatusCode: Nullable(Type.Integer()),
  lastError: Nullable(Type.String()),
  deliveredAt: Nullable(Type.String()),
  dryRun: Type.Boolean(),
};
export const Delivery = Type.Object(DeliveryFields);

export const DeliveryAttempt = Type.Object({
  attempt: Type.Integer(),
  startedAt: Instant(),
  durationMs: Type.Number(),
  statusCode: Nullable(Type.Integer()),
  errorClass: Nullable(Type.String()),
  error: Nullable(Type.String()),
  responseBody: Nullable(Type.String()),
  webhookTimestamp: Type.Integer({ description: 'Unix seconds the attempt was signed with' }),
  dryRun: Type.Boolean(),
  manual: Type.Boolean(),
});

export const OutboxMessage = Type.Object({
  id: Type.String(),
  type: Type.String(),
  aggregationId: Type.String(),
  revision: Type.Integer(),
  createdAt: Instant(),
  payload: Type.Unknown({ description: 'The exact payload every attempt signs and sends' }),
});

// `attempts` keeps its place in the delivery's fields: the list replaces the count.
export const DeliveryDetail = Type.Object({
  ...DeliveryFields,
  attempts: Type.Array(DeliveryAttempt),
  message: OutboxMessage,
});

export const DeliveryRetryResult = Type.Object({
  delivery: Delivery,
  attempt: Type.Object({
    statusCode: Nullable(Type.Integer()),
    errorClass: Nullable(Type.String()),
    error: Nullable(Type.String()),
    durationMs: Type.Number(),
    dryRun: Type.Boolean(),
  }),
});

export const RecoverResult = Type.Object({ requeued: Type.Integer(), since: Instant() });

export const Endpoint = Type.Object({
  id: Type.String(),
  url: Type.String(),
  status: Type.Enum(['active', 'disabled']),
  disabledReason: Nullable(Type.String()),
  disabledAt: Nullable(Type.String()),
  lastSuccessAt: Nullable(Type.String()),
  lastFailureAt: Nullable(Type.String()),
  failureStreak: Type.Integer(),
  events: Type.Array(Type.String(), { description: 'Message types sent to it: aggregation.completed, aggregation.updated' }),
  periods: Nullable(Type.Array(Period), 'Periods sent to it; null means every configured period'),
  legacyHeaders: Type.Boolean(),
  timeoutMs: Type.Number(),
  secretSource: Type.String({ description: 'inline or env' }),
  secretFormat: Type.Enum(['whsec', 'plain'], {
    description: 'whsec: a whsec_<base64> secret, used by Standard Webhooks receivers as configured; plain: any other secret',
  }),
  secretFingerprint: Type.String({
    pattern: '^sha256:[0-9a-f]{16}$',
    description: 'sha256: and the first 16 hex digits of SHA-256 over the secret as configured; never the secret itself',
  }),
  previousSecretFingerprints: Type.Array(Type.String({ pattern: '^sha256:[0-9a-f]{16}$' }), {
    description: 'Fingerprints of the secrets still signed with during a rotation',
  }),
});

export const EndpointEnabled = Type.Object({ id: Type.String(), status: Type.Literal('active'), released: Type.Integer() });
