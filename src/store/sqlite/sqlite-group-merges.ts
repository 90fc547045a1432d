// Owns SQLite's running merges of open periods' groups (group_merges, group_merge_heads): the read of a
// period's totals and groups that uses a merge while it is current, and the advance that extends or rebuilds one.
// Must never decide whether a merge is current: group-merge-plan.ts does, over totals read in the same transaction.

import type Database from 'better-sqlite3';
import { OPERATOR_READS, type GroupOperators, type StateField } from '../../domain/operators.js';
import type { Period } from '../../domain/periods.js';
import type { GroupState, RollupRow } from '../../domain/records.js';
import {
  advanceTarget,
  combineGroups,
  combineTotals,
  coveredIsCurrent,
  headTotals,
  mergeIsCurrent,
  parseHead,
  type AdvanceOutcome,
  type MergeCustomer,
  type PeriodMerge,
} from '../group-merge-plan.js';
import { GROUP_MERGES, rollupUpsertSql, SQLITE_MERGE, STATE_COLUMNS } from '../rollup-upsert.js';
import { FIELD_COLUMNS, groupStateOfColumns, projectedGroupState, stateParams } from '../rows.js';

const KEY = 'customer_id = ? AND period = ? AND period_start = ?';

/** `totals` and `groups` merge [from, to) of one customer (the store's merged reads). */
export function createGroupMerges(
  db: Database.Database,
  totals: (customerId: string, from: number, to: number) => RollupRow[],
  groups: (customerId: string, from: number, to: number) => GroupState[],
) {
  const head = db.prepare(`SELECT through, totals FROM group_merge_heads WHERE ${KEY}`);
  // A merge's rows are most of a read's cost: only the columns each meter's operator reads are decoded.
  const cached = new Map<StateField | null, Database.Statement>();
  const cachedStatement = (field: StateField | null) => {
    let st = cached.get(field);
    if (!st) {
      const columns = field === null ? '' : `, ${FIELD_COLUMNS[field]}`;
      st = db.prepare(`SELECT event_type, grp, count${columns} FROM group_merges WHERE ${KEY} AND event_type = ?`).raw(true);
      cached.set(field, st);
    }
    return st;
  };
  const upsert = db.prepare(rollupUpsertSql('VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', SQLITE_MERGE, GROUP_MERGES));
  const clear = db.prepare(`DELETE FROM group_merges WHERE ${KEY}`);
  const writeHead = db.prepare(
    'INSERT OR REPLACE INTO group_merge_heads (customer_id, period, period_start, through, totals) VALUES (?, ?, ?, ?, ?)',
  );
  const oldHeads = db.prepare('SELECT customer_id, period_start FROM group_merge_heads WHERE period = ? AND period_start < ?');
  const dropHead = db.prepare(`DELETE FROM group_merge_heads WHERE ${KEY}`);
  type HeadRow = { through: number; totals: string };
  const headOf = (c: string, period: Period, start: number) => {
    const row = head.get(c, period, start) as HeadRow | undefined;
    return row ? parseHead(row) : undefined;
  };
  const cachedOf = (c: string, period: Period, start: number, operators: GroupOperators): GroupState[] => {
    const out: GroupState[] = [];
    for (const [type, op] of operators) {
      const field = OPERATOR_READS[op];
      for (const r of cachedStatement(field).all(c, period, start, type) as unknown[][]) out.push(projectedGroupState(field, r));
    }
    return out;
  };
  // The hours after a merge (an hour or two) are read row by row: cheaper than merging them in SQL.
  const RANGE = 'customer_id = ? AND hour >= ? AND hour < ?';
  const recentTotals = db.prepare(`SELECT event_type, sole_grp, ${STATE_COLUMNS} FROM rollups WHERE ${RANGE}`).raw(true);
  const recentGroups = db.prepare(`SELECT event_type, grp, ${STATE_COLUMNS} FROM group_rollups WHERE ${RANGE}`).raw(true);
  // How many events the covered hours hold now, against the head's: one sum of integers over the range, no grouping.
  const coveredCount = db.prepare(`SELECT coalesce(sum(count), 0) FROM rollups WHERE ${RANGE}`).pluck();

  /** One snapshot (a read transaction), even while another process derives on the same file. */
  const read = db.transaction((c: string, period: Period, from: number, to: number, operators: GroupOperators): PeriodMerge => {
    const h = headOf(c, period, from);
    if (!h || h.through > to) return { rollups: totals(c, from, to), groups: groups(c, from, to), merge: 'none' };
    if (!coveredIsCurrent(h, coveredCount.get(c, from, h.through) as number)) {
      return { rollups: totals(c, from, to), groups: groups(c, from, to), merge: 'stale' };
    }
    // Each hour's total as a group state whose group is the hour's sole group (null when it has none).
    const recent = h.through < to ? (recentTotals.all(c, h.through, to) as unknown[][]).map(groupStateOfColumns) : [];
    const live = recent.filter((g) => g.group !== null);
    if (h.through < to) for (const r of recentGroups.all(c, h.through, to) as unknown[][]) live.push(groupStateOfColumns(r));
    return { rollups: combineTotals(h, recent, from), groups: combineGroups(cachedOf(c, period, from, operators), live), merge: 'current' };
  });

  const advanceOne = (c: string, period: Period, start: number, through: number, recheck: boolean): AdvanceOutcome => {
    const h = headOf(c, period, start);
    const target = advanceTarget(h, start, through, recheck);
    if (target === undefined) return 'current';
    const whole = totals(c, start, target);
    const put = (g: GroupState) => upsert.run(c, period, start, g.eventType, g.group, stateParams(g));
    let outcome: AdvanceOutcome;
    if (h && mergeIsCurrent(h, whole, h.through < target ? totals(c, h.through, target) : [])) {
      if (h.through === target) return 'current';
      for (const g of groups(c, h.through, target)) put(g);
      outcome = 'advanced';
    } else {
      clear.run(c, period, start);
      for (const g of groups(c, start, target)) put(g);
      outcome = 'rebuilt';
    }
    writeHead.run(c, period, start, target, headTotals(whole));
    return outcome;
  };

  const advance = db.transaction((period: Period, periodStart: number, through: number, customers: readonly MergeCustomer[]) => {
    const out = { advanced: 0, rebuilt: 0 };
    for (const { customerId, recheck } of customers) {
      const r = advanceOne(customerId, period, periodStart, through, recheck);
      if (r !== 'current') out[r]++;
    }
    return out;
  });
  const drop = db.transaction((period: Period, beforeStart: number): number => {
    const old = oldHeads.all(period, beforeStart) as Array<{ customer_id: string; period_start: number }>;
    for (const o of old) {
      clear.run(o.customer_id, period, o.period_start);
      dropHead.run(o.customer_id, period, o.period_start);
    }
    return old.length;
  });

  return {
    /** `operators`: the grouped meters and their operators; their groups hold what the operator reads (OPERATOR_READS). */
    read: (c: string, period: Period, from: number, to: number, operators: GroupOperators): PeriodMerge =>
      read(c, period, from, to, operators),
    /** Advances each customer's merge of one period to `through`, in one write transaction. */
    advance: (period: Period, periodStart: number, through: number, customers: readonly MergeCustomer[]) => {
      // Most ticks find most merges at the hour already: looked up first, without taking the write lock.
      const due = customers.filter(
        (x) => x.recheck || advanceTarget(headOf(x.customerId, period, periodStart), periodStart, through, false) !== undefined,
      );
      return due.length === 0 ? { advanced: 0, rebuilt: 0 } : advance.immediate(period, periodStart, through, due);
    },
    /** Drops the merges of periods of kind `period` that started before `beforeStart`; returns how many. */
    drop: (period: Period, beforeStart: number): number => drop.immediate(period, beforeStart),
  };
}
