// Owns the mapping from domain and framework errors to HTTP: compat routes keep the reference's exact
// bodies; every other error uses one envelope { error, code, requestId }. Must never answer 500 for bad input.

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from '../observability/metrics.js';
import {
  BatchBodyInvalid, BatchTooLarge, BatchValidationFailed, BodyNotObject, DomainError, EventIdConflict,
  EventValidationFailed, InvalidQuery, InvalidRequestKey, NoEventTypes, Overloaded, RequestKeyConflict, StoreUnavailable,
  UnknownEventType,
} from '../domain/errors.js';

/** Compat bodies carry no code; the error class still says why. */
function codeOf(err: unknown): string {
  return err instanceof DomainError ? err.code : 'bad_request';
}

export class MalformedJson extends Error {
  readonly statusCode = 400;
  readonly code = 'malformed_json';
  constructor(detail: string) {
    super(`Malformed JSON in request body: ${detail}`);
  }
}

interface Mapped {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

function envelope(req: FastifyRequest, status: number, code: string, message: string, extra: Record<string, unknown> = {}): Mapped {
  return { status, body: { error: message, code, requestId: req.id, ...extra } };
}

function mapDomain(req: FastifyRequest, err: DomainError): Mapped {
  if (err instanceof NoEventTypes) return { status: 503, body: { error: err.message } };
  if (err instanceof UnknownEventType) return { status: 400, body: { error: err.message } };
  if (err instanceof BodyNotObject) return { status: 400, body: { error: err.message } };
  if (err instanceof EventValidationFailed) return { status: 422, body: { error: err.message, details: err.details } };
  if (err instanceof BatchBodyInvalid) return { status: 400, body: { error: err.message } };
  if (err instanceof BatchTooLarge) {
    return { status: 413, body: { error: err.message, received: err.received, maxAllowed: err.maxAllowed } };
  }
  if (err instanceof BatchValidationFailed) {
    return {
      status: 422,
      body: {
        error: err.message,
        validationErrors: err.validationErrors,
        validCount: err.validCount,
        invalidCount: err.validationErrors.length,
      },
    };
  }
  if (err instanceof EventIdConflict) {
    const extra = err.conflicts.length === 1 && err.conflicts[0]!.index === 0
      ? { id: err.conflicts[0]!.id, conflicts: err.conflicts }
      : { conflicts: err.conflicts };
    return envelope(req, 409, err.code, err.message, extra);
  }
  if (err instanceof Overloaded || err instanceof StoreUnavailable) {
    const m = envelope(req, 503, err.code, err.message);
    m.headers = { 'retry-after': String(err.retryAfterSeconds) };
    return m;
  }
  if (err instanceof InvalidQuery || err instanceof InvalidRequestKey) return envelope(req, 400, err.code, err.message);
  if (err instanceof RequestKeyConflict) return envelope(req, 409, err.code, err.message);
  return envelope(req, 400, err.code, err.message);
}

const FRAMEWORK_ERRORS: Record<string, { code: string; message: string }> = {
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
  if (err instanceof DomainError) return mapDomain(req, err);
  if (err instanceof MalformedJson) return envelope(req, 400, err.code, err.message);
  const fe = err as FastifyError;
  if (fe && Array.isArray(fe.validation)) {
    return envelope(req, 400, 'invalid_request', fe.message);
  }
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const known = fe.code ? FRAMEWORK_ERRORS[fe.code] : undefined;
    return envelope(req, fe.statusCode, known?.code ?? 'bad_request', known?.message ?? fe.message);
  }
  return envelope(req, 500, 'internal_error', 'Internal server error');
}

/** Capture routes count refused events by reason: a rejected batch refuses each of its events. */
function countRejected(req: FastifyRequest, status: number, code: string, metrics: Metrics | undefined): void {
  const route = req.routeOptions?.url;
  if (!metrics || (route !== '/usage/:eventType' && route !== '/usagebatch') || status < 400) return;
  const n = Array.isArray(req.body) ? Math.max(1, req.body.length) : 1;
  metrics.eventsRejected.inc({ reason: code }, n);
}

export function sendError(req: FastifyRequest, reply: FastifyReply, err: unknown, metrics?: Metrics): FastifyReply {
  const m = mapError(req, err);
  countRejected(req, m.status, typeof m.body.code === 'string' ? m.body.code : codeOf(err), metrics);
  if (m.status >= 500 && !(err instanceof DomainError)) req.log.error({ err }, 'unhandled error');
  if (err instanceof StoreUnavailable) req.log.warn({ err: err.cause ?? err }, err.message);
  if (m.headers) void reply.headers(m.headers);
  return reply.code(m.status).send(m.body);
}
