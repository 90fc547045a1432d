// Owns the mapping from errors to HTTP: one status per error code (codeToStatus), the errors routes
// throw (HttpError and its kinds), and the body of each. Compat errors keep the reference's exact bodies;
// every other error uses one envelope { error, code, requestId }. Must never answer 500 for bad input,
// nor give an error a status by anything but its code.

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from '../observability/metrics.js';
import { DomainError, type AnyDomainError, type ErrorCode } from '../domain/errors.js';

/** The status of every code; a code added to ErrorCode does not compile until it has one here. */
export const codeToStatus = {
  no_event_types: 503,
  invalid_event_type: 400,
  body_not_object: 400,
  validation_failed: 422,
  invalid_batch_body: 400,
  batch_too_large: 413,
  batch_validation_failed: 422,
  event_id_conflict: 409,
  invalid_idempotency_key: 400,
  idempotency_key_conflict: 409,
  overloaded: 503,
  store_unavailable: 503,
  invalid_query: 400,
  unauthorized: 401,
  forbidden: 403,
  rate_limited: 429,
  not_found: 404,
  delivery_busy: 409,
  last_admin_key: 409,
  malformed_json: 400,
  invalid_request: 400,
  // A framework 4xx the table does not know keeps the framework's own status (see mapError).
  bad_request: 400,
  body_too_large: 413,
  unsupported_media_type: 415,
  empty_body: 400,
  bad_content_length: 400,
  invalid_url: 400,
  internal_error: 500,
} as const satisfies Record<ErrorCode, number>;

export type ErrorBody = { error: string; code?: ErrorCode; requestId?: string } & Record<string, unknown>;

/**
 * An error a route (or hook) throws to answer with an error body: its code decides the status, and
 * the body is the envelope { error, code, requestId, ...extra }.
 */
export class HttpError extends Error {
  readonly statusCode: number;
  /** Response headers the answer carries, such as Retry-After. */
  headers?: Record<string, string>;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.statusCode = codeToStatus[code];
  }

  body(requestId: string): ErrorBody {
    return { error: this.message, code: this.code, requestId, ...this.extra };
  }
}

export class NotFound extends HttpError {
  constructor(message: string) {
    super('not_found', message);
  }
}

/** A 404 whose body has no request id: GET /metrics in a process without metrics has always answered so. */
export class NotFoundWithoutRequestId extends NotFound {
  override body(): ErrorBody {
    return { error: this.message, code: this.code };
  }
}

export class Unauthorized extends HttpError {
  constructor(message: string) {
    super('unauthorized', message);
  }
}

/** A valid key whose scopes do not include what the route needs. */
export class Forbidden extends HttpError {
  constructor(message: string) {
    super('forbidden', message);
  }
}

/** Too many failed authentications from one address, or a key over its rate limit: refused until Retry-After. */
export class RateLimited extends HttpError {
  constructor(message: string, retryAfterSeconds: number) {
    super('rate_limited', message);
    this.headers = { 'retry-after': String(retryAfterSeconds) };
  }
}

/** Revoking this key would leave no admin key at all (none from the environment either). */
export class LastAdminKey extends HttpError {
  constructor() {
    super(
      'last_admin_key',
      'This is the last active admin key and no key comes from METERHOOK_API_KEYS: create another admin key before revoking it',
    );
  }
}

export class DeliveryBusy extends HttpError {
  constructor(deliveryId: string) {
    super('delivery_busy', `delivery ${deliveryId} is being sent right now; try again shortly`);
  }
}

/** A query's event type is not configured; `allowed` lists the configured ones. */
export class EventTypeNotAllowed extends HttpError {
  constructor(message: string, allowed: string[]) {
    super('invalid_event_type', message, { allowed });
  }
}

export class MalformedJson extends HttpError {
  constructor(detail: string) {
    super('malformed_json', `Malformed JSON in request body: ${detail}`);
  }
}

interface Mapped {
  status: number;
  code: ErrorCode;
  body: ErrorBody;
  headers?: Record<string, string>;
}

/** How a domain error is answered: the reference's own body (compat), or the envelope with extra fields. */
type DomainShape = { compat: ErrorBody } | { extra?: Record<string, unknown>; retryAfterSeconds?: number };

