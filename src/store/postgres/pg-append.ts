// Owns the PostgreSQL ingest path: one transaction per group commit, one set-based statement (unnest)
// per unit for its ids and events together, each unit's request key (Idempotency-Key) in the unit's savepoint, and one
// derive-queue row naming the new events, whose hour states and marks are derived after the commit
// (pg-deriver.ts). Must never commit a unit that has an id conflict, nor its key without its events,
// nor new events without their queue row.

import type pg from 'pg';
import { sameContent, type NewEvent } from '../../domain/event-rules.js';
import type { Period } from '../../domain/periods.js';
import { deriveFromText } from '../../domain/dimensions.js';
import type { DimensionRules } from '../../domain/rules.js';
import { numberArray, textArray } from './pg-arrays.js';
import { QUEUE_INSERT_SQL, storedRules, type QueueItem } from './pg-derived.js';
import { requestKeyOutcome, type AppendOutcome, type AppendUnit, type AppendedEvent } from '../store.js';

interface Seqd {
  e: NewEvent;
  seq: number;
  receivedAt: number;
}

type Key = string;
const keyOf = (e: NewEvent): Key => `${e.customerId}\u0000${e.eventType}\u0000${e.id}`;

// One statement per unit: its keys (ON CONFLICT DO NOTHING, in the order given) and the events whose
// key it inserted or that carry no id, from one set of column arrays. It answers with the seqs of the
// events it left out (ids already stored, in this transaction or before): usually none, so one short row.
const INSERT_UNIT_SQL = `WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::float8[], $8::text[])
      AS u(seq, customer_id, event_type, event_id, ts, received_at, value, metadata)
  ), k AS (
    INSERT INTO event_keys (customer_id, event_type, event_id, ts, seq)
    SELECT customer_id, event_type, event_id, ts, seq FROM input WHERE event_id IS NOT NULL
    ON CONFLICT DO NOTHING RETURNING seq
  ), e AS (
    INSERT INTO events (seq, customer_id, event_type, event_id, ts, received_at, value, metadata)
    SELECT * FROM input WHERE event_id IS NULL OR seq IN (SELECT seq FROM k)
  )
  SELECT string_agg(seq::text, ',') AS left_out FROM input
  WHERE event_id IS NOT NULL AND seq NOT IN (SELECT seq FROM k)`;

type Stored = { seq: number; value: number; metadata: string | null; ts: number };

/**
 * Inserts `events` (their keys, then the events whose key is new or that have no id); returns, per
 * event, either null (stored now) or the stored event it repeats. Rows this transaction wrote are
 * compared from memory. The caller rolls back a unit that has a conflict.
 */
