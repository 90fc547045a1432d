// Loopback webhook receivers for delivery tests: a node:http server on 127.0.0.1:<random port> that
// records every request's raw bytes exactly as received and answers as the test scripts it; an
// independent legacy verifier; and a small harness that drives an in-process app's dispatcher.
// Nothing here contacts any host other than 127.0.0.1.

import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';

import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import type { CloseSummary } from '../../src/aggregate/close-due-periods.js';
import { buildTestApp, REFERENCE_CONFIG, type TestApp } from './app.js';

// ---------------------------------------------------------------------------------------------
// Receiver
// ---------------------------------------------------------------------------------------------

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The body bytes exactly as they arrived. */
  rawBody: Buffer;
  /** Real wall-clock ms when the body was complete. */
  receivedAt: number;
}

export interface ScriptedResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Wait this long (real ms) before answering. */
  delayMs?: number;
  /** Destroy the socket instead of answering (after delayMs, if any). */
  destroy?: boolean;
  /** Send the headers at once, then the body in this many pieces, `trickleMs` apart. */
  trickle?: { pieces: number; trickleMs: number };
}

/** `n` is the 1-based number of this request at this receiver. */
export type Responder = (req: ReceivedRequest, n: number) => ScriptedResponse;

export interface Receiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Most requests that were open at the same time. */
  readonly maxConcurrent: number;
  setResponder(r: Responder): void;
  close(): Promise<void>;
}

const OK: Responder = () => ({ status: 200, body: 'ok' });

export async function startReceiver(handler: Responder = OK): Promise<Receiver> {
  let responder = handler;
  const requests: ReceivedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let open = 0;
  let maxConcurrent = 0;

  const server = http.createServer((req, res) => {
    open++;
    maxConcurrent = Math.max(maxConcurrent, open);
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      open--;
    };
    res.on('close', finish);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        rawBody: Buffer.concat(chunks),
        receivedAt: Date.now(),
      };
      requests.push(rec);
      let plan: ScriptedResponse;
      try {
        plan = responder(rec, requests.length);
      } catch (err) {
        plan = { status: 599, body: `responder threw: ${String(err)}` };
      }
      const answer = (): void => {
        if (res.destroyed || res.writableEnded) return;
        if (plan.destroy) {
          req.socket.destroy();
          return;
        }
        res.writeHead(plan.status, plan.headers);
        if (!plan.trickle) {
          res.end(plan.body ?? '');
          return;
        }
        const body = Buffer.from(plan.body ?? '');
        const { pieces, trickleMs } = plan.trickle;
        const size = Math.ceil(body.length / pieces);
        let sent = 0;
        const next = (): void => {
          if (res.destroyed || res.writableEnded) return;
          const part = body.subarray(sent, sent + size);
          sent += part.length;
          if (sent >= body.length) return void res.end(part);
          res.write(part);
          const timer = setTimeout(() => {
            timers.delete(timer);
            next();
          }, trickleMs);
          timers.add(timer);
        };
        next();
      };
      if (plan.delayMs && plan.delayMs > 0) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          answer();
        }, plan.delayMs);
        timers.add(timer);
      } else answer();
    });
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    requests,
    get maxConcurrent() {
      return maxConcurrent;
    },
    setResponder(r) {
      responder = r;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback port with no listener (bound once, then released), for connection-refused tests. */
export async function unusedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---------------------------------------------------------------------------------------------
// Verifiers (receiver side)
// ---------------------------------------------------------------------------------------------

function header(h: http.IncomingHttpHeaders, name: string): string {
  const v = h[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

/** The three Standard Webhooks headers, as `standardwebhooks` wants them. */
export function standardHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  return {
    'webhook-id': header(h, 'webhook-id'),
    'webhook-timestamp': header(h, 'webhook-timestamp'),
    'webhook-signature': header(h, 'webhook-signature'),
  };
}

/** `standardwebhooks` verification over the raw bytes; throws WebhookVerificationError on mismatch. */
export function verifyStandard(whsecSecret: string, rawBody: Buffer, headers: http.IncomingHttpHeaders): unknown {
  return new Webhook(whsecSecret).verify(rawBody, standardHeaders(headers));
}

/**
 * What a reference-template receiver does, written independently of src/: hex HMAC-SHA256 keyed by
 * the UTF-8 bytes of the secret string over "<X-Webhook-Timestamp>.<raw body bytes>", compared in
 * constant time, with a 300 s timestamp tolerance against the real clock.
 */
export function verifyLegacy(secret: string, rawBody: Buffer, headers: http.IncomingHttpHeaders): boolean {
  const ts = header(headers, 'x-webhook-timestamp');
  const sig = header(headers, 'x-webhook-signature');
  if (!/^\d+$/.test(ts) || !sig.startsWith('v1=')) return false;
  if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8'));
  mac.update(Buffer.from(`${ts}.`, 'utf8'));
  mac.update(rawBody);
  const expected = Buffer.from(`v1=${mac.digest('hex')}`, 'utf8');
  const given = Buffer.from(sig, 'utf8');
  return expected.length === given.length && timingSafeEqual(expected, given);
}

// ---------------------------------------------------------------------------------------------
// In-process scenario harness
// ---------------------------------------------------------------------------------------------

export const MIN = 60_000;
export const HOUR = 60 * MIN;

export interface HookAppOptions {
  webhooks: Array<Record<string, unknown>>;
  /** Merged over the fast test defaults below. */
  delivery?: Record<string, unknown>;
  periods?: string[];
  dryRun?: boolean;
  rng?: () => number;
}

/** Fast delivery settings for tests: short schedule, loopback allowlisted, quick polling. */
export const FAST_DELIVERY = {
  retrySchedule: ['100ms', '100ms', '100ms'],
  allowCidrs: ['127.0.0.1/32'],
  pollInterval: '20ms',
  lease: '2s',
};

/**
 * An app whose ManualClock starts at the real time (rounded to a whole second), because
 * `standardwebhooks` checks webhook-timestamp against the real clock with a 5 minute tolerance.
 */
export async function hookApp(o: HookAppOptions): Promise<TestApp> {
  return buildTestApp({
    now: Math.floor(Date.now() / 1000) * 1000,
    dryRun: o.dryRun ?? false,
    rng: o.rng ?? (() => 0.5),
    config: {
      periods: o.periods ?? ['hourly'],
      events: REFERENCE_CONFIG.events,
      webhooks: o.webhooks,
      webhookDelivery: { ...FAST_DELIVERY, ...(o.delivery ?? {}) },
    },
  });
}

/** An instant `minutes` into the hour that started two hours before the clock's hour: always due. */
export function pastHourAt(t: TestApp, minutes = 10): number {
  return Math.floor(t.clock.now() / HOUR) * HOUR - 2 * HOUR + minutes * MIN;
}

export interface UsageEvent {
  customerId: string;
  value: number;
  eventType?: string;
  /** Epoch ms; default pastHourAt(t). */
  at?: number;
}

export async function postEvents(t: TestApp, events: UsageEvent[]): Promise<void> {
  const payload = events.map((e) => ({
    eventType: e.eventType ?? 'api.calls',
    customerId: e.customerId,
    value: e.value,
    timestamp: new Date(e.at ?? pastHourAt(t)).toISOString(),
  }));
  const r = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload });
  assert.equal(r.statusCode, 201, `POST /usagebatch → ${r.statusCode} ${r.body}`);
}

