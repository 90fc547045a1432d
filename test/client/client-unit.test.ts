// MeterhookClient against a scripted node:http server on loopback: batching by size and time,
// retries with backoff and jitter on 5xx and network errors (same ids every time), Retry-After,
// no retry on 4xx, per-event rejection inside a batch, 413 splitting, paging, and close().

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { MeterhookConnectionError, MeterhookError, backoffDelay, parseRetryAfter, type RetryInfo } from '../../src/client/index.js';
import { batchOk, idsOf } from './fake-server.js';
import { client, fake, forgetServer } from './client-harness.js';

describe('the client package', () => {
  it('imports nothing but its own modules (no server code, no dependency, no node: module)', () => {
    const dir = new URL('../../src/client/', import.meta.url);
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));
    assert.ok(files.includes('index.ts'));
    for (const f of files) {
      const text = fs.readFileSync(new URL(f, dir), 'utf8');
      const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!);
      for (const spec of specifiers) assert.match(spec, /^\.\/[a-z-]+\.js$/, `${f} imports ${spec}`);
    }
  });
});

describe('backoff and Retry-After parsing', () => {
  it('doubles the delay per retry, caps it, and jitters within [d/2, d]', () => {
    const o = { baseDelayMs: 100, maxDelayMs: 1000 };
    assert.equal(
      backoffDelay(1, o, () => 0),
      50,
    );
    assert.equal(
      backoffDelay(1, o, () => 0.999999),
      100,
    );
    assert.equal(
      backoffDelay(2, o, () => 0),
      100,
    );
    assert.equal(
      backoffDelay(3, o, () => 0),
      200,
    );
    assert.equal(
      backoffDelay(10, o, () => 0),
      500,
    );
    assert.equal(
      backoffDelay(10, o, () => 0.999999),
      1000,
    );
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(4, o);
      assert.ok(d >= 400 && d <= 800, String(d));
    }
  });

  it('reads delay-seconds and HTTP dates, and ignores garbage', () => {
    assert.equal(parseRetryAfter('3'), 3000);
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter('soon-ish?'), undefined);
    assert.equal(parseRetryAfter('-1'), undefined);
    const now = Date.parse('2026-01-12T10:00:00Z');
    assert.equal(parseRetryAfter('Mon, 12 Jan 2026 10:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('Mon, 12 Jan 2026 09:00:00 GMT', now), 0);
  });
});

describe('MeterhookClient batching', () => {
  it('sends a batch as soon as maxBatchSize events are queued, and the rest on flush()', async () => {
    const s = await fake(batchOk);
    const c = client(s.url, { maxBatchSize: 10, flushIntervalMs: 60_000 });
    const ps = Array.from({ length: 25 }, (_, i) => c.track('api.calls', { customerId: 'c1', value: i }));
    await Promise.all(ps.slice(0, 20));
    assert.deepEqual(
      s.requests.map((r) => (r.body as unknown[]).length),
      [10, 10],
    );
    await c.flush();
    assert.deepEqual(
      s.requests.map((r) => (r.body as unknown[]).length),
      [10, 10, 5],
    );
    const all = s.requests.flatMap((r) => r.body as Array<{ value: number; id: string; eventType: string; customerId: string }>);
    assert.deepEqual(
      all.map((e) => e.value),
      Array.from({ length: 25 }, (_, i) => i),
    );
    assert.equal(new Set(all.map((e) => e.id)).size, 25, 'every event got its own id');
    assert.ok(all.every((e) => e.eventType === 'api.calls' && e.customerId === 'c1'));
    const r = await ps[24]!;
    assert.equal(r.id, all[24]!.id);
    assert.equal(s.requests[0]!.path, '/usagebatch');
    assert.equal(s.requests[0]!.headers['x-apikey'], 'mh_unit_key');
    assert.equal(s.requests[0]!.headers['content-type'], 'application/json');
  });

  it('sends a partial batch flushIntervalMs after its first event, without flush()', async () => {
    const s = await fake(batchOk);
    const c = client(s.url, { flushIntervalMs: 50 });
    const t0 = Date.now();
    const r = await c.track('api.calls', {
      customerId: 'c1',
      value: 1,
      id: 'given-id',
      metadata: { a: 1 },
      timestamp: new Date('2026-01-12T10:00:00Z'),
    });
    assert.equal(r.id, 'given-id');
    assert.ok(Date.now() - t0 >= 40, 'waited for the interval');
    assert.equal(s.requests.length, 1);
    assert.deepEqual(s.requests[0]!.body, [
      { eventType: 'api.calls', customerId: 'c1', value: 1, id: 'given-id', metadata: { a: 1 }, timestamp: '2026-01-12T10:00:00.000Z' },
    ]);
  });

  it('keeps a path prefix of the base URL', async () => {
    const s = await fake(batchOk);
    const c = client(`${s.url}/meterhook`);
    await c.track('api.calls', { customerId: 'c1', value: 1 });
    assert.equal(s.requests[0]!.path, '/meterhook/usagebatch');
  });
});

