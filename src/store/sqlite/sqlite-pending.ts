// Owns the shape of committed events waiting to be folded into SQLite's derived state, and how a
// stored event row becomes one. Must never hold state: the deriver and the quarantine share it.

import type { Period } from '../../domain/periods.js';
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
}

export interface EventRow {
  seq: number;
  customer_id: string;
  event_type: string;
  event_id: string | null;
  ts: number;
  value: number;
}

export const pendingOf = (r: EventRow): PendingEvent => ({
  seq: r.seq,
  customerId: r.customer_id,
  eventType: r.event_type,
  ts: r.ts,
  value: r.value,
  hash: r.event_id === null ? null : eventKeyHash(r.customer_id, r.event_type, r.event_id),
});

export interface PendingBatch {
  events: PendingEvent[];
  periods: readonly Period[];
  /** Estimated heap of the events and their pending-id entries (memory-budget.ts). */
  bytes: number;
}
