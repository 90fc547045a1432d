// Owns the PostgreSQL schema, its versioned migrations (serialized across processes by an advisory
// lock) and the monthly partitions of the events table. Must never edit a released migration.

import type pg from 'pg';
import { withClient } from './with-client.js';

/** Arbitrary constants naming meterhook's advisory locks. */
export const MIGRATION_LOCK = 7_244_001;
export const PARTITION_LOCK = 7_244_002;
export const RETENTION_LOCK = 7_244_003;

export const PG_MIGRATIONS: Array<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'core',
    sql: `
      CREATE SEQUENCE events_seq;
      CREATE TABLE events (
        seq          bigint           NOT NULL,
        customer_id  text             NOT NULL,
        event_type   text             NOT NULL,
        event_id     text,
        ts           bigint           NOT NULL,
        received_at  bigint           NOT NULL,
        value        double precision NOT NULL,
        metadata     text,
        PRIMARY KEY (ts, seq)
      ) PARTITION BY RANGE (ts);
      -- Catches events outside every monthly partition, so an insert never fails for lack of one.
      CREATE TABLE events_default PARTITION OF events DEFAULT;
      CREATE INDEX events_customer_ts ON events (customer_id, ts);
      CREATE INDEX events_seq_idx ON events (seq);

      -- Idempotency ids live outside the partitioned table: a unique key there would have to include ts.
      CREATE TABLE event_keys (
        customer_id  text   NOT NULL,
        event_type   text   NOT NULL,
        event_id     text   NOT NULL,
        ts           bigint NOT NULL,
        seq          bigint NOT NULL,
        PRIMARY KEY (customer_id, event_type, event_id)
      );
      CREATE INDEX event_keys_ts ON event_keys (ts);

      CREATE TABLE rollups (
        customer_id  text             NOT NULL,
        hour         bigint           NOT NULL,
        event_type   text             NOT NULL,
        count        bigint           NOT NULL,
        sum          double precision NOT NULL,
        vmin         double precision NOT NULL,
        vmax         double precision NOT NULL,
        first_ts     bigint           NOT NULL,
        first_seq    bigint           NOT NULL,
        first_value  double precision NOT NULL,
        last_ts      bigint           NOT NULL,
        last_seq     bigint           NOT NULL,
        last_value   double precision NOT NULL,
        PRIMARY KEY (customer_id, hour, event_type)
      );

      CREATE TABLE dirty_periods (
        period       text   NOT NULL,
        period_start bigint NOT NULL,
        customer_id  text   NOT NULL,
        change_seq   bigint NOT NULL,
        PRIMARY KEY (period, period_start, customer_id)
      );

      CREATE TABLE aggregations (
        id             text    PRIMARY KEY,
        customer_id    text    NOT NULL,
        period         text    NOT NULL,
        period_key     text    NOT NULL,
        period_start   bigint  NOT NULL,
        period_end     bigint  NOT NULL,
        events         text    NOT NULL,
        event_counts   text    NOT NULL,
        final          boolean NOT NULL,
        revision       integer NOT NULL,
        computed_at    bigint  NOT NULL,
        finalized_at   bigint,
        webhook_status text    NOT NULL,
        UNIQUE (customer_id, period, period_start)
      );
      CREATE INDEX aggregations_start ON aggregations (period_start, id);

      CREATE TABLE messages (
        id             text    PRIMARY KEY,
        aggregation_id text    NOT NULL,
        revision       integer NOT NULL,
        type           text    NOT NULL,
        customer_id    text    NOT NULL,
        period         text    NOT NULL,
        created_at     bigint  NOT NULL,
        body           text    NOT NULL,
        UNIQUE (aggregation_id, revision)
      );

      CREATE TABLE api_keys (
        id          text   PRIMARY KEY,
        hash        text   NOT NULL UNIQUE,
        prefix      text   NOT NULL,
        name        text   NOT NULL,
        created_at  bigint NOT NULL,
        revoked_at  bigint
      );

      CREATE TABLE webhook_endpoints (
        id               text    PRIMARY KEY,
        url              text    NOT NULL,
        disabled_at      bigint,
        disabled_reason  text,
        last_success_at  bigint,
        last_failure_at  bigint,
        failure_streak   integer NOT NULL DEFAULT 0
      );

      CREATE TABLE deliveries (
        id               text    PRIMARY KEY,
        message_id       text    NOT NULL,
        endpoint_id      text    NOT NULL,
        aggregation_id   text    NOT NULL,
        status           text    NOT NULL,
        attempts         integer NOT NULL DEFAULT 0,
        next_attempt_at  bigint,
        lease_owner      text,
        lease_until      bigint,
        created_at       bigint  NOT NULL,
        updated_at       bigint  NOT NULL,
        deadline_at      bigint  NOT NULL,
        last_status_code integer,
        last_error       text,
        delivered_at     bigint,
        dry_run          boolean NOT NULL DEFAULT false,
        UNIQUE (message_id, endpoint_id)
      );
      CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
      CREATE INDEX deliveries_aggregation ON deliveries (aggregation_id);
      CREATE INDEX deliveries_created ON deliveries (created_at, id);

      CREATE TABLE delivery_attempts (
        id                bigserial PRIMARY KEY,
        delivery_id       text    NOT NULL,
        attempt           integer NOT NULL,
        started_at        bigint  NOT NULL,
        duration_ms       integer NOT NULL,
        status_code       integer,
        error_class       text,
        error             text,
        response_body     text,
        webhook_timestamp bigint  NOT NULL,
        dry_run           boolean NOT NULL DEFAULT false,
        manual            boolean NOT NULL DEFAULT false
      );
      CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);
    `,
  },
  {
    version: 2,
    name: 'deliveries-per-endpoint',
    sql: `
      CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, status, next_attempt_at);
      CREATE INDEX deliveries_leases ON deliveries (status, lease_until);
    `,
  },
  {
    version: 3,
    name: 'exact-decimal-totals',
    // Totals become exact: rollups.sum is numeric, and aggregations.events holds each total as
    // decimal text. A rollup whose events are all still stored is recomputed exactly from them (each
    // value is the shortest decimal of its double, which float8 text output gives); one whose events
    // retention dropped keeps its old total, rounded half away from zero to 12 places, as do stored
    // documents.
    sql: `
      ALTER TABLE rollups ALTER COLUMN sum TYPE numeric USING round(sum::text::numeric, 12);
      UPDATE rollups r SET sum = e.s
        FROM (SELECT customer_id, event_type, ts - (((ts % 3600000) + 3600000) % 3600000) AS hour,
                     count(*) AS n, sum(round(value::text::numeric, 12)) AS s
              FROM events GROUP BY 1, 2, 3) e
        WHERE r.customer_id = e.customer_id AND r.event_type = e.event_type AND r.hour = e.hour AND r.count = e.n
          AND r.sum <> e.s;
      UPDATE aggregations a SET events = coalesce(
        (SELECT json_object_agg(key, trim_scale(round(value::numeric, 12))::text ORDER BY key)::text
         FROM json_each_text(a.events::json)), '{}');
    `,
  },
  {
    version: 4,
    name: 'request-keys',
    // Idempotency-Key of POST /usagebatch: one row per keyed request, written in the transaction that
    // stores the request's events; kept for maxEventAge, then deleted by the scheduled maintenance run.
    sql: `
      CREATE TABLE request_keys (
        request_key text   PRIMARY KEY,
        body_hash   text   NOT NULL,
        created_at  bigint NOT NULL
      );
      CREATE INDEX request_keys_created ON request_keys (created_at);
    `,
  },
  {
    version: 5,
    name: 'dimensions',
    // Meters with groupBy keep one hour state per group beside the hour's total (grp is the group key of
    // dimensions.ts, '*' the overflow group); meters with op "unique" keep each distinct value once per period
    // it appears in (grp '' is the type's whole set); documents of such meters carry their groups as JSON.
    sql: `
      CREATE TABLE group_rollups (
        customer_id  text             NOT NULL,
        hour         bigint           NOT NULL,
        event_type   text             NOT NULL,
        grp          text             NOT NULL,
        count        bigint           NOT NULL,
        sum          numeric          NOT NULL,
        vmin         double precision NOT NULL,
        vmax         double precision NOT NULL,
        first_ts     bigint           NOT NULL,
        first_seq    bigint           NOT NULL,
        first_value  double precision NOT NULL,
        last_ts      bigint           NOT NULL,
        last_seq     bigint           NOT NULL,
        last_value   double precision NOT NULL,
        PRIMARY KEY (customer_id, hour, event_type, grp)
      );
      CREATE TABLE unique_values (
        customer_id  text   NOT NULL,
        event_type   text   NOT NULL,
        period       text   NOT NULL,
        period_start bigint NOT NULL,
        grp          text   NOT NULL,
        token        text   NOT NULL,
        PRIMARY KEY (customer_id, period, period_start, event_type, grp, token)
      );
      ALTER TABLE aggregations ADD COLUMN groups text;
    `,
  },
  {
    version: 6,
    name: 'customer-listing-index-and-key-scopes',
    // GET /customers?search= reads the range [prefix, next prefix) in byte order. The primary key is in
    // the database's collation, where a prefix is not a range (en_US sorts "a-b" between "ab" and "ac"),
    // so the listing walks this index instead, which also answers max(hour) without the table.
    // api_keys.scopes: what a key may do (comma-separated, canonical order); keys stored before could do
    // everything, so they become admin keys.
    sql: `
      CREATE INDEX rollups_customer_c ON rollups (customer_id COLLATE "C", hour);
      ALTER TABLE api_keys ADD COLUMN scopes text NOT NULL DEFAULT 'admin';
    `,
  },
  {
    version: 7,
    name: 'customer-keys-and-key-rate-limits',
    // A key may be confined to one customer, expire, and carry its own token bucket; key_version is bumped
    // by every key insert and revocation so every process sharing the database notices within its poll.
    sql: `
      ALTER TABLE api_keys ADD COLUMN customer_id text;
      ALTER TABLE api_keys ADD COLUMN expires_at bigint;
      ALTER TABLE api_keys ADD COLUMN rate_rps double precision;
      ALTER TABLE api_keys ADD COLUMN rate_burst integer;
      CREATE TABLE key_version (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL);
      INSERT INTO key_version (id, version) VALUES (1, 0);
    `,
  },
  {
    version: 8,
    name: 'audit-log',
    // Admin actions, append-only: a record is never changed (the trigger refuses), only deleted past retention.
    sql: `
      CREATE TABLE audit_log (
        id          text    PRIMARY KEY,
        action      text    NOT NULL,
        key_id      text    NOT NULL,
        at          bigint  NOT NULL,
        method      text    NOT NULL,
        route       text    NOT NULL,
        target      text    NOT NULL,
        status      integer NOT NULL,
        error_code  text,
        request_id  text    NOT NULL
      );
      CREATE INDEX audit_log_at ON audit_log (at, id);
      CREATE FUNCTION audit_log_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
      CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_update();
    `,
  },
  {
    version: 9,
    name: 'derive_queue',
    sql: `
      -- One row per ingest transaction that stored new events: which events (their ts and seq) still
      -- need their hour states, marks and dimensions, and the rules (periods, groupBy) they were
      -- captured under. Any process claims rows (SKIP LOCKED), derives them and deletes them, in one
      -- transaction; reads of usage and the close first derive every row they can see.
      CREATE TABLE derive_queue (
        id          bigserial PRIMARY KEY,
        created_at  bigint    NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
        events      integer   NOT NULL,
        rules       text      NOT NULL,
        tss         bigint[]  NOT NULL,
        seqs        bigint[]  NOT NULL
      );
      -- Nothing looks events up by seq alone, and every event paid for this index on insert.
      DROP INDEX IF EXISTS events_seq_idx;
    `,
  },
  {
    version: 10,
    name: 'sole-groups',
    sql: `
      -- An hour whose events are all in one group keeps that group in its total's row (sole_grp) instead
      -- of a group_rollups row of the same state: one row write per grouped event, not two. When the hour
      -- gets a second group (or an event of no group), the upsert sets sole_grp to null and this trigger
      -- writes the group's row from the total as it was, under the total's row lock. Rows stored before
      -- keep null: their groups are in group_rollups.
      ALTER TABLE rollups ADD COLUMN sole_grp text;
      CREATE FUNCTION meterhook_sole_group_split() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO group_rollups (customer_id, hour, event_type, grp, count, sum, vmin, vmax,
                                   first_ts, first_seq, first_value, last_ts, last_seq, last_value)
        VALUES (OLD.customer_id, OLD.hour, OLD.event_type, OLD.sole_grp, OLD.count, OLD.sum, OLD.vmin, OLD.vmax,
                OLD.first_ts, OLD.first_seq, OLD.first_value, OLD.last_ts, OLD.last_seq, OLD.last_value);
        RETURN NULL;
      END $$;
      CREATE TRIGGER rollups_sole_group_split AFTER UPDATE OF sole_grp ON rollups FOR EACH ROW
        WHEN (OLD.sole_grp IS NOT NULL AND NEW.sole_grp IS NULL) EXECUTE FUNCTION meterhook_sole_group_split();
    `,
  },
  {
    version: 11,
    name: 'group-merges',
    sql: `
      -- The running merge of an open period's groups (group-merge-plan.ts): each group's state over the
      -- hours [period_start, through), and each type's total over them (so its event count) when it was built. A
      -- read uses it only while the counts still match the hour totals, so no late event can make it wrong.
      -- A later migration that rewrites hour states without changing their counts must empty it.
      CREATE TABLE group_merges (
        customer_id  text             NOT NULL,
        period       text             NOT NULL,
        period_start bigint           NOT NULL,
        event_type   text             NOT NULL,
        grp          text             NOT NULL,
        count        bigint           NOT NULL,
        sum          numeric          NOT NULL,
        vmin         double precision NOT NULL,
        vmax         double precision NOT NULL,
        first_ts     bigint           NOT NULL,
        first_seq    bigint           NOT NULL,
        first_value  double precision NOT NULL,
        last_ts      bigint           NOT NULL,
        last_seq     bigint           NOT NULL,
        last_value   double precision NOT NULL,
        PRIMARY KEY (customer_id, period, period_start, event_type, grp)
      );
      CREATE TABLE group_merge_heads (
        customer_id  text   NOT NULL,
        period       text   NOT NULL,
        period_start bigint NOT NULL,
        through      bigint NOT NULL,
        totals       text   NOT NULL,
        PRIMARY KEY (customer_id, period, period_start)
      );
    `,
  },
  {
    version: 12,
    name: 'close-generations',
    // One row per period instance that has had events (about 9,200 a year over the five periods): a
    // derivation holds it FOR SHARE while it raises marks, a close FOR UPDATE while it deletes them, and
    // each close adds one to generation, so a process may skip marks it saw at the generation it reads.
    sql: `
      CREATE TABLE close_generations (
        period       text   NOT NULL,
        period_start bigint NOT NULL,
        generation   bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (period, period_start)
      );
    `,
  },
];

