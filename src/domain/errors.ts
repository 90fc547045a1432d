// Owns the closed set of error codes the service answers with, and the domain errors: each is a class
// carrying its data and one of those codes, mapped to HTTP in one place. Must never format HTTP
// responses, give a code a status, or import the web framework.

/** Codes of the domain errors below: one class each. */
export const DOMAIN_ERROR_CODES = [
  'no_event_types',
  'invalid_event_type',
  'body_not_object',
  'validation_failed',
  'invalid_batch_body',
  'batch_too_large',
  'batch_validation_failed',
  'event_id_conflict',
  'invalid_idempotency_key',
  'idempotency_key_conflict',
  'overloaded',
  'store_unavailable',
  'invalid_query',
] as const;
export type DomainErrorCode = (typeof DOMAIN_ERROR_CODES)[number];

/** Codes of failures the request layer meets itself: authentication, routing, framing, unknown faults. */
export const REQUEST_ERROR_CODES = [
  'unauthorized',
  'forbidden',
  'rate_limited',
  'not_found',
  'delivery_busy',
  'last_admin_key',
  'malformed_json',
  'invalid_request',
  'bad_request',
  'body_too_large',
  'unsupported_media_type',
  'empty_body',
  'bad_content_length',
  'invalid_url',
  'internal_error',
] as const;

/**
 * Every machine code the service can answer with, closed: a new code is added here, and the HTTP
 * layer's status table then fails to compile until the code has a status.
 */
export const ERROR_CODES = [...DOMAIN_ERROR_CODES, ...REQUEST_ERROR_CODES] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export abstract class DomainError extends Error {
  abstract readonly code: DomainErrorCode;
}

export class NoEventTypes extends DomainError {
  readonly code = 'no_event_types';
  constructor() {
    super('Service misconfigured: no event types available');
  }
}

export class UnknownEventType extends DomainError {
  readonly code = 'invalid_event_type';
  constructor(
    message: string,
    readonly eventType: string,
    readonly allowed: string[],
  ) {
    super(message);
  }
}

export class BodyNotObject extends DomainError {
  readonly code = 'body_not_object';
  constructor() {
    super('Request body must be a JSON object');
  }
}

export class EventValidationFailed extends DomainError {
  readonly code = 'validation_failed';
  constructor(readonly details: string[]) {
    super('Validation failed');
  }
}

export class BatchBodyInvalid extends DomainError {
  readonly code = 'invalid_batch_body';
  constructor(message: 'Request body is required' | 'Request body must be an array of events' | 'Events array cannot be empty') {
    super(message);
  }
}

export class BatchTooLarge extends DomainError {
  readonly code = 'batch_too_large';
  constructor(
    readonly received: number,
    readonly maxAllowed: number,
  ) {
    super(`Batch size exceeds maximum limit of ${maxAllowed} events`);
  }
}

export class BatchValidationFailed extends DomainError {
  readonly code = 'batch_validation_failed';
  constructor(
    readonly validationErrors: Array<{ index: number; errors: string[] }>,
    readonly validCount: number,
  ) {
    super('Validation failed for some events');
  }
}

export class EventIdConflict extends DomainError {
  readonly code = 'event_id_conflict';
  constructor(readonly conflicts: Array<{ index: number; id: string }>) {
    // The full list is in `conflicts`; the message names a few so it stays readable.
    const shown = conflicts
      .slice(0, 5)
      .map((c) => JSON.stringify(c.id))
      .join(', ');
    const more = conflicts.length > 5 ? ` and ${conflicts.length - 5} more` : '';
    const verb = conflicts.length === 1 ? 'was' : 'were';
    super(`Event id conflict: ${shown}${more} ${verb} already used for an event with different content`);
  }
}

export class InvalidRequestKey extends DomainError {
  readonly code = 'invalid_idempotency_key';
  constructor(message: string) {
    super(message);
  }
}

export class RequestKeyConflict extends DomainError {
  readonly code = 'idempotency_key_conflict';
  constructor(readonly key: string) {
    super(`Idempotency-Key ${JSON.stringify(key)} was used with a different request body`);
  }
}

export class Overloaded extends DomainError {
  readonly code = 'overloaded';
  constructor(readonly retryAfterSeconds: number) {
    super('Ingest queue is full; retry shortly');
  }
}

/** The store cannot do this right now (busy, full, read-only, unreachable, I/O): retry later, never a 500. */
export class StoreUnavailable extends DomainError {
  readonly code = 'store_unavailable';
  /** `reason` says what is wrong in a few words, e.g. "the disk is full". */
  constructor(
    readonly retryAfterSeconds: number,
    cause?: unknown,
    readonly reason?: string,
  ) {
    super(`Storage is temporarily unavailable${reason ? ` (${reason})` : ''}; retry shortly`, { cause });
  }
}

export class InvalidQuery extends DomainError {
  readonly code = 'invalid_query';
  constructor(message: string) {
    super(message);
  }
}

/** Every domain error class; each code above has exactly one (checked below). */
export type AnyDomainError =
  | NoEventTypes
  | UnknownEventType
  | BodyNotObject
  | EventValidationFailed
  | BatchBodyInvalid
  | BatchTooLarge
  | BatchValidationFailed
  | EventIdConflict
  | InvalidRequestKey
  | RequestKeyConflict
  | Overloaded
  | StoreUnavailable
  | InvalidQuery;

// Fails to compile when a domain code has no class in AnyDomainError.
type MissingClass = Exclude<DomainErrorCode, AnyDomainError['code']>;
const everyCodeHasAClass: [MissingClass] extends [never] ? true : MissingClass = true;
void everyCodeHasAClass;
