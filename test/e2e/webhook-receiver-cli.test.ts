// `meterhook webhook-receiver` as a real process: it binds the port it is given (0 = any), verifies
// both signature schemes over the raw body, dedupes on the message id, answers 401 to anything that
// does not verify, and prints one line per request. Then a real server delivers to it.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { signedHeaders } from '../../src/webhooks/signing.js';
import {
  CLI_ENTRY,
  REPO_ROOT,
  cleanupServerProcesses,
  http,
  runCli,
  sleep,
  startServerProcess,
  type HttpResult,
  type ServerProcess,
} from '../helpers/server-process.js';

const SECRET = 'cli-receiver-secret-9f2a';
const HOUR = 3_600_000;
const LISTENING = /^webhook-receiver listening on http:\/\/127\.0\.0\.1:(\d+)\/ \(answering (\d+)\)$/m;

interface CliReceiver {
  proc: ChildProcess;
  url: string;
  port: number;
  stdout(): string;
  stderr(): string;
  /** The next stdout line not yet returned (waits up to `ms`). */
  nextLine(ms?: number): Promise<string>;
}

const spawned = new Set<ChildProcess>();

function exited(proc: ChildProcess, ms: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function killAll(): Promise<void> {
  await Promise.all(
    [...spawned].map(async (p) => {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await exited(p, 10_000);
    }),
  );
  spawned.clear();
}

async function startCliReceiver(args: string[], env: Record<string, string | undefined> = {}): Promise<CliReceiver> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.METERHOOK_WEBHOOK_SECRET;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, 'webhook-receiver', ...args], {
    cwd: REPO_ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(proc);
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stdout!.on('data', (c: string) => (out += c));
  proc.stderr!.on('data', (c: string) => (err += c));

  const deadline = Date.now() + 15_000;
  let m: RegExpExecArray | null;
  while (!(m = LISTENING.exec(out))) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      assert.fail(`webhook-receiver exited (${proc.exitCode ?? proc.signalCode}) before listening\nstdout:\n${out}\nstderr:\n${err}`);
    }
    if (Date.now() > deadline) assert.fail(`webhook-receiver did not print its address within 15 s\nstdout:\n${out}\nstderr:\n${err}`);
    await sleep(25);
  }
  const port = Number(m[1]);
  let consumed = out.split('\n').findIndex((l) => LISTENING.test(l)) + 1;
  return {
    proc,
    port,
    url: `http://127.0.0.1:${port}/`,
    stdout: () => out,
    stderr: () => err,
    async nextLine(ms = 5_000) {
      const until = Date.now() + ms;
      for (;;) {
        const lines = out.split('\n');
        // The last element is an unfinished line (or '' after a trailing newline).
        if (lines.length - 1 > consumed) return lines[consumed++]!;
        if (Date.now() > until) assert.fail(`no new stdout line within ${ms} ms; stdout so far:\n${out}`);
        await sleep(10);
      }
    },
  };
}

function payload(id: string, value = 42): string {
  return JSON.stringify({
    type: 'aggregation.completed',
    customerId: 'cust_cli_ü€',
    period: 'hourly',
    data: {
      periodStart: '2026-01-12T08:00:00.000Z',
      periodEnd: '2026-01-12T08:59:59.999Z',
      periodKey: '2026011208',
      timestamp: '2026-01-12T09:05:00.000Z',
      events: { 'api.calls': value },
      eventCounts: { 'api.calls': 3 },
    },
    created: Math.floor(Date.now() / 1000),
    id,
    aggregationId: 'agg_cli_test',
    revision: 1,
    final: true,
  });
}

function signed(id: string, o: { secret?: string; timestamp?: number; legacyHeaders?: boolean; body?: string } = {}) {
  const body = o.body ?? payload(id);
  const headers = signedHeaders({
    msgId: id,
    deliveryId: `dlv_${id.slice(4)}`,
    eventType: 'aggregation.completed',
    attempt: 1,
    timestamp: o.timestamp ?? Math.floor(Date.now() / 1000),
    body,
    secrets: [o.secret ?? SECRET],
    legacyHeaders: o.legacyHeaders ?? true,
    userAgent: 'meterhook/test',
  });
  return { body, headers };
}

const newId = () => `msg_cli_${randomBytes(6).toString('hex')}`;

