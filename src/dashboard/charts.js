// Owns the dashboard's charts: uPlot bar charts on a UTC time axis, their data tables, resizing and teardown.
// Must never fetch: views hand it the buckets and values to draw.
// @ts-check

import { h } from './dom.js';
import { fmtNum, fmtTime } from './format.js';

/** @typedef {import('uplot')} UPlot */
/** @typedef {import('uplot').Options} UPlotOptions */

/** uPlot itself, loaded before the modules by index.html's classic script (vendor/uPlot.iife.min.js). */
const uPlot = /** @type {typeof import('uplot')} */ (/** @type {any} */ (globalThis).uPlot);

const PALETTE = /** @type {const} */ (['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#dc2626', '#65a30d']);

/**
 * The colour of the i-th chart on a page, "#rrggbb".
 * @param {number} i
 * @returns {string}
 */
export const seriesColor = (i) => PALETTE[i % PALETTE.length] ?? PALETTE[0];

/** @type {Set<UPlot>} */
const liveCharts = new Set();

/** Destroys every chart drawn so far (before a view, or a chart section, is drawn again). */
export function destroyCharts() {
  for (const c of liveCharts) c.destroy();
  liveCharts.clear();
}

/** @param {number} ts epoch seconds */
const utc = (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC');
/** @param {number} n */
const pad2 = (n) => String(n).padStart(2, '0');

/**
 * Time-axis labels in UTC, 24-hour: "11-24" at midnight, "14:00" otherwise.
 * @param {UPlot} _u
 * @param {number[]} splits epoch seconds
 * @returns {string[]}
 */
function timeLabels(_u, splits) {
  return splits.map((ts) => {
    const d = new Date(ts * 1000);
    return d.getUTCHours() === 0 && d.getUTCMinutes() === 0
      ? `${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`
      : `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  });
}

/**
 * One series of a bar chart.
 * @typedef {object} BarSeries
 * @property {string} label
 * @property {Array<number | null>} values one per bucket; null where a bucket has no data
 * @property {string} color "#rrggbb"
 */

/**
 * A bar chart in `container`. xs are epoch seconds.
 * @param {HTMLElement} container
 * @param {number[]} xs
 * @param {BarSeries[]} series
 * @param {{ height?: number }} [opts]
 * @returns {UPlot}
 */
export function barChart(container, xs, series, opts) {
  const bars = uPlot.paths.bars?.({ size: [0.7, 40], gap: 1 });
  return timeChart(container, xs, series, opts?.height, (s) => ({ fill: `${s.color}cc`, width: 1, paths: bars, points: { show: false } }));
}

/**
 * A line chart in `container`, one line per series (several series side by side, where bars would hide
 * each other); each bucket with data is a point, so a lone bucket shows too. xs are epoch seconds.
 * @param {HTMLElement} container
 * @param {number[]} xs
 * @param {BarSeries[]} series
 * @param {{ height?: number }} [opts]
 * @returns {UPlot}
 */
export function lineChart(container, xs, series, opts) {
  return timeChart(container, xs, series, opts?.height, (s) => ({ width: 2, points: { show: true, size: 6, fill: s.color } }));
}

/**
 * @param {HTMLElement} container
 * @param {number[]} xs
 * @param {BarSeries[]} series
 * @param {number | undefined} height
 * @param {(s: BarSeries) => Partial<import('uplot').Series>} style how each series is drawn
 * @returns {UPlot}
 */
function timeChart(container, xs, series, height, style) {
  const width = Math.max(300, container.clientWidth || 600);
  /** @type {UPlotOptions} */
  const options = {
    width,
    height: height || 220,
    tzDate: utc,
    cursor: { drag: { x: false, y: false } },
    legend: { show: true },
    scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
    axes: [
      { stroke: '#475569', grid: { stroke: '#e2e8f0', width: 1 }, ticks: { stroke: '#cbd5e1' }, values: timeLabels },
      { stroke: '#475569', grid: { stroke: '#e2e8f0', width: 1 }, ticks: { stroke: '#cbd5e1' }, size: 60 },
    ],
    series: [
      { label: 'time (UTC)', value: (_u, ts) => (ts == null ? '—' : fmtTime(new Date(ts * 1000).toISOString())) },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        ...style(s),
        /** @type {(u: UPlot, v: number | null) => string} */
        value: (_u, v) => (v == null ? '—' : fmtNum(v)),
      })),
    ],
  };
  const chart = new uPlot(options, [xs, ...series.map((s) => s.values)], container);
  liveCharts.add(chart);
  return chart;
}

/**
 * Destroys one chart (before its part of a view is drawn again).
 * @param {UPlot | null | undefined} chart
 */
export function destroyChart(chart) {
  if (!chart) return;
  liveCharts.delete(chart);
  chart.destroy();
}

window.addEventListener('resize', () => {
  for (const c of liveCharts) {
    const box = c.root.parentElement;
    if (box?.clientWidth) c.setSize({ width: Math.max(300, box.clientWidth), height: c.height });
  }
});

/**
 * Every bucket start from `fromIso` up to `toIso`, in epoch seconds.
 * @param {string} fromIso
 * @param {string} toIso
 * @param {number} stepSeconds
 * @returns {number[]}
 */
export function bucketGrid(fromIso, toIso, stepSeconds) {
  const out = [];
  const end = Date.parse(toIso) / 1000;
  for (let t = Date.parse(fromIso) / 1000; t <= end; t += stepSeconds) out.push(t);
  return out;
}

/**
 * A series' value in each bucket of the grid `xs` (epoch seconds); null where it has no point.
 * @param {number[]} xs
 * @param {Array<{ t: string, value: number }>} points
 * @returns {Array<number | null>}
 */
export function valuesOn(xs, points) {
  const byT = new Map(points.map((p) => [Date.parse(p.t) / 1000, p.value]));
  return xs.map((x) => byT.get(x) ?? null);
}

/**
 * A chart's numbers as a table, folded under it: one row per bucket, the time as <time datetime> and each
 * value as <data value> (unrounded, beside its formatted text), for screen readers and for copying.
 * @param {string} caption what the chart shows
 * @param {number[]} xs bucket starts, epoch seconds
 * @param {Array<{ label: string, values: Array<number | null> }>} series null: no data in that bucket
 * @returns {HTMLElement}
 */
export function chartTable(caption, xs, series) {
  return h(
    'details',
    { class: 'chart-data' },
    h('summary', { text: 'Data table' }),
    h(
      'div',
      { class: 'chart-data-rows' },
      h(
        'table',
        { class: 'table' },
        h('caption', { text: caption }),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col', text: 'Bucket start (UTC)' }),
            series.map((s) => h('th', { scope: 'col', class: 'num', text: s.label })),
          ),
        ),
        h(
          'tbody',
          {},
          xs.map((x, i) => {
            const iso = new Date(x * 1000).toISOString();
            return h(
              'tr',
              {},
              h('th', { scope: 'row' }, h('time', { datetime: iso, text: fmtTime(iso) })),
              series.map((s) => {
                const v = s.values[i];
                return h('td', { class: 'num' }, v === null || v === undefined ? '—' : h('data', { value: String(v), text: fmtNum(v) }));
              }),
            );
          }),
        ),
      ),
    ),
  );
}
