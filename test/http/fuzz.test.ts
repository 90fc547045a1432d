// A fuzz test over HTTP, on both stores: random and adversarial bodies, headers, paths and query
// strings go to every route of the OpenAPI document. No answer may be a 5xx, every 4xx is JSON with an
// error message, and afterwards an oracle recomputation of usage from the stored events still matches
// the service, before and after a restart. METERHOOK_FUZZ_RUNS sets the number of requests
// (`npm run fuzz` runs a long version).
// store-contract: sqlite, postgres
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isDropInRoute } from '../helpers/route-samples.js';
import { computeValues } from '../../src/domain/aggregation.js';
import { periodInterval } from '../../src/domain/periods.js';
import { buildTestApp, reopenTestStore, REFERENCE_CONFIG, TEST_KEY } from '../helpers/app.js';
import { docKey, oracleAggregations, type OracleEvent } from '../helpers/oracle.js';

const RUNS = Number(process.env.METERHOOK_FUZZ_RUNS ?? 400);
const SEED = process.env.METERHOOK_FUZZ_SEED === undefined ? undefined : Number(process.env.METERHOOK_FUZZ_SEED);
const NOW = Date.parse('2026-01-12T10:30:00Z');
const TYPES = Object.keys(REFERENCE_CONFIG.events);
const OPS = Object.fromEntries(Object.entries(REFERENCE_CONFIG.events).map(([k, v]) => [k, v.op])) as Record<string, 'sum'>;

/** Any UTF-16 code unit, lone surrogates included. */
const unitString = (maxLength = 40) => fc.string({ unit: fc.nat({ max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength });
const NASTY = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  'k\udc00x',
  '\udbff\udfff',
  'a'.repeat(3000),
  '../..',
  '%',
  '%ZZ',
  '%ud800',
  '%F0%9F',
  '\u202e',
  '𝔘𝔫𝔦',
  '0',
  '-1',
  '1e308',
  '-1e308',
  'NaN',
  'Infinity',
  'null',
  'true',
  '[]',
  '{}',
  '__proto__',
  'constructor',
  '🦄'.repeat(200),
];
const nastyString = fc.oneof(unitString(), fc.constantFrom(...NASTY), fc.string({ maxLength: 300 }));
const INSTANTS = [
  '+275760-09-13T00:00:00Z',
  '-271821-04-20T00:00:00Z',
  '+275760-09-13T00:00:00.001Z',
  '9999-12-31T23:59:59.999Z',
  '0000-01-01T00:00:00Z',
  '1970-01-01',
  '2026-13-45',
  '2026-02-30',
  '8640000000000000',
  '-8640000000000000',
  '8640000000000001',
  '1e300',
  '-1e300',
  '2026-01-12T10:00:00+14:00',
  '2026-01-12T10:00:00-12:00',
  '2026-01-12',
  '2025-12-31T23:59:60Z',
  '99999999999999999999',
];
const MAX_DATE = 8_640_000_000_000_000;
/** Epoch milliseconds near the ends of the Date range, where period arithmetic overflows. */
const edgeEpoch = fc
  .oneof(
    fc.integer({ min: MAX_DATE - 400 * 86_400_000, max: MAX_DATE + 10 }),
    fc.integer({ min: -MAX_DATE - 10, max: -MAX_DATE + 400 * 86_400_000 }),
  )
  .map((t) => (t % 3 === 0 ? new Date(Math.max(-MAX_DATE, Math.min(MAX_DATE, t))).toISOString() : String(t)));
const instant = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...INSTANTS) },
  { weight: 2, arbitrary: edgeEpoch },
  fc.integer({ min: NOW - 40 * 86_400_000, max: NOW + 600_000 }).map((t) => new Date(t).toISOString()),
  fc.integer().map(String),
  nastyString,
);
const base64url = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
const cursor = fc.oneof(
  fc.jsonValue().map((v) => base64url(JSON.stringify(v))),
  fc
    .tuple(fc.oneof(fc.double(), fc.string(), fc.integer()), fc.oneof(fc.double(), fc.string(), fc.integer()))
    .map(([a, b]) => base64url(JSON.stringify([a, b]))),
  nastyString,
);
const NUMBERS = [
  0,
  -0,
  1e308,
  -1e308,
  5e-324,
  1e15,
  999_999_999_999_999,
  0.1,
  0.2,
  0.30000000000000004,
  2 ** 53 + 2,
  1e-12,
  1e-13,
  123.456,
];
const number = fc.oneof(fc.constantFrom(...NUMBERS), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer());
const validValue = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(0.1, 0.2, 0.5, 2.25, 1e-9, 99.99));
/** Values for a query parameter, by its name: instants for times, cursors for cursors, numbers for limits. */
function paramValue(name: string): fc.Arbitrary<string> {
  if (['from', 'to', 'at', 'since'].includes(name))
    return fc.oneof({ weight: 3, arbitrary: instant }, { weight: 1, arbitrary: queryValue });
  if (name === 'cursor') return fc.oneof({ weight: 3, arbitrary: cursor }, { weight: 1, arbitrary: queryValue });
  if (name === 'limit')
    return fc.oneof(number.map(String), fc.constantFrom('0', '-1', '1', '1000', '1001', '1e3', '99999999999999999999'), queryValue);
  return queryValue;
}
const queryValue = fc.oneof(
  instant,
  cursor,
  number.map(String),
  nastyString,
  fc.constantFrom('true', 'false', 'hourly', 'monthly', 'day', 'api.calls', 'c1'),
);

