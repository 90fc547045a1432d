// Durability of acknowledged events: a real server process under concurrent load is SIGKILLed
// mid-flight; after a restart on the same data dir every event that got a 2xx is stored exactly
// once, nothing unsent appears, rollups agree with the events, and re-sending is a no-op.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  cleanupServerProcesses,
  http,
  makeTempDir,
  sleep,
  startServerProcess,
  type HttpResult,
  type ServerProcess,
} from '../helpers/server-process.js';

interface SentEvent {
  id: string;
  eventType: string;
  customerId: string;
  value: number;
  metadata: Record<string, unknown>;
}

interface SentRequest {
  kind: 'single' | 'batch';
  events: SentEvent[];
}

const CUSTOMERS = ['cust_crash_a', 'cust_crash_b', 'cust_crash_c'];
const LOAD_MS = 1500;
const SINGLE_LOOPS = 4;
const BATCH_LOOPS = 2;
const BATCH_SIZE = 25;

/** Runs fn over items with at most `n` in flight. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function allEvents(server: ServerProcess, headers: Record<string, string>): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 500; page++) {
    const r: HttpResult<any[]> = await http(`${server.url}/events?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {
      headers,
    });
    assert.equal(r.status, 200, r.text);
    out.push(...r.body);
    cursor = r.headers.get('x-next-cursor');
    if (!cursor) return out;
  }
  assert.fail('GET /events paging did not end');
}

describe('crash durability (SIGKILL under load)', () => {
  const servers: ServerProcess[] = [];
  after(async () => {
    for (const s of servers) await s.kill('SIGKILL').catch(() => undefined);
    await cleanupServerProcesses();
  });

  it('keeps every acknowledged event exactly once across a kill -9 and restart', async (t) => {
    const dataDir = makeTempDir();
    const key = 'mh_crash_test_key_0123456789';
    const headers = { 'x-apikey': key };
    const first = await startServerProcess({ dataDir, apiKey: key });
    servers.push(first);

    const sent = new Map<string, SentEvent>();
    const acked = new Set<string>();
    const ackedRequests: SentRequest[] = [];
    const unexpected: string[] = [];
    const allBatches: SentEvent[][] = [];
    let failedAfterKill = 0;
    let killing = false;
    let stopLoops = false;
    let seq = 0;

    const event = (loop: string, eventType: string): SentEvent => {
      const n = seq++;
      const e: SentEvent = {
        id: `crash-${loop}-${n}`,
        eventType,
        customerId: CUSTOMERS[n % CUSTOMERS.length]!,
        value: (n % 97) + 1,
        metadata: { loop, n },
      };
      sent.set(e.id, e);
      return e;
    };

    const send = async (req: SentRequest): Promise<void> => {
      try {
        const r =
          req.kind === 'single'
            ? await http(`${first.url}/usage/${req.events[0]!.eventType}`, {
                method: 'POST',
                headers,
                body: (({ eventType: _t, ...rest }) => rest)(req.events[0]!),
              })
            : await http(`${first.url}/usagebatch`, { method: 'POST', headers, body: req.events });
        if (r.status >= 200 && r.status < 300) {
          for (const e of req.events) acked.add(e.id);
          ackedRequests.push(req);
        } else if (r.status !== 503) {
          unexpected.push(`${req.kind} → ${r.status} ${r.text}`);
        }
      } catch (err) {
        // A connection reset or refusal: the request may or may not have been committed.
        if (killing) failedAfterKill++;
        else unexpected.push(`${req.kind} failed before the kill: ${(err as Error).message}`);
      }
    };

    const loops: Array<Promise<void>> = [];
    for (let l = 0; l < SINGLE_LOOPS; l++) {
      loops.push(
        (async () => {
          while (!stopLoops) await send({ kind: 'single', events: [event(`s${l}`, 'api.calls')] });
        })(),
      );
    }
    for (let l = 0; l < BATCH_LOOPS; l++) {
      loops.push(
        (async () => {
          while (!stopLoops) {
            const events = Array.from({ length: BATCH_SIZE }, (_, i) => event(`b${l}`, i % 2 === 0 ? 'test.count' : 'storage.bytes'));
            allBatches.push(events);
            await send({ kind: 'batch', events });
          }
        })(),
      );
    }

    await sleep(LOAD_MS);
    const ackedBeforeKill = acked.size;
    // The loops keep sending while the process dies; whatever is in flight is cut off.
    killing = true;
    const exit = await first.kill('SIGKILL');
    stopLoops = true;
    await withTimeout(Promise.all(loops), 15_000, 'the load loops');

    assert.equal(exit.signal, 'SIGKILL');
    assert.deepEqual(unexpected, [], 'no request failed for a reason other than the kill');
    assert.ok(ackedBeforeKill > 200, `the load was real: ${ackedBeforeKill} events acknowledged before the kill`);
    assert.ok(ackedRequests.some((r) => r.kind === 'batch') && ackedRequests.some((r) => r.kind === 'single'));

    // Restart on the same data dir.
    const second = await startServerProcess({ dataDir, apiKey: key });
    servers.push(second);
    assert.equal(second.announcedKey, undefined, 'a restart with a configured key prints no new key');

    const stored = await allEvents(second, headers);
    const storedIds = new Map<string, number>();
    for (const e of stored) storedIds.set(e.id, (storedIds.get(e.id) ?? 0) + 1);

    const missing = [...acked].filter((id) => !storedIds.has(id));
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acknowledged events are missing after the crash`);
    const doubled = [...storedIds].filter(([, n]) => n !== 1).map(([id]) => id);
    assert.deepEqual(doubled, [], 'no event is stored twice');
    const foreign = [...storedIds.keys()].filter((id) => !sent.has(id));
    assert.deepEqual(foreign, [], 'nothing is stored that was never sent');
    assert.ok(stored.length <= sent.size, `stored ${stored.length} ≤ sent ${sent.size}`);
    assert.ok(stored.length >= acked.size, `stored ${stored.length} ≥ acknowledged ${acked.size}`);

    t.diagnostic(`sent ${sent.size}, acknowledged ${acked.size}, stored ${stored.length}, requests cut off by the kill ${failedAfterKill}`);

    // Stored content is what was sent.
    for (const e of stored) {
      const s = sent.get(e.id)!;
      assert.equal(e.customerId, s.customerId);
      assert.equal(e.eventType, s.eventType);
      assert.equal(e.value, s.value);
      assert.deepEqual(e.metadata, s.metadata);
    }
    // Batches are all or nothing, even across a crash.
    for (const b of allBatches) {
      const present = b.filter((e) => storedIds.has(e.id)).length;
      assert.ok(present === 0 || present === b.length, `a batch is stored whole or not at all (${present}/${b.length})`);
    }

    // Rollups (real-time usage) agree with the stored events, per customer, month and type.
    const expected = new Map<string, Map<string, { count: number; sum: number; max: number }>>();
    for (const e of stored) {
      const k = `${e.customerId}|${e.month}`;
      const types = expected.get(k) ?? new Map();
      const agg = types.get(e.eventType) ?? { count: 0, sum: 0, max: -Infinity };
      agg.count++;
      agg.sum += e.value;
      agg.max = Math.max(agg.max, e.value);
      types.set(e.eventType, agg);
      expected.set(k, types);
    }
    for (const [k, types] of expected) {
      const [customerId, month] = k.split('|') as [string, string];
      const at = `${month.slice(0, 4)}-${month.slice(4, 6)}-01`;
      const u = await http(`${second.url}/customers/${customerId}/usage?period=monthly&at=${at}`, { headers });
      assert.equal(u.status, 200, u.text);
      for (const [type, agg] of types) {
        assert.equal(u.body.eventCounts[type], agg.count, `${customerId} ${month} ${type} count`);
        if (type === 'api.calls') assert.equal(u.body.events[type], agg.sum, `${customerId} ${month} api.calls sum`);
        if (type === 'storage.bytes') assert.equal(u.body.events[type], agg.max, `${customerId} ${month} storage.bytes max`);
        if (type === 'test.count') assert.equal(u.body.events[type], agg.count, `${customerId} ${month} test.count`);
      }
    }

    // Re-sending every acknowledged request (same ids, same content) is answered as a duplicate.
    const resendProblems: string[] = [];
    await withTimeout(
      pool(ackedRequests, 8, async (req) => {
        if (req.kind === 'single') {
          const { eventType, ...body } = req.events[0]!;
          const r = await http(`${second.url}/usage/${eventType}`, { method: 'POST', headers, body });
          if (r.status !== 200 || r.body.duplicate !== true) resendProblems.push(`single ${body.id} → ${r.status} ${r.text}`);
        } else {
          const r = await http(`${second.url}/usagebatch`, { method: 'POST', headers, body: req.events });
          if (r.status !== 200 || r.body.inserted !== 0 || r.body.duplicates !== req.events.length || r.body.count !== req.events.length) {
            resendProblems.push(`batch → ${r.status} ${r.text}`);
          }
        }
      }),
      30_000,
      'the re-send',
    );
    assert.deepEqual(resendProblems.slice(0, 5), [], `${resendProblems.length} re-sent requests were not answered as duplicates`);

    const afterResend = await allEvents(second, headers);
    assert.equal(afterResend.length, stored.length, 'the re-send stored nothing new');
    for (const [k, types] of expected) {
      const [customerId, month] = k.split('|') as [string, string];
      const at = `${month.slice(0, 4)}-${month.slice(4, 6)}-01`;
      const u = await http(`${second.url}/customers/${customerId}/usage?period=monthly&at=${at}`, { headers });
      for (const [type, agg] of types) assert.equal(u.body.eventCounts[type], agg.count, `${customerId} ${type} count unchanged`);
    }

    await second.stop();
  });
});
