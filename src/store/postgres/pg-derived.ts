// Owns the writes of PostgreSQL's derived state (dirty marks, hour totals, groups, unique values) for
// events already committed, and the queue rows that say which events still need them. The rows are
// claimed, derived and deleted in one transaction, so an event is derived exactly once whichever
// process does it, and a transaction that dies leaves its rows to the next. Must never derive an event
// without deleting its queue row in the same transaction, nor lock queue rows after derived rows.

import type pg from 'pg';
import { numberArray, textArray } from './pg-arrays.js';
import { stateArrays } from './pg-upserts.js';
import { deriveFromText } from '../../domain/dimensions.js';
import { HourFold, hourKey, type FoldedEvent } from '../../domain/fold.js';
import type { Period } from '../../domain/periods.js';
import type { DimensionRules } from '../../domain/rules.js';
import type { RollupState } from '../../domain/rollup-state.js';
import { markInsertSql, POSTGRES_MERGE, rollupUpsertSql } from '../rollup-upsert.js';
import { lockGenerations, type KnownMarks, type SeenMarks } from './pg-close-generations.js';
import { writeDimensionsPg } from './pg-dimensions.js';

/** The rules an ingest transaction ran under: the periods it marks and its dimensions. */
export interface DeriveRules {
  periods: readonly Period[];
  dimensions: DimensionRules;
}

/** One queue row: the new events of one ingest transaction and the rules they were captured under. */
export interface QueueItem {
  id: number;
  rules: DeriveRules;
  events: FoldedEvent[];
}

export const QUEUE_INSERT_SQL =
  'INSERT INTO derive_queue (events, rules, tss, seqs) VALUES ($1, $2, $3::bigint[], $4::bigint[]) RETURNING id';

const rulesText = new WeakMap<DeriveRules['dimensions'], Map<readonly Period[], string>>();

/** The stored form of a transaction's rules; one string per configuration, not per transaction. */
export function storedRules(periods: readonly Period[], dimensions: DimensionRules): string {
  let byPeriods = rulesText.get(dimensions);
  if (!byPeriods) rulesText.set(dimensions, (byPeriods = new Map()));
  let text = byPeriods.get(periods);
  if (text === undefined) byPeriods.set(periods, (text = JSON.stringify({ periods, dimensions })));
  return text;
}

function parseRules(text: string): DeriveRules {
  const r = JSON.parse(text) as DeriveRules;
  // A type name is an own key of a prototype-free map, as the configuration builds it.
  const types = Object.assign(Object.create(null), r.dimensions.types) as DimensionRules['types'];
  return { periods: r.periods, dimensions: { types, maxGroupsPerHour: r.dimensions.maxGroupsPerHour } };
}

interface QueueRow {
  id: string;
  events: number;
  rules: string;
  tss: string[];
  seqs: string[];
}

/**
 * Locks the queue rows among `ids` (in id order) and returns them with their events: from `known` for
 * the rows this process committed and that still hold what it committed, read back from `events` for
 * the others when `readBack` is set (a row another process derived in part holds fewer events).
 * `wait` false skips rows another transaction holds; true waits for it (which either derives and
 * deletes them, or dies and leaves them here).
 */
export async function claimQueueRows(
  c: pg.PoolClient,
  ids: readonly number[],
  known: ReadonlyMap<number, QueueItem>,
  mode: { wait: boolean; readBack: boolean },
): Promise<QueueItem[]> {
  const arrays = mode.readBack ? 'tss, seqs' : "'{}'::bigint[] AS tss, '{}'::bigint[] AS seqs";
  const rows = (
    await c.query(
      `SELECT id, events, rules, ${arrays} FROM derive_queue
       WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE${mode.wait ? '' : ' SKIP LOCKED'}`,
      [ids],
    )
  ).rows as QueueRow[];
  const out: QueueItem[] = [];
  const unknown: Array<{ id: number; rules: DeriveRules; tss: string[]; seqs: string[] }> = [];
  for (const r of rows) {
    const id = Number(r.id);
    const mine = known.get(id);
    if (mine && mine.events.length === Number(r.events)) out.push(mine);
    else if (mode.readBack) unknown.push({ id, rules: parseRules(r.rules), tss: r.tss, seqs: r.seqs });
  }
  if (unknown.length > 0) out.push(...(await readBack(c, unknown)));
  return out;
}

