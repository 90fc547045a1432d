// Owns opaque paging cursors: a keyset position encoded so clients cannot depend on its layout.
// Must never accept a cursor it did not issue: anything that is not exactly what encodeCursor makes
// of a valid position (wrong types, unsafe or out-of-range numbers, extra fields, bad UTF-8) is a 400,
// never an empty page and never a value that reaches a store unchecked.

import { InvalidQuery } from '../domain/errors.js';

/**
 * Kinds of cursor fields: an epoch-ms instant (the stored times are inside the supported range; a
 * week's start may lie a few days before 1970), an event sequence number, or a record id.
 */
export type CursorField = 'instant' | 'seq' | 'id';
type FieldValue<F extends CursorField> = F extends 'id' ? string : number;
export type CursorValues<S extends readonly CursorField[]> = { -readonly [K in keyof S]: FieldValue<S[K]> };

/** Longest id a cursor carries: customer ids are at most 256 UTF-16 units; other ids are shorter. */
export const MAX_CURSOR_ID_LENGTH = 256;
/**
 * Longest cursor accepted. The longest one issued is a customer cursor: each UTF-16 unit of the id is
 * at most 6 bytes of JSON (`\u0001`, a lone surrogate escaped), so 256 units make 1,540 bytes, 2,054
 * characters of base64url; a test checks the worst case of every shape against this bound.
 */
export const MAX_CURSOR_LENGTH = 4096;

const INSTANT_LIMIT = 8.64e15;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function fieldOk(kind: CursorField, v: unknown): boolean {
  switch (kind) {
    case 'instant':
      return typeof v === 'number' && Number.isSafeInteger(v) && Math.abs(v) <= INSTANT_LIMIT;
    case 'seq':
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    case 'id':
      return typeof v === 'string' && v.length >= 1 && v.length <= MAX_CURSOR_ID_LENGTH && !v.includes('\u0000') && !LONE_SURROGATE.test(v);
    default:
      return false;
  }
}

export function encodeCursor(parts: Array<string | number>): string {
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

function invalid(): InvalidQuery {
  return new InvalidQuery('cursor is not valid: pass the X-Next-Cursor value of a previous page unchanged');
}

export function decodeCursor<const S extends readonly CursorField[]>(raw: string, shape: S): CursorValues<S> {
  if (typeof raw !== 'string' || raw.length > MAX_CURSOR_LENGTH || !BASE64URL.test(raw)) throw invalid();
  let parts: unknown;
  try {
    parts = JSON.parse(utf8.decode(Buffer.from(raw, 'base64url')));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parts) || parts.length !== shape.length || !parts.every((p, i) => fieldOk(shape[i]!, p))) throw invalid();
  // Only the exact encoding of these values is one this server issued (no padding, spacing, 1.0, escapes).
  if (encodeCursor(parts as Array<string | number>) !== raw) throw invalid();
  return parts as CursorValues<S>;
}