describe('MeterhookClient retries', () => {
  it('honours Retry-After on a 503 and resends the same ids', async () => {
    const s = await fake((req, n) =>
      n === 1
        ? { status: 503, headers: { 'retry-after': '1' }, body: { error: 'Ingest queue is full; retry shortly', code: 'overloaded' } }
        : batchOk(req),
    );
    const retries: RetryInfo[] = [];
    const c = client(s.url, { onRetry: (i) => retries.push(i) });
    await Promise.all([c.track('api.calls', { customerId: 'c1', value: 1 }), c.track('api.calls', { customerId: 'c1', value: 2 })]);
    assert.equal(s.requests.length, 2);
    const gap = s.requests[1]!.at - s.requests[0]!.at;
    assert.ok(gap >= 990, `waited ${gap} ms, Retry-After said 1 s`);
    assert.ok(gap < 5000, `waited ${gap} ms`);
    assert.deepEqual(idsOf(s.requests[1]!), idsOf(s.requests[0]!), 'a retry reuses the ids');
    assert.equal(retries.length, 1);
    assert.equal(retries[0]!.status, 503);
    assert.equal(retries[0]!.retryAfter, true);
    assert.ok(retries[0]!.delayMs >= 1000 && retries[0]!.delayMs <= 1100, String(retries[0]!.delayMs));
  });

  it('backs off exponentially on 5xx without Retry-After', async () => {
    const s = await fake((req, n) => (n <= 3 ? { status: 500, body: { error: 'boom' } } : batchOk(req)));
    const retries: RetryInfo[] = [];
    // random() = 0 makes the jitter deterministic: the lower bound d/2 of each step.
    const c = client(s.url, { retryBaseDelayMs: 100, retryMaxDelayMs: 10_000, random: () => 0, onRetry: (i) => retries.push(i) });
    await c.track('api.calls', { customerId: 'c1', value: 1 });
    assert.deepEqual(
      retries.map((r) => r.delayMs),
      [50, 100, 200],
    );
    assert.deepEqual(
      retries.map((r) => r.retry),
      [1, 2, 3],
    );
    const gaps = s.requests.slice(1).map((r, i) => r.at - s.requests[i]!.at);
    gaps.forEach((g, i) => {
      assert.ok(g >= [50, 100, 200][i]! - 5, `gap ${i + 1} was ${g} ms`);
    });
    assert.equal(new Set(s.requests.map((r) => idsOf(r)[0])).size, 1, 'same id on every attempt');
  });

  it('retries network errors (socket destroyed mid-request) with the same ids', async () => {
    const s = await fake((req, n) => (n <= 2 ? { status: 0, destroy: true } : batchOk(req)));
    const retries: RetryInfo[] = [];
    const c = client(s.url, { onRetry: (i) => retries.push(i) });
    const r = await c.track('api.calls', { customerId: 'c1', value: 1 });
    assert.equal(s.requests.length, 3);
    assert.ok(s.requests.every((q) => idsOf(q)[0] === r.id));
    assert.equal(retries.length, 2);
    assert.equal(retries[0]!.status, undefined);
    assert.ok(retries[0]!.error instanceof MeterhookConnectionError);
  });

  it('gives up after maxRetries and rejects with the last answer', async () => {
    const s = await fake(() => ({ status: 502, body: { error: 'bad gateway' } }));
    const c = client(s.url, { maxRetries: 2 });
    const p = c.track('api.calls', { customerId: 'c1', value: 1 });
    await assert.rejects(
      p,
      (e: unknown) => e instanceof MeterhookError && e.status === 502 && (e.body as { error: string }).error === 'bad gateway',
    );
    assert.equal(s.requests.length, 3);
  });

  it('rejects with MeterhookConnectionError when nothing listens', async () => {
    const s = await fake(batchOk);
    const url = s.url;
    await s.close();
    forgetServer(s);
    const c = client(url, { maxRetries: 2 });
    const err = await c.capture('api.calls', { customerId: 'c1', value: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof MeterhookConnectionError, String(err));
    assert.equal(err.code, 'ECONNREFUSED');
  });

  it('does not retry a 4xx, and rejects with the server body', async () => {
    const body = { error: 'Invalid API key', code: 'unauthorized', requestId: 'req_x' };
    const s = await fake(() => ({ status: 401, body }));
    const c = client(s.url);
    const p = c.track('api.calls', { customerId: 'c1', value: 1 });
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof MeterhookError);
    assert.equal(err.status, 401);
    assert.deepEqual(err.body, body);
    assert.equal(err.code, 'unauthorized');
    assert.equal(err.requestId, 'req_x');
    assert.equal(s.requests.length, 1);
    const flushErr = await c.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(flushErr, undefined, 'the failed event was already settled before this flush');
  });

  it('rejects only the invalid events of a batch (422) and still sends the others', async () => {
    const s = await fake((req, n) => {
      if (n === 1) {
        return {
          status: 422,
          body: {
            error: 'Validation failed for some events',
            validationErrors: [{ index: 1, errors: ['customerId is required'] }],
            validCount: 2,
            invalidCount: 1,
          },
        };
      }
      return batchOk(req);
    });
    const c = client(s.url);
    const ps = [
      c.track('api.calls', { customerId: 'a', value: 1 }),
      c.track('api.calls', { customerId: '', value: 2 }),
      c.track('api.calls', { customerId: 'c', value: 3 }),
    ];
    const settled = await Promise.allSettled(ps);
    assert.equal(settled[0]!.status, 'fulfilled');
    assert.equal(settled[2]!.status, 'fulfilled');
    assert.equal(settled[1]!.status, 'rejected');
    const e = (settled[1] as PromiseRejectedResult).reason as MeterhookError;
    assert.equal(e.status, 422);
    assert.deepEqual(e.details, ['customerId is required']);
    assert.match(e.message, /customerId is required/);
    assert.deepEqual(
      (s.requests[1]!.body as Array<{ value: number }>).map((x) => x.value),
      [1, 3],
    );
  });

  it('treats a 409 id conflict as an error for that event, and a 200 duplicate as success', async () => {
    const s = await fake((req, n) => {
      if (n === 1)
        return { status: 409, body: { error: 'Event id conflict', code: 'event_id_conflict', conflicts: [{ index: 0, id: 'dup-1' }] } };
      const k = (req.body as unknown[]).length;
      return { status: 200, body: { message: 'Events captured', count: k, inserted: 0, duplicates: k } };
    });
    const c = client(s.url);
    const conflict = c.track('api.calls', { customerId: 'a', value: 1, id: 'dup-1' });
    const dup = c.track('api.calls', { customerId: 'a', value: 2, id: 'dup-2' });
    const err = await conflict.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof MeterhookError && err.status === 409 && err.code === 'event_id_conflict', String(err));
    assert.deepEqual(await dup, { id: 'dup-2' });
  });

  it('splits a batch the server finds too large (413 maxAllowed) and keeps the smaller size', async () => {
    const s = await fake((req) => {
      const n = (req.body as unknown[]).length;
      if (n > 4) return { status: 413, body: { error: 'Batch size exceeds maximum limit of 4 events', received: n, maxAllowed: 4 } };
      return batchOk(req);
    });
    const c = client(s.url);
    const report = await c.sendBatch(Array.from({ length: 10 }, (_, i) => ({ eventType: 'api.calls', customerId: 'c', value: i })));
    assert.equal(report.inserted, 10);
    assert.equal(report.failed, null);
    assert.deepEqual(
      s.requests.map((r) => (r.body as unknown[]).length),
      [10, 4, 4, 2],
    );
    assert.equal(new Set(report.ids).size, 10);
    await c.sendBatch(Array.from({ length: 5 }, (_, i) => ({ eventType: 'api.calls', customerId: 'c', value: i })));
    assert.deepEqual(
      s.requests.slice(4).map((r) => (r.body as unknown[]).length),
      [4, 1],
      'later batches use the server limit',
    );
  });

  it('does not retry a webhook replay after a 5xx (it is not idempotent)', async () => {
    const s = await fake(() => ({ status: 500, body: { error: 'Internal server error', code: 'internal_error' } }));
    const c = client(s.url);
    await assert.rejects(c.deliveries.retry('dlv_1'), (e: unknown) => e instanceof MeterhookError && e.status === 500);
    assert.equal(s.requests.length, 1);
    assert.equal(s.requests[0]!.path, '/webhooks/deliveries/dlv_1/retry');
    assert.equal(s.requests[0]!.method, 'POST');
  });
});

