// Owns the capture routes, POST /usage/:eventType and POST /usagebatch (reference contract).
// Must never validate here: the ingest service applies the reference's check order and messages.

import Type from 'typebox';
import { captureBatch, captureOne } from '../../ingest/ingest-service.js';
import type { RoutePlugin } from '../app-types.js';
import type { CaptureAdmission } from '../capture-admission.js';
import { assertCapturableCustomers } from '../restriction.js';
import { errorResponses, STORE, WITH_BODY } from '../schemas/common.js';
import { BatchResult, CaptureResult } from '../schemas/records.js';

// These schemas document the reference contract in OpenAPI. Validation stays in the ingest service,
// which applies the reference's check order and exact messages, so the schemas do not validate.
const docsOnly = () => () => true;
const EventFields = {
  customerId: Type.String({ minLength: 1, maxLength: 256, description: 'No NUL and no lone UTF-16 surrogates' }),
  value: Type.Number({ description: 'Any finite number; negatives, 0 and fractions are fine' }),
  metadata: Type.Optional(
    Type.Object(
      {},
      {
        additionalProperties: true,
        description:
          'At most 8 KiB serialized, nesting depth 5, no lone UTF-16 surrogates in keys or strings; absent, null and {} are the same',
      },
    ),
  ),
  timestamp: Type.Optional(
    Type.Union([Type.String(), Type.Integer()], { description: 'ISO-8601 with an offset, or epoch milliseconds; default: receive time' }),
  ),
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Idempotency id; no lone UTF-16 surrogates' })),
};
const SingleEvent = Type.Object(EventFields);
const BatchEvents = Type.Array(Type.Object({ eventType: Type.String({ maxLength: 128 }), ...EventFields }), { maxItems: 10000 });
const CAPTURE_ERRORS = errorResponses(...WITH_BODY, ...STORE, 409, 422);

const SINGLE_IDEMPOTENCY =
  'Idempotent per event: `id` (or the Idempotency-Key header) names the event. A repeat with the same content ' +
  '(value, metadata with keys in any order, and the timestamp if the repeat gives one; absent, null and {} metadata ' +
  'are the same) answers 200 with duplicate: true and is counted once; different content answers 409.';
const BATCH_IDEMPOTENCY =
  'Per-event `id`s deduplicate as on POST /usage/:eventType. An Idempotency-Key header makes the whole request ' +
  'idempotent: a retry with the same key and the same body (compared after parsing, object keys in any order) ' +
  'answers 200 {"message":"Events captured","count":n,"inserted":0,"duplicates":n} with the header ' +
  'Idempotent-Replayed: true and stores nothing; the same key with another body answers 409 ' +
  '{"error":"Idempotency-Key \\"…\\" was used with a different request body","code":"idempotency_key_conflict","requestId":"…"}, ' +
  'and a key that is not 1–128 printable ASCII characters answers 400 invalid_idempotency_key. ' +
  'The key is recorded in the transaction that stores the events, so a refused batch (409, 422) records none. ' +
  'Keys are kept for maxEventAge (default 35 days).';

export interface CaptureRouteOptions {
  singleBodyLimit: number;
  batchBodyLimit: number;
  admission: CaptureAdmission;
}

export const captureRoutes: RoutePlugin<CaptureRouteOptions> = async (app, opts) => {
  const { deps } = opts;
  app.post(
    '/usage/:eventType',
    {
      config: { scope: 'ingest', customerKeys: true },
      // Overload is answered before the body is read: a refused request costs no parsing.
      onRequest: opts.admission.hook(opts.singleBodyLimit),
      schema: {
        summary: 'Capture one event',
        description: SINGLE_IDEMPOTENCY,
        params: Type.Object({ eventType: Type.String({ maxLength: 128 }) }),
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) }),
        body: SingleEvent,
        response: { 201: CaptureResult, 200: CaptureResult, ...CAPTURE_ERRORS },
      },
      validatorCompiler: docsOnly,
    },
    async (req, reply) => {
      const header = req.headers['idempotency-key'];
      const idHeader = typeof header === 'string' ? header : undefined;
      assertCapturableCustomers(req, [(req.body as { customerId?: unknown } | undefined)?.customerId]);
      const r = await captureOne(deps.ctx, req.params.eventType, req.body, idHeader);
      return reply.code(r.duplicate ? 200 : 201).send({
        message: 'Event captured',
        eventType: req.params.eventType,
        customerId: (req.body as { customerId: string }).customerId,
        eventId: r.eventId,
        id: r.id,
        // A duplicate keeps the stored event's time, which this request does not know.
        ...(r.duplicate ? {} : { timestamp: new Date(r.timestamp).toISOString() }),
        duplicate: r.duplicate,
      });
    },
  );

  app.post(
    '/usagebatch',
    {
      config: { scope: 'ingest', customerKeys: true },
      bodyLimit: opts.batchBodyLimit,
      onRequest: opts.admission.hook(opts.batchBodyLimit),
      schema: {
        summary: 'Capture a batch of events, all or nothing',
        description: BATCH_IDEMPOTENCY,
        headers: Type.Object({
          'idempotency-key': Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: 128,
              pattern: '^[\\x20-\\x7e]*$',
              description: 'Makes the whole request idempotent: 1–128 printable ASCII characters, kept for maxEventAge (default 35 days)',
            }),
          ),
        }),
        body: BatchEvents,
        response: {
          201: BatchResult,
          200: Type.Object(BatchResult.properties, {
            description:
              'Every event was a duplicate, or a replay of an Idempotency-Key ' +
              '(header Idempotent-Replayed: true; inserted 0, duplicates = count)',
          }),
          ...CAPTURE_ERRORS,
        },
      },
      validatorCompiler: docsOnly,
    },
    async (req, reply) => {
      const header = req.headers['idempotency-key'];
      if (Array.isArray(req.body))
        assertCapturableCustomers(
          req,
          (req.body as unknown[]).map((e) => (e as { customerId?: unknown } | null)?.customerId),
        );
      const r = await captureBatch(deps.ctx, req.body, typeof header === 'string' ? header : undefined);
      if (r.replayed) void reply.header('idempotent-replayed', 'true');
      return reply.code(r.inserted > 0 ? 201 : 200).send({
        message: 'Events captured',
        count: r.count,
        inserted: r.inserted,
        duplicates: r.duplicates,
      });
    },
  );
};
