// Shared pieces of the multi-process PostgreSQL tests: a cluster the file owns, bounded waits,
// paging through a listing, the event shape they send, and their teardown.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startPgCluster, type PgCluster } from './postgres-cluster.js';
import { cleanupServerProcesses, http, sleep, type HttpResult, type ServerProcess } from './server-process.js';

/** These files stop and restart their server, so TEST_DATABASE_URL is ignored on purpose. */
export async function ownCluster(): Promise<PgCluster> {
  const saved = process.env.TEST_DATABASE_URL;
  delete process.env.TEST_DATABASE_URL;
  try {
    return await startPgCluster();
  } finally {
    if (saved !== undefined) process.env.TEST_DATABASE_URL = saved;
  }
}

export async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>, every = 200): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

/** Every row of a listing, following X-Next-Cursor. */
export async function pageAll<T>(base: string, path: string, headers: Record<string, string>): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 1000; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const r: HttpResult<T[]> = await http<T[]>(`${base}${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {
      headers,
      timeoutMs: 15_000,
    });
    assert.equal(r.status, 200, `GET ${path}: ${r.text}`);
    out.push(...r.body);
    cursor = r.headers.get('x-next-cursor');
    if (!cursor) return out;
  }
  assert.fail(`paging ${path} did not end`);
}

/** An event as these tests send it, with its time as epoch ms. */
export interface Ev {
  id: string;
  customerId: string;
  eventType: string;
  value: number;
  ts: number;
}

/** The idempotency identity of an event (the store dedupes on it). */
export const keyOf = (e: { customerId: string; eventType: string; id: string | null }) =>
  `${e.customerId}\u0000${e.eventType}\u0000${e.id}`;

/** The wire form of an event in a batch. */
export const wireEvent = (x: Ev) => ({
  id: x.id,
  customerId: x.customerId,
  eventType: x.eventType,
  value: x.value,
  timestamp: new Date(x.ts).toISOString(),
});

/** Kills every server, then closes the receiver, the pools (bounded: a pool waiting on a lost connection must not hang) and the cluster. */
export async function tearDown(o: {
  servers: ServerProcess[];
  receiver?: { close(): Promise<unknown> } | undefined;
  pools?: Array<{ end(): Promise<unknown> } | undefined>;
  cluster?: PgCluster | undefined;
}): Promise<void> {
  for (const s of o.servers) await s.kill('SIGKILL').catch(() => undefined);
  await cleanupServerProcesses();
  await o.receiver?.close();
  for (const p of o.pools ?? []) if (p) await Promise.race([p.end().catch(() => undefined), sleep(3_000)]);
  await o.cluster?.stop();
}

/**
 * Makes events with unique ids (`prefix`), customers in turn, random types and values, and unique
 * ms-distinct times inside [base, base + 55 min) so first/last never tie; records each in `sent`.
 */
export function eventFactory(o: {
  prefix: string;
  customers: string[];
  types: string[];
  base: number;
  step: number;
  sent: Map<string, Ev>;
}): () => Ev {
  let n = 0;
  return () => {
    const i = n++;
    const e: Ev = {
      id: `${o.prefix}-${i}-${randomBytes(3).toString('hex')}`,
      customerId: o.customers[i % o.customers.length]!,
      eventType: o.types[Math.floor(Math.random() * o.types.length)]!,
      value: 1 + Math.floor(Math.random() * 1000),
      ts: o.base + ((i * o.step) % 3_300_000),
    };
    o.sent.set(keyOf(e), e);
    return e;
  };
}
