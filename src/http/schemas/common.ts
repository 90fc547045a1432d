// Owns the schemas every route shares: the error body and the set of error responses a route
// declares, and small builders (nullable values, open maps). Must never import the web framework:
// these are TypeBox values only, read by routes and by the contract tests.

import Type, { type Static, type TProperties, type TSchema } from 'typebox';
import { ERROR_CODES } from '../../domain/errors.js';

export const Nullable = <T extends TSchema>(t: T, description?: string) => Type.Union([t, Type.Null()], description ? { description } : {});

/**
 * A JSON object with any keys, each value of schema `t`, sent in its own key order. Not Type.Record:
 * its key pattern ^.*$ does not match a key with a line break, which the serializer would then drop.
 */
export const MapOf = <T extends TSchema>(t: T, description?: string) =>
  Type.Unsafe<Record<string, Static<T>>>({ type: 'object', additionalProperties: t, ...(description ? { description } : {}) });

const ERROR_FIELDS = {
  error: Type.String({ description: 'What went wrong, in words' }),
  code: Type.Optional(
    Type.Enum([...ERROR_CODES], {
      description: 'Machine code. Absent on the reference-compatible capture errors, which the reference answered with no code',
    }),
  ),
};
const REQUEST_ID = { requestId: Type.Optional(Type.String({ description: 'Also sent as the x-request-id header' })) };

const ERROR_DESCRIPTION =
  'The envelope { error, code, requestId } plus the fields of its code: event_id_conflict adds conflicts (and id); ' +
  'the reference-compatible capture errors keep the reference bodies: { error } (no_event_types, invalid_event_type, ' +
  'body_not_object, invalid_batch_body), { error, details } (validation_failed), { error, received, maxAllowed } ' +
  '(batch_too_large) and { error, validationErrors, validCount, invalidCount } (batch_validation_failed).';

/**
 * The error body. Open (additionalProperties), because a code may carry its own fields; `extra` names
 * some of them. Only `error` is required: the serializer writes required fields first, then the
 * others in this order, which is the order the bodies are built in.
 */
export function errorBody<P extends TProperties = Record<never, never>>(description: string, extra?: P) {
  return Type.Object(
    { ...ERROR_FIELDS, ...REQUEST_ID, ...(extra ?? ({} as P)) },
    {
      additionalProperties: true,
      description: `${description}. ${ERROR_DESCRIPTION}`,
    },
  );
}

export const ErrorBody = errorBody('An error');

const STATUS_TEXT = {
  400: 'Bad request: a parameter, the JSON or a reference-compatible capture check failed',
  401: 'Missing or invalid API key (code unauthorized)',
  403: "The API key is valid but lacks the scope this route needs (code forbidden; see the operation's x-meterhook-scope)",
  404: 'Not found (code not_found)',
  409: 'Conflict with the current state',
  413: 'Too large: the body (body_too_large) or the batch (batch_too_large)',
  415: 'Unsupported media type: send the body as application/json (code unsupported_media_type)',
  422: 'Events failed validation; nothing was stored',
  429: "Too many failed authentications from this address, or the API key's rate limit is reached (code rate_limited); honour Retry-After",
  500: 'Internal error (code internal_error)',
  503:
    'Unavailable for now: the store is busy, full or unreachable (store_unavailable) or ingest is overloaded (overloaded); ' +
    'honour Retry-After',
} as const;
export type ErrorStatus = keyof typeof STATUS_TEXT;

/** The error responses of a route, one shared body each, described by status. */
export function errorResponses<const S extends ErrorStatus>(...statuses: S[]): { [K in S]: typeof ErrorBody } {
  return Object.fromEntries(statuses.map((s) => [s, errorBody(STATUS_TEXT[s])])) as { [K in S]: typeof ErrorBody };
}

/**
 * Every route that takes an API key can answer these (403: the key lacks the route's scope; 429: the
 * address failed authentication too often).
 */
export const AUTHENTICATED = [401, 403, 429, 500] as const;
/** Routes that read or write the store can also answer 503 store_unavailable. */
export const STORE = [401, 403, 429, 500, 503] as const;
/** Routes that take a JSON body can also refuse it: malformed or empty (400), too large (413), not JSON (415). */
export const WITH_BODY = [400, 413, 415] as const;
