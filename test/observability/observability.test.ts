// OpenAPI, Prometheus metrics and logs, on the in-process app against a real store.
// store-contract: sqlite, postgres

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { ENDPOINTS } from '../../src/http/routes/meta.js';
import { createLogger } from '../../src/observability/logger.js';
import { buildTestApp, REFERENCE_CONFIG, TEST_KEY, TEST_STORE, type TestApp } from '../helpers/app.js';

type OpenApiDoc = {
  openapi: string;
  paths: Record<
    string,
    Record<string, { parameters?: Array<{ name: string; in: string }>; requestBody?: { content: Record<string, { schema: unknown }> } }>
  >;
};

function metricValue(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  assert.ok(line, `metric ${name}${labels} missing`);
  return Number(line.split(' ').pop());
}

describe('OpenAPI document and docs', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(() => t.close());

  it('lists every route in ENDPOINTS, with its query, path and body schemas, and needs no key', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json() as OpenApiDoc;
    assert.match(doc.openapi, /^3\./);
    for (const route of Object.keys(ENDPOINTS)) {
      const [method, path] = route.split(' ') as [string, string];
      const oaPath = path.replace(/:(\w+)/g, '{$1}');
      const op = doc.paths[oaPath]?.[method.toLowerCase()];
      assert.ok(op, `${route} is missing from the OpenAPI document`);
      for (const name of [...path.matchAll(/:(\w+)/g)].map((m) => m[1])) {
        assert.ok(
          op.parameters?.some((p) => p.in === 'path' && p.name === name),
          `${route}: path parameter ${name}`,
        );
      }
    }
    const events = doc.paths['/events']!.get!;
    assert.deepEqual(
      events
        .parameters!.filter((p) => p.in === 'query')
        .map((p) => p.name)
        .sort(),
      ['cursor', 'customerId', 'eventType', 'from', 'limit', 'to'],
    );
    for (const [path, method] of [
      ['/usage/{eventType}', 'post'],
      ['/usagebatch', 'post'],
      ['/webhooks/recover', 'post'],
    ] as const) {
      assert.ok(doc.paths[path]![method]!.requestBody?.content['application/json']?.schema, `${method} ${path} documents its body`);
    }
    assert.ok(
      !('/openapi.json' in doc.paths) && !Object.keys(doc.paths).some((p) => p.startsWith('/docs')),
      'documentation routes are hidden',
    );
  });

  it('serves interactive docs from this process, with no CDN', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/docs/' });
    const html = page.statusCode === 302 ? (await t.app.inject({ method: 'GET', url: page.headers.location as string })).body : page.body;
    assert.match(html, /swagger/i);
    assert.doesNotMatch(
      html,
      /https?:\/\/(?!localhost|127\.0\.0\.1)[a-z0-9.-]+\.[a-z]{2,}\/[^"']*\.(js|css)/i,
      'no external scripts or styles',
    );
    const bundle = await t.app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' });
    assert.equal(bundle.statusCode, 200);
    assert.ok(bundle.body.length > 100_000);
  });
});

describe('Prometheus metrics', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ now: '2026-01-12T10:30:00Z', config: { ...REFERENCE_CONFIG, periods: ['hourly'] } });
  });
  after(() => t.close());

  it('needs an API key', async () => {
    assert.equal((await t.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401);
  });

  it('counts ingested, duplicate and rejected events, batch sizes, latency and finalizations', async () => {
    const scrape = async () => {
      const res = await t.app.inject({ method: 'GET', url: '/metrics', headers: { 'x-apikey': TEST_KEY } });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/plain/);
      return res.body;
    };
    const before = await scrape();
    assert.equal(metricValue(before, 'meterhook_events_ingested_total'), 0);
    assert.ok(before.includes('process_cpu_user_seconds_total'), 'process defaults are exported');

    const batch = [
      { eventType: 'api.calls', customerId: 'm1', value: 1, id: 'a', timestamp: '2026-01-12T08:10:00Z' },
      { eventType: 'api.calls', customerId: 'm1', value: 2, id: 'b', timestamp: '2026-01-12T08:20:00Z' },
    ];
    assert.equal((await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: batch })).statusCode, 201);
    assert.equal((await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: batch })).statusCode, 200);
    const bad = [
      { eventType: 'api.calls', customerId: 'm1' },
      { eventType: 'nope', customerId: 'm1', value: 1 },
      { eventType: 'api.calls', customerId: 'm1', value: 1 },
    ];
    assert.equal((await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: bad })).statusCode, 422);
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/usage/nope', headers: t.headers, payload: { customerId: 'm1', value: 1 } })).statusCode,
      400,
    );

    const mid = await scrape();
    assert.equal(metricValue(mid, 'meterhook_events_ingested_total'), 2);
    assert.equal(metricValue(mid, 'meterhook_events_duplicate_total'), 2);
    assert.equal(metricValue(mid, 'meterhook_events_rejected_total', '{reason="batch_validation_failed"}'), 3);
    assert.equal(metricValue(mid, 'meterhook_events_rejected_total', '{reason="invalid_event_type"}'), 1);
    assert.equal(metricValue(mid, 'meterhook_ingest_batch_size_count'), 2);
    assert.equal(metricValue(mid, 'meterhook_ingest_commit_seconds_count'), 2);
    // Both stores report what they derive after the commit; background work may already have done it.
    for (const stage of TEST_STORE === 'sqlite' ? ['derived', 'listing_index'] : ['derived']) {
      const n = metricValue(mid, 'meterhook_store_deferred_events', `{stage="${stage}"}`);
      assert.ok(Number.isInteger(n) && n >= 0 && n <= 2, `${stage}: ${n}`);
    }
    if (TEST_STORE === 'postgres') {
      // The derive queue is shared by every process; its age is by the database's clock.
      const age = metricValue(mid, 'meterhook_store_deferred_age_seconds');
      assert.ok(Number.isFinite(age) && age >= 0 && age < 60, `age ${age}`);
    } else {
      assert.ok(!mid.includes('meterhook_store_deferred_age_seconds'), 'one process: no shared queue to age');
    }
    // 08:00–09:00 is due since 09:05 and not closed: lag is 10:30 − 09:05 = 85 minutes.
    assert.equal(metricValue(mid, 'meterhook_aggregation_lag_seconds'), 85 * 60);

    await closeDuePeriods(t.ctx);
    const afterClose = await scrape();
    assert.equal(metricValue(afterClose, 'meterhook_aggregations_finalized_total', '{period="hourly"}'), 1);
    assert.equal(metricValue(afterClose, 'meterhook_aggregation_lag_seconds'), 0);
    assert.equal(metricValue(afterClose, 'meterhook_webhook_oldest_undelivered_seconds'), 0);
    assert.equal(metricValue(afterClose, 'meterhook_webhook_queue_depth', '{status="pending"}'), 0);
  });
});

