// Owns SQLite's tables of dimensions: the writes of a fold's dimensions, inside the slice transaction after the
// hour totals (group states under the per-hour group bound, unique values per period), and their reads,
// with the running merges of open periods' groups (sqlite-group-merges.ts).
// Must never decide anything itself: group-plan.ts decides; SQLite has one writer, so what it reads is all committed.

import type Database from 'better-sqlite3';
import { compareText, soleGroupHour, type GroupHour, type UniqueHour } from '../../domain/fold.js';
import { mergeInto, type RollupState } from '../../domain/rollup-state.js';
import { hourKey, planGroups, planUniques, type GroupPlan } from '../group-plan.js';
import type { Period } from '../../domain/periods.js';
import type { GroupState, UniqueCount } from '../../domain/records.js';
import { GROUP_ROLLUPS, rollupUpsertSql, SQLITE_MERGE, UNIQUE_COLUMNS } from '../rollup-upsert.js';
import { stateParams, toGroupState, toRollup, toUniqueCount, type RollupTableRow, type UniqueCountRow } from '../rows.js';
import { createGroupMerges } from './sqlite-group-merges.js';
import { exactMergedRead } from './exact-sum.js';
import {
  GROUP_HOURS_SQL,
  MERGED_GROUPS_SQL,
  MERGED_GROUPS_UDF_SQL,
  MERGED_SOLE_GROUPS_SQL,
  MERGED_SOLE_GROUPS_UDF_SQL,
  UNIQUE_COUNTS_OVER_SQL,
  UNIQUE_COUNTS_SQL,
} from './sqlite-sql.js';

/**
 * An hour of a fold with groups, and its event count after the fold's upsert of the hour totals. An hour whose
 * events are all in one group (`sole`) comes with that group's key and the bound parameters of its state (the
 * hour's own), so the common case builds nothing more.
 */
export type GroupedHour =
  | { hour: GroupHour; total: number }
  | {
      sole: { customerId: string; eventType: string; hour: number; group: string; firstSeq: number; state: RollupState; params: unknown[] };
      total: number;
    };

export function createDimensionWriter(db: Database.Database) {
  const countGroups = db
    .prepare("SELECT count(*) FROM group_rollups WHERE customer_id = ? AND hour = ? AND event_type = ? AND grp <> '*'")
    .pluck();
  const knownGroups = db
    .prepare("SELECT grp FROM group_rollups WHERE customer_id = ? AND hour = ? AND event_type = ? AND grp <> '*'")
    .pluck();
  const upsertGroup = db.prepare(rollupUpsertSql('VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', SQLITE_MERGE, GROUP_ROLLUPS));
  const insertUnique = db.prepare(`INSERT OR IGNORE INTO unique_values (${UNIQUE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`);

  const upsert = (h: GroupHour, group: string, state: RollupState): void => {
    upsertGroup.run(h.customerId, h.hour, h.eventType, group, stateParams(state));
  };

  return {
    /**
     * Writes a fold's groups and unique values; returns how many new groups went to the overflow group.
     * `grouped` holds each grouped hour, in the fold's key order, with the hour's event count after this
     * fold's upsert of the hour totals. An hour holds at most as many groups as events, so one whose count
     * is within the bound is written straight away: only hours that could pass it read what is stored.
     */
    write(grouped: readonly GroupedHour[], uniques: readonly UniqueHour[], maxGroupsPerHour: number): number {
      if (grouped.length === 0 && uniques.length === 0) return 0;
      let overflowed = 0;
      let plans: Map<string, GroupPlan> | undefined;
      for (const g of grouped) {
        const total = g.total;
        if ('sole' in g) {
          const o = g.sole;
          if (total <= maxGroupsPerHour) {
            upsertGroup.run(o.customerId, o.hour, o.eventType, o.group, o.params);
            continue;
          }
        }
        const h =
          'sole' in g
            ? soleGroupHour(g.sole.customerId, g.sole.eventType, g.sole.hour, g.sole.state, g.sole.group, g.sole.firstSeq)
            : g.hour;
        const count = total <= maxGroupsPerHour ? 0 : (countGroups.get(h.customerId, h.hour, h.eventType) as number);
        if (count + h.groups.size <= maxGroupsPerHour) {
          // Every group fits and is counted in itself, upserted in key order.
          if (h.groups.size === 1) for (const [g, fg] of h.groups) upsert(h, g, fg.state);
          else for (const g of [...h.groups.keys()].sort(compareText)) upsert(h, g, h.groups.get(g)!.state);
          continue;
        }
        const key = hourKey(h.customerId, h.eventType, h.hour);
        const known = new Set(knownGroups.all(h.customerId, h.hour, h.eventType) as string[]);
        const plan = planGroups([h], new Map([[key, { count, known }]]), maxGroupsPerHour);
        for (const r of plan.rows) upsert(h, r.group, r.state);
        overflowed += plan.overflowed;
        (plans ??= new Map()).set(key, plan);
      }
      if (uniques.length > 0) {
        const resolve = (c: string, t: string, hour: number, g: string): string =>
          plans?.get(hourKey(c, t, hour))?.resolve(c, t, hour, g) ?? g;
        for (const u of planUniques(uniques, resolve))
          insertUnique.run(u.customerId, u.period, u.periodStart, u.eventType, u.group, u.token);
      }
      return overflowed;
    },
  };
}

