// The closed error contract: every ErrorCode has a status, every domain error answers with its code's
// status and its documented body, and an error nobody classified is still a 500 with the envelope.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FastifyRequest } from 'fastify';
import {
  BatchBodyInvalid,
  BatchTooLarge,
  BatchValidationFailed,
  BodyNotObject,
  DOMAIN_ERROR_CODES,
  ERROR_CODES,
  EventIdConflict,
  EventValidationFailed,
  InvalidQuery,
  InvalidRequestKey,
  NoEventTypes,
  Overloaded,
  RequestKeyConflict,
  StoreUnavailable,
  UnknownEventType,
  type AnyDomainError,
} from '../../src/domain/errors.js';
import {
  codeToStatus,
  DeliveryBusy,
  EventTypeNotAllowed,
  HttpError,
  MalformedJson,
  mapError,
  NotFound,
  NotFoundWithoutRequestId,
  RateLimited,
  Unauthorized,
} from '../../src/http/errors.js';

const req = { id: 'req-1' } as FastifyRequest;

/** One instance of every domain error class, with the body the reference (or the envelope) gives it. */
const DOMAIN_CASES: Array<{ err: AnyDomainError; status: number; body: Record<string, unknown>; retryAfter?: string }> = [
  { err: new NoEventTypes(), status: 503, body: { error: 'Service misconfigured: no event types available' } },
  {
    err: new UnknownEventType('Invalid event type: x. Must be one of: a', 'x', ['a']),
    status: 400,
    body: { error: 'Invalid event type: x. Must be one of: a' },
  },
  { err: new BodyNotObject(), status: 400, body: { error: 'Request body must be a JSON object' } },
  {
    err: new EventValidationFailed(['value is required']),
    status: 422,
    body: { error: 'Validation failed', details: ['value is required'] },
  },
  { err: new BatchBodyInvalid('Events array cannot be empty'), status: 400, body: { error: 'Events array cannot be empty' } },
  {
    err: new BatchTooLarge(1001, 1000),
    status: 413,
    body: { error: 'Batch size exceeds maximum limit of 1000 events', received: 1001, maxAllowed: 1000 },
  },
  {
    err: new BatchValidationFailed([{ index: 1, errors: ['value is required'] }], 2),
    status: 422,
    body: {
      error: 'Validation failed for some events',
      validationErrors: [{ index: 1, errors: ['value is required'] }],
      validCount: 2,
      invalidCount: 1,
    },
  },
  {
    err: new EventIdConflict([{ index: 0, id: 'e1' }]),
    status: 409,
    body: {
      error: 'Event id conflict: "e1" was already used for an event with different content',
      code: 'event_id_conflict',
      requestId: 'req-1',
      id: 'e1',
      conflicts: [{ index: 0, id: 'e1' }],
    },
  },
  {
    err: new EventIdConflict([{ index: 2, id: 'e1' }]),
    status: 409,
    body: {
      error: 'Event id conflict: "e1" was already used for an event with different content',
      code: 'event_id_conflict',
      requestId: 'req-1',
      conflicts: [{ index: 2, id: 'e1' }],
    },
  },
  { err: new InvalidRequestKey('bad key'), status: 400, body: { error: 'bad key', code: 'invalid_idempotency_key', requestId: 'req-1' } },
  {
    err: new RequestKeyConflict('k'),
    status: 409,
    body: { error: 'Idempotency-Key "k" was used with a different request body', code: 'idempotency_key_conflict', requestId: 'req-1' },
  },
  {
    err: new Overloaded(2),
    status: 503,
    retryAfter: '2',
    body: { error: 'Ingest queue is full; retry shortly', code: 'overloaded', requestId: 'req-1' },
  },
  {
    err: new StoreUnavailable(7, undefined, 'the disk is full'),
    status: 503,
    retryAfter: '7',
    body: { error: 'Storage is temporarily unavailable (the disk is full); retry shortly', code: 'store_unavailable', requestId: 'req-1' },
  },
  { err: new InvalidQuery('from is bad'), status: 400, body: { error: 'from is bad', code: 'invalid_query', requestId: 'req-1' } },
];

