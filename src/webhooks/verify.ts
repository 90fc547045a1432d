// Owns verification of received webhooks, both schemes, over the raw body bytes: what the
// webhook-receiver command and users' receivers run. Must never accept an unsigned or stale request.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { standardKey } from './signing.js';

export const DEFAULT_TOLERANCE_SECONDS = 300;

export type Headers = Record<string, string | string[] | undefined>;

export interface Verification {
  ok: boolean;
  scheme: 'standard' | 'legacy' | 'both' | null;
  reason?: string;
  msgId?: string;
}

const one = (h: Headers, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function fresh(ts: string | undefined, now: number, tolerance: number): string | undefined {
  if (!ts || !/^\d+$/.test(ts)) return 'missing or malformed timestamp';
  if (Math.abs(now / 1000 - Number(ts)) > tolerance) return `timestamp ${ts} is more than ${tolerance} s from this clock`;
  return undefined;
}

/** Standard Webhooks: any `v1,<base64>` entry must match HMAC(key, "<id>.<ts>.<body>"). */
export function verifyStandard(
  secret: string,
  rawBody: Buffer | string,
  h: Headers,
  now = Date.now(),
  tolerance = DEFAULT_TOLERANCE_SECONDS,
): string | undefined {
  const id = one(h, 'webhook-id');
  const ts = one(h, 'webhook-timestamp');
  const sig = one(h, 'webhook-signature');
  if (!id || !sig) return 'missing webhook-id or webhook-signature';
  const stale = fresh(ts, now, tolerance);
  if (stale) return stale;
  const expected = createHmac('sha256', standardKey(secret)).update(`${id}.${ts}.`).update(rawBody).digest('base64');
  const match = sig.split(' ').some((entry) => entry.startsWith('v1,') && equal(entry.slice(3), expected));
  return match ? undefined : 'webhook-signature does not match';
}

/** The reference's legacy scheme: `v1=<hex>` of HMAC(utf8(secret), "<ts>.<body>"). */
export function verifyLegacy(
  secret: string,
  rawBody: Buffer | string,
  h: Headers,
  now = Date.now(),
  tolerance = DEFAULT_TOLERANCE_SECONDS,
): string | undefined {
  const ts = one(h, 'x-webhook-timestamp');
  const sig = one(h, 'x-webhook-signature');
  if (!sig) return 'missing x-webhook-signature';
  const stale = fresh(ts, now, tolerance);
  if (stale) return stale;
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${ts}.`).update(rawBody).digest('hex');
  return equal(sig, `v1=${expected}`) ? undefined : 'x-webhook-signature does not match';
}

/** Accepts when every scheme present verifies and at least one is present. */
export function verifyWebhook(
  secret: string,
  rawBody: Buffer | string,
  h: Headers,
  now = Date.now(),
  tolerance = DEFAULT_TOLERANCE_SECONDS,
): Verification {
  const hasStandard = one(h, 'webhook-signature') !== undefined;
  const hasLegacy = one(h, 'x-webhook-signature') !== undefined;
  if (!hasStandard && !hasLegacy) return { ok: false, scheme: null, reason: 'no signature headers' };
  const s = hasStandard ? verifyStandard(secret, rawBody, h, now, tolerance) : undefined;
  const l = hasLegacy ? verifyLegacy(secret, rawBody, h, now, tolerance) : undefined;
  const scheme = hasStandard && hasLegacy ? 'both' : hasStandard ? 'standard' : 'legacy';
  const reason = s ?? l;
  // Only the standard signature covers webhook-id; with the legacy scheme alone the id is unsigned.
  return reason ? { ok: false, scheme, reason } : { ok: true, scheme, msgId: hasStandard ? one(h, 'webhook-id') : undefined };
}
