// MeterhookClient.events() with a metadata filter, over real HTTP to an in-process server on a real
// store: the filter goes out as metadata.<key> parameters (numbers and booleans as their text), and
// iteration follows the cursor through pages a small scan budget cut short or left empty, seeing every
// match once. Values with no string form, and lone surrogates, are refused before any request.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MeterhookClient, MeterhookError, MeterhookValidationError } from '../../src/client/index.js';
import { buildTestApp, TEST_KEY, type TestApp } from '../helpers/app.js';
import { captureBatch } from '../helpers/queries.js';

const C = 'cust_sdk';
const N = 60;

describe('MeterhookClient.events() with a metadata filter', () => {
  let t: TestApp;
  let c: MeterhookClient;
  const urls: URL[] = [];

  before(async () => {
    t = await buildTestApp({ limits: { eventListing: { scanBudget: 4 } } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as AddressInfo;
    c = new MeterhookClient({
      url: `http://127.0.0.1:${port}`,
      apiKey: TEST_KEY,
      maxRetries: 0,
      fetch: (input, init) => {
        urls.push(new URL(String(input)));
        return fetch(input, init);
      },
    });
    await captureBatch(
      t,
      Array.from({ length: N }, (_, i) => ({
        eventType: 'api.calls',
        customerId: C,
        value: i,
        timestamp: new Date(Date.parse('2026-01-12T06:00:00Z') + i * 1000).toISOString(),
        metadata: { model: i % 6 === 0 ? 'gpt-4o' : 'llama', tier: i % 2 === 0 ? 2 : '2', ok: i % 3 === 0 },
      })),
    );
  });
  after(async () => {
    await c?.close();
    await t?.close();
  });

  const matching = (pred: (i: number) => boolean) =>
    Array.from({ length: N }, (_, i) => i)
      .filter(pred)
      .reverse();

  it('sends metadata.<key> parameters, numbers and booleans as their text', async () => {
    urls.length = 0;
    const page = await c.events({ customerId: C, metadata: { model: 'gpt-4o', tier: 2, ok: true }, limit: 2 });
    const q = urls[0]!.searchParams;
    assert.equal(q.get('metadata.model'), 'gpt-4o');
    assert.equal(q.get('metadata.tier'), '2');
    assert.equal(q.get('metadata.ok'), 'true');
    assert.equal(q.get('customerId'), C);
    assert.ok(page.items.length <= 2);
    assert.ok(page.items.every((e) => e.metadata.model === 'gpt-4o' && e.metadata.ok === true));
  });

  it('iterates through short and empty pages to every match, once, newest first', async () => {
    urls.length = 0;
    const all = await c.events({ customerId: C, metadata: { model: 'gpt-4o', ok: true }, limit: 3 }).all();
    assert.deepEqual(
      all.map((e) => e.value),
      matching((i) => i % 6 === 0),
    );
    // The budget of 4 rows a page means at least N / 4 requests.
    assert.ok(urls.length >= N / 4, `${urls.length} requests`);

    const sizes: number[] = [];
    let emptyWithCursor = 0;
    for await (const p of c.events({ customerId: C, metadata: { model: 'gpt-4o' }, limit: 3 }).pages()) {
      sizes.push(p.items.length);
      if (p.items.length === 0 && p.nextCursor) emptyWithCursor++;
    }
    assert.ok(emptyWithCursor > 0, `pages: ${sizes.join(',')}`);
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      N / 6,
    );
    // A number filter matches the number and the string of the same text.
    const tier = await c.events({ customerId: C, metadata: { tier: 2 }, limit: 1000 }).all();
    assert.equal(tier.length, N);
    // all(max) stops after max items, across short pages.
    assert.equal((await c.events({ customerId: C, metadata: { ok: false } }).all(7)).length, 7);
  });

  it('refuses values with no string form and lone surrogates before sending; the server refuses bad keys', async () => {
    urls.length = 0;
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, null, { a: 1 }, ['x']]) {
      assert.throws(
        () => c.events({ customerId: C, metadata: { model: bad as never } }),
        (e: unknown) => e instanceof TypeError && /^metadata\.model must be a string, a finite number or a boolean/.test(e.message),
      );
    }
    await assert.rejects(async () => c.events({ customerId: C, metadata: { model: 'x\ud800' } }), MeterhookValidationError);
    assert.equal(urls.length, 0);
    await assert.rejects(
      async () => c.events({ customerId: C, metadata: { '': 'x' } }),
      (e: unknown) => e instanceof MeterhookError && e.status === 400 && e.code === 'invalid_query' && /needs a key/.test(e.message),
    );
    await assert.rejects(
      async () => c.events({ metadata: { model: 'x' } }),
      (e: unknown) => e instanceof MeterhookError && e.status === 400 && /needs customerId/.test(e.message),
    );
  });
});
