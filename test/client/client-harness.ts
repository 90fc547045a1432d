// Owns the unit suites' client and fake-server bookkeeping: every client is closed after each test and
// every fake server after the suite. Must never leave a request running past its server.

import { after, afterEach } from 'node:test';
import { MeterhookClient } from '../../src/client/index.js';
import { startFakeServer, type FakeServer } from './fake-server.js';

const servers: FakeServer[] = [];
const clients: MeterhookClient[] = [];

export async function fake(...args: Parameters<typeof startFakeServer>): Promise<FakeServer> {
  const s = await startFakeServer(...args);
  servers.push(s);
  return s;
}

/** Stops tracking a server the test closed itself. */
export function forgetServer(s: FakeServer): void {
  servers.splice(servers.indexOf(s), 1);
}

export function client(url: string, o: Partial<ConstructorParameters<typeof MeterhookClient>[0]> = {}): MeterhookClient {
  const c = new MeterhookClient({ url, apiKey: 'mh_unit_key', retryBaseDelayMs: 20, retryMaxDelayMs: 200, ...o });
  clients.push(c);
  return c;
}

afterEach(async () => {
  // Settle whatever a failed test left queued, so no request outlives its server.
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
});
after(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
