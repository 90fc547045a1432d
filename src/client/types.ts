// Owns the wire shapes of the meterhook HTTP API as the client sees them. Copied on purpose, not
// imported: the client must be usable alone, without any server module. They must match the route
// schemas in src/http/schemas/records.ts: test/client/wire-contract.test.ts fails when they drift.

export type Period = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';
export const PERIODS: readonly Period[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];

export type DeliveryStatus = 'pending' | 'sending' | 'succeeded' | 'retry_scheduled' | 'failed' | 'cancelled' | 'held';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = [
  'pending',
  'sending',
  'succeeded',
  'retry_scheduled',
  'failed',
  'cancelled',
  'held',
];

/** An instant: a Date, an ISO-8601 string with an offset, or epoch milliseconds. */
export type Instant = Date | string | number;

/** What `track()` and `capture()` take besides the event type. */
export interface TrackInput {
  customerId: string;
  value: number;
  metadata?: Record<string, unknown>;
  /** Idempotency id (1–128 characters). Assigned (a random UUID) when absent, so retries never double-count. */
  id?: string;
  /** When the usage happened; default: the time the server receives the event. */
  timestamp?: Instant;
}

/** One element of `POST /usagebatch`. */
export interface BatchEvent {
  eventType: string;
  customerId: string;
  value: number;
  metadata?: Record<string, unknown>;
  id?: string;
  timestamp?: string | number;
}

/** `POST /usage/:eventType` answer (201 new, 200 duplicate). */
export interface CaptureResult {
  message: string;
  eventType: string;
  customerId: string;
  eventId: string;
  id: string | null;
  /** Absent on a duplicate: the stored event's time is not known to that request. */
  timestamp?: string;
  duplicate: boolean;
}

/** `POST /usagebatch` answer (201 when something was inserted, 200 when everything was a duplicate). */
export interface BatchResult {
  message: string;
  count: number;
  inserted: number;
  duplicates: number;
}

export interface WebhookStatus {
  delivered: boolean;
  attempts: number;
  deliveredAt?: string;
  lastError?: string;
  dryRun?: boolean;
}

export interface Aggregation {
  _id: string;
  id: string;
  customerId: string;
  period: Period;
  periodKey: string;
  periodStart: string;
  periodEnd: string;
  timestamp: string;
  /** Each total as a JSON number (the nearest double of the exact total). */
  events: Record<string, number>;
  eventCounts: Record<string, number>;
  /** Each total as exact decimal text, e.g. "0.3": bill from this. */
  eventsDecimal: Record<string, string>;
  /** Per-group totals of each meter with groupBy; absent when no such meter has data in the period. */
  groups?: Record<string, GroupTotal[]>;
  final: boolean;
  revision: number;
  finalizedAt: string | null;
  webhookStatus: WebhookStatus;
}

export interface StoredEvent {
  eventId: string;
  id: string | null;
  customerId: string;
  eventType: string;
  value: number;
  metadata: Record<string, unknown>;
  timestamp: string;
  receivedAt: string;
  minute: string;
  hour: string;
  day: string;
  week: string;
  month: string;
  year: string;
}

export interface Usage {
  customerId: string;
  period: Period;
  periodKey: string;
  periodStart: string;
  periodEnd: string;
  final: boolean;
  events: Record<string, number>;
  /** Each total as exact decimal text, e.g. "0.3". */
  eventsDecimal: Record<string, string>;
  eventCounts: Record<string, number>;
  /** Per-group totals of each meter with groupBy; absent when no such meter has data in the period. */
  groups?: Record<string, GroupTotal[]>;
}

/** One group's total: for sum and count meters, a meter's group values add up exactly to its total. */
export interface GroupTotal {
  /** Each groupBy key and its value; null when the event's value was missing, null or not a scalar. {} for the overflow group. */
  dimensions: Record<string, string | null>;
  /** The group's value under the meter's operator, as the nearest JSON number. */
  value: number;
  /** The exact value as canonical decimal text. */
  valueDecimal: string;
  /** Events in the group. */
  count: number;
  /** Set on the overflow group: groups first seen after their hour already held maxGroupsPerHour groups. */
  overflow?: true;
}

/** `POST /aggregations/trigger`; the counters are absent (or 0) when there was nothing to aggregate. */
export interface TriggerResult {
  message: string;
  jobsQueued: number;
  finalized: number;
  provisional: number;
  jobsCreated?: number;
  jobsUpdated?: number;
  customersFound?: number;
  periodsConfigured?: number;
  eventsScanned?: number;
}

export interface Delivery {
  id: string;
  messageId: string;
  endpointId: string;
  aggregationId: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
  deadlineAt: string;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: string | null;
  dryRun: boolean;
}

