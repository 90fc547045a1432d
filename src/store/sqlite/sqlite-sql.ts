// Owns the SQLite adapter's fixed SQL texts and column maps: the merged usage read (its query plan is
// tested on its own), the indexed event listing columns and the oldest-undelivered query.
// Must never change the merged read's shape without the plan test: it relies on two primary-key lookups per type.

import { UNDELIVERED_STATUSES } from '../../domain/deliveries.js';
import { type EventColumns, sqlStringList } from '../sql-where.js';

// Merging in SQL returns one row per event type instead of one per hour, in one pass over the
// range. Hours partition time, so a type's first event is in its earliest hour's row and its
// last in its latest: two primary-key lookups fetch them, with no per-row key building.
export const MERGED_ROLLUPS_SQL = `
        WITH a AS (SELECT event_type, sum(count) AS count, meterhook_dec_sum(sum) AS sum, min(vmin) AS vmin, max(vmax) AS vmax,
                          min(hour) AS first_hour, max(hour) AS last_hour
                   FROM rollups WHERE customer_id = @c AND hour >= @from AND hour < @to GROUP BY event_type)
        SELECT a.event_type, @from AS hour, a.count, a.sum, a.vmin, a.vmax, f.first_ts, f.first_seq, f.first_value,
               l.last_ts, l.last_seq, l.last_value
        FROM a
        -- CROSS JOIN fixes the order: one row per type from a, then a primary-key lookup each.
        CROSS JOIN rollups f ON f.customer_id = @c AND f.hour = a.first_hour AND f.event_type = a.event_type
        CROSS JOIN rollups l ON l.customer_id = @c AND l.hour = a.last_hour AND l.event_type = a.event_type`;

/** GET /events walks a derived index `i` (customer or time) and filters the type on the event `e` it joins. */
export const INDEXED_EVENT_COLUMNS: EventColumns = { customerId: 'i.customer_id', eventType: 'e.event_type', ts: 'i.ts', seq: 'i.seq' };

export const OLDEST_UNDELIVERED_SQL = `SELECT min(created_at) AS t FROM deliveries
  WHERE status IN (${sqlStringList(UNDELIVERED_STATUSES)})`;
