// Owns the service's own routes: descriptor, ping, health, readiness and the redacted configuration.
// Must never reveal a secret: /config goes through the redactor.

import Type from 'typebox';
import { redactedConfig } from '../../config/redact.js';
import { StoreUnavailable } from '../../domain/errors.js';
import type { RoutePlugin } from '../app-types.js';
import { AUTHENTICATED, errorResponses, MapOf } from '../schemas/common.js';

export const ENDPOINTS: Record<string, string> = {
  'GET /': 'This service descriptor',
  'GET /ping': 'Liveness check with the server time',
  'GET /healthz': 'Liveness check (no API key needed)',
  'GET /readyz': 'Readiness check: the store answers and its writes work (no API key needed)',
  'GET /config': 'Effective configuration, secrets redacted',
  'POST /usage/:eventType': 'Capture one event: {customerId, value, metadata?, timestamp?, id?}',
  'POST /usagebatch':
    'Capture up to maxBatchSize events in one all-or-nothing transaction; an Idempotency-Key header makes the whole request idempotent',
  'GET /events': 'Raw events, newest first (customerId, eventType, from, to, limit, cursor)',
  'GET /aggregations': 'Aggregations, newest period first (customerId, period, periodKey, final, from, to, limit, cursor)',
  'POST /aggregations/trigger': 'Finalize due periods and compute real-time numbers for open ones, now',
  'GET /customers/:customerId/usage': 'Real-time usage of one customer for the period containing `at` (default now)',
  'GET /customers': 'Customers with usage, in id order (search = id prefix, limit, cursor)',
  'GET /customers/:customerId/usage/series': 'Usage of one event type over time in hour or day buckets (eventType, bucket, from, to)',
  'GET /stats': 'Overview: events per hour over the last 7 days, aggregations, deliveries by status, endpoint health',
  'GET /webhooks/deliveries': 'Webhook deliveries, newest first (status, endpointId, aggregationId, from, to, limit, cursor)',
  'GET /webhooks/deliveries/:id': 'One delivery with its attempts and message',
  'POST /webhooks/deliveries/:id/retry': 'Make one new, re-signed attempt of a delivery now',
  'POST /webhooks/recover': 'Re-queue failed or held deliveries created since {since}',
  'GET /webhooks/endpoints': 'Configured endpoints with health, filters and the whsec_ form of plain secrets',
  'POST /webhooks/endpoints/:endpointId/enable': 'Re-enable an endpoint disabled by a 410 and release its held deliveries',
  'GET /metrics': 'Prometheus metrics',
  'POST /keys': 'Create an API key (shown once): {name, scopes, customerId?, expiresAt?, rateLimit?}',
  'GET /keys': 'API keys, without key material',
  'GET /keys/:keyId': 'One API key, without key material',
  'DELETE /keys/:keyId': 'Revoke an API key at once (409 for the last admin key when no key comes from the environment)',
  'GET /session': 'What the presented key may do: {keyId, scopes, customerId, admin}',
  'GET /audit': 'Admin actions on record, newest first (action, keyId, from, to, limit, cursor)',
  'POST /v1/billing/meter_events': 'Stripe drop-in: one meter event, form-encoded as stripe-node sends it',
  'POST /v2/billing/meter_events': 'Stripe drop-in: one meter event (v2)',
  'POST /v2/billing/meter_event_session': 'Stripe drop-in: a 15-minute token for the meter event stream',
  'POST /v2/billing/meter_event_stream': 'Stripe drop-in: up to 100 meter events, with a session token',
  'POST /compat/openmeter/api/v1/events': 'OpenMeter drop-in: one CloudEvent or a batch',
  'POST /compat/lago/api/v1/events': 'Lago drop-in: one usage event',
  'POST /compat/lago/api/v1/events/batch': 'Lago drop-in: up to 100 usage events',
  'POST /compat/orb/v1/ingest': 'Orb drop-in: up to 500 events, per event',
  'POST /compat/metronome/v1/ingest': 'Metronome drop-in: up to 100 usage events',
};