/** Rebuilds queue items from the stored events (a row another process committed, or one left by a crash). */
async function readBack(
  c: pg.PoolClient,
  rows: Array<{ id: number; rules: DeriveRules; tss: string[]; seqs: string[] }>,
): Promise<QueueItem[]> {
  const owner = new Map<string, QueueItem>();
  const items = rows.map((r) => ({ id: r.id, rules: r.rules, events: [] as FoldedEvent[] }));
  const tss: string[] = [];
  const seqs: string[] = [];
  rows.forEach((r, i) => {
    r.seqs.forEach((s, j) => {
      owner.set(String(s), items[i]!);
      tss.push(String(r.tss[j]));
      seqs.push(String(s));
    });
  });
  const found = await c.query(
    `SELECT e.seq, e.customer_id, e.event_type, e.ts, e.value, e.metadata
     FROM unnest($1::bigint[], $2::bigint[]) AS q(ts, seq) JOIN events e ON e.ts = q.ts AND e.seq = q.seq`,
    [tss, seqs],
  );
  for (const r of found.rows) {
    const item = owner.get(String(r.seq))!;
    const eventType = r.event_type as string;
    const d = deriveFromText(r.metadata as string | null, item.rules.dimensions.types[eventType]);
    item.events.push({ customerId: r.customer_id, eventType, ts: Number(r.ts), seq: Number(r.seq), value: Number(r.value), ...d });
  }
  return items;
}

/** This process's known marks, and the marks a derivation raised, learned by the caller after its commit. */
export interface MarkMemory {
  marks: KnownMarks;
  seen: SeenMarks[];
}

/**
 * Writes the derived state of `items` and deletes their queue rows, in the caller's transaction (which
 * holds the rows' locks). Returns how many new groups went to an overflow group.
 */
export async function deriveItems(c: pg.PoolClient, items: readonly QueueItem[], known?: MarkMemory): Promise<number> {
  if (items.length === 0) return 0;
  const fold = new HourFold();
  let maxGroupsPerHour = 0;
  for (const it of items) {
    for (const e of it.events) fold.add(e, it.rules.periods);
    maxGroupsPerHour = it.rules.dimensions.maxGroupsPerHour;
  }
  let overflowed = 0;
  if (fold.size > 0) overflowed = await writeFold(c, fold, maxGroupsPerHour, known);
  await c.query('DELETE FROM derive_queue WHERE id = ANY($1::bigint[])', [items.map((x) => x.id)]);
  return overflowed;
}

/**
 * Derives one queue row whose derivation failed for a reason tied to its events: halves of its events
 * are tried in savepoints until the events that fail alone are found. The others are derived; the row
 * is left holding only those (or deleted when none failed this time). Returns them and the overflow count.
 * `isFault` tells a store fault (rethrown: the whole transaction is retried later) from the events' own.
 */
const ISOLATION_ATTEMPTS = 256;

