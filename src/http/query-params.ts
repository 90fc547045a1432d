// Owns the parsing of shared query parameters (instants, limits, cursors) into typed values.
// Must never fall back to string comparison, nor pass on an instant outside the supported range:
// a value that does not parse, or lies outside 1970..9999, is a 400 naming the parameter.

import Type from 'typebox';
import { InvalidQuery } from '../domain/errors.js';
import { isSupportedInstant, parseInstant, SUPPORTED_INSTANTS } from '../domain/timestamps.js';
import { MAX_CURSOR_LENGTH } from './cursor.js';

export const MAX_LIMIT = 1000;
export const DEFAULT_LIMIT = 100;

export const LimitParam = Type.Optional(
  Type.Integer({ minimum: 1, description: `Page size, default ${DEFAULT_LIMIT}; values above ${MAX_LIMIT} are capped` }),
);
export const InstantParam = (what: string) =>
  Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 64,
      description: `${what}: ISO-8601 with offset, YYYY-MM-DD (UTC), or epoch milliseconds, ${SUPPORTED_INSTANTS}`,
    }),
  );
export const CursorParam = Type.Optional(
  Type.String({ minLength: 1, maxLength: MAX_CURSOR_LENGTH, description: 'X-Next-Cursor of the previous page, unchanged' }),
);

/**
 * An identifier in a path or query string. NUL is refused everywhere: PostgreSQL text cannot hold it,
 * and one store must not accept what the other rejects.
 */
export const IdParam = (maxLength: number, description?: string) =>
  Type.String({ minLength: 1, maxLength, pattern: '^[^\\u0000]*$', ...(description ? { description } : {}) });

export function limitOf(v: number | undefined): number {
  return Math.min(v ?? DEFAULT_LIMIT, MAX_LIMIT);
}

/** An instant from a query string (or a body field of the same form); date-only values mean UTC midnight. */
export function instantParam(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = /^\d{4}-\d{2}-\d{2}$/.test(v) ? parseInstant(`${v}T00:00:00Z`) : parseInstant(v);
  if (Number.isNaN(t)) {
    throw new InvalidQuery(
      `${name} must be an ISO-8601 instant with offset (e.g. 2026-01-12T00:00:00Z), a date (YYYY-MM-DD) or epoch milliseconds`,
    );
  }
  // Beyond it, period math and Date formatting overflow, and PostgreSQL's bigint can be exceeded.
  if (!isSupportedInstant(t)) throw new InvalidQuery(`${name} must be an instant ${SUPPORTED_INSTANTS}`);
  return t;
}
