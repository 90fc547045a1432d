// The dashboard in a real headless Chromium asks GET /session what the signed-in key may do: a read key sees
// the overview and a customer's usage with no admin page in the navigation and no admin action anywhere (no
// Retry, Enable or endpoint table), and no request of it is refused; an admin key sees the Audit page, which
// lists GET /audit, and the Retry buttons of the deliveries page. Any console error or page error fails the
// test. Chromium must be installed (.ci/install-chromium.sh); without it this test fails, it never skips.
// store-contract: sqlite — what the page shows does not depend on the store; test/http/audit-log.test.ts runs on both

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createApiKey } from '../../src/auth/api-keys.js';
import { buildTestApp, TEST_KEY, type TestApp } from '../helpers/app.js';
import { openDashboardPage } from '../helpers/dashboard-page.js';
import { SAMPLE_CONFIG, seedDelivery } from '../helpers/route-samples.js';

// Browser global, used only inside page.evaluate callbacks (they run in the page; tsconfig has no DOM lib).
declare const document: any;

describe('dashboard access by key scope', () => {
  let t: TestApp;
  let origin: string;
  let readKey: string;
  const browsers: Browser[] = [];
  before(async () => {
    t = await buildTestApp({ config: SAMPLE_CONFIG });
    await seedDelivery(t);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    origin = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    readKey = (await createApiKey(t.store, t.clock, 'viewer', ['read'])).key;
    await t.apiKeys.reload();
    const trigger = await t.app.inject({ method: 'POST', url: '/aggregations/trigger', headers: { 'x-apikey': TEST_KEY } });
    assert.ok(trigger.statusCode < 300, trigger.body);
  });
  after(async () => {
    for (const b of browsers) await b.close();
    await t?.close();
  });

  const signIn = async (key: string): Promise<{ page: Page; problems: string[] }> => {
    const problems: string[] = [];
    const { browser, page } = await openDashboardPage(origin, problems);
    browsers.push(browser);
    await page.goto(`${origin}/dashboard`);
    await page.waitForSelector('#sign-in:not([hidden])');
    await page.fill('#api-key', key);
    await page.click('#sign-in-button');
    await page.waitForSelector('#overview-stats');
    return { page, problems };
  };
  const visibleNav = (page: Page): Promise<string[]> =>
    page.evaluate(() => [...document.querySelectorAll('#nav a')].filter((a: any) => !a.hidden).map((a: any) => String(a.dataset.section)));
  const buttons = (page: Page): Promise<string[]> =>
    page.evaluate(() => [...document.querySelectorAll('#view button')].map((b: any) => String(b.textContent).trim()));

  it('a read key sees usage but no admin page and no admin action', async () => {
    const { page, problems } = await signIn(readKey);
    assert.deepEqual(await visibleNav(page), ['overview', 'customers']);
    assert.equal(await page.locator('text=Webhook endpoints').count(), 0, 'no endpoint table, so no Enable button');
    for (const b of await buttons(page)) assert.ok(!/^(Retry|Enable|Trigger|Recover)/.test(b), `an admin button: ${b}`);
    await page.evaluate(() => {
      document.location.hash = '#/customers/cust_1';
    });
    await page.waitForSelector('#customer-title');
    await page.waitForSelector('#current-usage table, #current-usage .empty');
    for (const b of await buttons(page)) assert.ok(!/^(Retry|Enable|Trigger|Recover)/.test(b), `an admin button: ${b}`);
    assert.deepEqual(problems, [], 'no request was refused and nothing failed');
  });

  it('an admin key sees the Audit page listing GET /audit, and the Retry buttons', async () => {
    const { page, problems } = await signIn(TEST_KEY);
    assert.deepEqual(await visibleNav(page), ['overview', 'customers', 'deliveries', 'config', 'keys', 'audit']);
    await page.click('#nav a[data-section="audit"]');
    await page.waitForSelector('#audit tbody tr');
    const rows = await page.evaluate(() =>
      [...document.querySelectorAll('#audit tbody tr')].map((tr: any) => [...tr.querySelectorAll('td')].map((td: any) => td.textContent)),
    );
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0]!.slice(1, 4), ['aggregation.trigger', 'env', 'POST /aggregations/trigger']);
    await page.click('#nav a[data-section="deliveries"]');
    await page.waitForSelector('#deliveries tbody tr');
    assert.ok((await buttons(page)).includes('Retry'), 'the pending delivery can be retried');
    assert.deepEqual(problems, []);
  });
});
