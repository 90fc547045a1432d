// GET /events with metadata filters, in-process against a real store: which stored values each filter
// matches (strings as they are, numbers by their JSON text, booleans; never null, an object, an array or
// a missing key), filters that must all match, and malformed filters answered 400 with a message saying why.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { assertJsonError, captureBatch, get, type Json } from '../helpers/queries.js';

const C = 'cust_f';

describe('GET /events metadata filters: what matches', () => {
  let t: TestApp;

  before(async () => {
    t = await buildTestApp();
    // Each event's value names it; times rise with the value, so newest first is highest value first.
    const at = (i: number) => new Date(Date.parse('2026-01-12T06:00:00Z') + i * 60_000).toISOString();
    const ev = (value: number, metadata: unknown, more: Record<string, unknown> = {}) => ({
      eventType: 'api.calls',
      customerId: C,
      value,
      timestamp: at(value),
      ...(metadata === undefined ? {} : { metadata }),
      ...more,
    });
    await captureBatch(t, [
      ev(1, { s: 'gpt-4o', n: 1.5, b: true, 'a.b': 'dot' }),
      ev(2, { s: 'llama', n: 10, b: false }),
      ev(3, { s: '10', n: 1e21 }),
      ev(4, { s: '', n: -0 }),
      ev(5, { s: null, n: { x: 1 } }),
      ev(6, { s: ['gpt-4o'], n: [10] }),
      ev(7, { s: { v: 'gpt-4o' } }),
      ev(8, undefined),
      ev(9, JSON.parse('{"__proto__":"p","S":"gpt-4o"}')),
      ev(10, { s: 'GPT-4o' }),
      ev(11, { s: 'modèle 😀', t: 'a b' }),
      ev(12, { n: '10' }),
      ev(13, { s: 'gpt-4o' }, { eventType: 'storage.bytes' }),
      ev(14, { s: 'null' }),
      // Another customer's event never shows.
      ev(15, { s: 'gpt-4o' }, { customerId: 'cust_g' }),
    ]);
  });
  after(async () => t?.close());

  const values = async (q: string): Promise<number[]> => {
    const r = await get(t, `/events?customerId=${C}&${q}`);
    assert.equal(r.status, 200, `${q}: ${JSON.stringify(r.body)}`);
    return r.body.map((e: Json) => e.value);
  };

  it('a string matches itself exactly: case, spaces and empty strings count', async () => {
    assert.deepEqual(await values('metadata.s=gpt-4o'), [13, 1]);
    assert.deepEqual(await values('metadata.s=GPT-4o'), [10]);
    assert.deepEqual(await values('metadata.s=gpt-4o%20'), []);
    assert.deepEqual(await values('metadata.s=gpt'), []);
    assert.deepEqual(await values(`metadata.s=${encodeURIComponent('modèle 😀')}`), [11]);
    assert.deepEqual(await values('metadata.t=a+b'), [11]);
    // An empty value asks for the empty string, not for a missing key or null.
    assert.deepEqual(await values('metadata.s='), [4]);
    assert.deepEqual(await values('metadata.s'), [4]);
    // "null" is the string "null", never a null value.
    assert.deepEqual(await values('metadata.s=null'), [14]);
  });

  it('a number matches its JSON text, which a string of the same text shares', async () => {
    assert.deepEqual(await values('metadata.n=1.5'), [1]);
    assert.deepEqual(await values('metadata.n=1.50'), []);
    assert.deepEqual(await values('metadata.n=10'), [12, 2]);
    assert.deepEqual(await values('metadata.n=10.0'), []);
    assert.deepEqual(await values('metadata.n=1e%2B21'), [3]);
    assert.deepEqual(await values('metadata.n=1e21'), []);
    assert.deepEqual(await values('metadata.n=1000000000000000000000'), []);
    // -0 is written 0 by JSON.
    assert.deepEqual(await values('metadata.n=0'), [4]);
    assert.deepEqual(await values('metadata.n=-0'), []);
    assert.deepEqual(await values('metadata.s=10'), [3]);
  });

  it('a boolean matches "true" or "false"', async () => {
    assert.deepEqual(await values('metadata.b=true'), [1]);
    assert.deepEqual(await values('metadata.b=false'), [2]);
    assert.deepEqual(await values('metadata.b=1'), []);
    assert.deepEqual(await values('metadata.b=True'), []);
  });

  it('null, objects, arrays and missing keys match no value', async () => {
    for (const v of ['null', '', '[10]', '10', '{"x":1}', '[object Object]']) {
      const got = await values(`metadata.n=${encodeURIComponent(v)}`);
      assert.ok(!got.includes(5) && !got.includes(6), `n=${v} → ${got}`);
    }
    for (const v of ['["gpt-4o"]', '{"v":"gpt-4o"}', 'null', '']) {
      const got = await values(`metadata.s=${encodeURIComponent(v)}`);
      assert.ok(![5, 6, 7, 8, 12].some((x) => got.includes(x)), `s=${v} → ${got}`);
    }
    assert.deepEqual(await values('metadata.missing=x'), []);
    assert.deepEqual(await values('metadata.missing='), []);
  });

  it('a key is the whole rest of the name: dots, case and __proto__ are plain keys', async () => {
    assert.deepEqual(await values('metadata.a.b=dot'), [1]);
    assert.deepEqual(await values('metadata.a=dot'), []);
    assert.deepEqual(await values('metadata.S=gpt-4o'), [9]);
    assert.deepEqual(await values('metadata.__proto__=p'), [9]);
    assert.deepEqual(await values('metadata.constructor=x'), []);
  });

  it('several filters must all match, and combine with eventType and from/to', async () => {
    assert.deepEqual(await values('metadata.s=gpt-4o&metadata.n=1.5'), [1]);
    assert.deepEqual(await values('metadata.s=gpt-4o&metadata.n=1.5&metadata.b=true&metadata.a.b=dot'), [1]);
    assert.deepEqual(await values('metadata.s=gpt-4o&metadata.n=10'), []);
    assert.deepEqual(await values('metadata.s=llama&metadata.b=false'), [2]);
    assert.deepEqual(await values('metadata.s=gpt-4o&eventType=api.calls'), [1]);
    assert.deepEqual(await values('metadata.s=gpt-4o&eventType=storage.bytes'), [13]);
    assert.deepEqual(await values('metadata.s=gpt-4o&from=2026-01-12T06:05:00Z'), [13]);
    assert.deepEqual(await values('metadata.s=gpt-4o&to=2026-01-12T06:05:00Z'), [1]);
  });

  it('a parameter that is no metadata filter stays ignored', async () => {
    const all = await values('limit=1000');
    assert.equal(all.length, 14);
    assert.deepEqual(await values('other=x&metadatas=1&Metadata.s=gpt-4o&meta.s=x'), all);
  });
});

