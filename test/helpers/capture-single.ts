// Shared pieces of the POST /usage/:eventType suites: constants, request helpers and the checks that a
// rejected request stored nothing. Must never hold a test of its own.

import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import type { StoredEvent as EventDoc, Usage } from '../../src/client/types.js';
import type { TestApp } from './app.js';

/** The wire shapes the suites read, as the SDK declares them (so a drift fails the type check). */
export type { EventDoc, Usage };

export const TYPES_LIST = 'api.calls, storage.bytes, response.time.ms, test.min, test.count, test.first, test.last';
export const NOW = Date.parse('2026-01-12T10:30:00Z');
export const DAY = 86_400_000;
export const MINUTE = 60_000;

let seq = 0;
/** A customer id no other test uses. */
export const cid = (label: string): string => `single_${label}_${++seq}`;

export function json<T = Record<string, unknown>>(res: LightMyRequestResponse): T {
  assert.match(String(res.headers['content-type']), /^application\/json/, `content-type of ${res.statusCode}: ${res.body}`);
  return res.json() as T;
}

export async function post(
  t: TestApp,
  type: string,
  payload: unknown,
  extra: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url: `/usage/${type}`,
    headers: { ...t.headers, ...extra },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
}

export async function eventsOf(t: TestApp, customerId?: string): Promise<EventDoc[]> {
  const qs = customerId === undefined ? 'limit=1000' : `customerId=${encodeURIComponent(customerId)}&limit=1000`;
  const res = await t.app.inject({ method: 'GET', url: `/events?${qs}`, headers: t.headers });
  assert.equal(res.statusCode, 200, res.body);
  const docs = res.json() as EventDoc[];
  assert.ok(Array.isArray(docs));
  assert.ok(docs.length < 1000, 'test store grew past one page');
  return docs;
}

export async function usageOf(t: TestApp, customerId: string, period = 'daily'): Promise<Usage> {
  const res = await t.app.inject({
    method: 'GET',
    url: `/customers/${encodeURIComponent(customerId)}/usage?period=${period}`,
    headers: t.headers,
  });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as Usage;
}

/** Asserts a 201 with the compat body. */
export function assertCaptured(res: LightMyRequestResponse, eventType: string, customerId: string): Record<string, unknown> {
  assert.equal(res.statusCode, 201, res.body);
  const body = json(res);
  assert.equal(body.message, 'Event captured');
  assert.equal(body.eventType, eventType);
  assert.equal(body.customerId, customerId);
  return body;
}

/**
 * Sends a request that must be rejected: asserts the status, a JSON body with an `error` string, and
 * that the store holds exactly as many events afterwards as before.
 */
export async function rejected(t: TestApp, status: number, send: () => Promise<LightMyRequestResponse>): Promise<Record<string, unknown>> {
  const before = (await eventsOf(t)).length;
  const res = await send();
  assert.equal(res.statusCode, status, res.body);
  const body = json(res);
  assert.equal(typeof body.error, 'string');
  assert.equal((await eventsOf(t)).length, before, 'a rejected request must store nothing');
  return body;
}

/** A 422 whose details are exactly `details`. */
export async function invalid(t: TestApp, payload: unknown, details: string[], type = 'api.calls'): Promise<void> {
  const body = await rejected(t, 422, () => post(t, type, payload));
  assert.deepEqual(body, { error: 'Validation failed', details });
}

/** A 422 with a single detail matching `pattern`. */
export async function invalidMatching(t: TestApp, payload: unknown, pattern: RegExp, extra: Record<string, string> = {}): Promise<string> {
  const body = await rejected(t, 422, () => post(t, 'api.calls', payload, extra));
  assert.equal(body.error, 'Validation failed');
  const details = body.details as string[];
  assert.ok(Array.isArray(details), 'details must be an array');
  assert.equal(details.length, 1, JSON.stringify(details));
  assert.match(details[0]!, pattern);
  return details[0]!;
}

/** An object nested `levels` objects deep, the outermost included. */
export function nested(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < levels; i++) v = { [`l${i}`]: v };
  return v;
}