async function post(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', body, headers, signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

const withoutStandard = (h: Record<string, string>) => {
  const { 'webhook-id': _i, 'webhook-timestamp': _t, 'webhook-signature': _s, ...rest } = h;
  return rest;
};

describe('meterhook webhook-receiver (real process)', () => {
  let rx: CliReceiver;
  let rx500: CliReceiver;
  let rxJson: CliReceiver;
  let rxEnv: CliReceiver;

  before(async () => {
    [rx, rx500, rxJson, rxEnv] = await Promise.all([
      startCliReceiver(['--port', '0', '--secret', SECRET]),
      startCliReceiver(['--port', '0', '--secret', SECRET, '--status', '500']),
      startCliReceiver(['--port', '0', '--secret', SECRET, '--json']),
      startCliReceiver(['--port', '0'], { METERHOOK_WEBHOOK_SECRET: SECRET }),
    ]);
  });
  after(async () => {
    await killAll();
    await cleanupServerProcesses();
  });

  it('--port 0 binds an ephemeral port and prints it', () => {
    assert.ok(rx.port > 0 && rx.port < 65_536);
    assert.notEqual(rx.port, 4000, 'not the default port');
    assert.match(rx.stdout(), new RegExp(`listening on http://127\\.0\\.0\\.1:${rx.port}/ \\(answering 200\\)`));
    assert.match(rx500.stdout(), /\(answering 500\)/);
    assert.equal(new Set([rx.port, rx500.port, rxJson.port, rxEnv.port]).size, 4);
  });

  it('accepts a correctly signed delivery, then reports the same request as a duplicate', async () => {
    const id = newId();
    const { body, headers } = signed(id);
    assert.ok(headers['webhook-signature']!.startsWith('v1,') && headers['x-webhook-signature']!.startsWith('v1='));

    const first = await post(rx.url, body, headers);
    assert.equal(first.status, 200);
    assert.deepEqual(first.json, { received: true, duplicate: false });
    const line1 = await rx.nextLine();
    assert.equal(line1, `✓ ${id} aggregation.completed cust_cli_ü€ hourly 2026011208 rev 1 {"api.calls":42} [both]`);

    const again = await post(rx.url, body, headers);
    assert.equal(again.status, 200);
    assert.deepEqual(again.json, { received: true, duplicate: true });
    const line2 = await rx.nextLine();
    assert.ok(line2.startsWith(`✓ ${id} `), line2);
    assert.match(line2, /duplicate/);
  });

  it('rejects a tampered body, id or timestamp with 401 and prints why', async () => {
    const id = newId();
    const { headers } = signed(id);
    const cases: Array<[string, string, Record<string, string>]> = [
      ['tampered body', payload(id, 43), headers],
      ['tampered webhook-id', payload(id), { ...headers, 'webhook-id': newId() }],
      [
        'tampered timestamps',
        payload(id),
        {
          ...headers,
          'webhook-timestamp': String(Number(headers['webhook-timestamp']) - 1),
          'x-webhook-timestamp': String(Number(headers['x-webhook-timestamp']) - 1),
        },
      ],
      ['signed with another secret', payload(id), signed(id, { secret: 'some-other-secret' }).headers],
      ['no signature at all', payload(id), { 'content-type': 'application/json' }],
    ];
    for (const [what, body, h] of cases) {
      const r = await post(rx.url, body, h);
      assert.equal(r.status, 401, `${what} → ${r.status}`);
      assert.equal(typeof r.json.error, 'string');
      const line = await rx.nextLine();
      assert.ok(line.startsWith('✗ rejected: '), `${what}: ${line}`);
    }
    // None of them counted as the message: the valid one is still new.
    const ok = signed(id);
    const r = await post(rx.url, ok.body, ok.headers);
    assert.deepEqual([r.status, r.json.duplicate], [200, false]);
    assert.ok((await rx.nextLine()).startsWith(`✓ ${id} `));
  });

  it('rejects a correctly signed but stale (or far-future) timestamp with 401', async () => {
    for (const skew of [-400, 400]) {
      const id = newId();
      const { body, headers } = signed(id, { timestamp: Math.floor(Date.now() / 1000) + skew });
      const r = await post(rx.url, body, headers);
      assert.equal(r.status, 401, `timestamp ${skew} s away`);
      assert.match(r.json.error, /timestamp/);
      const line = await rx.nextLine();
      assert.match(line, /^✗ rejected: .*timestamp/);
    }
  });

  it('accepts standard-only (legacyHeaders false) and legacy-only requests when valid', async () => {
    const std = newId();
    const s = signed(std, { legacyHeaders: false });
    assert.equal(s.headers['x-webhook-signature'], undefined);
    const r1 = await post(rx.url, s.body, s.headers);
    assert.equal(r1.status, 200);
    const stdLine = `✓ ${std} aggregation.completed cust_cli_ü€ hourly 2026011208 rev 1 {"api.calls":42} [standard]`;
    assert.equal(await rx.nextLine(), stdLine);

    const leg = newId();
    const l = signed(leg, { legacyHeaders: true });
    const legacyOnly = withoutStandard(l.headers);
    assert.ok(legacyOnly['x-webhook-signature'] && !('webhook-signature' in legacyOnly));
    const r2 = await post(rx.url, l.body, legacyOnly);
    assert.equal(r2.status, 200);
    assert.deepEqual(r2.json, { received: true, duplicate: false });
    // Without webhook-id the receiver takes the id from the signed payload.
    assert.equal(await rx.nextLine(), `✓ ${leg} aggregation.completed cust_cli_ü€ hourly 2026011208 rev 1 {"api.calls":42} [legacy]`);

    // The same legacy request again is a duplicate.
    const r3 = await post(rx.url, l.body, legacyOnly);
    assert.deepEqual(r3.json, { received: true, duplicate: true });
    assert.match(await rx.nextLine(), /duplicate/);

    // Legacy-only, but tampered or stale: 401.
    const r4 = await post(rx.url, payload(leg, 7), legacyOnly);
    assert.equal(r4.status, 401);
    assert.match(await rx.nextLine(), /^✗ rejected: /);
    const stale = signed(newId(), { timestamp: Math.floor(Date.now() / 1000) - 400 });
    const r5 = await post(rx.url, stale.body, withoutStandard(stale.headers));
    assert.equal(r5.status, 401);
    assert.match(await rx.nextLine(), /^✗ rejected: .*timestamp/);
  });

  it('legacy-only: dedupes on the signed payload id, not on an unsigned webhook-id header', async () => {
    // The legacy signature does not cover webhook-id, so a replayed legacy request with a made-up
    // webhook-id header must still be recognised as the message it carries.
    const id = newId();
    const l = signed(id);
    const legacyOnly = withoutStandard(l.headers);
    const r1 = await post(rx.url, l.body, legacyOnly);
    assert.deepEqual(r1.json, { received: true, duplicate: false });
    assert.ok((await rx.nextLine()).startsWith(`✓ ${id} `));

    const forged = newId();
    const r2 = await post(rx.url, l.body, { ...legacyOnly, 'webhook-id': forged });
    assert.equal(r2.status, 200, 'the body and its legacy signature are genuine');
    const line = await rx.nextLine();
    assert.ok(line.startsWith(`✓ ${id} `), `printed under the signed id ${id}, not the unsigned header: ${line}`);
    assert.deepEqual(r2.json, { received: true, duplicate: true }, 'a replay of the same signed message is a duplicate');
  });

  it('--status 500 answers 500 to valid deliveries (and still 401 to invalid ones)', async () => {
    const id = newId();
    const { body, headers } = signed(id);
    const r = await post(rx500.url, body, headers);
    assert.equal(r.status, 500);
    assert.equal(r.json.received, true);
    assert.ok((await rx500.nextLine()).startsWith(`✓ ${id} `));
    const bad = await post(rx500.url, payload(id, 1), headers);
    assert.equal(bad.status, 401);
    assert.match(await rx500.nextLine(), /^✗ rejected: /);
  });

  it('--json prints one JSON object per delivery and per rejection', async () => {
    const id = newId();
    const { body, headers } = signed(id);
    assert.equal((await post(rxJson.url, body, headers)).status, 200);
    const rec = JSON.parse(await rxJson.nextLine());
    assert.deepEqual(rec, { id, duplicate: false, scheme: 'both', payload: JSON.parse(body) });

    assert.equal((await post(rxJson.url, body, headers)).status, 200);
    assert.equal(JSON.parse(await rxJson.nextLine()).duplicate, true);

    assert.equal((await post(rxJson.url, payload(id, 9), headers)).status, 401);
    const rej = JSON.parse(await rxJson.nextLine());
    assert.deepEqual(Object.keys(rej), ['rejected']);
    assert.match(rej.rejected, /does not match/);
  });

  it('takes the secret from METERHOOK_WEBHOOK_SECRET', async () => {
    const id = newId();
    const { body, headers } = signed(id);
    assert.equal((await post(rxEnv.url, body, headers)).status, 200);
    assert.ok((await rxEnv.nextLine()).startsWith(`✓ ${id} `));
    const other = signed(newId(), { secret: 'not-the-env-secret' });
    assert.equal((await post(rxEnv.url, other.body, other.headers)).status, 401);
    assert.match(await rxEnv.nextLine(), /^✗ rejected: /);
  });

  it('exits non-zero with a message when no secret is given, or the status is not an HTTP status', async () => {
    const noSecret = await runCli(['webhook-receiver', '--port', '0'], { env: { METERHOOK_WEBHOOK_SECRET: undefined }, timeoutMs: 15_000 });
    assert.equal(noSecret.timedOut, false, 'it exits instead of listening');
    assert.notEqual(noSecret.code, 0);
    assert.match(noSecret.stderr, /--secret|METERHOOK_WEBHOOK_SECRET/);
    assert.doesNotMatch(noSecret.stdout, /listening/);

    const badStatus = await runCli(['webhook-receiver', '--port', '0', '--secret', SECRET, '--status', '99'], { timeoutMs: 15_000 });
    assert.equal(badStatus.timedOut, false);
    assert.notEqual(badStatus.code, 0);
    assert.match(badStatus.stderr, /--status/);
  });

  describe('a real server delivering to it', () => {
    let server: ServerProcess | undefined;
    after(async () => {
      await server?.kill('SIGKILL').catch(() => undefined);
    });

    it('prints the delivery a real meterhook server sends', async () => {
      // A whsec_ secret: the standard key is its decoded bytes at both ends, the legacy key its text.
      const secret = `whsec_${randomBytes(24).toString('base64')}`;
      const live = await startCliReceiver(['--port', '0', '--secret', secret]);
      const apiKey = `mh_rxcli_${randomBytes(8).toString('hex')}`;
      const customerId = `cust_rxcli_${randomBytes(4).toString('hex')}`;
      server = await startServerProcess({
        apiKey,
        config: {
          periods: ['hourly'],
          events: { 'api.calls': { op: 'sum' } },
          webhooks: [{ id: 'rx', url: `${live.url}hook`, secret }],
          webhookDelivery: { allowCidrs: ['127.0.0.1/32'], lease: '2s', pollInterval: '100ms', retrySchedule: ['500ms', '500ms', '1s'] },
        },
      });
      const headers = { 'x-apikey': apiKey };
      const ts = new Date(Date.now() - 2 * HOUR).toISOString();
      const ev = await http(`${server.url}/usagebatch`, {
        headers,
        body: [3, 4].map((value) => ({ eventType: 'api.calls', customerId, value, timestamp: ts })),
      });
      assert.equal(ev.status, 201, ev.text);
      const trig = await http(`${server.url}/aggregations/trigger`, { method: 'POST', headers });
      assert.equal(trig.status, 202, trig.text);

      const line = await live.nextLine(15_000);
      const m = /^✓ (msg_\S+) aggregation\.completed (\S+) hourly (\d{10}) rev 1 (\{.*\}) \[both\]$/.exec(line);
      assert.ok(m, `a verified delivery line: ${line}`);
      assert.equal(m[2], customerId);
      assert.equal(m[3], new Date(Date.parse(ts)).toISOString().slice(0, 13).replace(/[-T]/g, ''));
      assert.deepEqual(JSON.parse(m[4]!), { 'api.calls': 7 });

      const deadline = Date.now() + 10_000;
      let delivery: any;
      for (;;) {
        const r: HttpResult<any[]> = await http(`${server.url}/webhooks/deliveries?endpointId=rx`, { headers });
        assert.equal(r.status, 200);
        delivery = r.body[0];
        if (delivery?.status === 'succeeded' || Date.now() > deadline) break;
        await sleep(50);
      }
      assert.equal(delivery.status, 'succeeded');
      assert.equal(delivery.messageId, m[1]);
      assert.equal(delivery.lastStatusCode, 200);
      assert.doesNotMatch(live.stdout(), /rejected/);
      await server.stop();
    });
  });
});
