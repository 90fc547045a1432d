// Owns the SQL form of merging hour states and dirty marks on conflict, written once for both adapters:
// the same merge as domain/rollup-state.ts's mergeInto. Must never differ between the stores except in
// the dialect's spelling of least/greatest and of exact decimal addition.

/** How a store spells what the merge needs; the upsert's target row is aliased `t`. */
export interface MergeDialect {
  least: string;
  greatest: string;
  /** Exact decimal addition of two sums. */
  addSums: (a: string, b: string) => string;
}

export const SQLITE_MERGE: MergeDialect = { least: 'min', greatest: 'max', addSums: (a, b) => `meterhook_dec_add(${a}, ${b})` };
export const POSTGRES_MERGE: MergeDialect = { least: 'least', greatest: 'greatest', addSums: (a, b) => `${a} + ${b}` };

/** The state columns of every hour-state table, in table order. */
export const STATE_COLUMNS = 'count, sum, vmin, vmax, first_ts, first_seq, first_value, last_ts, last_seq, last_value';
export const ROLLUP_COLUMNS = `customer_id, hour, event_type, ${STATE_COLUMNS}`;

/**
 * Where hour states are merged: the hour totals, or the groups of meters with groupBy (one more key column).
 * The totals carry `sole_grp` after the state: the one group of every event of the hour so far, while there is
 * one, and then no group_rollups row holds the hour: its group's state is the total's. The upsert keeps it only
 * while the rows merged bring that same group; when it becomes null, the store's trigger writes the group's row
 * from the stored total (migration sole-groups), before the writer upserts the groups it brings.
 */
export interface StateTable {
  table: string;
  keys: string;
  sole: boolean;
}
export const ROLLUPS: StateTable = { table: 'rollups', keys: 'customer_id, hour, event_type', sole: true };
export const GROUP_ROLLUPS: StateTable = { table: 'group_rollups', keys: 'customer_id, hour, event_type, grp', sole: false };
/** The running merges of open periods' groups (group-merge-plan.ts): one state per period, type and group. */
export const GROUP_MERGES: StateTable = { table: 'group_merges', keys: 'customer_id, period, period_start, event_type, grp', sole: false };

/** Keeps the stored sole group only while the rows merged bring that same group (CASE without ELSE: null). */
const SOLE_SET = `sole_grp = CASE WHEN t.sole_grp = excluded.sole_grp THEN t.sole_grp END,
       `;

/**
 * `INSERT INTO rollups AS t (…) <rows> ON CONFLICT … DO UPDATE`: counts and sums add, min and max keep
 * the extreme, first and last keep the earlier and the later by (event time, seq). Every SET reads the
 * stored row as it was, so the order of the assignments does not matter. Rows into the totals end with
 * their sole group (null for an hour of several groups, or of a type without groupBy).
 */
export function rollupUpsertSql(rows: string, d: MergeDialect, into: StateTable = ROLLUPS): string {
  const earlier = '(excluded.first_ts, excluded.first_seq) < (t.first_ts, t.first_seq)';
  const later = '(excluded.last_ts, excluded.last_seq) > (t.last_ts, t.last_seq)';
  const pick = (cond: string, col: string) => `${col} = CASE WHEN ${cond} THEN excluded.${col} ELSE t.${col} END`;
  return `INSERT INTO ${into.table} AS t (${into.keys}, ${STATE_COLUMNS}${into.sole ? ', sole_grp' : ''})
     ${rows}
     ON CONFLICT (${into.keys}) DO UPDATE SET
       ${into.sole ? SOLE_SET : ''}count = t.count + excluded.count,
       sum = ${d.addSums('t.sum', 'excluded.sum')},
       vmin = ${d.least}(t.vmin, excluded.vmin),
       vmax = ${d.greatest}(t.vmax, excluded.vmax),
       ${['first_ts', 'first_seq', 'first_value'].map((c) => pick(earlier, c)).join(',\n       ')},
       ${['last_ts', 'last_seq', 'last_value'].map((c) => pick(later, c)).join(',\n       ')}`;
}

/** Unique values, each inserted once: a value already in a period's set changes nothing. */
export const UNIQUE_COLUMNS = 'customer_id, period, period_start, event_type, grp, token';

/**
 * `INSERT INTO dirty_periods (…) <rows> ON CONFLICT DO NOTHING`: a new mark is written and an existing
 * one is left as it is. Safe only where no close can delete marks meanwhile: SQLite's one writer, and a
 * PostgreSQL derivation that holds its period instances' close generations (pg-close-generations.ts).
 */
export function markInsertSql(rows: string): string {
  return `INSERT INTO dirty_periods (period, period_start, customer_id, change_seq)
     ${rows}
     ON CONFLICT (period, period_start, customer_id) DO NOTHING`;
}
