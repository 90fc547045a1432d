// Owns the drop-in OpenMeter ingest route, POST /compat/openmeter/api/v1/events: one CloudEvent or a batch
// (application/cloudevents+json, application/cloudevents-batch+json or plain JSON), answered 204, errors as
// RFC 7807 problem+json as OpenMeter's SDK reads them. Must never store part of a request, nor dedupe on
// anything but (source, id) within the event's subject and type.

import Type from 'typebox';
import { BatchBodyInvalid } from '../../../domain/errors.js';
import { RFC3339_RULE, rfc3339ToMillis, type VendorFieldNames } from '../../../domain/vendor-events.js';
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
  LARGE_BATCH_BODY_LIMIT,
  mapEvents,
  type Rendered,
  type VendorPick,
  vendorErrorHandler,
  missingFields,
  confined,
} from './vendor-http.js';

export const OPENMETER_PREFIX = '/compat/openmeter';

const NAMES: VendorFieldNames = {
  eventType: 'type',
  customerId: 'subject',
  id: 'id (with source)',
  timestamp: 'time',
  bag: 'data',
  property: (p) => `data.${p}`,
};

/**
 * OpenMeter dedupes on (source, id): both go into meterhook's id, the source percent-encoded so that no two
 * pairs meet ("a/b" + "c" and "a" + "b/c" stay apart).
 */
export function openMeterId(source: unknown, id: unknown): unknown {
  if (typeof id !== 'string' || id === '' || typeof source !== 'string' || source === '') return undefined;
  return `${encodeURIComponent(source)}/${id}`;
}

const cloudEvent: VendorPick = (raw) => {
  const ev = isRecord(raw) ? raw : {};
  const errors = isRecord(raw) ? missingFields(ev, ['id', 'source']) : ['the event must be a CloudEvents JSON object'];
  if (ev.specversion !== undefined && ev.specversion !== '1.0') errors.push('specversion must be "1.0"');
  return {
    errors,
    event: {
      eventType: ev.type,
      customerId: ev.subject,
      id: openMeterId(ev.source, ev.id),
      timestamp: rfc3339ToMillis(ev.time),
      timestampRule: RFC3339_RULE,
      properties: ev.data,
    },
  };
};

const CloudEvent = Type.Object(
  {
    specversion: Type.Optional(Type.Literal('1.0')),
    id: Type.String({ description: 'With source, the idempotency id: a repeat with the same content is counted once' }),
    source: Type.String(),
    type: Type.String({ description: 'The meterhook event type' }),
    subject: Type.String({ description: 'The customer' }),
    time: Type.Optional(Type.String({ description: 'RFC 3339; default: receive time' })),
    data: Type.Optional(MapOf(Type.Unknown(), "The type's valueProperty (default value) is the value; the rest is metadata")),
  },
  { additionalProperties: true },
);

const Problem = (description: string) =>
  Type.Object(
    {
      type: Type.String(),
      title: Type.String(),
      status: Type.Integer(),
      detail: Type.String({ description: 'Every problem, e.g. "events[2]: subject is required"' }),
    },
    { description },
  );

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  429: 'Too Many Requests',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function render(f: Failure): Rendered {
  // Validation is 400 in OpenMeter; a conflicting repeat (which OpenMeter would drop silently) is refused 409.
  const status = f.conflicts.length > 0 ? 409 : f.status === 422 ? 400 : f.status;
  const detail =
    f.conflicts.length > 0
      ? `event id already used with different content: ${f.conflicts.map((c) => c.id).join(', ')}`
      : failureText(f, 'events', false);
  return {
    status,
    contentType: 'application/problem+json',
    body: { type: 'about:blank', title: TITLES[status] ?? 'Error', status, detail },
  };
}

export const openMeterRoutes: RoutePlugin<{ admission: CaptureAdmission }> = async (app, opts) => {
  const { deps, admission } = opts;
  const { ctx } = deps;
  app.setErrorHandler(vendorErrorHandler(deps, render, arrayLength));
  app.post(
    `${OPENMETER_PREFIX}/api/v1/events`,
    {
      config: { scope: 'ingest', customerKeys: true },
      bodyLimit: LARGE_BATCH_BODY_LIMIT,
      onRequest: admission.hook(LARGE_BATCH_BODY_LIMIT),
      schema: {
        tags: ['drop-in: OpenMeter'],
        summary: 'OpenMeter: ingest one CloudEvent or a batch',
        description:
          'openmeter.events.ingest with baseUrl …/compat/openmeter: type is the event type, subject the customer, ' +
          '(source, id) the idempotency id, time the timestamp, data the value and metadata. At most maxBatchSize ' +
          'events (default 1000), all or nothing. A repeat with the same content is counted once; one with other ' +
          'content is refused 409 (OpenMeter would keep the first silently).',
        consumes: ['application/cloudevents+json', 'application/cloudevents-batch+json', 'application/json'],
        body: Type.Union([CloudEvent, Type.Array(CloudEvent)]),
        response: {
          204: Type.Null({ description: 'Stored' }),
          400: Problem('Invalid events (problem+json); nothing was stored'),
          401: Problem('Missing or invalid API key'),
          403: Problem('The API key lacks the ingest scope'),
          429: Problem('Too many failed authentications from this address; honour Retry-After'),
          409: Problem('An id (with its source) was used before with other content; nothing was stored'),
          413: Problem('Too many events (maxBatchSize) or too large a body'),
          415: Problem('Unsupported media type'),
          500: Problem('Internal error'),
          503: Problem('Ingest is overloaded or the store is unavailable; honour Retry-After'),
        },
      },
      validatorCompiler: documentOnly,
    },
    async (req, reply) => {
      const list = Array.isArray(req.body) ? req.body : [req.body];
      if (list.length === 0) throw new BatchBodyInvalid('Events array cannot be empty');
      await captureVendorBatch(ctx, confined(req, mapEvents(list, cloudEvent, ctx.config, NAMES)), NAMES, ctx.config.maxBatchSize);
      return reply.code(204).send(null);
    },
  );
};
