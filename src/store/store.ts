// Owns the storage port: the only way services read or write durable state, identical for SQLite and
// PostgreSQL. Must never leak SQL dialect or driver types to callers; transactions stay inside adapters.

import type { StoreUnavailable } from '../domain/errors.js';
import type { NewEvent } from '../domain/event-rules.js';
import type { Period } from '../domain/periods.js';
import type { RequestKey } from '../domain/request-keys.js';
import type { RollupState } from '../domain/rollup-state.js';

export interface StoredEvent {
  seq: number;
  customerId: string;
  eventType: string;
  id: string | null;
  ts: number;
  receivedAt: number;
  value: number;
  metadata: string | null;
}

/** One all-or-nothing unit of ingest: a whole batch, or a single event. */
export interface AppendUnit {
  events: NewEvent[];
  receivedAt: number;
  /**
   * The request's Idempotency-Key: recorded in the unit's own transaction (savepoint) when its events
   * are; a key already recorded makes the unit a replay (same hash: nothing stored) or a conflict.
   */
  requestKey?: RequestKey;
}

export interface AppendedEvent {
  seq: number;
  duplicate: boolean;
}

export type AppendOutcome =
  | { ok: true; results: AppendedEvent[]; inserted: number; duplicates: number }
  /** The unit's request key was recorded before with the same body hash: nothing was stored. */
  | { ok: true; replayed: true; results: []; inserted: 0; duplicates: number }
  | { ok: false; conflicts: Array<{ index: number; id: string }> }
  /** The unit's request key was recorded before with another body hash: nothing was stored. */
  | { ok: false; requestKeyConflict: true; conflicts: [] };

/** The outcome of a unit whose request key was already recorded, or undefined when it was not. */
export function requestKeyOutcome(unit: AppendUnit, storedHash: string | undefined): AppendOutcome | undefined {
  if (storedHash === undefined || !unit.requestKey) return undefined;
  return storedHash === unit.requestKey.hash
    ? { ok: true, replayed: true, results: [], inserted: 0, duplicates: unit.events.length }
    : { ok: false, requestKeyConflict: true, conflicts: [] };
}

export interface RollupRow extends RollupState {
  eventType: string;
  hour: number;
}

/** A period of one customer that has data not yet reflected in its final aggregation. */
export interface DirtyMark {
  customerId: string;
  period: Period;
  periodStart: number;
  /** The highest event seq that touched it; a close clears the mark only if no newer event arrived. */
  changeSeq: number;
}

export interface WebhookStatus {
  delivered: boolean;
  attempts: number;
  deliveredAt?: string;
  lastError?: string;
  dryRun?: boolean;
}

export interface AggregationRecord {
  id: string;
  customerId: string;
  period: Period;
  periodKey: string;
  periodStart: number;
  periodEnd: number;
  /** The nearest JSON number of each total (the reference's field); derived from eventsDecimal. */
  events: Record<string, number>;
  /** Each total as exact canonical decimal text; stored as the `events` column's JSON. */
  eventsDecimal: Record<string, string>;
  eventCounts: Record<string, number>;
  final: boolean;
  revision: number;
  computedAt: number;
  finalizedAt: number | null;
  webhookStatus: WebhookStatus;
}

/** A webhook message written in the same transaction as the aggregation revision it announces. */
export interface OutboxMessage {
  id: string;
  aggregationId: string;
  revision: number;
  type: 'aggregation.completed' | 'aggregation.updated';
  customerId: string;
  period: Period;
  createdAt: number;
  /** The exact body bytes (UTF-8 JSON text) every attempt will sign and send. */
  body: string;
}

/** One delivery of a message to one endpoint, created with the message. */
export interface NewDelivery {
  id: string;
  endpointId: string;
  deadlineAt: number;
}

export type CloseDecision = { aggregation: AggregationRecord; message: OutboxMessage | null; deliveries: NewDelivery[] } | null;
export type CloseDecider = (
  mark: DirtyMark,
  rollups: RollupRow[],
  existing: AggregationRecord | undefined,
) => CloseDecision;
export type ProvisionalDecider = (
  mark: DirtyMark,
  rollups: RollupRow[],
  existing: AggregationRecord | undefined,
) => AggregationRecord | null;

export interface CloseResult {
  finalized: number;
  unchanged: number;
  messages: number;
  eventsScanned: number;
}

export interface ProvisionalResult {
  created: number;
  updated: number;
  eventsScanned: number;
}

