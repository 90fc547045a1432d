// Starts a meterhook app on a loopback port (real HTTP, the test's store, a manual clock) for the vendor
// SDK suites, with event types that exercise valueProperty, and reads totals back through meterhook's own
// usage API over HTTP. Nothing is mocked: the SDKs reach the server by host or base URL only.

import type { AddressInfo } from 'node:net';
import { buildTestApp, REFERENCE_CONFIG, TEST_KEY, type TestApp } from './app.js';

/** The reference types, plus one whose value is `tokens` and a count type (reads no value). */
export const COMPAT_CONFIG = {
  ...REFERENCE_CONFIG,
  events: {
    ...REFERENCE_CONFIG.events,
    'llm.tokens': { op: 'sum', valueProperty: 'tokens' },
    'api.requests': { op: 'count' },
  },
};

/** Monday 2026-01-12 10:30 UTC: the monthly period is open for the whole suite. */
export const COMPAT_NOW = '2026-01-12T10:30:00Z';

export interface CompatServer {
  t: TestApp;
  /** http://127.0.0.1:port */
  url: string;
  host: string;
  port: number;
  key: string;
  /** The customer's monthly totals and counts, through GET /customers/:id/usage. */
  usage(customerId: string): Promise<{ events: Record<string, number>; eventCounts: Record<string, number> }>;
  close(): Promise<void>;
}

export async function startCompatServer(opts: { config?: Record<string, unknown>; now?: number } = {}): Promise<CompatServer> {
  const t = await buildTestApp({ config: opts.config ?? COMPAT_CONFIG, now: opts.now ?? COMPAT_NOW });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = t.app.server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    t,
    url,
    host: '127.0.0.1',
    port,
    key: TEST_KEY,
    async usage(customerId) {
      const res = await fetch(`${url}/customers/${encodeURIComponent(customerId)}/usage?period=monthly`, {
        headers: { authorization: `Bearer ${TEST_KEY}` },
      });
      if (res.status !== 200) throw new Error(`usage of ${customerId}: ${res.status} ${await res.text()}`);
      return (await res.json()) as { events: Record<string, number>; eventCounts: Record<string, number> };
    },
    close: () => t.close(),
  };
}

/** Unix seconds of an ISO instant. */
export const unixSeconds = (iso: string): number => Math.floor(Date.parse(iso) / 1000);
