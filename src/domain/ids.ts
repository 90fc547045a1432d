// Owns every identifier meterhook mints: prefixed, sortable where order matters, deterministic where
// a retry must land on the same row. Must never use Math.random for anything a client relies on.

import { createHash, randomBytes } from 'node:crypto';

const B32 = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford, lowercase: sorts like the numbers it encodes

function base32(bytes: Uint8Array, chars: number): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      bits -= 5;
      out += B32[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

/** A sortable random id: 48-bit millisecond time then 80 random bits (ULID layout). */
export function sortableId(prefix: string, nowMs: number): string {
  const buf = Buffer.alloc(16);
  buf.writeUIntBE(nowMs, 0, 6);
  randomBytes(10).copy(buf, 6);
  return `${prefix}_${base32(buf, 26)}`;
}

/** Stable id for content that may be written more than once (a retried finalization, a re-sent message). */
export function deterministicId(prefix: string, ...parts: Array<string | number>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(String(p)).update('\u0000');
  return `${prefix}_${base32(h.digest(), 26)}`;
}

/**
 * Deterministic like deterministicId, but led by a 48-bit time so that ids of the same period sort
 * (and are stored) together: a close writes adjacent B-tree pages instead of random ones.
 */
export function timedDeterministicId(prefix: string, timeMs: number, ...parts: Array<string | number>): string {
  const time = Buffer.alloc(6);
  time.writeUIntBE(Math.max(0, timeMs), 0, 6);
  const h = createHash('sha256');
  for (const p of parts) h.update(String(p)).update('\u0000');
  return `${prefix}_${base32(time, 10)}${base32(h.digest(), 16)}`;
}

/** Event ids follow the arrival sequence, so sorting ids sorts by arrival and costs nothing to mint. */
export function eventIdFromSeq(seq: number): string {
  return `evt_${seq.toString(36).padStart(11, '0')}`;
}

// A random per-process prefix plus a counter: unique across processes, and no random bytes (a
// syscall-backed buffer fill) on every request.
const REQUEST_PREFIX = randomBytes(6).toString('base64url');
let requestCounter = 0;

export function requestId(): string {
  requestCounter = (requestCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `req_${REQUEST_PREFIX}${requestCounter.toString(36)}`;
}
