// Owns how much period work one transaction may take, so a large close never stalls ingest.
// Must never return less than one mark per chunk.

import { HOUR_MS, periodInterval, type Period } from '../domain/periods.js';

/** Budget of rollup hours read per transaction; ~20k rows keeps a chunk in the low milliseconds. */
const HOURS_PER_CHUNK = 20_000;
const MAX_MARKS_PER_CHUNK = 500;

export function marksPerChunk(period: Period): number {
  const iv = periodInterval(period, Date.UTC(2024, 0, 1));
  const hours = Math.round((iv.end - iv.start) / HOUR_MS);
  return Math.max(1, Math.min(MAX_MARKS_PER_CHUNK, Math.floor(HOURS_PER_CHUNK / hours)));
}

/** Lets queued requests run between chunks of a long close. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
