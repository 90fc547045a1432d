// Owns the PostgreSQL side of webhook delivery: endpoint health, leased claims with FOR UPDATE SKIP
// LOCKED, attempt records and requeues. Must never hand one delivery to two live leases.

import type pg from 'pg';
import type {
  AttemptOutcome,
  AttemptRecord,
  ClaimedDelivery,
  DeliveryRecord,
  DeliveryStatus,
  EndpointState,
  NewDelivery,
  OutboxMessage,
} from '../../domain/deliveries.js';
import type { ClaimOptions, DeliveryQuery } from '../store.js';
import { DELIVERY_STATUSES, goneReason, isSuccessStatus } from '../../domain/deliveries.js';
import { roomPerEndpoint } from '../claim-room.js';
import { attemptParams, toAttempt, toDelivery, toEndpoint, toMessage, type DeliveryRow, type MessageRow } from '../rows.js';
import { deliveryListSql, POSTGRES_STYLE } from '../sql-where.js';

type Q = Pick<pg.PoolClient, 'query'>;
type Row = Record<string, unknown>;

const CLAIMED_SQL = `SELECT d.*, m.id AS m_id, m.aggregation_id AS m_aggregation_id, m.revision AS m_revision, m.type AS m_type,
    m.customer_id AS m_customer_id, m.period AS m_period, m.created_at AS m_created_at, m.body AS m_body
  FROM deliveries d JOIN messages m ON m.id = d.message_id`;

/** A delivery row of CLAIMED_SQL, with its message's columns prefixed `m_`. */
type ClaimedRow = DeliveryRow & { [K in keyof MessageRow as `m_${K}`]: MessageRow[K] };

function claimed(r: ClaimedRow, previousStatus: DeliveryStatus): ClaimedDelivery {
  const message = toMessage({
    id: r.m_id,
    aggregation_id: r.m_aggregation_id,
    revision: r.m_revision,
    type: r.m_type,
    customer_id: r.m_customer_id,
    period: r.m_period,
    created_at: r.m_created_at,
    body: r.m_body,
  });
  return { ...toDelivery(r), message, previousStatus };
}

export async function insertDeliveriesPg(q: Q, message: OutboxMessage, deliveries: NewDelivery[]): Promise<void> {
  if (deliveries.length === 0) return;
  await q.query(
    `INSERT INTO deliveries (id, message_id, endpoint_id, aggregation_id, status, attempts, next_attempt_at,
        created_at, updated_at, deadline_at)
     SELECT d.id, $2, d.endpoint_id, $3,
            CASE WHEN e.disabled_at IS NOT NULL THEN 'held' ELSE 'pending' END, 0, $4, $4, $4, d.deadline_at
     FROM unnest($1::text[], $5::text[], $6::bigint[]) AS d(id, endpoint_id, deadline_at)
     LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id
     ON CONFLICT DO NOTHING`,
    [
      deliveries.map((d) => d.id),
      message.id,
      message.aggregationId,
      message.createdAt,
      deliveries.map((d) => d.endpointId),
      deliveries.map((d) => d.deadlineAt),
    ],
  );
}

