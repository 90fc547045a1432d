// Owns the drop-in Stripe meter event routes, at Stripe's own paths because stripe-node takes a host but no
// path prefix: POST /v1/billing/meter_events (form), POST /v2/billing/meter_events, the meter event session
// and its stream. Must never let a session token do anything but send to the stream, nor store part of a request.

import { checkSessionToken, looksLikeSessionToken, mintSessionToken } from '../../../auth/meter-event-session.js';
import { sortableId } from '../../../domain/ids.js';
import { toCaptureInput } from '../../../domain/vendor-events.js';
import { captureVendorBatch } from '../../../ingest/vendor-capture.js';
import type { RoutePlugin } from '../../app-types.js';
import type { CaptureAdmission } from '../../capture-admission.js';
import { RateLimited, Unauthorized } from '../../errors.js';
import { admitGrant, assertCapturableCustomers } from '../../restriction.js';
import { presentedKey } from '../../presented-key.js';
import {
  MeterEventSession,
  parseStripeForm,
  renderStripe,
  SessionExpired,
  StripeBodyInvalid,
  STRIPE_NAMES,
  STRIPE_STREAM_MAX,
  StreamBody,
  stripeErrors,
  stripeEvent,
  V1Body,
  V1MeterEvent,
  V2Body,
  V2MeterEvent,
  v1MeterEvent,
  v2MeterEvent,
} from './stripe-wire.js';
import { documentOnly, SMALL_BATCH_BODY_LIMIT, vendorErrorHandler } from './vendor-http.js';

/** The stream checks its own credential (a session token, or an API key); the app's key check skips it. */
export const STRIPE_STREAM_PATH = '/v2/billing/meter_event_stream';

const TAGS = ['drop-in: Stripe'];
const SINGLE_BODY_LIMIT = 64 * 1024;

function events(body: unknown): unknown[] {
  const list = typeof body === 'object' && body !== null ? (body as { events?: unknown }).events : undefined;
  return Array.isArray(list) ? list : [];
}

