// Owns MeterhookClient: batched, retried, idempotent event capture, and typed helpers for the read
// and webhook APIs. Must never import server code (only Node globals), never double-count on a
// retry (every event carries an id before its first attempt), and never keep an idle process alive.

import { MeterhookClosedError, MeterhookError, MeterhookFlushError, MeterhookValidationError } from './errors.js';
import { PageRequest } from './paginate.js';
import { Transport, instantText, type QueryValue } from './transport.js';
import type {
  ApiKey,
  CreatedApiKey,
  CreateKeyInput,
  Aggregation,
  AggregationQuery,
  AuditEntry,
  AuditQuery,
  BatchEvent,
  BatchResult,
  CaptureResult,
  Delivery,
  DeliveryDetail,
  DeliveryQuery,
  DeliveryRetryResult,
  Endpoint,
  EventQuery,
  Page,
  StoredEvent,
  TrackInput,
  TriggerResult,
  Usage,
  UsageQuery,
  Session,
} from './types.js';
import { assertEventText, eventTextProblems } from './validate.js';
import { keysApi, segment } from './keys-api.js';
import type { MeterhookClientOptions, SendBatchReport, TrackedEvent, TrackResult } from './options.js';

export type { MeterhookClientOptions, SendBatchReport, TrackedEvent, TrackResult } from './options.js';

/** An event waiting in the batch queue, with the promise its track() call returned. */
interface Queued {
  event: TrackedEvent;
  promise: Promise<TrackResult>;
  resolve: (r: TrackResult) => void;
  reject: (e: Error) => void;
}

const USER_AGENT = 'meterhook-client';

/** A random UUID from the global Web Crypto (Node 19+, browsers, Deno, Bun): no import needed. */
function newId(): string {
  return globalThis.crypto.randomUUID();
}

function positive(name: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < min) throw new RangeError(`${name} must be a number ≥ ${min} (got ${v})`);
  return v;
}

/** A metadata filter as query parameters `metadata.<key>`; a value that has no string form on the server is a TypeError. */
function metadataParams(metadata: EventQuery['metadata']): Record<string, QueryValue> {
  const out: Record<string, QueryValue> = {};
  for (const [key, v] of Object.entries(metadata ?? {})) {
    const ok = typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
    if (!ok) throw new TypeError(`metadata.${key} must be a string, a finite number or a boolean (got ${String(v)})`);
    // String() of a finite number is its JSON text, the form the server compares.
    out[`metadata.${key}`] = v;
  }
  return out;
}

function wireTimestamp(t: TrackInput['timestamp']): string | number | undefined {
  if (t === undefined) return undefined;
  return t instanceof Date ? t.toISOString() : t;
}

export class MeterhookClient {
  private readonly transport: Transport;
  private maxBatchSize: number;
  private readonly flushIntervalMs: number;
  private readonly concurrency: number;
  private readonly maxQueueSize: number;
  private readonly onError: MeterhookClientOptions['onError'];

  private buffer: Queued[] = [];
  private ready: Queued[][] = [];
  private inFlight = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly outstanding = new Set<Queued>();
  private closed = false;

  /** Webhook deliveries: list, inspect and replay. */
  readonly deliveries: {
    list(q?: DeliveryQuery): PageRequest<Delivery>;
    get(id: string): Promise<DeliveryDetail>;
    retry(id: string): Promise<DeliveryRetryResult>;
    recover(since: Date | string | number): Promise<{ requeued: number; since: string }>;
  };

  /** API keys (an admin key): create (the key is shown once), list, get and revoke. */
  readonly keys: {
    create(input: CreateKeyInput): Promise<CreatedApiKey>;
    list(): Promise<ApiKey[]>;
    get(id: string): Promise<ApiKey>;
    revoke(id: string): Promise<ApiKey>;
  };

