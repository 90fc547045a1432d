// Owns GET /metrics, the Prometheus exposition of meterhook's registry.
// Must never compute metrics itself: the registry's collectors do.

import Type from 'typebox';
import type { RoutePlugin } from '../app-types.js';
import { NotFoundWithoutRequestId } from '../errors.js';
import { errorBody, errorResponses, STORE } from '../schemas/common.js';

export const metricsRoutes: RoutePlugin = async (app, { deps }) => {
  app.get(
    '/metrics',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Prometheus metrics (text exposition format)',
        response: {
          200: { description: 'Prometheus text exposition', content: { 'text/plain': { schema: Type.String() } } },
          404: errorBody('Metrics are not enabled in this process (code not_found, no request id)'),
          ...errorResponses(...STORE),
        },
      },
    },
    async (_req, reply) => {
      const metrics = deps.ctx.metrics;
      if (!metrics) throw new NotFoundWithoutRequestId('metrics are not enabled in this process');
      const body = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(body);
    },
  );
};
