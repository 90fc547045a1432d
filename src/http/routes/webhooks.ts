// Owns the webhook operations API: list and inspect deliveries, replay one, recover failed or held
// ones, and show endpoint health. Must never return a configured secret.

import Type from 'typebox';
import { InvalidQuery } from '../../domain/errors.js';
import { DELIVERY_STATUSES } from '../../domain/deliveries.js';
import { secretFingerprint, standardSecretForm } from '../../webhooks/signing.js';
import type { RoutePlugin } from '../app-types.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { DeliveryBusy, NotFound } from '../errors.js';
import { presentAttempt, presentDelivery, presentMessage } from '../presenters.js';
import { CursorParam, InstantParam, LimitParam, instantParam, limitOf, IdParam } from '../query-params.js';
import { errorResponses, STORE, WITH_BODY } from '../schemas/common.js';
import { Delivery, DeliveryDetail, DeliveryRetryResult, Endpoint, EndpointEnabled, RecoverResult } from '../schemas/records.js';

const DeliveriesQuery = Type.Object({
  status: Type.Optional(Type.Enum([...DELIVERY_STATUSES])),
  endpointId: Type.Optional(IdParam(64)),
  aggregationId: Type.Optional(IdParam(64)),
  from: InstantParam('Earliest creation time, inclusive'),
  to: InstantParam('Latest creation time, inclusive'),
  limit: LimitParam,
  cursor: CursorParam,
});
const DeliveryParams = Type.Object({ id: IdParam(64) });
const EndpointParams = Type.Object({ endpointId: IdParam(64) });
const RecoverBody = Type.Object({ since: Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Integer({ minimum: 0 })]) });

const notFound = (what: string, id: string) => new NotFound(`${what} ${id} not found`);

export const webhookRoutes: RoutePlugin = async (app, { deps }) => {
  const { store, clock, config } = deps.ctx;

  app.get(
    '/webhooks/deliveries',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Webhook deliveries, newest first',
        description: 'The X-Next-Cursor header pages on.',
        querystring: DeliveriesQuery,
        response: { 200: Type.Array(Delivery), ...errorResponses(400, ...STORE) },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const limit = limitOf(q.limit);
      const before = q.cursor ? decodeCursor(q.cursor, ['instant', 'id']) : undefined;
      const rows = await store.listDeliveries({
        status: q.status,
        endpointId: q.endpointId,
        aggregationId: q.aggregationId,
        from: instantParam('from', q.from),
        to: instantParam('to', q.to),
        limit: limit + 1,
        before: before && { createdAt: before[0], id: before[1] },
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      if (rows.length > limit && last) void reply.header('x-next-cursor', encodeCursor([last.createdAt, last.id]));
      return page.map(presentDelivery);
    },
  );

  app.get(
    '/webhooks/deliveries/:id',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'One delivery with its attempts and message',
        params: DeliveryParams,
        response: { 200: DeliveryDetail, ...errorResponses(400, 404, ...STORE) },
      },
    },
    async (req) => {
      const found = await store.getDelivery(req.params.id);
      if (!found) throw notFound('delivery', req.params.id);
      return {
        ...presentDelivery(found.delivery),
        attempts: found.attempts.map(presentAttempt),
        message: presentMessage(found.message),
      };
    },
  );

  app.post(
    '/webhooks/deliveries/:id/retry',
    {
      config: { scope: 'admin', audit: 'delivery.retry' },
      schema: {
        summary: 'Make one new, re-signed attempt of a delivery now',
        params: DeliveryParams,
        response: { 200: DeliveryRetryResult, ...errorResponses(...WITH_BODY, 404, 409, ...STORE) },
      },
    },
    async (req) => {
      if (!(await store.getDelivery(req.params.id))) throw notFound('delivery', req.params.id);
      const report = await deps.dispatcher.retryNow(req.params.id);
      if (!report) throw new DeliveryBusy(req.params.id);
      const r = report.result;
      return {
        delivery: presentDelivery(report.delivery),
        attempt: {
          statusCode: r.statusCode,
          errorClass: r.errorClass,
          error: r.error,
          durationMs: r.durationMs,
          dryRun: r.dryRun === true,
        },
      };
    },
  );

  app.post(
    '/webhooks/recover',
    {
      config: { scope: 'admin', audit: 'delivery.recover' },
      schema: {
        summary: 'Re-queue failed or held deliveries created since an instant',
        body: RecoverBody,
        response: { 200: RecoverResult, ...errorResponses(...WITH_BODY, ...STORE) },
      },
    },
    async (req) => {
      const since = instantParam('since', typeof req.body.since === 'number' ? String(req.body.since) : req.body.since);
      if (since === undefined) throw new InvalidQuery('since is required');
      const requeued = await store.requeueDeliveries(since, clock.now(), config.webhookDelivery.deadlineMs);
      if (requeued > 0) deps.dispatcher.notify();
      return { requeued, since: new Date(since).toISOString() };
    },
  );

  app.get(
    '/webhooks/endpoints',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Configured endpoints with health, filters and a fingerprint of each secret',
        response: { 200: Type.Array(Endpoint), ...errorResponses(...STORE) },
      },
    },
    async () => {
      const states = new Map((await store.listEndpoints()).map((e) => [e.id, e]));
      return config.webhooks.map((w) => {
        const st = states.get(w.id);
        const disabled = !w.enabled || Boolean(st?.disabledAt);
        const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);
        const isWhsec = w.secret.startsWith('whsec_') && standardSecretForm(w.secret) === w.secret;
        return {
          id: w.id,
          url: w.url,
          status: disabled ? ('disabled' as const) : ('active' as const),
          disabledReason: !w.enabled ? 'disabled in configuration' : (st?.disabledReason ?? null),
          disabledAt: iso(st?.disabledAt),
          lastSuccessAt: iso(st?.lastSuccessAt),
          lastFailureAt: iso(st?.lastFailureAt),
          failureStreak: st?.failureStreak ?? 0,
          events: w.events,
          periods: w.periods,
          legacyHeaders: w.legacyHeaders,
          timeoutMs: w.timeoutMs,
          secretSource: w.secretSource,
          // A fingerprint names the secret; no form of it (whsec_, base64, hex) ever leaves the process.
          secretFormat: isWhsec ? ('whsec' as const) : ('plain' as const),
          secretFingerprint: secretFingerprint(w.secret),
          previousSecretFingerprints: w.previousSecrets.map(secretFingerprint),
        };
      });
    },
  );

  app.post(
    '/webhooks/endpoints/:endpointId/enable',
    {
      config: { scope: 'admin', audit: 'endpoint.enable' },
      schema: {
        summary: 'Re-enable an endpoint disabled by a 410 and release its held deliveries',
        params: EndpointParams,
        response: { 200: EndpointEnabled, ...errorResponses(...WITH_BODY, 404, ...STORE) },
      },
    },
    async (req) => {
      const id = req.params.endpointId;
      if (!config.webhooks.some((w) => w.id === id)) throw notFound('endpoint', id);
      const released = await store.enableEndpoint(id, clock.now());
      if (released > 0) deps.dispatcher.notify();
      return { id, status: 'active' as const, released };
    },
  );
};
