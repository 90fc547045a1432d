// Owns request idempotency keys (the Idempotency-Key header of POST /usagebatch): which keys are
// valid, and the canonical hash that tells a retry of the same body from a different request.
// Must never touch storage or HTTP; how long keys are kept is the retention service's concern.

import { createHash } from 'node:crypto';

export const REQUEST_KEY_MAX = 128;

/** 1 to 128 printable ASCII characters (space to tilde): what every HTTP stack carries unchanged. */
const VALID_KEY = /^[\x20-\x7e]{1,128}$/;

export function isValidRequestKey(key: string): boolean {
  return VALID_KEY.test(key);
}

export const INVALID_REQUEST_KEY = `Idempotency-Key must be 1 to ${REQUEST_KEY_MAX} printable ASCII characters`;

/** A key claimed by a request: the unit that stores the request's events records it in the same transaction. */
export interface RequestKey {
  key: string;
  /** requestBodyHash of the request body. */
  hash: string;
  createdAt: number;
}

/**
 * JSON text of a parsed JSON value with every object's keys in code-unit order, written directly: a
 * 1000-event batch is hashed on the request path, so no sorted copy of each object is built.
 */
export function canonicalJson(v: unknown): string {
  if (typeof v !== 'object' || v === null) return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) s += (i === 0 ? '' : ',') + canonicalJson(v[i]);
    return `${s}]`;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  // Insertion sort: objects here have a handful of keys, often nearly in order.
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  let s = '{';
  let first = true;
  for (const k of keys) {
    // An own "__proto__" key (JSON.parse makes one) is read as data, like any other.
    const x = o[k];
    if (x === undefined) continue;
    s += `${first ? '' : ','}${JSON.stringify(k)}:${canonicalJson(x)}`;
    first = false;
  }
  return `${s}}`;
}

/**
 * SHA-256 (hex) of the parsed body with every object's keys sorted: key order and whitespace do not
 * make a different request, any other difference (a value, an element, their order) does.
 */
export function requestBodyHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}
