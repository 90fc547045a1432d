// Owns the close's decide loop, shared by both adapters: for each mark with its rollups and current
// document, what to write and what it counts. Must never do I/O: adapters read the inputs and write
// the plan inside their own transaction, so a transaction run again plans (and counts) again from scratch.

import type { NewDelivery, OutboxMessage } from '../domain/deliveries.js';
import type { AggregationRecord, CloseDecider, DirtyMark, PeriodDimensions, ProvisionalDecider, RollupRow } from '../domain/records.js';
import type { CloseResult, ProvisionalResult } from './store.js';

/** What the decider sees of one mark, read in the close's transaction. */
export interface MarkInput {
  mark: DirtyMark;
  rollups: RollupRow[];
  existing: AggregationRecord | undefined;
  /** The period's merged groups and unique counts. */
  dimensions: PeriodDimensions;
}

export interface ClosePlan {
  aggregations: AggregationRecord[];
  /** Messages to insert; only one newly inserted gets its deliveries, so a repeated close adds none. */
  messages: Array<{ message: OutboxMessage; deliveries: NewDelivery[] }>;
  /** Everything but `messages`, which counts the messages the adapter really inserted. */
  counts: Omit<CloseResult, 'messages'>;
}

const scanned = (rollups: RollupRow[]): number => rollups.reduce((n, r) => n + r.count, 0);

export function planClose(inputs: Iterable<MarkInput>, decide: CloseDecider): ClosePlan {
  const plan: ClosePlan = {
    aggregations: [],
    messages: [],
    counts: { finalized: 0, unchanged: 0, created: 0, updated: 0, eventsScanned: 0 },
  };
  for (const { mark, rollups, existing, dimensions } of inputs) {
    plan.counts.eventsScanned += scanned(rollups);
    const d = decide(mark, rollups, existing, dimensions);
    if (!d) {
      plan.counts.unchanged++;
      continue;
    }
    plan.counts.finalized++;
    if (existing) plan.counts.updated++;
    else plan.counts.created++;
    plan.aggregations.push(d.aggregation);
    if (d.message) plan.messages.push({ message: d.message, deliveries: d.deliveries });
  }
  return plan;
}

/** Provisional documents for open periods: never over a final one (the decider returns null for it). */
export function planProvisional(
  inputs: Iterable<MarkInput>,
  decide: ProvisionalDecider,
): { aggregations: AggregationRecord[]; counts: ProvisionalResult } {
  const out = { aggregations: [] as AggregationRecord[], counts: { created: 0, updated: 0, eventsScanned: 0 } };
  for (const { mark, rollups, existing, dimensions } of inputs) {
    out.counts.eventsScanned += scanned(rollups);
    const agg = decide(mark, rollups, existing, dimensions);
    if (!agg) continue;
    out.aggregations.push(agg);
    if (existing) out.counts.updated++;
    else out.counts.created++;
  }
  return out;
}
