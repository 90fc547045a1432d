// Causes real store faults under an in-process app: on SQLite through its live connection (a full
// database with PRAGMA max_page_count, a read-only connection with PRAGMA query_only, another
// connection holding the write lock); on PostgreSQL with a second connection holding a table lock.
// Nothing is mocked: the store meets the errors SQLite and PostgreSQL really return.

import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/pg-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';

/** The connection a SqliteStore writes with. */
export function liveConnection(store: Store): Database.Database {
  assert.ok(store instanceof SqliteStore, 'a SQLite store');
  const db = (store as unknown as { db: unknown }).db;
  assert.ok(db instanceof Database, 'the store keeps its connection in `db`');
  return db;
}

/** Sets a pragma on the store's connection; `restore()` sets the previous value back. */
function withPragma(store: Store, name: string, value: number): { restore(): void } {
  const db = liveConnection(store);
  const previous = db.pragma(name, { simple: true }) as number;
  db.pragma(`${name} = ${value}`);
  return { restore: () => void db.pragma(`${name} = ${previous}`) };
}

/**
 * The database may grow by at most `room` pages (default none): a write that needs more gets
 * SQLITE_FULL, exactly as when the disk is full.
 */
export function fullDisk(store: Store, room = 0): { restore(): void } {
  return withPragma(store, 'max_page_count', (liveConnection(store).pragma('page_count', { simple: true }) as number) + room);
}

/** Every write gets SQLITE_READONLY. */
export function readOnly(store: Store): { restore(): void } {
  return withPragma(store, 'query_only', 1);
}

/** Writers do not wait for a lock another connection holds (tests need no 5 s timeout). */
export function noBusyWait(store: Store): { restore(): void } {
  return withPragma(store, 'busy_timeout', 0);
}

/** A second connection to the same file holds the write lock until `release()`: writes get SQLITE_BUSY. */
export function heldWriteLock(dir: string): { release(): void } {
  const other = new Database(path.join(dir, 'meterhook.db'));
  other.exec('BEGIN IMMEDIATE');
  return {
    release() {
      other.exec('ROLLBACK');
      other.close();
    },
  };
}

/** A connection of its own to the store's PostgreSQL database, with the store's search_path. */
export async function pgSideConnection(store: Store): Promise<pg.Client> {
  assert.ok(store instanceof PostgresStore, 'a PostgreSQL store');
  const schema = (await store.pool.query('SELECT current_schema() AS s')).rows[0].s as string;
  const c = new pg.Client({ connectionString: store.pool.options.connectionString, options: `-c search_path=${schema}` });
  await c.connect();
  return c;
}
