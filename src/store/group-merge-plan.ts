// Owns the rules of the running merge of an open period's groups (group_merges, group_merge_heads), for both
// adapters: when a stored merge still holds exactly the events of the hours it covers, how a read adds the hours
// after it, and what an advance does. Each adapter runs these inside one snapshot of the hour totals and groups.
// Must never trust a merge whose event counts differ from the hour totals it covers: events are only ever added
// to hours, and a group row changes only in the transaction that changes its hour's total, so equal counts per
// type mean the same events. Anything else falls back to the full merge, which is always right.

import { mergeInto } from '../domain/rollup-state.js';
import type { GroupState, RollupRow } from '../domain/records.js';

/** A stored merge covers the hours [period start, through) and was built from `counts` events per type. */
export interface MergeHead {
  through: number;
  counts: Record<string, number>;
}

/** How a read of a period's groups was answered: from a current merge, past a stale one, or with none stored. */
export type MergeUse = 'current' | 'stale' | 'none';

/** A period's merged totals and groups, read in one snapshot. */
export interface PeriodMerge {
  rollups: RollupRow[];
  groups: GroupState[];
  merge: MergeUse;
}

/** What an advance did to one customer's merge. */
export type AdvanceOutcome = 'current' | 'advanced' | 'rebuilt';

export function parseHead(row: { through: unknown; counts: unknown }): MergeHead {
  return { through: Number(row.through), counts: JSON.parse(String(row.counts)) as Record<string, number> };
}

/** The event count per type of merged totals, as a head stores it. */
export function headCounts(rollups: readonly RollupRow[]): string {
  const counts: Record<string, number> = {};
  for (const r of rollups) if (r.count > 0) counts[r.eventType] = r.count;
  return JSON.stringify(counts);
}

/** A type's event count: a merged total, or one hour's (`recent` may hold several rows of a type). */
type Counted = Pick<RollupRow, 'eventType' | 'count'>;

/**
 * Whether `head` still holds every event of the hours it covers: `whole` is the period's totals merged over
 * [start, to) and `recent` over [head.through, to), so their difference is what the covered hours hold now.
 */
export function mergeIsCurrent(head: MergeHead, whole: readonly Counted[], recent: readonly Counted[]): boolean {
  const covered = new Map<string, number>();
  for (const r of whole) covered.set(r.eventType, r.count);
  for (const r of recent) covered.set(r.eventType, (covered.get(r.eventType) ?? 0) - r.count);
  for (const [type, n] of covered) if (n !== (head.counts[type] ?? 0)) return false;
  for (const [type, n] of Object.entries(head.counts)) if (n !== (covered.get(type) ?? 0)) return false;
  return true;
}

/**
 * The merge's groups with those of the hours after it, per (type, group): `live` may hold a group several
 * times (once per hour). `cached` is consumed.
 */
export function combineGroups(cached: GroupState[], live: readonly GroupState[]): GroupState[] {
  if (live.length === 0) return cached;
  const index = new Map(cached.map((g) => [`${g.eventType}\u0000${g.group}`, g]));
  for (const g of live) {
    const key = `${g.eventType}\u0000${g.group}`;
    const same = index.get(key);
    if (same) mergeInto(same, g);
    else {
      const added = { ...g };
      cached.push(added);
      index.set(key, added);
    }
  }
  return cached;
}

/**
 * The hours an advance covers next: up to `through`, or, for a merge to check again (a read found it stale),
 * at least up to where it already reaches. Undefined when there is nothing to do.
 */
export function advanceTarget(head: MergeHead | undefined, periodStart: number, through: number, recheck: boolean): number | undefined {
  if (!head) return through > periodStart ? through : undefined;
  if (head.through >= through && !recheck) return undefined;
  return Math.max(through, head.through);
}
