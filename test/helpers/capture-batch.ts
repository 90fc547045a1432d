// Shared pieces of the POST /usagebatch suites: constants, request helpers and the checks that a
// rejected batch stored nothing. Must never hold a test of its own.

import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import type { StoredEvent as EventDoc, Usage } from '../../src/client/types.js';
import type { TestApp } from './app.js';

/** The wire shapes the suites read, as the SDK declares them (so a drift fails the type check). */
export type { EventDoc, Usage };

export const TYPES_LIST = 'api.calls, storage.bytes, response.time.ms, test.min, test.count, test.first, test.last';
export const NO_TYPES = { error: 'Service misconfigured: no event types available' };

let seq = 0;
export const cid = (label: string): string => `batch_${label}_${++seq}`;

export function json<T = Record<string, unknown>>(res: LightMyRequestResponse): T {
  assert.match(String(res.headers['content-type']), /^application\/json/, `content-type of ${res.statusCode}: ${res.body}`);
  return res.json() as T;
}

export async function batch(t: TestApp, payload: unknown, headers: Record<string, string> = t.headers): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url: '/usagebatch',
    headers,
    ...(payload === undefined ? {} : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
  });
}

export async function eventsOf(t: TestApp, customerId?: string): Promise<EventDoc[]> {
  const out: EventDoc[] = [];
  let cursor: string | undefined;
  // Pages through everything so counts above one page are exact.
  for (;;) {
    const qs = new URLSearchParams({ limit: '1000' });
    if (customerId !== undefined) qs.set('customerId', customerId);
    if (cursor !== undefined) qs.set('cursor', cursor);
    const res = await t.app.inject({ method: 'GET', url: `/events?${qs}`, headers: t.headers });
    assert.equal(res.statusCode, 200, res.body);
    out.push(...(res.json() as EventDoc[]));
    const next = res.headers['x-next-cursor'];
    if (typeof next !== 'string') return out;
    cursor = next;
  }
}

export async function usageOf(t: TestApp, customerId: string): Promise<Usage> {
  const res = await t.app.inject({ method: 'GET', url: `/customers/${customerId}/usage?period=daily`, headers: t.headers });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as Usage;
}

export async function rejected(t: TestApp, status: number, send: () => Promise<LightMyRequestResponse>): Promise<Record<string, unknown>> {
  const before = (await eventsOf(t)).length;
  const res = await send();
  assert.equal(res.statusCode, status, res.body);
  const body = json(res);
  assert.equal(typeof body.error, 'string');
  assert.equal((await eventsOf(t)).length, before, 'a rejected batch must store nothing');
  return body;
}

export const ev = (customerId: string, value: number, extra: Record<string, unknown> = {}) => ({
  eventType: 'api.calls',
  customerId,
  value,
  ...extra,
});
