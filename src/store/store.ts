// Owns the storage port: the only way services read or write durable state, identical for SQLite and
// PostgreSQL. Must never leak SQL dialect or driver types to callers; transactions stay inside adapters.

import type { AuditQuery, AuditRecord } from '../domain/audit.js';
import type { StoreUnavailable } from '../domain/errors.js';
import type { NewEvent } from '../domain/event-rules.js';
import type { Period } from '../domain/periods.js';
import type { GroupOperators } from '../domain/operators.js';
import type { RequestKey } from '../domain/request-keys.js';
import type { DimensionRules } from '../domain/rules.js';
import type { MergeCustomer, PeriodMerge } from './group-merge-plan.js';
import type {
  AttemptOutcome,
  AttemptRecord,
  ClaimedDelivery,
  DeliveryRecord,
  DeliveryStatus,
  EndpointState,
  OutboxMessage,
} from '../domain/deliveries.js';
import type {
  AggregationRecord,
  ApiKeyRecord,
  CloseDecider,
  DirtyMark,
  GroupState,
  ProvisionalDecider,
  UniqueCount,
  RollupRow,
  StoredEvent,
} from '../domain/records.js';

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

export interface CloseResult {
  /** Marks whose aggregation was written; each is one of `created` or `updated`. */
  finalized: number;
  unchanged: number;
  /**
   * Aggregations the committed transaction inserted, and existing ones it rewrote, counted by the
   * adapter from what it wrote: a transaction run again (PostgreSQL retries a deadlock) counts once.
   */
  created: number;
  updated: number;
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

/** Raw events and the request keys recorded with them: append, list, retention. */
export interface EventPort {
  /**
   * How many appendEvents transactions may run at once (default 1): SQLite has one writer; PostgreSQL
   * takes two, so one group is parsed and sent while the other waits for its commit.
   */
  readonly concurrentAppends?: number;
  /** Commits all units in one transaction; a unit with an id conflict is rolled back alone. */
  appendEvents(units: AppendUnit[], periods: readonly Period[], dimensions?: DimensionRules): Promise<AppendOutcome[]>;
  listEvents(q: EventQuery): Promise<StoredEvent[]>;
  /** The body hash recorded with a request's Idempotency-Key, or undefined when the key is unknown. */
  requestKeyHash(key: string): Promise<string | undefined>;
  /** Deletes request keys recorded before `cutoff`; returns how many. */
  deleteRequestKeysBefore(cutoff: number): Promise<number>;
  /**
   * Deletes raw events (and their idempotency keys) older than `cutoff`: PostgreSQL drops whole monthly
   * partitions that end by then; SQLite deletes in chunks. Rollups and aggregations are kept.
   */
  deleteEventsBefore(cutoff: number): Promise<{ deleted: number; partitionsDropped: string[] }>;
}

/** Hour states, dirty marks and aggregation documents with their webhook messages: what usage reads and the close writes. */
export interface UsagePort {
  readRollups(customerId: string, from: number, to: number): Promise<RollupRow[]>;
  /** The rollups of [from, to) merged per event type in the database (one row per type, `hour` = from). */
  mergedRollups(customerId: string, from: number, to: number): Promise<RollupRow[]>;
  /** The groups of meters with groupBy over [from, to), merged per (event type, group) in the database. */
  mergedGroups(customerId: string, from: number, to: number): Promise<GroupState[]>;
  /**
   * One period's totals and groups over [from, to), `from` being its start, read in one snapshot: the groups
   * come from the period's running merge while it is current (group-merge-plan.ts), else merged from the hours.
   * `operators` maps each meter with groupBy to its operator: an adapter may read a group's state only as far as
   * that operator needs (OPERATOR_READS) and leave its other fields zero, and may leave out other meters' groups.
   */
  mergedPeriod(customerId: string, period: Period, from: number, to: number, operators: GroupOperators): Promise<PeriodMerge>;
  /** Extends (or rebuilds) each customer's running merge of one open period up to the hour `through`. */
  advanceGroupMerges(
    period: Period,
    periodStart: number,
    through: number,
    customers: readonly MergeCustomer[],
  ): Promise<{ advanced: number; rebuilt: number }>;
  /** Deletes the running merges of periods of kind `period` that started before `beforeStart`; returns how many. */
  dropGroupMerges(period: Period, beforeStart: number): Promise<number>;
  /** The hour states of one meter's groups over [from, to), one row per hour and group (usage series). */
  readGroups(customerId: string, eventType: string, from: number, to: number): Promise<Array<GroupState & { hour: number }>>;
  /** How many distinct values each `unique` meter holds in a period, per group ('' for the whole set). */
  uniqueCounts(customerId: string, period: Period, periodStart: number): Promise<UniqueCount[]>;
  /** One `unique` meter's distinct counts of every period of kind `period` starting in [from, to) (usage series). */
  uniqueCountsOver(
    customerId: string,
    eventType: string,
    period: Period,
    from: number,
    to: number,
  ): Promise<Array<UniqueCount & { periodStart: number }>>;
  /** Marks of periods that started before `beforeStart`, oldest first, after the given key. */
  listDueMarks(
    period: Period,
    beforeStart: number,
    limit: number,
    after?: { periodStart: number; customerId: string },
  ): Promise<DirtyMark[]>;
  /** Marks of periods that started at or after `fromStart` (still open). */
  listOpenMarks(
    period: Period,
    fromStart: number,
    limit: number,
    after?: { periodStart: number; customerId: string },
  ): Promise<DirtyMark[]>;
  /** For each mark, in one transaction: read rollups and the current aggregation, apply the decision, clear the mark. */
  closePeriods(marks: DirtyMark[], decide: CloseDecider): Promise<CloseResult>;
  writeProvisional(marks: DirtyMark[], decide: ProvisionalDecider): Promise<ProvisionalResult>;
  listAggregations(q: AggregationQuery): Promise<AggregationRecord[]>;
  getAggregation(customerId: string, period: Period, periodStart: number): Promise<AggregationRecord | undefined>;
  listMessages(aggregationId: string): Promise<OutboxMessage[]>;
  /**
   * Customers that have usage, in id order: those starting with `prefix` (when given), after the
   * `after` id, at most `limit`. Each with the time of its latest usage hour.
   */
  listCustomers(q: { prefix?: string; after?: string; limit: number }): Promise<Array<{ customerId: string; lastHour: number }>>;
  /** Start of the oldest period that is not final yet (has a dirty mark), or null. */
  oldestOpenPeriodStart(): Promise<number | null>;
}

/** Webhook endpoints, deliveries and their attempts: the outbox the dispatcher drains. */
export interface DeliveryPort {
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
}

/** API keys kept in the store (their hashes only). */
export interface KeyPort {
  insertApiKey(k: ApiKeyRecord): Promise<void>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  revokeApiKey(idOrPrefix: string, at: number): Promise<boolean>;
  /** A counter bumped by every key insert and revocation, so other processes notice a change cheaply. */
  keyVersion(): Promise<number>;
}

/** The append-only audit log: records are added and, past their retention, deleted; never changed. */
export interface AuditPort {
  appendAudit(r: AuditRecord): Promise<void>;
  listAudit(q: AuditQuery): Promise<AuditRecord[]>;
  /** Deletes records older than `cutoff`; returns how many. */
  deleteAuditBefore(cutoff: number): Promise<number>;
}

/**
 * What every adapter does beside its records: take the store into service, upkeep on each scheduler
 * tick, figures for metrics, readiness and fault classification. The composition and the metrics use
 * only these, so nothing above the store branches on which adapter it has.
 */
export interface StoreLifecycle {
  /**
   * Takes what serving needs before the server listens: SQLite takes the file's writer lock (throwing
   * WriterLockTaken when another live process holds it); PostgreSQL has nothing to take.
   */
  start(): Promise<void>;
  /** Upkeep on each scheduler tick, before the close: PostgreSQL keeps monthly event partitions a quarter ahead. */
  maintain(now: number): Promise<void>;
  /** What the store is and the work it defers after commits, by stage (in events), for logs and metrics. */
  stats(): StoreStats;
  /**
   * 0 while the store takes appends; otherwise the seconds after which to retry, because an in-memory
   * backlog of the store (SQLite's pending derived state) is at its bound. Capture answers 503 then.
   */
  backlogRetryAfter(): number;
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

export interface StoreStats {
  /** Which adapter this is, as the startup log and GET /readyz report it. */
  adapter: 'sqlite' | 'postgres';
  /**
   * Committed events whose derived state is not written yet, by stage. The same stages every time a
   * store is asked (empty for a store that defers nothing); readers never see deferred work missing.
   */
  deferred: Record<string, number>;
  /**
   * How long the oldest of that work has waited, in seconds (0 when none); given by a store whose
   * deferred work several processes share (PostgreSQL's derive queue, by the database's clock).
   */
  deferredAgeSeconds?: number;
  /** New groups this process counted in an overflow group because their hour held maxGroupsPerHour groups. */
  groupsOverflowed: number;
}

/** The whole port: each service takes only the parts it uses. */
export interface Store extends EventPort, UsagePort, DeliveryPort, KeyPort, StoreLifecycle {
  readonly audit: AuditPort;
}

/**
 * Every UsagePort method, for adapters that must bring derived state up to date before any of them
 * (both: SQLite's pending slices, PostgreSQL's derive queue). Compiling fails when a UsagePort method
 * is missing here, so a new read cannot skip it.
 */
export const USAGE_PORT_METHODS = [
  'readRollups',
  'mergedRollups',
  'mergedGroups',
  'mergedPeriod',
  'advanceGroupMerges',
  'dropGroupMerges',
  'readGroups',
  'uniqueCounts',
  'uniqueCountsOver',
  'listDueMarks',
  'listOpenMarks',
  'closePeriods',
  'writeProvisional',
  'listAggregations',
  'getAggregation',
  'listMessages',
  'listCustomers',
  'oldestOpenPeriodStart',
] as const satisfies ReadonlyArray<keyof UsagePort>;
type Unlisted = Exclude<keyof UsagePort, (typeof USAGE_PORT_METHODS)[number]>;
export const USAGE_PORT_METHODS_COMPLETE: [Unlisted] extends [never] ? true : Unlisted = true;

/** Makes each UsagePort method of `store` run `catchUp` first (the read barrier of derived state). */
export function installReadBarrier(store: object, catchUp: () => void | Promise<void>): void {
  for (const name of USAGE_PORT_METHODS) {
    const method = (store as Record<string, (...args: unknown[]) => Promise<unknown>>)[name]!;
    Object.defineProperty(store, name, {
      configurable: true,
      writable: true,
      value: async (...args: unknown[]) => {
        const pending = catchUp();
        if (pending) await pending;
        return method.apply(store, args);
      },
    });
  }
}
