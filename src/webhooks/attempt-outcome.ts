// Owns what one attempt's result means for its delivery: success, a scheduled retry, giving up, or a
// disabled endpoint. Must never do I/O: the dispatcher records what this decides.

import { isSuccessStatus, type AttemptOutcome, type ClaimedDelivery } from '../domain/deliveries.js';
import { decideRetry, parseRetryAfter, type RetryPolicy } from './retry-policy.js';
import type { SendResult } from './sender.js';

export function attemptOutcome(
  policy: RetryPolicy,
  d: ClaimedDelivery,
  r: SendResult & { dryRun?: boolean },
  o: { now: number; attempt: number; manual: boolean; rng?: () => number },
): AttemptOutcome & { reason?: string } {
  if (r.dryRun || isSuccessStatus(r.statusCode)) {
    return { status: 'succeeded', nextAttemptAt: null, deliveredAt: o.now, endpoint: 'success' };
  }
  if (r.statusCode === 410) {
    return { status: 'cancelled', nextAttemptAt: null, deliveredAt: null, endpoint: 'gone', reason: '410 Gone: endpoint disabled' };
  }
  if (o.manual) {
    // A manual replay is one extra attempt: it never moves the delivery backwards or reschedules it.
    const status = d.previousStatus === 'sending' ? 'retry_scheduled' : d.previousStatus;
    return { status, nextAttemptAt: d.nextAttemptAt ?? o.now, deliveredAt: null, endpoint: 'failure' };
  }
  const honoursRetryAfter = r.statusCode === 429 || r.statusCode === 503;
  const retryAfterMs = honoursRetryAfter ? parseRetryAfter(r.retryAfter, o.now) : null;
  const next = decideRetry(policy, { failedAttempts: o.attempt, now: o.now, deadlineAt: d.deadlineAt, retryAfterMs, rng: o.rng });
  if ('retryAt' in next) return { status: 'retry_scheduled', nextAttemptAt: next.retryAt, deliveredAt: null, endpoint: 'failure' };
  return {
    status: 'failed',
    nextAttemptAt: null,
    deliveredAt: null,
    endpoint: 'failure',
    reason: next.give_up === 'deadline' ? 'deadline passed' : 'retry schedule used up',
  };
}

/**
 * How long an attempt may wait for its receiver: the endpoint's timeout, cut so the attempt ends and is
 * recorded before its lease runs out. An attempt that outlived its lease would be sent again by whichever
 * worker claims the delivery next. Null when too little lease is left to send at all: the attempt is
 * skipped and the delivery is claimed again once the lease expires.
 */
export function attemptBudgetMs(o: { timeoutMs: number; leaseMs: number; leaseUntil: number | null; now: number }): number | null {
  if (o.leaseUntil === null) return o.timeoutMs;
  const margin = Math.max(250, Math.min(2000, Math.floor(o.leaseMs / 5)));
  const left = o.leaseUntil - o.now - margin;
  if (left < 100) return null;
  return Math.min(o.timeoutMs, left);
}
