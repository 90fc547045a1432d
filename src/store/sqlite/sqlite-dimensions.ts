// Owns SQLite's tables of dimensions: the writes of a fold's dimensions, inside the slice transaction after the
// hour totals (group states under the per-hour group bound, unique values per period), and their reads.
// Must never decide anything itself: group-plan.ts decides; SQLite has one writer, so what it reads is all committed.

import type Database from 'better-sqlite3';
import type { HourFold } from '../../domain/fold.js';
import { hourKey, hoursNearBound, hoursToCount, planGroups, planUniques, type StoredGroups } from '../group-plan.js';
import type { Period } from '../../domain/periods.js';
import type { GroupState, UniqueCount } from '../../domain/records.js';
import { GROUP_ROLLUPS, rollupUpsertSql, SQLITE_MERGE, UNIQUE_COLUMNS } from '../rollup-upsert.js';
import { stateParams, toGroupState, toUniqueCount, type UniqueCountRow } from '../rows.js';
import { MERGED_GROUPS_SQL, UNIQUE_COUNTS_OVER_SQL, UNIQUE_COUNTS_SQL } from './sqlite-sql.js';

export function createDimensionWriter(db: Database.Database) {
  const countGroups = db
    .prepare("SELECT count(*) FROM group_rollups WHERE customer_id = ? AND hour = ? AND event_type = ? AND grp <> '*'")
    .pluck();
  const knownGroups = db
    .prepare("SELECT grp FROM group_rollups WHERE customer_id = ? AND hour = ? AND event_type = ? AND grp <> '*'")
    .pluck();
  const upsertGroup = db.prepare(rollupUpsertSql('VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', SQLITE_MERGE, GROUP_ROLLUPS));
  const insertUnique = db.prepare(`INSERT OR IGNORE INTO unique_values (${UNIQUE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`);

  return {
    /**
     * Writes the fold's groups and unique values; returns how many new groups went to the overflow group.
     * `totals` holds each grouped hour's event count after this fold's upsert of the hour totals.
     */
    write(fold: HourFold, maxGroupsPerHour: number, totals: ReadonlyMap<string, number>): number {
      const hours = fold.groupHours();
      const uniques = fold.uniqueHours();
      if (hours.length === 0 && uniques.length === 0) return 0;
      const counts = new Map<string, number>();
      for (const h of hoursToCount(hours, totals, maxGroupsPerHour)) {
        counts.set(hourKey(h.customerId, h.eventType, h.hour), countGroups.get(h.customerId, h.hour, h.eventType) as number);
      }
      const stored = new Map<string, StoredGroups>();
      for (const [k, count] of counts) stored.set(k, { count });
      for (const h of hoursNearBound(hours, counts, maxGroupsPerHour)) {
        const k = hourKey(h.customerId, h.eventType, h.hour);
        stored.set(k, { count: counts.get(k)!, known: new Set(knownGroups.all(h.customerId, h.hour, h.eventType) as string[]) });
      }
      const plan = planGroups(hours, stored, maxGroupsPerHour);
      for (const r of plan.rows) upsertGroup.run(r.customerId, r.hour, r.eventType, r.group, ...stateParams(r.state));
      for (const u of planUniques(uniques, plan.resolve))
        insertUnique.run(u.customerId, u.period, u.periodStart, u.eventType, u.group, u.token);
      return plan.overflowed;
    },
  };
}

/** The reads of the dimension tables (the store brings derived state up to date before each). */
export function createDimensionReads(db: Database.Database) {
  const merged = db.prepare(MERGED_GROUPS_SQL);
  const hours = db.prepare('SELECT * FROM group_rollups WHERE customer_id = ? AND hour >= ? AND hour < ? AND event_type = ?');
  const uniques = db.prepare(UNIQUE_COUNTS_SQL);
  const uniquesOver = db.prepare(UNIQUE_COUNTS_OVER_SQL);
  type GroupRow = Parameters<typeof toGroupState>[0];
  return {
    merged: (customerId: string, from: number, to: number): GroupState[] =>
      (merged.all({ c: customerId, from, to }) as GroupRow[]).map(toGroupState),
    hours: (customerId: string, eventType: string, from: number, to: number): Array<GroupState & { hour: number }> =>
      (hours.all(customerId, from, to, eventType) as GroupRow[]).map(toGroupState),
    uniques: (customerId: string, period: Period, periodStart: number): UniqueCount[] =>
      (uniques.all(customerId, period, periodStart) as UniqueCountRow[]).map(toUniqueCount),
    uniquesOver: (customerId: string, eventType: string, period: Period, from: number, to: number) =>
      (uniquesOver.all(customerId, period, from, to, eventType) as UniqueCountRow[]).map(toUniqueCount),
  };
}