describe('error codes', () => {
  it('give every ErrorCode exactly one status, a 4xx or 5xx, and nothing else a status', () => {
    assert.deepEqual(Object.keys(codeToStatus).sort(), [...ERROR_CODES].sort());
    assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length, 'codes are unique');
    for (const code of ERROR_CODES) {
      const status = codeToStatus[code];
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: ${status}`);
    }
  });

  it("answer every domain error with its code's status and its documented body", () => {
    assert.deepEqual(new Set(DOMAIN_CASES.map((c) => c.err.code)), new Set(DOMAIN_ERROR_CODES), 'every domain code is covered here');
    for (const c of DOMAIN_CASES) {
      const m = mapError(req, c.err);
      assert.equal(m.status, c.status, c.err.code);
      assert.equal(m.status, codeToStatus[c.err.code], `${c.err.code} follows the table`);
      assert.equal(m.code, c.err.code);
      assert.equal(JSON.stringify(m.body), JSON.stringify(c.body), `${c.err.code}: body and its key order`);
      assert.deepEqual(m.headers, c.retryAfter === undefined ? undefined : { 'retry-after': c.retryAfter });
    }
  });

  it('answer thrown HTTP errors with the envelope { error, code, requestId } and their status', () => {
    const cases: Array<[HttpError, number, Record<string, unknown>]> = [
      [new NotFound('delivery d1 not found'), 404, { error: 'delivery d1 not found', code: 'not_found', requestId: 'req-1' }],
      [new Unauthorized('Invalid API key'), 401, { error: 'Invalid API key', code: 'unauthorized', requestId: 'req-1' }],
      [
        new DeliveryBusy('d1'),
        409,
        { error: 'delivery d1 is being sent right now; try again shortly', code: 'delivery_busy', requestId: 'req-1' },
      ],
      [
        new MalformedJson('not valid JSON at position 3'),
        400,
        { error: 'Malformed JSON in request body: not valid JSON at position 3', code: 'malformed_json', requestId: 'req-1' },
      ],
      [
        new EventTypeNotAllowed('eventType must be one of: a', ['a']),
        400,
        { error: 'eventType must be one of: a', code: 'invalid_event_type', requestId: 'req-1', allowed: ['a'] },
      ],
      [
        new NotFoundWithoutRequestId('metrics are not enabled in this process'),
        404,
        { error: 'metrics are not enabled in this process', code: 'not_found' },
      ],
      [new HttpError('invalid_query', 'x', { hint: 1 }), 400, { error: 'x', code: 'invalid_query', requestId: 'req-1', hint: 1 }],
      [
        new RateLimited('Too many failed authentications', 20),
        429,
        { error: 'Too many failed authentications', code: 'rate_limited', requestId: 'req-1' },
      ],
    ];
    for (const [err, status, body] of cases) {
      const m = mapError(req, err);
      assert.equal(m.status, status, err.code);
      assert.equal(err.statusCode, status);
      assert.equal(JSON.stringify(m.body), JSON.stringify(body), `${err.constructor.name}: body and its key order`);
      assert.deepEqual(m.headers, err instanceof RateLimited ? { 'retry-after': '20' } : undefined, `${err.constructor.name}: headers`);
    }
  });

  it('answer framework errors by their code, keep the status of an unknown 4xx, and make anything else a 500', () => {
    const validation = Object.assign(new Error('querystring/limit must be >= 1'), { validation: [{}], statusCode: 400 });
    assert.deepEqual(mapError(req, validation), {
      status: 400,
      code: 'invalid_request',
      body: { error: 'querystring/limit must be >= 1', code: 'invalid_request', requestId: 'req-1' },
    });
    const tooLarge = Object.assign(new Error('x'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 });
    assert.deepEqual(mapError(req, tooLarge).body, { error: 'Request body is too large', code: 'body_too_large', requestId: 'req-1' });
    const media = Object.assign(new Error('x'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 });
    assert.equal(mapError(req, media).status, 415);
    const other = Object.assign(new Error('Method Not Allowed'), { code: 'FST_ERR_SOMETHING', statusCode: 405 });
    assert.deepEqual(mapError(req, other), {
      status: 405,
      code: 'bad_request',
      body: { error: 'Method Not Allowed', code: 'bad_request', requestId: 'req-1' },
    });
    for (const unknown of [new Error('boom'), new TypeError('x'), 'a string', null, Object.assign(new Error('x'), { statusCode: 502 })]) {
      assert.deepEqual(mapError(req, unknown), {
        status: 500,
        code: 'internal_error',
        body: { error: 'Internal server error', code: 'internal_error', requestId: 'req-1' },
      });
    }
  });
});
