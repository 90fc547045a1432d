// Owns the single-writer guarantee of a SQLite data file: the first process that appends events takes
// an exclusive lock on a side file and keeps it until it closes or dies (the OS drops it then).
// Must never let two processes append to one file: each hands out its own event seqs and applies
// its own pending events, so a second writer would lose or double-count usage.

import Database from 'better-sqlite3';

export class WriterLockTaken extends Error {
  constructor(readonly file: string) {
    super(`another meterhook process is writing to ${file}: one server per SQLite data directory (use DATABASE_URL to run several)`);
  }
}

export function takeWriterLock(dbFile: string): { release(): void } {
  const lockFile = `${dbFile}.writer-lock`;
  // timeout 0: a held lock is an answer, not something to wait for.
  const lock = new Database(lockFile, { timeout: 0 });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    // Nothing is ever written to it, so it needs no journal file beside it.
    lock.pragma('journal_mode = MEMORY');
    // The transaction is never committed: the exclusive lock lives as long as this connection.
    lock.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new WriterLockTaken(dbFile);
    throw err;
  }
  return {
    release() {
      if (lock.open) lock.close();
    },
  };
}
