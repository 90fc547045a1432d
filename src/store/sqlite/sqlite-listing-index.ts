// Owns the two event listing indexes, (customer, ts, seq) and (ts, seq). They serve only GET /events
// and retention, so ingest never pays for them: they are filled from the events table in big sorted
// INSERT … SELECT chunks when a listing needs them, when the store is idle, or when they fall far behind.
// Must never let a listing or a deletion read them before they cover every committed event.

import type Database from 'better-sqlite3';

export interface ListingIndexOptions {
  /** Most events indexed in one transaction. */
  chunk?: number;
  /** How often the idle check runs, in ms. */
  intervalMs?: number;
  /** A lag that is caught up even while appends keep coming. */
  maxLag?: number;
  /** Told about a background chunk that failed; it is retried on a later tick. */
  onError?: (err: unknown) => void;
}

export function createListingIndex(
  db: Database.Database,
  source: { lastSeq(): number; idleFor(): number },
  opts: ListingIndexOptions = {},
) {
  const chunk = opts.chunk ?? 100_000;
  const intervalMs = opts.intervalMs ?? 250;
  const maxLag = opts.maxLag ?? 200_000;
  const onError = opts.onError ?? ((err: unknown) => console.error('meterhook: filling the event listing indexes failed; will retry', err));

  const readIndexed = db.prepare('SELECT indexed_seq FROM derived_state WHERE id = 1').pluck();
  const chunkEnd = db.prepare('SELECT max(seq) FROM (SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?)').pluck();
  const fillByCustomer = db.prepare(
    `INSERT OR IGNORE INTO events_by_customer (customer_id, ts, seq)
     SELECT customer_id, ts, seq FROM events WHERE seq > ? AND seq <= ? ORDER BY customer_id, ts, seq`,
  );
  const fillByTime = db.prepare(
    'INSERT OR IGNORE INTO events_by_time (ts, seq) SELECT ts, seq FROM events WHERE seq > ? AND seq <= ? ORDER BY ts, seq',
  );
  const saveIndexed = db.prepare('UPDATE derived_state SET indexed_seq = ? WHERE id = 1');

  let indexedSeq = readIndexed.get() as number;

  /** Indexes the next chunk; false once nothing is left. Reads the watermark inside the transaction,
   * so another process sharing the file (a CLI command) never makes it index a range twice. */
  const step = db.transaction((): boolean => {
    const from = readIndexed.get() as number;
    const to = chunkEnd.get(from, chunk) as number | null;
    if (to === null) {
      indexedSeq = from;
      return false;
    }
    fillByCustomer.run(from, to);
    fillByTime.run(from, to);
    saveIndexed.run(to);
    indexedSeq = to;
    return true;
  });

  const lag = () => source.lastSeq() - indexedSeq;

  let closed = false;
  const timer = setInterval(() => {
    if (closed || lag() <= 0) return;
    if (source.idleFor() < intervalMs && lag() < maxLag) return;
    try {
      step.immediate();
    } catch (err) {
      onError(err);
    }
  }, intervalMs);
  timer.unref();

  return {
    /** Brings both indexes up to date with every committed event. */
    catchUp(): void {
      while (lag() > 0 && step.immediate());
    },
    lag,
    close(): void {
      closed = true;
      clearInterval(timer);
    },
  };
}
