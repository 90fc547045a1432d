// Owns the SQLite adapter's fixed SQL texts and column maps: the usage reads and the close's writes, the merged
// usage reads (their query plans are tested on their own), the indexed event listing columns, the oldest-undelivered query.
// Must never change the merged read's shape without the plan test: it relies on two primary-key lookups per type.

import { STATE_COLUMNS } from '../rollup-upsert.js';
import type Database from 'better-sqlite3';
import { UNDELIVERED_STATUSES } from '../../domain/deliveries.js';
import type { RollupTableRow } from '../rows.js';
import { type EventColumns, sqlStringList } from '../sql-where.js';
import { EXACT_SUM_COLUMNS, EXACT_SUM_OUT, exactMergedRead, UDF_SUM_COLUMNS } from './exact-sum.js';

// Merging in SQL returns one row per event type instead of one per hour, in one pass over the
// range. Hours partition time, so a type's first event is in its earliest hour's row and its
// last in its latest: two primary-key lookups fetch them, with no per-row key building. Totals are
// summed exactly in SQLite's integers (exact-sum.ts); the *_UDF_SQL forms sum through JavaScript.
const mergedRollupsSql = (sums: string, sumOut: string) => `
        WITH a AS (SELECT event_type, sum(count) AS count, ${sums}, min(vmin) AS vmin, max(vmax) AS vmax,
                          min(hour) AS first_hour, max(hour) AS last_hour
                   FROM rollups WHERE customer_id = @c AND hour >= @from AND hour < @to GROUP BY event_type)
        SELECT a.event_type, @from AS hour, a.count, ${sumOut}, a.vmin, a.vmax, f.first_ts, f.first_seq, f.first_value,
               l.last_ts, l.last_seq, l.last_value
        FROM a
        -- CROSS JOIN fixes the order: one row per type from a, then a primary-key lookup each.
        CROSS JOIN rollups f ON f.customer_id = @c AND f.hour = a.first_hour AND f.event_type = a.event_type
        CROSS JOIN rollups l ON l.customer_id = @c AND l.hour = a.last_hour AND l.event_type = a.event_type`;
export const MERGED_ROLLUPS_SQL = mergedRollupsSql(EXACT_SUM_COLUMNS, EXACT_SUM_OUT);
export const MERGED_ROLLUPS_UDF_SQL = mergedRollupsSql(UDF_SUM_COLUMNS, 'a.sum');

/** GET /events walks a derived index `i` (customer or time) and filters the type on the event `e` it joins. */
export const INDEXED_EVENT_COLUMNS: EventColumns = { customerId: 'i.customer_id', eventType: 'e.event_type', ts: 'i.ts', seq: 'i.seq' };

export const OLDEST_UNDELIVERED_SQL = `SELECT min(created_at) AS t FROM deliveries
  WHERE status IN (${sqlStringList(UNDELIVERED_STATUSES)})`;

// The same merge for the groups of meters with groupBy: one row per (type, group), two primary-key lookups each.
const mergedGroupsSql = (sums: string, sumOut: string) => `
        WITH a AS (SELECT event_type, grp, sum(count) AS count, ${sums}, min(vmin) AS vmin, max(vmax) AS vmax,
                          min(hour) AS first_hour, max(hour) AS last_hour
                   FROM group_rollups WHERE customer_id = @c AND hour >= @from AND hour < @to GROUP BY event_type, grp)
        SELECT a.event_type, a.grp, a.count, ${sumOut}, a.vmin, a.vmax, f.first_ts, f.first_seq, f.first_value,
               l.last_ts, l.last_seq, l.last_value
        FROM a
        CROSS JOIN group_rollups f ON f.customer_id = @c AND f.hour = a.first_hour AND f.event_type = a.event_type AND f.grp = a.grp
        CROSS JOIN group_rollups l ON l.customer_id = @c AND l.hour = a.last_hour AND l.event_type = a.event_type AND l.grp = a.grp`;
export const MERGED_GROUPS_SQL = mergedGroupsSql(EXACT_SUM_COLUMNS, EXACT_SUM_OUT);
export const MERGED_GROUPS_UDF_SQL = mergedGroupsSql(UDF_SUM_COLUMNS, 'a.sum');

