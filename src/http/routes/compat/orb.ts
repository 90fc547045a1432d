// Owns the drop-in Orb ingest route, POST /compat/orb/v1/ingest: { events: [...] } up to 500, taken per event
// as Orb does (the valid ones are stored, the others reported by idempotency_key in validation_failed with a
// 400), with Orb's debug option. Must never store an event that failed validation, nor report a stored one.

import Type, { type Static } from 'typebox';
import { BatchBodyInvalid } from '../../../domain/errors.js';
import { rfc3339ToMillis } from '../../../domain/vendor-events.js';
import { captureVendorEach } from '../../../ingest/vendor-capture.js';
import type { RoutePlugin } from '../../app-types.js';
import type { CaptureAdmission } from '../../capture-admission.js';
import { MapOf } from '../../schemas/common.js';
import {
  documentOnly,
  type Failure,
  isRecord,
  LARGE_BATCH_BODY_LIMIT,
  mapEvents,
  noRetryUnlessTransient,
  type Rendered,
  type VendorPick,
  vendorErrorHandler,
  withPropertiesBag,
  missingFields,
  confined,
} from './vendor-http.js';

export const ORB_PREFIX = '/compat/orb/v1';
/** Orb takes at most 500 events per ingest request. */
export const ORB_BATCH_MAX = 500;

const NAMES = withPropertiesBag({
  eventType: 'event_name',
  customerId: 'external_customer_id',
  id: 'idempotency_key',
  timestamp: 'timestamp',
});

const present = (v: unknown) => v !== undefined && v !== null && v !== '';

const orbEvent: VendorPick = (raw) => {
  const ev = isRecord(raw) ? raw : {};
  const errors = missingFields(ev, ['idempotency_key', 'timestamp']);
  if (present(ev.customer_id) && present(ev.external_customer_id)) errors.push('give exactly one of customer_id and external_customer_id');
  return {
    errors,
    event: {
      eventType: ev.event_name,
      customerId: present(ev.external_customer_id) ? ev.external_customer_id : ev.customer_id,
      id: present(ev.idempotency_key) ? ev.idempotency_key : undefined,
      timestamp: rfc3339ToMillis(ev.timestamp),
      timestampRule: 'must be an ISO 8601 date-time in UTC such as 2026-01-12T10:00:00Z',
      properties: ev.properties,
    },
  };
};

const OrbEvent = Type.Object({
  idempotency_key: Type.String({ description: "The event's id: a repeat with the same content is counted once" }),
  event_name: Type.String({ description: 'The meterhook event type' }),
  timestamp: Type.String({ description: 'ISO 8601, UTC' }),
  properties: MapOf(Type.Unknown(), "The type's valueProperty (default value) is the value; the rest is metadata"),
  external_customer_id: Type.Optional(Type.String({ description: 'The customer (exactly one of the two)' })),
  customer_id: Type.Optional(Type.String({ description: 'The customer (exactly one of the two)' })),
});
const ValidationFailed = Type.Array(Type.Object({ idempotency_key: Type.String(), validation_errors: Type.Array(Type.String()) }));
const Debug = Type.Object({ duplicate: Type.Array(Type.String()), ingested: Type.Array(Type.String()) });
const IngestResponse = (description: string) =>
  Type.Object({ validation_failed: ValidationFailed, debug: Type.Optional(Debug) }, { description });
const OrbError = (description: string) =>
  Type.Object({ type: Type.String(), status: Type.Integer(), title: Type.String(), detail: Type.String() }, { description });

function render(f: Failure): Rendered {
  const status = f.status === 422 ? 400 : f.status;
  const detail = f.invalid.length > 0 ? f.invalid.flatMap((p) => p.errors.map((e) => `events[${p.index}]: ${e}`)).join('; ') : f.message;
  return {
    status,
    headers: noRetryUnlessTransient(status),
    body: { type: `https://docs.withorb.com/reference/error-responses#${status}`, status, title: f.code, detail },
  };
}

export const orbRoutes: RoutePlugin<{ admission: CaptureAdmission }> = async (app, opts) => {
  const { deps, admission } = opts;
  const { ctx } = deps;
  app.setErrorHandler(vendorErrorHandler(deps, render, (b) => (isRecord(b) && Array.isArray(b.events) ? b.events.length : 1)));
  app.post(
    `${ORB_PREFIX}/ingest`,
    {
      config: { scope: 'ingest', customerKeys: true },
      bodyLimit: LARGE_BATCH_BODY_LIMIT,
      onRequest: admission.hook(LARGE_BATCH_BODY_LIMIT),
      schema: {
        tags: ['drop-in: Orb'],
        summary: 'Orb: ingest events (up to 500), per event',
        description:
          'orb.events.ingest with baseURL …/compat/orb/v1: event_name is the event type, external_customer_id (or ' +
          'customer_id) the customer, idempotency_key the id, properties the value and metadata. Per event, as Orb: ' +
          'the valid events are stored in one transaction and the others are answered 400 in validation_failed by ' +
          'idempotency_key, a key used before with other content among them; nothing of a listed event is stored. ' +
          'debug=true adds the ingested and duplicate keys. backfill_id is accepted and not used.',
        querystring: Type.Object({
          debug: Type.Optional(Type.Boolean({ description: 'Answer with the ingested and duplicate idempotency keys' })),
          backfill_id: Type.Optional(Type.String({ description: 'Accepted for compatibility; meterhook has no backfills' })),
        }),
        body: Type.Object({ events: Type.Array(OrbEvent, { maxItems: ORB_BATCH_MAX }) }),
        response: {
          200: IngestResponse('Every event was stored (or was a repeat); validation_failed is empty'),
          400: Type.Union([IngestResponse('Some events failed validation; the others were stored'), OrbError('The request is malformed')]),
          401: OrbError('Missing or invalid API key (AuthenticationError)'),
          403: OrbError('The API key lacks the ingest scope'),
          429: OrbError('Too many failed authentications from this address; honour Retry-After'),
          413: OrbError('More than 500 events, or too large a body'),
          415: OrbError('Unsupported media type'),
          500: OrbError('Internal error'),
          503: OrbError('Ingest is overloaded or the store is unavailable; honour Retry-After'),
        },
      },
      validatorCompiler: documentOnly,
    },
    async (req, reply) => {
      const list = isRecord(req.body) ? req.body.events : undefined;
      if (!Array.isArray(list) || list.length === 0) throw new BatchBodyInvalid('Events array cannot be empty');
      const { stored, invalid } = await captureVendorEach(
        ctx,
        confined(req, mapEvents(list, orbEvent, ctx.config, NAMES)),
        NAMES,
        ORB_BATCH_MAX,
      );
      const keyOf = (i: number) => {
        const k = (list[i] as Record<string, unknown> | undefined)?.idempotency_key;
        return typeof k === 'string' ? k : '';
      };
      const body: { validation_failed: Array<{ idempotency_key: string; validation_errors: string[] }>; debug?: Static<typeof Debug> } = {
        validation_failed: invalid.map((p) => ({ idempotency_key: keyOf(p.index), validation_errors: p.errors })),
      };
      if (String(req.query.debug) === 'true') {
        body.debug = {
          duplicate: stored.filter((r) => r.duplicate).map((r) => keyOf(r.index)),
          ingested: stored.filter((r) => !r.duplicate).map((r) => keyOf(r.index)),
        };
      }
      if (invalid.length > 0) void reply.header('x-should-retry', 'false');
      return reply.code(invalid.length > 0 ? 400 : 200).send(body);
    },
  );
};
