// Owns PostgreSQL's running merges of open periods' groups (group_merges, group_merge_heads): the read of a
// period's totals and groups that uses a merge while it is current, and the advance that extends or rebuilds one.
// Must never run outside a REPEATABLE READ transaction: the counts that prove a merge current and the rows it
// merges must come from one snapshot. Two processes advancing the same merge conflict (40001) and one retries.

import type pg from 'pg';
import type { Period } from '../../domain/periods.js';
import type { GroupState, RollupRow } from '../../domain/records.js';
import {
  advanceTarget,
  combineGroups,
  combineTotals,
  coveredIsCurrent,
  headTotals,
  mergeIsCurrent,
  parseHead,
  type AdvanceOutcome,
  type MergeCustomer,
  type MergeUse,
  type PeriodMerge,
} from '../group-merge-plan.js';
import { GROUP_MERGES, POSTGRES_MERGE, rollupUpsertSql, STATE_COLUMNS } from '../rollup-upsert.js';
import { toGroupState, toRollup } from '../rows.js';
import { mergedGroupsPg } from './pg-dimensions.js';
import { stateArrays } from './pg-upserts.js';

export const REPEATABLE_READ = 'BEGIN ISOLATION LEVEL REPEATABLE READ';
export const REPEATABLE_READ_ONLY = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';

/** One customer's hour totals over [$2, $3) merged per type (`hour` = $2): first and last by (time, seq). */
export const MERGED_ROLLUPS_PG = `
  WITH r AS (SELECT * FROM rollups WHERE customer_id = $1 AND hour >= $2::bigint AND hour < $3),
  a AS (SELECT event_type, sum(count) AS count, sum(sum) AS sum, min(vmin) AS vmin, max(vmax) AS vmax FROM r GROUP BY event_type),
  f AS (SELECT event_type, first_ts, first_seq, first_value,
               row_number() OVER (PARTITION BY event_type ORDER BY first_ts, first_seq) AS n FROM r),
  l AS (SELECT event_type, last_ts, last_seq, last_value,
               row_number() OVER (PARTITION BY event_type ORDER BY last_ts DESC, last_seq DESC) AS n FROM r)
  SELECT a.event_type, $2::bigint AS hour, a.count, a.sum, a.vmin, a.vmax, f.first_ts, f.first_seq, f.first_value,
         l.last_ts, l.last_seq, l.last_value
  FROM a JOIN f ON f.event_type = a.event_type AND f.n = 1 JOIN l ON l.event_type = a.event_type AND l.n = 1`;

const KEY = 'customer_id = $1 AND period = $2 AND period_start = $3';
const UPSERT = rollupUpsertSql(
  `SELECT $1::text, $2::text, $3::bigint, * FROM unnest($4::text[], $5::text[], $6::bigint[], $7::numeric[],
     $8::float8[], $9::float8[], $10::bigint[], $11::bigint[], $12::float8[], $13::bigint[], $14::bigint[], $15::float8[])`,
  POSTGRES_MERGE,
  GROUP_MERGES,
);

const totals = async (c: pg.PoolClient, customerId: string, from: number, to: number): Promise<RollupRow[]> =>
  (await c.query(MERGED_ROLLUPS_PG, [customerId, from, to])).rows.map(toRollup);
const groups = async (c: pg.PoolClient, customerId: string, from: number, to: number): Promise<GroupState[]> =>
  (await mergedGroupsPg(c, [{ customerId, from, to }]))[0]!;
const headOf = async (c: pg.PoolClient, customerId: string, period: Period, start: number) => {
  const r = await c.query(`SELECT through, totals FROM group_merge_heads WHERE ${KEY}`, [customerId, period, start]);
  return r.rows[0] ? parseHead(r.rows[0] as { through: unknown; totals: unknown }) : undefined;
};

