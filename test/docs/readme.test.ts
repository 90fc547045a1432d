// The README's promises, checked: the receiver example it shows is the file the tests run, that
// example bills correctly from real deliveries, and every configuration snippet is valid.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { parseConfig } from '../../src/config/load-config.js';
import { createBillingReceiver } from '../../examples/billing-receiver.js';
import { buildTestApp, REFERENCE_CONFIG, type TestApp } from '../helpers/app.js';

const README = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const EXAMPLE = fs.readFileSync(new URL('../../examples/billing-receiver.ts', import.meta.url), 'utf8');

function codeBlocks(lang: string): string[] {
  const re = new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g');
  return [...README.matchAll(re)].map((m) => m[1]!);
}

async function until(cond: () => boolean | Promise<boolean>, what: string, tick: () => void = () => undefined): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    tick();
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('README', () => {
  it('shows examples/billing-receiver.ts verbatim', () => {
    assert.ok(codeBlocks('ts').includes(EXAMPLE), 'the ```ts block in "Receiving webhooks" must equal examples/billing-receiver.ts');
  });

  it('every configuration snippet that looks like a config parses', () => {
    // A snippet is a configuration when every top-level key is a configuration key (API documents are not).
    const CONFIG_KEYS = new Set(['periods', 'events', 'webhooks', 'webhookDelivery', 'schedule', 'gracePeriod', 'maxEventAge', 'maxFutureSkew', 'maxBatchSize']);
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
      t.app.inject({ method: 'POST', url: '/usage/api.calls', headers: t.headers, payload: { customerId: 'cust_rx', value, id, timestamp: hourAgo } });
    assert.equal((await post(5, 'a')).statusCode, 201);
    await closeDuePeriods(t.ctx);
    // Two endpoints, one message: the receiver sees the same id twice and applies it once.
    await until(() => rx.seen.size === 1 && [...rx.usage.values()][0]?.revision === 1, 'revision 1');
    await until(async () => (await t.store.listDeliveries({ status: 'succeeded', limit: 10 })).length === 2, 'both deliveries');
    assert.equal(rx.usage.size, 1);

    assert.equal((await post(7, 'b')).statusCode, 201);
    await closeDuePeriods(t.ctx);
    await until(() => [...rx.usage.values()][0]?.revision === 2, 'revision 2');
    const applied = [...rx.usage.values()][0]!;
    assert.equal(applied.type, 'aggregation.updated');
    assert.deepEqual(applied.data.events, { 'api.calls': 12 });
    assert.equal(rx.seen.size, 2);
  });

  it('rejects a request whose signature does not match', async () => {
    const port = (rx.server.address() as AddressInfo).port;
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'x-webhook-signature': 'v1=00' },
      body: '{}',
    });
    assert.equal(res.status, 401);
  });
});
