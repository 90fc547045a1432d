// Owns the drop-in Lago event routes under /compat/lago/api/v1: POST /events ({ event }) and POST /events/batch
// ({ events }, up to 100), answered with Lago's event objects; errors in Lago's { status, error, code,
// error_details } shape. Must never store part of a request, nor read the customer from anything but
// external_customer_id, or else external_subscription_id.

import Type from 'typebox';
import { BatchBodyInvalid } from '../../../domain/errors.js';
import { unixSecondsToMillis } from '../../../domain/vendor-events.js';
import { captureVendorBatch, type VendorStored } from '../../../ingest/vendor-capture.js';
import type { RoutePlugin } from '../../app-types.js';
import type { CaptureAdmission } from '../../capture-admission.js';
import { MapOf, Nullable } from '../../schemas/common.js';
import {
  documentOnly,
  type Failure,
  isRecord,
  mapEvents,
  type Rendered,
  SMALL_BATCH_BODY_LIMIT,
  type VendorPick,
  vendorErrorHandler,
  withPropertiesBag,
  missingFields,
  confined,
} from './vendor-http.js';

export const LAGO_PREFIX = '/compat/lago/api/v1';
/** Lago's own batch limit. */
export const LAGO_BATCH_MAX = 100;

const NAMES = withPropertiesBag({ eventType: 'code', customerId: 'external_customer_id', id: 'transaction_id', timestamp: 'timestamp' });

const lagoEvent: VendorPick = (raw) => {
  const ev = isRecord(raw) ? raw : {};
  const errors = missingFields(ev, ['transaction_id']);
  const customer = ev.external_customer_id ?? ev.external_subscription_id;
  const ts = ev.timestamp;
  return {
    errors,
    event: {
      eventType: ev.code,
      customerId: customer === '' ? undefined : customer,
      id: ev.transaction_id === '' ? undefined : ev.transaction_id,
      timestamp: ts === undefined || ts === null || ts === '' ? undefined : unixSecondsToMillis(ts),
      timestampRule: 'must be a Unix timestamp in seconds (a number or a string, decimals allowed)',
      properties: ev.properties,
    },
  };
};

function eventObject(raw: unknown, r: VendorStored, now: number) {
  const ev = isRecord(raw) ? raw : {};
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    lago_id: r.eventId,
    transaction_id: r.event.id ?? '',
    lago_customer_id: null,
    code: r.event.eventType,
    timestamp: new Date(r.event.ts).toISOString(),
    properties: isRecord(ev.properties) ? ev.properties : {},
    lago_subscription_id: null,
    external_subscription_id: str(ev.external_subscription_id),
    external_customer_id: str(ev.external_customer_id),
    created_at: new Date(now).toISOString(),
  };
}

const EventInput = Type.Object({
  transaction_id: Type.String({ description: "The event's id: a repeat with the same content is counted once" }),
  external_customer_id: Type.Optional(Type.String({ description: 'The customer' })),
  external_subscription_id: Type.Optional(Type.String({ description: 'The customer when external_customer_id is absent' })),
  code: Type.String({ description: 'The meterhook event type' }),
  timestamp: Type.Optional(Type.Union([Type.Number(), Type.String()], { description: 'Unix seconds; default: receive time' })),
  properties: Type.Optional(MapOf(Type.Unknown(), "The type's valueProperty (default value) is the value; the rest is metadata")),
});
const EventObject = Type.Object({
  lago_id: Type.String({ description: "meterhook's event id" }),
  transaction_id: Type.String(),
  lago_customer_id: Type.Null(),
  code: Type.String(),
  timestamp: Type.String(),
  properties: MapOf(Type.Unknown()),
  lago_subscription_id: Type.Null(),
  external_subscription_id: Nullable(Type.String()),
  external_customer_id: Nullable(Type.String()),
  created_at: Type.String(),
});
const LagoError = (description: string) =>
  Type.Object(
    {
      status: Type.Integer(),
      error: Type.String(),
      code: Type.Optional(Type.String({ description: 'validation_errors, or the meterhook error code' })),
      error_details: Type.Optional(
        MapOf(
          Type.Unknown(),
          'Per field, its problems; in a batch, per event index, then per field. A repeat: transaction_id value_already_exist',
        ),
      ),
    },
    { description },
  );
const ERRORS = {
  400: LagoError('Bad request: the body is not JSON or not { event } / { events }'),
  401: LagoError('Missing or invalid API key'),
  403: LagoError('The API key lacks the ingest scope'),
  429: LagoError('Too many failed authentications from this address; honour Retry-After'),
  413: LagoError('Too large: more than 100 events, or too large a body'),
  415: LagoError('Unsupported media type'),
  422: LagoError('Unprocessable entity: invalid events, or a transaction_id used before with other content; nothing was stored'),
  500: LagoError('Internal error'),
  503: LagoError('Ingest is overloaded or the store is unavailable; honour Retry-After'),
};
const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  429: 'Too Many Requests',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

