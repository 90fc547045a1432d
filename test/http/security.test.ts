// One suite run against every route in ENDPOINTS: API-key auth, the scope each route declares, garbage
// query strings, path params and bodies (4xx JSON with an `error` string, never 5xx), request ids, and no
// echo of the key. A final check proves the sweep covered every route, so a new route cannot escape it.
// store-contract: sqlite, postgres

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { DOC_PATHS } from '../../src/http/openapi.js';
import { ROUTE_SCOPES } from '../../src/domain/scopes.js';
import { ENDPOINTS } from '../../src/http/routes/meta.js';
import { buildTestApp, TEST_KEY, type TestApp } from '../helpers/app.js';
import {
  concrete,
  isDropInRoute,
  PARAM_SAMPLES,
  paramNames,
  SAMPLE_CONFIG,
  seedDelivery,
  split,
  validRequest,
} from '../helpers/route-samples.js';

const STRIPE_STREAM = 'POST /v2/billing/meter_event_stream';

const PUBLIC = new Set(['GET /healthz', 'GET /readyz']);
const ALL_ROUTES = Object.keys(ENDPOINTS);
// The drop-in vendor routes answer in their vendor's shapes: test/compat and the contracts cover them.
const ROUTES = ALL_ROUTES.filter((r) => !isDropInRoute(r));

type BodyPolicy =
  | 'ignored' // GET: bodies are not read
  | 'object' // must be a JSON object
  | 'array' // must be a JSON array
  | 'any-json'; // any JSON (or none) is accepted; non-JSON is not

/** What each route validates. Every route in ENDPOINTS must be here (checked below). */
const ROUTE_INPUTS: Record<string, { query: string[]; body: BodyPolicy }> = {
  'GET /': { query: [], body: 'ignored' },
  'GET /ping': { query: [], body: 'ignored' },
  'GET /healthz': { query: [], body: 'ignored' },
  'GET /readyz': { query: [], body: 'ignored' },
  'GET /config': { query: [], body: 'ignored' },
  'POST /usage/:eventType': { query: [], body: 'object' },
  'POST /usagebatch': { query: [], body: 'array' },
  'GET /events': { query: ['customerId', 'eventType', 'from', 'to', 'limit', 'cursor', 'metadata.*'], body: 'ignored' },
  'GET /aggregations': { query: ['customerId', 'period', 'periodKey', 'final', 'from', 'to', 'limit', 'cursor'], body: 'ignored' },
  'POST /aggregations/trigger': { query: [], body: 'any-json' },
  'GET /customers/:customerId/usage': { query: ['period', 'at'], body: 'ignored' },
  'GET /customers': { query: ['search', 'limit', 'cursor'], body: 'ignored' },
  'GET /customers/:customerId/usage/series': { query: ['eventType', 'bucket', 'from', 'to'], body: 'ignored' },
  'GET /stats': { query: [], body: 'ignored' },
  'GET /webhooks/deliveries': { query: ['status', 'endpointId', 'aggregationId', 'from', 'to', 'limit', 'cursor'], body: 'ignored' },
  'GET /webhooks/deliveries/:id': { query: [], body: 'ignored' },
  'POST /webhooks/deliveries/:id/retry': { query: [], body: 'any-json' },
  'POST /webhooks/recover': { query: [], body: 'object' },
  'GET /webhooks/endpoints': { query: [], body: 'ignored' },
  'POST /webhooks/endpoints/:endpointId/enable': { query: [], body: 'any-json' },
  'GET /metrics': { query: [], body: 'ignored' },
  'POST /keys': { query: [], body: 'object' },
  'GET /keys': { query: [], body: 'ignored' },
  'GET /keys/:keyId': { query: [], body: 'ignored' },
  'DELETE /keys/:keyId': { query: [], body: 'any-json' },
  'GET /session': { query: [], body: 'ignored' },
  'GET /audit': { query: ['action', 'keyId', 'from', 'to', 'limit', 'cursor'], body: 'ignored' },
};

/** Routes whose success answer is not JSON (their errors still are). */
const NON_JSON_SUCCESS = new Set(['GET /metrics']);

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');

