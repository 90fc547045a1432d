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

export type CloseDecision = { aggregation: AggregationRecord; message: OutboxMessage | null; deliveries: NewDelivery[] } | null;
export type CloseDecider = (mark: DirtyMark, rollups: RollupRow[], existing: AggregationRecord | undefined) => CloseDecision;
export type ProvisionalDecider = (
  mark: DirtyMark,
  rollups: RollupRow[],
  existing: AggregationRecord | undefined,
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
}
