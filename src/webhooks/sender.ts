// Owns the outbound HTTP request of one webhook attempt: undici with an SSRF-checked lookup, no
// redirects, a total timeout and a capped response read. Must never follow a redirect or throw.

import { Agent, request } from 'undici';
import { isSuccessStatus } from '../domain/deliveries.js';
import { SsrfBlocked, type SsrfGuard } from './ssrf-guard.js';

export type ErrorClass = 'timeout' | 'dns' | 'refused' | 'reset' | 'tls' | 'ssrf_blocked' | 'redirect' | 'http_4xx' | 'http_5xx';

export interface SendRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

export interface SendResult {
  statusCode: number | null;
  errorClass: ErrorClass | null;
  error: string | null;
  responseBody: string | null;
  retryAfter: string | undefined;
  durationMs: number;
}

export const RESPONSE_BODY_LIMIT = 16 * 1024;

function codeOf(err: unknown): string {
  let e = err as { code?: unknown; name?: string; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    if (e instanceof SsrfBlocked || e.code === 'ESSRFBLOCKED') return 'ESSRFBLOCKED';
    // An aborted fetch carries a numeric DOMException code (23); its name is what identifies it.
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'TIMEOUT';
    if (typeof e.code === 'string' && e.code !== '') return e.code;
    e = e.cause as typeof e;
  }
  return 'UNKNOWN';
}

export function classifyError(err: unknown): ErrorClass {
  const code = codeOf(err);
  if (code === 'ESSRFBLOCKED') return 'ssrf_blocked';
  if (code === 'TIMEOUT' || code.includes('TIMEOUT') || code === 'ETIMEDOUT') return 'timeout';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return 'dns';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT') || code === 'EPROTO') return 'tls';
  return 'reset';
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } };
  const msg = e?.message ?? String(err);
  return e?.cause?.message && !msg.includes(e.cause.message) ? `${msg}: ${e.cause.message}` : msg;
}

async function readCapped(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= RESPONSE_BODY_LIMIT) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, RESPONSE_BODY_LIMIT).toString('utf8');
}

export function createSender(guard: SsrfGuard) {
  const agent = new Agent({ connect: { lookup: guard.lookup }, keepAliveTimeout: 10_000 });

  async function send(req: SendRequest, now: () => number = Date.now): Promise<SendResult> {
    const started = now();
    const done = (r: Omit<SendResult, 'durationMs'>): SendResult => ({ ...r, durationMs: Math.max(0, now() - started) });
    try {
      guard.checkUrl(req.url);
    } catch (err) {
      return done({ statusCode: null, errorClass: 'ssrf_blocked', error: describe(err), responseBody: null, retryAfter: undefined });
    }
    try {
      const res = await request(req.url, {
        method: 'POST',
        headers: req.headers,
        body: req.body,
        dispatcher: agent,
        signal: AbortSignal.timeout(req.timeoutMs),
        headersTimeout: req.timeoutMs,
        bodyTimeout: req.timeoutMs,
      });
      const responseBody = await readCapped(res.body);
      const header = (name: string): string | undefined => {
        const v = res.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      const status = res.statusCode;
      if (isSuccessStatus(status)) {
        return done({ statusCode: status, errorClass: null, error: null, responseBody, retryAfter: undefined });
      }
      if (status >= 300 && status < 400) {
        const location = header('location');
        return done({
          statusCode: status,
          errorClass: 'redirect',
          error: `redirect not followed (HTTP ${status}${location ? `, Location: ${location}` : ''})`,
          responseBody,
          retryAfter: undefined,
        });
      }
      return done({
        statusCode: status,
        errorClass: status < 500 ? 'http_4xx' : 'http_5xx',
        error: `HTTP ${status}`,
        responseBody,
        retryAfter: header('retry-after'),
      });
    } catch (err) {
      return done({ statusCode: null, errorClass: classifyError(err), error: describe(err), responseBody: null, retryAfter: undefined });
    }
  }

  return { send, close: () => agent.close() };
}

export type Sender = ReturnType<typeof createSender>;