/** Garbage query strings, each tagged with the parameter it abuses. */
const BAD_QUERIES: Array<[param: string, qs: string]> = [
  ['limit', 'limit=abc'],
  ['limit', 'limit=0'],
  ['limit', 'limit=-1'],
  ['limit', 'limit=1.5'],
  ['limit', 'limit='],
  ['from', 'from=notadate'],
  ['from', 'from=2026-02-30T00:00:00Z'],
  ['to', 'to=notadate'],
  ['to', 'to=2026-01-12T10:00:00'],
  ['cursor', 'cursor=%%%'],
  ['cursor', `cursor=${b64('["x","y","z"]')}`],
  ['cursor', `cursor=${b64('{"a":1}')}`],
  ['cursor', `cursor=${'A'.repeat(5000)}`],
  ['period', 'period=fortnightly'],
  ['period', 'period=Daily'],
  ['final', 'final=maybe'],
  ['at', 'at=notadate'],
  ['at', 'at=-5'],
  ['periodKey', 'periodKey=abc'],
  ['status', 'status=delivered'],
  ['endpointId', `endpointId=${'e'.repeat(100)}`],
  ['aggregationId', `aggregationId=${'a'.repeat(100)}`],
  ['customerId', 'customerId='],
  ['customerId', 'customerId=a&customerId=b'],
  ['customerId', `customerId=${'x'.repeat(300)}`],
  ['eventType', `eventType=${'x'.repeat(300)}`],
  ['bucket', 'bucket=week'],
  ['bucket', 'bucket=Hour'],
  ['search', `search=${'s'.repeat(300)}`],
  ['search', 'search=%00'],
  ['search', 'search=a&search=b'],
  ['metadata.*', 'metadata.=x'],
  ['metadata.*', `metadata.${'k'.repeat(129)}=x`],
  ['metadata.*', 'metadata.k=a&metadata.k=b'],
  ['metadata.*', 'metadata.k=%00'],
  ['metadata.*', 'metadata.k=%ED%A0%80'],
];

type BodyKind = 'malformed' | 'media' | 'huge' | 'deep' | 'empty' | 'wrong-shape';
interface BadBody {
  name: string;
  kind: BodyKind;
  contentType?: string;
  payload: string | Buffer;
}

const BAD_BODIES: BadBody[] = [
  { name: 'truncated JSON', kind: 'malformed', contentType: 'application/json', payload: '{"customerId": "x", ' },
  { name: 'JS object literal', kind: 'malformed', contentType: 'application/json', payload: '{customerId: x}' },
  { name: 'trailing garbage', kind: 'malformed', contentType: 'application/json', payload: '[1]]' },
  { name: 'invalid UTF-8', kind: 'malformed', contentType: 'application/json', payload: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) },
  { name: '100-level nested array', kind: 'deep', contentType: 'application/json', payload: `${'['.repeat(100)}${']'.repeat(100)}` },
  { name: '100-level nested object', kind: 'deep', contentType: 'application/json', payload: `${'{"a":'.repeat(100)}1${'}'.repeat(100)}` },
  { name: 'huge JSON string', kind: 'huge', contentType: 'application/json', payload: JSON.stringify('x'.repeat(200_000)) },
  {
    name: 'object with a huge customerId',
    kind: 'huge',
    contentType: 'application/json',
    payload: JSON.stringify({ customerId: 'x'.repeat(100_000), value: 1 }),
  },
  {
    name: 'array with a huge customerId',
    kind: 'huge',
    contentType: 'application/json',
    payload: JSON.stringify([{ eventType: 'api.calls', customerId: 'x'.repeat(100_000), value: 1 }]),
  },
  { name: 'text/plain', kind: 'media', contentType: 'text/plain', payload: '{"customerId":"cust_1","value":1}' },
  { name: 'form-encoded', kind: 'media', contentType: 'application/x-www-form-urlencoded', payload: 'customerId=cust_1&value=1' },
  { name: 'XML', kind: 'media', contentType: 'application/xml', payload: '<event customerId="cust_1" value="1"/>' },
  { name: 'multipart', kind: 'media', contentType: 'multipart/form-data; boundary=zz', payload: '--zz\r\n\r\nx\r\n--zz--' },
  { name: 'no content type', kind: 'media', payload: '{"customerId":"cust_1","value":1}' },
  { name: 'empty JSON body', kind: 'empty', contentType: 'application/json', payload: '' },
  { name: 'JSON scalar', kind: 'wrong-shape', contentType: 'application/json', payload: '12345' },
];

