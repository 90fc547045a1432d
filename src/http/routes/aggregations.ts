// Owns GET /aggregations and POST /aggregations/trigger (reference contract plus final/revision).
// Must never compute numbers here: the aggregate services do, before the reply is sent.

import Type from 'typebox';
import { triggerAggregation } from '../../aggregate/trigger.js';
import { PERIODS } from '../../domain/periods.js';
import type { RoutePlugin } from '../app-types.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { summarizeWebhookStatus } from '../../webhooks/webhook-status.js';
import { presentAggregation } from '../presenters.js';
import { CursorParam, InstantParam, LimitParam, instantParam, limitOf, IdParam } from '../query-params.js';
import { errorResponses, STORE, WITH_BODY } from '../schemas/common.js';
import { Aggregation, TriggerNothing, TriggerQueued } from '../schemas/records.js';
import { listCustomer } from '../restriction.js';

const AggregationsQuery = Type.Object({
  customerId: Type.Optional(IdParam(256)),
  period: Type.Optional(Type.Enum([...PERIODS])),
  periodKey: Type.Optional(Type.String({ pattern: '^[0-9]{4,10}$' })),
  final: Type.Optional(Type.Boolean()),
  from: InstantParam('Earliest periodStart, inclusive'),
  to: InstantParam('Latest periodStart, inclusive'),
  limit: LimitParam,
  cursor: CursorParam,
});

export const aggregationRoutes: RoutePlugin = async (app, { deps }) => {
  app.get(
    '/aggregations',
    {
      config: { scope: 'read', customerKeys: true },
      schema: {
        summary: 'Aggregations, newest period first',
        description: 'The X-Next-Cursor header pages on.',
        querystring: AggregationsQuery,
        response: { 200: Type.Array(Aggregation), ...errorResponses(400, 404, ...STORE) },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const limit = limitOf(q.limit);
      const before = q.cursor ? decodeCursor(q.cursor, ['instant', 'id']) : undefined;
      const rows = await deps.ctx.store.listAggregations({
        customerId: listCustomer(req, q.customerId),
        period: q.period,
        periodKey: q.periodKey,
        final: q.final,
        from: instantParam('from', q.from),
        to: instantParam('to', q.to),
        limit: limit + 1,
        before: before && { periodStart: before[0], id: before[1] },
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      if (rows.length > limit && last) void reply.header('x-next-cursor', encodeCursor([last.periodStart, last.id]));
      const deliveries = await deps.ctx.store.latestDeliveries(page.filter((a) => a.final).map((a) => a.id));
      return page.map((a) => presentAggregation(a, summarizeWebhookStatus(deliveries.get(a.id))));
    },
  );

  app.post(
    '/aggregations/trigger',
    {
      config: { scope: 'admin', audit: 'aggregation.trigger' },
      schema: {
        summary: 'Finalize due periods and compute open ones, now',
        response: { 200: TriggerNothing, 202: TriggerQueued, ...errorResponses(...WITH_BODY, ...STORE) },
      },
    },
    async (_req, reply) => {
      const r = await triggerAggregation(deps.ctx);
      if (r.customersFound === 0) {
        return reply.code(200).send({ message: 'No events to aggregate', jobsQueued: 0, finalized: 0, provisional: 0 });
      }
      return reply.code(202).send({ message: 'Aggregation jobs queued for processing', ...r });
    },
  );
};