export interface DeliveryAttempt {
  attempt: number;
  startedAt: string;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  error: string | null;
  responseBody: string | null;
  webhookTimestamp: number;
  dryRun: boolean;
  manual: boolean;
}

export interface DeliveryDetail extends Omit<Delivery, 'attempts'> {
  attempts: DeliveryAttempt[];
  message: { id: string; type: string; aggregationId: string; revision: number; createdAt: string; payload: unknown };
}

export interface DeliveryRetryResult {
  delivery: Delivery;
  attempt: { statusCode: number | null; errorClass: string | null; error: string | null; durationMs: number; dryRun: boolean };
}

export interface Endpoint {
  id: string;
  url: string;
  status: 'active' | 'disabled';
  disabledReason: string | null;
  disabledAt: string | null;
  lastSuccessAt: string | null;
  lastFailureAt: string | null;
  failureStreak: number;
  events: string[];
  /** The periods sent to this endpoint; null means every configured period. */
  periods: Period[] | null;
  legacyHeaders: boolean;
  timeoutMs: number;
  secretSource: string;
  /** `whsec`: a whsec_<base64> secret, used as configured by Standard Webhooks receivers; `plain`: any other. */
  secretFormat: 'whsec' | 'plain';
  /** `sha256:` and the first 16 hex digits of SHA-256 over the secret as configured; never the secret. */
  secretFingerprint: string;
  /** Fingerprints of the secrets still signed with during a rotation. */
  previousSecretFingerprints: string[];
}

export interface AggregationQuery {
  customerId?: string;
  period?: Period;
  periodKey?: string;
  final?: boolean;
  /** Earliest periodStart, inclusive. */
  from?: Instant;
  /** Latest periodStart, inclusive. */
  to?: Instant;
  /** Page size (the server caps it at 1000). */
  limit?: number;
  cursor?: string;
}

/** A metadata value to filter on: the server compares string forms (a number as its JSON text, a boolean as true/false). */
export type MetadataFilterValue = string | number | boolean;

export interface EventQuery {
  customerId?: string;
  eventType?: string;
  /**
   * Only events whose metadata has all of these values (sent as `metadata.<key>=<value>`); needs
   * `customerId`. A filtered page may hold fewer than `limit` events, or none, and still have a next
   * cursor: iterate (or follow `nextCursor`) to see every match.
   */
  metadata?: Readonly<Record<string, MetadataFilterValue>>;
  from?: Instant;
  to?: Instant;
  limit?: number;
  cursor?: string;
}

export interface DeliveryQuery {
  status?: DeliveryStatus;
  endpointId?: string;
  aggregationId?: string;
  from?: Instant;
  to?: Instant;
  limit?: number;
  cursor?: string;
}

export interface UsageQuery {
  period?: Period;
  /** An instant inside the wanted period; default now. */
  at?: Instant;
}

/** One page of a listing; pass `nextCursor` back as `cursor` for the next one (null: no more). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** GET /session: what the client's key may do. */
export interface Session {
  /** The stored key's id, or "env" for a key from METERHOOK_API_KEYS. */
  keyId: string;
  scopes: Array<'ingest' | 'read' | 'admin'>;
  /** The customer the key is restricted to; null: every customer. */
  customerId: string | null;
  admin: boolean;
}

export type AuditAction = 'delivery.retry' | 'delivery.recover' | 'endpoint.enable' | 'aggregation.trigger' | 'key.create' | 'key.revoke';

/** One admin action on record (GET /audit). */
export interface AuditEntry {
  id: string;
  action: AuditAction;
  keyId: string;
  at: string;
  method: string;
  route: string;
  target: Record<string, string>;
  status: number;
  errorCode: string | null;
  requestId: string;
}

export interface AuditQuery {
  action?: AuditAction;
  keyId?: string;
  from?: Instant;
  to?: Instant;
  limit?: number;
  cursor?: string;
}

export type KeyScope = 'ingest' | 'read' | 'admin';

/** A key's own token bucket: `burst` requests at once, refilled at `requestsPerSecond`. */
export interface KeyRateLimit {
  requestsPerSecond: number;
  burst: number;
}

/** An API key as GET /keys shows it: no key material beyond a prefix. */
export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: KeyScope[];
  /** The customer the key is confined to; null: unrestricted. */
  customerId: string | null;
  expiresAt: string | null;
  createdAt: string;
  revokedAt: string | null;
  rateLimit: KeyRateLimit | null;
}

/** A new key: the key itself is in this answer only. */
export interface CreatedApiKey extends ApiKey {
  key: string;
}

export interface CreateKeyInput {
  name: string;
  scopes: KeyScope[];
  /** Confine the key to one customer (ingest and read only). */
  customerId?: string;
  /** When the key stops working. */
  expiresAt?: Instant;
  rateLimit?: KeyRateLimit | null;
}
