// Owns the state SQLite derives from committed events that usage and dedupe depend on: hour rollups,
// dirty marks and the idempotency-key table. Ingest commits only append events; this module folds them
// in later, in sorted slices, and records the highest event seq it has applied. Its in-memory state
// (pending events, their id index, a slice's working maps, the mark cache) is bounded by the memory
// budget: past it, appends are refused (overload) until slices have caught up.
// Must never let a reader see derived tables without first applying everything committed before it.

import type Database from 'better-sqlite3';
import { MEMORY_BUDGET, SLICE_EVENT_BYTES, pendingEventBytes, sliceCustomerBytes } from '../../config/memory-budget.js';
import type { Period } from '../../domain/periods.js';
import { HourFold, periodStartMemoSize } from '../../domain/fold.js';
import type { DimensionRules } from '../../domain/rules.js';
import { markInsertSql, rollupUpsertSql, SQLITE_MERGE } from '../rollup-upsert.js';
import { stateParams } from '../rows.js';
import { sqliteFault } from './sqlite-faults.js';
import { createDimensionWriter, type GroupedHour } from './sqlite-dimensions.js';
import { createMarkCache } from './sqlite-mark-cache.js';
import { EVENT_ROW_COLUMNS, pendingOf, type EventRow, type PendingBatch, type PendingEvent } from './sqlite-pending.js';
import { createQuarantine } from './sqlite-quarantine.js';

export type { PendingEvent } from './sqlite-pending.js';

/** Stored events read per query when replaying. */
const REPLAY_CHUNK = 10_000;

const batchBytes = (events: readonly PendingEvent[]): number => {
  let n = 0;
  for (const e of events) n += pendingEventBytes(e);
  return n;
};

export interface DerivedOptions {
  /** Bounds of the events applied in one transaction (whole batches, so a slice may pass the least). */
  minSlice?: number;
  maxSlice?: number;
  /** A slice holds about this many of the largest units clients have been sending. */
  unitsPerSlice?: number;
  /** Pending events are applied at least this often, in ms. */
  intervalMs?: number;
  /**
   * Past this many pending events, or their estimated bytes, the store refuses appends
   * (`backlogRetryAfter()` > 0; capture answers 503) until slices catch up. An append that passes twice
   * either bound anyway (a caller that ignores the refusal) applies a slice before it returns.
   */
  maxPending?: number;
  maxPendingBytes?: number;
  /** Estimated heap of one slice's working maps; a slice that would pass it is cut, even inside a batch. */
  maxSliceBytes?: number;
  /** Estimated heap of the dirty-mark cache; past it the cache is emptied. */
  maxMarkCacheBytes?: number;
  /** Told about a background slice that failed; its events stay pending and are retried. */
  onError?: (err: unknown) => void;
  /** Told about an event whose fold failed for a reason other than the store being unavailable. */
  onQuarantine?: (seq: number, customerId: string, err: unknown) => void;
  /** How often set-aside events are folded again, in ms. */
  quarantineRetryMs?: number;
}

/**
 * Errors that say the store cannot write right now (busy, full, read-only, I/O): the same fold will
 * work later, so the events stay pending. Any other error is tied to what is being folded.
 */
const isTransientSqliteError = (err: unknown): boolean => sqliteFault(err) !== undefined;

/** An hour total after its upsert: its event count, and its sole group while it still has one. */
interface TotalAfter {
  count: number;
  sole_grp: string | null;
}

