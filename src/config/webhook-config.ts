// Owns the webhook parts of the configuration: per-endpoint options and the webhookDelivery block.
// Must never echo a secret in a problem message.

import { createHash } from 'node:crypto';
import { DurationError, parseDuration } from '../domain/durations.js';
import { isPeriod, PERIODS, type Period } from '../domain/periods.js';
import { isIP, isIPv6 } from 'node:net';
import { MESSAGE_TYPES, type MessageType } from '../domain/deliveries.js';

export { MESSAGE_TYPES, type MessageType };

/** The retry schedule and delivery deadline when webhookDelivery does not set them. */
export const DEFAULT_RETRY_SCHEDULE = ['5s', '5m', '30m', '2h', '5h', '10h', '14h', '20h', '24h'];
export const DEFAULT_DEADLINE = '4d';

/** Validates a CIDR string for configuration; returns a problem or null. */
export function cidrProblem(c: string): string | null {
  const [addr, bits, extra] = c.split('/');
  if (extra !== undefined || !addr || isIP(addr) === 0) return `must be a CIDR such as "127.0.0.1/32" (got ${JSON.stringify(c)})`;
  const max = isIPv6(addr) ? 128 : 32;
  if (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > max)) {
    return `prefix length must be 0–${max} (got ${JSON.stringify(c)})`;
  }
  return null;
}

export interface EndpointOptions {
  id: string;
  events: MessageType[];
  /** null: every configured period. */
  periods: Period[] | null;
  legacyHeaders: boolean;
  timeoutMs: number;
}

export interface WebhookDeliveryConfig {
  retryScheduleMs: number[];
  deadlineMs: number;
  allowHttp: boolean;
  allowCidrs: string[];
  /** Most requests in flight from one process. */
  concurrency: number;
  /** Most requests in flight to one endpoint, so a slow receiver cannot take every slot. */
  perEndpointConcurrency: number;
  /** How long a claimed delivery stays owned; a worker that dies releases it when this runs out. */
  leaseMs: number;
  /** How often the dispatcher looks for due deliveries when idle. */
  pollIntervalMs: number;
}

type Fail = (segments: string[], text: string) => void;
const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const ENDPOINT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function duration(value: unknown, where: string[], fallback: string, fail: Fail, minMs = 0): number {
  if (value === undefined) return parseDuration(fallback);
  if (typeof value !== 'string') {
    fail(where, 'must be a duration string such as "10s"');
    return parseDuration(fallback);
  }
  try {
    const ms = parseDuration(value);
    if (ms < minMs) fail(where, `must be at least ${minMs} ms (got "${value}")`);
    return ms;
  } catch (err) {
    if (!(err instanceof DurationError)) throw err;
    fail(where, err.message);
    return parseDuration(fallback);
  }
}