const customerId = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('c1', 'c2', 'c3', 'c-é', 'c 5') },
  { weight: 1, arbitrary: nastyString },
);
const sometimes = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 12, arbitrary: a }, { weight: 1, arbitrary: fc.constant(undefined) });
const eventish = fc.record({
  customerId: sometimes(customerId),
  eventType: sometimes(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...TYPES) }, { weight: 1, arbitrary: nastyString })),
  value: sometimes(
    fc.oneof(
      { weight: 8, arbitrary: validValue },
      { weight: 2, arbitrary: number },
      { weight: 1, arbitrary: fc.oneof(nastyString, fc.jsonValue()) },
    ),
  ),
  metadata: fc.oneof(
    fc.constant(undefined),
    fc.constant({}),
    fc.dictionary(nastyString, fc.jsonValue({ maxDepth: 7 }), { maxKeys: 5 }),
    fc.jsonValue(),
  ),
  timestamp: fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 5, arbitrary: fc.integer({ min: NOW - 30 * 86_400_000, max: NOW }).map((t) => new Date(t).toISOString()) },
    { weight: 1, arbitrary: fc.oneof(instant, number) },
  ),
  id: fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.constantFrom('id-1', 'id-2', 'id-3', 'k\ud800') },
    { weight: 1, arbitrary: nastyString },
  ),
});

interface Route {
  method: string;
  path: string;
  query: string[];
}

/** What a body looks like for a route: events for the capture routes, anything for the others. */
function bodyFor(route: Route): fc.Arbitrary<unknown> {
  const any = fc.oneof(fc.jsonValue(), fc.constant(undefined));
  if (route.path === '/usagebatch')
    return fc.oneof(
      { weight: 8, arbitrary: fc.array(eventish, { minLength: 1, maxLength: 30 }) },
      { weight: 1, arbitrary: eventish },
      { weight: 1, arbitrary: any },
    );
  if (route.path.startsWith('/usage/'))
    return fc.oneof(
      { weight: 8, arbitrary: eventish },
      { weight: 1, arbitrary: fc.array(eventish, { maxLength: 3 }) },
      { weight: 1, arbitrary: any },
    );
  return fc.oneof({ weight: 3, arbitrary: any }, { weight: 1, arbitrary: eventish });
}

