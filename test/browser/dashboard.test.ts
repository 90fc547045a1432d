// The dashboard in a real headless Chromium against a REAL `meterhook serve` process: sign in with the
// key, open a customer and check every chart plots exactly what GET /customers/:id/usage/series
// answers (and what the ingested events imply), read from the data table the page renders under each
// chart, that the canvases are not blank, then retry a failed webhook delivery from the Deliveries
// page and watch it succeed. Meters with groupBy show a breakdown table of the current period's groups
// and a chart split by a chosen key, one line per value (the largest few; the rest noted), checked
// against the API and the ingested events, with a hostile dimension value shown as text only. The
// test reads only what a user's browser gets (the page has no test hook). Any console error, page
// error or request to another origin fails the test. Chromium must be installed
// (.ci/install-chromium.sh); without it this test fails, it never skips.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, type ChartTable, openDashboardPage, paintedPixels, readChartTable } from '../helpers/dashboard-page.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { cleanupServerProcesses, http, REPO_ROOT, startServerProcess, type ServerProcess } from '../helpers/server-process.js';

// Browser globals, used only inside page.evaluate callbacks (they run in the page; tsconfig has no DOM lib).
declare const document: any;
declare const sessionStorage: any;

const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const SECRET = 'dashboard-test-secret-0123456789';
const CUSTOMER = 'acme-corp';

/** Past hours with usage (hours before the current one), so their hourly periods are due. */
const PAST_HOURS = [2, 3, 4, 5, 6, 7];

interface Ev {
  eventType: string;
  customerId: string;
  value: number;
  timestamp: string;
  metadata?: Record<string, unknown>;
}

interface SeriesJson {
  customerId: string;
  eventType: string;
  op: string;
  bucket: string;
  from: string;
  to: string;
  points: Array<{ t: string; value: number; count: number }>;
  groups?: Array<{ value: string | null; overflow?: true; points: Array<{ t: string; value: number }> }>;
}

/** The test's own numbers: per (type, bucket start) the raw values, reduced with the operator. */
function expected(events: Ev[], eventType: string, op: string, bucketMs: number): Map<number, number> {
  const groups = new Map<number, Ev[]>();
  for (const e of events.filter((x) => x.customerId === CUSTOMER && x.eventType === eventType)) {
    const t = Date.parse(e.timestamp);
    const b = t - (t % bucketMs);
    (groups.get(b) ?? groups.set(b, []).get(b)!).push(e);
  }
  const out = new Map<number, number>();
  for (const [b, evs] of groups) {
    const vs = evs.map((e) => e.value);
    const v =
      op === 'unique'
        ? distinctUsers(evs)
        : op === 'sum'
          ? vs.reduce((a, c) => a + c, 0)
          : op === 'max'
            ? Math.max(...vs)
            : op === 'avg'
              ? vs.reduce((a, c) => a + c, 0) / vs.length
              : Number.NaN;
    out.set(b, v);
  }
  return out;
}

/** The unique meter's distinct userIds (events without one do not count). */
const distinctUsers = (evs: Ev[]): number => new Set(evs.map((e) => e.metadata?.userId).filter((u) => u !== undefined)).size;

const HOSTILE = '<img src=x onerror="document.title=\'pwned\'">';
const OVERFLOW = 'other (over the group limit)';
const MAX_GROUPS_PER_HOUR = 10;
/** Ten models (one missing), each with its own total; then an eleventh group, past the limit: the overflow group. */
const MODELS = ['gpt-4o', 'llama-3', HOSTILE, 'claude', 'mistral', 'gemini', 'qwen', 'phi', 'command-r', undefined];
const REGIONS = ['eu', 'us', undefined];
/** Users of the unique meter by plan (undefined: no plan): 3 without, 1 free, 2 pro; one repeat and one without userId. */
const USERS: Array<[user: string | undefined, plan: string | undefined]> = [
  ['u1', 'pro'],
  ['u2', 'pro'],
  ['u1', 'pro'],
  ['u3', 'free'],
  ['u4', undefined],
  ['u5', undefined],
  ['u6', undefined],
  [undefined, 'pro'],
];