describe('delivery metrics', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({
      now: '2026-01-12T10:30:00Z',
      dryRun: true,
      config: {
        ...REFERENCE_CONFIG,
        periods: ['hourly'],
        webhooks: [{ id: 'b', url: 'https://billing.example/h', secret: 'whsec_bWV0cmljcy10ZXN0LXNlY3JldC0xMjM0NQ==' }],
      },
    });
  });
  after(() => t.close());

  it('shows queue depth and the oldest undelivered message, then attempts by outcome', async () => {
    const payload = [{ eventType: 'api.calls', customerId: 'd1', value: 1, timestamp: '2026-01-12T08:10:00Z' }];
    assert.equal((await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload })).statusCode, 201);
    await closeDuePeriods(t.ctx);
    t.clock.advance(60_000);
    const scrape = async () => (await t.app.inject({ method: 'GET', url: '/metrics', headers: { 'x-apikey': TEST_KEY } })).body;
    const queued = await scrape();
    assert.equal(metricValue(queued, 'meterhook_webhook_queue_depth', '{status="pending"}'), 1);
    assert.equal(metricValue(queued, 'meterhook_webhook_oldest_undelivered_seconds'), 60);
    await t.dispatcher.start();
    await t.dispatcher.settled();
    assert.equal((await t.store.deliveryCounts()).succeeded, 1, 'the dry-run delivery finished');
    const done = await scrape();
    assert.equal(metricValue(done, 'meterhook_webhook_attempts_total', '{outcome="succeeded",error_class="dry_run"}'), 1);
    assert.equal(metricValue(done, 'meterhook_webhook_queue_depth', '{status="pending"}'), 0);
  });
});

describe('logs', () => {
  it('are JSON lines with the request id, and never contain an API key or a webhook secret', async () => {
    const lines: string[] = [];
    const secret = 'whsec_bG9nLXNjYW4tc2VjcmV0LXZhbHVlLTk4NzY1';
    const previous = 'old-rotation-secret-abcdef';
    const logger = createLogger('trace', { destination: { write: (l: string) => void lines.push(l) } });
    const t = await buildTestApp({
      now: '2026-01-12T10:30:00Z',
      dryRun: true,
      logger,
      config: {
        ...REFERENCE_CONFIG,
        periods: ['hourly'],
        webhooks: [{ id: 'b', url: 'https://billing.example/h', secret, previousSecrets: [previous] }],
      },
    });
    try {
      await t.app.inject({
        method: 'POST',
        url: '/usagebatch',
        headers: t.headers,
        payload: [{ eventType: 'api.calls', customerId: 'l1', value: 1, timestamp: '2026-01-12T08:10:00Z' }],
      });
      await t.app.inject({ method: 'GET', url: '/events', headers: { authorization: `Bearer ${TEST_KEY}` } });
      await t.app.inject({ method: 'GET', url: '/events', headers: { 'x-apikey': 'mh_wrong_key_that_must_not_be_logged' } });
      await t.app.inject({ method: 'GET', url: '/config', headers: t.headers });
      await closeDuePeriods(t.ctx);
      await t.dispatcher.start();
      await t.dispatcher.settled();
      assert.ok(
        lines.some((l) => l.includes('DRY_RUN')),
        'the DRY_RUN line is logged',
      );
    } finally {
      await t.close();
    }
    assert.ok(lines.length >= 5, `expected log lines, got ${lines.length}`);
    for (const l of lines) JSON.parse(l);
    const requestLines = lines.map((l) => JSON.parse(l) as { reqId?: string; msg?: string }).filter((l) => l.msg === 'request');
    assert.ok(requestLines.length >= 3 && requestLines.every((l) => typeof l.reqId === 'string' && l.reqId.startsWith('req_')));
    const all = lines.join('\n');
    for (const s of [TEST_KEY, 'mh_wrong_key_that_must_not_be_logged', secret, previous, secret.slice('whsec_'.length)]) {
      assert.ok(!all.includes(s), `a log line contains ${s.slice(0, 8)}…`);
    }
  });
});
