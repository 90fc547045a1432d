// `meterhook deliveries list|show|retry` as real processes against a real server that delivers to a
// loopback receiver, and the documented exit codes: 0 ok, 1 HTTP error or failed attempt, 2 usage
// or configuration error, 3 server unreachable.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startReceiver, unusedPort, type Receiver } from '../helpers/receiver.js';
import { cleanupServerProcesses, http, makeTempDir, runCli, startServerProcess, type ServerProcess } from '../helpers/server-process.js';

let server: ServerProcess;
let receiver: Receiver;
let answer = 500;

function cli(args: string[], env: Record<string, string | undefined> = {}) {
  return runCli(args, { env: { METERHOOK_URL: server.url, METERHOOK_API_KEY: server.key, ...env }, timeoutMs: 60_000 });
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  receiver = await startReceiver(() => ({ status: answer, body: answer === 200 ? 'ok' : 'receiver is down' }));
  server = await startServerProcess({
    config: {
      periods: ['hourly'],
      events: { 'api.calls': { op: 'sum' } },
      webhooks: [{ id: 'billing', url: `${receiver.url}/hooks`, secret: 'cli-deliveries-secret-0123' }],
      // Loopback must be allowlisted; a failed attempt waits an hour, so the test decides when to retry.
      webhookDelivery: { allowCidrs: ['127.0.0.1/32'], pollInterval: '50ms', retrySchedule: ['1h'] },
    },
  });
});
after(async () => {
  await cleanupServerProcesses();
  await receiver.close();
});