/** A path parameter for a route: mostly meaningful values (a configured type for capture), sometimes hostile ones. */
function pathParamFor(route: Route): fc.Arbitrary<string> {
  const meaningful = route.path.startsWith('/usage/') ? fc.constantFrom(...TYPES) : fc.constantFrom('c1', 'c2', 'dlv_x', 'ep1', ...TYPES);
  return fc.oneof({ weight: 5, arbitrary: meaningful }, { weight: 1, arbitrary: nastyString });
}

function requestFor(routes: Route[]) {
  const capture = routes.filter((r) => r.method === 'POST' && r.path.startsWith('/usage'));
  // Capture routes take a good share of the requests: they are where input is stored.
  const route = fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...capture) }, { weight: 3, arbitrary: fc.constantFrom(...routes) });
  return route.chain((route) =>
    fc.record({
      route: fc.constant(route),
      // Each declared parameter, often present, with values shaped for what it means.
      params: fc.record(
        Object.fromEntries(
          route.query.map((name) => [
            name,
            fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 3, arbitrary: paramValue(name) }),
          ]),
        ),
        { requiredKeys: [] },
      ),
      pathParams: fc.array(pathParamFor(route), { minLength: 4, maxLength: 4 }),
      extraQuery: fc.array(fc.tuple(fc.oneof(nastyString, fc.constantFrom('metadata.x', 'limit', 'cursor', 'from')), queryValue), {
        maxLength: 2,
      }),
      body: bodyFor(route),
      raw: fc.oneof(
        { weight: 15, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.oneof(nastyString, fc.constantFrom('{', '[1,', '{"a":1}}', '\u0000', '{"value": 1e400}')) },
      ),
      contentType: fc.oneof(
        { weight: 12, arbitrary: fc.constant('application/json') },
        {
          weight: 1,
          arbitrary: fc.constantFrom('text/plain', 'application/json; charset=utf-16', 'application/x-www-form-urlencoded', undefined),
        },
      ),
      apiKey: fc.oneof(
        { weight: 19, arbitrary: fc.constant(TEST_KEY) },
        {
          weight: 1,
          arbitrary: fc.oneof(
            nastyString.map((s) => s.replace(/[^\x20-\x7e]/g, '')),
            fc.constant(undefined),
          ),
        },
      ),
      idempotencyKey: fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.string({ maxLength: 200 }) }),
    }),
  );
}

const enc = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return s; // a lone surrogate: sent raw, as a hostile client would
  }
};

