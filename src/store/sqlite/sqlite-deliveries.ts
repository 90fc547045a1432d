// Owns the SQLite side of webhook delivery: endpoint health, leased claims, attempt records and
// requeues. Must never hand one delivery to two live leases, or change a delivery whose lease was lost.

import type Database from 'better-sqlite3';
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
import {
  attemptParams,
  toAttempt,
  toDelivery,
  toEndpoint,
  toMessage,
  type AttemptRow,
  type DeliveryRow,
  type EndpointRow,
  type MessageRow,
} from '../rows.js';
import { deliveryListSql, SQLITE_STYLE } from '../sql-where.js';

export function createDeliveryStore(db: Database.Database) {
  const s = {
    endpointDisabled: db.prepare('SELECT disabled_at FROM webhook_endpoints WHERE id = ?'),
    insertDelivery: db.prepare(
      `INSERT INTO deliveries (id, message_id, endpoint_id, aggregation_id, status, attempts, next_attempt_at,
          created_at, updated_at, deadline_at)
       VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    upsertEndpoint: db.prepare('INSERT INTO webhook_endpoints (id, url) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET url = excluded.url'),
    listEndpoints: db.prepare('SELECT * FROM webhook_endpoints ORDER BY id'),
    enableEndpoint: db.prepare('UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL WHERE id = ?'),
    releaseHeld: db.prepare(
      `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?
       WHERE endpoint_id = ? AND status = 'held'`,
    ),
    dueForEndpoint: db.prepare(
      `SELECT id, endpoint_id, status FROM deliveries
       WHERE endpoint_id = ? AND status IN ('pending', 'retry_scheduled') AND next_attempt_at <= ?
       ORDER BY next_attempt_at LIMIT ?`,
    ),
    expiredLeases: db.prepare(`SELECT id, endpoint_id, status FROM deliveries WHERE status = 'sending' AND lease_until <= ? LIMIT ?`),
    holdUnconfigured: db.prepare(
      `UPDATE deliveries SET status = 'held', updated_at = ?
       WHERE status IN ('pending', 'retry_scheduled') AND endpoint_id NOT IN (SELECT value FROM json_each(?))`,
    ),
    leaseAny: db.prepare(`UPDATE deliveries SET status = 'sending', lease_owner = ?, lease_until = ?, updated_at = ? WHERE id = ?`),
    lease: db.prepare(
      `UPDATE deliveries SET status = 'sending', lease_owner = ?, lease_until = ?, updated_at = ?
       WHERE id = ? AND (status <> 'sending' OR lease_until <= ?)`,
    ),
    getDelivery: db.prepare('SELECT * FROM deliveries WHERE id = ?'),
    getMessage: db.prepare('SELECT * FROM messages WHERE id = ?'),
    attemptsOf: db.prepare('SELECT * FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt, id'),
    insertAttempt: db.prepare(
      `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error_class, error,
          response_body, webhook_timestamp, dry_run, manual)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    finishAttempt: db.prepare(
      `UPDATE deliveries SET status = ?, attempts = max(attempts, ?), next_attempt_at = ?, lease_owner = NULL,
          lease_until = NULL, updated_at = ?, last_status_code = ?, last_error = ?,
          delivered_at = coalesce(?, delivered_at), dry_run = ?
       WHERE id = ? AND lease_owner = ? AND status = 'sending'`,
    ),
    release: db.prepare(
      `UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retry_scheduled' END,
          lease_owner = NULL, lease_until = NULL
       WHERE id = ? AND lease_owner = ? AND status = 'sending'`,
    ),
    endpointSuccess: db.prepare('UPDATE webhook_endpoints SET last_success_at = ?, failure_streak = 0 WHERE id = ?'),
    endpointFailure: db.prepare('UPDATE webhook_endpoints SET last_failure_at = ?, failure_streak = failure_streak + 1 WHERE id = ?'),
    endpointGone: db.prepare(
      `UPDATE webhook_endpoints SET disabled_at = ?, disabled_reason = ?, last_failure_at = ?,
          failure_streak = failure_streak + 1 WHERE id = ?`,
    ),
    holdEndpoint: db.prepare(
      `UPDATE deliveries SET status = 'held', updated_at = ?
       WHERE endpoint_id = ? AND status IN ('pending', 'retry_scheduled')`,
    ),
    latestMessage: db.prepare('SELECT id FROM messages WHERE aggregation_id = ? ORDER BY revision DESC LIMIT 1'),
    deliveriesOfMessage: db.prepare('SELECT * FROM deliveries WHERE message_id = ? ORDER BY endpoint_id'),
    requeueable: db.prepare(`SELECT DISTINCT endpoint_id FROM deliveries WHERE status = 'held' AND created_at >= ?`),
    requeue: db.prepare(
      `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, deadline_at = ?, updated_at = ?
       WHERE status IN ('failed', 'held') AND created_at >= ?`,
    ),
    counts: db.prepare('SELECT status, count(*) AS n FROM deliveries GROUP BY status'),
  };

  function claimed(row: DeliveryRow, previousStatus: DeliveryStatus): ClaimedDelivery {
    const message = toMessage(s.getMessage.get(row.message_id) as MessageRow);
    return { ...toDelivery(row), message, previousStatus };
  }

  return {
    /** Inside the close transaction: one delivery per matching endpoint, held if the endpoint is disabled. */
    insertDeliveries(message: OutboxMessage, deliveries: NewDelivery[]): void {
      for (const d of deliveries) {
        const ep = s.endpointDisabled.get(d.endpointId) as { disabled_at: number | null } | undefined;
        const status = ep?.disabled_at ? 'held' : 'pending';
        s.insertDelivery.run(
          d.id,
          message.id,
          d.endpointId,
          message.aggregationId,
          status,
          message.createdAt,
          message.createdAt,
          message.createdAt,
          d.deadlineAt,
        );
      }
    },

    syncEndpoints: db.transaction((endpoints: Array<{ id: string; url: string }>) => {
      for (const e of endpoints) s.upsertEndpoint.run(e.id, e.url);
      s.holdUnconfigured.run(Date.now(), JSON.stringify(endpoints.map((e) => e.id)));
    }),

    listEndpoints(): EndpointState[] {
      return (s.listEndpoints.all() as EndpointRow[]).map(toEndpoint);
    },

    enableEndpoint: db.transaction((id: string, now: number): number => {
      s.enableEndpoint.run(id);
      return s.releaseHeld.run(now, now, id).changes;
    }),

    claimDeliveries: db.transaction((o: ClaimOptions): ClaimedDelivery[] => {
      const room = roomPerEndpoint(o);
      const out: ClaimedDelivery[] = [];
      const lease = (r: { id: string; endpoint_id: string; status: string }) => {
        if (out.length >= o.limit || !room.take(r.endpoint_id)) return;
        if (s.lease.run(o.owner, o.now + o.leaseMs, o.now, r.id, o.now).changes === 1) {
          out.push(claimed(s.getDelivery.get(r.id) as DeliveryRow, r.status as DeliveryStatus));
        }
      };
      // Deliveries whose worker died first, then each endpoint on its own index range, so one
      // endpoint's backlog never hides another's due deliveries.
      for (const r of s.expiredLeases.all(o.now, o.limit) as Array<{ id: string; endpoint_id: string; status: string }>) lease(r);
      for (const endpointId of o.endpoints) {
        const want = Math.min(o.limit - out.length, room.left(endpointId));
        if (want <= 0) continue;
        for (const r of s.dueForEndpoint.all(endpointId, o.now, want) as Array<{ id: string; endpoint_id: string; status: string }>)
          lease(r);
      }
      return out;
    }),

    claimDelivery: db.transaction((id: string, o: { now: number; leaseMs: number; owner: string }): ClaimedDelivery | undefined => {
      const row = s.getDelivery.get(id) as DeliveryRow | undefined;
      if (!row) return undefined;
      // A manual attempt must not race a live worker's send of the same delivery.
      if (row.status === 'sending' && Number(row.lease_until ?? 0) > o.now) return undefined;
      s.leaseAny.run(o.owner, o.now + o.leaseMs, o.now, id);
      const leased = { ...row, status: 'sending', lease_owner: o.owner, lease_until: o.now + o.leaseMs, updated_at: o.now };
      return claimed(leased, row.status as DeliveryStatus);
    }),

    recordAttempt: db.transaction((a: AttemptRecord, owner: string, outcome: AttemptOutcome, now: number): boolean => {
      // The lease check comes first: a worker that lost its lease must leave no trace in the log.
      const info = s.finishAttempt.run(
        outcome.status,
        a.attempt,
        outcome.nextAttemptAt,
        now,
        a.statusCode,
        isSuccessStatus(a.statusCode) ? null : a.error,
        outcome.deliveredAt,
        a.dryRun ? 1 : 0,
        a.deliveryId,
        owner,
      );
      if (info.changes === 0) return false;
      s.insertAttempt.run(...attemptParams(a, SQLITE_STYLE));
      const row = s.getDelivery.get(a.deliveryId) as DeliveryRow;
      if (outcome.endpoint === 'success') s.endpointSuccess.run(now, row.endpoint_id);
      else if (outcome.endpoint === 'failure') s.endpointFailure.run(now, row.endpoint_id);
      else {
        s.endpointGone.run(now, goneReason(now), now, row.endpoint_id);
        s.holdEndpoint.run(now, row.endpoint_id);
      }
      return true;
    }),

    releaseDelivery(id: string, owner: string): void {
      s.release.run(id, owner);
    },

    listDeliveries(q: DeliveryQuery): DeliveryRecord[] {
      const w = deliveryListSql(q, SQLITE_STYLE);
      return (db.prepare(`SELECT * FROM deliveries ${w.sql}`).all(...w.params) as DeliveryRow[]).map(toDelivery);
    },

    getDelivery(id: string) {
      const row = s.getDelivery.get(id) as DeliveryRow | undefined;
      if (!row) return undefined;
      const attempts = (s.attemptsOf.all(id) as AttemptRow[]).map(toAttempt);
      const message = toMessage(s.getMessage.get(row.message_id) as MessageRow);
      return { delivery: toDelivery(row), attempts, message };
    },

    latestDeliveries(aggregationIds: string[]): Map<string, DeliveryRecord[]> {
      const out = new Map<string, DeliveryRecord[]>();
      for (const aggId of aggregationIds) {
        const msg = s.latestMessage.get(aggId) as { id: string } | undefined;
        if (!msg) continue;
        out.set(aggId, (s.deliveriesOfMessage.all(msg.id) as DeliveryRow[]).map(toDelivery));
      }
      return out;
    },

    requeueDeliveries: db.transaction((since: number, now: number, deadlineMs: number): number => {
      // Held deliveries wait on a disabled endpoint; asking to recover them re-enables it.
      for (const r of s.requeueable.all(since) as Array<{ endpoint_id: string }>) s.enableEndpoint.run(r.endpoint_id);
      return s.requeue.run(now, now + deadlineMs, now, since).changes;
    }),

    deliveryCounts(): Record<DeliveryStatus, number> {
      const out = Object.fromEntries(DELIVERY_STATUSES.map((st) => [st, 0])) as Record<DeliveryStatus, number>;
      for (const r of s.counts.all() as Array<{ status: DeliveryStatus; n: number }>) out[r.status] = r.n;
      return out;
    },
  };
}
