// Query parameters that no input can turn into a 500, in-process on SQLite and (re-run by the runner)
// PostgreSQL: every time parameter of every route (found in the OpenAPI document, so a new one is
// covered too) answers correctly for instants across 1970..9999 and 400 naming the parameter outside;
// capture accepts the same range; every cursor the server issues is accepted back, for customer ids
// up to 256 UTF-16 units of any characters (a property test); crafted cursors are a 400.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCursor, encodeCursor, MAX_CURSOR_ID_LENGTH, MAX_CURSOR_LENGTH, type CursorField } from '../../src/http/cursor.js';
import { MAX_INSTANT, MIN_INSTANT } from '../../src/domain/timestamps.js';
import { buildTestApp, REFERENCE_CONFIG, type TestApp } from '../helpers/app.js';

interface Res {
  status: number;
  headers: Record<string, unknown>;
  body: any;
}

async function call(t: TestApp, method: 'GET' | 'POST', url: string, payload?: unknown): Promise<Res> {
  const r = await t.app.inject({ method, url, headers: t.headers, ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }) });
  let body: unknown;
  try {
    body = r.json();
  } catch {
    assert.fail(`${method} ${url} answered ${r.statusCode} with a non-JSON body: ${r.body.slice(0, 200)}`);
  }
  return { status: r.statusCode, headers: r.headers, body };
}

const get = (t: TestApp, url: string) => call(t, 'GET', url);

/** Parseable instants that lie outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z (or that Date cannot hold). */
const OUTSIDE = [
  '+275760-09-13T00:00:00Z',
  '-271821-04-20T00:00:00Z',
  '8640000000000000',
  '-8640000000000000',
  '1e300',
  '9007199254740993',
  '8639999999999999',
  '253402300800000',
  '0000-01-01T00:00:00Z',
  '0000-01-01',
  '1969-12-31',
  '1969-12-31T23:59:59.999Z',
  '1970-01-01T00:00:00+00:01',
  '9999-12-31T23:59:59.999-00:01',
  '10000-01-01T00:00:00Z',
];
/** Instants at and near both ends of the range. */
const INSIDE = [
  '0',
  '1970-01-01',
  '1970-01-01T00:00:00Z',
  '1970-01-01T00:00:00.000-00:01',
  '1970-01-05T00:00:00Z',
  '9999-12-31',
  '9999-12-31T23:59:59.999Z',
  '9999-12-31T23:59:59.999+00:01',
  String(MAX_INSTANT),
  '2026-01-12T10:00:00Z',
];

/** Every query parameter the OpenAPI document describes as an instant, per route. */
async function timeParameters(t: TestApp): Promise<Array<{ path: string; name: string }>> {
  const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string; description?: string }> }>>;
  };
  const out: Array<{ path: string; name: string }> = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const op of Object.values(ops)) {
      for (const p of op.parameters ?? [])
        if (p.in === 'query' && /epoch milliseconds/.test(p.description ?? '')) out.push({ path, name: p.name });
    }
  }
  return out;
}

const urlOf = (path: string, query: string) => `${path.replace('{customerId}', 'cust_edge')}?${query}`;