export interface EventQuery {
  customerId?: string;
  eventType?: string;
  from?: number;
  to?: number;
  limit: number;
  /** Keyset cursor: rows strictly older than this (ts, seq) pair. */
  before?: { ts: number; seq: number };
}

export interface AggregationQuery {
  customerId?: string;
  period?: Period;
  periodKey?: string;
  final?: boolean;
  from?: number;
  to?: number;
  limit: number;
  before?: { periodStart: number; id: string };
}

export interface ApiKeyRecord {
  id: string;
  hash: string;
  prefix: string;
  name: string;
  createdAt: number;
  revokedAt: number | null;
}

export type DeliveryStatus = 'pending' | 'sending' | 'succeeded' | 'retry_scheduled' | 'failed' | 'cancelled' | 'held';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'sending', 'succeeded', 'retry_scheduled', 'failed', 'cancelled', 'held'];

export interface DeliveryRecord {
  id: string;
  messageId: string;
  endpointId: string;
  aggregationId: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number | null;
  leaseOwner: string | null;
  leaseUntil: number | null;
  createdAt: number;
  updatedAt: number;
  deadlineAt: number;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: number | null;
  dryRun: boolean;
}

export interface AttemptRecord {
  deliveryId: string;
  attempt: number;
  startedAt: number;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  error: string | null;
  responseBody: string | null;
  webhookTimestamp: number;
  dryRun: boolean;
  manual: boolean;
}

/** A claimed delivery with what is needed to send it. */
export interface ClaimedDelivery extends DeliveryRecord {
  message: OutboxMessage;
  /** The state before this claim; a manual attempt that fails returns the delivery to it. */
  previousStatus: DeliveryStatus;
}

export interface EndpointState {
  id: string;
  url: string;
  disabledAt: number | null;
  disabledReason: string | null;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  failureStreak: number;
}

/** What one attempt changes: the delivery's next state and the endpoint's health. */
export interface AttemptOutcome {
  status: DeliveryStatus;
  nextAttemptAt: number | null;
  deliveredAt: number | null;
  /** 'success' resets the failure streak; 'failure' extends it; 'gone' disables the endpoint (410). */
  endpoint: 'success' | 'failure' | 'gone';
}

export interface ClaimOptions {
  now: number;
  limit: number;
  leaseMs: number;
  owner: string;
  /** Most deliveries in flight per endpoint for this worker, counting `inFlight`. */
  perEndpointLimit: number;
  /** Deliveries this worker already has in flight, by endpoint id. */
  inFlight: Record<string, number>;
  /**
   * The endpoints to claim for. Each is claimed from separately, up to its room, so a backlog on
   * one endpoint can never crowd another out of a claim.
   */
  endpoints: string[];
}

export interface DeliveryQuery {
  status?: DeliveryStatus;
  endpointId?: string;
  aggregationId?: string;
  from?: number;
  to?: number;
  limit: number;
  before?: { createdAt: number; id: string };
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Commits all units in one transaction; a unit with an id conflict is rolled back alone. */
  appendEvents(units: AppendUnit[], periods: readonly Period[]): Promise<AppendOutcome[]>;
  listEvents(q: EventQuery): Promise<StoredEvent[]>;
  readRollups(customerId: string, from: number, to: number): Promise<RollupRow[]>;
  /** The rollups of [from, to) merged per event type in the database (one row per type, `hour` = from). */
  mergedRollups(customerId: string, from: number, to: number): Promise<RollupRow[]>;

  /** Marks of periods that started before `beforeStart`, oldest first, after the given key. */
  listDueMarks(period: Period, beforeStart: number, limit: number, after?: { periodStart: number; customerId: string }): Promise<DirtyMark[]>;
  /** Marks of periods that started at or after `fromStart` (still open). */
  listOpenMarks(period: Period, fromStart: number, limit: number, after?: { periodStart: number; customerId: string }): Promise<DirtyMark[]>;
  /** For each mark, in one transaction: read rollups and the current aggregation, apply the decision, clear the mark. */
  closePeriods(marks: DirtyMark[], decide: CloseDecider): Promise<CloseResult>;
  writeProvisional(marks: DirtyMark[], decide: ProvisionalDecider): Promise<ProvisionalResult>;

  listAggregations(q: AggregationQuery): Promise<AggregationRecord[]>;
  getAggregation(customerId: string, period: Period, periodStart: number): Promise<AggregationRecord | undefined>;
  listMessages(aggregationId: string): Promise<OutboxMessage[]>;

