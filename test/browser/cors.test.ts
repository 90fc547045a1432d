// CORS in a real headless Chromium: a page served from another loopback origin (127.0.0.2) that is listed in
// cors.allowedOrigins fetches its customer's usage and its session from the API (127.0.0.1) with a portal key
// (read scope, one customer) and reads the answers, another customer's usage a 404; the same page served from
// an origin not listed (127.0.0.3) is refused by the browser, and so is the allowed page calling an admin route.
// Chromium must be installed (.ci/install-chromium.sh); without it this test fails, it never skips.
// store-contract: sqlite — what the browser enforces does not depend on the store; test/http/cors.test.ts runs on both

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createApiKey } from '../../src/auth/api-keys.js';
import { buildTestApp, REFERENCE_CONFIG, type TestApp } from '../helpers/app.js';
import { openDashboardPage } from '../helpers/dashboard-page.js';

// Browser global, used only inside page.evaluate callbacks (they run in the page; tsconfig has no DOM lib).
declare const fetch: any;

/** A static portal page on `host`, port chosen by the system. */
async function portal(host: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>portal</title><p>portal</p>');
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://${host}:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

type Outcome = { ok: true; status: number; body: any; requestId: string | null } | { ok: false; error: string };

/** Runs fetch in the page: the browser applies CORS, the test only reads what the page could read. */
function fetchFrom(page: Page, url: string, key: string): Promise<Outcome> {
  return page.evaluate(
    async ([u, k]) => {
      try {
        const res = await fetch(u, { headers: { authorization: `Bearer ${k}` } });
        return { ok: true as const, status: res.status, body: await res.json(), requestId: res.headers.get('x-request-id') };
      } catch (e) {
        return { ok: false as const, error: String(e) };
      }
    },
    [url, key] as const,
  );
}

describe('CORS in a browser', () => {
  let t: TestApp;
  let api: string;
  let allowed: Awaited<ReturnType<typeof portal>>;
  let denied: Awaited<ReturnType<typeof portal>>;
  let readKey: string;
  const browsers: Browser[] = [];
  before(async () => {
    allowed = await portal('127.0.0.2');
    denied = await portal('127.0.0.3');
    t = await buildTestApp({ config: { ...REFERENCE_CONFIG, cors: { allowedOrigins: [allowed.origin] } } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    api = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    // A portal key: read scope, confined to one customer.
    readKey = (await createApiKey(t.store, t.clock, 'portal', ['read'], { customerId: 'cust_1' })).key;
    await t.apiKeys.reload();
    const res = await t.app.inject({
      method: 'POST',
      url: '/usage/api.calls',
      headers: t.headers,
      payload: { customerId: 'cust_1', value: 7 },
    });
    assert.equal(res.statusCode, 201, res.body);
  });
  after(async () => {
    for (const b of browsers) await b.close();
    await t?.close();
    await allowed?.close();
    await denied?.close();
  });

  const open = async (origin: string): Promise<{ page: Page; problems: string[] }> => {
    const problems: string[] = [];
    const { browser, page } = await openDashboardPage(origin, problems);
    browsers.push(browser);
    await page.goto(`${origin}/`);
    return { page, problems };
  };

  it("a page from an allowed origin reads its customer's usage and its session with a portal key", async () => {
    const { page } = await open(allowed.origin);
    const usage = await fetchFrom(page, `${api}/customers/cust_1/usage?period=daily`, readKey);
    assert.ok(usage.ok, JSON.stringify(usage));
    assert.equal(usage.status, 200);
    assert.equal(usage.body.customerId, 'cust_1');
    assert.equal(usage.body.events['api.calls'], 7);
    assert.match(String(usage.requestId), /^req_/, 'an exposed header is readable');
    const session = await fetchFrom(page, `${api}/session`, readKey);
    assert.ok(session.ok && session.status === 200, JSON.stringify(session));
    assert.deepEqual(session.body.scopes, ['read']);
    assert.equal(session.body.customerId, 'cust_1');
    // Another customer's usage: the same 404 as a customer that does not exist, readable by the page.
    const foreign = await fetchFrom(page, `${api}/customers/cust_2/usage?period=daily`, readKey);
    assert.ok(foreign.ok, JSON.stringify(foreign));
    assert.equal(foreign.status, 404);
  });

  it('the allowed page cannot call an admin route, and a page from another origin cannot read anything', async () => {
    const { page } = await open(allowed.origin);
    const admin = await fetchFrom(page, `${api}/audit`, readKey);
    assert.equal(admin.ok, false, JSON.stringify(admin));
    const other = await open(denied.origin);
    const usage = await fetchFrom(other.page, `${api}/customers/cust_1/usage`, readKey);
    assert.equal(usage.ok, false, JSON.stringify(usage));
    assert.ok(
      other.problems.some((p) => /CORS|Access-Control/i.test(p)),
      `the browser said why: ${other.problems.join('; ')}`,
    );
  });
});
