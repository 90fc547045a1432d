// Owns the memory budget of the ingest path: how much of the V8 heap `npm start` gives
// (--max-old-space-size=256) each in-memory backlog may hold, and the per-item estimates each one is
// counted with. Every bound in group commit, capture admission and SQLite's derived state defaults
// to a figure here. Must never depend on a store, on HTTP or on the environment: limits are code,
// changed here (or through constructor options in tests), never by a variable in production paths.

const MiB = 1024 * 1024;

/** The heap limit `npm start` runs with; the budget below leaves the rest for code, Fastify and garbage. */
export const HEAP_LIMIT_BYTES = 256 * MiB;

/**
 * Most each structure may hold, in events and in estimated heap bytes. Worst case all at once: about
 * 14 MB of capture requests (4 MiB of bodies, ~3.5× that once parsed and checked; queued units belong
 * to those requests), 24 MiB of pending derived events, 36 MiB of one slice's working maps and 12 MiB
 * of the mark cache: ~90 MB (~107 MB with in-process callers filling the queue's 16 MiB), against a
 * 256 MB heap whose idle size is ~35 MB. The rest is room for garbage between collections: V8 lets
 * the heap grow to 1.3–1.5× its live size before it collects, and the resident size adds SQLite's
 * 32 MiB page cache and Node itself (measured: 257–259 MB peak RSS for B6 at 8 connections, 293 MB at 64).
 */
export const MEMORY_BUDGET = {
  /** Capture request bodies being received, parsed and checked, by declared length (Content-Length). */
  inFlightBodyBytes: 4 * MiB,
  /** Group commit: events waiting for their transaction, and their estimated heap. */
  queuedEvents: 50_000,
  queuedBytes: 16 * MiB,
  /** SQLite: committed events not yet folded into hour states, marks and idempotency keys (with their id index). */
  pendingEvents: 120_000,
  pendingBytes: 24 * MiB,
  /** SQLite: the working maps of one derived slice (hour states, marks, sort arrays). */
  sliceBytes: 36 * MiB,
  /** SQLite: the cache of dirty marks known to exist. */
  markCacheBytes: 12 * MiB,
} as const;

/*
 * Per-item estimates, measured with process.memoryUsage() after gc() on Node 20 (x64, no pointer
 * compression) and rounded up. Strings count 2 bytes per character (two-byte strings are the worst case).
 */

/** A queued event: its checked NewEvent plus the parsed request body it came from (~500 B for a B1 event). */
export function queuedEventBytes(e: { customerId: string; id: string | null; metadata: string | null }): number {
  return 240 + 3 * (e.customerId.length + (e.id?.length ?? 0) + (e.metadata?.length ?? 0));
}

/**
 * A pending derived event and its entry in the pending-id index (measured 115–165 B plus its customer string),
 * plus its group key and unique token when its meter has dimensions.
 */
export function pendingEventBytes(e: { customerId: string; hash: number | null; group?: string | null; unique?: string | null }): number {
  return 144 + (e.hash === null ? 0 : 32) + 2 * (e.customerId.length + (e.group?.length ?? 0) + (e.unique?.length ?? 0));
}

/** One event in a slice: its hour state or merge, and its slots in the sort arrays (measured ~100 B). */
export const SLICE_EVENT_BYTES = 120;

/**
 * A customer first seen in a slice: its maps of types, hours and marks, one per period, and the mark
 * rows to write (measured ~2,000–2,750 B with 5 periods).
 */
export function sliceCustomerBytes(periods: number): number {
  return 600 + 420 * periods;
}

/** The dirty-mark cache: one (period, customer) entry, a set once a customer has several starts, each start in it. */
export const MARK_ENTRY_BYTES = 56;
export const MARK_SET_BYTES = 200;
export const MARK_START_BYTES = 24;