export async function finalize(t: TestApp): Promise<CloseSummary> {
  return closeDuePeriods(t.ctx);
}

export interface ApiResponse<T> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | number | undefined>;
}

export async function api<T = any>(t: TestApp, method: 'GET' | 'POST', url: string, payload?: unknown): Promise<ApiResponse<T>> {
  const r = await t.app.inject({
    method,
    url,
    headers: payload === undefined ? { 'x-apikey': t.headers['x-apikey']! } : t.headers,
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  return { status: r.statusCode, body: (r.body ? r.json() : undefined) as T, headers: r.headers };
}

export interface DeliveryJson {
  id: string;
  messageId: string;
  endpointId: string;
  aggregationId: string;
  status: string;
  attempts: number;
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
  deadlineAt: string;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: string | null;
  dryRun: boolean;
}

export interface AttemptJson {
  attempt: number;
  startedAt: string;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  error: string | null;
  responseBody: string | null;
  webhookTimestamp: number;
  dryRun: boolean;
  manual: boolean;
}

export type DeliveryDetail = Omit<DeliveryJson, 'attempts'> & {
  attempts: AttemptJson[];
  message: { id: string; type: string; aggregationId: string; revision: number; createdAt: string; payload: any };
};

export async function listDeliveries(t: TestApp, query: Record<string, string> = {}): Promise<DeliveryJson[]> {
  const qs = new URLSearchParams({ limit: '1000', ...query }).toString();
  const r = await api<DeliveryJson[]>(t, 'GET', `/webhooks/deliveries?${qs}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

export async function getDelivery(t: TestApp, id: string): Promise<DeliveryDetail> {
  const r = await api<DeliveryDetail>(t, 'GET', `/webhooks/deliveries/${encodeURIComponent(id)}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

export async function endpointDeliveries(t: TestApp, endpointId: string): Promise<DeliveryJson[]> {
  return listDeliveries(t, { endpointId });
}

/**
 * Polls until `pred` holds (real deadline, default 8 s). When `advanceMs` is given, the manual clock
 * moves forward by that much whenever no attempt is in flight, so scheduled retries become due
 * without moving time under a live lease.
 */
export async function waitFor(
  t: TestApp,
  what: string | (() => string),
  pred: () => boolean | Promise<boolean>,
  o: { advanceMs?: number; timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 8_000);
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    if (o.advanceMs && t.dispatcher.activeCount === 0) t.clock.advance(o.advanceMs);
    t.dispatcher.notify();
    await sleep(15);
  }
}

/** Waits until the endpoint's deliveries all satisfy `pred` (and there is at least `count` of them). */
export async function waitForDeliveries(
  t: TestApp,
  endpointId: string,
  count: number,
  pred: (d: DeliveryJson) => boolean,
  o: { advanceMs?: number; timeoutMs?: number } = {},
): Promise<DeliveryJson[]> {
  let last: DeliveryJson[] = [];
  await waitFor(
    t,
    () =>
      `${count} deliveries of ${endpointId} to satisfy the condition ` +
      `(last [status, attempts]: ${JSON.stringify(last.map((d) => [d.status, d.attempts]))})`,
    async () => {
      last = await endpointDeliveries(t, endpointId);
      return last.length === count && last.every(pred);
    },
    o,
  );
  return last;
}

/** Lets the dispatcher run for `ms` real milliseconds without moving the clock (to show nothing more happens). */
export async function settle(t: TestApp, ms = 150): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    t.dispatcher.notify();
    await sleep(15);
  }
}

export const parseBody = (r: ReceivedRequest): any => JSON.parse(r.rawBody.toString('utf8'));