/** An event's dimension value, as the server forms it from a test value (strings or missing only here). */
const dim = (v: unknown): string | null => (typeof v === 'string' ? v : null);
/** A breakdown cell's text back to the dimension value ("(none)" is null here: no test value is that text). */
const dimOf = (cell: string): string | null => (cell === '(none)' ? null : cell);

interface GroupJson {
  dimensions: Record<string, string | null>;
  valueDecimal: string;
  count: number;
  overflow?: true;
}

const MISSING_CHROMIUM =
  `Chromium is required for the dashboard test and was not found at ${CHROMIUM}. ` +
  'Install it with .ci/install-chromium.sh (apt-get install chromium); this test never skips.';

// Its own test, so a missing browser is reported as a plain failure (the suite below is then cancelled).
it('Chromium is installed for the browser test', () => {
  assert.ok(fs.existsSync(CHROMIUM), MISSING_CHROMIUM);
});

describe('dashboard in a real browser', () => {
  let receiver: Receiver;
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  const events: Ev[] = [];
  const problems: string[] = [];
  const key = () => server.key!;
  const apiGet = async <T>(p: string): Promise<T> => {
    const r = await http<T>(`${server.url}${p}`, { headers: { 'x-apikey': key() } });
    assert.equal(r.status, 200, `GET ${p} → ${r.status} ${r.text}`);
    return r.body;
  };

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), MISSING_CHROMIUM);
    receiver = await startReceiver(() => ({ status: 500, body: 'receiver is down' }));
    server = await startServerProcess({
      config: {
        periods: ['hourly', 'daily', 'monthly'],
        events: {
          'api.calls': { op: 'sum' },
          'storage.bytes': { op: 'max' },
          'response.time.ms': { op: 'avg' },
          'llm.tokens': { op: 'sum', groupBy: ['model', 'region'] },
          'active.users': { op: 'unique', field: 'userId', groupBy: ['plan'] },
        },
        maxGroupsPerHour: MAX_GROUPS_PER_HOUR,
        webhooks: [{ id: 'billing', url: receiver.url, secret: SECRET, periods: ['hourly'] }],
        webhookDelivery: { allowCidrs: ['127.0.0.1/32'], retrySchedule: ['1s'], deadline: '2s', pollInterval: '100ms' },
      },
    });

    const hourNow = Math.floor(Date.now() / HOUR) * HOUR;
    const at = (ms: number) => new Date(ms).toISOString();
    for (const k of PAST_HOURS) {
      const h = hourNow - k * HOUR;
      events.push(
        { eventType: 'api.calls', customerId: CUSTOMER, value: 10 * k, timestamp: at(h + 5 * 60_000) },
        { eventType: 'api.calls', customerId: CUSTOMER, value: 5, timestamp: at(h + 40 * 60_000) },
        { eventType: 'storage.bytes', customerId: CUSTOMER, value: 100 * k, timestamp: at(h + 10 * 60_000) },
        { eventType: 'storage.bytes', customerId: CUSTOMER, value: 50 * k, timestamp: at(h + 50 * 60_000) },
        { eventType: 'response.time.ms', customerId: CUSTOMER, value: k, timestamp: at(h + 15 * 60_000) },
        { eventType: 'response.time.ms', customerId: CUSTOMER, value: k + 3, timestamp: at(h + 45 * 60_000) },
      );
    }
    // Meters with dimensions, in the current hour (its periods stay open, so no webhook): ten groups, then
    // one past the limit, then more of the first group (1000.1 + 0.2: its exact total is 1000.3).
    const tokens = (value: number, model: unknown, region: unknown, second: number): Ev => ({
      eventType: 'llm.tokens',
      customerId: CUSTOMER,
      value,
      timestamp: at(hourNow + second * 1000),
      metadata: { ...(model === undefined ? {} : { model }), ...(region === undefined ? {} : { region }) },
    });
    events.push(...MODELS.map((m, i) => tokens(i === 0 ? 1000.1 : 100 * (10 - i), m, REGIONS[i % 3], i)));
    events.push(tokens(55, 'past-the-limit', 'us', 11), tokens(0.2, MODELS[0], REGIONS[0], 12));
    USERS.forEach(([userId, plan], i) => {
      const metadata = { ...(userId === undefined ? {} : { userId }), ...(plan === undefined ? {} : { plan }) };
      events.push({ eventType: 'active.users', customerId: CUSTOMER, value: 1, timestamp: at(hourNow + i * 1000), metadata });
    });
    // Other customers, in the current hour only (open periods: no webhook for them).
    for (const c of ['acme-labs', 'globex']) {
      events.push({ eventType: 'api.calls', customerId: c, value: 1, timestamp: at(hourNow) });
    }
    const r = await http(`${server.url}/usagebatch`, { headers: { 'x-apikey': key() }, body: events });
    assert.equal(r.status, 201, r.text);
    const trig = await http(`${server.url}/aggregations/trigger`, { method: 'POST', headers: { 'x-apikey': key() } });
    assert.equal(trig.status, 202, trig.text);

    // Every finalized hour's delivery fails twice (500), then the 1-entry schedule is exhausted: failed.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const all = await apiGet<Array<{ status: string }>>('/webhooks/deliveries?limit=100');
      if (all.length === PAST_HOURS.length && all.every((d) => d.status === 'failed')) break;
      assert.ok(Date.now() < deadline, `deliveries did not all fail in time: ${JSON.stringify(all.map((d) => d.status))}`);
      await new Promise((res) => setTimeout(res, 200));
    }

    ({ browser, page } = await openDashboardPage(new URL(server.url).origin, problems));
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await receiver?.close();
    await cleanupServerProcesses();
  });

  /** The plotted (x, y) pairs of every customer chart, checked against the API and the test's own numbers. */
  async function checkCharts(bucket: 'hour' | 'day'): Promise<void> {
    await page.waitForSelector('#series-charts[data-state="ready"]');
    // Each card's data table, by the card's event type.
    const charts: Record<string, ChartTable | null> = {};
    for (const card of await page.$$('#series-charts .chart-card')) {
      charts[String(await card.getAttribute('data-event-type'))] = await card.evaluate(readChartTable);
    }
    assert.deepEqual(Object.keys(charts).sort(), ['active.users', 'api.calls', 'llm.tokens', 'response.time.ms', 'storage.bytes']);
    for (const [eventType, chart] of Object.entries(charts)) {
      assert.ok(chart, `${eventType} (${bucket}): no data table under the chart`);
      const api = await apiGet<SeriesJson>(`/customers/${CUSTOMER}/usage/series?eventType=${eventType}&bucket=${bucket}`);
      assert.equal(chart.caption, `${eventType}: ${api.op} per ${bucket}`);
      const plotted = chart.x.map((x, i) => [x, chart.y[i]] as const).filter(([, y]) => y !== null);
      assert.deepEqual(
        plotted,
        api.points.map((p) => [Date.parse(p.t) / 1000, p.value]),
        `${eventType} (${bucket}): chart vs API`,
      );
      const mine = expected(events, eventType, api.op, bucket === 'hour' ? HOUR : DAY);
      assert.deepEqual(
        plotted,
        [...mine.entries()].sort((a, b) => a[0] - b[0]).map(([t, v]) => [t / 1000, v]),
        `${eventType} (${bucket}): chart vs ingested events`,
      );
      // The x grid covers the whole range, one slot per bucket, from the API's first bucket.
      assert.equal(chart.x.length, bucket === 'hour' ? 7 * 24 : 30);
      assert.equal(chart.x[0], Date.parse(api.from) / 1000);
      const step = bucket === 'hour' ? 3600 : 86400;
      assert.ok(
        chart.x.every((x, i) => i === 0 || x - chart.x[i - 1]! === step),
        `${eventType} (${bucket}): buckets not ${step} s apart`,
      );

      // The canvas really drew the bars: count pixels of the series colour (the legend's marker shows it).
      const painted = await paintedPixels(page, `.chart[data-event-type="${eventType}"]`, 1);
      assert.match(painted.color, /^rgb\(\d+, \d+, \d+\)$/, `${eventType} (${bucket}): no legend marker colour`);
      assert.ok(painted.n > 30, `${eventType} (${bucket}): only ${painted.n} pixels of ${painted.color} on the canvas`);
    }
  }

  it('signs in, shows a customer with charts matching the API, and retries a failed delivery', async () => {
    await page.goto(`${server.url}/dashboard`);
    await page.waitForSelector('#sign-in:not([hidden])');
    await page.fill('#api-key', key());
    await page.click('#sign-in-button');
    await page.waitForSelector('#overview-stats');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('meterhook.apiKey')), key());
    const stats = await apiGet<{ events: { total: number } }>('/stats');
    assert.equal(stats.events.total, events.length);
    assert.equal((await page.textContent('[data-stat="events"] .stat-value'))?.trim(), String(events.length));
    assert.equal((await page.textContent('[data-stat="endpoints"] .stat-value'))?.trim(), '1 / 1');
    assert.equal((await page.textContent('#delivery-counts [data-status="failed"] .status-count'))?.trim(), String(PAST_HOURS.length));
    await page.waitForSelector('#overview-chart canvas');
    const overview = await page.locator('#overview-chart').locator('..').evaluate(readChartTable);
    assert.ok(overview, 'no data table under the overview chart');
    assert.equal(overview.x.length, 7 * 24);
    assert.equal(
      overview.y.reduce((a: number, v) => a + (v ?? 0), 0),
      events.length,
      'the overview chart plots every event',
    );
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-overview.png'), fullPage: true });

    // Customers: prefix search, then open one.
    await page.click('#nav a[data-section="customers"]');
    await page.waitForSelector('#customers tbody tr');
    await page.fill('#customer-search', 'acme');
    await page.waitForFunction(() => document.querySelectorAll('#customers tbody tr').length === 2);
    assert.deepEqual(await page.$$eval('#customers tbody tr', (rows) => rows.map((r: any) => r.dataset.customerId)), [
      'acme-corp',
      'acme-labs',
    ]);
    await page.click(`#customers a:text-is("${CUSTOMER}")`);
    await page.waitForSelector('#customer-title');

    await checkCharts('hour');
    // Real-time usage of the current period, as the API reports it.
    await page.waitForSelector('#current-usage table, #current-usage .empty');
    const usage = await apiGet<{ events: Record<string, number> }>(`/customers/${CUSTOMER}/usage?period=monthly`);
    for (const [t, v] of Object.entries(usage.events)) {
      const cell = await page.textContent(`#current-usage tr[data-event-type="${t}"] td:nth-child(3)`);
      assert.equal(cell?.replace(/,/g, ''), String(Math.round(v * 1000) / 1000), `${t} current usage`);
    }
    // Aggregations with final/revision.
    await page.waitForSelector('#aggregations tbody tr');
    const finals = await page.$$eval(
      '#aggregations tbody tr',
      (rows) => rows.filter((r: any) => String(r.textContent).includes('final')).length,
    );
    assert.ok(finals >= PAST_HOURS.length, `only ${finals} final aggregations shown`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });

    await page.selectOption('#series-bucket', 'day');
    await checkCharts('day');

    // Deliveries: the receiver recovers; retry one failed delivery from the UI.
    receiver.setResponder(() => ({ status: 200, body: 'ok' }));
    await page.click('#nav a[data-section="deliveries"]');
    await page.selectOption('#delivery-status', 'failed');
    await page.waitForFunction(
      (n) => document.querySelectorAll('#deliveries tbody tr[data-status="failed"]').length === n,
      PAST_HOURS.length,
    );
    const row = page.locator('#deliveries tbody tr').first();
    const deliveryId = await row.getAttribute('data-delivery-id');
    assert.ok(deliveryId);
    // Normally two scheduled attempts (the first and its one retry); fewer if a slow machine hit the deadline.
    const scheduled = (await apiGet<{ attempts: unknown[] }>(`/webhooks/deliveries/${deliveryId}`)).attempts.length;
    assert.ok(scheduled >= 1 && scheduled <= 2, `${scheduled} scheduled attempts`);
    assert.equal((await row.locator('td').nth(3).textContent())?.trim(), String(scheduled));
    assert.equal((await row.locator('td').nth(4).textContent())?.trim(), '500');
    assert.match((await row.locator('td').nth(5).textContent()) ?? '', /500/);
    const requestsBefore = receiver.requests.length;
    await row.locator('button[data-action="retry"]').click();
    await page.waitForSelector(`#deliveries tr[data-delivery-id="${deliveryId}"][data-status="succeeded"]`);
    assert.equal(receiver.requests.length, requestsBefore + 1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-deliveries.png'), fullPage: true });
    const afterRetry = await apiGet<{ status: string }>(`/webhooks/deliveries/${deliveryId}`);
    assert.equal(afterRetry.status, 'succeeded');

    // Its attempts: the scheduled 500s, then the manual 200.
    await page.click(`#deliveries tr[data-delivery-id="${deliveryId}"] a:text-is("Attempts")`);
    await page.waitForSelector('#attempts tbody tr');
    const attempts = await page.$$eval('#attempts tbody tr', (rows) =>
      rows.map((r: any) => [...r.querySelectorAll('td')].map((td: any) => String(td.textContent))),
    );
    assert.deepEqual(
      attempts.map((a) => [a[3], a[7]]),
      [...Array.from({ length: scheduled }, () => ['500', 'scheduled']), ['200', 'manual']],
    );
    assert.equal(await page.getAttribute('#delivery-detail', 'data-status'), 'succeeded');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-delivery.png'), fullPage: true });

    // Configuration: shown, with the secret redacted.
    await page.click('#nav a[data-section="config"]');
    const configText = (await page.textContent('#config-json')) ?? '';
    assert.match(configText, /"api\.calls"/);
    assert.ok(!configText.includes(SECRET), 'the configuration view shows the webhook secret');
    // Endpoints are named by the secret's fingerprint; no form of the secret reaches the page.
    const fingerprint = `sha256:${createHash('sha256').update(SECRET, 'utf8').digest('hex').slice(0, 16)}`;
    assert.equal((await page.textContent('#config-endpoints [data-fingerprint="billing"]'))?.trim(), fingerprint);
    const pageHtml = await page.content();
    for (const form of [SECRET, Buffer.from(SECRET).toString('base64'), Buffer.from(SECRET).toString('hex')]) {
      assert.ok(!pageHtml.includes(form), 'the configuration page holds a form of the webhook secret');
    }
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-config.png'), fullPage: true });

    // Overview counts follow.
    await page.click('#nav a[data-section="overview"]');
    await page.waitForSelector('#delivery-counts');
    assert.equal((await page.textContent('#delivery-counts [data-status="succeeded"] .status-count'))?.trim(), '1');
    assert.equal((await page.textContent('#delivery-counts [data-status="failed"] .status-count'))?.trim(), String(PAST_HOURS.length - 1));

    // Signing out forgets the key.
    await page.click('#sign-out');
    await page.waitForSelector('#sign-in:not([hidden])');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('meterhook.apiKey')), null);

    assert.deepEqual(problems, []);
  });

  /** A meter's breakdown table, cell by cell ("(none)" marked), against the API's groups of the monthly period. */
  async function checkBreakdown(eventType: string, keys: string[]): Promise<Array<{ dims: string[]; value: string; count: string }>> {
    const usage = await apiGet<{ groups: Record<string, GroupJson[]> }>(`/customers/${CUSTOMER}/usage?period=monthly`);
    const rows = await page.$$eval(`.group-breakdown[data-event-type="${eventType}"] tbody tr`, (trs) =>
      trs.map((tr: any) => {
        const tds: any[] = [...tr.querySelectorAll('td')];
        return {
          overflow: tr.dataset.overflow === 'true',
          cells: tds.map((td) => String(td.textContent)),
          marked: tds.map((td) => !!td.querySelector('.dim-marker')),
        };
      }),
    );
    const want = (usage.groups[eventType] ?? []).map((g) => ({
      overflow: g.overflow === true,
      cells: [...(g.overflow ? [OVERFLOW] : keys.map((k) => g.dimensions[k] ?? '(none)')), g.valueDecimal, String(g.count)],
      marked: [...(g.overflow ? [false] : keys.map((k) => g.dimensions[k] === null)), false, false],
    }));
    const plain = (r: { cells: string[] }) => [...r.cells.slice(0, -2), ...r.cells.slice(-2).map((c) => c.replace(/,/g, ''))];
    const read = rows.map((r) => ({ ...r, cells: plain(r) }));
    assert.deepEqual(read, want, `${eventType}: breakdown vs API`);
    return read
      .filter((r) => !r.overflow)
      .map((r) => ({ dims: r.cells.slice(0, keys.length), value: r.cells.at(-2)!, count: r.cells.at(-1)! }));
  }

  /** The chart split by `key`: one line per value (the 8 largest totals, in the API's order), against the API. */
  async function checkSplit(eventType: string, key: string, bucket: 'hour' | 'day'): Promise<string[]> {
    const sel = `.chart-card[data-event-type="${eventType}"] .group-chart[data-group-by="${key}"]`;
    await page.waitForSelector(`${sel} canvas`);
    const table = await page.locator(sel).evaluate(readChartTable);
    assert.ok(table, `${eventType} by ${key}: no data table`);
    const api = await apiGet<SeriesJson>(`/customers/${CUSTOMER}/usage/series?eventType=${eventType}&bucket=${bucket}&groupBy=${key}`);
    const groups = api.groups ?? [];
    const size = (g: (typeof groups)[number]) => g.points.reduce((a, p) => a + Math.abs(p.value), 0);
    const top = new Set([...groups].sort((a, b) => size(b) - size(a)).slice(0, 8));
    const drawn = groups.filter((g) => top.has(g));
    const labels = drawn.map((g) => (g.overflow ? OVERFLOW : (g.value ?? '(none)')));
    assert.equal(table.caption, `${eventType}: ${api.op} per ${bucket} by ${key}`);
    assert.deepEqual(table.labels, labels, `${eventType} by ${key}: one column per drawn group`);
    drawn.forEach((g, i) => {
      const plotted = table.x.map((x, j) => [x, table.columns[i]![j]] as const).filter(([, y]) => y !== null);
      assert.deepEqual(
        plotted,
        g.points.map((p) => [Date.parse(p.t) / 1000, p.value]),
        `${eventType} by ${key}: ${labels[i]}`,
      );
    });
    // uPlot's legend: the time, then one entry per line, each named as text.
    const legend = await page.$$eval(`${sel} .u-legend .u-series .u-label`, (els) => els.map((e: any) => String(e.textContent)));
    assert.deepEqual(legend.slice(1), labels);
    const note = await page.$$eval(`${sel} .group-note`, (els) => els.map((e: any) => String(e.textContent)));
    const left = groups.length - drawn.length;
    assert.deepEqual(
      note,
      left ? [`${left} more value${left === 1 ? '' : 's'} of ${key} not drawn: the 8 with the largest totals are.`] : [],
    );
    for (const [i, g] of drawn.entries()) {
      if (g.overflow) continue; // its grey is also the axes'
      const painted = await paintedPixels(page, `${sel} .chart`, i + 1);
      assert.ok(painted.n > 5, `${eventType} by ${key}, ${labels[i]}: only ${painted.n} pixels of ${painted.color}`);
    }
    return labels;
  }

  it("shows a meter's groups: a breakdown table and a chart line per group value, user values as text only", async () => {
    await page.goto(`${server.url}/dashboard#/customers/${CUSTOMER}`);
    await page.waitForSelector('#sign-in:not([hidden])');
    await page.fill('#api-key', key());
    await page.click('#sign-in-button');
    await page.waitForSelector('.group-breakdown[data-event-type="active.users"]');
    await page.waitForSelector('#series-charts[data-state="ready"]');
    const title = await page.title();

    // llm.tokens: ten groups and the overflow row, exact totals; each matches the test's own sums.
    const tokens = await checkBreakdown('llm.tokens', ['model', 'region']);
    assert.equal(tokens.length, MAX_GROUPS_PER_HOUR);
    for (const r of tokens) {
      const mine = events.filter(
        (e) =>
          e.eventType === 'llm.tokens' && dim(e.metadata?.model) === dimOf(r.dims[0]!) && dim(e.metadata?.region) === dimOf(r.dims[1]!),
      );
      assert.equal(Number(r.value), Number(mine.reduce((a, e) => a + e.value, 0).toFixed(6)), `group ${r.dims.join('/')}`);
      assert.equal(Number(r.count), mine.length);
    }
    assert.ok(
      tokens.some((r) => r.dims[0] === HOSTILE && r.dims[1] === '(none)'),
      'the hostile model is shown as text',
    );
    assert.ok(
      tokens.some((r) => r.dims[0] === 'gpt-4o' && r.value === '1000.3'),
      'an exact group total',
    );
    assert.equal(await page.textContent('.group-breakdown[data-event-type="llm.tokens"] tfoot td'), '5,555.3');
    // active.users: distinct users per plan (3 without a plan, 1 free, 2 pro), 6 in all.
    const users = await checkBreakdown('active.users', ['plan']);
    assert.deepEqual(
      users.map((r) => [r.dims[0], r.value]),
      [
        ['(none)', '3'],
        ['free', '1'],
        ['pro', '2'],
      ],
    );
    assert.equal(await page.textContent('.group-breakdown[data-event-type="active.users"] thead th.num'), 'Distinct userId');
    assert.equal(await page.textContent('.group-breakdown[data-event-type="active.users"] tfoot td'), '6');
    assert.equal(await page.textContent('#current-usage tr[data-event-type="active.users"] td:nth-child(2)'), 'unique (userId)');

    // The split charts: by model (11 values, 8 drawn), then by region after choosing it; by plan.
    const byModel = await checkSplit('llm.tokens', 'model', 'hour');
    assert.ok(byModel.includes(HOSTILE));
    await page.selectOption('.chart-card[data-event-type="llm.tokens"] select.group-key', 'region');
    assert.deepEqual(await checkSplit('llm.tokens', 'region', 'hour'), ['(none)', 'eu', 'us', OVERFLOW]);
    assert.deepEqual(await checkSplit('active.users', 'plan', 'hour'), ['(none)', 'free', 'pro']);
    assert.equal(await page.$('.chart-card[data-event-type="active.users"] select.group-key'), null, 'one key: no selector');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-groups.png'), fullPage: true });
    await page.selectOption('#series-bucket', 'day');
    await page.waitForSelector('#series-charts[data-state="ready"]');
    assert.deepEqual(await checkSplit('llm.tokens', 'model', 'day'), byModel);

    // The hostile value stayed text: no element made from it, no handler ran.
    assert.equal(await page.$$eval('#view img', (els) => els.length), 0);
    assert.equal(await page.title(), title);
    assert.deepEqual(problems, []);
  });
});
