// Owns the capture routes, POST /usage/:eventType and POST /usagebatch (reference contract).
// Must never validate here: the ingest service applies the reference's check order and messages.

import { captureBatch, captureOne } from '../../ingest/ingest-service.js';
import type { App, AppDeps } from '../build-app.js';

export function registerCaptureRoutes(app: App, deps: AppDeps, opts: { batchBodyLimit: number }): void {
  app.post<{ Params: { eventType: string } }>('/usage/:eventType', async (req, reply) => {
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

  app.post('/usagebatch', { bodyLimit: opts.batchBodyLimit }, async (req, reply) => {
    const r = await captureBatch(deps.ctx, req.body);
    return reply.code(r.inserted > 0 ? 201 : 200).send({
      message: 'Events captured',
      count: r.count,
      inserted: r.inserted,
      duplicates: r.duplicates,
    });
  });
}
