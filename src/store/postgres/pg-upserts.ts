// Owns the PostgreSQL statements that write many aggregation documents or outbox messages at once from
// unnest() column arrays (see aggregationColumns and messageColumns), and the hour-state column arrays
// that the rollup and group upserts share. Must never map rows read back: rows.ts does.

import { formatFixed } from '../../domain/decimal.js';
import type { RollupState } from '../../domain/rollup-state.js';
import { numberArray } from './pg-arrays.js';

export const UPSERT_AGGREGATIONS = `
  INSERT INTO aggregations AS a (id, customer_id, period, period_key, period_start, period_end, events, event_counts,
      final, revision, computed_at, finalized_at, webhook_status, groups)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[],
      $9::boolean[], $10::int[], $11::bigint[], $12::bigint[], $13::text[], $14::text[])
  ON CONFLICT (customer_id, period, period_start) DO UPDATE SET
    events = excluded.events, event_counts = excluded.event_counts, final = excluded.final, revision = excluded.revision,
    computed_at = excluded.computed_at, finalized_at = excluded.finalized_at, webhook_status = excluded.webhook_status,
    groups = excluded.groups`;

/** New messages only (an id already written is skipped); returns the ids it wrote. */
export const INSERT_MESSAGES = `
  INSERT INTO messages (id, aggregation_id, revision, type, customer_id, period, created_at, body)
  SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[])
  ON CONFLICT DO NOTHING RETURNING id`;

/** The ten hour-state columns of `states` as unnest array literals, in the order of STATE_COLUMNS (rollup-upsert.ts). */
export function stateArrays(states: readonly RollupState[]): string[] {
  return [
    states.map((s) => s.count),
    states.map((s) => formatFixed(s.sum)),
    states.map((s) => s.min),
    states.map((s) => s.max),
    states.map((s) => s.firstTs),
    states.map((s) => s.firstSeq),
    states.map((s) => s.firstValue),
    states.map((s) => s.lastTs),
    states.map((s) => s.lastSeq),
    states.map((s) => s.lastValue),
  ].map(numberArray);
}
