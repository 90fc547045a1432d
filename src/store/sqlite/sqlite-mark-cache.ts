// Owns SQLite's cache of dirty marks known to exist, which lets a slice skip the upsert of a mark that
// is already stored. Entries are kept per period and customer (one number for a single start, a set
// for several), and their estimated heap is bounded: past the budget the cache is emptied, which only
// costs later slices an upsert per mark. Must never claim a mark that a committed close has deleted.

import { MARK_ENTRY_BYTES, MARK_SET_BYTES, MARK_START_BYTES } from '../../config/memory-budget.js';
import type { Period } from '../../domain/periods.js';

export function createMarkCache(maxBytes: number) {
  const byPeriod = new Map<Period, Map<string, number | Set<number>>>();
  let marks = 0;
  let bytes = 0;

  function clear(): void {
    byPeriod.clear();
    marks = 0;
    bytes = 0;
  }

  return {
    has(period: Period, customerId: string, start: number): boolean {
      const known = byPeriod.get(period)?.get(customerId);
      return known === undefined ? false : typeof known === 'number' ? known === start : known.has(start);
    },
    add(period: Period, customerId: string, start: number): void {
      if (bytes + MARK_ENTRY_BYTES + MARK_SET_BYTES > maxBytes) clear();
      let customers = byPeriod.get(period);
      if (!customers) byPeriod.set(period, (customers = new Map()));
      const known = customers.get(customerId);
      if (known === undefined) {
        customers.set(customerId, start);
        bytes += MARK_ENTRY_BYTES + 2 * customerId.length;
      } else if (typeof known === 'number') {
        if (known === start) return;
        customers.set(customerId, new Set([known, start]));
        bytes += MARK_SET_BYTES + 2 * MARK_START_BYTES;
      } else {
        if (known.has(start)) return;
        known.add(start);
        bytes += MARK_START_BYTES;
      }
      marks++;
    },
    /** After a committed close deleted it. */
    forget(period: Period, customerId: string, start: number): void {
      const customers = byPeriod.get(period);
      const known = customers?.get(customerId);
      if (known === undefined) return;
      if (typeof known === 'number') {
        if (known !== start) return;
        customers!.delete(customerId);
        bytes -= MARK_ENTRY_BYTES + 2 * customerId.length;
      } else {
        if (!known.delete(start)) return;
        bytes -= MARK_START_BYTES;
        if (known.size === 0) {
          customers!.delete(customerId);
          bytes -= MARK_SET_BYTES + MARK_ENTRY_BYTES + 2 * customerId.length;
        }
      }
      marks--;
    },
    clear,
    stats: () => ({ marks, bytes }),
  };
}

export type MarkCache = ReturnType<typeof createMarkCache>;
