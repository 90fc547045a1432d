// Owns a meter's groups on the customer page: the breakdown table of a period's per-group totals, and the chart
// of its usage split by one groupBy key. Must never insert a dimension value as HTML: values are user data and
// reach the page as text nodes only.
// @ts-check

import * as api from './api.js';
import { bucketGrid, chartTable, destroyChart, lineChart, seriesColor, valuesOn } from './charts.js';
import { errorBox, h } from './dom.js';
import { fmtExact, fmtNum } from './format.js';

/** @typedef {import('./types.js').GroupSeries} GroupSeries */
/** @typedef {import('./types.js').GroupTotal} GroupTotal */
/** @typedef {import('./types.js').Meter} Meter */
/** @typedef {import('./types.js').UsageSeries} UsageSeries */

/** Most group lines one chart draws: those with the largest totals; the others are counted in a note. */
export const MAX_GROUP_LINES = 8;
/** The overflow group's name: the groups first seen after their hour held maxGroupsPerHour groups. */
export const OVERFLOW_LABEL = 'other (over the group limit)';
const OVERFLOW_TITLE = 'Groups first seen after their hour already held maxGroupsPerHour groups; their usage is counted here.';
const NONE_LABEL = '(none)';
const NONE_TITLE = 'No value: the key was missing, null, an object or an array';
const EMPTY_LABEL = '(empty)';
const OVERFLOW_COLOR = '#64748b';

/**
 * A meter's operator as the page names it: a unique meter with the field it counts.
 * @param {Meter | undefined} meter
 * @returns {string}
 */
export function meterOp(meter) {
  if (!meter) return '';
  return meter.op === 'unique' && meter.field ? `unique (${meter.field})` : meter.op;
}

/**
 * The keys a meter's usage can be split by over time: its groupBy keys; none for a unique meter with several,
 * whose distinct values are kept per whole group only.
 * @param {Meter | undefined} meter
 * @returns {string[]}
 */
export function splitKeys(meter) {
  const keys = meter?.groupBy || [];
  return meter?.op === 'unique' && keys.length > 1 ? [] : keys;
}

/**
 * A dimension value for a table cell: the value as text, or a marked "(none)" / "(empty)".
 * @param {string | null | undefined} value
 * @returns {HTMLElement | string}
 */
function dimensionCell(value) {
  if (value === null || value === undefined) return h('span', { class: 'dim-marker', title: NONE_TITLE, text: NONE_LABEL });
  if (value === '') return h('span', { class: 'dim-marker', title: 'The empty string', text: EMPTY_LABEL });
  return value;
}

/**
 * A group series' name in a legend or a table head.
 * @param {GroupSeries} g
 * @returns {string}
 */
function seriesLabel(g) {
  if (g.overflow) return OVERFLOW_LABEL;
  if (g.value === null) return NONE_LABEL;
  return g.value === '' ? EMPTY_LABEL : g.value;
}

/**
 * The dimension keys of a meter's groups: its groupBy, or (for a type no longer configured) the keys they carry.
 * @param {Meter | undefined} meter
 * @param {GroupTotal[]} groups
 * @returns {string[]}
 */
function keysOf(meter, groups) {
  if (meter?.groupBy?.length) return meter.groupBy;
  return [...new Set(groups.flatMap((g) => Object.keys(g.dimensions)))];
}

/**
 * A meter's groups in a period: one row per group (its dimensions, exact value, events), the overflow group last,
 * and the meter's total below.
 * @param {string} eventType
 * @param {Meter | undefined} meter
 * @param {GroupTotal[]} groups
 * @param {{ value: number | undefined, decimal: string | undefined, count: number | undefined }} total
 * @returns {HTMLElement}
 */
export function groupBreakdown(eventType, meter, groups, total) {
  const keys = keysOf(meter, groups);
  const span = Math.max(1, keys.length);
  const unique = meter?.op === 'unique';
  return h(
    'div',
    { class: 'group-breakdown', dataset: { eventType } },
    h('h3', {}, h('code', { text: eventType }), h('span', { class: 'muted small', text: ` by ${keys.join(', ')}` })),
    h(
      'table',
      { class: 'table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          keys.map((k) => h('th', { scope: 'col', dataset: { key: k } }, h('code', { text: k }))),
          h('th', { scope: 'col', class: 'num', text: unique ? `Distinct ${meter?.field || 'values'}` : 'Value' }),
          h('th', { scope: 'col', class: 'num', text: 'Events' }),
        ),
      ),
      h(
        'tbody',
        {},
        groups.map((g) =>
          h(
            'tr',
            { dataset: g.overflow ? { overflow: 'true' } : {} },
            g.overflow
              ? h('td', { colspan: span, class: 'overflow', title: OVERFLOW_TITLE, text: OVERFLOW_LABEL })
              : keys.map((k) => h('td', { class: 'wrap' }, dimensionCell(g.dimensions[k]))),
            h('td', { class: 'num', text: fmtExact(g.valueDecimal, g.value) }),
            h('td', { class: 'num', text: fmtNum(g.count) }),
          ),
        ),
      ),
      h(
        'tfoot',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'row', colspan: span, text: 'All groups' }),
          h('td', { class: 'num', text: fmtExact(total.decimal, total.value) }),
          h('td', { class: 'num', text: fmtNum(total.count) }),
        ),
      ),
    ),
    unique
      ? h('p', { class: 'muted small', text: 'A value seen in several groups counts once in each of them and once in the total.' })
      : null,
  );
}