export const stripeRoutes: RoutePlugin<{ admission: CaptureAdmission }> = async (app, opts) => {
  const { deps, admission } = opts;
  const { ctx } = deps;
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, parseStripeForm(body as string));
  });

  const one = (body: unknown) => (typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {});

  await app.register(async (single) => {
    single.setErrorHandler(vendorErrorHandler(deps, renderStripe(null), () => 1));

    const meterEvents = [
      {
        version: 'v1' as const,
        summary: 'Stripe: create a billing meter event',
        description:
          'stripe.billing.meterEvents.create: event_name is the event type, payload[stripe_customer_id] the customer, ' +
          "the type's valueProperty (default payload[value]) the value, identifier the id, the other payload keys metadata.",
        consumes: ['application/x-www-form-urlencoded'],
        body: V1Body,
        ok: V1MeterEvent,
        answer: v1MeterEvent,
      },
      {
        version: 'v2' as const,
        summary: 'Stripe: create a meter event (v2)',
        description: 'stripe.v2.billing.meterEvents.create, mapped as the v1 event; timestamp is RFC 3339.',
        consumes: ['application/json'],
        body: V2Body,
        ok: V2MeterEvent,
        answer: v2MeterEvent,
      },
    ];
    for (const spec of meterEvents) {
      single.post(
        `/${spec.version}/billing/meter_events`,
        {
          config: { scope: 'ingest', customerKeys: true },
          onRequest: admission.hook(SINGLE_BODY_LIMIT),
          schema: {
            tags: TAGS,
            summary: spec.summary,
            description: spec.description,
            consumes: spec.consumes,
            body: spec.body,
            response: { 200: spec.ok, ...stripeErrors() },
          },
          validatorCompiler: documentOnly,
        },
        async (req) => {
          const raw = one(req.body);
          const mapped = [toCaptureInput(stripeEvent(raw, spec.version), ctx.config, STRIPE_NAMES)];
          assertCapturableCustomers(
            req,
            mapped.map((m) => m.element.customerId),
          );
          const [r] = await captureVendorBatch(ctx, mapped, STRIPE_NAMES, 1);
          return spec.answer(raw, r!.event, r!.eventId, ctx.clock.now());
        },
      );
    }

    single.post(
      '/v2/billing/meter_event_session',
      {
        config: { scope: 'ingest', customerKeys: true },
        schema: {
          tags: TAGS,
          summary: 'Stripe: create a meter event session',
          description: 'A token for the meter event stream only, good for 15 minutes; it stops working when its API key is revoked.',
          response: { 200: MeterEventSession, ...stripeErrors() },
        },
      },
      async (req) => {
        const now = ctx.clock.now();
        const { token, expiresAt } = mintSessionToken(presentedKey(req.headers)!, now);
        return {
          id: sortableId('mes', now),
          object: 'v2.billing.meter_event_session' as const,
          authentication_token: token,
          created: new Date(now).toISOString(),
          expires_at: new Date(expiresAt).toISOString(),
          livemode: false,
        };
      },
    );
  });

  await app.register(async (stream) => {
    stream.setErrorHandler(vendorErrorHandler(deps, renderStripe('events'), (b) => events(b).length));
    stream.post(
      STRIPE_STREAM_PATH,
      {
        // The stream checks its credential itself: a session token, or a key with the ingest scope.
        config: { scope: 'public', customerKeys: true },
        bodyLimit: SMALL_BATCH_BODY_LIMIT,
        onRequest: [
          async (req) => {
            const credential = presentedKey(req.headers);
            if (!credential) throw new Unauthorized('Missing credential: send the session authentication_token as Authorization: Bearer');
            // The same throttle as every other route: an address that failed too often is refused before any check.
            const throttle = deps.authThrottle;
            const wait = throttle?.retryAfterSeconds(req.ip) ?? 0;
            if (wait > 0) throw new RateLimited(`Too many failed authentications from this address; retry in ${wait} s`, wait);
            const refuse = (err: Error): never => {
              throttle?.fail(req.ip);
              throw err;
            };
            if (looksLikeSessionToken(credential)) {
              const { check, grant } = await checkSessionToken(credential, deps.apiKeys, ctx.clock.now());
              if (check === 'expired') throw new SessionExpired();
              if (check === 'invalid' || !grant) refuse(new Unauthorized('Invalid meter event session token'));
              // A session carries its key: the key's customer restriction and rate limit apply to the stream.
              admitGrant(req, deps, grant!, 'ingest');
            } else {
              const grant = await deps.apiKeys.verify(credential);
              if (!grant) refuse(new Unauthorized('Invalid API key'));
              admitGrant(req, deps, grant!, 'ingest');
            }
          },
          admission.hook(SMALL_BATCH_BODY_LIMIT),
        ],
        schema: {
          tags: TAGS,
          summary: 'Stripe: send meter events on the stream (up to 100)',
          description:
            'stripe.v2.billing.meterEventStream.create with a client made from the session token (or an API key). ' +
            'All or nothing: one bad event refuses the request with a 400 naming events[i], and nothing is stored.',
          body: StreamBody,
          response: { 200: { type: 'object', properties: {}, description: 'Stored' }, ...stripeErrors() },
        },
        validatorCompiler: documentOnly,
      },
      async (req) => {
        const list = events(req.body);
        if (list.length === 0) throw new StripeBodyInvalid('events must be a non-empty array of meter events');
        const mapped = list.map((e) => toCaptureInput(stripeEvent(e, 'v2'), ctx.config, STRIPE_NAMES));
        assertCapturableCustomers(
          req,
          mapped.map((m) => m.element.customerId),
        );
        await captureVendorBatch(ctx, mapped, STRIPE_NAMES, STRIPE_STREAM_MAX);
        return {};
      },
    );
  });
};
