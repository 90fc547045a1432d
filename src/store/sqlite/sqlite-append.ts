// Owns the SQLite ingest transaction: a unit's request key (Idempotency-Key) first, then each event
// deduped against its idempotency id and appended, and the request key recorded with them. Must never
// commit a unit that has a conflict, nor touch a derived table: sqlite-derived.ts folds committed
// events into rollups, marks and indexes later, in large sorted batches.

import type Database from 'better-sqlite3';
import { sameContent, type NewEvent } from '../../domain/event-rules.js';
import { deriveDimensions, NOTHING_DERIVED } from '../../domain/dimensions.js';
import type { Period } from '../../domain/periods.js';
import { NO_DIMENSIONS, type DimensionRules } from '../../domain/rules.js';
import { requestKeyOutcome, type AppendOutcome, type AppendUnit, type AppendedEvent } from '../store.js';
import { eventKeyHash } from './event-hash.js';
import type { PendingEvent, createDerivedState } from './sqlite-derived.js';

class UnitConflict extends Error {
  constructor(readonly conflicts: Array<{ index: number; id: string }>) {
    super('event id conflict');
  }
}

interface StoredIdentity {
  customer_id: string;
  event_type: string;
  event_id: string | null;
  seq: number;
  value: number;
  metadata: string | null;
  ts: number;
}

export function createAppender(db: Database.Database, derived: ReturnType<typeof createDerivedState>) {
  const insertEvent = db.prepare(
    `INSERT INTO events (seq, customer_id, event_type, event_id, ts, received_at, value, metadata)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const idsByHash = db.prepare('SELECT seq FROM event_ids WHERE h = ?').pluck();
  const bySeq = db.prepare('SELECT seq, customer_id, event_type, event_id, value, metadata, ts FROM events WHERE seq = ?');
  // One lookup and one insert per keyed request, never per event.
  const requestKeyHash = db.prepare('SELECT body_hash FROM request_keys WHERE request_key = ?').pluck();
  const insertRequestKey = db.prepare('INSERT INTO request_keys (request_key, body_hash, created_at) VALUES (?, ?, ?)');

  /** Events of the group being written, by idempotency hash; they are in no table the lookup reads yet. */
  let staged = new Map<number, PendingEvent[]>();
  let groupEvents: PendingEvent[] = [];

  function sameIdentity(row: StoredIdentity | undefined, e: NewEvent): row is StoredIdentity {
    return row !== undefined && row.event_id === e.id && row.customer_id === e.customerId && row.event_type === e.eventType;
  }

  /** The stored event with e's identity, if any: the hash only narrows the candidates. */
  function findStored(e: NewEvent, h: number): StoredIdentity | undefined {
    for (const p of staged.get(h) ?? []) {
      const row = bySeq.get(p.seq) as StoredIdentity | undefined;
      if (sameIdentity(row, e)) return row;
    }
    const pend = derived.pendingSeqs(h);
    const seqs: number[] = pend === undefined ? [] : typeof pend === 'number' ? [pend] : pend;
    for (const seq of [...seqs, ...(idsByHash.all(h) as number[])]) {
      const row = bySeq.get(seq) as StoredIdentity | undefined;
      if (sameIdentity(row, e)) return row;
    }
    return undefined;
  }

  /** An event's group and unique value from its metadata, for callers that did not derive them at capture. */
  function derivedOf(e: NewEvent): { group: string | null; unique: string | null } {
    const rule = derived.dimensions().types[e.eventType];
    if (!rule) return NOTHING_DERIVED;
    return deriveDimensions(e.metadata === null ? null : (JSON.parse(e.metadata) as Record<string, unknown>), rule);
  }

  function insertUnit(unit: AppendUnit): { results: AppendedEvent[]; fresh: PendingEvent[] } {
    const results: AppendedEvent[] = [];
    const fresh: PendingEvent[] = [];
    const conflicts: Array<{ index: number; id: string }> = [];
    unit.events.forEach((e, index) => {
      const h = e.id === null ? null : eventKeyHash(e.customerId, e.eventType, e.id);
      if (h !== null) {
        const stored = findStored(e, h);
        if (stored) {
          if (sameContent(stored, e)) results.push({ seq: stored.seq, duplicate: true });
          else conflicts.push({ index, id: e.id ?? '' });
          return;
        }
      }
      const seq = derived.takeSeq();
      insertEvent.run(seq, e.customerId, e.eventType, e.id, e.ts, unit.receivedAt, e.value, e.metadata);
      const d = e.group !== undefined ? { group: e.group, unique: e.unique ?? null } : derivedOf(e);
      const p: PendingEvent = { seq, customerId: e.customerId, eventType: e.eventType, ts: e.ts, value: e.value, hash: h, ...d };
      results.push({ seq, duplicate: false });
      fresh.push(p);
      if (h !== null) {
        const same = staged.get(h);
        if (same) same.push(p);
        else staged.set(h, [p]);
      }
    });
    if (conflicts.length > 0) {
      for (const p of fresh) if (p.hash !== null) staged.get(p.hash)!.pop();
      throw new UnitConflict(conflicts);
    }
    // In the unit's savepoint: the key is recorded exactly when its events are.
    const k = unit.requestKey;
    if (k) insertRequestKey.run(k.key, k.hash, k.createdAt);
    return { results, fresh };
  }
  // A nested better-sqlite3 transaction is a SAVEPOINT: a conflicting batch rolls back alone.
  const insertUnitAtomically = db.transaction(insertUnit);

  const appendAll = db.transaction((units: AppendUnit[]): AppendOutcome[] => {
    const outcomes: AppendOutcome[] = [];
    for (const unit of units) {
      // Units run one after another, so a second request with the same key in this group sees the first's row.
      const seen = unit.requestKey ? requestKeyOutcome(unit, requestKeyHash.get(unit.requestKey.key) as string | undefined) : undefined;
      if (seen) {
        outcomes.push(seen);
        continue;
      }
      let inserted: ReturnType<typeof insertUnit>;
      try {
        inserted = unit.events.length === 1 && !unit.requestKey ? insertUnit(unit) : insertUnitAtomically(unit);
      } catch (err) {
        if (err instanceof UnitConflict) {
          outcomes.push({ ok: false, conflicts: err.conflicts });
          continue;
        }
        throw err;
      }
      for (const p of inserted.fresh) groupEvents.push(p);
      const duplicates = inserted.results.filter((r) => r.duplicate).length;
      outcomes.push({ ok: true, results: inserted.results, inserted: inserted.fresh.length, duplicates });
    }
    return outcomes;
  });

  return {
    append(units: AppendUnit[], periods: readonly Period[], dimensions: DimensionRules = NO_DIMENSIONS): AppendOutcome[] {
      derived.noteRules(periods, dimensions);
      staged = new Map();
      groupEvents = [];
      let largestUnit = 0;
      for (const u of units) largestUnit = Math.max(largestUnit, u.events.length);
      try {
        const out = appendAll.immediate(units);
        // Only after the commit (a rolled-back group must leave nothing pending), and with nothing
        // between the commit and this call that could throw.
        derived.committed(groupEvents, periods, largestUnit);
        return out;
      } finally {
        staged = new Map();
        groupEvents = [];
      }
    },
  };
}
