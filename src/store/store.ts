// Owns the storage port: the only way services read or write durable state, identical for SQLite and
// PostgreSQL. Must never leak SQL dialect or driver types to callers; transactions stay inside adapters.

import type { NewEvent } from '../domain/event-rules.js';
import type { Period } from '../domain/periods.js';
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
}

export interface AppendedEvent {
  seq: number;
  duplicate: boolean;
}

export type AppendOutcome =
  | { ok: true; results: AppendedEvent[]; inserted: number; duplicates: number }
  | { ok: false; conflicts: Array<{ index: number; id: string }> };

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
  events: Record<string, number>;
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

export type CloseDecision = { aggregation: AggregationRecord; message: OutboxMessage | null } | null;
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

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Commits all units in one transaction; a unit with an id conflict is rolled back alone. */
  appendEvents(units: AppendUnit[], periods: readonly Period[]): Promise<AppendOutcome[]>;
  listEvents(q: EventQuery): Promise<StoredEvent[]>;
  readRollups(customerId: string, from: number, to: number): Promise<RollupRow[]>;

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

  insertApiKey(k: ApiKeyRecord): Promise<void>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  revokeApiKey(idOrPrefix: string, at: number): Promise<boolean>;

  /** Cheap round trip for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
