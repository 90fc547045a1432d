// Owns the SQLite ingest path: insert events with dedupe, fold them into hour rollups and mark the
// periods they touch, all inside the caller's transaction. Must never commit a unit that has a conflict.

import type Database from 'better-sqlite3';
import { sameContent, type NewEvent } from '../../domain/event-rules.js';
import { HOUR_MS, periodInterval, type Period } from '../../domain/periods.js';
import { mergeInto, stateOfEvent, type RollupState } from '../../domain/rollup-state.js';
import type { AppendOutcome, AppendUnit, AppendedEvent } from '../store.js';

interface PendingRollup {
  customerId: string;
  eventType: string;
  hour: number;
  state: RollupState;
}

class UnitConflict extends Error {
  constructor(readonly conflicts: Array<{ index: number; id: string }>) {
    super('event id conflict');
  }
}

export function createAppender(db: Database.Database) {
  const insertEvent = db.prepare(
    `INSERT INTO events (customer_id, event_type, event_id, ts, received_at, value, metadata)
     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  );
  const findById = db.prepare(
    'SELECT seq, value, metadata, ts FROM events WHERE customer_id = ? AND event_type = ? AND event_id = ?',
  );
  const upsertRollup = db.prepare(
    `INSERT INTO rollups (customer_id, hour, event_type, count, sum, vmin, vmax,
        first_ts, first_seq, first_value, last_ts, last_seq, last_value)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (customer_id, hour, event_type) DO UPDATE SET
       count = count + excluded.count,
       sum = sum + excluded.sum,
       vmin = min(vmin, excluded.vmin),
       vmax = max(vmax, excluded.vmax),
       first_value = CASE WHEN (excluded.first_ts, excluded.first_seq) < (first_ts, first_seq) THEN excluded.first_value ELSE first_value END,
       first_seq   = CASE WHEN (excluded.first_ts, excluded.first_seq) < (first_ts, first_seq) THEN excluded.first_seq ELSE first_seq END,
       first_ts    = CASE WHEN (excluded.first_ts, excluded.first_seq) < (first_ts, first_seq) THEN excluded.first_ts ELSE first_ts END,
       last_value  = CASE WHEN (excluded.last_ts, excluded.last_seq) > (last_ts, last_seq) THEN excluded.last_value ELSE last_value END,
       last_seq    = CASE WHEN (excluded.last_ts, excluded.last_seq) > (last_ts, last_seq) THEN excluded.last_seq ELSE last_seq END,
       last_ts     = CASE WHEN (excluded.last_ts, excluded.last_seq) > (last_ts, last_seq) THEN excluded.last_ts ELSE last_ts END`,
  );
  const upsertMark = db.prepare(
    `INSERT INTO dirty_periods (period, period_start, customer_id, change_seq) VALUES (?, ?, ?, ?)
     ON CONFLICT (period, period_start, customer_id) DO UPDATE SET change_seq = max(change_seq, excluded.change_seq)`,
  );

  /** Inserts one unit's events; returns per-event results and the events that are new. */
  function insertUnit(unit: AppendUnit): { results: AppendedEvent[]; fresh: Array<{ e: NewEvent; seq: number }> } {
    const results: AppendedEvent[] = [];
    const fresh: Array<{ e: NewEvent; seq: number }> = [];
    const conflicts: Array<{ index: number; id: string }> = [];
    unit.events.forEach((e, index) => {
      const info = insertEvent.run(e.customerId, e.eventType, e.id, e.ts, unit.receivedAt, e.value, e.metadata);
      if (info.changes === 1) {
        const seq = Number(info.lastInsertRowid);
        results.push({ seq, duplicate: false });
        fresh.push({ e, seq });
        return;
      }
      const stored = findById.get(e.customerId, e.eventType, e.id) as
        | { seq: number; value: number; metadata: string | null; ts: number }
        | undefined;
      if (stored && sameContent(stored, e)) results.push({ seq: stored.seq, duplicate: true });
      else conflicts.push({ index, id: e.id ?? '' });
    });
    if (conflicts.length > 0) throw new UnitConflict(conflicts);
    return { results, fresh };
  }
  // A nested better-sqlite3 transaction is a SAVEPOINT: a conflicting batch rolls back alone.
  const insertUnitAtomically = db.transaction(insertUnit);

  /**
   * Dirty marks known to exist. SQLite has one writer (this connection), and a close deletes marks in
   * the same transaction that reads their rollups, so a mark already present needs no upsert: in
   * steady state each customer's current periods are marked once, not on every event.
   */
  const knownMarks = new Set<string>();
  let pendingMarks: string[] = [];

  const appendAll = db.transaction((units: AppendUnit[], periods: readonly Period[]): AppendOutcome[] => {
    const rollups = new Map<string, PendingRollup>();
    const marks = new Map<string, { period: Period; start: number; customerId: string; seq: number }>();
    const startsByHour = new Map<number, Array<[Period, number]>>();
    const outcomes: AppendOutcome[] = [];

    for (const unit of units) {
      let inserted;
      try {
        inserted = unit.events.length === 1 ? insertUnit(unit) : insertUnitAtomically(unit);
      } catch (err) {
        if (err instanceof UnitConflict) {
          outcomes.push({ ok: false, conflicts: err.conflicts });
          continue;
        }
        throw err;
      }
      for (const { e, seq } of inserted.fresh) {
        const hour = e.ts - (e.ts % HOUR_MS);
        // Same order as the primary key (customer, hour, type); hours are fixed-width for sorting.
        const key = `${e.customerId}\u0000${String(hour).padStart(15, '0')}\u0000${e.eventType}`;
        const pending = rollups.get(key);
        const s = stateOfEvent(e.ts, seq, e.value);
        if (pending) mergeInto(pending.state, s);
        else rollups.set(key, { customerId: e.customerId, eventType: e.eventType, hour, state: s });

        let starts = startsByHour.get(hour);
        if (!starts) {
          starts = periods.map((p) => [p, periodInterval(p, hour).start] as [Period, number]);
          startsByHour.set(hour, starts);
        }
        for (const [period, start] of starts) {
          const mk = markKey(period, start, e.customerId);
          const m = marks.get(mk);
          if (m) m.seq = seq;
          else marks.set(mk, { period, start, customerId: e.customerId, seq });
        }
      }
      const duplicates = inserted.results.filter((r) => r.duplicate).length;
      outcomes.push({ ok: true, results: inserted.results, inserted: inserted.fresh.length, duplicates });
    }

    // Key order walks each B-tree once from left to right instead of jumping between pages.
    for (const key of [...rollups.keys()].sort()) {
      const r = rollups.get(key)!;
      const s = r.state;
      upsertRollup.run(r.customerId, r.hour, r.eventType, s.count, s.sum, s.min, s.max,
        s.firstTs, s.firstSeq, s.firstValue, s.lastTs, s.lastSeq, s.lastValue);
    }
    pendingMarks = [];
    for (const key of [...marks.keys()].sort()) {
      if (knownMarks.has(key)) continue;
      const m = marks.get(key)!;
      upsertMark.run(m.period, m.start, m.customerId, m.seq);
      pendingMarks.push(key);
    }
    return outcomes;
  });

  return {
    append(units: AppendUnit[], periods: readonly Period[]): AppendOutcome[] {
      const out = appendAll.immediate(units, periods);
      // Only after the commit: a rolled-back transaction must not leave marks believed present.
      if (knownMarks.size + pendingMarks.length > 2_000_000) knownMarks.clear();
      for (const k of pendingMarks) knownMarks.add(k);
      pendingMarks = [];
      return out;
    },
    /** Called after a committed close deleted these marks. */
    forgetMarks(keys: Iterable<string>): void {
      for (const k of keys) knownMarks.delete(k);
    },
  };
}

export function markKey(period: string, start: number, customerId: string): string {
  return `${period}\u0000${start}\u0000${customerId}`;
}