/** The reads of the dimension tables (the store brings derived state up to date before each). */
/** `totals` is the store's merged read of the hour totals (prepareUsageStatements), shared by the running merges. */
export function createDimensionReads(db: Database.Database, totals: (p: { c: string; from: number; to: number }) => RollupTableRow[]) {
  const hours = db.prepare(GROUP_HOURS_SQL);
  const uniques = db.prepare(UNIQUE_COUNTS_SQL);
  const uniquesOver = db.prepare(UNIQUE_COUNTS_OVER_SQL);
  type GroupRow = Parameters<typeof toGroupState>[0];
  const merged = exactMergedRead<GroupRow>(db, MERGED_GROUPS_SQL, MERGED_GROUPS_UDF_SQL);
  const mergedSole = exactMergedRead<GroupRow>(db, MERGED_SOLE_GROUPS_SQL, MERGED_SOLE_GROUPS_UDF_SQL);
  /** Both queries in one read transaction: one snapshot, even while another process derives on the same file. */
  const readBoth = db.transaction((params: { c: string; from: number; to: number }): GroupState[] => {
    const out = merged(params).map(toGroupState);
    const sole = mergedSole(params);
    if (sole.length === 0) return out;
    const index = new Map(out.map((g) => [`${g.eventType}\u0000${g.group}`, g]));
    for (const row of sole) {
      const g = toGroupState(row);
      const same = index.get(`${g.eventType}\u0000${g.group}`);
      if (same) mergeInto(same, g);
      else out.push(g);
    }
    return out;
  });
  const merges = createGroupMerges(
    db,
    (c, from, to) => totals({ c, from, to }).map(toRollup),
    (c, from, to) => readBoth({ c, from, to }),
  );
  return {
    /** Each (type, group) of the range merged: from group_rollups and from the hours that keep one group in their total. */
    merged: (customerId: string, from: number, to: number): GroupState[] => readBoth({ c: customerId, from, to }),
    /** A period's totals and groups in one snapshot, through its running merge while that is current. */
    period: merges.read,
    advance: merges.advance,
    drop: merges.drop,
    hours: (customerId: string, eventType: string, from: number, to: number): Array<GroupState & { hour: number }> =>
      (hours.all({ c: customerId, from, to, t: eventType }) as GroupRow[]).map(toGroupState),
    uniques: (customerId: string, period: Period, periodStart: number): UniqueCount[] =>
      (uniques.all(customerId, period, periodStart) as UniqueCountRow[]).map(toUniqueCount),
    uniquesOver: (customerId: string, eventType: string, period: Period, from: number, to: number) =>
      (uniquesOver.all(customerId, period, from, to, eventType) as UniqueCountRow[]).map(toUniqueCount),
  };
}
