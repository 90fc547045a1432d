// Owns the reference's per-aggregation webhookStatus summary, derived from the deliveries of the
// newest message. Must never be stored as one shared object that endpoints overwrite.

import type { DeliveryRecord } from '../domain/deliveries.js';
import type { WebhookStatus } from '../domain/records.js';

export function summarizeWebhookStatus(deliveries: DeliveryRecord[] | undefined): WebhookStatus {
  if (!deliveries || deliveries.length === 0) return { delivered: false, attempts: 0 };
  const delivered = deliveries.every((d) => d.status === 'succeeded');
  const status: WebhookStatus = { delivered, attempts: deliveries.reduce((n, d) => n + d.attempts, 0) };
  if (delivered) {
    const at = Math.max(...deliveries.map((d) => d.deliveredAt ?? 0));
    if (at > 0) status.deliveredAt = new Date(at).toISOString();
  }
  const failing = deliveries.filter((d) => d.status !== 'succeeded' && d.lastError).sort((a, b) => b.updatedAt - a.updatedAt)[0];
  if (failing?.lastError) status.lastError = failing.lastError;
  if (deliveries.some((d) => d.dryRun)) status.dryRun = true;
  return status;
}
