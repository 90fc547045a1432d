// Owns when PostgreSQL's derived state is written: each process derives the queue rows it committed,
// in the background and in slices, right after their commits; every read of usage first derives every
// row it can see (the read barrier); and a periodic sweep derives rows whose process died, and polls the
// backlog for metrics and overload. Its memory (the events of rows not yet derived) is bounded: past
// the bound, appends are refused until derivation catches up.
// Must never let a read of derived state start before every queue row committed before it is derived.

import type pg from 'pg';
import { MEMORY_BUDGET } from '../../config/memory-budget.js';
import type { StoreUnavailable } from '../../domain/errors.js';
import type { WriteHealth } from '../fault-boundary.js';
import { claimQueueRows, deriveIsolating, deriveItems, type QueueItem } from './pg-derived.js';
import { KnownMarks, type SeenMarks } from './pg-close-generations.js';

export interface DeriverOptions {
  /** Derive this process's commits in the background (default true); false leaves them to reads and sweeps. */
  auto?: boolean;
  /** Events derived in one transaction, at most (whole queue rows; default 50,000). */
  sliceEvents?: number;
  /** How often the backlog is polled and rows of dead processes are swept, in ms (default 1,000). */
  pollMs?: number;
  /** A queue row this old (by the database's clock) is swept by any process (default 5,000 ms). */
  orphanAfterMs?: number;
  /** Past this many events of this process not yet derived, appends are refused (default: the memory budget). */
  maxPendingEvents?: number;
  /** Past this many events in the shared queue, appends are refused (default 10× maxPendingEvents). */
  maxQueuedEvents?: number;
  /** Told about a derivation that failed; its rows stay queued and are retried. */
  onError?: (err: unknown) => void;
  /** How long a queue row whose derivation failed for a reason tied to its events is set aside (default 60 s). */
  setAsideMs?: number;
}

type Query = (sql: string, params?: unknown[]) => Promise<pg.QueryResult>;
type Tx = <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>;

const NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

