// The README's promises, checked: the receiver example it shows is the file the tests run, that
// example bills correctly from real deliveries, every configuration snippet is valid, and its shell
// examples work as written for a new user, today and with the clock a year ahead (libfaketime).
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { parseConfig } from '../../src/config/load-config.js';
import { createBillingReceiver } from '../../examples/billing-receiver.js';
import { buildTestApp, REFERENCE_CONFIG, TEST_STORE, type TestApp } from '../helpers/app.js';
import {
  answerPattern,
  curlAnswers,
  curlCommands,
  fakeClockAvailable,
  nodeNowUnder,
  section,
  shellBlocks,
  shellNowUnder,
  startLikeReadme,
} from '../helpers/readme-shell.js';

const README = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const EXAMPLE = fs.readFileSync(new URL('../../examples/billing-receiver.ts', import.meta.url), 'utf8');

function codeBlocks(lang: string): string[] {
  const re = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g');
  return [...README.matchAll(re)].map((m) => m[1]!);
}

describe('README', () => {
  it('shows examples/billing-receiver.ts verbatim', () => {
    assert.ok(codeBlocks('ts').includes(EXAMPLE), 'the ```ts block in "Receiving webhooks" must equal examples/billing-receiver.ts');
  });

  it('every configuration snippet that looks like a config parses', () => {
    // A snippet is a configuration when every top-level key is a configuration key (API documents are not).
    const CONFIG_KEYS = new Set([
      'periods',
      'events',
      'webhooks',
      'webhookDelivery',
      'schedule',
      'gracePeriod',
      'maxEventAge',
      'maxFutureSkew',
      'maxBatchSize',
      'maxGroupsPerHour',
    ]);
    const configs = codeBlocks('json')
      .map((b) => b.trim())
      .filter((b) => b.startsWith('{'))
      .map((b) => ({ text: b, doc: JSON.parse(b) as Record<string, unknown> }))
      .filter(({ doc }) => Object.keys(doc).every((k) => CONFIG_KEYS.has(k)));
    assert.ok(configs.length >= 3, `expected several config snippets, found ${configs.length}`);
    for (const { text, doc } of configs) {
      assert.doesNotThrow(() => parseConfig(doc, { env: { BILLING_WEBHOOK_SECRET: 'x'.repeat(24) } }), text);
    }
  });

  it('no command it shows carries a fixed date, which maxEventAge would refuse some day', () => {
    const inline = [...README.matchAll(/`(curl [^`]+)`/g)].map((m) => m[1]!);
    const commands = [...shellBlocks(README), ...inline].flatMap((b) => b.split('\n')).filter((l) => !l.trim().startsWith('#'));
    const dated = commands.filter((l) => /\b(19|20)\d\d-[01]\d-[0-3]\d|\bat=\d|periodKey=\d|[?&](from|to)=\d|"timestamp":\s*\d/.test(l));
    assert.deepEqual(dated, [], 'take timestamps from the clock ($(date -u …)) or leave them out');
  });
});

const DAY_MS = 86_400_000;
const OFFSETS: Record<string, number> = { '+365d': 365 * DAY_MS };

describe('the README shell examples, run as a new user would', {
  skip: TEST_STORE === 'postgres' ? 'the README starts the default SQLite server' : false,
}, () => {
  const quickStart = shellBlocks(section(README, 'Quick start (5 minutes)'));
  const sdkCurls = [...section(README, 'Client SDK (`meterhook/client`)').matchAll(/`(curl [^`]+)`/g)].map((m) => m[1]!);

  for (const clock of [undefined, '+365d']) {
    it(clock ? `work with the clock a year ahead (libfaketime ${clock})` : 'work today', { timeout: 300_000 }, async () => {
      const shift = clock ? OFFSETS[clock]! : 0;
      if (clock) {
        const fake = fakeClockAvailable();
        assert.ok(fake.ok, fake.ok ? '' : fake.reason);
        // libfaketime must move what Node and the shell read, or this run would prove nothing.
        assert.ok(Math.abs(nodeNowUnder(clock) - (Date.now() + shift)) < 600_000, 'Date.now() under faketime');
        assert.ok(Math.abs(shellNowUnder(clock) - (Date.now() + shift)) < 600_000, 'date under faketime');
      }
      assert.match(quickStart[0]!, /^npm install && npm start\n$/, 'step 1 starts the server with npm start');
      // `npm install` needs the network; the throwaway checkout links this one's installed packages instead.
      const server = await startLikeReadme({ clockOffset: clock });
      try {
        assert.match(server.stdout(), /meterhook: no API key was configured, so one was created/);
        const ping = (await (await fetch(`${server.url}/ping`, { headers: { 'x-apikey': server.key } })).json()) as { timestamp: string };
        const serverNow = Date.parse(ping.timestamp);
        assert.ok(Math.abs(serverNow - (Date.now() + shift)) < 600_000, `the server's clock: ${ping.timestamp}`);

        const steps = quickStart.slice(1).join('\n');
        assert.match(steps, /^export KEY=mh_\S+ +# the key printed at first start$/m);
        const script = steps
          .replace(/^export KEY=.*$/m, `export KEY=${server.key}`)
          .replaceAll('localhost:3000', `127.0.0.1:${server.port}`);
        const r = await server.shell(script);
        assert.equal(r.status, 0, `the Quick Start commands failed:\n${r.stderr}\n${r.stdout}`);
        const calls = curlCommands(script);
        const answers = curlAnswers(r.stdout);
        assert.equal(answers.length, calls.length, r.stdout);
        calls.forEach((c, i) => {
          const a = answers[i]!;
          assert.ok(a.status >= 200 && a.status < 300, `${c.command}\nanswered ${a.status}: ${a.body}`);
          if (c.expected) assert.match(a.body, answerPattern(c.expected), c.command);
        });
        // Step 3 reads back what step 2 sent: the dated event counts in this month and day.
        const usage = JSON.parse(answers.find((_, i) => calls[i]!.command.includes('/usage?period=monthly'))!.body) as {
          events: Record<string, number>;
        };
        assert.deepEqual(usage.events, { 'api.calls': 4, 'storage.bytes': 52428800 });
        const daily = JSON.parse(answers.find((_, i) => calls[i]!.command.includes('period=daily'))!.body) as Array<{ periodKey: string }>;
        const day = (t: number) => new Date(t).toISOString().slice(0, 10).replaceAll('-', '');
        assert.ok(
          daily.length > 0 &&
            daily.every((d) => [day(serverNow - 3_600_000), day(serverNow), day(serverNow + 600_000)].includes(d.periodKey)),
          JSON.stringify(daily),
        );

        // The SDK table's curl equivalents (those that need no id from an earlier answer).
        const table = sdkCurls
          .filter((c) => !c.includes('$ID'))
          .map((c) => c.replaceAll('<uuid>', randomUUID()).replaceAll('localhost:3000', `127.0.0.1:${server.port}`));
        assert.ok(table.length >= 6, `found ${table.length} curl lines in the SDK table`);
        const t = await server.shell(table.join('\n'), { KEY: server.key });
        assert.equal(t.status, 0, t.stderr);
        const tableAnswers = curlAnswers(t.stdout);
        assert.equal(tableAnswers.length, table.length);
        tableAnswers.forEach((a, i) => {
          assert.ok(a.status >= 200 && a.status < 300, `${table[i]}\nanswered ${a.status}: ${a.body}`);
        });
      } finally {
        await server.stop();
      }
    });
  }
});

describe('the billing receiver example, against real deliveries', () => {
  const PLAIN_SECRET = 'readme-example-secret-123';
  let t: TestApp;
  let rx: ReturnType<typeof createBillingReceiver>;

  before(async () => {
    // The standard key of a plain secret is its UTF-8 bytes: receivers use the whsec_ form of those.
    rx = createBillingReceiver({
      standardSecret: `whsec_${Buffer.from(PLAIN_SECRET).toString('base64')}`,
      legacySecret: PLAIN_SECRET,
    });
    await new Promise<void>((r) => rx.server.listen(0, '127.0.0.1', r));
    const port = (rx.server.address() as AddressInfo).port;
    t = await buildTestApp({
      now: Date.now(),
      config: {
        ...REFERENCE_CONFIG,
        periods: ['hourly'],
        webhooks: [
          { id: 'standard', url: `http://127.0.0.1:${port}/std`, secret: PLAIN_SECRET, legacyHeaders: false },
          { id: 'legacy', url: `http://127.0.0.1:${port}/legacy`, secret: PLAIN_SECRET },
        ],
        webhookDelivery: { allowCidrs: ['127.0.0.1/32'], pollInterval: '20ms' },
      },
    });
    await t.dispatcher.start();
  });
  after(async () => {
    await t.close();
    await new Promise((r) => rx.server.close(r));
  });

  it('applies each message once and keeps the highest revision', async () => {
    const hourAgo = new Date(Date.now() - 2 * 3_600_000).toISOString();
    const post = (value: number, id: string) =>
      t.app.inject({
        method: 'POST',
        url: '/usage/api.calls',
        headers: t.headers,
        payload: { customerId: 'cust_rx', value, id, timestamp: hourAgo },
      });
    assert.equal((await post(5, 'a')).statusCode, 201);
    await closeDuePeriods(t.ctx);
    // Closing notified the dispatcher: settled() resolves once both attempts are answered and recorded.
    await t.dispatcher.settled();
    // Two endpoints, one message: the receiver sees the same id twice and applies it once.
    assert.equal(rx.seen.size, 1);
    assert.equal([...rx.usage.values()][0]?.revision, 1);
    assert.equal((await t.store.listDeliveries({ status: 'succeeded', limit: 10 })).length, 2, 'both deliveries');
    assert.equal(rx.usage.size, 1);

    assert.equal((await post(7, 'b')).statusCode, 201);
    await closeDuePeriods(t.ctx);
    await t.dispatcher.settled();
    assert.equal((await t.store.listDeliveries({ status: 'succeeded', limit: 10 })).length, 4);
    const applied = [...rx.usage.values()][0]!;
    assert.equal(applied.revision, 2);
    assert.equal(applied.type, 'aggregation.updated');
    assert.deepEqual(applied.data.events, { 'api.calls': 12 });
    assert.equal(rx.seen.size, 2);
  });

  it('rejects a request whose signature does not match', async () => {
    const port = (rx.server.address() as AddressInfo).port;
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-webhook-timestamp': String(Math.floor(Date.now() / 1000)),
        'x-webhook-signature': 'v1=00',
      },
      body: '{}',
    });
    assert.equal(res.status, 401);
  });
});
