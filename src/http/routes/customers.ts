// Owns GET /customers/:customerId/usage: real-time usage for the period containing an instant.
// Must never 404 an unknown customer: no usage is an empty answer, not an error.

import Type from 'typebox';
import { currentUsage } from '../../aggregate/current-usage.js';
import { PERIODS } from '../../domain/periods.js';
import type { App, AppDeps } from '../build-app.js';
import { InstantParam, instantParam, IdParam } from '../query-params.js';

const UsageParams = Type.Object({ customerId: IdParam(256) });
const UsageQuery = Type.Object({
  period: Type.Optional(Type.Enum([...PERIODS], { default: 'monthly' })),
  at: InstantParam('An instant inside the wanted period (default now)'),
});

export function registerCustomerRoutes(app: App, deps: AppDeps): void {
  app.get('/customers/:customerId/usage', { schema: { params: UsageParams, querystring: UsageQuery } }, async (req) => {
    const at = instantParam('at', req.query.at) ?? deps.ctx.clock.now();
    return currentUsage(deps.ctx, req.params.customerId, req.query.period ?? 'monthly', at);
  });
}
