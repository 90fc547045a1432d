// Owns GET /customers/:customerId/usage: real-time usage for the period containing an instant.
// Must never 404 an unknown customer for an unrestricted key: no usage is an empty answer, not an error
// (a customer-restricted key gets 404 for every customer but its own, see restriction.ts).

import Type from 'typebox';
import { currentUsage } from '../../aggregate/current-usage.js';
import { PERIODS } from '../../domain/periods.js';
import type { RoutePlugin } from '../app-types.js';
import { InstantParam, instantParam, IdParam } from '../query-params.js';
import { errorResponses, STORE } from '../schemas/common.js';
import { Usage } from '../schemas/records.js';
import { assertReadableCustomer } from '../restriction.js';

const UsageParams = Type.Object({ customerId: IdParam(256) });
const UsageQuery = Type.Object({
  period: Type.Optional(Type.Enum([...PERIODS], { default: 'monthly' })),
  at: InstantParam('An instant inside the wanted period (default now)'),
});

export const customerRoutes: RoutePlugin = async (app, { deps }) => {
  app.get(
    '/customers/:customerId/usage',
    {
      config: { scope: 'read', customerKeys: true },
      schema: {
        summary: 'Real-time usage of one customer for the period containing an instant',
        params: UsageParams,
        querystring: UsageQuery,
        response: { 200: Usage, ...errorResponses(400, 404, ...STORE) },
      },
    },
    async (req) => {
      assertReadableCustomer(req, req.params.customerId);
      const at = instantParam('at', req.query.at) ?? deps.ctx.clock.now();
      return currentUsage(deps.ctx, req.params.customerId, req.query.period ?? 'monthly', at);
    },
  );
};
