// Owns SQLite's retention deletes: raw events (with their id keys and listing index entries) and request
// keys older than a cutoff, in short chunks. Must never delete an event set aside by a failed fold, nor
// hold one write transaction for long: each chunk is its own transaction, and ingest runs in between.

import type Database from 'better-sqlite3';
import { eventKeyHash } from './event-hash.js';

/** Rows per retention chunk: each chunk is one short write, and ingest runs between chunks. */
export const RETENTION_CHUNK = 5000;

/** Runs `chunk` (it deletes at most RETENTION_CHUNK rows) until a chunk comes back short; returns the total. */
export async function deleteInChunks(chunk: () => number): Promise<number> {
  let deleted = 0;
  for (;;) {
    const n = chunk();
    deleted += n;
    if (n < RETENTION_CHUNK) return deleted;
    // Chunks keep each write transaction short, so ingest is never blocked for long.
    await new Promise((r) => setImmediate(r));
  }
}

export function createRetention(db: Database.Database) {
  return {
    /** Deletes events older than `cutoff`; `beforeChunk` brings derived state and indexes up to date first. */
    async deleteEventsBefore(cutoff: number, beforeChunk: () => void): Promise<number> {
      const oldest = db.prepare(
        `SELECT e.seq, e.customer_id, e.event_type, e.event_id, e.ts FROM events_by_time i
         CROSS JOIN events e ON e.seq = i.seq WHERE i.ts < ?
           -- An event set aside because its fold failed is kept until it is folded.
           AND NOT EXISTS (SELECT 1 FROM derived_quarantine q WHERE q.seq = e.seq)
         ORDER BY i.ts, i.seq LIMIT ${RETENTION_CHUNK}`,
      );
      const del = {
        event: db.prepare('DELETE FROM events WHERE seq = ?'),
        id: db.prepare('DELETE FROM event_ids WHERE h = ? AND seq = ?'),
        byCustomer: db.prepare('DELETE FROM events_by_customer WHERE customer_id = ? AND ts = ? AND seq = ?'),
        byTime: db.prepare('DELETE FROM events_by_time WHERE ts = ? AND seq = ?'),
      };
      const chunk = db.transaction((): number => {
        const rows = oldest.all(cutoff) as Array<{
          seq: number;
          customer_id: string;
          event_type: string;
          event_id: string | null;
          ts: number;
        }>;
        for (const r of rows) {
          del.event.run(r.seq);
          if (r.event_id !== null) del.id.run(eventKeyHash(r.customer_id, r.event_type, r.event_id), r.seq);
          del.byCustomer.run(r.customer_id, r.ts, r.seq);
          del.byTime.run(r.ts, r.seq);
        }
        return rows.length;
      });
      return deleteInChunks(() => {
        beforeChunk();
        return chunk.immediate();
      });
    },

    /** Deletes request keys recorded before `cutoff`; returns how many. */
    async deleteRequestKeysBefore(cutoff: number): Promise<number> {
      const chunk = db.prepare(
        `DELETE FROM request_keys WHERE request_key IN
           (SELECT request_key FROM request_keys WHERE created_at < ? ORDER BY created_at LIMIT ${RETENTION_CHUNK})`,
      );
      return deleteInChunks(() => chunk.run(cutoff).changes);
    },
  };
}
