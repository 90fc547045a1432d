// What the browser suites read from the dashboard the way a user's browser gets it: a headless Chromium page
// that records console errors, page errors and requests to other origins; a chart's folded data table; how
// many pixels of a series' legend colour its canvas holds. Must never reach into the page's modules (the
// page has no test hook) nor send a request anywhere but the server under test.

import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';

// Browser globals, used only inside page.evaluate callbacks (they run in the page; tsconfig has no DOM lib).
declare const document: any;
declare const getComputedStyle: any;

export const CHROMIUM = '/usr/bin/chromium';

/** A chart's data table, as the page renders it: caption, bucket starts (epoch seconds), one column per series. */
export interface ChartTable {
  caption: string;
  x: number[];
  /** The first series' values (null: "—"). */
  y: Array<number | null>;
  labels: string[];
  columns: Array<Array<number | null>>;
}

/** Reads the first data table (`details.chart-data`) inside `root`; runs in the page. */
export function readChartTable(root: any): ChartTable | null {
  const details = root.querySelector('details.chart-data');
  if (!details) return null;
  const rows: any[] = [...details.querySelectorAll('tbody tr')];
  const labels: string[] = [...details.querySelectorAll('thead th')].slice(1).map((th: any) => String(th.textContent));
  const columns = labels.map((_, i) =>
    rows.map((tr) => {
      const data = tr.querySelectorAll('td')[i]?.querySelector('data');
      return data ? Number(data.getAttribute('value')) : null;
    }),
  );
  return {
    caption: String(details.querySelector('caption')?.textContent),
    x: rows.map((tr) => Date.parse(tr.querySelector('th time').getAttribute('datetime')) / 1000),
    y: columns[0] ?? [],
    labels,
    columns,
  };
}

/**
 * Pixels of the `nth` legend series' colour (1: the first after the x series) on the canvas of the chart
 * `selector` matches: evidence the series was really drawn. The colour comes from uPlot's legend marker.
 */
export async function paintedPixels(page: Page, selector: string, nth: number): Promise<{ color: string; n: number }> {
  return page.evaluate(
    ([sel, i]) => {
      const chart = document.querySelector(sel);
      const canvas = chart?.querySelector('canvas');
      const marker = chart?.querySelectorAll('.u-legend .u-series')[i]?.querySelector('.u-marker');
      if (!canvas || !marker) return { color: 'none', n: -1 };
      const color: string = getComputedStyle(marker).borderTopColor; // "rgb(r, g, b)"
      const want = (color.match(/\d+/g) ?? []).slice(0, 3).map(Number);
      const data: Uint8ClampedArray = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let p = 0; p < data.length; p += 4) {
        if (
          data[p + 3]! > 100 &&
          Math.abs(data[p]! - want[0]!) < 24 &&
          Math.abs(data[p + 1]! - want[1]!) < 24 &&
          Math.abs(data[p + 2]! - want[2]!) < 24
        )
          n++;
      }
      return { color, n };
    },
    [selector, nth] as const,
  );
}

/**
 * A headless Chromium and one page whose console errors, page errors, failed requests and requests to any
 * origin but `origin` are pushed to `problems`.
 */
export async function openDashboardPage(origin: string, problems: string[]): Promise<{ browser: Browser; page: Page }> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith(`${origin}/`) && !u.startsWith('data:')) problems.push(`request to another origin: ${u}`);
  });
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
  return { browser, page };
}
