// Owns PostgreSQL's event retention: dropping whole monthly partitions past the cutoff (with their
// idempotency keys), then deleting stragglers of the default partition in chunks, one process at a
// time. Must never drop a partition that holds an event at or after the cutoff.

import type pg from 'pg';
import { partitionsBefore, RETENTION_LOCK } from './migrations.js';
import { withClient } from './with-client.js';

export function deleteEventsBeforePg(pool: pg.Pool, cutoff: number): Promise<{ deleted: number; partitionsDropped: string[] }> {
  return withClient(pool, async (c) => {
    try {
      // One process applies retention at a time; the others skip this round.
      const got = (await c.query('SELECT pg_try_advisory_lock($1) AS ok', [RETENTION_LOCK])).rows[0]?.ok === true;
      if (!got) return { deleted: 0, partitionsDropped: [] };
      try {
        const dropped: string[] = [];
        let deleted = 0;
        for (const part of await partitionsBefore(pool, cutoff)) {
          deleted += Number((await c.query(`SELECT count(*) AS n FROM ${part.name}`)).rows[0].n);
          await c.query('BEGIN');
          await c.query(`DROP TABLE ${part.name}`);
          await c.query('DELETE FROM event_keys WHERE ts >= $1 AND ts < $2', [part.start, part.end]);
          await c.query('COMMIT');
          dropped.push(part.name);
        }
        // Stragglers that landed in the default partition go row by row, in chunks.
        for (;;) {
          const r = await c.query(
            // Their keys by primary key (exact, whatever else shares the ts); an event without an id has none.
            // Counted by events deleted, with or without an id.
            `WITH d AS (DELETE FROM events_default WHERE (ts, seq) IN (SELECT ts, seq FROM events_default WHERE ts < $1 LIMIT 5000)
                      RETURNING customer_id, event_type, event_id, seq),
                  k AS (DELETE FROM event_keys k USING d
                        WHERE k.customer_id = d.customer_id AND k.event_type = d.event_type AND k.event_id = d.event_id AND k.seq = d.seq)
             SELECT count(*) AS n FROM d`,
            [cutoff],
          );
          const n = (await c.query('SELECT count(*) AS n FROM events_default WHERE ts < $1', [cutoff])).rows[0].n;
          deleted += Number(r.rows[0].n);
          if (Number(n) === 0) break;
        }
        return { deleted, partitionsDropped: dropped };
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [RETENTION_LOCK]).catch(() => undefined);
      }
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}