  constructor(opts: MeterhookClientOptions) {
    if (!opts?.url) throw new TypeError('MeterhookClient: url is required');
    if (!opts.apiKey) throw new TypeError('MeterhookClient: apiKey is required');
    const base = new URL(String(opts.url));
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new TypeError(`MeterhookClient: url must be http(s) (got ${base.protocol})`);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    base.search = '';
    base.hash = '';
    this.maxBatchSize = Math.floor(positive('maxBatchSize', opts.maxBatchSize, 1000));
    this.flushIntervalMs = positive('flushIntervalMs', opts.flushIntervalMs, 250, 0);
    this.concurrency = Math.floor(positive('concurrency', opts.concurrency, 1));
    this.maxQueueSize = Math.floor(positive('maxQueueSize', opts.maxQueueSize, 100_000));
    this.onError = opts.onError;
    const fetchImpl = opts.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') throw new TypeError('MeterhookClient: no fetch available (Node 18+ has a global fetch)');
    this.transport = new Transport({
      baseUrl: base,
      apiKey: opts.apiKey,
      fetch: fetchImpl,
      timeoutMs: positive('timeoutMs', opts.timeoutMs, 30_000),
      userAgent: USER_AGENT,
      random: opts.random ?? Math.random,
      onRetry: opts.onRetry,
      retry: {
        maxRetries: Math.floor(positive('maxRetries', opts.maxRetries, 10, 0)),
        baseDelayMs: positive('retryBaseDelayMs', opts.retryBaseDelayMs, 250, 0),
        maxDelayMs: positive('retryMaxDelayMs', opts.retryMaxDelayMs, 30_000, 0),
        maxRetryAfterMs: positive('maxRetryAfterMs', opts.maxRetryAfterMs, 60_000, 0),
      },
    });
    const t = this.transport;
    this.deliveries = {
      list: (q: DeliveryQuery = {}) => this.paged<Delivery>('webhooks/deliveries', q),
      get: async (id: string) => (await t.request<DeliveryDetail>('GET', `webhooks/deliveries/${segment('id', id)}`)).body,
      // A replay is not idempotent (it sends the webhook again): only retried when the connection was refused.
      retry: async (id: string) =>
        (await t.request<DeliveryRetryResult>('POST', `webhooks/deliveries/${segment('id', id)}/retry`, { retry: 'refused' })).body,
      recover: async (since: Date | string | number) =>
        (
          await t.request<{ requeued: number; since: string }>('POST', 'webhooks/recover', {
            body: { since: since instanceof Date ? since.toISOString() : since },
          })
        ).body,
    };
    this.keys = keysApi(t);
  }

  /** The server's base URL, as the client uses it. */
  get url(): string {
    return this.transport.o.baseUrl.href;
  }

  /** Events tracked and not yet acknowledged or failed. */
  get pending(): number {
    return this.outstanding.size;
  }

  // ---------------------------------------------------------------------------------------------
  // Capture
  // ---------------------------------------------------------------------------------------------

