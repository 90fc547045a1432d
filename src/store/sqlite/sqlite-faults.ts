// Owns what SQLite's errors mean for callers: which result codes are faults to retry later (busy,
// locked, full, read-only, I/O) and how long to wait, and the write probe readiness runs after a fault.
// Must never classify corruption or a programming error as transient: those stay errors (500, logged).

import type Database from 'better-sqlite3';
import { StoreUnavailable } from '../../domain/errors.js';

/** Primary result codes (the part before an extended code's suffix) that clear up by themselves. */
const TRANSIENT: Record<string, { retryAfter: number; reason: string }> = {
  SQLITE_BUSY: { retryAfter: 1, reason: 'the database is busy' },
  SQLITE_LOCKED: { retryAfter: 1, reason: 'the database is locked' },
  SQLITE_PROTOCOL: { retryAfter: 1, reason: 'the database is busy' },
  SQLITE_FULL: { retryAfter: 5, reason: 'the disk is full' },
  SQLITE_READONLY: { retryAfter: 5, reason: 'the database is read-only' },
  SQLITE_IOERR: { retryAfter: 5, reason: 'a disk I/O error occurred' },
  SQLITE_CANTOPEN: { retryAfter: 5, reason: 'a database file cannot be opened' },
  SQLITE_NOMEM: { retryAfter: 5, reason: 'the database is out of memory' },
};

/** The filesystem reported corruption: retrying will not help. */
const PERMANENT = new Set(['SQLITE_IOERR_CORRUPTFS']);

/** SQLite's classifier (see Store.classifyError). */
export function sqliteFault(err: unknown): StoreUnavailable | undefined {
  if (err instanceof StoreUnavailable) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_') || PERMANENT.has(code)) return undefined;
  const primary = code.split('_', 2).join('_');
  const t = TRANSIENT[primary];
  return t ? new StoreUnavailable(t.retryAfter, err, t.reason) : undefined;
}

/** Bytes the probe writes: enough pages that a file with no room left refuses it. */
const PROBE_BYTES = 64 * 1024;
/** A probe waits this long for another writer, not the full busy timeout of a request. */
const PROBE_BUSY_MS = 250;

/**
 * A write probe: one transaction that takes the write lock, allocates pages for 64 KiB and commits, then
 * gives them back (the row is deleted in the same transaction, so the file does not grow per probe).
 * It fails the way ingest does while the disk is full, the file is read-only or another writer holds it.
 */
export function createWriteProbe(db: Database.Database): () => void {
  const insert = db.prepare('INSERT INTO write_probe (pad) VALUES (zeroblob(?))');
  const clear = db.prepare('DELETE FROM write_probe');
  const run = db.transaction(() => {
    insert.run(PROBE_BYTES);
    clear.run();
  });
  return () => {
    const previous = db.pragma('busy_timeout', { simple: true }) as number;
    db.pragma(`busy_timeout = ${Math.min(previous, PROBE_BUSY_MS)}`);
    try {
      run.immediate();
    } finally {
      db.pragma(`busy_timeout = ${previous}`);
    }
  };
}