describe('fuzz over every route of the OpenAPI document', () => {
  it(`${RUNS} random and adversarial requests: no 5xx, JSON 4xx, usage equals the oracle, restart is clean`, async () => {
    const t = await buildTestApp({ now: NOW });
    let closed = false;
    try {
      const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
        paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }> }>>;
      };
      const routes: Route[] = [];
      for (const [p, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
          routes.push({
            method: method.toUpperCase(),
            path: p,
            query: (op.parameters ?? []).filter((x) => x.in === 'query').map((x) => x.name),
          });
        }
      }
      assert.ok(routes.length >= 15, `routes in the OpenAPI document: ${routes.length}`);
      const seen = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(requestFor(routes), async (r) => {
          let i = 0;
          const route = r.route;
          const url = route.path.replace(/\{[^}]+\}/g, () => enc(r.pathParams[i++ % 4]!));
          const qs = new URLSearchParams();
          for (const [n, v] of Object.entries(r.params)) if (v !== undefined) qs.append(n, v);
          for (const [k, v] of r.extraQuery) qs.append(k, v);
          const headers: Record<string, string> = {};
          if (r.contentType) headers['content-type'] = r.contentType;
          if (r.apiKey !== undefined) headers['x-apikey'] = r.apiKey;
          if (r.idempotencyKey !== undefined) headers['idempotency-key'] = r.idempotencyKey.replace(/[^\x20-\x7e]/g, '');
          const payload = r.raw ?? (r.body === undefined ? undefined : JSON.stringify(r.body));
          const full = `${url}${qs.size > 0 ? `?${qs}` : ''}`;
          const res = await t.app.inject({
            method: route.method as 'GET',
            url: full,
            headers,
            ...(route.method === 'GET' || payload === undefined ? {} : { payload }),
          });
          const key = `${route.method} ${route.path} ${res.statusCode}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
          assert.ok(
            res.statusCode < 500,
            `${route.method} ${full} → ${res.statusCode} ${res.body.slice(0, 500)}\npayload: ${payload?.slice(0, 500)}`,
          );
          if (res.statusCode >= 400) {
            // The drop-in routes answer in their vendor's error shape (test/compat holds each SDK to it).
            const dropIn = isDropInRoute(`${route.method} ${route.path}`);
            assert.match(String(res.headers['content-type']), /application\/(problem\+)?json/, `${key}: ${res.body.slice(0, 200)}`);
            const body = res.json() as { error?: unknown };
            if (dropIn)
              assert.ok(typeof body === 'object' && body !== null && Object.keys(body).length > 0, `${key}: ${res.body.slice(0, 200)}`);
            else assert.equal(typeof body.error, 'string', `${key}: ${res.body.slice(0, 200)}`);
          }
        }),
        { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
      );
      if (process.env.METERHOOK_FUZZ_VERBOSE) console.log([...seen].sort());
      // The barrage reached the capture routes and stored something, or the oracle check proves little.
      const accepted = [...seen].filter(([k]) => /^POST \/usage.* 20[01]$/.test(k)).reduce((a, [, n]) => a + n, 0);
      assert.ok(accepted >= RUNS / 50, `accepted captures: ${accepted} of ${RUNS}`);

      // Oracle: usage recomputed from the stored events equals what the service reports.
      const stored: OracleEvent[] = [];
      let next: string | undefined;
      for (let page = 0; page < 10_000; page++) {
        const res = await t.app.inject({
          method: 'GET',
          url: `/events?limit=1000${next ? `&cursor=${encodeURIComponent(next)}` : ''}`,
          headers: t.headers,
        });
        assert.equal(res.statusCode, 200, res.body);
        for (const e of res.json() as Array<{ customerId: string; eventType: string; value: number; timestamp: string }>) {
          stored.push({ customerId: e.customerId, eventType: e.eventType, value: e.value, ts: Date.parse(e.timestamp) });
        }
        next = res.headers['x-next-cursor'] as string | undefined;
        if (!next) break;
      }
      assert.ok(stored.length > 0);
      // The listing is newest first, (ts, seq) descending: reversed, it is in arrival order within
      // each instant, which is how first and last break ties.
      const oracle = oracleAggregations(stored.reverse(), ['monthly'], OPS);
      for (const o of oracle.values()) {
        const res = await t.app.inject({
          method: 'GET',
          url: `/customers/${encodeURIComponent(o.customerId)}/usage?period=monthly&at=${o.periodStart}`,
          headers: t.headers,
        });
        assert.equal(res.statusCode, 200, res.body);
        const u = res.json() as { eventsDecimal: Record<string, string>; eventCounts: Record<string, number> };
        assert.deepEqual(u.eventsDecimal, o.eventsDecimal, `${o.customerId} ${o.periodKey}`);
        assert.deepEqual(u.eventCounts, o.eventCounts, `${o.customerId} ${o.periodKey}`);
      }

      // A clean restart on the same data gives the same numbers.
      await t.app.close();
      await t.dispatcher.stop();
      await t.ctx.committer.drain();
      await t.store.close();
      closed = true;
      const again = await reopenTestStore(t.store);
      try {
        for (const o of oracle.values()) {
          const iv = periodInterval('monthly', Date.parse(o.periodStart));
          const values = computeValues(await again.mergedRollups(o.customerId, iv.start, iv.end), t.config);
          assert.deepEqual(values?.eventsDecimal, o.eventsDecimal, `after restart: ${docKey(o.customerId, 'monthly', o.periodKey)}`);
        }
      } finally {
        await again.close();
      }
    } finally {
      if (closed) fs.rmSync(t.dir, { recursive: true, force: true });
      else await t.close();
    }
  });
});
