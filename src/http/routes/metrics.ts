// Owns GET /metrics, the Prometheus exposition of meterhook's registry.
// Must never compute metrics itself: the registry's collectors do.

import type { App, AppDeps } from '../build-app.js';

export function registerMetricsRoute(app: App, deps: AppDeps): void {
  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)' } }, async (_req, reply) => {
    const metrics = deps.ctx.metrics;
    if (!metrics) return reply.code(404).send({ error: 'metrics are not enabled in this process', code: 'not_found' });
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
}