describe('instants in query parameters', () => {
  let t: TestApp;
  let params: Array<{ path: string; name: string }>;

  before(async () => {
    t = await buildTestApp();
    const r = await call(t, 'POST', '/usagebatch', [
      { eventType: 'api.calls', customerId: 'cust_edge', value: 2, timestamp: '2026-01-12T09:00:00Z' },
      { eventType: 'api.calls', customerId: 'cust_edge', value: 3, timestamp: '2026-01-12T10:00:00Z' },
    ]);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    params = await timeParameters(t);
  });
  after(async () => t?.close());

  it('finds the time parameters of every route in the API description', () => {
    const found = params.map((p) => `${p.path} ${p.name}`).sort();
    for (const expected of [
      '/events from',
      '/events to',
      '/aggregations from',
      '/aggregations to',
      '/customers/{customerId}/usage at',
      '/customers/{customerId}/usage/series from',
      '/customers/{customerId}/usage/series to',
      '/webhooks/deliveries from',
      '/webhooks/deliveries to',
    ])
      assert.ok(found.includes(expected), `${expected} is among ${found.join(', ')}`);
  });

  it('answers 400 invalid_query naming the parameter for any instant outside 1970..9999', async () => {
    for (const { path, name } of params) {
      for (const v of OUTSIDE) {
        const r = await get(t, urlOf(path, `${name}=${encodeURIComponent(v)}`));
        assert.equal(r.status, 400, `${path}?${name}=${v}: ${r.status} ${JSON.stringify(r.body)}`);
        assert.equal(r.body.code, 'invalid_query', `${path}?${name}=${v}`);
        assert.ok(r.body.error.startsWith(`${name} must be`), `${path}?${name}=${v}: ${r.body.error}`);
        assert.equal(typeof r.body.requestId, 'string');
      }
    }
    const r = await get(t, '/events?from=1969-12-31T23:59:59.999Z');
    assert.equal(r.body.error, 'from must be an instant between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z');
  });

  it('answers every instant inside the range, alone and as both bounds, with no 5xx', async () => {
    for (const { path, name } of params) {
      for (const v of INSIDE) {
        for (const q of [
          `${name}=${encodeURIComponent(v)}`,
          ...['hourly', 'weekly', 'yearly'].map((p) => `period=${p}&${name}=${encodeURIComponent(v)}`),
        ]) {
          const r = await get(t, urlOf(path, q));
          // A series range can be refused for its size or direction: that is a 400 about the bounds.
          const ok = r.status === 200 || (r.status === 400 && r.body.code === 'invalid_query' && /^(from|to)\b/.test(r.body.error));
          assert.ok(ok, `${path}?${q}: ${r.status} ${JSON.stringify(r.body)}`);
        }
      }
    }
    for (const path of ['/events', '/aggregations', '/webhooks/deliveries']) {
      const r = await get(t, `${path}?from=0&to=${MAX_INSTANT}`);
      assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
    }
    const all = await get(t, '/events?from=1970-01-01&to=9999-12-31T23:59:59.999Z');
    assert.equal(all.body.length, 2);
  });

  it('computes periods at both ends of the range', async () => {
    const last = '9999-12-31T23:59:59.999Z';
    const expect: Record<string, [string, string, string]> = {
      hourly: ['9999123123', '9999-12-31T23:00:00.000Z', last],
      daily: ['99991231', '9999-12-31T00:00:00.000Z', last],
      // ISO week 52 of 9999 ends in the next year, shown with ISO-8601's extended year.
      weekly: ['999952', '9999-12-27T00:00:00.000Z', '+010000-01-02T23:59:59.999Z'],
      monthly: ['999912', '9999-12-01T00:00:00.000Z', last],
      yearly: ['9999', '9999-01-01T00:00:00.000Z', last],
    };
    for (const [period, [key, start, end]] of Object.entries(expect)) {
      const r = await get(t, `/customers/cust_edge/usage?period=${period}&at=${last}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual([r.body.periodKey, r.body.periodStart, r.body.periodEnd], [key, start, end]);
      assert.deepEqual(r.body.events, {});
    }
    const first = await get(t, '/customers/cust_edge/usage?period=weekly&at=1970-01-01T00:00:00Z');
    assert.deepEqual([first.body.periodKey, first.body.periodStart], ['197001', '1969-12-29T00:00:00.000Z']);
    const day = await get(t, `/customers/cust_edge/usage/series?bucket=day&from=9999-12-01&to=${last}`);
    assert.equal(day.status, 200, JSON.stringify(day.body));
    assert.deepEqual([day.body.from, day.body.to], ['9999-12-01T00:00:00.000Z', last]);
  });

  it('POST /webhooks/recover takes `since` in the same range', async () => {
    for (const v of [...OUTSIDE, 8640000000000000, 1e300, 253402300800000]) {
      const r = await call(t, 'POST', '/webhooks/recover', { since: v });
      assert.equal(r.status, 400, `since=${v}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error, /^since must be/);
    }
    for (const v of [...INSIDE, 0, MAX_INSTANT]) {
      const r = await call(t, 'POST', '/webhooks/recover', { since: v });
      assert.equal(r.status, 200, `since=${v}: ${JSON.stringify(r.body)}`);
    }
  });
});

