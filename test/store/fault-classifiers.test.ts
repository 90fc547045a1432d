// The two store classifiers and the fault boundary: which SQLite result codes and PostgreSQL SQLSTATEs
// mean "retry later" (503 with their Retry-After) and which stay errors, checked on errors SQLite
// really raises where that is cheap, and on the codes themselves otherwise.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { StoreUnavailable } from '../../src/domain/errors.js';
import { installFaultBoundary, WriteHealth } from '../../src/store/fault-boundary.js';
import { pgFault } from '../../src/store/postgres/pg-faults.js';
import { sqliteFault } from '../../src/store/sqlite/sqlite-faults.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

test('SQLite: busy, locked, full, read-only and I/O errors are faults with their Retry-After; others are not', () => {
  const cases: Array<[string, number | undefined, RegExp?]> = [
    ['SQLITE_BUSY', 1, /busy/],
    ['SQLITE_BUSY_SNAPSHOT', 1, /busy/],
    ['SQLITE_BUSY_TIMEOUT', 1],
    ['SQLITE_LOCKED', 1, /locked/],
    ['SQLITE_LOCKED_SHAREDCACHE', 1],
    ['SQLITE_PROTOCOL', 1],
    ['SQLITE_FULL', 5, /disk is full/],
    ['SQLITE_READONLY', 5, /read-only/],
    ['SQLITE_READONLY_DBMOVED', 5],
    ['SQLITE_READONLY_RECOVERY', 5],
    ['SQLITE_IOERR', 5, /I\/O/],
    ['SQLITE_IOERR_WRITE', 5],
    ['SQLITE_IOERR_FSYNC', 5],
    ['SQLITE_IOERR_SHORT_READ', 5],
    ['SQLITE_CANTOPEN', 5],
    ['SQLITE_NOMEM', 5],
    ['SQLITE_IOERR_CORRUPTFS', undefined],
    ['SQLITE_CORRUPT', undefined],
    ['SQLITE_NOTADB', undefined],
    ['SQLITE_ERROR', undefined],
    ['SQLITE_CONSTRAINT_UNIQUE', undefined],
    ['SQLITE_MISMATCH', undefined],
    ['ENOSPC', undefined],
  ];
  for (const [code, retryAfter, reason] of cases) {
    const f = sqliteFault(withCode(code));
    assert.equal(f?.retryAfterSeconds, retryAfter, code);
    if (reason) assert.match(f!.message, reason, code);
  }
  for (const e of [new TypeError('The database connection is not open'), new Error('x'), undefined, null, 'SQLITE_BUSY'])
    assert.equal(sqliteFault(e), undefined);
});

test('SQLite: the errors it really raises are classified (a full file is a fault, a constraint is not)', () => {
  const db = new Database(':memory:');
  try {
    db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, pad BLOB)');
    db.prepare('INSERT INTO t VALUES (1, NULL)').run();
    const unique = (() => {
      try {
        db.prepare('INSERT INTO t VALUES (1, NULL)').run();
      } catch (e) {
        return e;
      }
    })();
    assert.equal(sqliteFault(unique), undefined);
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true })}`);
    const full = (() => {
      try {
        db.prepare('INSERT INTO t VALUES (2, zeroblob(100000))').run();
      } catch (e) {
        return e;
      }
    })();
    const f = sqliteFault(full);
    assert.ok(f instanceof StoreUnavailable);
    assert.equal(f.retryAfterSeconds, 5);
    assert.equal(f.cause, full);
  } finally {
    db.close();
  }
});

test('PostgreSQL: connection, conflict, resource, shutdown, lock and cancel classes are faults; others are not', () => {
  const cases: Array<[string, number | undefined]> = [
    ['08000', 5],
    ['08003', 5],
    ['08006', 5],
    ['08001', 5],
    ['08P01', 5],
    ['40001', 1],
    ['40P01', 1],
    ['53000', 5],
    ['53100', 5],
    ['53200', 5],
    ['53300', 5],
    ['57P01', 5],
    ['57P02', 5],
    ['57P03', 5],
    ['55P03', 1],
    ['57014', 1],
    ['25006', 5],
    ['ECONNREFUSED', 5],
    ['ECONNRESET', 5],
    ['ETIMEDOUT', 5],
    ['EPIPE', 5],
    ['EAI_AGAIN', 5],
    ['23505', undefined],
    ['23503', undefined],
    ['42P01', undefined],
    ['42601', undefined],
    ['22003', undefined],
    ['22P02', undefined],
    ['22021', undefined],
    ['40002', undefined],
    ['55000', undefined],
    ['57000', undefined],
    ['XX000', undefined],
  ];
  for (const [code, retryAfter] of cases) assert.equal(pgFault(withCode(code))?.retryAfterSeconds, retryAfter, code);
  for (const m of [
    'Connection terminated unexpectedly',
    'timeout exceeded when trying to connect',
    'Client has encountered a connection error and is not queryable',
  ]) {
    assert.equal(pgFault(new Error(m))?.retryAfterSeconds, 5, m);
  }
  assert.equal(pgFault(new Error('relation "x" does not exist')), undefined);
  const already = new StoreUnavailable(3);
  assert.equal(pgFault(already), already);
  assert.equal(sqliteFault(already), already);
});

const boundaryTitle =
  'the fault boundary classifies sync and async errors of every method, records faults of writes only, and passes bugs through';
test(boundaryTitle, async () => {
  class Fake {
    calls = 0;
    async appendEvents(): Promise<number> {
      this.calls++;
      throw withCode('SQLITE_FULL');
    }
    async listEvents(): Promise<void> {
      throw withCode('SQLITE_BUSY');
    }
    ping(): void {
      throw withCode('SQLITE_IOERR');
    }
    async closePeriods(): Promise<void> {
      throw new RangeError('a bug');
    }
    async getAggregation(): Promise<string> {
      return 'fine';
    }
  }
  const health = new WriteHealth();
  const s = new Fake();
  installFaultBoundary(s, Fake.prototype, sqliteFault, health);
  await assert.rejects(() => s.listEvents(), StoreUnavailable);
  assert.ok(health.ok, 'a read fault is not a write fault');
  assert.throws(() => s.ping(), StoreUnavailable);
  await assert.rejects(() => s.closePeriods(), RangeError);
  assert.ok(health.ok, 'a bug is not a fault');
  await assert.rejects(
    () => s.appendEvents(),
    (e: unknown) => e instanceof StoreUnavailable && /disk is full/.test(e.message),
  );
  assert.equal(s.calls, 1);
  assert.ok(health.has('write'));
  assert.equal(await s.getAggregation(), 'fine');
  health.clear('write');
  assert.ok(health.ok);
});
