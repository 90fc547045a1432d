// Owns opaque paging cursors: a keyset position encoded so clients cannot depend on its layout.
// Must never accept a cursor it cannot decode: that is a 400, not an empty page.

import { InvalidQuery } from '../domain/errors.js';

export function encodeCursor(parts: Array<string | number>): string {
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

export function decodeCursor<T extends Array<string | number>>(raw: string, shape: Array<'number' | 'string'>): T {
  try {
    const parts = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(parts) && parts.length === shape.length && parts.every((p, i) => typeof p === shape[i])) {
      return parts as T;
    }
  } catch {
    // fall through to the error below
  }
  throw new InvalidQuery('cursor is not valid: pass the X-Next-Cursor value of a previous page unchanged');
}