  /**
   * Records every configured endpoint (id, url), keeping the health of known ones. Deliveries still
   * waiting for an endpoint that is no longer configured are held (POST /webhooks/recover re-queues them).
   */
  syncEndpoints(endpoints: Array<{ id: string; url: string }>): Promise<void>;
  listEndpoints(): Promise<EndpointState[]>;
  /** Clears a 410 disable and releases the endpoint's held deliveries; returns how many were released. */
  enableEndpoint(id: string, now: number): Promise<number>;
  /** Leases up to `limit` due deliveries (pending or retry_scheduled and due, or sending with an expired lease). */
  claimDeliveries(o: ClaimOptions): Promise<ClaimedDelivery[]>;
  /** Leases one delivery whatever its state, for a manual attempt; undefined if missing or leased by a live worker. */
  claimDelivery(id: string, o: { now: number; leaseMs: number; owner: string }): Promise<ClaimedDelivery | undefined>;
  /** Writes the attempt and the outcome only if `owner` still holds the lease; returns false (writing nothing) when it was lost. */
  recordAttempt(attempt: AttemptRecord, owner: string, outcome: AttemptOutcome, now: number): Promise<boolean>;
  /** Releases a lease without recording an attempt (shutdown before sending). */
  releaseDelivery(id: string, owner: string): Promise<void>;
  listDeliveries(q: DeliveryQuery): Promise<DeliveryRecord[]>;
  getDelivery(id: string): Promise<{ delivery: DeliveryRecord; attempts: AttemptRecord[]; message: OutboxMessage } | undefined>;
  /** Deliveries of the newest message of each aggregation. */
  latestDeliveries(aggregationIds: string[]): Promise<Map<string, DeliveryRecord[]>>;
  /** Puts failed or held deliveries created at or after `since` back in the queue, once; returns how many. */
  requeueDeliveries(since: number, now: number, deadlineMs: number): Promise<number>;
  /** Counts by status, for the dashboard and metrics. */
  deliveryCounts(): Promise<Record<DeliveryStatus, number>>;
  /** Creation time of the oldest delivery still pending, sending, scheduled for retry or held; null if none. */
  oldestUndeliveredAt(): Promise<number | null>;

  /**
   * Customers that have usage, in id order: those starting with `prefix` (when given), after the
   * `after` id, at most `limit`. Each with the time of its latest usage hour.
   */
  listCustomers(q: { prefix?: string; after?: string; limit: number }): Promise<Array<{ customerId: string; lastHour: number }>>;

  /** Start of the oldest period that is not final yet (has a dirty mark), or null. */
  oldestOpenPeriodStart(): Promise<number | null>;
  /** The body hash recorded with a request's Idempotency-Key, or undefined when the key is unknown. */
  requestKeyHash(key: string): Promise<string | undefined>;
  /** Deletes request keys recorded before `cutoff`; returns how many. */
  deleteRequestKeysBefore(cutoff: number): Promise<number>;
  /**
   * Deletes raw events (and their idempotency keys) older than `cutoff`: PostgreSQL drops whole monthly
   * partitions that end by then; SQLite deletes in chunks. Rollups and aggregations are kept.
   */
  deleteEventsBefore(cutoff: number): Promise<{ deleted: number; partitionsDropped: string[] }>;

  insertApiKey(k: ApiKeyRecord): Promise<void>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  revokeApiKey(idOrPrefix: string, at: number): Promise<boolean>;

  /** Work a store defers after the commit, by stage, in events (SQLite only); readers never see it missing. */
  deferredWork?(): Record<string, number>;
  /**
   * 0 while the store takes appends; otherwise the seconds after which to retry, because an in-memory
   * backlog of the store (SQLite's pending derived state) is at its bound. Capture answers 503 then.
   */
  backlogRetryAfter?(): number;

  /** Cheap round trip for readiness checks. */
  ping(): Promise<void>;
  /**
   * Resolves when writes work. While every write since the last check succeeded this costs nothing;
   * after a write fault it retries the failed work or runs a small write probe, and throws
   * StoreUnavailable while that still fails. Readiness calls it; it recovers by itself.
   */
  checkWrites(): Promise<void>;
  /**
   * The store's one classifier: the StoreUnavailable (with its Retry-After) that an error of this store
   * means when it is a fault to retry later (busy, locked, full, read-only, I/O, connection lost), or
   * undefined when it is not. Every method already throws faults classified; HTTP uses this as a backstop.
   */
  classifyError(err: unknown): StoreUnavailable | undefined;
  close(): Promise<void>;
}