export function createDerivedState(db: Database.Database, opts: DerivedOptions = {}) {
  const minSlice = opts.minSlice ?? 500;
  const maxSlice = opts.maxSlice ?? 100_000;
  const unitsPerSlice = opts.unitsPerSlice ?? 100;
  const intervalMs = opts.intervalMs ?? 50;
  const maxPending = opts.maxPending ?? MEMORY_BUDGET.pendingEvents;
  const maxPendingBytes = opts.maxPendingBytes ?? MEMORY_BUDGET.pendingBytes;
  const maxSliceBytes = opts.maxSliceBytes ?? MEMORY_BUDGET.sliceBytes;
  const onError = opts.onError ?? ((err: unknown) => console.error('meterhook: applying derived state failed; will retry', err));
  const onQuarantine =
    opts.onQuarantine ??
    ((seq: number, customerId: string, err: unknown) =>
      console.error(`meterhook: event ${seq} of ${customerId} could not be folded; set aside and retried later`, err));
  const quarantineRetryMs = opts.quarantineRetryMs ?? 60_000;
  /** Moving estimate of the largest unit per group: 1 for single events, 1,000 for full batches. */
  let unitEstimate = 1;
  /**
   * A slice blocks the event loop. Clients sending single events get small slices (a few ms, so
   * their latency stays low); clients sending big batches already wait for a lot of work per request,
   * and get big slices, which write each B-tree page once for many more events.
   */
  const sliceCap = () => Math.min(maxSlice, Math.max(minSlice, Math.round(unitsPerSlice * unitEstimate)));

  const upsertRollup = db.prepare(rollupUpsertSql('VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', SQLITE_MERGE));
  // For hours with groups: the total's count after the upsert bounds how many groups the hour can hold, and a
  // sole group still set means the total's row holds the hour's one group, so no group row is written.
  const upsertRollupCount = db.prepare(
    `${rollupUpsertSql('VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', SQLITE_MERGE)} RETURNING count, sole_grp`,
  );
  const upsertMark = db.prepare(markInsertSql('VALUES (?, ?, ?, ?)'));
  // OR IGNORE: a set-aside event's key is written when it is set aside, and again when it is folded.
  const insertId = db.prepare('INSERT OR IGNORE INTO event_ids (h, seq) VALUES (?, ?)');
  const saveWatermark = db.prepare('UPDATE derived_state SET applied_seq = ? WHERE id = 1');
  const savePeriods = db.prepare('UPDATE derived_state SET periods = ? WHERE id = 1');
  const saveDimensions = db.prepare('UPDATE derived_state SET dimensions = ? WHERE id = 1');
  const readState = db.prepare('SELECT applied_seq, periods, dimensions FROM derived_state WHERE id = 1');
  const eventsAfter = db.prepare(`SELECT ${EVENT_ROW_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?`);
  const dimensionWriter = createDimensionWriter(db);
  const maxSeq = db.prepare('SELECT max(seq) AS s FROM events');

  /** Committed events not yet applied, oldest first. */
  const pending: PendingBatch[] = [];
  let pendingCount = 0;
  let pendingBytes = 0;
  /** Idempotency hashes of pending events, so a repeat is found before its key reaches event_ids. */
  const pendingIds = new Map<number, number | number[]>();

  /**
   * Dirty marks known to exist. SQLite has one writer (this connection), and a close deletes marks in
   * the same transaction that reads their rollups, so a mark already present needs no upsert: in
   * steady state each customer's current periods are marked once, not on every event.
   */
  const knownMarks = createMarkCache(opts.maxMarkCacheBytes ?? MEMORY_BUDGET.markCacheBytes);
  let stagedMarks: Array<[string, Period, number]> = [];
  /** What the slices did, for stats and the overload hint: largest estimate seen, and a moving rate. */
  const sliceStats = { slices: 0, lastEvents: 0, lastBytes: 0, maxBytes: 0, eventsPerS: 0, cut: false };

  const state = readState.get() as { applied_seq: number; periods: string; dimensions: string };
  let appliedSeq = state.applied_seq;
  /** The periods of the latest append, stored with it so a replay after a crash marks the same periods. */
  let storedPeriods = state.periods;
  /** Likewise its dimension rules, so a replay derives the same groups and unique values. */
  let storedDimensions = state.dimensions;
  let dimensionRules = JSON.parse(storedDimensions) as DimensionRules;
  /** New groups counted in an overflow group because their hour held maxGroupsPerHour groups already. */
  let groupsOverflowed = 0;
  let lastCommittedSeq = (maxSeq.get() as { s: number | null }).s ?? 0;
  let nextSeq = Math.max(appliedSeq, lastCommittedSeq) + 1;

  /** Folds batches in one transaction; `retry` folds set-aside events, which sit below the watermark. */
  const applySlice = db.transaction((batches: PendingBatch[], retry = false) => {
    const fold = new HourFold();
    const all: PendingEvent[] = [];
    // Another process opening the same file (a CLI command) replays committed events itself; what
    // it applied is skipped here, so no event is ever counted twice.
    const alreadyApplied = (readState.get() as { applied_seq: number }).applied_seq;
    let top = Math.max(appliedSeq, alreadyApplied);
    for (const b of batches) {
      for (const e of b.events) {
        if (e.seq <= alreadyApplied && !retry) continue;
        all.push(e);
        if (e.seq > top) top = e.seq;
        fold.add(e, b.periods);
      }
    }
    const grouped: GroupedHour[] = [];
    fold.forEachHourOrSole((c, t, hour, s, groups, sole, soleFirstSeq) => {
      const params = stateParams(s);
      if (groups) grouped.push({ hour: groups, total: (upsertRollupCount.get(c, hour, t, params, null) as TotalAfter).count });
      else if (sole !== null) {
        const after = upsertRollupCount.get(c, hour, t, params, sole) as TotalAfter;
        if (after.sole_grp === null)
          grouped.push({
            sole: { customerId: c, eventType: t, hour, group: sole, firstSeq: soleFirstSeq, state: s, params },
            total: after.count,
          });
      } else upsertRollup.run(c, hour, t, params, null);
    });
    groupsOverflowed += dimensionWriter.write(grouped, fold.uniqueHours(), dimensionRules.maxGroupsPerHour);
    stagedMarks = [];
    for (const m of fold.marks((period, customerId, start) => !knownMarks.has(period, customerId, start))) {
      upsertMark.run(m.period, m.periodStart, m.customerId, m.changeSeq);
      stagedMarks.push([m.customerId, m.period, m.periodStart]);
    }
    const withId = all.filter((e) => e.hash !== null).sort((a, b) => a.hash! - b.hash! || a.seq - b.seq);
    for (const e of withId) insertId.run(e.hash, e.seq);
    if (!retry) saveWatermark.run(top);
    return top;
  });

  const quarantine = createQuarantine(db, {
    applySlice,
    afterSlice: rememberStagedMarks,
    periods: () => JSON.parse(storedPeriods) as Period[],
    dimensions: () => dimensionRules,
    isTransient: isTransientSqliteError,
    onQuarantine,
  });
  const applyIsolating = (batches: PendingBatch[]) => quarantine.applyIsolating(batches, appliedSeq);
  const retryQuarantined = () => quarantine.retry();

  function forgetPendingId(e: PendingEvent): void {
    if (e.hash === null) return;
    const cur = pendingIds.get(e.hash);
    if (cur === undefined) return;
    if (typeof cur === 'number') {
      if (cur === e.seq) pendingIds.delete(e.hash);
      return;
    }
    const rest = cur.filter((s) => s !== e.seq);
    if (rest.length === 0) pendingIds.delete(e.hash);
    else pendingIds.set(e.hash, rest.length === 1 ? rest[0]! : rest);
  }

  /**
   * How many leading batches make the next slice: at least one event, at most about `sliceSize`
   * events (whole batches), and at most `maxSliceBytes` of estimated working maps, counting each
   * customer once. A batch that does not fit whole is split, so a batch of new customers never
   * builds maps past the budget.
   */
  function sliceLength(sliceSize: number): number {
    const customers = new Set<string>();
    let events = 0;
    let bytes = 0;
    let n = 0;
    for (; n < pending.length; n++) {
      const b = pending[n]!;
      if (n > 0 && events + b.events.length > sliceSize) break;
      const perCustomer = sliceCustomerBytes(b.periods.length);
      for (let i = 0; i < b.events.length; i++) {
        const c = b.events[i]!.customerId;
        const grow = SLICE_EVENT_BYTES + (customers.has(c) ? 0 : perCustomer);
        if (events + i > 0 && bytes + grow > maxSliceBytes) {
          if (i > 0) {
            const head = b.events.slice(0, i);
            const tail = b.events.slice(i);
            const headBytes = batchBytes(head);
            pending.splice(
              n,
              1,
              { events: head, periods: b.periods, bytes: headBytes },
              { events: tail, periods: b.periods, bytes: b.bytes - headBytes },
            );
            n++;
          }
          sliceStats.lastBytes = bytes;
          sliceStats.cut = true;
          return n;
        }
        customers.add(c);
        bytes += grow;
      }
      events += b.events.length;
    }
    sliceStats.lastBytes = bytes;
    sliceStats.cut = false;
    return n;
  }

  /** Applies the oldest pending events as one slice (see sliceLength). */
  function applyOldest(sliceSize = sliceCap()): void {
    if (pending.length === 0) return;
    const n = sliceLength(sliceSize);
    let count = 0;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      count += pending[i]!.events.length;
      bytes += pending[i]!.bytes;
    }
    const batches = pending.slice(0, n);
    const t0 = performance.now();
    const top = applyIsolating(batches);
    const ms = performance.now() - t0;
    // Only after the commit: a rolled-back slice stays pending and leaves no marks believed present.
    pending.splice(0, n);
    pendingCount -= count;
    pendingBytes -= bytes;
    appliedSeq = top;
    for (const b of batches) for (const e of b.events) forgetPendingId(e);
    sliceStats.slices++;
    sliceStats.lastEvents = count;
    sliceStats.maxBytes = Math.max(sliceStats.maxBytes, sliceStats.lastBytes);
    const rate = (count / Math.max(ms, 1)) * 1000;
    sliceStats.eventsPerS = sliceStats.eventsPerS === 0 ? rate : sliceStats.eventsPerS * 0.7 + rate * 0.3;
  }

  /** After a committed slice: the marks it wrote are known to exist. */
  function rememberStagedMarks(): void {
    for (const [customerId, period, start] of stagedMarks) knownMarks.add(period, customerId, start);
    stagedMarks = [];
  }

  /** Whether a whole slice is waiting: by events, or by the memory budget when the last one was cut by it. */
  const sliceReady = () => pendingCount >= sliceCap() || (sliceStats.cut && pendingCount >= sliceStats.lastEvents);
  const overBound = (factor: number) => pendingCount >= maxPending * factor || pendingBytes >= maxPendingBytes * factor;

  let scheduled = false;
  function scheduleSlice(): void {
    if (scheduled || closed) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      if (closed) return;
      try {
        applyOldest();
      } catch (err) {
        // The slice rolled back and stays pending; the timer tries again.
        onError(err);
        return;
      }
      // Yield between slices so requests keep being answered while a backlog drains.
      if (sliceReady()) scheduleSlice();
    });
  }

  let closed = false;
  // While appends keep coming, slices start from committed(); this catches the tail once they pause,
  // and bounds how long an event waits when the flow is too thin to fill a slice.
  let appendsSinceTick = 0;
  let lastAppendAt = 0;
  let ticksWaiting = 0;
  const timer = setInterval(() => {
    if (pendingCount === 0) return;
    ticksWaiting++;
    if (appendsSinceTick === 0 || ticksWaiting * intervalMs >= 1_000) {
      ticksWaiting = 0;
      scheduleSlice();
    }
    appendsSinceTick = 0;
  }, intervalMs);
  timer.unref();
  const retryTimer = setInterval(() => {
    try {
      retryQuarantined();
    } catch (err) {
      onError(err);
    }
  }, quarantineRetryMs);
  retryTimer.unref();

  /**
   * Replays committed events above the watermark (a crash before they were applied), read in chunks
   * and applied a slice's worth at a time, so a long tail is never all in memory at once.
   */
  function replay(): number {
    let replayed = 0;
    let after = appliedSeq;
    for (;;) {
      const rows = eventsAfter.all(after, REPLAY_CHUNK) as EventRow[];
      if (rows.length === 0) break;
      stage(
        rows.map((r) => pendingOf(r, dimensionRules)),
        JSON.parse(storedPeriods) as Period[],
      );
      after = rows[rows.length - 1]!.seq;
      replayed += rows.length;
      if (pendingCount >= maxSlice || overBound(1)) while (pending.length > 0) applyOldest(maxSlice);
    }
    while (pending.length > 0) applyOldest(maxSlice);
    return replayed;
  }

  function stage(events: PendingEvent[], periods: readonly Period[]): void {
    if (events.length === 0) return;
    const bytes = batchBytes(events);
    pending.push({ events, periods, bytes });
    pendingCount += events.length;
    pendingBytes += bytes;
    for (const e of events) {
      if (e.hash === null) continue;
      const cur = pendingIds.get(e.hash);
      if (cur === undefined) pendingIds.set(e.hash, e.seq);
      else if (typeof cur === 'number') pendingIds.set(e.hash, [cur, e.seq]);
      else cur.push(e.seq);
    }
  }

  replay();
  retryQuarantined();

  return {
    /** The seq to give the next appended event: above every seq ever used, even if since deleted. */
    takeSeq(): number {
      return nextSeq++;
    },
    /** Once this process holds the writer lock: continue after events other writers stored before it. */
    becameWriter(): void {
      const stored = (maxSeq.get() as { s: number | null }).s ?? 0;
      lastCommittedSeq = Math.max(lastCommittedSeq, stored);
      nextSeq = Math.max(nextSeq, stored + 1, appliedSeq + 1);
    },
    /** The highest seq of a committed event (seqs of rolled-back units are never stored). */
    lastSeq: () => lastCommittedSeq,
    /** Milliseconds since the last committed append. */
    idleFor: () => Date.now() - lastAppendAt,
    /** Called once a group of appended events is committed, in seq order. */
    committed(events: PendingEvent[], periods: readonly Period[], largestUnit: number): void {
      unitEstimate = largestUnit >= unitEstimate ? largestUnit : unitEstimate * 0.9 + largestUnit * 0.1;
      stage(events, periods);
      if (events.length > 0) lastCommittedSeq = Math.max(lastCommittedSeq, events[events.length - 1]!.seq);
      appendsSinceTick++;
      lastAppendAt = Date.now();
      if (overBound(2)) {
        // Only a caller that ignored backlogRetryAfter() gets here. The group is committed and
        // staged: a failure here must not fail its requests.
        try {
          applyOldest();
        } catch (err) {
          onError(err);
        }
      }
      if (sliceReady()) scheduleSlice();
    },
    /** Before the append transaction: records the periods its events must mark and the dimension rules, if they changed. */
    noteRules(periods: readonly Period[], dimensions: DimensionRules): void {
      const json = JSON.stringify(periods);
      if (json !== storedPeriods) {
        savePeriods.run(json);
        storedPeriods = json;
      }
      const dims = JSON.stringify(dimensions);
      if (dims !== storedDimensions) {
        saveDimensions.run(dims);
        storedDimensions = dims;
        dimensionRules = JSON.parse(dims) as DimensionRules;
      }
    },
    /** The dimension rules events are derived with. */
    dimensions: () => dimensionRules,
    /** Seqs of pending events whose idempotency hash is `h` (candidates only). */
    pendingSeqs(h: number): number | number[] | undefined {
      return pendingIds.get(h);
    },
    /**
     * Brings every derived table up to date with all committed events: this process's pending ones,
     * then any committed by another process (a reader next to the server; one indexed seek if none).
     */
    applyAll(): void {
      while (pending.length > 0) applyOldest(maxSlice);
      replay();
    },
    pendingCount: () => pendingCount,
    groupsOverflowed: () => groupsOverflowed,
    /** Events set aside because their fold failed; they are folded again every quarantineRetryMs. */
    quarantinedCount: () => quarantine.count(),
    retryQuarantined,
    /**
     * 0 while appends are welcome; once pending events or their bytes reach the bound, the seconds
     * after which to retry: what recent slices need to apply half the backlog, 1 to 5.
     */
    backlogRetryAfter(): number {
      if (!overBound(1)) return 0;
      return Math.min(5, Math.max(1, Math.ceil(pendingCount / 2 / (sliceStats.eventsPerS || 1))));
    },
    /** The in-memory state and its bounds, for stats and tests. */
    memory() {
      const cache = knownMarks.stats();
      return {
        pendingEvents: pendingCount,
        maxPendingEvents: maxPending,
        pendingBytes,
        maxPendingBytes,
        pendingBatches: pending.length,
        pendingIds: pendingIds.size,
        slices: sliceStats.slices,
        lastSliceEvents: sliceStats.lastEvents,
        lastSliceBytes: sliceStats.lastBytes,
        largestSliceBytes: sliceStats.maxBytes,
        maxSliceBytes,
        sliceEventsPerS: Math.round(sliceStats.eventsPerS),
        markCacheMarks: cache.marks,
        markCacheBytes: cache.bytes,
        maxMarkCacheBytes: opts.maxMarkCacheBytes ?? MEMORY_BUDGET.markCacheBytes,
        periodStartMemo: periodStartMemoSize(),
        groupsOverflowed,
      };
    },
    /** Called after a committed close deleted these marks. */
    forgetMarks(marks: Iterable<{ period: Period; periodStart: number; customerId: string }>): void {
      for (const m of marks) knownMarks.forget(m.period, m.customerId, m.periodStart);
    },
    close(): void {
      closed = true;
      clearInterval(timer);
      clearInterval(retryTimer);
    },
  };
}
