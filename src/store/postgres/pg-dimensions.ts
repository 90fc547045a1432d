// Owns PostgreSQL's tables of dimensions: the writes of a fold's dimensions, in the ingest transaction after the
// hour totals (group states under the per-hour group bound, unique values per period), and their set-based reads.
// Must never run before the totals' upsert: its row locks are what order concurrent writers of one hour, so
// the group counts read here include every group committed by another writer of that hour.

import type pg from 'pg';
import { stateArrays } from './pg-upserts.js';
import type { HourFold } from '../../domain/fold.js';
import { hourKey, hoursNearBound, hoursToCount, planGroups, planUniques, type StoredGroups } from '../group-plan.js';
import type { Period } from '../../domain/periods.js';
import type { GroupState, UniqueCount } from '../../domain/records.js';
import { GROUP_ROLLUPS, POSTGRES_MERGE, rollupUpsertSql, UNIQUE_COLUMNS, STATE_COLUMNS } from '../rollup-upsert.js';
import { toGroupState, toUniqueCount, type UniqueCountRow } from '../rows.js';

const HOURS = 'SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])';

/** Writes the fold's groups and unique values; returns how many new groups went to the overflow group. */
export async function writeDimensionsPg(
  client: pg.PoolClient,
  fold: HourFold,
  maxGroupsPerHour: number,
  /** Each grouped hour's event count after this transaction's upsert of the hour totals. */
  totals: ReadonlyMap<string, number>,
  /** The hours (hourKey) whose total keeps their one group (sole_grp): none of their groups is written here. */
  soleKept: ReadonlySet<string> = new Set(),
): Promise<number> {
  const all = fold.groupHours();
  const hours = soleKept.size === 0 ? all : all.filter((h) => !soleKept.has(hourKey(h.customerId, h.eventType, h.hour)));
  const uniques = fold.uniqueHours();
  if (hours.length === 0 && uniques.length === 0) return 0;
  const stored = new Map<string, StoredGroups>();
  let overflowed = 0;
  let resolve: Parameters<typeof planUniques>[1] = (_c, _t, _h, g) => g;
  if (hours.length > 0) {
    const keyArrays = (hs: typeof hours) => [hs.map((h) => h.customerId), hs.map((h) => h.hour), hs.map((h) => h.eventType)];
    const counts = new Map<string, number>();
    const toCount = hoursToCount(hours, totals, maxGroupsPerHour);
    if (toCount.length > 0) {
      const counted = await client.query(
        `SELECT g.customer_id, g.hour, g.event_type, count(*) AS n FROM group_rollups g
         WHERE (g.customer_id, g.hour, g.event_type) IN (${HOURS}) AND g.grp <> '*' GROUP BY 1, 2, 3`,
        keyArrays(toCount),
      );
      for (const r of counted.rows) counts.set(hourKey(r.customer_id, r.event_type, Number(r.hour)), Number(r.n));
    }
    for (const h of hours) {
      const k = hourKey(h.customerId, h.eventType, h.hour);
      stored.set(k, { count: counts.get(k) ?? 0 });
    }
    const near = hoursNearBound(hours, counts, maxGroupsPerHour);
    if (near.length > 0) {
      const known = await client.query(
        `SELECT g.customer_id, g.hour, g.event_type, g.grp FROM group_rollups g
         WHERE (g.customer_id, g.hour, g.event_type) IN (${HOURS}) AND g.grp <> '*'`,
        keyArrays(near),
      );
      const sets = new Map<string, Set<string>>();
      for (const r of known.rows) {
        const k = hourKey(r.customer_id, r.event_type, Number(r.hour));
        let set = sets.get(k);
        if (!set) sets.set(k, (set = new Set()));
        set.add(r.grp as string);
      }
      for (const h of near) {
        const k = hourKey(h.customerId, h.eventType, h.hour);
        stored.set(k, { count: stored.get(k)!.count, known: sets.get(k) ?? new Set() });
      }
    }
    const plan = planGroups(hours, stored, maxGroupsPerHour);
    overflowed = plan.overflowed;
    resolve = plan.resolve;
    const r = plan.rows;
    await client.query(
      rollupUpsertSql(
        `SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::numeric[], $7::float8[],
          $8::float8[], $9::bigint[], $10::bigint[], $11::float8[], $12::bigint[], $13::bigint[], $14::float8[])`,
        POSTGRES_MERGE,
        GROUP_ROLLUPS,
      ),
      [
        r.map((x) => x.customerId),
        r.map((x) => x.hour),
        r.map((x) => x.eventType),
        r.map((x) => x.group),
        ...stateArrays(r.map((x) => x.state)),
      ],
    );
  }
  const u = planUniques(uniques, resolve);
  if (u.length > 0) {
    await client.query(
      `INSERT INTO unique_values (${UNIQUE_COLUMNS})
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING`,
      [
        u.map((x) => x.customerId),
        u.map((x) => x.period),
        u.map((x) => x.periodStart),
        u.map((x) => x.eventType),
        u.map((x) => x.group),
        u.map((x) => x.token),
      ],
    );
  }
  return overflowed;
}