describe('MeterhookClient reads', () => {
  it('follows X-Next-Cursor in for await, and gives one page when awaited', async () => {
    const pages: Record<string, { items: unknown[]; next?: string }> = {
      '': { items: [{ id: 'a' }, { id: 'b' }], next: 'c1' },
      c1: { items: [{ id: 'c' }], next: 'c2' },
      c2: { items: [{ id: 'd' }] },
    };
    const s = await fake((req) => {
      const u = new URL(req.path, 'http://x');
      const p = pages[u.searchParams.get('cursor') ?? '']!;
      const headers: Record<string, string> = p.next ? { 'x-next-cursor': p.next } : {};
      return { status: 200, body: p.items, headers };
    });
    const c = client(s.url);
    const first = await c.aggregations({
      customerId: 'cust 1',
      period: 'daily',
      final: true,
      from: new Date('2026-01-01T00:00:00Z'),
      limit: 2,
    });
    assert.deepEqual(
      first.items.map((x) => x.id),
      ['a', 'b'],
    );
    assert.equal(first.nextCursor, 'c1');
    const q = new URL(s.requests[0]!.path, 'http://x').searchParams;
    assert.equal(q.get('customerId'), 'cust 1');
    assert.equal(q.get('period'), 'daily');
    assert.equal(q.get('final'), 'true');
    assert.equal(q.get('from'), '2026-01-01T00:00:00.000Z');
    assert.equal(q.get('limit'), '2');
    assert.equal(q.has('cursor'), false);

    const ids: string[] = [];
    for await (const a of c.aggregations({ limit: 2 })) ids.push(a.id);
    assert.deepEqual(ids, ['a', 'b', 'c', 'd']);
    assert.deepEqual(
      (await c.events().all(3)).map((x) => (x as unknown as { id: string }).id),
      ['a', 'b', 'c'],
    );
  });

  it('encodes path parameters', async () => {
    const s = await fake(() => ({ status: 200, body: {} }));
    const c = client(s.url);
    await c.usage('cust/ü 1', { period: 'weekly', at: 1_768_212_000_000 });
    await c.deliveries.get('dlv/x');
    assert.equal(s.requests[0]!.path, '/customers/cust%2F%C3%BC%201/usage?period=weekly&at=1768212000000');
    assert.equal(s.requests[1]!.path, '/webhooks/deliveries/dlv%2Fx');
  });
});
