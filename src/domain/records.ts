// Owns the entities every layer shares: stored events, hour states, dirty marks, aggregation documents,
// the deciders' shapes and API key records. Must never hold behaviour or import anything outside domain/.

import type { OutboxMessage, NewDelivery } from './deliveries.js';
import type { Period } from './periods.js';
import type { RollupState } from './rollup-state.js';
import type { Scope } from './scopes.js';

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

export interface RollupRow extends RollupState {
  eventType: string;
  hour: number;
}

/** The merged state of one group of a meter with groupBy over a range of hours; `group` is its key (dimensions.ts). */
export interface GroupState extends RollupState {
  eventType: string;
  group: string;
}

/** How many distinct values of a `unique` meter a period holds, in one group ('' for the meter's whole set). */
export interface UniqueCount {
  eventType: string;
  group: string;
  count: number;
}

/** What a period holds beside its hour totals: its merged groups and its unique counts. */
export interface PeriodDimensions {
  groups: GroupState[];
  uniques: UniqueCount[];
}

export const NO_PERIOD_DIMENSIONS: PeriodDimensions = Object.freeze({ groups: [], uniques: [] }) as PeriodDimensions;

/** A period of one customer that has data not yet reflected in its final aggregation. */
export interface DirtyMark {
  customerId: string;
  period: Period;
  periodStart: number;
  /** An event seq of the derivation that raised it since its period last closed; informational, never compared. */
  changeSeq: number;
}

/** One group's total in a document: its dimensions (null for the overflow group), value and event count. */
export interface GroupTotal {
  /** Each groupBy key's value; the overflow group has {} and `overflow: true`. */
  dimensions: Record<string, string | null>;
  value: number;
  /** The exact value as canonical decimal text. */
  valueDecimal: string;
  count: number;
  overflow?: true;
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
  /** Per-group totals of the meters with groupBy, when any has data in the period; stored as JSON. */
  groups?: Record<string, GroupTotal[]>;
  final: boolean;
  revision: number;
  computedAt: number;
  finalizedAt: number | null;
  webhookStatus: WebhookStatus;
}

export type CloseDecision = { aggregation: AggregationRecord; message: OutboxMessage | null; deliveries: NewDelivery[] } | null;
export type CloseDecider = (
  mark: DirtyMark,
  rollups: RollupRow[],
  existing: AggregationRecord | undefined,
  dimensions?: PeriodDimensions,
) => CloseDecision;
export type ProvisionalDecider = (
  mark: DirtyMark,
  rollups: RollupRow[],
  existing: AggregationRecord | undefined,
  dimensions?: PeriodDimensions,
) => AggregationRecord | null;

export interface ApiKeyRecord {
  id: string;
  hash: string;
  prefix: string;
  name: string;
  /** What the key may do, in canonical order; keys stored before scopes existed are admin. */
  scopes: Scope[];
  createdAt: number;
  revokedAt: number | null;
  /** A customer-restricted key sees and stores only this customer's data; null for an unrestricted key. */
  customerId?: string | null;
  /** After this instant (ms) the key answers 401; null for a key that does not expire. */
  expiresAt?: number | null;
  /** The key's own token bucket; null to use the server default. */
  rateLimit?: KeyRateLimit | null;
}

/** A token bucket: `burst` requests at once, refilled at `requestsPerSecond`. */
export interface KeyRateLimit {
  requestsPerSecond: number;
  burst: number;
}
