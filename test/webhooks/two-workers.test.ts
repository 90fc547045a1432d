// Spec failure-mode test 6, in-process: two Dispatcher instances (two "workers" with different lease
// owners) share one store. Every message is sent exactly once in the happy path, and a delivery
// leased by a worker that died is taken over by a live worker once the lease runs out on the test clock.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import nodeHttp from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import type { AttemptRecord } from '../../src/domain/deliveries.js';
import type { DeliveryPort } from '../../src/store/store.js';
import { Dispatcher } from '../../src/webhooks/dispatcher.js';
import { createSender, type SendRequest, type Sender } from '../../src/webhooks/sender.js';
import { standardSecretForm } from '../../src/webhooks/signing.js';
import { createSsrfGuard } from '../../src/webhooks/ssrf-guard.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

const SECRET = 'two-workers-secret-123';
const HOUR = 3_600_000;
const LEASE_MS = 10_000;

interface Receiver {
  url: string;
  /** Requests per webhook-id. */
  perId: Map<string, number>;
  arrivals: Array<{ id: string }>;
  badSignatures: string[];
  /** Most requests in flight at once. */
  maxConcurrent: number;
  close(): Promise<void>;
}

/** A loopback receiver that verifies every request, counts it per webhook-id and answers 200 after `delayMs`. */
async function startReceiver(delayMs: number): Promise<Receiver> {
  const wh = new Webhook(standardSecretForm(SECRET));
  let concurrent = 0;
  const r: Omit<Receiver, 'url' | 'close'> = { perId: new Map(), arrivals: [], badSignatures: [], maxConcurrent: 0 };
  const server = nodeHttp.createServer((req, res) => {
    concurrent++;
    r.maxConcurrent = Math.max(r.maxConcurrent, concurrent);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = String(req.headers['webhook-id']);
      r.perId.set(id, (r.perId.get(id) ?? 0) + 1);
      r.arrivals.push({ id });
      try {
        wh.verify(Buffer.concat(chunks), req.headers as Record<string, string>);
      } catch {
        r.badSignatures.push(id);
      }
      setTimeout(() => {
        concurrent--;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      }, delayMs);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    ...r,
    url: `http://127.0.0.1:${port}/hook`,
    get maxConcurrent() {
      return r.maxConcurrent;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function config(url: string, delivery: Record<string, unknown> = {}) {
  return {
    periods: ['hourly'],
    events: { 'api.calls': { op: 'sum' } },
    webhooks: [{ id: 'rx', url, secret: SECRET }],
    webhookDelivery: {
      allowCidrs: ['127.0.0.1/32'],
      lease: `${LEASE_MS}ms`,
      pollInterval: '100ms',
      retrySchedule: ['500ms', '500ms', '1s'],
      ...delivery,
    },
  };
}

interface Worker {
  owner: string;
  dispatcher: Dispatcher;
  sender: Sender;
  /** webhook-ids this worker handed to its sender. */
  sent: string[];
  /** The timeout each of those requests was given. */
  timeouts: number[];
  inFlight: number;
  maxInFlight: number;
}

/** Assembled like src/webhooks/create-dispatcher.ts, on the app's manual clock, with a sender that counts what it sends. */
function makeWorker(t: TestApp, owner: string, store: DeliveryPort = t.ctx.store): Worker {
  const { allowHttp, allowCidrs } = t.config.webhookDelivery;
  const real = createSender(createSsrfGuard({ allowHttp, allowCidrs }));
  const w = { owner, sent: [] as string[], timeouts: [] as number[], inFlight: 0, maxInFlight: 0 } as Worker;
  w.sender = {
    async send(req: SendRequest, now?: () => number) {
      w.sent.push(req.headers['webhook-id']!);
      w.timeouts.push(req.timeoutMs);
      w.inFlight++;
      w.maxInFlight = Math.max(w.maxInFlight, w.inFlight);
      try {
        return await real.send(req, now);
      } finally {
        w.inFlight--;
      }
    },
    close: () => real.close(),
  };
  w.dispatcher = new Dispatcher({
    store,
    config: t.config,
    clock: t.clock,
    logger: pino({ level: 'silent' }),
    sender: w.sender,
    dryRun: false,
    userAgent: 'meterhook/test',
    owner,
  });
  return w;
}

/**
 * Resolves once every worker is idle: each one's last claim pass found nothing it could take, and every
 * attempt it made is answered and recorded. A second round covers work one worker left to another.
 */
async function settle(...workers: Worker[]): Promise<void> {
  for (let round = 0; round < 2; round++) for (const w of workers) await w.dispatcher.settled();
}

/** A claim pass on each worker now, awaited: what it finds due it sends. */
async function claimPass(...workers: Worker[]): Promise<void> {
  for (const w of workers) w.dispatcher.notify();
  await settle(...workers);
}

/** One due hour (two hours ago) for each customer, captured through the HTTP API, then finalized. */
async function createMessages(t: TestApp, customers: number): Promise<number> {
  const ts = new Date(t.clock.now() - 2 * HOUR).toISOString();
  const events = Array.from({ length: customers }, (_, i) => ({
    eventType: 'api.calls',
    customerId: `cust_w_${String(i).padStart(4, '0')}`,
    value: i + 1,
    timestamp: ts,
  }));
  const res = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: events });
  assert.equal(res.statusCode, 201, res.body);
  const closed = await closeDuePeriods(t.ctx);
  assert.equal(closed.finalized, customers);
  assert.equal(closed.messages, customers);
  return closed.messages;
}

describe('two dispatchers on one store (spec test 6)', () => {
  it('sends each of N messages exactly once, split between the workers', async (tc) => {
    const N = 240;
    const rx = await startReceiver(3);
    // The manual clock starts at the real time: the receiver checks signature timestamps against its own clock.
    const t = await buildTestApp({ config: config(rx.url, { perEndpointConcurrency: 4, concurrency: 16 }), now: Date.now() });
    const a = makeWorker(t, 'worker-a');
    const b = makeWorker(t, 'worker-b');
    try {
      await Promise.all([a.dispatcher.start(), b.dispatcher.start()]);
      t.ctx.onMessages = () => {
        a.dispatcher.notify();
        b.dispatcher.notify();
      };
      assert.equal(await createMessages(t, N), N);

      await settle(a, b);
      // Once everything succeeded, nothing more is sent, even after any lease would have run out.
      t.clock.advance(LEASE_MS + 1);
      await claimPass(a, b);

      const counts = await t.store.deliveryCounts();
      assert.equal(counts.succeeded, N);
      for (const [status, n] of Object.entries(counts)) if (status !== 'succeeded') assert.equal(n, 0, `${n} deliveries ${status}`);

      const messageIds = (await t.store.listDeliveries({ limit: N + 10 })).map((d) => d.messageId);
      assert.equal(messageIds.length, N);
      assert.equal(rx.perId.size, N, 'every message reached the receiver');
      for (const id of messageIds) assert.equal(rx.perId.get(id), 1, `${id} delivered exactly once`);
      assert.equal(rx.arrivals.length, N, 'total requests = N');
      assert.deepEqual(rx.badSignatures, []);

      // Each delivery was handed to exactly one worker's sender.
      assert.equal(a.sent.length + b.sent.length, N);
      const overlap = a.sent.filter((id) => b.sent.includes(id));
      assert.deepEqual(overlap, [], 'no message was sent by both workers');
      // Informational: with 240 due messages and four slots per worker both usually take part, but who
      // claims first is a race, so only the total is asserted.
      tc.diagnostic(`worker-a sent ${a.sent.length}, worker-b sent ${b.sent.length}`);

      for (const d of await t.store.listDeliveries({ limit: N + 10 })) {
        assert.equal(d.attempts, 1);
        assert.equal(d.lastStatusCode, 200);
        assert.equal(d.leaseOwner, null);
      }
    } finally {
      await Promise.all([a.dispatcher.stop(), b.dispatcher.stop()]);
      await Promise.all([a.sender.close(), b.sender.close()]);
      await t.close();
      await rx.close();
    }
  });

  it('each worker keeps at most perEndpointConcurrency requests in flight to one endpoint', async () => {
    const N = 60;
    const PER_ENDPOINT = 2;
    // A slow receiver, so that requests overlap and the limit matters.
    const rx = await startReceiver(150);
    const t = await buildTestApp({
      config: config(rx.url, { perEndpointConcurrency: PER_ENDPOINT, concurrency: 16 }),
      now: Date.now(),
    });
    const a = makeWorker(t, 'worker-a');
    const b = makeWorker(t, 'worker-b');
    try {
      await createMessages(t, N);
      await Promise.all([a.dispatcher.start(), b.dispatcher.start()]);
      await settle(a, b);
      assert.equal((await t.store.deliveryCounts()).succeeded, N);
      assert.equal(rx.arrivals.length, N);
      assert.ok(a.maxInFlight <= PER_ENDPOINT, `worker-a had ${a.maxInFlight} requests in flight to endpoint rx (limit ${PER_ENDPOINT})`);
      assert.ok(b.maxInFlight <= PER_ENDPOINT, `worker-b had ${b.maxInFlight} requests in flight to endpoint rx (limit ${PER_ENDPOINT})`);
      assert.ok(rx.maxConcurrent <= 2 * PER_ENDPOINT, `the receiver saw ${rx.maxConcurrent} concurrent requests from two workers`);
    } finally {
      await Promise.all([a.dispatcher.stop(), b.dispatcher.stop()]);
      await Promise.all([a.sender.close(), b.sender.close()]);
      await t.close();
      await rx.close();
    }
  });

  it('a live worker takes over a delivery whose owner died once the lease expires, and sends it once', async () => {
    const rx = await startReceiver(0);
    const t = await buildTestApp({ config: config(rx.url), now: Date.now() });
    const live = makeWorker(t, 'worker-live');
    try {
      await createMessages(t, 1);
      const [delivery] = await t.store.listDeliveries({ limit: 10 });
      assert.ok(delivery);
      assert.equal(delivery.status, 'pending');

      // A worker claims with a short lease, then "dies": it never sends or records anything.
      const DEAD_LEASE_MS = 700;
      const claimedAt = t.clock.now();
      const claimed = await t.store.claimDeliveries({
        now: claimedAt,
        limit: 10,
        leaseMs: DEAD_LEASE_MS,
        owner: 'worker-dead',
        perEndpointLimit: 100,
        inFlight: {},
        endpoints: ['rx'],
      });
      assert.deepEqual(
        claimed.map((d) => d.id),
        [delivery.id],
      );

      await live.dispatcher.start();
      await settle(live);
      t.clock.advance(DEAD_LEASE_MS - 1);
      await claimPass(live);
      assert.equal(rx.arrivals.length, 0, 'nobody sends while the dead worker still holds the lease');
      const held = (await t.store.getDelivery(delivery.id))!.delivery;
      assert.equal(held.status, 'sending');
      assert.equal(held.leaseOwner, 'worker-dead');

      t.clock.advance(1);
      await claimPass(live);
      assert.equal((await t.store.getDelivery(delivery.id))!.delivery.status, 'succeeded', 'the first claim pass after expiry delivers');
      assert.equal(rx.arrivals.length, 1);
      assert.equal(rx.perId.get(delivery.messageId), 1);
      assert.deepEqual(live.sent, [delivery.messageId]);

      t.clock.advance(LEASE_MS + 1);
      await claimPass(live);
      assert.equal(rx.arrivals.length, 1, 'sent once, never again');
      const after = (await t.store.getDelivery(delivery.id))!;
      assert.equal(after.delivery.status, 'succeeded');
      assert.equal(after.delivery.attempts, 1);
      assert.equal(after.delivery.leaseOwner, null);
      assert.equal(after.attempts.length, 1);
      assert.equal(after.attempts[0]!.statusCode, 200);
      assert.equal(after.attempts[0]!.startedAt, claimedAt + DEAD_LEASE_MS, 'sent only once the dead lease ran out');
    } finally {
      await live.dispatcher.stop();
      await live.sender.close();
      await t.close();
      await rx.close();
    }
  });

  it('a dead worker that comes back after losing its lease cannot record over the live result', async () => {
    const rx = await startReceiver(0);
    const t = await buildTestApp({ config: config(rx.url), now: Date.now() });
    const live = makeWorker(t, 'worker-live');
    try {
      await createMessages(t, 1);
      const DEAD_LEASE_MS = 300;
      const claimedAt = t.clock.now();
      const [zombie] = await t.store.claimDeliveries({
        now: claimedAt,
        limit: 10,
        leaseMs: DEAD_LEASE_MS,
        owner: 'worker-zombie',
        perEndpointLimit: 100,
        inFlight: {},
        endpoints: ['rx'],
      });
      assert.ok(zombie);
      await live.dispatcher.start();
      t.clock.advance(DEAD_LEASE_MS);
      await claimPass(live);
      assert.equal((await t.store.getDelivery(zombie.id))!.delivery.status, 'succeeded', 'the live worker delivered');

      // The zombie now reports a failed attempt on its stale lease (Store.recordAttempt: "writes the
      // attempt and the outcome if `owner` still holds the lease; returns false when the lease was lost").
      t.clock.advance(50);
      const now = t.clock.now();
      const stale: AttemptRecord = {
        deliveryId: zombie.id,
        attempt: 1,
        startedAt: claimedAt,
        durationMs: now - claimedAt,
        statusCode: 500,
        errorClass: 'http_5xx',
        error: 'HTTP 500',
        responseBody: 'zombie',
        webhookTimestamp: Math.floor(claimedAt / 1000),
        dryRun: false,
        manual: false,
      };
      const recorded = await t.store.recordAttempt(
        stale,
        'worker-zombie',
        { status: 'retry_scheduled', nextAttemptAt: now + 500, deliveredAt: null, endpoint: 'failure' },
        now,
      );
      assert.equal(recorded, false, 'a lost lease cannot record');
      const after = (await t.store.getDelivery(zombie.id))!;
      assert.equal(after.delivery.status, 'succeeded');
      assert.equal(after.delivery.lastStatusCode, 200);
      assert.equal(after.delivery.attempts, 1);
      const [endpoint] = await t.store.listEndpoints();
      assert.equal(endpoint?.failureStreak, 0, 'the zombie did not count a failure against the endpoint');
      assert.deepEqual(
        after.attempts.map((x) => [x.attempt, x.statusCode]),
        [[1, 200]],
        "the attempt log holds only the live worker's attempt, not the zombie's stale one",
      );
    } finally {
      await live.dispatcher.stop();
      await live.sender.close();
      await t.close();
      await rx.close();
    }
  });

  it('an attempt never outlives its lease: the receiver timeout is cut to what the lease leaves', async () => {
    const rx = await startReceiver(0);
    // A 5 s lease and the default 10 s endpoint timeout: left alone, a slow receiver would hold the attempt
    // past the lease and another worker would send the message again.
    const t = await buildTestApp({ config: config(rx.url, { lease: '5s' }), now: Date.now() });
    const w = makeWorker(t, 'worker-a');
    try {
      await createMessages(t, 1);
      await w.dispatcher.start();
      await settle(w);
      assert.equal(rx.arrivals.length, 1);
      // The clock stood still, so the budget is the lease less the 1 s margin kept for recording.
      assert.deepEqual(w.timeouts, [4000]);
    } finally {
      await w.dispatcher.stop();
      await w.sender.close();
      await t.close();
      await rx.close();
    }
  });

  it('a worker that stalls past its lease between claim and send sends nothing; the next claim sends once', async () => {
    const rx = await startReceiver(0);
    const t = await buildTestApp({ config: config(rx.url), now: Date.now() });
    // The claim returns only once the whole lease has gone by, as after a long pause of the process.
    let stalls = 1;
    const stalling: DeliveryPort = Object.create(t.ctx.store) as DeliveryPort;
    stalling.claimDeliveries = async (q) => {
      const claimed = await t.ctx.store.claimDeliveries(q);
      if (claimed.length > 0 && stalls-- > 0) t.clock.advance(LEASE_MS);
      return claimed;
    };
    const w = makeWorker(t, 'worker-a', stalling);
    try {
      await createMessages(t, 1);
      await w.dispatcher.start();
      await settle(w);
      // The stalled claim sends nothing; the lease has run out, so the worker's next pass claims it again and
      // sends it once. Had the stalled attempt gone out, it could not be recorded and the message would go twice.
      assert.equal(rx.arrivals.length, 1, 'the message reached the receiver once');
      t.clock.advance(LEASE_MS + 1);
      await claimPass(w);
      assert.equal(rx.arrivals.length, 1, 'and never again');
      const [held] = await t.store.listDeliveries({ limit: 10 });
      const after = (await t.store.getDelivery(held!.id))!;
      assert.equal(after.delivery.status, 'succeeded');
      assert.equal(after.delivery.attempts, 1);
    } finally {
      await w.dispatcher.stop();
      await w.sender.close();
      await t.close();
      await rx.close();
    }
  });
});
