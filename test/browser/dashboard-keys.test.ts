// The dashboard's Keys page in a real headless Chromium against a REAL `meterhook serve` process: an admin
// creates a portal key (read scope, one customer, an expiry) from the form, the page shows the key once,
// the key works for that customer only, the listing never shows key material, and revoking from the page
// stops the key at once. Any console error, page error or request to another origin fails the test.
// Chromium must be installed (.ci/install-chromium.sh); without it this test fails, it never skips.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, openDashboardPage } from '../helpers/dashboard-page.js';
import { cleanupServerProcesses, http, startServerProcess, type ServerProcess } from '../helpers/server-process.js';

const CUSTOMER = 'acme-corp';

describe('dashboard keys page (real server, headless Chromium)', () => {
  let server: ServerProcess;
  let browser: Browser | undefined;
  let page: Page;
  const problems: string[] = [];
  const admin = () => server.key!;
  const get = (p: string, key: string) => http(`${server.url}${p}`, { headers: { 'x-apikey': key } });

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `Chromium is required at ${CHROMIUM} (.ci/install-chromium.sh); this test never skips`);
    server = await startServerProcess({ config: { periods: ['daily'], events: { 'api.calls': { op: 'sum' } } } });
    const now = new Date().toISOString();
    const events = [CUSTOMER, 'globex'].map((customerId) => ({ eventType: 'api.calls', customerId, value: 3, timestamp: now }));
    const r = await http(`${server.url}/usagebatch`, { headers: { 'x-apikey': admin() }, body: events });
    assert.equal(r.status, 201, r.text);
    ({ browser, page } = await openDashboardPage(new URL(server.url).origin, problems));
    page.on('dialog', (d) => d.accept());
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await cleanupServerProcesses();
  });

  it('creates a portal key shown once, lists it without material, and revokes it at once', async () => {
    await page.goto(`${server.url}/dashboard#/keys`);
    await page.waitForSelector('#sign-in:not([hidden])');
    await page.fill('#api-key', admin());
    await page.click('#sign-in-button');
    await page.waitForSelector('#key-form');

    // A form with no scope is refused in the page, before any request.
    await page.fill('#key-name', 'acme portal');
    await page.click('#key-create');
    assert.equal(await page.textContent('#key-create-error'), 'Choose at least one scope.');

    const expires = new Date(Date.now() + 30 * 86_400_000);
    const local = expires.toISOString().slice(0, 16); // the form's datetime-local is read as UTC
    await page.check('#key-scope-read');
    await page.fill('#key-customer', CUSTOMER);
    await page.fill('#key-expires', local);
    await page.fill('#key-rate', '50');
    await page.click('#key-create');
    await page.waitForSelector('#created-key-box');
    const key = await page.inputValue('#created-key');
    assert.match(key, /^mh_/);

    // The key is what the form said: read, one customer, the expiry to the minute, the rate limit.
    const listed = await get('/keys', admin());
    assert.equal(listed.status, 200, listed.text);
    assert.ok(!listed.text.includes(key), 'GET /keys must not carry key material');
    const row = (listed.body as Array<Record<string, any>>).find((k) => k.name === 'acme portal');
    assert.ok(row, listed.text);
    assert.deepEqual(row.scopes, ['read']);
    assert.equal(row.customerId, CUSTOMER);
    assert.equal(row.expiresAt, `${local}:00.000Z`);
    assert.deepEqual(row.rateLimit, { requestsPerSecond: 50, burst: 50 });

    // It reads its customer only, and nothing admin.
    assert.equal((await get(`/customers/${CUSTOMER}/usage?period=daily`, key)).status, 200);
    assert.equal((await get('/customers/globex/usage?period=daily', key)).status, 404);
    assert.equal((await get('/stats', key)).status, 403);

    // The table lists it as active; after a reload the one-time box is gone and no cell holds the key.
    await page.waitForSelector(`#keys tr[data-key-id="${row.id}"][data-state="active"]`);
    await page.reload();
    await page.waitForSelector(`#keys tr[data-key-id="${row.id}"]`);
    assert.equal(await page.$('#created-key-box'), null);
    assert.ok(!(await page.content()).includes(key), 'the page must not hold the key after a reload');

    // Revoke from the page: the row turns revoked and the key is refused at once.
    await page.click(`#keys tr[data-key-id="${row.id}"] button[data-action="revoke"]`);
    await page.waitForSelector(`#keys tr[data-key-id="${row.id}"][data-state="revoked"]`);
    assert.equal((await get(`/customers/${CUSTOMER}/usage?period=daily`, key)).status, 401);
    assert.deepEqual(problems, []);
  });
});
