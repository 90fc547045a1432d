// Owns the narrow views of the configuration that domain rules read: meters and their operators,
// event acceptance windows, and where webhook messages go. Must never import config/ or do I/O.

import type { MessageType } from './deliveries.js';
import type { Operator } from './operators.js';
import type { Period } from './periods.js';

/** The configured meters: each event type with its operator. */
export interface MeterRules {
  /** Null-prototype, so 'constructor' or '__proto__' are never types unless configured. */
  events: Record<string, { op: Operator }>;
  /** Configured types, in file order. */
  eventTypes: string[];
}

/** What capture accepts, beside the meters. */
export interface EventRules extends MeterRules {
  maxEventAgeMs: number;
  maxFutureSkewMs: number;
}

/** Where a message goes: the endpoints with their filters, and how long a delivery may keep trying. */
export interface DeliveryRules {
  webhooks: ReadonlyArray<{ id: string; enabled: boolean; events: readonly MessageType[]; periods: readonly Period[] | null }>;
  webhookDelivery: { deadlineMs: number };
}
