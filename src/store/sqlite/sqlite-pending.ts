// Owns the shape of committed events waiting to be folded into SQLite's derived state, and how a
// stored event row becomes one. Must never hold state: the deriver and the quarantine share it.

import { deriveFromText } from '../../domain/dimensions.js';
import type { Period } from '../../domain/periods.js';
import type { DimensionRules } from '../../domain/rules.js';
import { eventKeyHash } from './event-hash.js';

/** What the derived tables need from one committed event. */
export interface PendingEvent {
  seq: number;
  customerId: string;
  eventType: string;
  ts: number;
  value: number;
  /** eventKeyHash of (customer, type, id); null when the event has no id. */
  hash: number | null;
  /** Its group key and unique value under its type's dimension rule (dimensions.ts), null when none. */
  group: string | null;
  unique: string | null;
}

export interface EventRow {
  seq: number;
  customer_id: string;
  event_type: string;
  event_id: string | null;
  ts: number;
  value: number;
  metadata: string | null;
}

/** The columns of an EventRow, for the queries that read stored events back into the fold. */
export const EVENT_ROW_COLUMNS = 'seq, customer_id, event_type, event_id, ts, value, metadata';

export const pendingOf = (r: EventRow, rules: DimensionRules): PendingEvent => {
  const d = deriveFromText(r.metadata, rules.types[r.event_type]);
  return {
    seq: r.seq,
    customerId: r.customer_id,
    eventType: r.event_type,
    ts: r.ts,
    value: r.value,
    hash: r.event_id === null ? null : eventKeyHash(r.customer_id, r.event_type, r.event_id),
    group: d.group,
    unique: d.unique,
  };
};

export interface PendingBatch {
  events: PendingEvent[];
  periods: readonly Period[];
  /** Estimated heap of the events and their pending-id entries (memory-budget.ts). */
  bytes: number;
}
