// Owns one HTTP exchange with meterhook: URL building, the API key header, JSON in and out, a timeout
// per attempt, and retries with exponential backoff and jitter (honouring Retry-After). Must never
// retry a 4xx other than 429, and must never retry a non-idempotent request that may have reached the server.

import { MeterhookConnectionError, MeterhookError } from './errors.js';
import { assertParamText } from './validate.js';

export interface RetryOptions {
  /** Retries after the first attempt (so at most maxRetries + 1 attempts). */
  maxRetries: number;
  /** The first backoff; each retry doubles it, up to maxDelayMs. The wait is a random point in [d/2, d]. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A server's Retry-After is honoured up to this long. */
  maxRetryAfterMs: number;
}

/** What a retry is about to wait for; passed to the `onRetry` hook. */
export interface RetryInfo {
  method: string;
  path: string;
  /** 1 for the first retry. */
  retry: number;
  delayMs: number;
  /** The status that caused it, or undefined for a network error. */
  status: number | undefined;
  /** Whether delayMs comes from the server's Retry-After header. */
  retryAfter: boolean;
  error: Error | undefined;
}

/**
 * `always`: retry 5xx, 429 and every network error (idempotent requests: reads, and captures that carry ids).
 * `refused`: retry only when the connection was refused, i.e. the request surely never reached the server.
 */
export type RetryMode = 'always' | 'refused';

export interface TransportOptions {
  baseUrl: URL;
  apiKey: string;
  fetch: typeof fetch;
  timeoutMs: number;
  retry: RetryOptions;
  userAgent: string;
  random: () => number;
  onRetry: ((info: RetryInfo) => void) | undefined;
}

export interface HttpResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

export type QueryValue = string | number | boolean | Date | undefined | null;

export function instantText(v: Date | string | number): string {
  return v instanceof Date ? v.toISOString() : String(v);
}

/** Backoff before retry number `retry` (1-based): a random point in [d/2, d], d = min(max, base·2^(retry-1)). */
export function backoffDelay(
  retry: number,
  o: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  const d = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.round(d / 2 + random() * (d / 2));
}

/** Retry-After in ms (delay-seconds or an HTTP date), or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function errorCode(err: unknown): string | undefined {
  let e = err as { code?: unknown; name?: unknown; cause?: unknown; errors?: unknown[] } | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (e.name === 'TimeoutError') return 'TIMEOUT';
    if (typeof e.code === 'string') return e.code;
    e = (e.cause ?? (Array.isArray(e.errors) ? e.errors[0] : undefined)) as typeof e;
  }
  return undefined;
}

/** The innermost cause's message: fetch itself only says "fetch failed". */
function rootMessage(err: unknown): string {
  let e = err as { message?: unknown; cause?: unknown } | undefined;
  let msg = String(err);
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (typeof e.message === 'string' && e.message) msg = e.message;
    e = e.cause as typeof e;
  }
  return msg;
}

function sleep(ms: number): Promise<void> {
  // Referenced on purpose: a retry in progress is work in flight, like an open socket.
  return new Promise((r) => setTimeout(r, ms));
}

export class Transport {
  constructor(readonly o: TransportOptions) {}

  url(path: string, query?: Record<string, QueryValue>): URL {
    const url = new URL(path.replace(/^\//, ''), this.o.baseUrl);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined || v === null) continue;
      // URLSearchParams would send a lone surrogate as U+FFFD, and so ask about another id.
      assertParamText(k, v);
      url.searchParams.set(k, v instanceof Date ? v.toISOString() : String(v));
    }
    return url;
  }

  async request<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    opts: { query?: Record<string, QueryValue>; body?: unknown; retry?: RetryMode } = {},
  ): Promise<HttpResponse<T>> {
    const url = this.url(path, opts.query);
    const mode = opts.retry ?? 'always';
    const headers: Record<string, string> = { 'x-apikey': this.o.apiKey, accept: 'application/json', 'user-agent': this.o.userAgent };
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const { retry } = this.o;
    for (let n = 1; ; n++) {
      let res: Response;
      let text: string;
      try {
        res = await this.o.fetch(url, { method, headers, body: payload, signal: AbortSignal.timeout(this.o.timeoutMs) });
        text = await res.text();
      } catch (err) {
        const code = errorCode(err);
        const what = code === 'TIMEOUT' ? `no answer within ${this.o.timeoutMs} ms` : (code ?? rootMessage(err));
        const conn = new MeterhookConnectionError(`cannot reach meterhook at ${this.o.baseUrl.origin} (${what})`, code, { cause: err });
        const retriable = mode === 'always' || code === 'ECONNREFUSED';
        if (retriable && n <= retry.maxRetries) {
          await this.wait(method, path, n, backoffDelay(n, retry, this.o.random), undefined, false, conn);
          continue;
        }
        throw conn;
      }
      let body: unknown = text;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      if (res.ok) return { status: res.status, headers: res.headers, body: body as T };
      const retriable = mode === 'always' && (res.status >= 500 || res.status === 429);
      const err = new MeterhookError(res.status, body, undefined, { requestId: res.headers.get('x-request-id') ?? undefined });
      if (retriable && n <= retry.maxRetries) {
        const after = parseRetryAfter(res.headers.get('retry-after'));
        // A little jitter on top of Retry-After, so clients told the same thing do not return in lockstep.
        const delay =
          after !== undefined
            ? Math.min(after, retry.maxRetryAfterMs) + Math.round(this.o.random() * Math.min(1000, after * 0.1))
            : backoffDelay(n, retry, this.o.random);
        await this.wait(method, path, n, delay, res.status, after !== undefined, err);
        continue;
      }
      throw err;
    }
  }

  private async wait(
    method: string,
    path: string,
    retry: number,
    delayMs: number,
    status: number | undefined,
    retryAfter: boolean,
    error: Error,
  ): Promise<void> {
    this.o.onRetry?.({ method, path, retry, delayMs, status, retryAfter, error });
    await sleep(delayMs);
  }
}