export function pgDeliveries(pool: pg.Pool, tx: <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>) {
  return {
    /** One transaction, as on SQLite: the endpoints and the deliveries they hold change together or not at all. */
    syncEndpoints: (endpoints: Array<{ id: string; url: string }>) =>
      tx(async (c): Promise<void> => {
        if (endpoints.length > 0) {
          await c.query(
            `INSERT INTO webhook_endpoints (id, url) SELECT * FROM unnest($1::text[], $2::text[])
             ON CONFLICT (id) DO UPDATE SET url = excluded.url`,
            [endpoints.map((e) => e.id), endpoints.map((e) => e.url)],
          );
        }
        await c.query(
          `UPDATE deliveries SET status = 'held', updated_at = $1
           WHERE status IN ('pending', 'retry_scheduled') AND NOT (endpoint_id = ANY($2::text[]))`,
          [Date.now(), endpoints.map((e) => e.id)],
        );
      }),

    async listEndpoints(): Promise<EndpointState[]> {
      return (await pool.query('SELECT * FROM webhook_endpoints ORDER BY id')).rows.map(toEndpoint);
    },

    enableEndpoint: (id: string, now: number) =>
      tx(async (c) => {
        await c.query('UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL WHERE id = $1', [id]);
        const r = await c.query(
          `UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1 WHERE endpoint_id = $2 AND status = 'held'`,
          [now, id],
        );
        return r.rowCount ?? 0;
      }),

    claimDeliveries: (o: ClaimOptions) =>
      tx(async (c): Promise<ClaimedDelivery[]> => {
        // SKIP LOCKED: concurrent workers in any process take disjoint rows and never wait on each
        // other. Expired leases first, then each endpoint on its own index range, up to its room.
        const room = roomPerEndpoint(o);
        const chosen: Array<{ id: string; previous: DeliveryStatus }> = [];
        const take = (rows: Array<Record<string, unknown>>) => {
          for (const r of rows) {
            if (chosen.length >= o.limit) break;
            if (room.take(r.endpoint_id as string)) chosen.push({ id: r.id as string, previous: r.status as DeliveryStatus });
          }
        };
        take(
          (
            await c.query(
              `SELECT id, endpoint_id, status FROM deliveries WHERE status = 'sending' AND lease_until <= $1
           LIMIT $2 FOR UPDATE SKIP LOCKED`,
              [o.now, o.limit],
            )
          ).rows,
        );
        for (const endpointId of o.endpoints) {
          const want = Math.min(o.limit - chosen.length, room.left(endpointId));
          if (want <= 0) continue;
          take(
            (
              await c.query(
                `SELECT id, endpoint_id, status FROM deliveries
             WHERE endpoint_id = $1 AND status IN ('pending', 'retry_scheduled') AND next_attempt_at <= $2
             ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
                [endpointId, o.now, want],
              )
            ).rows,
          );
        }
        if (chosen.length === 0) return [];
        await c.query(
          `UPDATE deliveries SET status = 'sending', lease_owner = $2, lease_until = $3, updated_at = $4 WHERE id = ANY($1::text[])`,
          [chosen.map((x) => x.id), o.owner, o.now + o.leaseMs, o.now],
        );
        const rows = (await c.query(`${CLAIMED_SQL} WHERE d.id = ANY($1::text[]) ORDER BY d.next_attempt_at`, [chosen.map((x) => x.id)]))
          .rows;
        const previous = new Map(chosen.map((x) => [x.id, x.previous]));
        return rows.map((row) => claimed(row, previous.get(row.id as string)!));
      }),

    claimDelivery: (id: string, o: { now: number; leaseMs: number; owner: string }) =>
      tx(async (c): Promise<ClaimedDelivery | undefined> => {
        const cur = (await c.query('SELECT status, lease_until FROM deliveries WHERE id = $1 FOR UPDATE', [id])).rows[0] as Row | undefined;
        if (!cur) return undefined;
        if (cur.status === 'sending' && Number(cur.lease_until ?? 0) > o.now) return undefined;
        await c.query(`UPDATE deliveries SET status = 'sending', lease_owner = $2, lease_until = $3, updated_at = $4 WHERE id = $1`, [
          id,
          o.owner,
          o.now + o.leaseMs,
          o.now,
        ]);
        const row = (await c.query(`${CLAIMED_SQL} WHERE d.id = $1`, [id])).rows[0] as ClaimedRow;
        return claimed(row, cur.status as DeliveryStatus);
      }),

    recordAttempt: (a: AttemptRecord, owner: string, outcome: AttemptOutcome, now: number) =>
      tx(async (c): Promise<boolean> => {
        const r = await c.query(
          `UPDATE deliveries SET status = $1, attempts = greatest(attempts, $2), next_attempt_at = $3, lease_owner = NULL,
              lease_until = NULL, updated_at = $4, last_status_code = $5, last_error = $6,
              delivered_at = coalesce($7, delivered_at), dry_run = $8
           WHERE id = $9 AND lease_owner = $10 AND status = 'sending' RETURNING endpoint_id`,
          [
            outcome.status,
            a.attempt,
            outcome.nextAttemptAt,
            now,
            a.statusCode,
            isSuccessStatus(a.statusCode) ? null : a.error,
            outcome.deliveredAt,
            a.dryRun,
            a.deliveryId,
            owner,
          ],
        );
        const endpointId = r.rows[0]?.endpoint_id as string | undefined;
        // The lease check comes first: a worker that lost its lease must leave no trace in the log.
        if (!endpointId) return false;
        await c.query(
          `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error_class, error,
              response_body, webhook_timestamp, dry_run, manual) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
          attemptParams(a, POSTGRES_STYLE),
        );
        if (outcome.endpoint === 'success') {
          await c.query('UPDATE webhook_endpoints SET last_success_at = $1, failure_streak = 0 WHERE id = $2', [now, endpointId]);
        } else if (outcome.endpoint === 'failure') {
          await c.query('UPDATE webhook_endpoints SET last_failure_at = $1, failure_streak = failure_streak + 1 WHERE id = $2', [
            now,
            endpointId,
          ]);
        } else {
          await c.query(
            `UPDATE webhook_endpoints SET disabled_at = $1, disabled_reason = $2, last_failure_at = $1, failure_streak = failure_streak + 1
             WHERE id = $3`,
            [now, goneReason(now), endpointId],
          );
          await c.query(
            `UPDATE deliveries SET status = 'held', updated_at = $1 WHERE endpoint_id = $2 AND status IN ('pending', 'retry_scheduled')`,
            [now, endpointId],
          );
        }
        return true;
      }),

    async releaseDelivery(id: string, owner: string): Promise<void> {
      await pool.query(
        `UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retry_scheduled' END,
           lease_owner = NULL, lease_until = NULL
         WHERE id = $1 AND lease_owner = $2 AND status = 'sending'`,
        [id, owner],
      );
    },

    async listDeliveries(q: DeliveryQuery): Promise<DeliveryRecord[]> {
      const w = deliveryListSql(q, POSTGRES_STYLE);
      return (await pool.query(`SELECT * FROM deliveries ${w.sql}`, w.params)).rows.map(toDelivery);
    },

    async getDelivery(id: string) {
      const row = (await pool.query('SELECT * FROM deliveries WHERE id = $1', [id])).rows[0] as DeliveryRow | undefined;
      if (!row) return undefined;
      const attempts = (await pool.query('SELECT * FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt, id', [id])).rows.map(
        toAttempt,
      );
      const m = (await pool.query('SELECT * FROM messages WHERE id = $1', [row.message_id])).rows[0] as MessageRow;
      return { delivery: toDelivery(row), attempts, message: toMessage(m) };
    },

    async latestDeliveries(aggregationIds: string[]): Promise<Map<string, DeliveryRecord[]>> {
      const out = new Map<string, DeliveryRecord[]>();
      if (aggregationIds.length === 0) return out;
      const r = await pool.query(
        `SELECT d.* FROM deliveries d JOIN (
           SELECT DISTINCT ON (aggregation_id) id FROM messages WHERE aggregation_id = ANY($1::text[])
           ORDER BY aggregation_id, revision DESC) latest ON latest.id = d.message_id
         ORDER BY d.endpoint_id`,
        [aggregationIds],
      );
      for (const row of r.rows) {
        const d = toDelivery(row);
        const list = out.get(d.aggregationId) ?? [];
        list.push(d);
        out.set(d.aggregationId, list);
      }
      return out;
    },

    requeueDeliveries: (since: number, now: number, deadlineMs: number) =>
      tx(async (c) => {
        await c.query(
          `UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL
           WHERE id IN (SELECT DISTINCT endpoint_id FROM deliveries WHERE status = 'held' AND created_at >= $1)`,
          [since],
        );
        const r = await c.query(
          `UPDATE deliveries SET status = 'pending', next_attempt_at = $1, deadline_at = $2, updated_at = $1
           WHERE status IN ('failed', 'held') AND created_at >= $3`,
          [now, now + deadlineMs, since],
        );
        return r.rowCount ?? 0;
      }),

    async deliveryCounts(): Promise<Record<DeliveryStatus, number>> {
      const out = Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, 0])) as Record<DeliveryStatus, number>;
      for (const r of (await pool.query('SELECT status, count(*) AS n FROM deliveries GROUP BY status')).rows) {
        out[r.status as DeliveryStatus] = Number(r.n);
      }
      return out;
    },
  };
}
