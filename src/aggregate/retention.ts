// Owns the retention policy for raw events: delete what is older than retention.events, but never
// anything inside a period that is not final yet. Must never touch rollups or aggregations.

import type { ServiceContext } from './context.js';

export interface RetentionResult {
  cutoff: number;
  deleted: number;
  partitionsDropped: string[];
}

export async function applyRetention(ctx: ServiceContext, now = ctx.clock.now()): Promise<RetentionResult | null> {
  const keep = ctx.config.retentionEventsMs;
  if (keep === null) return null;
  let cutoff = now - keep;
  // A period still waiting to be finalized may need its raw events for audit and recomputation.
  const oldestOpen = await ctx.store.oldestOpenPeriodStart();
  if (oldestOpen !== null && oldestOpen < cutoff) cutoff = oldestOpen;
  const r = await ctx.store.deleteEventsBefore(cutoff);
  if (r.deleted > 0 || r.partitionsDropped.length > 0) {
    ctx.logger.info({ cutoff: new Date(cutoff).toISOString(), ...r }, 'retention: old events deleted');
  }
  return { cutoff, ...r };
}