/** Read inside a REPEATABLE READ transaction (the caller's). */
export async function readPeriodPg(c: pg.PoolClient, customerId: string, period: Period, from: number, to: number): Promise<PeriodMerge> {
  const h = await headOf(c, customerId, period, from);
  const full = async (merge: MergeUse): Promise<PeriodMerge> => ({
    rollups: await totals(c, customerId, from, to),
    groups: await groups(c, customerId, from, to),
    merge,
  });
  if (!h || h.through > to) return full('none');
  const covered = await c.query(
    'SELECT coalesce(sum(count), 0)::bigint AS n FROM rollups WHERE customer_id = $1 AND hour >= $2 AND hour < $3',
    [customerId, from, h.through],
  );
  if (!coveredIsCurrent(h, Number(covered.rows[0].n))) return full('stale');
  const cached = await c.query(`SELECT event_type, grp, ${STATE_COLUMNS} FROM group_merges WHERE ${KEY}`, [customerId, period, from]);
  // The hours after the merge, row by row: each total with its sole group (null when the hour has none), and the group rows.
  const recent = (
    await c.query(`SELECT event_type, sole_grp AS grp, ${STATE_COLUMNS} FROM rollups WHERE customer_id = $1 AND hour >= $2 AND hour < $3`, [
      customerId,
      h.through,
      to,
    ])
  ).rows.map((r) => toGroupState(r as Parameters<typeof toGroupState>[0]));
  const live = recent.filter((g) => g.group !== null);
  const rows = await c.query(
    `SELECT event_type, grp, ${STATE_COLUMNS} FROM group_rollups WHERE customer_id = $1 AND hour >= $2 AND hour < $3`,
    [customerId, h.through, to],
  );
  for (const r of rows.rows) live.push(toGroupState(r as Parameters<typeof toGroupState>[0]));
  return {
    rollups: combineTotals(h, recent, from),
    groups: combineGroups(
      cached.rows.map((r) => toGroupState(r as Parameters<typeof toGroupState>[0])),
      live,
    ),
    merge: 'current',
  };
}

/**
 * Advances each customer's merge, one REPEATABLE READ transaction each (`tx` runs one and retries it on a
 * serialization failure), so a conflict with another process's advance retries only that customer.
 */
export async function advanceMergesPg(
  tx: <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>,
  period: Period,
  start: number,
  through: number,
  customers: readonly MergeCustomer[],
): Promise<{ advanced: number; rebuilt: number }> {
  const out = { advanced: 0, rebuilt: 0 };
  // Most ticks find most merges at the hour already: one query skips them, not a transaction each.
  const current = await tx(async (c) => {
    const r = await c.query(
      `SELECT customer_id FROM group_merge_heads
       WHERE period = $1 AND period_start = $2 AND through >= $3 AND customer_id = ANY($4::text[])`,
      [period, start, through, customers.filter((x) => !x.recheck).map((x) => x.customerId)],
    );
    return new Set(r.rows.map((row) => row.customer_id as string));
  });
  for (const { customerId, recheck } of customers) {
    if (current.has(customerId)) continue;
    const r = await tx((c) => advanceOnePg(c, customerId, period, start, through, recheck));
    if (r !== 'current') out[r]++;
  }
  return out;
}

async function advanceOnePg(
  c: pg.PoolClient,
  customerId: string,
  period: Period,
  start: number,
  through: number,
  recheck: boolean,
): Promise<AdvanceOutcome> {
  const h = await headOf(c, customerId, period, start);
  const target = advanceTarget(h, start, through, recheck);
  if (target === undefined) return 'current';
  const whole = await totals(c, customerId, start, target);
  const put = async (gs: GroupState[]) => {
    if (gs.length === 0) return;
    await c.query(UPSERT, [customerId, period, start, gs.map((g) => g.eventType), gs.map((g) => g.group), ...stateArrays(gs)]);
  };
  let outcome: AdvanceOutcome;
  if (h && mergeIsCurrent(h, whole, h.through < target ? await totals(c, customerId, h.through, target) : [])) {
    if (h.through === target) return 'current';
    await put(await groups(c, customerId, h.through, target));
    outcome = 'advanced';
  } else {
    await c.query(`DELETE FROM group_merges WHERE ${KEY}`, [customerId, period, start]);
    await put(await groups(c, customerId, start, target));
    outcome = 'rebuilt';
  }
  await c.query(
    `INSERT INTO group_merge_heads (customer_id, period, period_start, through, totals) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (customer_id, period, period_start) DO UPDATE SET through = excluded.through, totals = excluded.totals`,
    [customerId, period, start, target, headTotals(whole)],
  );
  return outcome;
}

/** Drops the merges of periods of kind `period` that started before `beforeStart`; returns how many. */
export async function dropMergesPg(c: pg.PoolClient, period: Period, beforeStart: number): Promise<number> {
  const heads = await c.query('DELETE FROM group_merge_heads WHERE period = $1 AND period_start < $2 RETURNING customer_id, period_start', [
    period,
    beforeStart,
  ]);
  if (heads.rows.length > 0) {
    await c.query(
      `DELETE FROM group_merges g USING unnest($2::text[], $3::bigint[]) AS d(c, s)
       WHERE g.customer_id = d.c AND g.period = $1 AND g.period_start = d.s`,
      [period, heads.rows.map((r) => r.customer_id), heads.rows.map((r) => r.period_start)],
    );
  }
  return heads.rows.length;
}