export async function migratePg(pool: pg.Pool): Promise<void> {
  return withClient(pool, async (client) => {
    try {
      // Several processes may start at once: one migrates, the others wait and then find nothing to do.
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`);
      const done = new Set((await client.query('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)));
      const newest = Math.max(0, ...done);
      const known = Math.max(...PG_MIGRATIONS.map((m) => m.version));
      // An older meterhook would run on a newer schema without knowing its rules (e.g. that events are
      // derived from derive_queue), silently missing or corrupting usage: refuse instead.
      if (newest > known) {
        throw new Error(`this database has schema version ${newest}, written by a newer meterhook; this version knows up to ${known}`);
      }
      for (const m of PG_MIGRATIONS) {
        if (done.has(m.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
            m.version,
            m.name,
            Date.now(),
          ]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    }
  });
}

function monthStart(t: number): number {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

function nextMonth(start: number): number {
  const d = new Date(start);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

export function partitionName(start: number): string {
  const d = new Date(start);
  return `events_y${d.getUTCFullYear()}m${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * Creates the monthly partitions covering [from, to). A month whose rows already sit in the default
 * partition (events that arrived before their partition existed) is left to the default partition.
 */
export async function ensurePartitions(pool: pg.Pool, from: number, to: number): Promise<string[]> {
  return withClient(pool, async (client) => {
    const created: string[] = [];
    try {
      await client.query('SELECT pg_advisory_lock($1)', [PARTITION_LOCK]);
      const existing = new Set(
        (
          await client.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                           WHERE i.inhparent = 'events'::regclass`)
        ).rows.map((r) => r.relname as string),
      );
      for (let s = monthStart(from); s < to; s = nextMonth(s)) {
        const name = partitionName(s);
        if (existing.has(name)) continue;
        const e = nextMonth(s);
        const stray = await client.query('SELECT 1 FROM events_default WHERE ts >= $1 AND ts < $2 LIMIT 1', [s, e]);
        if (stray.rowCount) continue;
        await client.query(`CREATE TABLE ${name} PARTITION OF events FOR VALUES FROM (${s}) TO (${e})`);
        created.push(name);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PARTITION_LOCK]).catch(() => undefined);
    }
    return created;
  });
}

/** Monthly partitions whose whole range ends at or before `before`, oldest first. */
export async function partitionsBefore(pool: pg.Pool, before: number): Promise<Array<{ name: string; start: number; end: number }>> {
  const rows = (
    await pool.query(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'events'::regclass AND c.relname LIKE 'events_y%'`,
    )
  ).rows as Array<{ name: string }>;
  const out: Array<{ name: string; start: number; end: number }> = [];
  for (const r of rows) {
    const m = /^events_y(\d{4})m(\d{2})$/.exec(r.name);
    if (!m) continue;
    const start = Date.UTC(Number(m[1]), Number(m[2]) - 1, 1);
    const end = nextMonth(start);
    if (end <= before) out.push({ name: r.name, start, end });
  }
  return out.sort((a, b) => a.start - b.start);
}
