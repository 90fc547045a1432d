// Owns the capture routes, POST /usage/:eventType and POST /usagebatch (reference contract).
// Must never validate here: the ingest service applies the reference's check order and messages.

import Type from 'typebox';
import { captureBatch, captureOne } from '../../ingest/ingest-service.js';
import type { App, AppDeps } from '../build-app.js';
import type { CaptureAdmission } from '../capture-admission.js';

// These schemas document the reference contract in OpenAPI. Validation stays in the ingest service,
// which applies the reference's check order and exact messages, so the schemas do not validate.
const docsOnly = () => () => true;
const EventFields = {
  customerId: Type.String({ minLength: 1, maxLength: 256 }),
  value: Type.Number({ description: 'Any finite number; negatives, 0 and fractions are fine' }),
  metadata: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'At most 8 KiB serialized, nesting depth 5' })),
  timestamp: Type.Optional(Type.Union([Type.String(), Type.Integer()], { description: 'ISO-8601 with an offset, or epoch milliseconds; default: receive time' })),
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Idempotency id' })),
};
const SingleEvent = Type.Object(EventFields);
const BatchEvents = Type.Array(Type.Object({ eventType: Type.String({ maxLength: 128 }), ...EventFields }), { maxItems: 10000 });
const Captured = Type.Object({
  message: Type.String(), eventType: Type.String(), customerId: Type.String(), eventId: Type.String(),
  id: Type.Union([Type.String(), Type.Null()]), timestamp: Type.Optional(Type.String()), duplicate: Type.Boolean(),
});
const BatchCaptured = Type.Object({ message: Type.String(), count: Type.Integer(), inserted: Type.Integer(), duplicates: Type.Integer() });

export function registerCaptureRoutes(
  app: App,
  deps: AppDeps,
  opts: { singleBodyLimit: number; batchBodyLimit: number; admission: CaptureAdmission },
): void {
  app.post<{ Params: { eventType: string } }>('/usage/:eventType', {
    // Overload is answered before the body is read: a refused request costs no parsing.
    onRequest: opts.admission.hook(opts.singleBodyLimit),
    schema: {
      summary: 'Capture one event',
      params: Type.Object({ eventType: Type.String({ maxLength: 128 }) }),
      headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) }),
      body: SingleEvent,
      response: { 201: Captured, 200: Captured },
    },
    validatorCompiler: docsOnly,
  }, async (req, reply) => {
    const header = req.headers['idempotency-key'];
    const idHeader = typeof header === 'string' ? header : undefined;
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
  });

  app.post('/usagebatch', {
    bodyLimit: opts.batchBodyLimit,
    onRequest: opts.admission.hook(opts.batchBodyLimit),
    schema: { summary: 'Capture a batch of events, all or nothing', body: BatchEvents, response: { 201: BatchCaptured, 200: BatchCaptured } },
    validatorCompiler: docsOnly,
  }, async (req, reply) => {
    const r = await captureBatch(deps.ctx, req.body);
    return reply.code(r.inserted > 0 ? 201 : 200).send({
      message: 'Events captured',
      count: r.count,
      inserted: r.inserted,
      duplicates: r.duplicates,
    });
  });
}
