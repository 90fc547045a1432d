// Owns the retention policy for raw events (delete what is older than retention.events, but never
// anything inside a period that is not final yet), for request keys (kept for maxEventAge) and for audit
// records (kept for retention.audit). Must never touch rollups or aggregations.

import type { ServiceContext } from './context.js';

export interface RetentionResult {
  cutoff: number;
  deleted: number;
  partitionsDropped: string[];
}

/**
 * Deletes the Idempotency-Keys of POST /usagebatch recorded more than maxEventAge ago. A retry after
 * that long is a new request; its events, if they carry timestamps, are too old to be accepted anyway.
 */
export async function applyRequestKeyRetention(ctx: ServiceContext, now = ctx.clock.now()): Promise<{ cutoff: number; deleted: number }> {
  const cutoff = now - ctx.config.maxEventAgeMs;
  const deleted = await ctx.store.deleteRequestKeysBefore(cutoff);
  if (deleted > 0) ctx.logger.info({ cutoff: new Date(cutoff).toISOString(), deleted }, 'retention: old request keys deleted');
  return { cutoff, deleted };
}

/** Deletes audit records older than retention.audit (default 90 days). */
export async function applyAuditRetention(ctx: ServiceContext, now = ctx.clock.now()): Promise<{ cutoff: number; deleted: number }> {
  const cutoff = now - ctx.config.retentionAuditMs;
  const deleted = await ctx.store.audit.deleteAuditBefore(cutoff);
  if (deleted > 0) ctx.logger.info({ cutoff: new Date(cutoff).toISOString(), deleted }, 'retention: old audit records deleted');
  return { cutoff, deleted };
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
