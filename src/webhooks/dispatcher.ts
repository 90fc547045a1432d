// Owns the delivery engine: leases due deliveries, signs and sends them with bounded concurrency per
// process and per endpoint, and records every attempt. Must never keep a timer alive after stop().

import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { MeterhookConfig, WebhookEndpointConfig } from '../config/schema.js';
import type { Clock } from '../domain/clock.js';
import { sortableId } from '../domain/ids.js';
import type { Metrics } from '../observability/metrics.js';
import type { ClaimedDelivery, DeliveryRecord } from '../domain/deliveries.js';
import type { DeliveryPort } from '../store/store.js';
import { attemptBudgetMs, attemptOutcome } from './attempt-outcome.js';
import type { RetryPolicy } from './retry-policy.js';
import type { SendResult, Sender } from './sender.js';
import { signedHeaders } from './signing.js';

export interface DispatcherOptions {
  store: DeliveryPort;
  config: MeterhookConfig;
  clock: Clock;
  logger: Logger;
  sender: Sender;
  /** Log the signed request instead of sending it, and count it delivered. */
  dryRun: boolean;
  userAgent: string;
  owner?: string;
  rng?: () => number;
  metrics?: Metrics;
}

export interface AttemptReport {
  delivery: DeliveryRecord;
  result: SendResult & { dryRun?: boolean };
}

export class Dispatcher {
  readonly owner: string;
  private readonly policy: RetryPolicy;
  /** Enabled endpoints; a disabled one's deliveries were never created or are held. */
  private readonly endpointIds: string[];
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly perEndpoint = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private pumping: Promise<void> | null = null;
  private again = false;

