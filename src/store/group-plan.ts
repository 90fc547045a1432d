// Owns what both adapters write of a fold's dimensions, decided once: which new groups of an hour are admitted
// under the per-hour bound and which fold into the overflow group, the merged group states to upsert, and the
// rows of unique values per period. Must never do I/O: adapters read the stored group counts, call these inside
// the same transaction that upserts the hour's total (whose row lock orders concurrent writers), and write the plan.

import { ALL_GROUPS, OVERFLOW_GROUP } from '../domain/dimensions.js';
import { compareText, hourKey, periodStartOf, type GroupHour, type UniqueHour } from '../domain/fold.js';
import type { Period } from '../domain/periods.js';
import { mergeInto, type RollupState } from '../domain/rollup-state.js';

export { hourKey } from '../domain/fold.js';

/** A group state to upsert into group_rollups. */
export interface GroupRow {
  customerId: string;
  hour: number;
  eventType: string;
  group: string;
  state: RollupState;
}

/** A unique value to insert (once) into unique_values: under its group, and under ALL_GROUPS for the type's total. */
export interface UniqueRow {
  customerId: string;
  eventType: string;
  period: Period;
  periodStart: number;
  group: string;
  token: string;
}

/** What the store holds of one hour's groups: how many (the overflow group not counted), and, when asked, which. */
export interface StoredGroups {
  count: number;
  known?: ReadonlySet<string>;
}

/** The hours whose new groups might pass the bound: only for these must an adapter read which groups it has. */
export function hoursNearBound(hours: readonly GroupHour[], counts: ReadonlyMap<string, number>, limit: number): GroupHour[] {
  return hours.filter((h) => (counts.get(hourKey(h.customerId, h.eventType, h.hour)) ?? 0) + h.groups.size > limit);
}

/**
 * The hours whose stored groups must be counted: an hour holds at most as many groups as events, so one whose
 * total count after this fold (`totals`, from the hour totals' upsert) is within the bound cannot pass it.
 */
export function hoursToCount(hours: readonly GroupHour[], totals: ReadonlyMap<string, number>, limit: number): GroupHour[] {
  return hours.filter((h) => (totals.get(hourKey(h.customerId, h.eventType, h.hour)) ?? Number.POSITIVE_INFINITY) > limit);
}

export interface GroupPlan {
  rows: GroupRow[];
  /** The group an event of (customer, type, hour) with group key `group` was counted in. */
  resolve(customerId: string, eventType: string, hour: number, group: string): string;
  /** New groups that went to the overflow group, for the metric and the log. */
  overflowed: number;
}

/**
 * Admits each hour's new groups in the order their first events were stored (seq), while the hour holds fewer
 * than `limit`; later new groups are counted in the overflow group, so totals stay exact whatever the cardinality.
 * `stored` has every hour of `hours`; `known` is set for those hoursNearBound named.
 */
export function planGroups(hours: readonly GroupHour[], stored: ReadonlyMap<string, StoredGroups>, limit: number): GroupPlan {
  const rows: GroupRow[] = [];
  const sent = new Map<string, Map<string, string>>();
  let overflowed = 0;
  for (const h of hours) {
    const key = hourKey(h.customerId, h.eventType, h.hour);
    const have = stored.get(key) ?? { count: 0 };
    const map = new Map<string, string>();
    let room = limit - have.count;
    const fits = have.count + h.groups.size <= limit;
    if (fits) {
      // Every group fits: each is counted in itself (resolve's default), in key order.
      for (const [g, fg] of [...h.groups.entries()].sort((a, b) => compareText(a[0], b[0])))
        rows.push({ customerId: h.customerId, hour: h.hour, eventType: h.eventType, group: g, state: fg.state });
      continue;
    }
    const order = [...h.groups.entries()].sort((a, b) => a[1].firstSeq - b[1].firstSeq);
    let overflow: RollupState | undefined;
    const out: GroupRow[] = [];
    for (const [g, fg] of order) {
      let admitted = fits || have.known?.has(g) === true;
      if (!admitted && room > 0) {
        room--;
        admitted = true;
      }
      if (admitted) {
        map.set(g, g);
        out.push({ customerId: h.customerId, hour: h.hour, eventType: h.eventType, group: g, state: fg.state });
      } else {
        overflowed++;
        map.set(g, OVERFLOW_GROUP);
        overflow = overflow ? mergeInto(overflow, fg.state) : { ...fg.state };
      }
    }
    if (overflow) out.push({ customerId: h.customerId, hour: h.hour, eventType: h.eventType, group: OVERFLOW_GROUP, state: overflow });
    // Upserted in (customer, hour, type, group) order: the same lock order for every writer.
    out.sort((a, b) => compareText(a.group, b.group));
    rows.push(...out);
    sent.set(key, map);
  }
  return {
    rows,
    overflowed,
    resolve: (c, t, hour, group) => sent.get(hourKey(c, t, hour))?.get(group) ?? group,
  };
}

/**
 * The unique rows of a fold: each value under the period of each marked period that holds its hour, in its
 * (resolved) group and, for a type with groups, under ALL_GROUPS too. Sorted and deduplicated: the same key order
 * for every writer, and each row inserted once.
 */
export function planUniques(hours: readonly UniqueHour[], resolve: GroupPlan['resolve']): UniqueRow[] {
  const seen = new Set<string>();
  const out: UniqueRow[] = [];
  const add = (r: UniqueRow): void => {
    const k = `${r.customerId}\u0000${r.eventType}\u0000${r.period}\u0000${r.periodStart}\u0000${r.group}\u0000${r.token}`;
    if (seen.has(k)) return;
    seen.add(k);
    out.push(r);
  };
  for (const h of hours) {
    for (const period of h.periods) {
      const periodStart = period === 'hourly' ? h.hour : periodStartOf(period, h.hour);
      for (const [group, tokens] of h.byGroup) {
        const target = group === ALL_GROUPS ? ALL_GROUPS : resolve(h.customerId, h.eventType, h.hour, group);
        for (const token of tokens) {
          add({ customerId: h.customerId, eventType: h.eventType, period, periodStart, group: target, token });
          if (group !== ALL_GROUPS)
            add({ customerId: h.customerId, eventType: h.eventType, period, periodStart, group: ALL_GROUPS, token });
        }
      }
    }
  }
  const cmp = compareText;
  return out.sort(
    (a, b) =>
      cmp(a.customerId, b.customerId) ||
      cmp(a.period, b.period) ||
      a.periodStart - b.periodStart ||
      cmp(a.eventType, b.eventType) ||
      cmp(a.group, b.group) ||
      cmp(a.token, b.token),
  );
}