/** Whether `policy` must reject a body of `kind` (4xx) or accept it (2xx). */
function bodyRejected(policy: BodyPolicy, kind: BodyKind): boolean {
  switch (policy) {
    case 'ignored':
      return false;
    case 'object':
    case 'array':
      return true;
    case 'any-json':
      return kind === 'malformed' || kind === 'media' || kind === 'huge';
  }
}

interface Recorded {
  label: string;
  res: LightMyRequestResponse;
}

function isJson(res: LightMyRequestResponse): boolean {
  return /^application\/json/.test(String(res.headers['content-type']));
}

function errorOf(res: LightMyRequestResponse): unknown {
  try {
    return (res.json() as { error?: unknown }).error;
  } catch {
    return undefined;
  }
}

/** Parses `printRoutes({ commonPrefix: false })` into "METHOD /path" keys (HEAD routes left out). */
function registeredRoutes(tree: string): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([\s│]*)(?:└── |├── )(.+?)(?: \(([^)]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    const path = stack.join('');
    for (const method of (m[3] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      if (method !== 'HEAD') out.push(`${method} ${path}`);
    }
  }
  // Documentation (OpenAPI JSON and the docs UI) describes the API; it is not part of it.
  const isDoc = (path: string) => DOC_PATHS.some((d) => path === d || path === `${d}*` || path.startsWith(`${d}/`));
  // The dashboard's static files (the page asks for the key; its data calls are API routes) are not API routes either.
  const isDashboard = (path: string) => path === '/dashboard' || path.startsWith('/dashboard/');
  return out.filter((r) => !isDoc(r.split(' ')[1]!) && !isDashboard(r.split(' ')[1]!)).sort();
}

describe('security: every route', () => {
  let t: TestApp;
  const recorded: Recorded[] = [];
  const authChecked = new Set<string>();
  const swept = new Set<string>();

  const send = async (label: string, opts: InjectOptions): Promise<LightMyRequestResponse> => {
    const res = await t.app.inject(opts);
    recorded.push({ label, res });
    return res;
  };
  const keyHeaders = (): Record<string, string> => ({ 'x-apikey': TEST_KEY });

  before(async () => {
    t = await buildTestApp({ config: SAMPLE_CONFIG });
    await seedDelivery(t);
  });
  after(() => t.close());

  it('ENDPOINTS lists exactly the routes the app registers', () => {
    const listed = ROUTES.map((r) => {
      const { method, pattern } = split(r);
      assert.ok(t.app.hasRoute({ method, url: pattern }), `ENDPOINTS lists ${r} but the app has no such route`);
      return r;
    }).sort();
    assert.deepEqual(
      registeredRoutes(t.app.printRoutes({ commonPrefix: false })).filter((r) => !isDropInRoute(r)),
      listed,
    );
  });

  it('every operation in the OpenAPI document declares the scope it needs, and only the public ones need no key', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { 'x-meterhook-scope'?: string }>>;
    };
    const declared = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).map(([m, op]) => [`${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`, op['x-meterhook-scope']] as const),
    );
    assert.deepEqual(declared.map(([r]) => r).sort(), [...ALL_ROUTES].sort());
    const undeclared = declared.filter(([, scope]) => !(ROUTE_SCOPES as readonly unknown[]).includes(scope));
    assert.deepEqual(undeclared, [], 'operations that declare no scope');
    // Stripe's meter event stream checks its own credential (a session token or an ingest key): test/compat/stripe.
    assert.deepEqual(new Set(declared.filter(([, s]) => s === 'public').map(([r]) => r)), new Set([...PUBLIC, STRIPE_STREAM]));
  });

  it('the input table describes every route in ENDPOINTS and nothing else', () => {
    assert.deepEqual(Object.keys(ROUTE_INPUTS).sort(), [...ROUTES].sort());
    for (const r of ROUTES) {
      for (const p of paramNames(split(r).pattern)) assert.ok(p in PARAM_SAMPLES, `no sample for :${p} of ${r}`);
    }
    assert.ok(ROUTES.length >= 11, `ENDPOINTS looks truncated: ${ROUTES.join(', ')}`);
  });

  describe('API key', () => {
    for (const route of ROUTES) {
      if (PUBLIC.has(route)) {
        it(`${route}: no key needed → 200`, async () => {
          const res = await send(`${route} public`, validRequest(route, {}));
          assert.equal(res.statusCode, 200, res.body);
          assert.ok(isJson(res));
          const wrong = await send(`${route} public wrong key`, validRequest(route, { 'x-apikey': 'nope' }));
          assert.equal(wrong.statusCode, 200, wrong.body);
          authChecked.add(route);
        });
        continue;
      }

      it(`${route}: no key → 401 JSON with an error string`, async () => {
        for (const headers of <Array<Record<string, string>>>[
          {},
          { 'x-apikey': '' },
          { authorization: '' },
          { authorization: 'Bearer' },
          { authorization: 'Bearer ' },
        ]) {
          const res = await send(`${route} no key ${JSON.stringify(headers)}`, validRequest(route, headers));
          assert.equal(res.statusCode, 401, `${JSON.stringify(headers)}: ${res.body}`);
          assert.ok(isJson(res), String(res.headers['content-type']));
          assert.equal(typeof errorOf(res), 'string');
        }
      });

      it(`${route}: a wrong key → 401`, async () => {
        for (const headers of <Array<Record<string, string>>>[
          { 'x-apikey': 'mh_wrong_key' },
          { 'x-apikey': `${TEST_KEY}x` },
          { 'x-apikey': TEST_KEY.slice(0, -1) },
          { 'x-apikey': TEST_KEY.toUpperCase() },
          { authorization: 'Bearer mh_wrong_key' },
        ]) {
          const res = await send(`${route} wrong key`, validRequest(route, headers));
          assert.equal(res.statusCode, 401, `${JSON.stringify(headers)}: ${res.body}`);
          assert.ok(isJson(res));
          assert.equal(typeof errorOf(res), 'string');
        }
      });

      it(`${route}: the right key via x-apikey or Authorization: Bearer reaches the handler`, async () => {
        for (const headers of <Array<Record<string, string>>>[
          { 'x-apikey': TEST_KEY },
          { authorization: `Bearer ${TEST_KEY}` },
          { authorization: `bearer ${TEST_KEY}` },
        ]) {
          const res = await send(`${route} right key`, validRequest(route, headers));
          assert.notEqual(res.statusCode, 401, res.body);
          assert.ok(
            res.statusCode >= 200 && res.statusCode < 300,
            `${JSON.stringify(Object.keys(headers))}: ${res.statusCode} ${res.body}`,
          );
        }
      });

      it(`${route}: Authorization: Basic … → 401`, async () => {
        for (const auth of [
          `Basic ${Buffer.from(`user:${TEST_KEY}`).toString('base64')}`,
          `Basic ${TEST_KEY}`,
          `Token ${TEST_KEY}`,
          TEST_KEY,
        ]) {
          const res = await send(`${route} basic`, validRequest(route, { authorization: auth }));
          assert.equal(res.statusCode, 401, `${auth.split(' ')[0]}: ${res.body}`);
          assert.ok(isJson(res));
          assert.equal(typeof errorOf(res), 'string');
        }
        authChecked.add(route);
      });
    }
  });

  describe('bad inputs: 4xx JSON with an error string, never 5xx', () => {
    for (const route of ROUTES) {
      it(`${route}`, async () => {
        const { method, pattern } = split(route);
        const spec = ROUTE_INPUTS[route];
        assert.ok(spec, `no input spec for ${route}`);
        const cases: Array<{ label: string; res: LightMyRequestResponse; reject: boolean }> = [];

        for (const [param, qs] of BAD_QUERIES) {
          const label = `?${qs.slice(0, 60)}`;
          cases.push({
            label,
            res: await send(`${route} ${label}`, validRequest(route, keyHeaders(), qs)),
            reject: spec.query.includes(param),
          });
        }

        for (const b of BAD_BODIES) {
          const headers: Record<string, string> = { ...keyHeaders(), ...(b.contentType ? { 'content-type': b.contentType } : {}) };
          const opts: InjectOptions = { method, url: concrete(pattern), headers, payload: b.payload };
          cases.push({
            label: `body: ${b.name}`,
            res: await send(`${route} body ${b.name}`, opts),
            reject: bodyRejected(spec.body, b.kind),
          });
        }

        for (const name of paramNames(pattern)) {
          for (const bad of ['x'.repeat(1000), '%E0%A4%A', '%00', '..%2F..%2Fetc%2Fpasswd', 'constructor']) {
            // A path-like string is a legal (if odd) customer id; it must not break anything. NUL is refused in
            // every identifier (PostgreSQL text cannot hold it). Event types, deliveries and endpoints are
            // and keys are looked up, so an unknown value is a 4xx (400 or 404).
            const lookedUp = name === 'eventType' || name === 'id' || name === 'endpointId' || name === 'keyId';
            const reject = lookedUp || bad.length >= 1000 || bad === '%E0%A4%A' || bad === '%00';
            const label = `:${name}=${bad.slice(0, 20)}`;
            const opts = { ...validRequest(route, keyHeaders()), url: concrete(pattern, { [name]: bad }) };
            cases.push({ label, res: await send(`${route} ${label}`, opts), reject });
          }
        }

        const problems: string[] = [];
        for (const { label, res, reject } of cases) {
          const s = res.statusCode;
          if (s >= 500) problems.push(`${label}: ${s} ${res.body.slice(0, 200)}`);
          else if (!isJson(res) && !(s < 300 && NON_JSON_SUCCESS.has(route)))
            problems.push(`${label}: content-type ${String(res.headers['content-type'])}`);
          else if (reject && !(s >= 400 && s < 500)) problems.push(`${label}: expected 4xx, got ${s}`);
          else if (!reject && !(s >= 200 && s < 300))
            problems.push(`${label}: expected 2xx (input is ignored), got ${s} ${res.body.slice(0, 200)}`);
          else if (s >= 400 && typeof errorOf(res) !== 'string')
            problems.push(`${label}: ${s} without an error string: ${res.body.slice(0, 200)}`);
        }
        assert.deepEqual(problems, []);
        assert.ok(cases.some((c) => c.reject) || (spec.query.length === 0 && spec.body === 'ignored'), `${route} rejected nothing`);
        swept.add(route);
      });
    }
  });

  describe('unknown routes', () => {
    it('with a key → 404 JSON with an error string', async () => {
      for (const [method, url] of [
        ['GET', '/nope'],
        ['POST', '/usage'],
        ['DELETE', '/events'],
        ['GET', '/usage/api.calls'],
        ['PUT', '/config'],
        ['GET', '/events/extra/segments'],
      ] as const) {
        const res = await send(`unknown ${method} ${url}`, { method, url, headers: keyHeaders() });
        assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`);
        assert.ok(isJson(res));
        assert.equal(typeof errorOf(res), 'string');
      }
    });

    it('without a key → 401, so route existence is not revealed', async () => {
      for (const [method, url] of [
        ['GET', '/nope'],
        ['POST', '/usage'],
        ['DELETE', '/events'],
      ] as const) {
        const res = await send(`unknown no key ${method} ${url}`, { method, url });
        assert.equal(res.statusCode, 401, `${method} ${url}: ${res.body}`);
        assert.ok(isJson(res));
        assert.equal(typeof errorOf(res), 'string');
        const wrong = await send(`unknown wrong key ${method} ${url}`, { method, url, headers: { 'x-apikey': 'wrong' } });
        assert.equal(wrong.statusCode, 401, wrong.body);
      }
    });
  });

  describe('across every response above', () => {
    it('the sweeps covered every route in ENDPOINTS', () => {
      assert.deepEqual([...authChecked].sort(), [...ROUTES].sort(), 'API-key checks');
      assert.deepEqual([...swept].sort(), [...ROUTES].sort(), 'bad-input sweep');
    });

    it('every response carries an x-request-id header', () => {
      assert.ok(recorded.length > 500, `only ${recorded.length} responses recorded`);
      const missing = recorded.filter(({ res }) => typeof res.headers['x-request-id'] !== 'string' || res.headers['x-request-id'] === '');
      assert.deepEqual(
        missing.map(({ label, res }) => `${label} → ${res.statusCode}`),
        [],
      );
    });

    it('request ids are unique per response', () => {
      const ids = recorded.map(({ res }) => res.headers['x-request-id']).filter((x) => typeof x === 'string');
      assert.equal(new Set(ids).size, ids.length);
    });

    it('no response contains the API key', () => {
      assert.ok(recorded.length > 500);
      const leaks = recorded.filter(({ res }) => res.body.includes(TEST_KEY) || JSON.stringify(res.headers).includes(TEST_KEY));
      assert.deepEqual(
        leaks.map(({ label }) => label),
        [],
      );
    });
  });
});
