// Owns the short-lived tokens of Stripe's meter event sessions: minted for an API key, good for 15 minutes
// and for the meter event stream only, checked without any stored state (an HMAC over the expiry, keyed by
// the key's hash), so every meterhook process sharing the keys accepts them and a revoked key's tokens die
// with it. Must never put a key or a key's hash in a token, nor accept a token past its expiry.

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ApiKeyVerifier, KeyGrant } from './api-keys.js';
import { hashKey } from './api-keys.js';

export const SESSION_TOKEN_PREFIX = 'mhes_';
/** Stripe's own session lifetime. */
export const SESSION_TTL_MS = 15 * 60_000;

function mac(keyHash: Buffer, expiresAt: number): Buffer {
  return createHmac('sha256', keyHash).update(`meter_event_session.${expiresAt}`).digest();
}

/** A token for the key presented now, and when it expires (epoch ms). */
export function mintSessionToken(presentedKey: string, now: number): { token: string; expiresAt: number } {
  const expiresAt = now + SESSION_TTL_MS;
  const sig = mac(Buffer.from(hashKey(presentedKey), 'hex'), expiresAt).toString('base64url');
  return { token: `${SESSION_TOKEN_PREFIX}${expiresAt.toString(36)}_${sig}`, expiresAt };
}

export function looksLikeSessionToken(credential: string): boolean {
  return credential.startsWith(SESSION_TOKEN_PREFIX);
}

export type SessionCheck = 'valid' | 'expired' | 'invalid';

/** Checks a token's signature against every known key, then its expiry; a valid token carries its key's grant. */
export async function checkSessionToken(
  token: string,
  keys: ApiKeyVerifier,
  now: number,
): Promise<{ check: SessionCheck; grant?: KeyGrant }> {
  const m = /^mhes_([0-9a-z]{1,12})_([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return { check: 'invalid' };
  const expiresAt = Number.parseInt(m[1]!, 36);
  const presented = Buffer.from(m[2]!, 'base64url');
  const signed = await keys.verifyDerived((hash) => timingSafeEqual(mac(hash, expiresAt), presented), 'ingest');
  if (!signed) return { check: 'invalid' };
  if (signed.expiresAt !== null && now >= signed.expiresAt) return { check: 'invalid' };
  return now < expiresAt ? { check: 'valid', grant: signed } : { check: 'expired' };
}