describe('GET /events metadata filters: malformed filters are a 400', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(async () => t?.close());

  const refused = async (q: string, message: RegExp) => {
    const r = await get(t, `/events?${q}`);
    assertJsonError(r, 400);
    assert.equal(r.body.code, 'invalid_query', q);
    assert.match(r.body.error, message, q);
  };
  const accepted = async (q: string) => {
    const r = await get(t, `/events?${q}`);
    assert.equal(r.status, 200, `${q.slice(0, 80)}: ${JSON.stringify(r.body)}`);
  };

  it('a filter without a key, or a key given twice', async () => {
    await refused(`customerId=${C}&metadata.=x`, /^A metadata filter needs a key: write metadata\.<key>=<value> \(got metadata\.\)$/);
    await refused(`customerId=${C}&metadata.`, /needs a key/);
    await refused(`customerId=${C}&metadata.s=a&metadata.s=b`, /^metadata\.s is given 2 times: a metadata filter takes one value per key$/);
    await refused(`customerId=${C}&metadata.s=a&metadata.s=a`, /given 2 times/);
  });

  it('metadata and metadata[key] instead of metadata.key', async () => {
    await refused(
      `customerId=${C}&metadata[s]=x`,
      /^Filter on metadata with metadata\.<key>=<value> \(got a parameter named "metadata\[s\]"\)$/,
    );
    await refused(`customerId=${C}&metadata=x`, /"metadata"/);
  });

  it('an over-long key or value, and too many filters; the bounds themselves are accepted', async () => {
    await accepted(`customerId=${C}&metadata.${'k'.repeat(128)}=x`);
    await refused(
      `customerId=${C}&metadata.${'k'.repeat(129)}=x`,
      /^The key of a metadata filter must be at most 128 characters \(got 129\)$/,
    );
    await accepted(`customerId=${C}&metadata.s=${'v'.repeat(1024)}`);
    await refused(`customerId=${C}&metadata.s=${'v'.repeat(1025)}`, /^metadata\.s must be at most 1024 characters \(got 1025\)$/);
    const filters = (n: number) => Array.from({ length: n }, (_, i) => `metadata.k${i}=v`).join('&');
    await accepted(`customerId=${C}&${filters(10)}`);
    await refused(`customerId=${C}&${filters(11)}`, /^At most 10 metadata filters may be combined \(got 11\)$/);
  });

  it('NUL and lone surrogates, in keys and values', async () => {
    await refused(`customerId=${C}&metadata.s=a%00b`, /^metadata\.s must not contain NUL$/);
    await refused(`customerId=${C}&metadata.a%00=x`, /^The key of a metadata filter must not contain NUL$/);
    await refused(`customerId=${C}&metadata.s=%ED%A0%80`, /^Query parameter metadata\.s is not valid percent-encoded UTF-8/);
    await refused(`customerId=${C}&metadata.%ED%B0%80=x`, /^Query parameter metadata\.%ED%B0%80 is not valid percent-encoded UTF-8/);
    await refused(`customerId=${C}&metadata.s=%E2`, /not valid percent-encoded UTF-8/);
  });

  it('a filter without customerId', async () => {
    await refused('metadata.s=x', /^A metadata filter needs customerId: a filter looks through the events of one customer$/);
    await refused('eventType=api.calls&metadata.s=x', /needs customerId/);
  });

  it('without the API key it is a 401 first', async () => {
    const r = await get(t, '/events?metadata.=x', {});
    assertJsonError(r, 401);
  });
});