const FIELD = /^([a-z_]+(?:\.[^ ]+)?) /;

/** Problems by field, as Lago's error_details: { transaction_id: ["value_already_exist"] }. */
function byField(errors: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of errors) {
    const field = e.startsWith('Invalid event type') ? 'code' : (FIELD.exec(e)?.[1] ?? 'event');
    (out[field] ??= []).push(e);
  }
  return out;
}

function render(batch: boolean) {
  return (f: Failure): Rendered => {
    if (f.conflicts.length > 0) {
      const details = batch
        ? Object.fromEntries(f.conflicts.map((c) => [String(c.index), { transaction_id: ['value_already_exist'] }]))
        : { transaction_id: ['value_already_exist'] };
      return { status: 422, body: { status: 422, error: STATUS_TEXT[422], code: 'validation_errors', error_details: details } };
    }
    if (f.invalid.length > 0) {
      const details = batch
        ? Object.fromEntries(f.invalid.map((p) => [String(p.index), byField(p.errors)]))
        : byField(f.invalid[0]!.errors);
      return { status: 422, body: { status: 422, error: STATUS_TEXT[422], code: 'validation_errors', error_details: details } };
    }
    const status = f.status === 409 ? 422 : f.status;
    return { status, body: { status, error: STATUS_TEXT[status] ?? f.message, code: f.code, error_details: { message: [f.message] } } };
  };
}

export const lagoRoutes: RoutePlugin<{ admission: CaptureAdmission }> = async (app, opts) => {
  const { deps, admission } = opts;
  const { ctx } = deps;
  const field = (body: unknown, key: string) => (isRecord(body) ? body[key] : undefined);

  await app.register(async (single) => {
    single.setErrorHandler(vendorErrorHandler(deps, render(false), () => 1));
    single.post(
      `${LAGO_PREFIX}/events`,
      {
        config: { scope: 'ingest', customerKeys: true },
        onRequest: admission.hook(64 * 1024),
        schema: {
          tags: ['drop-in: Lago'],
          summary: 'Lago: send a usage event',
          description:
            'lago.events.createEvent with baseUrl …/compat/lago/api/v1: code is the event type, external_customer_id ' +
            '(else external_subscription_id) the customer, transaction_id the id, timestamp Unix seconds, properties the ' +
            'value and metadata. A repeat with the same content answers 200 again and is counted once.',
          body: Type.Object({ event: EventInput }),
          response: { 200: Type.Object({ event: EventObject }), ...ERRORS },
        },
        validatorCompiler: documentOnly,
      },
      async (req) => {
        const raw = field(req.body, 'event');
        if (!isRecord(raw)) throw new BatchBodyInvalid('Request body is required');
        const [r] = await captureVendorBatch(ctx, confined(req, mapEvents([raw], lagoEvent, ctx.config, NAMES)), NAMES, 1);
        return { event: eventObject(raw, r!, ctx.clock.now()) };
      },
    );
  });

  await app.register(async (batch) => {
    batch.setErrorHandler(
      vendorErrorHandler(deps, render(true), (b) => (Array.isArray(field(b, 'events')) ? (field(b, 'events') as []).length : 1)),
    );
    batch.post(
      `${LAGO_PREFIX}/events/batch`,
      {
        config: { scope: 'ingest', customerKeys: true },
        bodyLimit: SMALL_BATCH_BODY_LIMIT,
        onRequest: admission.hook(SMALL_BATCH_BODY_LIMIT),
        schema: {
          tags: ['drop-in: Lago'],
          summary: 'Lago: send a batch of up to 100 usage events',
          description: 'lago.events.createBatchEvents: all or nothing; error_details are keyed by event index.',
          body: Type.Object({ events: Type.Array(EventInput, { maxItems: LAGO_BATCH_MAX }) }),
          response: { 200: Type.Object({ events: Type.Array(EventObject) }), ...ERRORS },
        },
        validatorCompiler: documentOnly,
      },
      async (req) => {
        const list = field(req.body, 'events');
        if (!Array.isArray(list) || list.length === 0) throw new BatchBodyInvalid('Events array cannot be empty');
        const stored = await captureVendorBatch(ctx, confined(req, mapEvents(list, lagoEvent, ctx.config, NAMES)), NAMES, LAGO_BATCH_MAX);
        const now = ctx.clock.now();
        return { events: stored.map((r) => eventObject(list[r.index], r, now)) };
      },
    );
  });
};
