// Owns the drop-in Metronome ingest route, POST /compat/metronome/v1/ingest: an array of up to 100 usage
// events, all or nothing, answered 200 with no body; errors as Metronome's { message }. Must never store
// part of a request, nor let a Stainless client retry a refused one (x-should-retry: false).

import Type from 'typebox';
import { BatchBodyInvalid } from '../../../domain/errors.js';
import { RFC3339_RULE, rfc3339ToMillis } from '../../../domain/vendor-events.js';
import { captureVendorBatch } from '../../../ingest/vendor-capture.js';
import type { RoutePlugin } from '../../app-types.js';
import type { CaptureAdmission } from '../../capture-admission.js';
import { MapOf } from '../../schemas/common.js';
import {
  arrayLength,
  documentOnly,
  type Failure,
  failureText,
  isRecord,
  mapEvents,
  noRetryUnlessTransient,
  type Rendered,
  SMALL_BATCH_BODY_LIMIT,
  type VendorPick,
  vendorErrorHandler,
  withPropertiesBag,
  missingFields,
  confined,
} from './vendor-http.js';

export const METRONOME_PREFIX = '/compat/metronome/v1';
/** Metronome takes at most 100 usage events per request. */
export const METRONOME_BATCH_MAX = 100;

const NAMES = withPropertiesBag({ eventType: 'event_type', customerId: 'customer_id', id: 'transaction_id', timestamp: 'timestamp' });

const usageEvent: VendorPick = (raw) => {
  const ev = isRecord(raw) ? raw : {};
  const errors = missingFields(ev, ['transaction_id', 'timestamp']);
  return {
    errors,
    event: {
      eventType: ev.event_type,
      customerId: ev.customer_id,
      id: ev.transaction_id === '' ? undefined : ev.transaction_id,
      timestamp: rfc3339ToMillis(ev.timestamp),
      timestampRule: RFC3339_RULE,
      properties: ev.properties,
    },
  };
};

const Usage = Type.Object({
  transaction_id: Type.String({ description: "The event's id: a repeat with the same content is counted once" }),
  customer_id: Type.String({ description: 'The customer' }),
  event_type: Type.String({ description: 'The meterhook event type' }),
  timestamp: Type.String({ description: 'RFC 3339' }),
  properties: Type.Optional(MapOf(Type.Unknown(), "The type's valueProperty (default value) is the value; the rest is metadata")),
});
const MetronomeError = (description: string) => Type.Object({ message: Type.String() }, { description });

function render(f: Failure): Rendered {
  const status = f.status === 422 ? 400 : f.status;
  const message =
    f.conflicts.length > 0
      ? `transaction_id already used for an event with different content: ${f.conflicts.map((c) => c.id).join(', ')}`
      : failureText(f, 'usage', false);
  return { status, headers: noRetryUnlessTransient(status), body: { message } };
}

export const metronomeRoutes: RoutePlugin<{ admission: CaptureAdmission }> = async (app, opts) => {
  const { deps, admission } = opts;
  const { ctx } = deps;
  app.setErrorHandler(vendorErrorHandler(deps, render, arrayLength));
  app.post(
    `${METRONOME_PREFIX}/ingest`,
    {
      config: { scope: 'ingest', customerKeys: true },
      bodyLimit: SMALL_BATCH_BODY_LIMIT,
      onRequest: admission.hook(SMALL_BATCH_BODY_LIMIT),
      schema: {
        tags: ['drop-in: Metronome'],
        summary: 'Metronome: ingest usage events (up to 100)',
        description:
          'metronome.v1.usage.ingest with baseURL …/compat/metronome: event_type is the event type, customer_id the ' +
          'customer, transaction_id the id, properties the value and metadata. All or nothing. A repeat with the same ' +
          'content is counted once; one with other content is refused 409 (ConflictError, not retried).',
        body: Type.Array(Usage, { maxItems: METRONOME_BATCH_MAX }),
        response: {
          200: { description: 'Stored; an empty body, as Metronome answers', type: 'null' },
          400: MetronomeError('Invalid events (BadRequestError); nothing was stored'),
          401: MetronomeError('Missing or invalid API key (AuthenticationError)'),
          403: MetronomeError('The API key lacks the ingest scope'),
          429: MetronomeError('Too many failed authentications from this address; honour Retry-After'),
          409: MetronomeError('A transaction_id was used before with other content (ConflictError); nothing was stored'),
          413: MetronomeError('More than 100 events, or too large a body'),
          415: MetronomeError('Unsupported media type'),
          500: MetronomeError('Internal error'),
          503: MetronomeError('Ingest is overloaded or the store is unavailable; honour Retry-After'),
        },
      },
      validatorCompiler: documentOnly,
    },
    async (req, reply) => {
      if (!Array.isArray(req.body) || req.body.length === 0) throw new BatchBodyInvalid('Request body must be an array of events');
      await captureVendorBatch(ctx, confined(req, mapEvents(req.body, usageEvent, ctx.config, NAMES)), NAMES, METRONOME_BATCH_MAX);
      // No body at all: the schema's null documents it, and an undefined payload sends none.
      return reply.code(200).send(undefined as never);
    },
  );
};