// The groups that hours keep in their totals' rows (sole_grp), merged the same way: a (type, hour) has one
// total row, so the lookups need no group. The store merges these with the rows of group_rollups.
const mergedSoleGroupsSql = (sums: string, sumOut: string) => `
        WITH a AS (SELECT event_type, sole_grp AS grp, sum(count) AS count, ${sums}, min(vmin) AS vmin, max(vmax) AS vmax,
                          min(hour) AS first_hour, max(hour) AS last_hour
                   FROM rollups WHERE customer_id = @c AND hour >= @from AND hour < @to AND sole_grp IS NOT NULL
                   GROUP BY event_type, sole_grp)
        SELECT a.event_type, a.grp, a.count, ${sumOut}, a.vmin, a.vmax, f.first_ts, f.first_seq, f.first_value,
               l.last_ts, l.last_seq, l.last_value
        FROM a
        CROSS JOIN rollups f ON f.customer_id = @c AND f.hour = a.first_hour AND f.event_type = a.event_type
        CROSS JOIN rollups l ON l.customer_id = @c AND l.hour = a.last_hour AND l.event_type = a.event_type`;
export const MERGED_SOLE_GROUPS_SQL = mergedSoleGroupsSql(EXACT_SUM_COLUMNS, EXACT_SUM_OUT);
export const MERGED_SOLE_GROUPS_UDF_SQL = mergedSoleGroupsSql(UDF_SUM_COLUMNS, 'a.sum');

/** One type's group states per hour: the rows of group_rollups and the sole groups of the totals' rows. */
export const GROUP_HOURS_SQL = `
        SELECT customer_id, hour, event_type, grp, ${STATE_COLUMNS} FROM group_rollups
        WHERE customer_id = @c AND hour >= @from AND hour < @to AND event_type = @t
        UNION ALL
        SELECT customer_id, hour, event_type, sole_grp AS grp, ${STATE_COLUMNS} FROM rollups
        WHERE customer_id = @c AND hour >= @from AND hour < @to AND event_type = @t AND sole_grp IS NOT NULL`;

/** Distinct values per unique meter and group in one period: a range of the primary key. */
export const UNIQUE_COUNTS_SQL = `SELECT event_type, grp, count(*) AS n FROM unique_values
  WHERE customer_id = ? AND period = ? AND period_start = ? GROUP BY event_type, grp`;

/** One unique meter's distinct values per period start and group over a range of periods. */
export const UNIQUE_COUNTS_OVER_SQL = `SELECT period_start, event_type, grp, count(*) AS n FROM unique_values
  WHERE customer_id = ? AND period = ? AND period_start >= ? AND period_start < ? AND event_type = ? GROUP BY period_start, grp`;

/** The usage reads and the close's writes, prepared once per connection. */
export function prepareUsageStatements(db: Database.Database) {
  return {
    rollups: db.prepare('SELECT * FROM rollups WHERE customer_id = ? AND hour >= ? AND hour < ?'),
    merged: exactMergedRead<RollupTableRow>(db, MERGED_ROLLUPS_SQL, MERGED_ROLLUPS_UDF_SQL),

    dueMarks: db.prepare(
      `SELECT period, period_start, customer_id, change_seq FROM dirty_periods
       WHERE period = ? AND period_start < ? AND (period_start, customer_id) > (?, ?)
       ORDER BY period_start, customer_id LIMIT ?`,
    ),
    openMarks: db.prepare(
      `SELECT period, period_start, customer_id, change_seq FROM dirty_periods
       WHERE period = ? AND period_start >= ? AND (period_start, customer_id) > (?, ?)
       ORDER BY period_start, customer_id LIMIT ?`,
    ),
    deleteMark: db.prepare('DELETE FROM dirty_periods WHERE period = ? AND period_start = ? AND customer_id = ?'),
    getAgg: db.prepare('SELECT * FROM aggregations WHERE customer_id = ? AND period = ? AND period_start = ?'),
    upsertAgg: db.prepare(
      `INSERT INTO aggregations (id, customer_id, period, period_key, period_start, period_end, events,
          event_counts, final, revision, computed_at, finalized_at, webhook_status, groups)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (customer_id, period, period_start) DO UPDATE SET
         events = excluded.events, event_counts = excluded.event_counts, final = excluded.final,
         revision = excluded.revision, computed_at = excluded.computed_at,
         finalized_at = excluded.finalized_at, webhook_status = excluded.webhook_status, groups = excluded.groups`,
    ),
    insertMessage: db.prepare(
      `INSERT INTO messages (id, aggregation_id, revision, type, customer_id, period, created_at, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    messagesOf: db.prepare('SELECT * FROM messages WHERE aggregation_id = ? ORDER BY revision'),
  };
}
