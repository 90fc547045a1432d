// Spec failure-mode test 10: with DRY_RUN=true a real server process signs and logs each webhook but
// sends no HTTP request; the delivery ends succeeded with dryRun: true, and the logged headers and
// body verify with standardwebhooks and with the legacy scheme. No log line contains the secret.

import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import nodeHttp from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { cleanupServerProcesses, http, sleep, startServerProcess, type HttpResult, type ServerProcess } from '../helpers/server-process.js';

const SECRET = 'dry-run-secret-7c41d2e9';
const HOUR = 3_600_000;
const POLL_MS = 100;

interface LogLine {
  msg?: string;
  dryRun?: boolean;
  deliveryId?: string;
  url?: string;
  headers?: Record<string, string>;
  body?: string;
  level?: number;
}

function logLines(stdout: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // not a log line
    }
  }
  return out;
}

describe('DRY_RUN on a real server process (spec test 10)', () => {
  let server: ServerProcess | undefined;
  let receiver: nodeHttp.Server | undefined;
  after(async () => {
    await server?.kill('SIGKILL').catch(() => undefined);
    if (receiver) {
      receiver.closeAllConnections();
      await new Promise<void>((r) => receiver!.close(() => r()));
    }
    await cleanupServerProcesses();
  });

  it('sends nothing, ends succeeded with dryRun: true, and logs a request whose signatures verify', async () => {
    let requests = 0;
    receiver = nodeHttp.createServer((_req, res) => {
      requests++;
      res.writeHead(200);
      res.end();
    });
    await new Promise<void>((resolve, reject) => {
      receiver!.once('error', reject);
      receiver!.listen(0, '127.0.0.1', () => resolve());
    });
    const rxUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

    const apiKey = `mh_dryrun_${randomBytes(8).toString('hex')}`;
    const headers = { 'x-apikey': apiKey };
    const customerId = `cust_dry_${randomBytes(4).toString('hex')}`;
    server = await startServerProcess({
      apiKey,
      env: { DRY_RUN: 'true' },
      config: {
        periods: ['hourly'],
        events: { 'api.calls': { op: 'sum' } },
        webhooks: [{ id: 'rx', url: rxUrl, secret: SECRET }],
        webhookDelivery: { allowCidrs: ['127.0.0.1/32'], lease: '2s', pollInterval: '100ms', retrySchedule: ['500ms', '500ms', '1s'] },
      },
    });
    assert.ok(
      logLines(server.stdout()).some((l) => typeof l.msg === 'string' && l.msg.startsWith('DRY_RUN is on')),
      'the server warns that DRY_RUN is on',
    );

    const ts = new Date(Date.now() - 2 * HOUR).toISOString();
    const ev = await http(`${server.url}/usagebatch`, {
      headers,
      body: [10, 20, 12].map((value) => ({ eventType: 'api.calls', customerId, value, timestamp: ts, metadata: { note: 'dry ✓ ü' } })),
    });
    assert.equal(ev.status, 201, ev.text);
    const trig = await http(`${server.url}/aggregations/trigger`, { method: 'POST', headers });
    assert.equal(trig.status, 202, trig.text);
    assert.equal(trig.body.finalized, 1);

    const deadline = Date.now() + 15_000;
    let delivery: any;
    for (;;) {
      const r: HttpResult<any[]> = await http(`${server.url}/webhooks/deliveries?endpointId=rx`, { headers });
      assert.equal(r.status, 200, r.text);
      assert.ok(r.body.length <= 1);
      delivery = r.body[0];
      if (delivery?.status === 'succeeded') break;
      if (Date.now() > deadline) assert.fail(`delivery did not succeed within 15 s: ${JSON.stringify(delivery)}`);
      await sleep(50);
    }
    assert.equal(delivery.dryRun, true);
    assert.equal(delivery.attempts, 1);
    assert.equal(delivery.lastError, null);

    const detail = await http(`${server.url}/webhooks/deliveries/${delivery.id}`, { headers });
    assert.equal(detail.status, 200);
    assert.equal(detail.body.attempts.length, 1);
    assert.equal(detail.body.attempts[0].dryRun, true);
    assert.equal(detail.body.attempts[0].statusCode, null, 'no HTTP status: nothing was sent');

    const aggs = await http(`${server.url}/aggregations?customerId=${customerId}&period=hourly`, { headers });
    assert.equal(aggs.status, 200);
    assert.equal(aggs.body.length, 1);
    assert.equal(aggs.body[0].final, true);
    assert.deepEqual(aggs.body[0].events, { 'api.calls': 42 });
    assert.equal(aggs.body[0].webhookStatus.dryRun, true);

    // Longer than several polls and a retry delay: still not one request at the receiver.
    await sleep(POLL_MS * 5 + 500);
    assert.equal(requests, 0, 'DRY_RUN sends no HTTP request');

    // The logged would-be request.
    const dry = logLines(server.stdout()).filter((l) => l.msg === 'DRY_RUN: webhook not sent');
    assert.equal(dry.length, 1, 'one DRY_RUN log line for the one attempt');
    const line = dry[0]!;
    assert.equal(line.dryRun, true);
    assert.equal(line.deliveryId, delivery.id);
    assert.equal(line.url, rxUrl);
    assert.ok(line.headers && typeof line.body === 'string', 'the line carries headers and body');
    const h = line.headers;
    const body = line.body;
    const payload = JSON.parse(body);
    assert.equal(h['webhook-id'], delivery.messageId);
    assert.equal(payload.id, h['webhook-id']);
    assert.equal(payload.customerId, customerId);
    assert.deepEqual(payload.data.events, { 'api.calls': 42 });
    assert.equal(h['x-meterhook-delivery-id'], delivery.id);
    assert.equal(h['content-type'], 'application/json');
    assert.match(h['user-agent'] ?? '', /^meterhook\//);
    // The logged body is the stored body byte for byte.
    assert.equal(body, JSON.stringify(detail.body.message.payload));

    const eps = await http(`${server.url}/webhooks/endpoints`, { headers });
    // The API names the secret by fingerprint only; the receiver derives the whsec_ form from the plain secret.
    const rxEndpoint = eps.body.find((e: { id: string }) => e.id === 'rx');
    assert.equal(rxEndpoint.secretFingerprint, `sha256:${createHash('sha256').update(SECRET, 'utf8').digest('hex').slice(0, 16)}`);
    assert.ok(!('standardSecret' in rxEndpoint));
    const standardSecret = `whsec_${Buffer.from(SECRET).toString('base64')}`;
    const std = {
      'webhook-id': h['webhook-id']!,
      'webhook-timestamp': h['webhook-timestamp']!,
      'webhook-signature': h['webhook-signature']!,
    };
    assert.doesNotThrow(() => new Webhook(standardSecret).verify(body, std), 'the logged standard signature verifies');
    assert.throws(() => new Webhook(standardSecret).verify(body.replace('"api.calls":42', '"api.calls":43'), std));
    assert.equal(h['x-webhook-timestamp'], h['webhook-timestamp']);
    const legacyMac = createHmac('sha256', Buffer.from(SECRET, 'utf8')).update(`${h['x-webhook-timestamp']}.${body}`, 'utf8').digest('hex');
    const legacy = `v1=${legacyMac}`;
    assert.equal(h['x-webhook-signature'], legacy, 'the logged legacy signature verifies');

    // The secret, in either form, is in no log line (stdout or stderr).
    const secretB64 = Buffer.from(SECRET).toString('base64');
    const rawLines = [...server.stdout().split('\n'), ...server.stderr().split('\n')];
    const dryRaw = rawLines.find((l) => l.includes('DRY_RUN: webhook not sent'));
    assert.ok(dryRaw);
    for (const l of rawLines) {
      assert.ok(!l.includes(SECRET), `a log line contains the secret: ${l.slice(0, 200)}`);
      assert.ok(!l.includes(secretB64), `a log line contains the whsec_ form of the secret: ${l.slice(0, 200)}`);
    }

    await server.stop();
    assert.equal(requests, 0);
  });
});
