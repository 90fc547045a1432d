// Owns the sample requests the route sweeps share: a configuration with one endpoint, a real delivery to
// look up, a value for every path parameter, a valid body for every route that takes one, and the request
// that reaches a route's handler. Must never hold a test of its own.

import assert from 'node:assert/strict';
import type { InjectOptions } from 'fastify';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { REFERENCE_CONFIG, type TestApp } from './app.js';

/** One endpoint on a loopback port nothing listens on, so a manual retry fails fast without leaving the machine. */
export const SAMPLE_CONFIG = {
  ...REFERENCE_CONFIG,
  webhooks: [{ id: 'billing', url: 'http://127.0.0.1:9/hooks', secret: 'whsec_c2VjdXJpdHktc3VpdGUtc2VjcmV0LTEyMzQ1Ng==' }],
  webhookDelivery: { allowCidrs: ['127.0.0.1/32'], retrySchedule: ['1s'] },
};

/** A finalized hour gives one real delivery, so the delivery routes can reach their handlers; sets PARAM_SAMPLES.id. */
export async function seedDelivery(t: TestApp): Promise<void> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/usagebatch',
    headers: t.headers,
    payload: [{ eventType: 'api.calls', customerId: 'cust_1', value: 1, timestamp: '2026-01-12T09:10:00Z' }],
  });
  assert.equal(res.statusCode, 201, res.body);
  await t.ctx.store.syncEndpoints([{ id: 'billing', url: 'http://127.0.0.1:9/hooks' }]);
  await closeDuePeriods(t.ctx);
  const [delivery] = await t.ctx.store.listDeliveries({ limit: 1 });
  assert.ok(delivery, 'the close created a delivery');
  PARAM_SAMPLES.id = delivery.id;
  // A spare key, for the key routes to look up and revoke (never the key the sweep itself uses).
  PARAM_SAMPLES.keyId = (await createApiKey(t.ctx.store, t.ctx.clock, 'sample', ['read'])).record.id;
}

/**
 * Sample values for path parameters, by name. A route with a parameter not listed here fails the suite.
 * `id` (a delivery) is filled in by seedDelivery, once a finalized aggregation has produced one; `keyId` (a spare
 * read key) too.
 */
export const PARAM_SAMPLES: Record<string, string> = { eventType: 'api.calls', customerId: 'cust_1', endpointId: 'billing' };

/** A valid body per route that takes one, so "the right key" can be checked to reach the handler (2xx). */
export const VALID_BODIES: Record<string, unknown> = {
  'POST /usage/:eventType': { customerId: 'cust_1', value: 1 },
  'POST /usagebatch': [{ eventType: 'api.calls', customerId: 'cust_1', value: 1 }],
  'POST /webhooks/recover': { since: '2026-01-01T00:00:00Z' },
  'POST /keys': { name: 'sample', scopes: ['read'] },
};

export function paramNames(pattern: string): string[] {
  return [...pattern.matchAll(/:(\w+)/g)].map((m) => m[1]!);
}

/** The route's path with parameters replaced (defaults from PARAM_SAMPLES). */
export function concrete(pattern: string, overrides: Record<string, string> = {}): string {
  return pattern.replace(/:(\w+)/g, (_, name: string) => {
    const v = overrides[name] ?? PARAM_SAMPLES[name];
    assert.ok(v !== undefined, `no sample value for path parameter :${name} in ${pattern}; add one to PARAM_SAMPLES`);
    return v;
  });
}

export function split(route: string): { method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'; pattern: string } {
  const [method, pattern] = route.split(' ') as [string, string];
  assert.ok(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method), `unexpected method in ${route}`);
  return { method: method as 'GET', pattern };
}

/** A request that the route should accept: sample path, valid body if it takes one. */
export function validRequest(route: string, headers: Record<string, string>, query = ''): InjectOptions {
  const { method, pattern } = split(route);
  const body = VALID_BODIES[route];
  const url = concrete(pattern) + (query ? `?${query}` : '');
  return body === undefined
    ? { method, url, headers }
    : { method, url, headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify(body) };
}

/**
 * The drop-in vendor routes (Stripe at the root, the others under /compat/): they speak their vendor's wire
 * format and errors, and are held to them by test/compat (each with the vendor's own SDK) and by the OpenAPI and
 * response contracts; the sweeps of meterhook's own routes leave them out.
 */
export const isDropInRoute = (route: string): boolean => / \/(v1|v2)\/billing\/| \/compat\//.test(route);