export async function deriveIsolating(
  c: pg.PoolClient,
  item: QueueItem,
  isFault: (err: unknown) => boolean,
): Promise<{ failed: FoldedEvent[]; overflowed: number }> {
  const failed: FoldedEvent[] = [];
  let overflowed = 0;
  // Bounded: past this many attempts the events still in question stay in the row, set aside whole.
  let budget = ISOLATION_ATTEMPTS;
  const attempt = async (events: FoldedEvent[]): Promise<void> => {
    if (budget-- <= 0) {
      failed.push(...events);
      return;
    }
    await c.query('SAVEPOINT isolate');
    try {
      const fold = new HourFold();
      for (const e of events) fold.add(e, item.rules.periods);
      const n = await writeFold(c, fold, item.rules.dimensions.maxGroupsPerHour);
      overflowed += n;
      await c.query('RELEASE SAVEPOINT isolate');
    } catch (err) {
      if (isFault(err)) throw err;
      await c.query('ROLLBACK TO SAVEPOINT isolate');
      await c.query('RELEASE SAVEPOINT isolate');
      if (events.length === 1) {
        failed.push(events[0]!);
        return;
      }
      const half = Math.ceil(events.length / 2);
      await attempt(events.slice(0, half));
      await attempt(events.slice(half));
    }
  };
  if (item.events.length > 0) await attempt(item.events);
  if (failed.length === 0) await c.query('DELETE FROM derive_queue WHERE id = $1', [item.id]);
  else
    await c.query('UPDATE derive_queue SET events = $2, tss = $3::bigint[], seqs = $4::bigint[] WHERE id = $1', [
      item.id,
      failed.length,
      failed.map((e) => e.ts),
      failed.map((e) => e.seq),
    ]);
  return { failed, overflowed };
}

async function writeFold(c: pg.PoolClient, fold: HourFold, maxGroupsPerHour: number, known?: MarkMemory): Promise<number> {
  // Generations first (FOR SHARE: no close of these period instances runs until this commits), then the
  // marks not known to exist, then rollups, each in the fold's key order: concurrent derivations lock
  // rows in one order (no deadlock), and a close, which waits for the generations, never reads half of
  // this derivation's rollups. With the generations held, a mark that exists cannot be deleted under
  // this transaction, so an existing one is left alone (DO NOTHING) rather than locked.
  const generations = await lockGenerations(c, fold.markInstances(), 'derive');
  const m = known ? fold.marks((p, cu, s) => !known.marks.knows(p, s, cu, generations)) : fold.marks();
  if (m.length > 0)
    await c.query(markInsertSql('SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[])'), [
      textArray(m.map((x) => x.period)),
      numberArray(m.map((x) => x.periodStart)),
      textArray(m.map((x) => x.customerId)),
      numberArray(m.map((x) => x.changeSeq)),
    ]);
  known?.seen.push({ generations, marks: m });
  const r: Array<{ c: string; t: string; h: number; s: RollupState; sole: string | null }> = [];
  let grouped = false;
  fold.forEachHourOrSole((cu, t, h, st, groups, sole) => {
    r.push({ c: cu, t, h, s: st, sole });
    if (groups || sole !== null) grouped = true;
  });
  // With groups, the totals' counts after the upsert bound how many groups each hour can hold, and an hour
  // whose total still keeps its sole group has no group row to write.
  const upserted = await c.query(
    rollupUpsertSql(
      `SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::numeric[], $6::float8[], $7::float8[],
        $8::bigint[], $9::bigint[], $10::float8[], $11::bigint[], $12::bigint[], $13::float8[], $14::text[])`,
      POSTGRES_MERGE,
    ) + (grouped ? ' RETURNING customer_id, hour, event_type, count, sole_grp' : ''),
    [
      textArray(r.map((x) => x.c)),
      numberArray(r.map((x) => x.h)),
      textArray(r.map((x) => x.t)),
      ...stateArrays(r.map((x) => x.s)),
      textArray(r.map((x) => x.sole)),
    ],
  );
  const totals = new Map<string, number>();
  const soleKept = new Set<string>();
  if (grouped)
    for (const x of upserted.rows) {
      const k = hourKey(x.customer_id, x.event_type, Number(x.hour));
      totals.set(k, Number(x.count));
      if (x.sole_grp !== null) soleKept.add(k);
    }
  return writeDimensionsPg(c, fold, maxGroupsPerHour, totals, soleKept);
}
