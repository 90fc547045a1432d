// Owns the narrow views of the configuration that domain rules read: meters and their operators,
// event acceptance windows, and where webhook messages go. Must never import config/ or do I/O.

import type { MessageType } from './deliveries.js';
import type { DimensionRule } from './dimensions.js';
import type { Operator } from './operators.js';
import type { Period } from './periods.js';

/** One configured meter: its operator, the metadata keys it groups by, and the field a `unique` counts. */
export interface EventMeter {
  op: Operator;
  /** 1 to 3 metadata keys, in the order given; absent when the type has no groups. */
  groupBy?: readonly string[];
  /** The metadata key whose distinct values a `unique` meter counts; only with op "unique". */
  field?: string;
}

/** The configured meters: each event type with its operator. */
export interface MeterRules {
  /** Null-prototype, so 'constructor' or '__proto__' are never types unless configured. */
  events: Record<string, EventMeter>;
  /** Configured types, in file order. */
  eventTypes: string[];
}

/** What the folds derive from metadata: each type's rule (types without groups or unique are absent), and the group bound. */
export interface DimensionRules {
  types: Record<string, DimensionRule>;
  maxGroupsPerHour: number;
}

/** What a meter derives from metadata, or undefined when it has neither groups nor a unique field. */
export function dimensionRuleOf(m: EventMeter): DimensionRule | undefined {
  if (!m.groupBy && m.op !== 'unique') return undefined;
  return { groupBy: m.groupBy ?? null, uniqueField: m.op === 'unique' ? (m.field ?? null) : null };
}

/** No meter has groups or unique counts. */
export const NO_DIMENSIONS: DimensionRules = Object.freeze({ types: Object.freeze(Object.create(null)), maxGroupsPerHour: 1000 });

/** The dimension rules of a configuration; the stores fold events with them. */
export function dimensionRulesOf(config: MeterRules & { maxGroupsPerHour: number }): DimensionRules {
  const types: Record<string, DimensionRule> = Object.create(null);
  for (const t of config.eventTypes) {
    const rule = dimensionRuleOf(config.events[t]!);
    if (rule) types[t] = rule;
  }
  return { types, maxGroupsPerHour: config.maxGroupsPerHour };
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