/** A stable endpoint id: the configured `id`, else derived from the URL, so state survives restarts. */
export function endpointIdFor(url: string): string {
  return `ep_${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;
}

export function parseEndpointOptions(entry: Record<string, unknown>, where: string[], url: string, fail: Fail): EndpointOptions {
  let id = endpointIdFor(url);
  if (entry.id !== undefined) {
    if (typeof entry.id === 'string' && ENDPOINT_ID.test(entry.id)) id = entry.id;
    else fail([...where, 'id'], 'must be 1–64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit');
  }
  let events: MessageType[] = [...MESSAGE_TYPES];
  if (entry.events !== undefined) {
    if (!Array.isArray(entry.events) || entry.events.length === 0) {
      fail([...where, 'events'], `must be a non-empty array of ${MESSAGE_TYPES.join(', ')}`);
    } else {
      events = [];
      entry.events.forEach((e: unknown, j) => {
        if ((MESSAGE_TYPES as readonly unknown[]).includes(e)) events.push(e as MessageType);
        else fail([...where, 'events', String(j)], `must be one of ${MESSAGE_TYPES.join(', ')} (got ${JSON.stringify(e)})`);
      });
    }
  }
  let periods: Period[] | null = null;
  if (entry.periods !== undefined) {
    if (!Array.isArray(entry.periods) || entry.periods.length === 0) {
      fail([...where, 'periods'], `must be a non-empty array of ${PERIODS.join(', ')}`);
    } else {
      periods = [];
      entry.periods.forEach((p: unknown, j) => {
        if (isPeriod(p)) periods!.push(p);
        else fail([...where, 'periods', String(j)], `must be one of ${PERIODS.join(', ')} (got ${JSON.stringify(p)})`);
      });
    }
  }
  let legacyHeaders = true;
  if (entry.legacyHeaders !== undefined) {
    if (typeof entry.legacyHeaders === 'boolean') legacyHeaders = entry.legacyHeaders;
    else fail([...where, 'legacyHeaders'], 'must be true or false');
  }
  const timeoutMs = duration(entry.timeout, [...where, 'timeout'], '10s', fail, 1);
  return { id, events, periods, legacyHeaders, timeoutMs };
}

export const DEFAULT_WEBHOOK_DELIVERY = {
  retrySchedule: DEFAULT_RETRY_SCHEDULE,
  deadline: DEFAULT_DEADLINE,
  allowHttp: true,
  allowCidrs: [] as string[],
  concurrency: 16,
  perEndpointConcurrency: 4,
  lease: '60s',
  pollInterval: '1s',
};

function positiveInt(v: unknown, where: string[], fallback: number, max: number, fail: Fail): number {
  if (v === undefined) return fallback;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max) return v;
  fail(where, `must be an integer from 1 to ${max} (got ${JSON.stringify(v)})`);
  return fallback;
}

export function parseWebhookDelivery(raw: unknown, fail: Fail): WebhookDeliveryConfig {
  const d = DEFAULT_WEBHOOK_DELIVERY;
  if (raw !== undefined && !isObj(raw)) fail(['webhookDelivery'], 'must be an object');
  const o = isObj(raw) ? raw : {};
  let retryScheduleMs = d.retrySchedule.map(parseDuration);
  if (o.retrySchedule !== undefined) {
    if (!Array.isArray(o.retrySchedule)) fail(['webhookDelivery', 'retrySchedule'], 'must be an array of durations such as ["5s", "5m"]');
    else retryScheduleMs = o.retrySchedule.map((v: unknown, i) => duration(v, ['webhookDelivery', 'retrySchedule', String(i)], '5s', fail));
  }
  const deadlineMs = duration(o.deadline, ['webhookDelivery', 'deadline'], d.deadline, fail, 1);
  let allowHttp = d.allowHttp;
  if (o.allowHttp !== undefined) {
    if (typeof o.allowHttp === 'boolean') allowHttp = o.allowHttp;
    else fail(['webhookDelivery', 'allowHttp'], 'must be true or false');
  }
  const allowCidrs: string[] = [];
  if (o.allowCidrs !== undefined) {
    if (!Array.isArray(o.allowCidrs)) fail(['webhookDelivery', 'allowCidrs'], 'must be an array of CIDRs such as ["127.0.0.1/32"]');
    else {
      o.allowCidrs.forEach((c: unknown, i) => {
        const problem = typeof c === 'string' ? cidrProblem(c) : 'must be a CIDR string';
        if (problem) fail(['webhookDelivery', 'allowCidrs', String(i)], problem);
        else allowCidrs.push(c as string);
      });
    }
  }
  return {
    retryScheduleMs,
    deadlineMs,
    allowHttp,
    allowCidrs,
    concurrency: positiveInt(o.concurrency, ['webhookDelivery', 'concurrency'], d.concurrency, 1000, fail),
    perEndpointConcurrency: positiveInt(
      o.perEndpointConcurrency,
      ['webhookDelivery', 'perEndpointConcurrency'],
      d.perEndpointConcurrency,
      1000,
      fail,
    ),
    leaseMs: duration(o.lease, ['webhookDelivery', 'lease'], d.lease, fail, 1000),
    pollIntervalMs: duration(o.pollInterval, ['webhookDelivery', 'pollInterval'], d.pollInterval, fail, 10),
  };
}

/** The webhookDelivery block as shown by GET /config, defaults filled in. */
export function effectiveWebhookDelivery(raw: unknown): Record<string, unknown> {
  const o = isObj(raw) ? raw : {};
  const d = DEFAULT_WEBHOOK_DELIVERY;
  return {
    retrySchedule: o.retrySchedule ?? d.retrySchedule,
    deadline: o.deadline ?? d.deadline,
    allowHttp: o.allowHttp ?? d.allowHttp,
    allowCidrs: o.allowCidrs ?? d.allowCidrs,
    concurrency: o.concurrency ?? d.concurrency,
    perEndpointConcurrency: o.perEndpointConcurrency ?? d.perEndpointConcurrency,
    lease: o.lease ?? d.lease,
    pollInterval: o.pollInterval ?? d.pollInterval,
  };
}