/** What the reads need of pg: a pool or a transaction's client. */
interface Queryable {
  query(sql: string, params: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
}

/**
 * The groups of each range, merged per (type, group), from group_rollups and from the hours that keep their one
 * group in their total's row (sole_grp): `ranges[i]` is [customer, from, to); rows come back
 * tagged with the range's 1-based index `i`. First and last are the earliest and the latest (time, seq).
 */
const MERGED_GROUPS = `
  WITH m AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS m(c, s, e, i)),
  r AS (SELECT m.i, g.event_type, g.grp, ${STATE_COLUMNS}
        FROM m JOIN group_rollups g ON g.customer_id = m.c AND g.hour >= m.s AND g.hour < m.e
        UNION ALL
        SELECT m.i, t.event_type, t.sole_grp, ${STATE_COLUMNS}
        FROM m JOIN rollups t ON t.customer_id = m.c AND t.hour >= m.s AND t.hour < m.e
        WHERE t.sole_grp IS NOT NULL),
  a AS (SELECT i, event_type, grp, sum(count) AS count, sum(sum) AS sum, min(vmin) AS vmin, max(vmax) AS vmax FROM r GROUP BY 1, 2, 3),
  f AS (SELECT DISTINCT ON (i, event_type, grp) i, event_type, grp, first_ts, first_seq, first_value FROM r
        ORDER BY i, event_type, grp, first_ts, first_seq),
  l AS (SELECT DISTINCT ON (i, event_type, grp) i, event_type, grp, last_ts, last_seq, last_value FROM r
        ORDER BY i, event_type, grp, last_ts DESC, last_seq DESC)
  SELECT a.*, f.first_ts, f.first_seq, f.first_value, l.last_ts, l.last_seq, l.last_value
  FROM a JOIN f USING (i, event_type, grp) JOIN l USING (i, event_type, grp)`;

export async function mergedGroupsPg(
  db: Queryable,
  ranges: ReadonlyArray<{ customerId: string; from: number; to: number }>,
): Promise<GroupState[][]> {
  const out: GroupState[][] = ranges.map(() => []);
  if (ranges.length === 0) return out;
  const r = await db.query(MERGED_GROUPS, [ranges.map((x) => x.customerId), ranges.map((x) => x.from), ranges.map((x) => x.to)]);
  for (const row of r.rows) out[Number(row.i) - 1]!.push(toGroupState(row as Parameters<typeof toGroupState>[0]));
  return out;
}

/** Distinct values per unique meter and group in each period `keys[i]` = (customer, period, start). */
export async function uniqueCountsPg(
  db: Queryable,
  keys: ReadonlyArray<{ customerId: string; period: Period; periodStart: number }>,
): Promise<UniqueCount[][]> {
  const out: UniqueCount[][] = keys.map(() => []);
  if (keys.length === 0) return out;
  const r = await db.query(
    `SELECT m.i, u.event_type, u.grp, count(*) AS n
     FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS m(c, p, s, i)
     JOIN unique_values u ON u.customer_id = m.c AND u.period = m.p AND u.period_start = m.s
     GROUP BY 1, 2, 3`,
    [keys.map((k) => k.customerId), keys.map((k) => k.period), keys.map((k) => k.periodStart)],
  );
  for (const row of r.rows) out[Number(row.i) - 1]!.push(toUniqueCount(row as unknown as UniqueCountRow));
  return out;
}

export async function readGroupsPg(db: Queryable, customerId: string, eventType: string, from: number, to: number) {
  const r = await db.query(
    `SELECT customer_id, hour, event_type, grp, ${STATE_COLUMNS} FROM group_rollups
     WHERE customer_id = $1 AND hour >= $2 AND hour < $3 AND event_type = $4
     UNION ALL
     SELECT customer_id, hour, event_type, sole_grp, ${STATE_COLUMNS} FROM rollups
     WHERE customer_id = $1 AND hour >= $2 AND hour < $3 AND event_type = $4 AND sole_grp IS NOT NULL`,
    [customerId, from, to, eventType],
  );
  return r.rows.map((row) => toGroupState(row as Parameters<typeof toGroupState>[0]));
}

export async function uniqueCountsOverPg(db: Queryable, customerId: string, eventType: string, period: Period, from: number, to: number) {
  const r = await db.query(
    `SELECT period_start, event_type, grp, count(*) AS n FROM unique_values
     WHERE customer_id = $1 AND period = $2 AND period_start >= $3 AND period_start < $4 AND event_type = $5 GROUP BY 1, 2, 3`,
    [customerId, period, from, to, eventType],
  );
  return r.rows.map((row) => toUniqueCount(row as unknown as UniqueCountRow));
}
