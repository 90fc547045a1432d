// Owns the manual trigger: close what is due, then refresh provisional numbers for open periods,
// before answering. Must never leave a provisional document that could block a later close.

import { closeDuePeriods } from './close-due-periods.js';
import type { ServiceContext } from './context.js';
import { writeProvisional } from './provisional.js';

export interface TriggerResult {
  jobsCreated: number;
  jobsUpdated: number;
  jobsQueued: number;
  customersFound: number;
  periodsConfigured: number;
  eventsScanned: number;
  finalized: number;
  provisional: number;
}

export async function triggerAggregation(ctx: ServiceContext): Promise<TriggerResult> {
  const now = ctx.clock.now();
  const closed = await closeDuePeriods(ctx, now);
  const open = await writeProvisional(ctx, now);
  const customers = new Set([...closed.customers, ...open.customers]);
  const jobsCreated = closed.created + open.created;
  const jobsUpdated = closed.updated + open.updated;
  return {
    jobsCreated,
    jobsUpdated,
    jobsQueued: jobsCreated + jobsUpdated,
    customersFound: customers.size,
    periodsConfigured: ctx.config.periods.length,
    eventsScanned: closed.eventsScanned + open.eventsScanned,
    finalized: closed.finalized,
    provisional: open.created + open.updated,
  };
}
