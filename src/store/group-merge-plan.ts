// Owns the rules of the running merge of an open period's groups (group_merges, group_merge_heads), for both
// adapters: when a stored merge still holds exactly the events of the hours it covers, how a read adds the hours
// after it, and what an advance does. Each adapter runs these inside one snapshot of the hour totals and groups.
// Must never trust a merge whose event counts differ from the hour totals it covers: events are only ever added
// to hours (no count ever shrinks), and a group row changes only in the transaction that changes its hour's total,
// so equal counts per type mean the same events. Anything else falls back to the full merge, which is always right.

import { formatFixed, parseFixed } from '../domain/decimal.js';
import { mergeInto, type RollupState } from '../domain/rollup-state.js';
import type { GroupState, RollupRow } from '../domain/records.js';

/**
 * A stored merge covers the hours [period start, through): `totals` holds each type's total over them, merged
 * like the groups, and so the event count per type it was built from.
 */
export interface MergeHead {
  through: number;
  totals: RollupRow[];
  counts: Map<string, number>;
}

/** How a read of a period's groups was answered: from a current merge, past a stale one, or with none stored. */
export type MergeUse = 'current' | 'stale' | 'none';

/** A period's merged totals and groups, read in one snapshot. */
export interface PeriodMerge {
  rollups: RollupRow[];
  groups: GroupState[];
  merge: MergeUse;
}

/** A customer whose merge an advance brings up to the hour; `recheck`: check it even if it is there already. */
export interface MergeCustomer {
  customerId: string;
  recheck: boolean;
}

/** What an advance did to one customer's merge. */
export type AdvanceOutcome = 'current' | 'advanced' | 'rebuilt';

type StoredTotal = [string, number, string, number, number, number, number, number, number, number, number];

/**
 * A head as stored: `totals` is JSON, one array per type (exact sums as decimal text). A head that does not
 * read back (a row damaged by hand) is as good as none: the read merges the hours, the advance rebuilds it.
 */
export function parseHead(row: { through: unknown; totals: unknown }): MergeHead | undefined {
  try {
    return readHead(row);
  } catch {
    return undefined;
  }
}

function readHead(row: { through: unknown; totals: unknown }): MergeHead {
  const through = Number(row.through);
  if (!Number.isSafeInteger(through)) throw new RangeError('not an hour');
  const totals = (JSON.parse(String(row.totals)) as StoredTotal[]).map(
    ([eventType, count, sum, min, max, firstTs, firstSeq, firstValue, lastTs, lastSeq, lastValue]): RollupRow => ({
      eventType,
      hour: 0,
      count,
      sum: parseFixed(sum),
      min,
      max,
      firstTs,
      firstSeq,
      firstValue,
      lastTs,
      lastSeq,
      lastValue,
    }),
  );
  return { through, totals, counts: new Map(totals.map((t) => [t.eventType, t.count])) };
}

/** The text of a head's totals: the period's totals merged over the hours the merge covers. */
export function headTotals(rollups: readonly RollupRow[]): string {
  const out: StoredTotal[] = rollups
    .filter((r) => r.count > 0)
    .map((r) => [
      r.eventType,
      r.count,
      formatFixed(r.sum),
      r.min,
      r.max,
      r.firstTs,
      r.firstSeq,
      r.firstValue,
      r.lastTs,
      r.lastSeq,
      r.lastValue,
    ]);
  return JSON.stringify(out);
}

/** A type's event count: a merged total, or one hour's (either list may hold several rows of a type). */
type Counted = Pick<RollupRow, 'eventType' | 'count'>;

/**
 * Whether `head` still holds every event of the hours it covers: what those hours hold now is `whole` minus
 * `recent` (e.g. the totals over [start, to) and over [through, to), or the covered hours' counts and nothing).
 */
export function mergeIsCurrent(head: MergeHead, whole: readonly Counted[], recent: readonly Counted[]): boolean {
  const covered = new Map<string, number>();
  for (const r of whole) covered.set(r.eventType, (covered.get(r.eventType) ?? 0) + r.count);
  for (const r of recent) covered.set(r.eventType, (covered.get(r.eventType) ?? 0) - r.count);
  for (const [type, n] of covered) if (n !== (head.counts.get(type) ?? 0)) return false;
  for (const [type, n] of head.counts) if (n !== (covered.get(type) ?? 0)) return false;
  return true;
}

/**
 * The read's check, from one sum: whether the hours the head covers hold `covered` events in all, as many as it
 * was built from. Each type's count only ever grows, so an equal sum means an equal count for every type.
 */
export function coveredIsCurrent(head: MergeHead, covered: number): boolean {
  let built = 0;
  for (const n of head.counts.values()) built += n;
  return covered === built;
}

/** The head's totals with the hours after it (one row per hour and type), one row per type with `hour` = `from`. */
export function combineTotals(head: MergeHead, recent: ReadonlyArray<RollupState & { eventType: string }>, from: number): RollupRow[] {
  const byType = new Map<string, RollupRow>();
  for (const t of head.totals) byType.set(t.eventType, { ...t, hour: from });
  for (const r of recent) {
    const same = byType.get(r.eventType);
    if (same) mergeInto(same, r);
    else byType.set(r.eventType, { ...stateOfRow(r), eventType: r.eventType, hour: from });
  }
  return [...byType.values()];
}

/**
 * The merge's groups with those of the hours after it, per (type, group): `live` may hold a group several
 * times (once per hour). `cached` is consumed.
 */
export function combineGroups(cached: GroupState[], live: readonly GroupState[]): GroupState[] {
  if (live.length === 0) return cached;
  // The few live rows are indexed, not the many merged ones: one lookup per merged row, no key text built.
  const byType = new Map<string, Map<string, GroupState>>();
  for (const g of live) {
    let mine = byType.get(g.eventType);
    if (!mine) byType.set(g.eventType, (mine = new Map()));
    const same = mine.get(g.group);
    if (same) mergeInto(same, g);
    else mine.set(g.group, { ...g });
  }
  for (const g of cached) {
    const mine = byType.get(g.eventType);
    const l = mine?.get(g.group);
    if (l === undefined) continue;
    mergeInto(g, l);
    mine!.delete(g.group);
  }
  for (const mine of byType.values()) for (const l of mine.values()) cached.push(l);
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

/** The state alone of a row (a group row read as an hour's total keeps no group key). */
function stateOfRow(r: RollupState): RollupState {
  const { count, sum, min, max, firstTs, firstSeq, firstValue, lastTs, lastSeq, lastValue } = r;
  return { count, sum, min, max, firstTs, firstSeq, firstValue, lastTs, lastSeq, lastValue };
}