/**
 * The groups a chart draws: the MAX_GROUP_LINES with the largest totals over the range, in the API's order.
 * @param {GroupSeries[]} groups
 * @returns {GroupSeries[]}
 */
function drawnGroups(groups) {
  if (groups.length <= MAX_GROUP_LINES) return groups;
  const size = (/** @type {GroupSeries} */ g) => g.points.reduce((a, p) => a + Math.abs(p.value), 0);
  const kept = new Set(
    groups
      .map((g, i) => ({ g, i, n: size(g) }))
      .sort((a, b) => b.n - a.n || a.i - b.i)
      .slice(0, MAX_GROUP_LINES)
      .map((x) => x.g),
  );
  return groups.filter((g) => kept.has(g));
}

/**
 * Appends to a meter's chart card its usage split by one groupBy key: a key selector when it has several, one
 * line per value, and the data table. `first` is the series already fetched with groupBy set to the first key.
 * @param {HTMLElement} card
 * @param {object} o
 * @param {string} o.customerId
 * @param {UsageSeries} o.first
 * @param {string[]} o.keys the keys to offer (splitKeys)
 * @param {number} o.step the bucket, in seconds
 * @param {() => boolean} o.current whether the view is still shown
 */
export function appendGroupChart(card, { customerId, first, keys, step, current }) {
  const keySel = h(
    'select',
    { class: 'group-key', 'aria-label': `Split ${first.eventType} by` },
    keys.map((k) => h('option', { value: k, text: k, selected: k === first.groupBy })),
  );
  const body = h('div', { class: 'group-chart-body' });
  card.append(
    h(
      'div',
      { class: 'group-chart', dataset: { groupBy: first.groupBy || '' } },
      h(
        'div',
        { class: 'toolbar' },
        h('span', { class: 'muted small', text: 'Split by ' }),
        keys.length > 1 ? keySel : h('code', { text: keys[0] }),
      ),
      body,
    ),
  );
  /** @type {import('uplot') | null} */
  let chart = null;
  let seq = 0;
  const draw = (/** @type {UsageSeries} */ s) => {
    destroyChart(chart);
    chart = null;
    body.replaceChildren();
    /** @type {HTMLElement} */ (body.parentElement).dataset.groupBy = s.groupBy || '';
    chart = drawGroupLines(body, s, step);
  };
  keySel.addEventListener('change', async () => {
    const mine = ++seq;
    body.replaceChildren(h('p', { class: 'muted', text: 'Loading…' }));
    try {
      const s = await api.usageSeries(customerId, {
        eventType: first.eventType,
        bucket: first.bucket,
        from: first.from,
        to: first.to,
        groupBy: keySel.value,
      });
      if (current() && mine === seq && card.isConnected) draw(s);
    } catch (err) {
      if (current() && mine === seq) body.replaceChildren(errorBox(err));
    }
  });
  draw(first);
}

/**
 * Draws a split series into `body`: the chart, a note of the values left out, and the data table.
 * @param {HTMLElement} body
 * @param {UsageSeries} s
 * @param {number} step
 * @returns {import('uplot') | null}
 */
function drawGroupLines(body, s, step) {
  const groups = s.groups || [];
  const box = h('div', { class: 'chart', dataset: { series: '0' } });
  body.append(box);
  if (groups.length === 0) {
    box.append(h('p', { class: 'empty', text: 'No usage in this range.' }));
    return null;
  }
  const xs = bucketGrid(s.from, s.to, step);
  const series = drawnGroups(groups).map((g, i) => ({
    label: seriesLabel(g),
    values: valuesOn(xs, g.points),
    color: g.overflow ? OVERFLOW_COLOR : seriesColor(i),
  }));
  box.dataset.series = String(series.length);
  const chart = lineChart(box, xs, series, { height: 260 });
  const left = groups.length - series.length;
  if (left > 0) {
    const text = `${fmtNum(left)} more value${left === 1 ? '' : 's'} of ${s.groupBy} not drawn:`;
    body.append(h('p', { class: 'muted small group-note', text: `${text} the ${MAX_GROUP_LINES} with the largest totals are.` }));
  }
  body.append(chartTable(`${s.eventType}: ${s.op} per ${s.bucket} by ${s.groupBy}`, xs, series));
  return chart;
}