describe('capture uses the same range', () => {
  let t: TestApp;
  before(async () => {
    // Limits wide enough that only the supported range decides.
    t = await buildTestApp({
      config: { ...REFERENCE_CONFIG, periods: ['daily', 'weekly', 'yearly'], maxEventAge: '600000w', maxFutureSkew: '104000000d' },
    });
  });
  after(async () => t?.close());

  it('refuses event times outside 1970..9999 and stores, lists and aggregates those at both ends', async () => {
    for (const ts of [
      '0000-01-01T00:00:00Z',
      '1969-12-31T23:59:59.999Z',
      '9999-12-31T23:59:59.999-00:01',
      253402300800000,
      8640000000000000,
    ]) {
      const r = await call(t, 'POST', '/usage/api.calls', { customerId: 'cust_ends', value: 1, timestamp: ts });
      assert.equal(r.status, 422, `timestamp ${ts}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(r.body.details, ['timestamp must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z']);
    }
    const ok = await call(t, 'POST', '/usagebatch', [
      { eventType: 'api.calls', customerId: 'cust_ends', value: 1, timestamp: MIN_INSTANT, id: 'first' },
      { eventType: 'api.calls', customerId: 'cust_ends', value: 2, timestamp: '9999-12-31T23:59:59.999Z', id: 'last' },
    ]);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const events = await get(t, '/events?customerId=cust_ends&limit=1');
    assert.equal(events.body[0].timestamp, '9999-12-31T23:59:59.999Z');
    const next = await get(t, `/events?customerId=cust_ends&limit=1&cursor=${events.headers['x-next-cursor']}`);
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal(next.body[0].timestamp, '1970-01-01T00:00:00.000Z');
    assert.equal(next.body[0].week, '197001');

    assert.equal((await call(t, 'POST', '/aggregations/trigger', {})).status, 202);
    const docs: any[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 20; i++) {
      const r = await get(t, `/aggregations?customerId=cust_ends&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      docs.push(...r.body);
      cursor = r.headers['x-next-cursor'] as string | undefined;
      if (!cursor) break;
    }
    const starts = docs.map((d) => `${d.period} ${d.periodStart} ${d.final}`).sort();
    assert.deepEqual(starts, [
      'daily 1970-01-01T00:00:00.000Z true',
      'daily 9999-12-31T00:00:00.000Z false',
      'weekly 1969-12-29T00:00:00.000Z true',
      'weekly 9999-12-27T00:00:00.000Z false',
      'yearly 1970-01-01T00:00:00.000Z true',
      'yearly 9999-01-01T00:00:00.000Z false',
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Cursors
// ---------------------------------------------------------------------------------------------

/** Pieces ids are made of: multi-byte and astral characters, JSON escapes, URL-special characters. */
const PIECES = [
  'a',
  'Z',
  '9',
  '-',
  '_',
  'é',
  'ß',
  '€',
  '中',
  '😀',
  '𝄞',
  '\u0001',
  '\u001f',
  '\u007f',
  '"',
  '\\',
  '/',
  '?',
  '&',
  '%',
  '+',
  ' ',
  '\u2028',
  '\uFFFD',
  '\uFEFF',
];
const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Cuts s to at most `max` UTF-16 units without splitting a surrogate pair. */
function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const end = /[\uD800-\uDBFF]/.test(s[max - 1]!) ? max - 1 : max;
  return s.slice(0, end);
}

const idBody = fc.oneof(
  fc
    .array(fc.oneof(fc.constantFrom(...PIECES), fc.string({ unit: 'binary', maxLength: 4 })), { minLength: 1, maxLength: 300 })
    .map((a) => a.join('')),
  // Repeated until the id is as long as allowed.
  fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 3 }).map((a) => a.join('').repeat(256)),
);

/** An id of 1 to 256 UTF-16 units starting with `prefix`, with no NUL and no lone surrogate. */
const idArb = (prefix: string) => idBody.map((b) => cut(prefix + b.replace(/\u0000/g, 'x').replace(LONE, 'x'), 256));

/** The longest value of each cursor field: a 256-unit id whose every unit is a 6-byte JSON escape. */
const WORST: Record<CursorField, Array<string | number>> = {
  instant: [-8.64e15, 8.64e15, -259_200_000, MAX_INSTANT],
  seq: [0, Number.MAX_SAFE_INTEGER],
  id: ['\u0001'.repeat(256), '😀'.repeat(128), '€'.repeat(256), '"'.repeat(256), 'x'],
};

describe('cursors', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(async () => t?.close());

  it('every cursor shape round-trips within MAX_CURSOR_LENGTH, at its largest values too', () => {
    const shapes: CursorField[][] = [['instant', 'seq'], ['instant', 'id'], ['id']];
    for (const shape of shapes) {
      const combos = shape.reduce<Array<Array<string | number>>>((acc, f) => acc.flatMap((a) => WORST[f].map((v) => [...a, v])), [[]]);
      for (const parts of combos) {
        const c = encodeCursor(parts);
        assert.ok(c.length <= MAX_CURSOR_LENGTH, `${shape} cursor of ${c.length} characters`);
        assert.deepEqual(decodeCursor(c, shape), parts);
      }
    }
    fc.assert(
      fc.property(idArb('p'), fc.integer({ min: -8.64e15, max: 8.64e15 }), (id, ts) => {
        const c = encodeCursor([ts, id]);
        assert.ok(c.length <= MAX_CURSOR_LENGTH);
        assert.deepEqual(decodeCursor(c, ['instant', 'id']), [ts, id]);
      }),
      { numRuns: 500, seed: 1010 },
    );
    assert.equal(MAX_CURSOR_ID_LENGTH, 256);
  });

  it('GET /customers pages through customer ids of up to 256 UTF-16 units of any characters (property)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(idArb('p'), { minLength: 1, maxLength: 5 }), async (raw) => {
        const prefix = `r${run++}:`;
        const ids = [...new Set(raw.map((id) => cut(prefix + id, 256)))];
        const r = await call(
          t,
          'POST',
          '/usagebatch',
          ids.map((customerId) => ({ eventType: 'api.calls', customerId, value: 1 })),
        );
        assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 300));
        const seen: string[] = [];
        let cursor: string | undefined;
        for (let page = 0; page <= ids.length; page++) {
          const q = `search=${encodeURIComponent(prefix)}&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
          const p = await get(t, `/customers?${q}`);
          assert.equal(p.status, 200, `cursor of ${cursor?.length} characters refused: ${JSON.stringify(p.body)}`);
          seen.push(...p.body.map((c: { customerId: string }) => c.customerId));
          cursor = p.headers['x-next-cursor'] as string | undefined;
          if (cursor === undefined) break;
        }
        assert.deepEqual([...seen].sort(), [...ids].sort());
      }),
      { numRuns: 40, seed: 2020 },
    );
  });

  it('the longest customer ids page too: 256 escapes, 128 astral characters, 256 three-byte characters', async () => {
    const ids = ['\u0001', '€', '"', '\\', '\u2028', '\u007f'].map((c) => `w${c.repeat(255)}`);
    ids.push(`w${'😀'.repeat(127)}€`, `w${'𝄞'.repeat(127)}`);
    for (const id of ids) assert.ok(id.length >= 255 && id.length <= 256);
    const r = await call(
      t,
      'POST',
      '/usagebatch',
      ids.map((customerId) => ({ eventType: 'api.calls', customerId, value: 1 })),
    );
    assert.equal(r.status, 201);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page <= ids.length; page++) {
      const p = await get(t, `/customers?search=w&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(p.status, 200, JSON.stringify(p.body));
      seen.push(...p.body.map((c: { customerId: string }) => c.customerId));
      cursor = p.headers['x-next-cursor'] as string | undefined;
      if (cursor === undefined) break;
    }
    assert.deepEqual([...seen].sort(), [...ids].sort());
  });

  it('crafted cursors are a 400 on every listing, and valid extreme positions are answered', async () => {
    const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
    const common = [
      '[]',
      '{}',
      'null',
      '"x"',
      '1',
      '[NaN,1]',
      '[Infinity,1]',
      '[1e300,1]',
      '[1,1,1]',
      '[null,1]',
      '[true,1]',
      '[[1],1]',
      '[{"a":1},1]',
      '[1,1,{}]',
      ' [1,1]',
      '[1.0,1]',
      '[1e3,1]',
      '[9007199254740993,1]',
      '[8640000000000001,1]',
      '[1.5,1]',
      '["1",1]',
    ].map(b64);
    const bytes = [
      b64(Buffer.from([0x5b, 0x22, 0xff, 0xfe, 0x22, 0x5d])),
      b64(Buffer.from([0x5b, 0x22, 0xc0, 0xaf, 0x22, 0x5d])),
      b64(Buffer.from([0x5b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x5d])),
      b64(Buffer.from([0xef, 0xbb, 0xbf, 0x5b, 0x31, 0x2c, 0x31, 0x5d])),
    ];
    const encodings = [
      '%%%',
      `${b64('[1,1]')}=`,
      `${b64('[1,1]')}==`,
      `${b64('[1,1]').replace(/_/g, '/').replace(/-/g, '+')}+`,
      ' ',
      '!',
      'W1',
    ];
    const ids = [
      '["a\\u0000b"]',
      '["\\ud800"]',
      '["\\udc00x"]',
      '[""]',
      `["${'a'.repeat(257)}"]`,
      '[1]',
      '[{"a":1}]',
      '["a","b"]',
      '["\\u0061"]',
    ].map(b64);
    const routes: Array<{ path: string; bad: string[]; good: string[] }> = [
      {
        path: '/events',
        bad: [...common, ...bytes, ...encodings, ...['[1,-1]', '[1,"1"]', '[1,1e20]', '[1,9007199254740992]'].map(b64)],
        good: [encodeCursor([8.64e15, Number.MAX_SAFE_INTEGER]), encodeCursor([-8.64e15, 0]), encodeCursor([0, 1])],
      },
      ...['/aggregations', '/webhooks/deliveries'].map((path) => ({
        path,
        bad: [
          ...common,
          ...bytes,
          ...encodings,
          ...['[1,1]', '[1,""]', '[1,"a\\u0000"]', '[1,"\\ud800"]', `[1,"${'a'.repeat(257)}"]`, '["a","b"]'].map(b64),
        ],
        good: [encodeCursor([8.64e15, 'z'.repeat(256)]), encodeCursor([-8.64e15, 'agg_0']), encodeCursor([0, '\u0001€😀'])],
      })),
      {
        path: '/customers',
        bad: [...common, ...bytes, ...encodings, ...ids],
        good: [encodeCursor(['\uFFFF'.repeat(256)]), encodeCursor(['\u0001']), encodeCursor(['😀'])],
      },
    ];
    for (const { path, bad, good } of routes) {
      for (const c of bad) {
        const r = await get(t, `${path}?cursor=${encodeURIComponent(c)}`);
        assert.equal(
          r.status,
          400,
          `${path} cursor ${JSON.stringify(c)} (${Buffer.from(c, 'base64url').toString('latin1')}): ${r.status} ${JSON.stringify(r.body)}`,
        );
        assert.ok(['invalid_query', 'invalid_request'].includes(r.body.code), JSON.stringify(r.body));
      }
      for (const c of good) {
        const r = await get(t, `${path}?cursor=${encodeURIComponent(c)}`);
        assert.equal(r.status, 200, `${path} cursor ${JSON.stringify(c)}: ${r.status} ${JSON.stringify(r.body)}`);
      }
    }
    const long = await get(t, `/customers?cursor=${'A'.repeat(MAX_CURSOR_LENGTH + 1)}`);
    assert.equal(long.status, 400);
  });
});
