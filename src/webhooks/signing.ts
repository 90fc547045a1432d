// Owns webhook signatures: Standard Webhooks (v1, base64, covers the id) and the reference's legacy
// scheme (v1=, hex, no id). Must never log or return a secret, and must sign the exact bytes sent.

import { createHash, createHmac } from 'node:crypto';

const WHSEC = /^whsec_([A-Za-z0-9+/=]+)$/;

/**
 * The Standard Webhooks key for a configured secret string: a whsec_<base64> secret that decodes to
 * at least 16 bytes is used decoded (so `new Webhook(secret)` works at the receiver); anything else
 * is used as its UTF-8 bytes.
 */
export function standardKey(secret: string): Buffer {
  const m = WHSEC.exec(secret);
  if (m) {
    const decoded = Buffer.from(m[1]!, 'base64');
    if (decoded.length >= 16) return decoded;
  }
  return Buffer.from(secret, 'utf8');
}

/**
 * Names a secret without revealing it: `sha256:` and the first 8 bytes (16 hex digits) of SHA-256 over the
 * secret's UTF-8 bytes exactly as configured, so an operator can tell which secret is in use
 * (`printf %s "$SECRET" | sha256sum | cut -c1-16`) and notice a rotation.
 */
export function secretFingerprint(secret: string): string {
  return `sha256:${createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 16)}`;
}

/** The whsec_ form a Standard Webhooks receiver must be given for this secret (never returned by any route). */
export function standardSecretForm(secret: string): string {
  return `whsec_${standardKey(secret).toString('base64')}`;
}

/** `v1,<base64>` for each key, current key first, separated by single spaces (rotation). */
export function signStandard(secrets: string[], msgId: string, timestamp: number, body: string): string {
  const content = `${msgId}.${timestamp}.${body}`;
  return secrets.map((s) => `v1,${createHmac('sha256', standardKey(s)).update(content, 'utf8').digest('base64')}`).join(' ');
}

/** The reference scheme: hex HMAC-SHA256 keyed by the secret string's UTF-8 bytes over "<ts>.<body>". */
export function signLegacy(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${timestamp}.${body}`, 'utf8').digest('hex')}`;
}

export interface SignedHeadersInput {
  msgId: string;
  deliveryId: string;
  eventType: string;
  attempt: number;
  timestamp: number;
  body: string;
  /** Current secret first, then secrets still accepted during a rotation. */
  secrets: string[];
  legacyHeaders: boolean;
  userAgent: string;
}

export function signedHeaders(i: SignedHeadersInput): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': i.userAgent,
    'webhook-id': i.msgId,
    'webhook-timestamp': String(i.timestamp),
    'webhook-signature': signStandard(i.secrets, i.msgId, i.timestamp, i.body),
    'x-meterhook-event-type': i.eventType,
    'x-meterhook-delivery-id': i.deliveryId,
    'x-meterhook-attempt': String(i.attempt),
  };
  if (i.legacyHeaders) {
    h['x-webhook-timestamp'] = String(i.timestamp);
    h['x-webhook-signature'] = signLegacy(i.secrets[0]!, i.timestamp, i.body);
  }
  return h;
}
