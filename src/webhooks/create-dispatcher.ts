// Owns assembling the delivery engine from config: SSRF guard, sender and dispatcher.
// Must never start anything: the caller decides when the engine runs.

import type { ServiceContext } from '../aggregate/context.js';
import { VERSION } from '../version.js';
import { Dispatcher } from './dispatcher.js';
import { createSender } from './sender.js';
import { createSsrfGuard } from './ssrf-guard.js';

export function createDispatcher(ctx: ServiceContext, o: { dryRun: boolean; owner?: string; rng?: () => number }) {
  const { allowHttp, allowCidrs } = ctx.config.webhookDelivery;
  const sender = createSender(createSsrfGuard({ allowHttp, allowCidrs }));
  const dispatcher = new Dispatcher({
    store: ctx.store,
    config: ctx.config,
    clock: ctx.clock,
    logger: ctx.logger,
    sender,
    dryRun: o.dryRun,
    userAgent: `meterhook/${VERSION}`,
    owner: o.owner,
    rng: o.rng,
    metrics: ctx.metrics,
  });
  return { dispatcher, sender };
}
