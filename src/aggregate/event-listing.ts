// Owns one page of raw events, newest first, with an optional metadata filter: the filter is matched
// here over keyset pages of the store's listing, so it means the same on every store, and a scan
// budget bounds the rows one page may examine. Must never return a next position that skips a row it
// did not examine, nor examine more than the budget when a filter is given.

import { InvalidQuery } from '../domain/errors.js';
import { matchesMetadata, type MetadataFilter } from '../domain/metadata-filter.js';
import type { StoredEvent } from '../domain/records.js';
import type { EventPort, EventQuery } from '../store/store.js';

/** Most stored events one filtered page examines before it answers with what it has found. */
export const DEFAULT_EVENT_SCAN_BUDGET = 10_000;
/** Rows read from the store at a time while a filter looks for matches. */
export const EVENT_SCAN_CHUNK = 500;

/** A position in the newest-first order: the next page holds rows strictly older than it. */
export interface EventPosition {
  ts: number;
  seq: number;
}

export interface EventPageQuery extends Omit<EventQuery, 'limit'> {
  /** Most events on the page. */
  limit: number;
  /** Only events whose metadata has these values; empty for every event. */
  metadata: MetadataFilter;
}

export interface EventPageOptions {
  /** Most stored events a filtered page examines (default DEFAULT_EVENT_SCAN_BUDGET); at least 1. */
  scanBudget?: number;
}

export interface EventPage {
  events: StoredEvent[];
  /**
   * Where the next page starts, or undefined on the last page. With a filter, a page the scan budget
   * cut short has fewer than `limit` events (possibly none) and a next position all the same.
   */
  next: EventPosition | undefined;
}

const positionOf = (e: StoredEvent): EventPosition => ({ ts: e.ts, seq: e.seq });

/**
 * One page of events. Without a filter: one read of limit + 1 rows. With one: chunks of the listing,
 * matched in order, until `limit` matches and one more are found, the store has no more rows, or
 * `scanBudget` rows were examined. The next position is the last row examined before the page ended
 * (a returned event or one that did not match), so following it never skips or repeats a row, and
 * events stored meanwhile that sort before the cursor (newer ones) never shift a walk.
 */
export async function listEventPage(store: Pick<EventPort, 'listEvents'>, q: EventPageQuery, o: EventPageOptions = {}): Promise<EventPage> {
  const { metadata, limit, ...where } = q;
  const filtered = metadata.length > 0;
  if (filtered && where.customerId === undefined) {
    throw new InvalidQuery('A metadata filter needs customerId: a filter looks through the events of one customer');
  }
  const budget = filtered ? (o.scanBudget ?? DEFAULT_EVENT_SCAN_BUDGET) : Infinity;
  if (!(budget >= 1)) throw new RangeError(`scanBudget must be at least 1 (got ${budget})`);

  const events: StoredEvent[] = [];
  let last: EventPosition | undefined;
  let before = where.before;
  let examined = 0;
  for (;;) {
    const wanted = filtered ? Math.max(limit + 1 - events.length, EVENT_SCAN_CHUNK) : limit + 1;
    const read = Math.min(wanted, budget - examined);
    if (read <= 0) return { events, next: last };
    const rows = await store.listEvents({ ...where, before, limit: read });
    for (const row of rows) {
      examined++;
      if (matchesMetadata(row.metadata, metadata)) {
        // One match more than the page holds: there is a next page, and it starts after `last`.
        if (events.length === limit) return { events, next: last };
        events.push(row);
      }
      last = positionOf(row);
    }
    if (rows.length < read) return { events, next: undefined };
    before = last;
  }
}
