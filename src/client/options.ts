// Owns the SDK client's option and result shapes: how a MeterhookClient is configured and what capture
// reports back. Must never import server code: the SDK ships alone.

import type { MeterhookError } from './errors.js';
import type { RetryInfo } from './transport.js';

export interface MeterhookClientOptions {
  /** Base URL of the server, e.g. http://localhost:3000 (a path prefix is kept). */
  url: string | URL;
  apiKey: string;
  /** Events per `POST /usagebatch`; a batch is sent as soon as it is full. Default 1000 (the server's default limit). */
  maxBatchSize?: number;
  /** A partial batch is sent this long after its first event was tracked. Default 250 ms. */
  flushIntervalMs?: number;
  /** Retries of a request after a 5xx, 429 or network error. Default 10. */
  maxRetries?: number;
  /** First backoff; doubled on every retry, with jitter. Default 250 ms. */
  retryBaseDelayMs?: number;
  /** Longest backoff. Default 30 s. */
  retryMaxDelayMs?: number;
  /** Longest Retry-After honoured. Default 60 s. */
  maxRetryAfterMs?: number;
  /** Timeout of one attempt. Default 30 s. */
  timeoutMs?: number;
  /** Batches in flight at once. Default 1, which keeps arrival order (it matters for `first`/`last`). */
  concurrency?: number;
  /** Most events waiting (queued or in flight); beyond it `track()` rejects at once. Default 100 000. */
  maxQueueSize?: number;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /** Called for every tracked event that failed permanently (useful when track() promises are not awaited). */
  onError?: (error: Error, event: TrackedEvent) => void;
  /** Called before every retry, e.g. for logging. */
  onRetry?: (info: RetryInfo) => void;
  /** Random source for jitter, in [0, 1). Default Math.random. */
  random?: () => number;
}

/** An event as the client sends it: always with an id. */
export interface TrackedEvent {
  eventType: string;
  customerId: string;
  value: number;
  id: string;
  metadata?: Record<string, unknown>;
  timestamp?: string | number;
}

export interface TrackResult {
  /** The event's idempotency id (the one given, or the one assigned). */
  id: string;
}

/** What `sendBatch` did with each event, by its index in the array given. */
export interface SendBatchReport {
  /** The id each event was sent with (given or assigned). */
  ids: string[];
  /** Events stored by this call. */
  inserted: number;
  /** Events that were already stored with the same content (a harmless repeat). */
  duplicates: number;
  /**
   * Events the server refused (422 validation, 409 id conflict, 413 too large), or that the client
   * refused before sending (MeterhookValidationError, 422: text with a lone UTF-16 surrogate); the
   * others were still sent.
   */
  rejected: Array<{ index: number; error: MeterhookError }>;
  /** When the rest could not be sent at all (server unreachable, 5xx after retries, 401, …): which events and why. */
  failed: { indices: number[]; error: Error } | null;
}
