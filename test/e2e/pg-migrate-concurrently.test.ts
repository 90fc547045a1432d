// Three real `meterhook serve` processes started at the same instant against one EMPTY PostgreSQL
// database: the advisory lock lets one migrate while the others wait, so all become ready, each
// migration is recorded once, nothing is logged as an error, and the monthly event partitions exist.
// A database whose schema is newer than this code knows is refused.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { MIGRATION_LOCK, migratePg, partitionName, PG_MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { REFERENCE_CONFIG } from '../helpers/app.js';
import type { PgCluster } from '../helpers/postgres-cluster.js';
import { http, startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { ownCluster, tearDown } from '../helpers/pg-e2e.js';

const API_KEY = `mh_pgmig_${randomBytes(10).toString('hex')}`;
const AUTH = { 'x-apikey': API_KEY };

function errorLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => {
    if (!l.startsWith('{')) return false;
    try {
      return ((JSON.parse(l) as { level?: number }).level ?? 0) >= 50;
    } catch {
      return false;
    }
  });
}

describe('three processes migrate one empty PostgreSQL database at the same instant', () => {
  let cluster: PgCluster | undefined;
  const servers: ServerProcess[] = [];
  const pools: pg.Pool[] = [];

  before(async () => {
    cluster = await ownCluster();
  });

  after(() => tearDown({ servers, pools, cluster }));

  // Round 1 starts the three as they come. Round 2 makes the collision certain: the test holds the
  // migration lock until all three are queued on it, then lets go, so they race at the same instant.
  for (const round of [1, 2]) {
    const gated = round === 2;
    const roundTitle =
      `round ${round}${gated ? ' (all three queued on the lock)' : ''}: all three become ready, ` +
      'the schema is migrated once, partitions exist';
    it(roundTitle, async (t) => {
      const url = await cluster!.createDatabase(`mh_migrate${round}`);
      const db = new pg.Pool({ connectionString: url, max: 2 });
      pools.push(db);
      const empty = await db.query(`SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'`);
      assert.equal(Number(empty.rows[0].n), 0, 'the database starts empty');

      const config = { ...REFERENCE_CONFIG, periods: ['hourly', 'daily'] };
      let gate: pg.PoolClient | undefined;
      if (gated) {
        gate = await db.connect();
        await gate.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      }
      const t0 = Date.now();
      const starting = Promise.allSettled(
        [0, 1, 2].map(() => startServerProcess({ config, apiKey: API_KEY, env: { DATABASE_URL: url }, timeoutMs: 30_000 })),
      );
      if (gate) {
        try {
          const deadline = Date.now() + 25_000;
          for (;;) {
            const w = await db.query(
              `SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
              [MIGRATION_LOCK],
            );
            if (Number(w.rows[0].n) === 3) break;
            assert.ok(Date.now() < deadline, `three processes queued on the migration lock (now ${w.rows[0].n})`);
            await new Promise((r) => setTimeout(r, 50));
          }
          t.diagnostic(`three processes waiting on the migration lock after ${Date.now() - t0} ms; releasing`);
        } finally {
          await gate.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
          gate.release();
        }
      }
      const started = await starting;
      for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
      const failed = started.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => String(s.reason).slice(0, 2000));
      assert.deepEqual(failed, [], 'every process started and listened');
      const mine = started.map((s) => (s as PromiseFulfilledResult<ServerProcess>).value);
      t.diagnostic(`three processes listening after ${Date.now() - t0} ms`);

      for (const [i, s] of mine.entries()) {
        const r = await http(`${s.url}/readyz`, { timeoutMs: 5_000 });
        assert.equal(r.status, 200, `server ${i} /readyz: ${r.text}`);
        assert.deepEqual(r.body, { status: 'ready', store: 'postgres' });
      }

      const migrations = await db.query('SELECT version, name FROM schema_migrations ORDER BY version');
      assert.equal(migrations.rows.length, PG_MIGRATIONS.length, 'one schema_migrations row per migration');
      assert.deepEqual(
        migrations.rows.map((r) => [Number(r.version), r.name]),
        PG_MIGRATIONS.map((m) => [m.version, m.name]),
      );

      const parts = (
        await db.query(
          `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1`,
        )
      ).rows.map((r) => r.relname as string);
      assert.ok(parts.length > 1, `monthly partitions exist besides the default (${parts.join(', ')})`);
      assert.ok(parts.includes('events_default'));
      const now = Date.now();
      for (const at of [now - 35 * 86_400_000, now, now + 62 * 86_400_000]) {
        assert.ok(parts.includes(partitionName(at)), `partition ${partitionName(at)} exists`);
      }

      // Each process serves reads and writes on the migrated schema.
      for (const [i, s] of mine.entries()) {
        const w = await http(`${s.url}/usage/api.calls`, {
          headers: AUTH,
          body: { id: `mig-${round}-${i}`, customerId: 'cust_mig', value: i + 1 },
          timeoutMs: 5_000,
        });
        assert.equal(w.status, 201, `server ${i} write: ${w.text}`);
      }
      for (const [i, s] of mine.entries()) {
        const r = await http<unknown[]>(`${s.url}/events?customerId=cust_mig`, { headers: AUTH, timeoutMs: 5_000 });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.length, 3, `server ${i} sees the three events`);
      }

      for (const [i, s] of mine.entries()) {
        assert.equal(s.stderr().trim(), '', `server ${i} wrote nothing to stderr`);
        assert.deepEqual(errorLines(s.stdout()), [], `server ${i} logged no error`);
        assert.equal(s.proc.exitCode, null, `server ${i} is running`);
      }
      for (const s of mine) await s.kill('SIGKILL');
    });
  }

  it('an older meterhook refuses a database written by a newer one, and leaves its lock free', async () => {
    const url = await cluster!.createDatabase('mh_migrate_newer');
    const db = new pg.Pool({ connectionString: url, max: 2 });
    pools.push(db);
    await migratePg(db);
    const known = Math.max(...PG_MIGRATIONS.map((m) => m.version));
    await db.query(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from a newer meterhook', 0)`);
    await assert.rejects(migratePg(db), (err: Error) => {
      assert.match(err.message, /schema version 999, written by a newer meterhook; this version knows up to (\d+)/);
      assert.equal(err.message.match(/knows up to (\d+)/)?.[1], String(known));
      return true;
    });
    const versions = (await db.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => Number(r.version));
    assert.deepEqual(versions, [...PG_MIGRATIONS.map((m) => m.version), 999], 'the refusal wrote nothing');
    // The advisory lock was released: once the newer row is gone, migrating succeeds at once.
    await db.query('DELETE FROM schema_migrations WHERE version = 999');
    await migratePg(db);
  });
});