async function insertUnit(client: pg.PoolClient, events: Seqd[], bySeq: Map<number, Seqd>, round = 1): Promise<Map<number, Stored | null>> {
  // Key order within the statement: two concurrent statements lock index entries in one order. (A
  // transaction of several statements can still meet another one; tx() retries a deadlock.)
  // Each key built once, not twice per comparison; events without an id go last.
  const keyed = events.map((x) => ({ x, k: x.e.id === null ? null : keyOf(x.e) }));
  keyed.sort((a, b) => (a.k === b.k ? a.x.seq - b.x.seq : a.k === null ? 1 : b.k === null ? -1 : a.k < b.k ? -1 : 1));
  const rows = keyed.map((y) => y.x);
  const ins = await client.query(INSERT_UNIT_SQL, [
    numberArray(rows.map((x) => x.seq)),
    textArray(rows.map((x) => x.e.customerId)),
    textArray(rows.map((x) => x.e.eventType)),
    textArray(rows.map((x) => x.e.id)),
    numberArray(rows.map((x) => x.e.ts)),
    numberArray(rows.map((x) => x.receivedAt)),
    numberArray(rows.map((x) => x.e.value)),
    textArray(rows.map((x) => x.e.metadata)),
  ]);
  const result = new Map<number, Stored | null>();
  for (const x of events) result.set(x.seq, null);
  const leftOut = ins.rows[0]?.left_out as string | null | undefined;
  if (!leftOut) return result;
  const repeats = leftOut.split(',').map((s) => bySeq.get(Number(s))!);
  const found = await client.query(
    `SELECT k.customer_id, k.event_type, k.event_id, k.seq, k.ts, e.value, e.metadata
     FROM event_keys k LEFT JOIN events e ON e.ts = k.ts AND e.seq = k.seq
     WHERE (k.customer_id, k.event_type, k.event_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`,
    [repeats.map((x) => x.e.customerId), repeats.map((x) => x.e.eventType), repeats.map((x) => x.e.id)],
  );
  const stored = new Map<Key, Stored>();
  for (const r of found.rows) {
    const seq = Number(r.seq);
    const mine = bySeq.get(seq);
    // Written earlier in this transaction: compare with memory.
    const row = mine
      ? { seq, value: mine.e.value, metadata: mine.e.metadata, ts: mine.e.ts }
      : { seq, value: Number(r.value), metadata: r.metadata as string | null, ts: Number(r.ts) };
    stored.set(`${r.customer_id}\u0000${r.event_type}\u0000${r.event_id}`, row);
  }
  const vanished: Seqd[] = [];
  for (const x of repeats) {
    const st = stored.get(keyOf(x.e));
    if (st) result.set(x.seq, st);
    else vanished.push(x);
  }
  // A key can only vanish if retention deleted it between the two statements: insert those again. A key
  // that keeps vanishing is a defect (a key the look-up cannot match), not a race: fail the transaction.
  if (vanished.length > 0) {
    if (round >= 3) throw new Error(`idempotency keys left out but not found after ${round} rounds (${vanished.length} events)`);
    for (const [seq, st] of await insertUnit(client, vanished, bySeq, round + 1)) result.set(seq, st);
  }
  return result;
}

/**
 * Claims the unit's request key inside its savepoint. Returns the unit's outcome when the key was
 * recorded before (in this transaction by an earlier unit, or committed by another): a replay or a
 * conflict. A concurrent transaction holding the same key makes this wait for its commit or rollback.
 */
async function claimRequestKey(client: pg.PoolClient, unit: AppendUnit): Promise<AppendOutcome | undefined> {
  const k = unit.requestKey;
  if (!k) return undefined;
  const ins = await client.query(
    'INSERT INTO request_keys (request_key, body_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1',
    [k.key, k.hash, k.createdAt],
  );
  if (ins.rowCount === 1) return undefined;
  const r = await client.query('SELECT body_hash FROM request_keys WHERE request_key = $1', [k.key]);
  // The row can only vanish if retention deleted it between the two statements: claim it again.
  if (r.rowCount === 0) return claimRequestKey(client, unit);
  return requestKeyOutcome(unit, r.rows[0].body_hash as string);
}

function judge(
  unit: Seqd[],
  keys: Map<number, Stored | null>,
): { results: AppendedEvent[]; fresh: Seqd[]; conflicts: Array<{ index: number; id: string }> } {
  const results: AppendedEvent[] = [];
  const fresh: Seqd[] = [];
  const conflicts: Array<{ index: number; id: string }> = [];
  unit.forEach((x, index) => {
    const stored = keys.get(x.seq) ?? null;
    if (stored === null) {
      results.push({ seq: x.seq, duplicate: false });
      fresh.push(x);
    } else if (sameContent(stored, x.e)) {
      results.push({ seq: stored.seq, duplicate: true });
    } else {
      conflicts.push({ index, id: x.e.id ?? '' });
    }
  });
  return { results, fresh, conflicts };
}

/** What a transaction's opening query answered: one result, or one per statement when it had several. */
export type Opened = pg.QueryResult | pg.QueryResult[];

/**
 * The ingest transaction's opening query, one round trip: BEGIN, its lock bound (a capture never waits
 * long on a lock: past 2 s it answers 503 and the client retries) and its sequence numbers. A simple
 * query, so the count is written in (an integer counted here). The seqs come as one text row, not a row
 * per seq; no events take none (string_agg answers NULL).
 */
export function openAppendSql(units: readonly AppendUnit[]): string {
  const total = units.reduce((n, u) => n + u.events.length, 0);
  if (!Number.isSafeInteger(total) || total < 0) throw new RangeError(`event count ${total}`);
  return (
    "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '2s'; " +
    `SELECT coalesce(string_agg(nextval('events_seq')::text, ','), '') AS s FROM generate_series(1, ${total})`
  );
}

