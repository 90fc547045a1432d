// The meterhook client SDK (`meterhook/client`): batched, retried, idempotent event capture and typed
// helpers for the read and webhook APIs. Depends on nothing but Node's global fetch.

export { MeterhookClient } from './client.js';
export type { MeterhookClientOptions, SendBatchReport, TrackResult, TrackedEvent } from './client.js';
export { MeterhookClosedError, MeterhookConnectionError, MeterhookError, MeterhookFlushError, MeterhookValidationError } from './errors.js';
export { PageRequest } from './paginate.js';
export { backoffDelay, parseRetryAfter } from './transport.js';
export type { RetryInfo } from './transport.js';
export { DELIVERY_STATUSES, PERIODS } from './types.js';
export type * from './types.js';
