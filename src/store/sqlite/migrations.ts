// Owns the SQLite schema and its versioned, forward-only migrations, applied at startup.
// Must never edit a released migration: add a new version instead.

import type Database from 'better-sqlite3';
import { registerDecimalFunctions } from './decimal-functions.js';
import { eventKeyHash } from './event-hash.js';

export const MIGRATIONS: Array<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'core',
    sql: `
      CREATE TABLE events (
        seq          INTEGER PRIMARY KEY,
        customer_id  TEXT    NOT NULL,
        event_type   TEXT    NOT NULL,
        event_id     TEXT,
        ts           INTEGER NOT NULL,
        received_at  INTEGER NOT NULL,
        value        REAL    NOT NULL,
        metadata     TEXT
      );
      -- NULL ids never collide, so only events that carry an id are deduplicated.
      CREATE UNIQUE INDEX events_dedupe ON events (customer_id, event_type, event_id);
      CREATE INDEX events_customer_ts ON events (customer_id, ts);
      CREATE INDEX events_ts ON events (ts);

      CREATE TABLE rollups (
        customer_id  TEXT    NOT NULL,
        hour         INTEGER NOT NULL,
        event_type   TEXT    NOT NULL,
        count        INTEGER NOT NULL,
        sum          REAL    NOT NULL,
        vmin         REAL    NOT NULL,
        vmax         REAL    NOT NULL,
        first_ts     INTEGER NOT NULL,
        first_seq    INTEGER NOT NULL,
        first_value  REAL    NOT NULL,
        last_ts      INTEGER NOT NULL,
        last_seq     INTEGER NOT NULL,
        last_value   REAL    NOT NULL,
        PRIMARY KEY (customer_id, hour, event_type)
      ) WITHOUT ROWID;

      CREATE TABLE dirty_periods (
        period       TEXT    NOT NULL,
        period_start INTEGER NOT NULL,
        customer_id  TEXT    NOT NULL,
        change_seq   INTEGER NOT NULL,
        PRIMARY KEY (period, period_start, customer_id)
      ) WITHOUT ROWID;

      CREATE TABLE aggregations (
        id             TEXT    PRIMARY KEY,
        customer_id    TEXT    NOT NULL,
        period         TEXT    NOT NULL,
        period_key     TEXT    NOT NULL,
        period_start   INTEGER NOT NULL,
        period_end     INTEGER NOT NULL,
        events         TEXT    NOT NULL,
        event_counts   TEXT    NOT NULL,
        final          INTEGER NOT NULL,
        revision       INTEGER NOT NULL,
        computed_at    INTEGER NOT NULL,
        finalized_at   INTEGER,
        webhook_status TEXT    NOT NULL,
        UNIQUE (customer_id, period, period_start)
      );
      CREATE INDEX aggregations_start ON aggregations (period_start, id);

      CREATE TABLE messages (
        id             TEXT    PRIMARY KEY,
        aggregation_id TEXT    NOT NULL,
        revision       INTEGER NOT NULL,
        type           TEXT    NOT NULL,
        customer_id    TEXT    NOT NULL,
        period         TEXT    NOT NULL,
        created_at     INTEGER NOT NULL,
        body           TEXT    NOT NULL,
        UNIQUE (aggregation_id, revision)
      );

      CREATE TABLE api_keys (
        id          TEXT    PRIMARY KEY,
        hash        TEXT    NOT NULL UNIQUE,
        prefix      TEXT    NOT NULL,
        name        TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
      );
    `,
  },
  {
    version: 2,
    name: 'webhook-delivery',
    sql: `
      CREATE TABLE webhook_endpoints (
        id               TEXT    PRIMARY KEY,
        url              TEXT    NOT NULL,
        disabled_at      INTEGER,
        disabled_reason  TEXT,
        last_success_at  INTEGER,
        last_failure_at  INTEGER,
        failure_streak   INTEGER NOT NULL DEFAULT 0
      );

      CREATE TABLE deliveries (
        id               TEXT    PRIMARY KEY,
        message_id       TEXT    NOT NULL,
        endpoint_id      TEXT    NOT NULL,
        aggregation_id   TEXT    NOT NULL,
        status           TEXT    NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  INTEGER,
        lease_owner      TEXT,
        lease_until      INTEGER,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        deadline_at      INTEGER NOT NULL,
        last_status_code INTEGER,
        last_error       TEXT,
        delivered_at     INTEGER,
        dry_run          INTEGER NOT NULL DEFAULT 0,
        UNIQUE (message_id, endpoint_id)
      );
      CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
      CREATE INDEX deliveries_aggregation ON deliveries (aggregation_id);
      CREATE INDEX deliveries_created ON deliveries (created_at, id);

      CREATE TABLE delivery_attempts (
        id                INTEGER PRIMARY KEY,
        delivery_id       TEXT    NOT NULL,
        attempt           INTEGER NOT NULL,
        started_at        INTEGER NOT NULL,
        duration_ms       INTEGER NOT NULL,
        status_code       INTEGER,
        error_class       TEXT,
        error             TEXT,
        response_body     TEXT,
        webhook_timestamp INTEGER NOT NULL,
        dry_run           INTEGER NOT NULL DEFAULT 0,
        manual            INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);
    `,
  },
  {
    version: 3,
    name: 'deliveries-per-endpoint',
    sql: `
      CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, status, next_attempt_at);
      CREATE INDEX deliveries_leases ON deliveries (status, lease_until);
    `,
  },
  {
    version: 4,
    name: 'derived-event-indexes',
    // Ingest commits only append to events. Rollups, marks and event_ids are derived from events in
    // sorted slices (sqlite-derived.ts) up to derived_state.applied_seq, and replayed above it at
    // startup; the two listing indexes are filled up to indexed_seq when a listing needs them or the
    // store is idle (sqlite-listing-index.ts).
    sql: `
      CREATE TABLE event_ids (
        h    INTEGER NOT NULL,
        seq  INTEGER NOT NULL,
        PRIMARY KEY (h, seq)
      ) WITHOUT ROWID;
      CREATE TABLE events_by_customer (
        customer_id TEXT    NOT NULL,
        ts          INTEGER NOT NULL,
        seq         INTEGER NOT NULL,
        PRIMARY KEY (customer_id, ts, seq)
      ) WITHOUT ROWID;
      CREATE TABLE events_by_time (
        ts   INTEGER NOT NULL,
        seq  INTEGER NOT NULL,
        PRIMARY KEY (ts, seq)
      ) WITHOUT ROWID;
      CREATE TABLE derived_state (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        applied_seq INTEGER NOT NULL,
        indexed_seq INTEGER NOT NULL,
        periods     TEXT    NOT NULL
      );
      INSERT INTO event_ids (h, seq)
        SELECT meterhook_event_hash(customer_id, event_type, event_id), seq FROM events WHERE event_id IS NOT NULL;
      INSERT INTO events_by_customer (customer_id, ts, seq) SELECT customer_id, ts, seq FROM events;
      INSERT INTO events_by_time (ts, seq) SELECT ts, seq FROM events;
      INSERT INTO derived_state (id, applied_seq, indexed_seq, periods)
        VALUES (1, coalesce((SELECT max(seq) FROM events), 0), coalesce((SELECT max(seq) FROM events), 0), '[]');
      DROP INDEX events_dedupe;
      DROP INDEX events_customer_ts;
      DROP INDEX events_ts;
    `,
  },
  {
    version: 5,
    name: 'exact-totals-and-fold-quarantine',
    // Totals become exact: rollups.sum holds canonical decimal text (added with meterhook_dec_add),
    // and aggregations.events holds each total as decimal text. A rollup whose events are all still
    // stored (and applied) is recomputed exactly from them; one whose events retention deleted keeps
    // its old REAL total, rounded half away from zero to 12 decimal places, as do stored documents.
    sql: `
      CREATE TEMP TABLE exact_sums AS
        SELECT customer_id, event_type, ts - (((ts % 3600000) + 3600000) % 3600000) AS hour,
               count(*) AS n, meterhook_dec_sum(value) AS s
        FROM events WHERE seq <= (SELECT applied_seq FROM derived_state WHERE id = 1)
        GROUP BY 1, 2, 3;
      CREATE TABLE rollups_exact (
        customer_id  TEXT    NOT NULL,
        hour         INTEGER NOT NULL,
        event_type   TEXT    NOT NULL,
        count        INTEGER NOT NULL,
        sum          TEXT    NOT NULL,
        vmin         REAL    NOT NULL,
        vmax         REAL    NOT NULL,
        first_ts     INTEGER NOT NULL,
        first_seq    INTEGER NOT NULL,
        first_value  REAL    NOT NULL,
        last_ts      INTEGER NOT NULL,
        last_seq     INTEGER NOT NULL,
        last_value   REAL    NOT NULL,
        PRIMARY KEY (customer_id, hour, event_type)
      ) WITHOUT ROWID;
      INSERT INTO rollups_exact
        SELECT r.customer_id, r.hour, r.event_type, r.count,
               CASE WHEN e.n = r.count THEN e.s ELSE meterhook_dec(r.sum) END,
               r.vmin, r.vmax, r.first_ts, r.first_seq, r.first_value, r.last_ts, r.last_seq, r.last_value
        FROM rollups r
        LEFT JOIN exact_sums e ON e.customer_id = r.customer_id AND e.hour = r.hour AND e.event_type = r.event_type;
      DROP TABLE rollups;
      ALTER TABLE rollups_exact RENAME TO rollups;
      DROP TABLE exact_sums;
      UPDATE aggregations SET events =
        (SELECT json_group_object(key, meterhook_dec(value)) FROM (SELECT key, value FROM json_each(aggregations.events) ORDER BY key));
      -- Events whose fold failed for a reason other than the store being unavailable: set aside so
      -- they never block other customers, and folded again later (sqlite-derived.ts).
      CREATE TABLE derived_quarantine (
        seq         INTEGER PRIMARY KEY,
        customer_id TEXT    NOT NULL,
        error       TEXT    NOT NULL,
        attempts    INTEGER NOT NULL,
        first_at    INTEGER NOT NULL,
        last_at     INTEGER NOT NULL
      );
    `,
  },
  {
    version: 6,
    name: 'request-keys',
    // Idempotency-Key of POST /usagebatch: one row per keyed request, written in the transaction that
    // stores the request's events; kept for maxEventAge, then deleted by the scheduled maintenance run.
    sql: `
      CREATE TABLE request_keys (
        request_key TEXT    NOT NULL PRIMARY KEY,
        body_hash   TEXT    NOT NULL,
        created_at  INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX request_keys_created ON request_keys (created_at);
    `,
  },
  {
    version: 7,
    name: 'write-probe',
    // Readiness writes and deletes one row here after a write fault, to see whether writes work again
    // (sqlite-faults.ts). It is empty outside that transaction.
    sql: `
      CREATE TABLE write_probe (
        id  INTEGER PRIMARY KEY,
        pad BLOB NOT NULL
      );
    `,
  },
  {
    version: 8,
    name: 'dimensions',
    // Meters with groupBy keep one hour state per group beside the hour's total (group_rollups; grp is the
    // group key of dimensions.ts, '*' the overflow group). Meters with op "unique" keep each distinct value
    // once per period it appears in (unique_values; grp '' is the type's whole set). Aggregation documents
    // of such meters carry their groups as JSON; derived_state keeps the rules of the latest append, so a
    // replay after a crash derives the same groups.
    sql: `
      CREATE TABLE group_rollups (
        customer_id  TEXT    NOT NULL,
        hour         INTEGER NOT NULL,
        event_type   TEXT    NOT NULL,
        grp          TEXT    NOT NULL,
        count        INTEGER NOT NULL,
        sum          TEXT    NOT NULL,
        vmin         REAL    NOT NULL,
        vmax         REAL    NOT NULL,
        first_ts     INTEGER NOT NULL,
        first_seq    INTEGER NOT NULL,
        first_value  REAL    NOT NULL,
        last_ts      INTEGER NOT NULL,
        last_seq     INTEGER NOT NULL,
        last_value   REAL    NOT NULL,
        PRIMARY KEY (customer_id, hour, event_type, grp)
      ) WITHOUT ROWID;
      CREATE TABLE unique_values (
        customer_id  TEXT    NOT NULL,
        event_type   TEXT    NOT NULL,
        period       TEXT    NOT NULL,
        period_start INTEGER NOT NULL,
        grp          TEXT    NOT NULL,
        token        TEXT    NOT NULL,
        PRIMARY KEY (customer_id, period, period_start, event_type, grp, token)
      ) WITHOUT ROWID;
      ALTER TABLE aggregations ADD COLUMN groups TEXT;
      ALTER TABLE derived_state ADD COLUMN dimensions TEXT NOT NULL DEFAULT '{"types":{},"maxGroupsPerHour":1000}';
    `,
  },
  {
    version: 9,
    name: 'api-key-scopes',
    // What a key may do (comma-separated, canonical order). Keys stored before could do everything,
    // so they become admin keys.
    sql: `
      ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'admin';
    `,
  },
  {
    version: 10,
    name: 'customer-keys-and-key-rate-limits',
    // A key may be confined to one customer, expire, and carry its own token bucket; key_version is bumped
    // by every key insert and revocation so a verifier notices a change without reading every key.
    sql: `
      ALTER TABLE api_keys ADD COLUMN customer_id TEXT;
      ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
      ALTER TABLE api_keys ADD COLUMN rate_rps REAL;
      ALTER TABLE api_keys ADD COLUMN rate_burst INTEGER;
      CREATE TABLE key_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
      INSERT INTO key_version (id, version) VALUES (1, 0);
    `,
  },
  {
    version: 11,
    name: 'audit-log',
    // Admin actions, append-only: a record is never changed (the trigger refuses), only deleted past retention.
    sql: `
      CREATE TABLE audit_log (
        id          TEXT    PRIMARY KEY,
        action      TEXT    NOT NULL,
        key_id      TEXT    NOT NULL,
        at          INTEGER NOT NULL,
        method      TEXT    NOT NULL,
        route       TEXT    NOT NULL,
        target      TEXT    NOT NULL,
        status      INTEGER NOT NULL,
        error_code  TEXT,
        request_id  TEXT    NOT NULL
      );
      CREATE INDEX audit_log_at ON audit_log (at, id);
      CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    `,
  },
  {
    version: 12,
    name: 'sole-groups',
    // An hour whose events are all in one group keeps that group in its total's row (sole_grp) instead of a
    // group_rollups row of the same state: most hours of a busy store hold one event per customer and type,
    // so a grouped event costs one B-tree write, not two. When the hour gets a second group (or an event of
    // no group), the upsert sets sole_grp to null and this trigger writes the group's row from the total as
    // it was, in the same statement. Rows stored before keep null: their groups are in group_rollups.
    sql: `
      ALTER TABLE rollups ADD COLUMN sole_grp TEXT;
      CREATE TRIGGER rollups_sole_group_split AFTER UPDATE OF sole_grp ON rollups
        WHEN old.sole_grp IS NOT NULL AND new.sole_grp IS NULL
        BEGIN
          INSERT INTO group_rollups (customer_id, hour, event_type, grp, count, sum, vmin, vmax,
                                     first_ts, first_seq, first_value, last_ts, last_seq, last_value)
          VALUES (old.customer_id, old.hour, old.event_type, old.sole_grp, old.count, old.sum, old.vmin, old.vmax,
                  old.first_ts, old.first_seq, old.first_value, old.last_ts, old.last_seq, old.last_value);
        END;
    `,
  },
  {
    version: 13,
    name: 'group-merges',
    // The running merge of an open period's groups (group-merge-plan.ts): each group's state over the hours
    // [period_start, through), and each type's total over them (so its event count) when it was built. A read
    // uses it only while the counts still match the hour totals, so it is a cache that no late event can
    // make wrong. A later migration that rewrites hour states without changing their counts must empty it.
    sql: `
      CREATE TABLE group_merges (
        customer_id  TEXT    NOT NULL,
        period       TEXT    NOT NULL,
        period_start INTEGER NOT NULL,
        event_type   TEXT    NOT NULL,
        grp          TEXT    NOT NULL,
        count        INTEGER NOT NULL,
        sum          TEXT    NOT NULL,
        vmin         REAL    NOT NULL,
        vmax         REAL    NOT NULL,
        first_ts     INTEGER NOT NULL,
        first_seq    INTEGER NOT NULL,
        first_value  REAL    NOT NULL,
        last_ts      INTEGER NOT NULL,
        last_seq     INTEGER NOT NULL,
        last_value   REAL    NOT NULL,
        PRIMARY KEY (customer_id, period, period_start, event_type, grp)
      ) WITHOUT ROWID;
      CREATE TABLE group_merge_heads (
        customer_id  TEXT    NOT NULL,
        period       TEXT    NOT NULL,
        period_start INTEGER NOT NULL,
        through      INTEGER NOT NULL,
        totals       TEXT    NOT NULL,
        PRIMARY KEY (customer_id, period, period_start)
      ) WITHOUT ROWID;
    `,
  },
];

export function migrate(db: Database.Database): void {
  // Version 4 derives idempotency hashes of events stored by earlier versions; version 5 and every
  // rollup upsert add decimal text.
  registerDecimalFunctions(db);
  db.function('meterhook_event_hash', { deterministic: true }, (c, t, id) => eventKeyHash(String(c), String(t), String(id)));
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as Array<{ version: number }>).map((r) => r.version));
  const apply = db.transaction((m: (typeof MIGRATIONS)[number]) => {
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
  });
  const newest = Math.max(0, ...applied);
  const known = Math.max(...MIGRATIONS.map((m) => m.version));
  // An older meterhook would run on a newer schema without knowing its rules (e.g. where events are
  // deduplicated), silently corrupting it: refuse instead.
  if (newest > known) {
    throw new Error(`this data file has schema version ${newest}, written by a newer meterhook; this version knows up to ${known}`);
  }
  for (const m of MIGRATIONS) if (!applied.has(m.version)) apply.immediate(m);
}