/** The sequence numbers openAppendSql took: the last result of the opening query. */
export function seqsTaken(opened: Opened): string {
  const last = Array.isArray(opened) ? opened[opened.length - 1] : opened;
  const s = last?.rows[0]?.s;
  if (typeof s !== 'string') throw new Error('the transaction opened without its sequence numbers');
  return s;
}

export async function appendEventsPg(
  client: pg.PoolClient,
  units: AppendUnit[],
  periods: readonly Period[],
  dimensions: DimensionRules,
  /** Receives the queue item of this transaction's new events, to derive once it has committed. */
  derive: QueueItem[],
  /** The events' sequence numbers, comma-separated, taken in this transaction (openAppendSql). */
  seqText: string,
): Promise<AppendOutcome[]> {
  const total = units.reduce((n, u) => n + u.events.length, 0);
  const seqs =
    seqText === ''
      ? []
      : seqText
          .split(',')
          .map(Number)
          .sort((a, b) => a - b);
  if (seqs.length !== total) throw new Error(`${seqs.length} sequence numbers taken for ${total} events`);
  let i = 0;
  const seqd: Seqd[][] = units.map((u) => u.events.map((e) => ({ e, seq: seqs[i++]!, receivedAt: u.receivedAt })));
  const bySeq = new Map<number, Seqd>();
  for (const u of seqd) for (const x of u) bySeq.set(x.seq, x);

  const outcomes: AppendOutcome[] = new Array(units.length);
  const fresh: Seqd[] = [];
  // Single events cannot half-fail: they share one statement and need no savepoint. A unit with a
  // request key always gets one, so its key goes with its events.
  const alone = (idx: number) => seqd[idx]!.length === 1 && !units[idx]!.requestKey;
  const singles = seqd.map((u, idx) => ({ u, idx })).filter(({ idx }) => alone(idx));
  if (singles.length > 0) {
    const keys = await insertUnit(
      client,
      singles.map(({ u }) => u[0]!),
      bySeq,
    );
    for (const { u, idx } of singles) {
      const j = judge(u, keys);
      outcomes[idx] = j.conflicts.length
        ? { ok: false, conflicts: j.conflicts }
        : { ok: true, results: j.results, inserted: j.fresh.length, duplicates: j.results.length - j.fresh.length };
      fresh.push(...j.fresh);
    }
  }
  for (let idx = 0; idx < seqd.length; idx++) {
    const u = seqd[idx]!;
    if (alone(idx)) continue;
    await client.query('SAVEPOINT unit');
    const seen = await claimRequestKey(client, units[idx]!);
    if (seen) {
      await client.query('RELEASE SAVEPOINT unit');
      outcomes[idx] = seen;
      continue;
    }
    const j = judge(u, await insertUnit(client, u, bySeq));
    if (j.conflicts.length) {
      await client.query('ROLLBACK TO SAVEPOINT unit');
      outcomes[idx] = { ok: false, conflicts: j.conflicts };
      continue;
    }
    await client.query('RELEASE SAVEPOINT unit');
    outcomes[idx] = { ok: true, results: j.results, inserted: j.fresh.length, duplicates: j.results.length - j.fresh.length };
    fresh.push(...j.fresh);
  }
  if (fresh.length === 0) return outcomes;

  // The derived state (marks, hour totals, dimensions) waits for a derivation after the commit; this
  // row says which events it needs and is deleted by the transaction that derives them.
  const rules = storedRules(periods, dimensions);
  const q = await client.query(QUEUE_INSERT_SQL, [
    fresh.length,
    rules,
    numberArray(fresh.map((x) => x.e.ts)),
    numberArray(fresh.map((x) => x.seq)),
  ]);
  const events = fresh.map(({ e, seq }) => ({
    customerId: e.customerId,
    eventType: e.eventType,
    ts: e.ts,
    seq,
    value: e.value,
    ...(e.group !== undefined ? { group: e.group, unique: e.unique ?? null } : deriveFromText(e.metadata, dimensions.types[e.eventType])),
  }));
  derive.push({ id: Number(q.rows[0].id), rules: { periods, dimensions }, events });
  return outcomes;
}
