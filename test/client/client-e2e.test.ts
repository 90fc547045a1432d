// MeterhookClient against REAL server processes: automatic batching of many events, a server killed
// with SIGKILL and restarted (same data dir, same port) in the middle of a stream of batches with
// nothing lost and nothing doubled, 4xx answers surfacing as typed errors, and close() leaving
// nothing that keeps a process alive.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { MeterhookClient, MeterhookError, MeterhookValidationError, type RetryInfo } from '../../src/client/index.js';
import { REPO_ROOT, cleanupServerProcesses, makeTempDir, startServerProcess, type ServerProcess } from '../helpers/server-process.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const clients: MeterhookClient[] = [];
function newClient(
  server: { url: string },
  key: string,
  o: Partial<ConstructorParameters<typeof MeterhookClient>[0]> = {},
): MeterhookClient {
  const c = new MeterhookClient({ url: server.url, apiKey: key, ...o });
  clients.push(c);
  return c;
}

after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await cleanupServerProcesses();
});

describe('MeterhookClient against a real server', () => {
  let server: ServerProcess;

  it('batches many events automatically, and usage, events and aggregations agree', async () => {
    server = await startServerProcess();
    const key = server.key!;
    const batchSizes: number[] = [];
    const c = newClient(server, key, {
      flushIntervalMs: 60_000, // only the size limit may send a batch before flush()
      fetch: (input, init) => {
        if (String(input).endsWith('/usagebatch')) batchSizes.push((JSON.parse(String(init?.body)) as unknown[]).length);
        return fetch(input, init);
      },
    });
    // The start of the current hour: its periods stay open for the whole test.
    const at = Date.now() - (Date.now() % 3_600_000);
    const customers = ['cust_a', 'cust_b', 'cust_c', 'cust_d', 'cust_e'];
    const expected = new Map(customers.map((id) => [id, { sum: 0, count: 0 }]));
    const acks: Array<Promise<unknown>> = [];
    for (let i = 0; i < 5000; i++) {
      const customerId = customers[i % customers.length]!;
      const value = (i % 10) + 1;
      const e = expected.get(customerId)!;
      e.sum += value;
      e.count++;
      acks.push(c.track('api.calls', { customerId, value, timestamp: at }));
    }
    await c.flush();
    await Promise.all(acks);
    assert.deepEqual(batchSizes, [1000, 1000, 1000, 1000, 1000]);

    for (const [customerId, e] of expected) {
      const u = await c.usage(customerId, { period: 'hourly', at });
      assert.equal(u.events['api.calls'], e.sum, customerId);
      assert.equal(u.eventCounts['api.calls'], e.count, customerId);
    }
    // Paging through the raw events with a small page follows X-Next-Cursor to the end.
    const pages: number[] = [];
    for await (const page of c.events({ customerId: 'cust_a', limit: 300 }).pages()) pages.push(page.items.length);
    assert.deepEqual(pages, [300, 300, 300, 100]);

    const trig = await c.trigger();
    assert.equal(trig.customersFound, 5);
    const aggs = await c.aggregations({ customerId: 'cust_b', period: 'hourly' }).all();
    assert.equal(aggs.length, 1);
    assert.equal(aggs[0]!.events['api.calls'], expected.get('cust_b')!.sum);
    assert.equal(aggs[0]!.final, false);
  });

  it('surfaces 4xx answers as MeterhookError with the server body, and still stores the valid events of the batch', async () => {
    const key = server.key!;
    const c = newClient(server, key);
    const good = c.track('api.calls', { customerId: 'cust_4xx', value: 2 });
    const badType = c.track('no.such.type', { customerId: 'cust_4xx', value: 1 });
    const err = await badType.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof MeterhookError, String(err));
    assert.equal(err.status, 422);
    assert.match(err.details?.[0] ?? '', /^Invalid event type: no\.such\.type/);
    assert.equal((err.body as { invalidCount: number }).invalidCount, 1);
    await good;
    assert.equal((await c.usage('cust_4xx')).events['api.calls'], 2);

    // A single capture answers with the reference's own body.
    const single = await c.capture('no.such.type', { customerId: 'x', value: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(single instanceof MeterhookError && single.status === 400);
    assert.match((single.body as { error: string }).error, /^Invalid event type: no\.such\.type\. Must be one of: /);

    // Same id, different content: 409 for that event.
    await c.track('api.calls', { customerId: 'cust_4xx', value: 1, id: 'same-id' });
    const conflict = await c.track('api.calls', { customerId: 'cust_4xx', value: 9, id: 'same-id' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(conflict instanceof MeterhookError && conflict.status === 409 && conflict.code === 'event_id_conflict', String(conflict));
    // Same id, same content: a duplicate, which is a success.
    assert.deepEqual(await c.track('api.calls', { customerId: 'cust_4xx', value: 1, id: 'same-id' }), { id: 'same-id' });
    assert.equal((await c.usage('cust_4xx')).eventCounts['api.calls'], 2);

    const wrongKey = newClient(server, 'mh_not_a_valid_key_000000');
    const unauthorized = await wrongKey.usage('cust_4xx').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(
      unauthorized instanceof MeterhookError && unauthorized.status === 401 && unauthorized.code === 'unauthorized',
      String(unauthorized),
    );
    await assert.rejects(
      wrongKey.track('api.calls', { customerId: 'x', value: 1 }),
      (e: unknown) => e instanceof MeterhookError && e.status === 401,
    );
    await server.stop();
  });

  it('refuses lone UTF-16 surrogates with MeterhookValidationError: nothing of them is stored, the rest is', async () => {
    const srv = await startServerProcess();
    const c = newClient(srv, srv.key!, { flushIntervalMs: 60_000 });
    const good = c.track('api.calls', { customerId: 'cust_lone', value: 5, id: 'lone-ok' });
    const bad = [
      c.track('api.calls', { customerId: 'cust_lone', value: 1, id: 'lone\ud800' }),
      c.track('api.calls', { customerId: 'cust_lone\udc00', value: 1 }),
      c.track('api.calls', { customerId: 'cust_lone', value: 1, metadata: { note: ['\ud800'] } }),
    ];
    for (const p of bad) {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof MeterhookValidationError && err.status === 422, String(err));
      assert.match(err.details?.[0] ?? '', /must not contain lone UTF-16 surrogates/);
    }
    await c.flush();
    assert.deepEqual(await good, { id: 'lone-ok' });
    const single = await c.capture('api.calls', { customerId: 'cust_lone', value: 1, id: '\udfff' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(single instanceof MeterhookValidationError && single.status === 422, String(single));
    const report = await c.sendBatch([
      { eventType: 'api.calls', customerId: 'cust_lone', value: 2, id: 'lone-batch-ok' },
      { eventType: 'api.calls\ud800', customerId: 'cust_lone', value: 1 },
    ]);
    assert.deepEqual([report.inserted, report.rejected.map((r) => r.index)], [1, [1]]);
    const usage = await c.usage('cust_lone');
    assert.deepEqual(usage.events, { 'api.calls': 7 });
    assert.deepEqual(usage.eventCounts, { 'api.calls': 2 });
    await assert.rejects(c.usage('cust_lone\ud800'), (e: unknown) => e instanceof MeterhookValidationError && e.status === 400);
    // What the server answers when such text reaches it anyway (another client): its own 422, nothing stored.
    const raw = await fetch(`${srv.url}/usage/api.calls`, {
      method: 'POST',
      headers: { 'x-apikey': srv.key!, 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'cust_lone', value: 1, id: 'x\ud800' }),
    });
    assert.equal(raw.status, 422);
    assert.deepEqual(await raw.json(), { error: 'Validation failed', details: ['id must not contain lone UTF-16 surrogates'] });
    assert.deepEqual((await c.usage('cust_lone')).eventCounts, { 'api.calls': 2 });
    await srv.stop();
  });

  it('loses and doubles nothing when the server is SIGKILLed and restarted in the middle of a stream of batches', async () => {
    const port = await freePort();
    const dataDir = makeTempDir();
    const key = `mh_e2e_${randomBytes(12).toString('hex')}`;
    const start = () => startServerProcess({ dataDir, apiKey: key, env: { PORT: String(port) } });
    let srv = await start();
    assert.equal(srv.url, `http://127.0.0.1:${port}`);

    const retries: RetryInfo[] = [];
    const c = newClient(srv, key, {
      maxBatchSize: 200,
      flushIntervalMs: 20,
      maxRetries: 60,
      retryBaseDelayMs: 50,
      retryMaxDelayMs: 500,
      timeoutMs: 10_000,
      onRetry: (i) => retries.push(i),
    });
    const N = 6000;
    // The start of the current hour: its periods stay open for the whole test.
    const at = Date.now() - (Date.now() % 3_600_000);
    let acknowledged = 0;
    const acks: Array<Promise<unknown>> = [];
    const producer = (async () => {
      for (let i = 1; i <= N; i++) {
        acks.push(c.track('api.calls', { customerId: 'cust_restart', value: i, timestamp: at }).then(() => acknowledged++));
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();

    await until(() => acknowledged >= 1500, '1500 acknowledged events');
    const killedAt = acknowledged;
    const exit = await srv.kill('SIGKILL');
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(killedAt < N, 'the server died while events were still being tracked');
    srv = await start();
    await producer;
    await c.flush();
    await Promise.all(acks);
    assert.equal(acknowledged, N);
    assert.ok(retries.length > 0, 'the client had to retry across the restart');

    const u = await c.usage('cust_restart', { period: 'hourly', at });
    assert.equal(u.eventCounts['api.calls'], N, 'nothing lost, nothing doubled (count)');
    assert.equal(u.events['api.calls'], (N * (N + 1)) / 2, 'nothing lost, nothing doubled (sum)');
    const values = new Set<number>();
    for await (const e of c.events({ customerId: 'cust_restart', limit: 1000 })) values.add(e.value);
    assert.equal(values.size, N);
    await srv.stop();
  });

  it('close() leaves nothing that keeps the process alive', async () => {
    const srv = await startServerProcess();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(HERE, 'fixtures', 'track-and-close.ts'), srv.url, srv.key!, 'cust_exit', '25'],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = await new Promise<number | null | 'timeout'>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), 20_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    if (exited === 'timeout') child.kill('SIGKILL');
    assert.equal(exited, 0, `the child must exit by itself after close()\nstdout: ${out}\nstderr: ${err}`);
    const report = JSON.parse(out.trim().split('\n').pop()!) as { acknowledged: number; resources: string[] };
    assert.equal(report.acknowledged, 25);
    assert.ok(!report.resources.includes('Timeout'), `no timer left after close(): ${JSON.stringify(report.resources)}`);
    const c = newClient(srv, srv.key!);
    assert.equal((await c.usage('cust_exit')).eventCounts['api.calls'], 25);
    await srv.stop();
  });
});