  /**
   * Queues one event. It is sent in a batch when `maxBatchSize` events are queued or `flushIntervalMs`
   * after it was tracked, whichever comes first. The promise resolves once the server has committed
   * it (or had it already: a duplicate is a success) and rejects if it fails permanently: a
   * MeterhookError for a 4xx (validation 422, id conflict 409, …) or once retries run out. An event
   * whose eventType, customerId, id or metadata holds a lone UTF-16 surrogate is refused at once, without
   * a request, with a MeterhookValidationError (status 422 and the server's messages in `details`).
   * A rejection that nobody awaits does not crash the process; see also `onError` and `flush()`.
   */
  track(eventType: string, input: TrackInput): Promise<TrackResult> {
    let resolve!: (r: TrackResult) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<TrackResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Fire-and-forget callers must not get an unhandled rejection; awaiting `promise` still sees it.
    promise.catch(() => undefined);
    if (this.closed) {
      reject(new MeterhookClosedError('MeterhookClient is closed; track() after close() is refused'));
      return promise;
    }
    if (this.outstanding.size >= this.maxQueueSize) {
      reject(new Error(`MeterhookClient queue is full (${this.maxQueueSize} events waiting); the server is slow or unreachable`));
      return promise;
    }
    if (typeof input?.value !== 'number' || !Number.isFinite(input.value)) {
      // JSON would turn NaN and Infinity into null, and the server would say "value is required".
      reject(new TypeError(`value must be a finite number (got ${String(input?.value)})`));
      return promise;
    }
    const problems = eventTextProblems({ eventType, customerId: input.customerId, metadata: input.metadata, id: input.id });
    if (problems.length > 0) {
      reject(MeterhookValidationError.ofEvent(problems));
      return promise;
    }
    const event: TrackedEvent = {
      eventType,
      customerId: input.customerId,
      value: input.value,
      id: input.id ?? newId(),
      ...(input.metadata !== undefined ? { metadata: input.metadata } : {}),
      ...(input.timestamp !== undefined ? { timestamp: wireTimestamp(input.timestamp) } : {}),
    };
    const q: Queued = { event, promise, resolve, reject };
    this.outstanding.add(q);
    this.buffer.push(q);
    if (this.buffer.length >= this.maxBatchSize) this.cut();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.cut();
      }, this.flushIntervalMs);
      // The timer exists only while events wait, and it keeps the process alive until they are sent:
      // a script that tracks (or awaits track) and ends must not drop or strand its events.
    }
    return promise;
  }

  /**
   * Sends one event now, alone (`POST /usage/:eventType`), with retries; an id is assigned when none
   * is given. Resolves with the server's answer (`duplicate: true` when it was already stored).
   * Text with a lone UTF-16 surrogate is refused before sending (MeterhookValidationError, 422).
   */
  async capture(eventType: string, input: TrackInput): Promise<CaptureResult> {
    assertEventText({ eventType, customerId: input.customerId, metadata: input.metadata, id: input.id });
    const body = {
      customerId: input.customerId,
      value: input.value,
      id: input.id ?? newId(),
      ...(input.metadata !== undefined ? { metadata: input.metadata } : {}),
      ...(input.timestamp !== undefined ? { timestamp: wireTimestamp(input.timestamp) } : {}),
    };
    return (await this.transport.request<CaptureResult>('POST', `usage/${segment('eventType', eventType)}`, { body })).body;
  }

  /**
   * Sends events now, in batches of at most `maxBatchSize`, and reports per event. Events without an
   * id get one first, so the internal retries are safe. Events the server refuses (422, 409, 413 for
   * one event) are reported in `rejected` and the rest of their batch is sent again without them.
   * Never throws for a server-side failure: it is reported in `failed`.
   */
  async sendBatch(events: ReadonlyArray<BatchEvent>): Promise<SendBatchReport> {
    const wire = events.map((e) => ({ ...e, id: e.id ?? newId() }));
    const report: SendBatchReport = { ids: wire.map((e) => e.id), inserted: 0, duplicates: 0, rejected: [], failed: null };
    const work: number[][] = [];
    const all: number[] = [];
    wire.forEach((e, i) => {
      // Refused here, with the server's messages: no store could keep it, and the rest of the batch goes on.
      const problems = eventTextProblems(e);
      if (problems.length > 0) report.rejected.push({ index: i, error: MeterhookValidationError.ofEvent(problems, i) });
      else all.push(i);
    });
    for (let i = 0; i < all.length; i += this.maxBatchSize) work.push(all.slice(i, i + this.maxBatchSize));

    while (work.length > 0) {
      const slice = work.shift()!;
      try {
        const res = await this.transport.request<BatchResult>('POST', 'usagebatch', { body: slice.map((i) => wire[i]) });
        report.inserted += res.body.inserted;
        report.duplicates += res.body.duplicates;
      } catch (err) {
        const rest = err instanceof MeterhookError ? this.splitRejection(err, slice, report) : null;
        if (rest) {
          work.unshift(...rest);
          continue;
        }
        report.failed = { indices: [...slice, ...work.flat()], error: err instanceof Error ? err : new Error(String(err)) };
        return report;
      }
    }
    return report;
  }

  /**
   * For a 4xx about particular events (422 validation, 409 conflicts, 413 batch or body too large),
   * records those events as rejected and returns the slices still to send; null when the error is
   * about the whole request.
   */
  private splitRejection(err: MeterhookError, slice: number[], report: SendBatchReport): number[][] | null {
    const body = (err.body ?? {}) as {
      error?: string;
      validationErrors?: Array<{ index?: unknown; errors?: unknown }>;
      conflicts?: Array<{ index?: unknown; id?: unknown }>;
      maxAllowed?: unknown;
    };
    const reject = (positions: Map<number, MeterhookError>): number[][] | null => {
      const valid = [...positions.keys()].filter((p) => Number.isInteger(p) && p >= 0 && p < slice.length);
      if (valid.length === 0) return null;
      for (const p of valid) report.rejected.push({ index: slice[p]!, error: positions.get(p)! });
      const rest = slice.filter((_, p) => !positions.has(p));
      return rest.length > 0 ? [rest] : [];
    };
    if (err.status === 422 && Array.isArray(body.validationErrors)) {
      const m = new Map<number, MeterhookError>();
      for (const v of body.validationErrors) {
        const details = Array.isArray(v.errors) ? v.errors.map(String) : [];
        const msg = `HTTP 422: ${details.join('; ') || 'invalid event'}`;
        m.set(Number(v.index), new MeterhookError(422, err.body, msg, { requestId: err.requestId, index: Number(v.index), details }));
      }
      return reject(m);
    }
    if (err.status === 409 && Array.isArray(body.conflicts)) {
      const m = new Map<number, MeterhookError>();
      for (const c of body.conflicts) {
        const detail = `id ${JSON.stringify(c.id)} was already used for an event with different content`;
        m.set(
          Number(c.index),
          new MeterhookError(409, err.body, `HTTP 409: event ${detail}`, {
            requestId: err.requestId,
            index: Number(c.index),
            details: [detail],
          }),
        );
      }
      return reject(m);
    }
    if (err.status === 413) {
      const max = Number(body.maxAllowed);
      if (Number.isInteger(max) && max >= 1 && max < slice.length) {
        // The server's maxBatchSize is smaller than ours: adopt it for later batches too.
        this.maxBatchSize = Math.min(this.maxBatchSize, max);
        const parts: number[][] = [];
        for (let i = 0; i < slice.length; i += max) parts.push(slice.slice(i, i + max));
        return parts;
      }
      if (slice.length > 1) {
        const half = Math.ceil(slice.length / 2);
        return [slice.slice(0, half), slice.slice(half)];
      }
      return reject(
        new Map([[0, new MeterhookError(413, err.body, err.message, { requestId: err.requestId, index: 0, details: [err.message] })]]),
      );
    }
    return null;
  }

  /** Moves the whole buffer into ready batches and starts sending. */
  private cut(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.buffer.length > 0) this.ready.push(this.buffer.splice(0, this.maxBatchSize));
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.ready.length > 0) {
      const batch = this.ready.shift()!;
      this.inFlight++;
      void this.deliver(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async deliver(batch: Queued[]): Promise<void> {
    let report: SendBatchReport;
    try {
      report = await this.sendBatch(batch.map((q) => q.event));
    } catch (err) {
      report = { ids: [], inserted: 0, duplicates: 0, rejected: [], failed: { indices: batch.map((_, i) => i), error: err as Error } };
    }
    const failedAt = new Map<number, Error>(report.rejected.map((r) => [r.index, r.error]));
    for (const i of report.failed?.indices ?? []) failedAt.set(i, report.failed!.error);
    batch.forEach((q, i) => {
      this.outstanding.delete(q);
      const error = failedAt.get(i);
      if (!error) {
        q.resolve({ id: q.event.id });
        return;
      }
      q.reject(error);
      try {
        this.onError?.(error, q.event);
      } catch {
        // a throwing hook must not stop the other events from settling
      }
    });
  }

  /**
   * Sends everything tracked so far and resolves when all of it is acknowledged. Rejects with a
   * MeterhookFlushError listing the events that failed permanently (the others were still sent).
   */
  async flush(): Promise<void> {
    const waiting = [...this.outstanding];
    this.cut();
    const results = await Promise.allSettled(waiting.map((q) => q.promise));
    const failures: MeterhookFlushError['failures'] = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        const e = waiting[i]!.event;
        failures.push({ event: { eventType: e.eventType, customerId: e.customerId, id: e.id }, error: r.reason as Error });
      }
    });
    if (failures.length > 0) throw new MeterhookFlushError(failures, waiting.length - failures.length);
  }

  /** Flushes, then refuses further track() calls. No timer is left behind. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  // ---------------------------------------------------------------------------------------------
  // Reads and operations
  // ---------------------------------------------------------------------------------------------

  private paged<T>(path: string, q: object): PageRequest<T> {
    const { cursor, ...rest } = q as { cursor?: string } & Record<string, QueryValue>;
    return new PageRequest<T>(async (c) => {
      const res = await this.transport.request<T[]>('GET', path, { query: { ...rest, cursor: c } });
      return { items: res.body, nextCursor: res.headers.get('x-next-cursor') };
    }, cursor);
  }

  /** Real-time usage of one customer for the period containing `at` (default: the current monthly period). */
  async usage(customerId: string, q: UsageQuery = {}): Promise<Usage> {
    const query = { period: q.period, at: q.at === undefined ? undefined : instantText(q.at) };
    return (await this.transport.request<Usage>('GET', `customers/${segment('customerId', customerId)}/usage`, { query })).body;
  }

  /** Aggregation documents, newest period first. Await it for one page, or `for await` it for all. */
  aggregations(q: AggregationQuery = {}): PageRequest<Aggregation> {
    return this.paged<Aggregation>('aggregations', q);
  }

  /**
   * Raw events, newest first. Await it for one page, or `for await` it for all. With `metadata`, a page
   * may be short (even empty) yet not the last: iteration follows the cursor through such pages.
   */
  events(q: EventQuery = {}): PageRequest<StoredEvent> {
    const { metadata, ...rest } = q;
    return this.paged<StoredEvent>('events', { ...rest, ...metadataParams(metadata) });
  }

  /** Finalizes due periods and computes provisional documents for open ones, before answering. */
  async trigger(): Promise<TriggerResult> {
    return (await this.transport.request<TriggerResult>('POST', 'aggregations/trigger')).body;
  }

  /** What this client's key may do: its id, scopes and customer restriction. */
  async session(): Promise<Session> {
    return (await this.transport.request<Session>('GET', 'session')).body;
  }

  /** Admin actions on record, newest first (admin keys). Await it for one page, or `for await` it for all. */
  audit(q: AuditQuery = {}): PageRequest<AuditEntry> {
    return this.paged<AuditEntry>('audit', q);
  }

  /** Configured webhook endpoints with their health. */
  async endpoints(): Promise<Endpoint[]> {
    return (await this.transport.request<Endpoint[]>('GET', 'webhooks/endpoints')).body;
  }

  /** Re-enables an endpoint disabled by a 410 and releases its held deliveries. */
  async enableEndpoint(endpointId: string): Promise<{ id: string; status: string; released: number }> {
    return (
      await this.transport.request<{ id: string; status: string; released: number }>(
        'POST',
        `webhooks/endpoints/${segment('endpointId', endpointId)}/enable`,
      )
    ).body;
  }
}

export type { Page };
