// Owns what the webhook delivery and failure-mode suites share: secrets, receiver-then-app cleanup, the hourly aggregation read.
// Must never hold a test of its own, nor start a receiver or an app.

import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';

import type { TestApp } from './app.js';
import { api, type Receiver } from './receiver.js';

/** The delivery suites' secrets and customer (non-ASCII on purpose). */
export const PLAIN = 'plain-shared-secret-äöü-1';
export const PLAIN_2 = 'second-plain-secret-2222';
export const whsecOf = (plain: string): string => `whsec_${Buffer.from(plain, 'utf8').toString('base64')}`;
export const CUSTOMER = 'kunde_äöü_日本';

/** The failure-mode suites' endpoint secret. */
export const SECRET = 'failure-mode-secret-0001';

/** Closes receivers first (so in-flight sends end), then the app. */
export function cleanup(tc: TestContext, receivers: Receiver[], t?: TestApp): void {
  tc.after(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await t?.close();
  });
}

export interface AggJson {
  id: string;
  customerId: string;
  period: string;
  revision: number;
  final: boolean;
  webhookStatus: { delivered: boolean; attempts: number; deliveredAt?: string; lastError?: string; dryRun?: boolean };
}

export async function hourlyAggregation(t: TestApp, customerId: string): Promise<AggJson> {
  const r = await api<AggJson[]>(t, 'GET', `/aggregations?period=hourly&customerId=${encodeURIComponent(customerId)}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 1, JSON.stringify(r.body));
  return r.body[0]!;
}
