// Owns what happens when folding committed events into SQLite's derived state fails for a reason tied
// to the events rather than to the store: the slice is halved until the events that cannot be folded
// are found, each is set aside in derived_quarantine (key kept, watermark moved past it), and set-aside
// events are folded again later. Must never set an event aside for a transient store fault (busy,
// full, read-only, I/O), and never fold a set-aside event twice: its fold and its release commit together.

import type Database from 'better-sqlite3';
import type { Period } from '../../domain/periods.js';
import type { DimensionRules } from '../../domain/rules.js';
import { pendingOf, type EventRow, type PendingBatch, type PendingEvent } from './sqlite-pending.js';

export interface QuarantineDeps {
  /** The deriver's slice transaction; `retry` folds events below the watermark. Returns the top seq applied. */
  applySlice: Database.Transaction<(batches: PendingBatch[], retry?: boolean) => number>;
  /** Called after each committed slice (the deriver then trusts the marks it wrote). */
  afterSlice: () => void;
  /** The periods a replayed event marks. */
  periods: () => readonly Period[];
  /** The dimension rules a replayed event is derived with. */
  dimensions: () => DimensionRules;
  isTransient: (err: unknown) => boolean;
  onQuarantine: (seq: number, customerId: string, err: unknown) => void;
}

export function createQuarantine(db: Database.Database, deps: QuarantineDeps) {
  const insert = db.prepare(
    `INSERT INTO derived_quarantine (seq, customer_id, error, attempts, first_at, last_at) VALUES (?, ?, ?, 1, ?, ?)
     ON CONFLICT (seq) DO UPDATE SET error = excluded.error, attempts = attempts + 1, last_at = excluded.last_at`,
  );
  const release = db.prepare('DELETE FROM derived_quarantine WHERE seq = ?');
  const countRows = db.prepare('SELECT count(*) AS n FROM derived_quarantine');
  const setAsideRows = db.prepare(
    `SELECT e.seq, e.customer_id, e.event_type, e.event_id, e.ts, e.value, e.metadata FROM derived_quarantine q
     CROSS JOIN events e ON e.seq = q.seq ORDER BY q.seq`,
  );
  const keepKey = db.prepare('INSERT OR IGNORE INTO event_ids (h, seq) VALUES (?, ?)');
  const advanceWatermark = db.prepare('UPDATE derived_state SET applied_seq = max(applied_seq, ?) WHERE id = 1');

  /**
   * Sets one event aside: its idempotency key is kept (a retry of it stays a duplicate), the
   * watermark moves past it, and it is folded again later. Its usage joins the totals then, and its
   * periods close again as for a late event.
   */
  const setAside = db.transaction((e: PendingEvent, err: unknown) => {
    const now = Date.now();
    insert.run(e.seq, e.customerId, String((err as Error)?.message ?? err).slice(0, 1000), now, now);
    if (e.hash !== null) keepKey.run(e.hash, e.seq);
    advanceWatermark.run(e.seq);
  });
  /** Folds one set-aside event and releases it, in one transaction (the slice runs as a savepoint). */
  const foldAgain = db.transaction((e: PendingEvent) => {
    deps.applySlice([{ events: [e], periods: deps.periods(), bytes: 0 }], true);
    release.run(e.seq);
  });
  let count = (countRows.get() as { n: number }).n;

  return {
    /**
     * Applies batches in one slice; when that fails for a reason tied to the events (not the store),
     * halves it until the events that cannot be folded are found and set aside, so one bad event
     * never blocks the others, reads, closes or startup. Returns the highest seq now applied.
     */
    applyIsolating(batches: PendingBatch[], appliedSeq: number): number {
      try {
        const top = deps.applySlice.immediate(batches);
        deps.afterSlice();
        return top;
      } catch (err) {
        if (deps.isTransient(err)) throw err;
      }
      const items = batches.flatMap((b) => b.events.map((e) => ({ e, periods: b.periods })));
      let top = appliedSeq;
      const attempt = (list: typeof items): void => {
        try {
          top = Math.max(top, deps.applySlice.immediate(list.map((x) => ({ events: [x.e], periods: x.periods, bytes: 0 }))));
          deps.afterSlice();
          return;
        } catch (err) {
          if (deps.isTransient(err)) throw err;
          if (list.length === 1) {
            const e = list[0]!.e;
            setAside.immediate(e, err);
            count++;
            top = Math.max(top, e.seq);
            deps.onQuarantine(e.seq, e.customerId, err);
            return;
          }
        }
        const mid = list.length >> 1;
        attempt(list.slice(0, mid));
        attempt(list.slice(mid));
      };
      attempt(items);
      return top;
    },

    /** Folds set-aside events again; each that folds now leaves the quarantine. Returns how many did. */
    retry(): number {
      if (count === 0) return 0;
      let released = 0;
      for (const r of setAsideRows.all() as EventRow[]) {
        const e = pendingOf(r, deps.dimensions());
        try {
          foldAgain.immediate(e);
          deps.afterSlice();
          released++;
        } catch (err) {
          if (deps.isTransient(err)) throw err;
          setAside.immediate(e, err);
        }
      }
      count = (countRows.get() as { n: number }).n;
      return released;
    },

    count: () => count,
  };
}
