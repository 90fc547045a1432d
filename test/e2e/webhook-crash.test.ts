// Spec failure-mode test 5: a real server process is SIGKILLed after it sent a webhook but before it
// could record the result. After a restart on the same data dir the message is sent again with the
// same webhook-id and the same body bytes once the lease runs out, the receiver can dedupe it, both
// requests verify with standardwebhooks and with the legacy scheme, and nothing is lost.

import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import nodeHttp from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Webhook } from 'standardwebhooks';
import {
  cleanupServerProcesses,
  http,
  makeTempDir,
  sleep,
  startServerProcess,
  type ExitInfo,
  type ServerProcess,
} from '../helpers/server-process.js';

const SECRET = 'crash-test-secret-123';
const LEASE_MS = 2_000;
const POLL_MS = 100;
const HOUR = 3_600_000;

interface Received {
  at: number;
  headers: nodeHttp.IncomingHttpHeaders;
  raw: Buffer;
}

interface Receiver {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

/** A loopback receiver; `handle` decides how (and whether) to answer each request. */
async function startReceiver(handle: (r: Received, res: nodeHttp.ServerResponse) => Promise<void> | void): Promise<Receiver> {
  const received: Received[] = [];
  const server = nodeHttp.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { at: Date.now(), headers: req.headers, raw: Buffer.concat(chunks) };
      received.push(r);
      Promise.resolve(handle(r, res)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

const header = (h: nodeHttp.IncomingHttpHeaders, name: string): string => {
  const v = h[name];
  assert.equal(typeof v, 'string', `header ${name} is present once`);
  return v as string;
};

/** Both schemes, over the exact bytes the receiver saw. */
function assertVerifies(r: Received, standardSecret: string, label: string): void {
  const headers = {
    'webhook-id': header(r.headers, 'webhook-id'),
    'webhook-timestamp': header(r.headers, 'webhook-timestamp'),
    'webhook-signature': header(r.headers, 'webhook-signature'),
  };
  assert.doesNotThrow(() => new Webhook(standardSecret).verify(r.raw, headers), `${label}: standardwebhooks verifies`);
  const ts = header(r.headers, 'x-webhook-timestamp');
  assert.equal(ts, headers['webhook-timestamp'], `${label}: both schemes carry the same timestamp`);
  const expected = `v1=${createHmac('sha256', Buffer.from(SECRET, 'utf8')).update(`${ts}.`).update(r.raw).digest('hex')}`;
  const got = header(r.headers, 'x-webhook-signature');
  assert.ok(
    got.length === expected.length && timingSafeEqual(Buffer.from(got), Buffer.from(expected)),
    `${label}: legacy v1= hex HMAC verifies over the raw body`,
  );
  // A standard receiver must reject the same request once the body is touched.
  const tampered = Buffer.from(r.raw);
  const at = tampered.length - 2;
  tampered.writeUInt8(tampered[at]! ^ 1, at);
  assert.throws(() => new Webhook(standardSecret).verify(tampered, headers), `${label}: a tampered body fails`);
}

describe('webhook delivery across a kill -9 between send and record (spec test 5)', () => {
  const servers: ServerProcess[] = [];
  let receiver: Receiver | undefined;
  after(async () => {
    for (const s of servers) await s.kill('SIGKILL').catch(() => undefined);
    await receiver?.close();
    await cleanupServerProcesses();
  });

  it('re-sends the same webhook-id and bytes after a restart, and ends succeeded', async () => {
    const dataDir = makeTempDir('meterhook-whcrash-');
    const apiKey = `mh_whcrash_${randomBytes(8).toString('hex')}`;
    const headers = { 'x-apikey': apiKey };
    const customerId = `cust_whcrash_${randomBytes(4).toString('hex')}`;

    let killTarget: ServerProcess | undefined;
    let killed: Promise<ExitInfo> | undefined;
    receiver = await startReceiver(async (_r, res) => {
      if (receiver!.received.length === 1) {
        // The server sent the request and now waits for our answer: it dies before it can record it.
        assert.ok(killTarget, 'the first server is known when its first request arrives');
        killed = killTarget.kill('SIGKILL');
        await killed;
        res.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });

    const config = {
      periods: ['hourly'],
      events: { 'api.calls': { op: 'sum' } },
      webhooks: [{ id: 'rx', url: receiver.url, secret: SECRET }],
      webhookDelivery: { allowCidrs: ['127.0.0.1/32'], lease: '2s', pollInterval: '100ms', retrySchedule: ['500ms', '500ms', '1s'] },
    };
    const first = await startServerProcess({ config, dataDir, apiKey });
    servers.push(first);
    killTarget = first;

    const ts = new Date(Date.now() - 2 * HOUR).toISOString();
    for (const value of [5, 7, 11]) {
      const r = await http(`${first.url}/usage/api.calls`, { headers, body: { customerId, value, timestamp: ts } });
      assert.equal(r.status, 201, r.text);
    }
    const trig = await http(`${first.url}/aggregations/trigger`, { method: 'POST', headers });
    assert.equal(trig.status, 202, trig.text);
    assert.equal(trig.body.finalized, 1, 'exactly the one due hour is finalized');

    // The first request arrives and kills the server before it answers.
    await waitFor('the first webhook request', 15_000, () => (receiver!.received.length >= 1 ? true : undefined));
    const exit = await waitFor('the SIGKILL of the first server', 15_000, () => killed);
    assert.equal(exit.signal, 'SIGKILL');
    const firstReq = receiver.received[0]!;

    // On disk the send was never recorded: the delivery is still leased ('sending'), with no attempt row.
    {
      const db = new Database(path.join(dataDir, 'meterhook.db'), { readonly: true, fileMustExist: true });
      try {
        const rows = db.prepare('SELECT id, status, attempts, lease_until FROM deliveries').all() as Array<{
          id: string;
          status: string;
          attempts: number;
          lease_until: number | null;
        }>;
        assert.equal(rows.length, 1, 'one delivery was written with the aggregation');
        assert.equal(rows[0]!.status, 'sending');
        assert.equal(rows[0]!.attempts, 0);
        const n = db.prepare('SELECT count(*) AS n FROM delivery_attempts').get() as { n: number };
        assert.equal(n.n, 0, 'no attempt was recorded before the kill');
        const agg = db.prepare('SELECT count(*) AS n FROM aggregations').get() as { n: number } | undefined;
        assert.ok(agg && agg.n >= 1, 'the aggregation row was committed with its outbox message');
      } finally {
        db.close();
      }
    }

    const second = await startServerProcess({ config: first.configFile, dataDir, apiKey });
    servers.push(second);
    const restartedAt = Date.now();

    await waitFor('the re-sent webhook', 15_000, () => (receiver!.received.length >= 2 ? true : undefined));
    const again = receiver.received[1]!;

    // Same message, same bytes; a fresh signature timestamp is allowed but the id never changes.
    const id = header(firstReq.headers, 'webhook-id');
    assert.match(id, /^msg_[^.\s]+$/);
    assert.equal(header(again.headers, 'webhook-id'), id, 'the re-send keeps the webhook-id');
    assert.ok(again.raw.equals(firstReq.raw), 'the re-send carries byte-identical body');
    assert.equal(
      header(again.headers, 'x-meterhook-delivery-id'),
      header(firstReq.headers, 'x-meterhook-delivery-id'),
      'it is the same delivery',
    );

    // The lease was respected (no second send while the dead worker's lease was live) and the
    // restarted server picked the delivery up promptly once it ran out.
    assert.ok(
      again.at - firstReq.at >= LEASE_MS - 500,
      `re-sent ${again.at - firstReq.at} ms after the first send, before the ${LEASE_MS} ms lease ran out`,
    );
    const dueAt = Math.max(firstReq.at + LEASE_MS, restartedAt);
    assert.ok(again.at - dueAt <= POLL_MS + 3_000, `re-sent ${again.at - dueAt} ms after it became claimable`);

    // A receiver that dedupes on webhook-id sees one message.
    assert.equal(new Set(receiver.received.map((r) => header(r.headers, 'webhook-id'))).size, 1);

    const payload = JSON.parse(firstReq.raw.toString('utf8'));
    assert.equal(payload.id, id, 'payload id equals webhook-id');
    assert.equal(payload.type, 'aggregation.completed');
    assert.equal(payload.customerId, customerId);
    assert.equal(payload.period, 'hourly');
    assert.equal(payload.final, true);
    assert.equal(payload.revision, 1);
    assert.deepEqual(payload.data.events, { 'api.calls': 23 });
    assert.deepEqual(payload.data.eventCounts, { 'api.calls': 3 });

    const h2 = { 'x-apikey': apiKey };
    const delivery = await waitFor('the delivery to end succeeded', 15_000, async () => {
      const r = await http(`${second.url}/webhooks/deliveries?endpointId=rx`, { headers: h2 });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.length, 1, 'still exactly one delivery');
      return r.body[0].status === 'succeeded' ? r.body[0] : undefined;
    });
    assert.equal(delivery.messageId, id);
    assert.equal(delivery.lastStatusCode, 200);
    assert.equal(delivery.dryRun, false);
    const detail = await http(`${second.url}/webhooks/deliveries/${delivery.id}`, { headers: h2 });
    assert.equal(detail.status, 200);
    assert.equal(detail.body.message.id, id);
    const last = detail.body.attempts[detail.body.attempts.length - 1];
    assert.equal(last.statusCode, 200);
    assert.equal(last.errorClass, null);
    assert.equal(String(last.webhookTimestamp), header(again.headers, 'webhook-timestamp'));

    // Exactly two requests in all: the succeeded delivery is never sent again.
    await sleep(LEASE_MS / 2 + POLL_MS * 3);
    assert.equal(receiver.received.length, 2);

    const eps = await http(`${second.url}/webhooks/endpoints`, { headers: h2 });
    assert.equal(eps.status, 200);
    const rx = eps.body.find((e: { id: string }) => e.id === 'rx');
    assert.equal(rx.secretFingerprint, `sha256:${createHash('sha256').update(SECRET, 'utf8').digest('hex').slice(0, 16)}`);
    const standardSecret = `whsec_${Buffer.from(SECRET, 'utf8').toString('base64')}`;
    assert.ok(!eps.text.includes(SECRET) && !eps.text.includes(standardSecret), 'the endpoint API never shows the secret');
    assertVerifies(firstReq, standardSecret, 'the request sent before the kill');
    assertVerifies(again, standardSecret, 'the request sent after the restart');

    // Nothing lost: the finalized aggregation survived the kill and is marked delivered.
    const aggs = await http(`${second.url}/aggregations?customerId=${customerId}&period=hourly`, { headers: h2 });
    assert.equal(aggs.status, 200);
    assert.equal(aggs.body.length, 1);
    const agg = aggs.body[0];
    assert.equal(agg.final, true);
    assert.equal(agg.revision, 1);
    assert.equal(agg.id, payload.aggregationId);
    assert.deepEqual(agg.events, { 'api.calls': 23 });
    assert.equal(agg.webhookStatus.delivered, true);

    await second.stop();
  });
});