export function createPgDeriver(
  query: Query,
  tx: Tx,
  health: WriteHealth,
  classify: (err: unknown) => StoreUnavailable | undefined,
  o: DeriverOptions = {},
) {
  const auto = o.auto ?? true;
  const sliceEvents = o.sliceEvents ?? 50_000;
  const pollMs = o.pollMs ?? 1_000;
  const orphanAfterMs = o.orphanAfterMs ?? 5_000;
  const maxPending = o.maxPendingEvents ?? MEMORY_BUDGET.pendingEvents;
  const maxQueued = o.maxQueuedEvents ?? 10 * maxPending;
  const onError = o.onError ?? ((err: unknown) => console.error('meterhook: deriving PostgreSQL state failed; will retry', err));
  // A derivation never waits long on a lock (a close holding marks, another derivation): past this it
  // fails and is retried, and a read waiting on it answers 503 rather than hanging.
  const deriveTx = <T>(fn: (c: pg.PoolClient) => Promise<T>) =>
    tx(async (c) => {
      await c.query("SET LOCAL lock_timeout = '2s'");
      return fn(c);
    });

  /** Rows this process committed and has not derived, with their events: derived from memory, never read back. */
  const local = new Map<number, QueueItem>();
  let localEvents = 0;
  let running: Promise<void> | null = null;
  let retryTimer: NodeJS.Timeout | null = null;
  let pollTimer: NodeJS.Timeout | null = null;
  let polling: Promise<void> | null = null;
  let backoffMs = 0;
  let stopped = false;
  let groupsOverflowed = 0;
  /**
   * Rows left holding only events whose derivation failed alone, for a reason other than the store
   * being unavailable (tied to what they hold): left out of reads and slices until their retry time,
   * so they block no one. The row's other events were derived.
   */
  const setAside = new Map<number, number>();
  const setAsideMs = o.setAsideMs ?? 60_000;
  /** Rows whose retry time has come are tried again. */
  const expireSetAside = () => {
    const now = Date.now();
    for (const [id, until] of setAside) if (until <= now) setAside.delete(id);
  };
  const usable = (ids: number[]) => {
    if (setAside.size === 0) return ids;
    expireSetAside();
    return ids.filter((id) => !setAside.has(id));
  };
  /** Marks seen to exist after a derivation committed; skipped while their close generation holds. */
  const knownMarks = new KnownMarks();
  /** The shared queue as last polled. */
  let queued = { events: 0, ageMs: 0 };

  const forget = (id: number) => {
    const it = local.get(id);
    if (!it) return;
    local.delete(id);
    localEvents -= it.events.length;
  };

  const failed = (err: unknown) => {
    const fault = classify(err);
    if (fault) health.fail('derived', fault);
    onError(err);
  };

  /**
   * Derives the rows `ids` in one transaction. A failure that is no store fault is tied to what some
   * row holds: each row is tried alone, and in a row that fails alone the events that fail alone are
   * found; the rest is derived, and the row, holding only those, is set aside (and reported).
   */
  async function deriveRows(ids: number[], mode: { wait: boolean; readBack: boolean }): Promise<void> {
    try {
      // Awaited first: `x += await y` reads x before the await and loses a concurrent derivation's count.
      const seen: SeenMarks[] = [];
      const overflowed = await deriveTx(async (c) => {
        seen.length = 0; // a retried transaction raises its marks again
        return deriveItems(c, await claimQueueRows(c, ids, local, mode), { marks: knownMarks, seen });
      });
      for (const x of seen) knownMarks.learn(x);
      groupsOverflowed += overflowed;
    } catch (err) {
      if (classify(err)) throw err;
      if (ids.length > 1) {
        for (const id of ids) await deriveRows([id], mode);
        return;
      }
      // One row: derive what of it can be, and set aside only the events that fail alone.
      onError(err);
      let out: { failed: unknown[]; overflowed: number };
      try {
        out = await deriveTx(async (c) => {
          const [item] = await claimQueueRows(c, ids, local, { ...mode, readBack: true });
          return item ? deriveIsolating(c, item, (e) => classify(e) !== undefined) : { failed: [], overflowed: 0 };
        });
      } catch (again) {
        if (classify(again)) throw again;
        // Not even its events can be read or isolated (a damaged row): the whole row waits.
        onError(again);
        setAside.set(ids[0]!, Date.now() + setAsideMs);
        return;
      }
      groupsOverflowed += out.overflowed;
      const kept = local.get(ids[0]!);
      if (out.failed.length === 0) return;
      setAside.set(ids[0]!, Date.now() + setAsideMs);
      // Later attempts derive only what is left in the row.
      if (kept) {
        localEvents -= kept.events.length - out.failed.length;
        kept.events = out.failed as QueueItem['events'];
      }
    }
  }

  /** Derives one slice of this process's rows; a row another transaction holds is that one's to derive. */
  async function deriveSlice(): Promise<void> {
    const take: number[] = [];
    let n = 0;
    for (const [id, it] of local) {
      if (take.length > 0 && n + it.events.length > sliceEvents) break;
      take.push(id);
      n += it.events.length;
    }
    if (take.length === 0) return;
    await deriveRows(take, { wait: false, readBack: false });
    // Rows not claimed were derived already or are another transaction's; rows set aside are left
    // to a read or the sweep once they can be derived.
    for (const id of take) forget(id);
    health.clear('derived');
    backoffMs = 0;
  }

  async function deriveLocal(): Promise<void> {
    while (local.size > 0) await deriveSlice();
  }

  function kick(): void {
    if (!auto || stopped || running || retryTimer || local.size === 0) return;
    running = deriveSlice()
      .catch((err) => {
        failed(err);
        backoffMs = Math.min(5_000, Math.max(100, backoffMs * 2));
        if (stopped) return;
        retryTimer = setTimeout(() => {
          retryTimer = null;
          kick();
        }, backoffMs);
        retryTimer.unref();
      })
      .finally(() => {
        running = null;
        if (local.size > 0) setImmediate(kick);
      });
  }

  /** Derives every queue row visible now, waiting for rows other transactions hold. */
  async function barrierOnce(): Promise<void> {
    // The slice in flight (one transaction) counts before the barrier returns, its figures included.
    if (running) await running;
    const all = (await query('SELECT id, events FROM derive_queue ORDER BY id')).rows as Array<{ id: string; events: number }>;
    const keep = new Set(usable(all.map((r) => Number(r.id))));
    const rows = all.filter((r) => keep.has(Number(r.id)));
    for (let i = 0; i < rows.length; ) {
      const chunk: number[] = [];
      let n = 0;
      for (; i < rows.length && (chunk.length === 0 || n + rows[i]!.events <= sliceEvents); i++) {
        chunk.push(Number(rows[i]!.id));
        n += rows[i]!.events;
      }
      await deriveRows(chunk, { wait: true, readBack: true });
      for (const id of chunk) forget(id);
    }
    // A background slice whose commit a claim above waited for may not have counted its figures yet.
    if (running) await running;
  }

  // Callers that arrive while a barrier runs share the next one, which starts after they arrived.
  let current: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  function barrier(): Promise<void> {
    if (!current) {
      current = barrierOnce()
        .catch((err) => {
          // Readiness retries derivation until it works again.
          const fault = classify(err);
          if (fault) health.fail('derived', fault);
          throw err;
        })
        .finally(() => {
          current = null;
        });
      return current;
    }
    next ??= current
      .catch(() => undefined)
      .then(() => {
        next = null;
        return barrier();
      });
    return next;
  }

  /** Polls the shared backlog and derives rows old enough that their process has likely died. */
  async function poll(): Promise<void> {
    const r = (await query(`SELECT coalesce(sum(events), 0)::bigint AS events, ${NOW_MS} - min(created_at) AS age FROM derive_queue`))
      .rows[0] as { events: string; age: string | null };
    queued = { events: Number(r.events), ageMs: r.age === null ? 0 : Math.max(0, Number(r.age)) };
    if (queued.ageMs < orphanAfterMs) return;
    expireSetAside();
    const skip = [...local.keys(), ...setAside.keys()];
    const old = (
      await query(
        `SELECT id, events FROM derive_queue WHERE created_at < ${NOW_MS} - $1 AND id <> ALL($2::bigint[]) ORDER BY id LIMIT 1000`,
        [orphanAfterMs, skip],
      )
    ).rows as Array<{ id: string; events: number }>;
    // One slice's worth of events per sweep, like every other derivation.
    const orphans: number[] = [];
    let n = 0;
    for (const r of old) {
      if (orphans.length > 0 && n + r.events > sliceEvents) break;
      orphans.push(Number(r.id));
      n += r.events;
    }
    if (orphans.length === 0) return;
    await deriveRows(orphans, { wait: false, readBack: true });
  }

  return {
    /** The queue rows of a transaction that just committed. */
    committed(items: readonly QueueItem[]): void {
      for (const it of items) {
        local.set(it.id, it);
        localEvents += it.events.length;
      }
      kick();
    },
    barrier,
    /** Derives every queued row now (readiness after a failure); throws while that still fails. */
    async drain(): Promise<void> {
      await barrier();
      health.clear('derived');
    },
    start(): void {
      if (pollTimer || stopped) return;
      pollTimer = setInterval(() => {
        if (polling || stopped) return;
        polling = poll()
          .catch((err) => onError(err))
          .finally(() => {
            polling = null;
          });
      }, pollMs);
      pollTimer.unref();
    },
    /** Stops the timers and derives what this process still holds (best effort: what fails stays queued). */
    async stop(): Promise<void> {
      stopped = true;
      if (pollTimer) clearInterval(pollTimer);
      if (retryTimer) clearTimeout(retryTimer);
      pollTimer = retryTimer = null;
      // The pool ends after this: let the sweep, a barrier and the slice in flight finish first.
      await Promise.allSettled([polling, current, next, running]);
      while (running) await running;
      if (auto) await deriveLocal().catch(() => undefined);
    },
    /** Seconds to wait before appending again, or 0: this process's or the shared backlog is at its bound. */
    backlogRetryAfter(): number {
      return localEvents >= maxPending || queued.events >= maxQueued ? 1 : 0;
    },
    stats(): { events: number; setAside: number; ageSeconds: number; groupsOverflowed: number } {
      return { events: Math.max(localEvents, queued.events), setAside: setAside.size, ageSeconds: queued.ageMs / 1000, groupsOverflowed };
    },
    /** Retries the rows set aside at the next read or sweep, instead of at their retry time. */
    retrySetAside(): void {
      setAside.clear();
    },
  };
}

export type PgDeriver = ReturnType<typeof createPgDeriver>;
