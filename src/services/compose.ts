// Owns wiring the services on an opened store: context, metrics, group commit, API keys, the delivery
// engine, the scheduler's tick and the HTTP app, for the server and the tests alike.
// Must never open or close the store, listen on a port or start a timer: the caller decides when things run.

import type { Logger } from 'pino';
import { dimensionRulesOf } from '../domain/rules.js';
import { closeDuePeriods, type CloseSummary } from '../aggregate/close-due-periods.js';
import type { EventPageOptions } from '../aggregate/event-listing.js';
import { advanceGroupMerges } from '../aggregate/group-merges.js';
import { applyAuditRetention, applyRequestKeyRetention, applyRetention } from '../aggregate/retention.js';
import { Scheduler } from '../aggregate/scheduler.js';
import { ApiKeyVerifier } from '../auth/api-keys.js';
import { AuthThrottle, type AuthThrottleOptions } from '../auth/auth-throttle.js';
import { KeyRateLimiter } from '../auth/key-rate-limit.js';
import type { KeyRateLimit } from '../domain/records.js';
import type { MeterhookConfig } from '../config/schema.js';
import { DEFAULT_AUTH_THROTTLE, type HttpLimits, type TrustProxy } from '../config/server-settings.js';
import { VERSION } from '../config/version.js';
import type { Clock } from '../domain/clock.js';
import { buildApp, type App } from '../http/build-app.js';
import { createCaptureAdmission, type CaptureAdmission, type CaptureAdmissionOptions } from '../http/capture-admission.js';
import { GroupCommitter, type GroupCommitOptions } from '../ingest/group-commit.js';
import type { IngestContext } from '../ingest/ingest-service.js';
import { createMetrics } from '../observability/metrics.js';
import type { Store } from '../store/store.js';
import { Dispatcher } from '../webhooks/dispatcher.js';
import { createSender, type Sender } from '../webhooks/sender.js';
import { createSsrfGuard } from '../webhooks/ssrf-guard.js';

export interface ComposeOptions {
  store: Store;
  config: MeterhookConfig;
  clock: Clock;
  logger: Logger;
  /** Keys from the environment (METERHOOK_API_KEYS); keys kept in the store are read from it. */
  apiKeys: readonly string[];
  /** Sign and log webhooks instead of sending them. */
  dryRun: boolean;
  /** Reported by /openapi.json and sent in the webhook User-Agent (default: the package version). */
  version?: string;
  /** The webhook worker's lease owner name (default: host, pid and a random suffix). */
  owner?: string;
  /** Retry jitter source (default Math.random). */
  rng?: () => number;
  /** Bounds of group commit and capture admission (default: the memory budget's). */
  committer?: GroupCommitOptions;
  admission?: CaptureAdmissionOptions;
  /** How far a filtered GET /events page looks (default: the listing's scan budget). */
  eventListing?: EventPageOptions;
  /** Connection timeouts and caps (default DEFAULT_HTTP_LIMITS). */
  http?: HttpLimits;
  /** The failed-authentication throttle (default DEFAULT_AUTH_THROTTLE). */
  authThrottle?: AuthThrottleOptions;
  /** The default per-key rate limit (default: off; a key's own limit still applies). */
  keyRateLimit?: KeyRateLimit | null;
  trustProxy?: TrustProxy;
}

export interface Services {
  ctx: IngestContext;
  committer: GroupCommitter;
  admission: CaptureAdmission;
  apiKeys: ApiKeyVerifier;
  dispatcher: Dispatcher;
  /** Runs `tick` on the configured cron schedule once started. */
  scheduler: Scheduler;
  app: App;
  /** One scheduler tick's work now: store upkeep, the close of due periods, retention, then the running merges of groups. */
  tick(): Promise<CloseSummary>;
  /** Stops the scheduler, the app and the delivery engine, and drains group commit; the store stays open. */
  close(): Promise<void>;
}

export async function composeServices(o: ComposeOptions): Promise<Services> {
  const { store, config, clock, logger } = o;
  const dimensions = dimensionRulesOf(config);
  const committer = new GroupCommitter(store, () => config.periods, { dimensions: () => dimensions, ...o.committer });
  const admission = createCaptureAdmission(committer, o.admission);
  const ctx: IngestContext = { store, clock, config, logger, committer, staleMerges: new Set() };
  ctx.metrics = createMetrics({ store, config, clock });

  const apiKeys = new ApiKeyVerifier(store, [...o.apiKeys], () => clock.now());
  await apiKeys.reload();
  const authThrottle = new AuthThrottle(o.authThrottle ?? DEFAULT_AUTH_THROTTLE, () => clock.now());
  const keyRateLimiter = new KeyRateLimiter(o.keyRateLimit ?? null, () => clock.now());

  const { allowHttp, allowCidrs } = config.webhookDelivery;
  const sender: Sender = createSender(createSsrfGuard({ allowHttp, allowCidrs }));
  const dispatcher = new Dispatcher({
    store,
    config,
    clock,
    logger,
    sender,
    dryRun: o.dryRun,
    userAgent: `meterhook/${VERSION}`,
    owner: o.owner,
    rng: o.rng,
    metrics: ctx.metrics,
  });
  ctx.onMessages = () => dispatcher.notify();

  const tick = async (): Promise<CloseSummary> => {
    await store.maintain(clock.now());
    const closed = await closeDuePeriods(ctx);
    await applyRetention(ctx);
    await applyRequestKeyRetention(ctx);
    await applyAuditRetention(ctx);
    await advanceGroupMerges(ctx);
    return closed;
  };
  const scheduler = new Scheduler({ schedule: config.schedule, logger, clock, run: tick });
  const app = await buildApp({
    ctx,
    apiKeys,
    dispatcher,
    version: o.version ?? VERSION,
    logger,
    captureAdmission: admission,
    eventListing: o.eventListing,
    http: o.http,
    authThrottle,
    keyRateLimiter,
    trustProxy: o.trustProxy,
  });

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      await scheduler.stop();
      await app.close();
      await dispatcher.stop();
      await sender.close();
      await committer.drain();
    })());
  return { ctx, committer, admission, apiKeys, dispatcher, scheduler, app, tick, close };
}
