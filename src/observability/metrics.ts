// Owns meterhook's Prometheus metrics: one registry per app, counters updated by the services, and
// gauges read from the store at scrape time. Must never put customer ids or secrets in labels.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { UNDELIVERED_STATUSES } from '../domain/deliveries.js';
import { periodInterval } from '../domain/periods.js';
import type { MeterhookConfig } from '../config/schema.js';
import type { Clock } from '../domain/clock.js';
import type { DeliveryPort, StoreLifecycle, UsagePort } from '../store/store.js';

export function createMetrics(o: {
  store: Pick<UsagePort, 'listDueMarks'> & Pick<DeliveryPort, 'deliveryCounts' | 'oldestUndeliveredAt'> & Pick<StoreLifecycle, 'stats'>;
  config: MeterhookConfig;
  clock: Clock;
  processDefaults?: boolean;
}) {
  const registry = new Registry();
  if (o.processDefaults !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const metrics = {
    registry,
    eventsIngested: new Counter({ name: 'meterhook_events_ingested_total', help: 'Events stored (duplicates excluded)', registers }),
    eventsDuplicate: new Counter({
      name: 'meterhook_events_duplicate_total',
      help: 'Events acknowledged as repeats of a stored id',
      registers,
    }),
    eventsRejected: new Counter({
      name: 'meterhook_events_rejected_total',
      help: 'Events refused, by reason (a rejected batch counts each of its events)',
      labelNames: ['reason'] as const,
      registers,
    }),
    rateLimited: new Counter({
      name: 'meterhook_rate_limited_total',
      help: "Requests refused by their API key's rate limit, by the scope the route needs",
      labelNames: ['scope'] as const,
      registers,
    }),
    batchSize: new Histogram({
      name: 'meterhook_ingest_batch_size',
      help: 'Events per accepted capture request',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
      registers,
    }),
    ingestLatency: new Histogram({
      name: 'meterhook_ingest_commit_seconds',
      help: 'Time from a capture request being queued to its commit (group commit included)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    finalizations: new Counter({
      name: 'meterhook_aggregations_finalized_total',
      help: 'Aggregation revisions finalized, by period',
      labelNames: ['period'] as const,
      registers,
    }),
    webhookAttempts: new Counter({
      name: 'meterhook_webhook_attempts_total',
      help: 'Webhook attempts by outcome (resulting delivery state) and error class',
      labelNames: ['outcome', 'error_class'] as const,
      registers,
    }),
    auditWriteFailures: new Counter({
      name: 'meterhook_audit_write_failures_total',
      help: 'Admin actions whose audit record could not be written (the action itself was answered)',
      registers,
    }),
  };

  new Gauge({
    name: 'meterhook_aggregation_lag_seconds',
    help: 'How long the oldest due-but-unfinalized period has been due (0 when none)',
    registers,
    async collect() {
      const now = o.clock.now();
      let oldestDueAt = now;
      for (const period of o.config.periods) {
        const bound = periodInterval(period, now - o.config.gracePeriodMs).start;
        const [mark] = await o.store.listDueMarks(period, bound, 1);
        if (mark) oldestDueAt = Math.min(oldestDueAt, periodInterval(period, mark.periodStart).end + o.config.gracePeriodMs);
      }
      this.set((now - oldestDueAt) / 1000);
    },
  });
  new Gauge({
    name: 'meterhook_webhook_queue_depth',
    help: 'Deliveries not finished, by status',
    labelNames: ['status'] as const,
    registers,
    async collect() {
      const counts = await o.store.deliveryCounts();
      for (const s of UNDELIVERED_STATUSES) this.set({ status: s }, counts[s]);
    },
  });
  new Gauge({
    name: 'meterhook_webhook_oldest_undelivered_seconds',
    help: 'Age of the oldest message with a delivery not yet succeeded, failed or cancelled (0 when none)',
    registers,
    async collect() {
      const oldest = await o.store.oldestUndeliveredAt();
      this.set(oldest === null ? 0 : Math.max(0, (o.clock.now() - oldest) / 1000));
    },
  });
  new Gauge({
    name: 'meterhook_groups_overflowed',
    help: 'New groups this process counted in an overflow group since it started (their hour held maxGroupsPerHour groups)',
    registers,
    collect() {
      this.set(o.store.stats().groupsOverflowed);
    },
  });
  // Registered for a store that defers work (its stages are fixed), so the others export no empty family.
  if (Object.keys(o.store.stats().deferred).length > 0) {
    const store = o.store;
    new Gauge({
      name: 'meterhook_store_deferred_events',
      help:
        'Committed events whose derived state is not written yet, by stage ' +
        '(SQLite: derived = hour states, marks and idempotency keys; listing_index = GET /events indexes; ' +
        'PostgreSQL: derived = hour states, marks and dimensions, over all processes; ' +
        'quarantined = queue rows this process set aside because they could not be derived)',
      labelNames: ['stage'] as const,
      registers,
      collect() {
        for (const [stage, n] of Object.entries(store.stats().deferred)) this.set({ stage }, n);
      },
    });
  }
  if (o.store.stats().deferredAgeSeconds !== undefined) {
    const store = o.store;
    new Gauge({
      name: 'meterhook_store_deferred_age_seconds',
      help: 'How long the oldest committed event whose derived state is not written yet has waited (PostgreSQL: the derive queue)',
      registers,
      collect() {
        this.set(store.stats().deferredAgeSeconds ?? 0);
      },
    });
  }
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