const Descriptor = Type.Object({
  status: Type.Literal('ok'),
  service: Type.String(),
  version: Type.String(),
  description: Type.String(),
  features: Type.Array(Type.String()),
  endpoints: MapOf(Type.String(), 'Every route ("METHOD /path") and what it does'),
});
const Ping = Type.Object({ status: Type.Literal('ok'), timestamp: Type.String({ description: 'Server time' }) });
const Health = Type.Object({ status: Type.Literal('ok') });
const STORE_KINDS = ['sqlite', 'postgres'] as const;
const Ready = Type.Object({ status: Type.Literal('ready'), store: Type.Enum([...STORE_KINDS]) });
const NotReady = Type.Object(
  {
    status: Type.Literal('not_ready'),
    store: Type.Enum([...STORE_KINDS]),
    reason: Type.Enum(['store_unreachable', 'writes_failing']),
    error: Type.String(),
  },
  { description: 'Not ready (with Retry-After): the store does not answer, or its writes fail' },
);
const Config = MapOf(Type.Unknown(), 'The effective configuration, webhook secrets redacted');

export const metaRoutes: RoutePlugin = async (app, { deps }) => {
  const { ctx } = deps;

  app.get(
    '/',
    {
      config: { scope: 'any' },
      schema: { summary: 'Service descriptor', response: { 200: Descriptor, ...errorResponses(...AUTHENTICATED) } },
    },
    async () => ({
      status: 'ok' as const,
      service: 'meterhook',
      version: deps.version,
      description: 'Self-hosted usage metering: capture events, aggregate them over calendar periods, deliver signed webhooks.',
      features: [
        'event capture (single and batch, all-or-nothing)',
        'idempotent events (id / Idempotency-Key)',
        'event timestamps with late-data revisions',
        'aggregation periods: hourly, daily, weekly (ISO), monthly, yearly',
        'operators: sum, avg, min, max, count, first, last',
        'scheduled finalization with catch-up after downtime',
        'real-time usage from hourly rollups',
        'HMAC-SHA256-signed webhooks (Standard Webhooks and legacy headers)',
        'webhook retries, replay, recovery and delivery log',
        'SSRF guard on outbound webhooks',
        'drop-in ingest for the Stripe, OpenMeter, Lago, Orb and Metronome SDKs',
      ],
      endpoints: ENDPOINTS,
    }),
  );

  app.get(
    '/ping',
    {
      config: { scope: 'any', customerKeys: true },
      schema: { summary: 'Liveness check with the server time', response: { 200: Ping, ...errorResponses(...AUTHENTICATED) } },
    },
    async () => ({ status: 'ok' as const, timestamp: new Date(ctx.clock.now()).toISOString() }),
  );

  app.get(
    '/healthz',
    {
      config: { scope: 'public' },
      schema: { summary: 'Liveness check (no API key needed)', security: [], response: { 200: Health, ...errorResponses(500) } },
    },
    async () => ({ status: 'ok' as const }),
  );

  // Ready means the store answers and writes work: after a write fault (full disk, read-only file, lock,
  // lost connection) it is 503 until the store's own check sees writes succeed again, with no restart.
  app.get(
    '/readyz',
    {
      config: { scope: 'public' },
      schema: {
        summary: 'Readiness check (no API key needed)',
        security: [],
        response: { 200: Ready, 503: NotReady, ...errorResponses(500) },
      },
    },
    async (req, reply) => {
      let reason: 'store_unreachable' | 'writes_failing' = 'store_unreachable';
      let error = 'the store does not answer';
      let retryAfter = 5;
      try {
        if (deps.ready) {
          if (await deps.ready()) return { status: 'ready' as const, store: ctx.store.stats().adapter };
        } else {
          await ctx.store.ping();
          reason = 'writes_failing';
          error = 'writes are failing';
          await ctx.store.checkWrites();
          return { status: 'ready' as const, store: ctx.store.stats().adapter };
        }
      } catch (err) {
        const fault = err instanceof StoreUnavailable ? err : ctx.store.classifyError(err);
        if (fault) {
          retryAfter = fault.retryAfterSeconds;
          if (fault.reason) error = `${error}: ${fault.reason}`;
        }
        req.log.warn({ err: fault?.cause ?? err, reason }, 'readiness check failed');
      }
      return reply
        .code(503)
        .header('retry-after', String(retryAfter))
        .send({ status: 'not_ready', store: ctx.store.stats().adapter, reason, error });
    },
  );

  app.get(
    '/config',
    {
      config: { scope: 'admin' },
      schema: { summary: 'Effective configuration, secrets redacted', response: { 200: Config, ...errorResponses(...AUTHENTICATED) } },
    },
    async () => redactedConfig(ctx.config),
  );
};