/** One entry per domain error code, so a new domain error does not compile until it is given a body. */
const DOMAIN_SHAPES: { [E in AnyDomainError as E['code']]: (err: E) => DomainShape } = {
  no_event_types: (err) => ({ compat: { error: err.message } }),
  invalid_event_type: (err) => ({ compat: { error: err.message } }),
  body_not_object: (err) => ({ compat: { error: err.message } }),
  validation_failed: (err) => ({ compat: { error: err.message, details: err.details } }),
  invalid_batch_body: (err) => ({ compat: { error: err.message } }),
  batch_too_large: (err) => ({ compat: { error: err.message, received: err.received, maxAllowed: err.maxAllowed } }),
  batch_validation_failed: (err) => ({
    compat: {
      error: err.message,
      validationErrors: err.validationErrors,
      validCount: err.validCount,
      invalidCount: err.validationErrors.length,
    },
  }),
  event_id_conflict: (err) => ({
    extra:
      err.conflicts.length === 1 && err.conflicts[0]!.index === 0
        ? { id: err.conflicts[0]!.id, conflicts: err.conflicts }
        : { conflicts: err.conflicts },
  }),
  invalid_idempotency_key: () => ({}),
  idempotency_key_conflict: () => ({}),
  overloaded: (err) => ({ retryAfterSeconds: err.retryAfterSeconds }),
  store_unavailable: (err) => ({ retryAfterSeconds: err.retryAfterSeconds }),
  invalid_query: () => ({}),
};

function envelope(req: FastifyRequest, code: ErrorCode, message: string, extra: Record<string, unknown> = {}): ErrorBody {
  return { error: message, code, requestId: req.id, ...extra };
}

function mapDomain(req: FastifyRequest, err: DomainError): Mapped {
  const shapeOf = DOMAIN_SHAPES[err.code] as (e: DomainError) => DomainShape;
  const shape = shapeOf(err);
  const status = codeToStatus[err.code];
  if ('compat' in shape) return { status, code: err.code, body: shape.compat };
  const m: Mapped = { status, code: err.code, body: envelope(req, err.code, err.message, shape.extra) };
  if (shape.retryAfterSeconds !== undefined) m.headers = { 'retry-after': String(shape.retryAfterSeconds) };
  return m;
}

/** Framework errors with a code of their own; any other framework 4xx is bad_request with its own status. */
const FRAMEWORK_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'body_too_large', message: 'Request body is too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported_media_type', message: 'Unsupported Media Type: send the body as application/json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'empty_body', message: 'Request body must not be empty when Content-Type is application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'bad_content_length', message: 'Content-Length does not match the body' },
  // The router could not decode the path: a malformed escape, or one that is not UTF-8 (an encoded lone surrogate).
  FST_ERR_BAD_URL: {
    code: 'invalid_url',
    message: 'The URL path is not valid percent-encoded UTF-8 (a lone UTF-16 surrogate, for example, cannot be encoded)',
  },
};

export function mapError(req: FastifyRequest, err: unknown): Mapped {
  if (err instanceof HttpError) {
    const m: Mapped = { status: codeToStatus[err.code], code: err.code, body: err.body(req.id) };
    if (err.headers) m.headers = err.headers;
    return m;
  }
  if (err instanceof DomainError) return mapDomain(req, err);
  const fe = err as FastifyError;
  if (fe && Array.isArray(fe.validation)) {
    return { status: codeToStatus.invalid_request, code: 'invalid_request', body: envelope(req, 'invalid_request', fe.message) };
  }
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const known = fe.code ? FRAMEWORK_ERRORS[fe.code] : undefined;
    if (known) return { status: codeToStatus[known.code], code: known.code, body: envelope(req, known.code, known.message) };
    return { status: fe.statusCode, code: 'bad_request', body: envelope(req, 'bad_request', fe.message) };
  }
  return { status: codeToStatus.internal_error, code: 'internal_error', body: envelope(req, 'internal_error', 'Internal server error') };
}

/**
 * Capture routes count refused events by reason: a rejected batch refuses each of its events. A
 * request refused for its API key is not counted: its events were never looked at.
 */
function countRejected(req: FastifyRequest, m: Mapped, metrics: Metrics | undefined): void {
  const route = req.routeOptions?.url;
  if (!metrics || (route !== '/usage/:eventType' && route !== '/usagebatch') || m.status < 400) return;
  if (m.code === 'unauthorized' || m.code === 'forbidden' || m.code === 'rate_limited') return;
  const n = Array.isArray(req.body) ? Math.max(1, req.body.length) : 1;
  metrics.eventsRejected.inc({ reason: m.code }, n);
}

export function sendError(req: FastifyRequest, reply: FastifyReply, err: unknown, metrics?: Metrics): FastifyReply {
  const m = mapError(req, err);
  countRejected(req, m, metrics);
  if (m.status >= 500 && !(err instanceof DomainError)) req.log.error({ err }, 'unhandled error');
  if (err instanceof DomainError && err.code === 'store_unavailable') req.log.warn({ err: err.cause ?? err }, err.message);
  if (m.headers) void reply.headers(m.headers);
  return reply.code(m.status).send(m.body);
}