describe('meterhook deliveries', () => {
  let deliveryId: string;

  it('list shows a failed delivery, with --status filtering', async () => {
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000).toISOString();
    const sent = await cli(['send', 'api.calls', '-c', 'cust_hook', '-v', '7', '-t', twoHoursAgo]);
    assert.equal(sent.code, 0, sent.stderr);
    const trig = await cli(['trigger', '--json']);
    assert.equal(trig.code, 0, trig.stderr);
    assert.equal((JSON.parse(trig.stdout) as { finalized: number }).finalized, 1);
    // The dispatcher sends it to the receiver, which answers 500: the delivery waits for its retry.
    await until(async () => {
      const r = await http(`${server.url}/webhooks/deliveries?status=retry_scheduled`, { headers: { 'x-apikey': server.key! } });
      return (r.body as unknown[]).length === 1 ? true : undefined;
    }, 'a retry_scheduled delivery');
    assert.equal(receiver.requests.length, 1);

    const list = await cli(['deliveries', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const items = JSON.parse(list.stdout) as Array<{
      id: string;
      status: string;
      endpointId: string;
      attempts: number;
      lastStatusCode: number;
    }>;
    assert.equal(items.length, 1);
    assert.equal(items[0]!.status, 'retry_scheduled');
    assert.equal(items[0]!.endpointId, 'billing');
    assert.equal(items[0]!.lastStatusCode, 500);
    deliveryId = items[0]!.id;

    const none = await cli(['deliveries', 'list', '--status', 'succeeded', '--json']);
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(JSON.parse(none.stdout), []);

    const human = await cli(['deliveries', 'list', '--status', 'retry_scheduled']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^id +status +endpoint +attempts +last +created$/m);
    assert.match(human.stdout, new RegExp(`^${deliveryId} +retry_scheduled +billing +1 +500 `, 'm'));
  });

  it('show prints the attempts and the message', async () => {
    const r = await cli(['deliveries', 'show', deliveryId, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as {
      id: string;
      attempts: Array<{ attempt: number; statusCode: number; errorClass: string; manual: boolean }>;
      message: { type: string; payload: { customerId: string; data: { events: Record<string, number> } } };
    };
    assert.equal(d.id, deliveryId);
    assert.equal(d.attempts.length, 1);
    assert.deepEqual([d.attempts[0]!.statusCode, d.attempts[0]!.errorClass, d.attempts[0]!.manual], [500, 'http_5xx', false]);
    assert.equal(d.message.type, 'aggregation.completed');
    assert.equal(d.message.payload.customerId, 'cust_hook');
    assert.deepEqual(d.message.payload.data.events, { 'api.calls': 7 });

    const human = await cli(['deliveries', 'show', deliveryId]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^${deliveryId} {2}retry_scheduled {2}endpoint billing$`, 'm'));
    assert.match(human.stdout, /^1 +\S+ +500 +http_5xx +\d+$/m);
    assert.match(human.stdout, /"aggregation\.completed"/);

    const missing = await cli(['deliveries', 'show', 'dlv_does_not_exist']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /HTTP 404: delivery dlv_does_not_exist not found/);
  });

  it('retry exits 1 when the new attempt fails, and 0 once it is delivered', async () => {
    const failed = await cli(['deliveries', 'retry', deliveryId]);
    assert.equal(failed.code, 1, failed.stderr);
    const attemptFailed = new RegExp(`^attempt failed: ${deliveryId} → HTTP 500 in \\d+ ms; delivery is now retry_scheduled$`, 'm');
    assert.match(failed.stdout, attemptFailed);
    assert.equal(receiver.requests.length, 2);

    answer = 200;
    const ok = await cli(['deliveries', 'retry', deliveryId, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const r = JSON.parse(ok.stdout) as {
      delivery: { status: string; attempts: number };
      attempt: { statusCode: number; errorClass: null };
    };
    assert.equal(r.attempt.statusCode, 200);
    assert.equal(r.attempt.errorClass, null);
    assert.equal(r.delivery.status, 'succeeded');
    assert.equal(r.delivery.attempts, 3);
    assert.equal(receiver.requests.length, 3);
    // The same message id on every attempt.
    assert.equal(new Set(receiver.requests.map((q) => q.headers['webhook-id'])).size, 1);

    const listed = await cli(['deliveries', 'list', '--status', 'succeeded', '--json']);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as Array<{ id: string }>).map((d) => d.id),
      [deliveryId],
    );
  });
});

describe('exit codes', () => {
  it('1: the server refuses the API key', async () => {
    const r = await cli(['usage', 'cust_hook'], { METERHOOK_API_KEY: 'mh_wrong_key_0000000000' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^meterhook: HTTP 401: .*check METERHOOK_API_KEY/m);
    const j = await cli(['aggregations', 'list', '--json', '--api-key', 'mh_wrong_key_0000000000']);
    assert.equal(j.code, 1);
    assert.deepEqual(
      (({ status, exitCode, code }) => ({ status, exitCode, code }))(
        JSON.parse(j.stdout) as { status: number; exitCode: number; code: string },
      ),
      { status: 401, exitCode: 1, code: 'unauthorized' },
    );
  });

  it('3: nothing listens at the URL', async () => {
    const port = await unusedPort();
    const started = Date.now();
    const r = await cli(['trigger', '--json'], { METERHOOK_URL: `http://127.0.0.1:${port}` });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /cannot reach meterhook at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    assert.deepEqual(JSON.parse(r.stdout), {
      error: `cannot reach meterhook at http://127.0.0.1:${port} (ECONNREFUSED)`,
      exitCode: 3,
      code: 'ECONNREFUSED',
    });
    assert.ok(Date.now() - started < 30_000, 'gives up after a few quick retries');
    const send = await cli(['send', 'api.calls', '-c', 'x', '-v', '1', '--retries', '0', '--url', `http://127.0.0.1:${port}`]);
    assert.equal(send.code, 3);

    const file = path.join(makeTempDir('meterhook-cli-'), 'one.ndjson');
    fs.writeFileSync(file, `${JSON.stringify({ eventType: 'api.calls', customerId: 'c', value: 1 })}\n`);
    const imp = await cli(['import', file, '--retries', '0', '--json', '--url', `http://127.0.0.1:${port}`]);
    assert.equal(imp.code, 3, imp.stderr);
    const summary = JSON.parse(imp.stdout) as { completed: boolean; notSent: number; inserted: number };
    assert.deepEqual([summary.completed, summary.notSent, summary.inserted], [false, 1, 0]);
    assert.match(imp.stderr, /import stopped: cannot reach meterhook .*\nRerunning the same command is safe/);
  });

  it('2: bad flags, bad values, a missing API key or a missing subcommand', async () => {
    const cases: Array<[string[], RegExp, Record<string, string | undefined>?]> = [
      [['usage', 'c1', '--bogus-flag'], /unknown option '--bogus-flag'/],
      [['send', 'api.calls', '--value', '1'], /required option '-c, --customer <id>' not specified/],
      [['usage'], /missing required argument 'customerId'/],
      [['usage', 'c1', '--period', 'fortnightly'], /--period must be one of hourly, daily, weekly, monthly, yearly/],
      [['deliveries', 'list', '--status', 'lost'], /--status must be one of pending, sending/],
      [['aggregations', 'list', '--limit', '0'], /--limit must be an integer from 1/],
      [['trigger', '--url', 'not a url'], /--url must be a URL/],
      [['trigger'], /no API key: set METERHOOK_API_KEY or pass --api-key/, { METERHOOK_API_KEY: undefined }],
      [['no-such-command'], /unknown command 'no-such-command'/],
      [['deliveries'], /Usage: meterhook deliveries/],
    ];
    const results = await Promise.all(cases.map(([args, , env]) => cli(args, env)));
    results.forEach((r, i) => {
      const [args, pattern] = cases[i]!;
      assert.equal(r.code, 2, `${args.join(' ')} → ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(' '));
    });
  });

  it('0: --help for the program and every client command', async () => {
    const top = await cli(['--help']);
    assert.equal(top.code, 0);
    for (const c of ['serve', 'keys', 'config', 'webhook-receiver', 'send', 'import', 'trigger', 'aggregations', 'usage', 'deliveries']) {
      assert.match(top.stdout, new RegExp(`^ {2}${c}\\b`, 'm'), c);
    }
    assert.match(top.stdout, /3 server unreachable/);
    const subs = [
      ['send'],
      ['import'],
      ['trigger'],
      ['aggregations', 'list'],
      ['usage'],
      ['deliveries', 'list'],
      ['deliveries', 'show'],
      ['deliveries', 'retry'],
    ];
    const helps = await Promise.all(subs.map((s) => cli([...s, '--help'])));
    helps.forEach((h, i) => {
      assert.equal(h.code, 0, subs[i]!.join(' '));
      assert.match(h.stdout, /--url <url>/);
      assert.match(h.stdout, /--json/);
      assert.match(h.stdout, /env: METERHOOK_API_KEY/);
    });
  });
});
