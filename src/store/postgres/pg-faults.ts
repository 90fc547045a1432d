// Owns what PostgreSQL's errors mean for callers: which SQLSTATEs and network errors are faults to retry
// later (connection lost, serialization failure, deadlock, out of resources, shutdown, lock or
// statement timeout) and how long to wait, and the write probe readiness runs after a fault.
// Must never classify a constraint violation, bad SQL or bad data as transient: those are bugs.

import type pg from 'pg';
import { StoreUnavailable } from '../../domain/errors.js';

interface Transient {
  retryAfter: number;
  reason: string;
}

const CONNECTION: Transient = { retryAfter: 5, reason: 'the database cannot be reached' };

/** Exact SQLSTATEs. */
const BY_CODE: Record<string, Transient> = {
  '40001': { retryAfter: 1, reason: 'a serialization conflict' }, // serialization_failure
  '40P01': { retryAfter: 1, reason: 'a deadlock' }, // deadlock_detected
  '55P03': { retryAfter: 1, reason: 'a lock could not be taken in time' }, // lock_not_available (lock_timeout)
  '57014': { retryAfter: 1, reason: 'the statement was canceled' }, // query_canceled (statement_timeout)
  '57P01': { retryAfter: 5, reason: 'the database closed the connection' }, // admin_shutdown (shutdown, or the backend was terminated)
  '57P02': { retryAfter: 5, reason: 'the database is recovering from a crash' }, // crash_shutdown
  '57P03': { retryAfter: 5, reason: 'the database is starting up or shutting down' }, // cannot_connect_now
  '25006': { retryAfter: 5, reason: 'the database is read-only' }, // read_only_sql_transaction (a standby after failover)
};

/** Whole SQLSTATE classes. */
const BY_CLASS: Record<string, Transient> = {
  '08': CONNECTION, // connection_exception
  // insufficient_resources, 53100 disk_full, 53300 too_many_connections
  '53': { retryAfter: 5, reason: 'the database is out of resources' },
};

/** Node network errors on the socket to the server. */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** node-postgres reports a lost or unobtainable connection with these messages and no code. */
const LOST = new RegExp(
  [
    'Connection terminated',
    'connection timeout',
    'timeout exceeded when trying to connect',
    'Client has encountered a connection error',
    'not queryable',
    'Connection ended unexpectedly',
  ].join('|'),
  'i',
);

/** PostgreSQL's classifier (see Store.classifyError). */
export function pgFault(err: unknown): StoreUnavailable | undefined {
  if (err instanceof StoreUnavailable) return err;
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const t =
    BY_CODE[code] ??
    (code.length === 5 ? BY_CLASS[code.slice(0, 2)] : undefined) ??
    (NETWORK.has(code) || LOST.test(typeof e?.message === 'string' ? e.message : '') ? CONNECTION : undefined);
  return t ? new StoreUnavailable(t.retryAfter, err, t.reason) : undefined;
}

/**
 * A write probe, run in a transaction: it takes the locks a capture takes on the tables it writes
 * (waiting at most 1 s, as a capture would wait 2 s) and an xid, which a read-only or shutting-down
 * server refuses. It writes no row.
 */
export async function writeProbe(c: pg.PoolClient): Promise<void> {
  await c.query("SET LOCAL lock_timeout = '1s'");
  await c.query("SET LOCAL statement_timeout = '2s'");
  await c.query('LOCK TABLE ONLY events, event_keys, dirty_periods, rollups IN ROW EXCLUSIVE MODE');
  await c.query('SELECT txid_current()');
}