  constructor(private readonly o: DispatcherOptions) {
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${sortableId('wrk', Date.now()).slice(-6)}`;
    this.policy = { scheduleMs: o.config.webhookDelivery.retryScheduleMs, deadlineMs: o.config.webhookDelivery.deadlineMs };
    this.endpointIds = o.config.webhooks.map((w) => w.id);
  }

  get activeCount(): number {
    return this.inFlight.size;
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.o.store.syncEndpoints(this.o.config.webhooks.map((w) => ({ id: w.id, url: w.url })));
    this.running = true;
    this.notify();
  }

  /** Look for due work now (called after new messages are written). */
  notify(): void {
    if (!this.running) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      if (this.again) {
        this.again = false;
        this.notify();
      } else this.arm();
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.pumping;
    await Promise.allSettled([...this.inFlight.values()]);
  }

  /** Resolves once no claim pass and no attempt is in flight, and every finished attempt is counted. */
  async settled(): Promise<void> {
    while (this.pumping || this.inFlight.size > 0) {
      await this.pumping;
      await Promise.allSettled([...this.inFlight.values()]);
    }
  }

  private arm(): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.notify();
    }, this.o.config.webhookDelivery.pollIntervalMs);
    this.timer.unref?.();
  }

  private async pump(): Promise<void> {
    const { concurrency, perEndpointConcurrency, leaseMs } = this.o.config.webhookDelivery;
    try {
      while (this.running) {
        const free = concurrency - this.inFlight.size;
        if (free <= 0) return;
        const claimed = await this.o.store.claimDeliveries({
          now: this.o.clock.now(),
          limit: free,
          leaseMs,
          owner: this.owner,
          perEndpointLimit: perEndpointConcurrency,
          inFlight: Object.fromEntries(this.perEndpoint),
          endpoints: this.endpointIds,
        });
        if (claimed.length === 0) return;
        for (const d of claimed) this.launch(d);
      }
    } catch (err) {
      this.o.logger.error({ err }, 'claiming webhook deliveries failed; retrying on the next poll');
    }
  }

  private launch(d: ClaimedDelivery): void {
    this.perEndpoint.set(d.endpointId, (this.perEndpoint.get(d.endpointId) ?? 0) + 1);
    const p = this.attempt(d, false)
      .catch((err: unknown) => this.o.logger.error({ err, deliveryId: d.id }, 'webhook attempt failed to record'))
      .then(() => undefined)
      .finally(() => {
        this.inFlight.delete(d.id);
        const n = (this.perEndpoint.get(d.endpointId) ?? 1) - 1;
        if (n <= 0) this.perEndpoint.delete(d.endpointId);
        else this.perEndpoint.set(d.endpointId, n);
        this.notify();
      });
    this.inFlight.set(d.id, p);
  }

  /** One manual attempt now, re-signed; undefined when the delivery does not exist or is being sent. */
  async retryNow(deliveryId: string): Promise<AttemptReport | undefined> {
    const d = await this.o.store.claimDelivery(deliveryId, {
      now: this.o.clock.now(),
      leaseMs: this.o.config.webhookDelivery.leaseMs,
      owner: this.owner,
    });
    if (!d) return undefined;
    const result = await this.attempt(d, true);
    if (!result) return undefined;
    const after = await this.o.store.getDelivery(d.id);
    return { delivery: after!.delivery, result };
  }

  private endpointOf(id: string): WebhookEndpointConfig | undefined {
    return this.o.config.webhooks.find((w) => w.id === id);
  }

  /** One attempt, recorded; undefined when the lease ran out before it could be sent. */
  private async attempt(d: ClaimedDelivery, manual: boolean): Promise<AttemptReport['result'] | undefined> {
    const { store, clock, logger } = this.o;
    const attempt = d.attempts + 1;
    const endpoint = this.endpointOf(d.endpointId);
    const startedAt = clock.now();
    const budgetMs = attemptBudgetMs({
      timeoutMs: endpoint?.timeoutMs ?? 0,
      leaseMs: this.o.config.webhookDelivery.leaseMs,
      leaseUntil: d.leaseUntil,
      now: startedAt,
    });
    if (endpoint && budgetMs === null) {
      logger.warn({ deliveryId: d.id }, 'webhook lease ran out before the attempt could be sent; it is sent after the next claim');
      return undefined;
    }
    const timestamp = Math.floor(startedAt / 1000);
    let result: SendResult & { dryRun?: boolean };
    if (!endpoint) {
      result = {
        statusCode: 410,
        errorClass: 'http_4xx',
        error: 'endpoint is no longer configured',
        responseBody: null,
        retryAfter: undefined,
        durationMs: 0,
      };
    } else {
      const headers = signedHeaders({
        msgId: d.message.id,
        deliveryId: d.id,
        eventType: d.message.type,
        attempt,
        timestamp,
        body: d.message.body,
        secrets: [endpoint.secret, ...endpoint.previousSecrets],
        legacyHeaders: endpoint.legacyHeaders,
        userAgent: this.o.userAgent,
      });
      if (this.o.dryRun) {
        logger.info({ dryRun: true, deliveryId: d.id, url: endpoint.url, headers, body: d.message.body }, 'DRY_RUN: webhook not sent');
        result = {
          statusCode: null,
          errorClass: null,
          error: null,
          responseBody: null,
          retryAfter: undefined,
          durationMs: 0,
          dryRun: true,
        };
      } else {
        result = await this.o.sender.send(
          { url: endpoint.url, headers, body: d.message.body, timeoutMs: budgetMs ?? endpoint.timeoutMs },
          () => clock.now(),
        );
      }
    }
    const now = clock.now();
    const outcome = attemptOutcome(this.policy, d, result, { now, attempt, manual, rng: this.o.rng });
    const recorded = await store.recordAttempt(
      {
        deliveryId: d.id,
        attempt,
        startedAt,
        durationMs: result.durationMs,
        statusCode: result.statusCode,
        errorClass: result.errorClass,
        error: outcome.reason ? `${result.error ?? ''}${result.error ? '; ' : ''}${outcome.reason}` : result.error,
        responseBody: result.responseBody,
        webhookTimestamp: timestamp,
        dryRun: result.dryRun === true,
        manual,
      },
      this.owner,
      outcome,
      now,
    );
    if (!recorded) logger.warn({ deliveryId: d.id }, 'webhook lease expired before the attempt was recorded');
    else
      this.o.metrics?.webhookAttempts.inc({
        outcome: outcome.status,
        error_class: result.errorClass ?? (result.dryRun ? 'dry_run' : 'none'),
      });
    if (outcome.status === 'failed')
      logger.warn({ deliveryId: d.id, endpointId: d.endpointId, error: result.error }, 'webhook delivery failed for good');
    if (outcome.endpoint === 'gone')
      logger.warn({ endpointId: d.endpointId }, 'webhook endpoint answered 410 Gone; disabled and its deliveries held');
    return result;
  }
}
