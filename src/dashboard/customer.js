// Owns a customer's page: the current period's real-time usage, usage over time per event type, its aggregations;
// a meter's groups through groups.js.
// Must never change anything on the server: the page only reads.
// @ts-check

import * as api from './api.js';
import { barChart, bucketGrid, chartTable, destroyCharts, seriesColor, valuesOn } from './charts.js';
import { badge, errorBox, h, pagedList } from './dom.js';
import { fmtExact, fmtNum, fmtTime } from './format.js';
import { appendGroupChart, groupBreakdown, meterOp, splitKeys } from './groups.js';

/** @typedef {import('./types.js').Aggregation} Aggregation */
/** @typedef {import('./types.js').Bucket} Bucket */
/** @typedef {import('./types.js').DashboardConfig} DashboardConfig */
/** @typedef {import('./types.js').Meter} Meter */
/** @typedef {import('./types.js').UsageSeries} UsageSeries */
/** @typedef {import('./types.js').ViewContext} ViewContext */
/** @typedef {import('./types.js').WebhookStatus} WebhookStatus */

/** @type {Record<Bucket, Array<[label: string, days: number]>>} Range presets per bucket. */
const PRESETS = {
  hour: [
    ['24 h', 1],
    ['7 days', 7],
    ['31 days', 31],
  ],
  day: [
    ['30 days', 30],
    ['90 days', 90],
    ['1 year', 365],
  ],
};

/**
 * @param {ViewContext} ctx
 * @param {string} customerId
 */
export async function customerView(ctx, customerId) {
  const { view } = ctx;
  view.append(
    h('p', {}, h('a', { href: '#/customers', text: '← Customers' })),
    h('h1', {}, 'Customer ', h('code', { id: 'customer-title', text: customerId })),
  );
  /** @type {DashboardConfig} */
  let cfg;
  try {
    cfg = await api.loadConfig();
  } catch (err) {
    if (ctx.current()) view.append(errorBox(err));
    return;
  }
  if (!ctx.current()) return;
  const periods = cfg.periods || ['monthly'];
  currentUsage(ctx, customerId, cfg, periods);
  usageOverTime(ctx, customerId, cfg.events || {});
  customerAggregations(ctx, customerId, periods);
}

/**
 * The current period's usage, as the API computes it in real time.
 * @param {ViewContext} ctx
 * @param {string} customerId
 * @param {DashboardConfig} cfg
 * @param {string[]} periods
 */
function currentUsage(ctx, customerId, cfg, periods) {
  const preferred = periods.includes('monthly') ? 'monthly' : periods[0];
  const periodSel = h(
    'select',
    { id: 'usage-period', 'aria-label': 'Period' },
    periods.map((p) => h('option', { value: p, text: p, selected: p === preferred })),
  );
  const usageBox = h('div', { id: 'current-usage' });
  ctx.view.append(
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', { text: 'Current period (real time)' }), periodSel), usageBox),
  );
  const events = cfg.events || {};
  async function loadUsage() {
    usageBox.replaceChildren(h('p', { class: 'muted', text: 'Loading…' }));
    try {
      const u = await api.customerUsage(customerId, periodSel.value);
      if (!ctx.current()) return;
      const rows = Object.keys(u.events);
      usageBox.replaceChildren(
        h(
          'p',
          { class: 'muted' },
          `${u.period} ${u.periodKey}: ${fmtTime(u.periodStart)} – ${fmtTime(u.periodEnd)} `,
          badge(u.final ? 'final' : 'open'),
        ),
        rows.length === 0
          ? h('p', { class: 'empty', text: 'No usage in this period.' })
          : h(
              'table',
              { class: 'table' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  h('th', { text: 'Event type' }),
                  h('th', { text: 'Operator' }),
                  h('th', { class: 'num', text: 'Value' }),
                  h('th', { class: 'num', text: 'Events' }),
                ),
              ),
              h(
                'tbody',
                {},
                rows.map((t) =>
                  h(
                    'tr',
                    { dataset: { eventType: t } },
                    h('td', {}, h('code', { text: t })),
                    h('td', { text: meterOp(events[t]) }),
                    h('td', { class: 'num', text: fmtExact(u.eventsDecimal?.[t], u.events[t]) }),
                    h('td', { class: 'num', text: fmtNum(u.eventCounts[t]) }),
                  ),
                ),
              ),
            ),
        // Each meter with groupBy and data: its groups, in the order of the table above.
        ...rows
          .filter((t) => u.groups?.[t]?.length)
          .map((t) =>
            groupBreakdown(t, events[t], u.groups?.[t] || [], {
              value: u.events[t],
              decimal: u.eventsDecimal?.[t],
              count: u.eventCounts[t],
            }),
          ),
      );
    } catch (err) {
      if (ctx.current()) usageBox.replaceChildren(errorBox(err));
    }
  }
  periodSel.addEventListener('change', loadUsage);
  loadUsage();
}

/**
 * A chart per event type over a range, in hour or day buckets, with range presets and dates; a meter with
 * groupBy also gets its usage split by one of its keys.
 * @param {ViewContext} ctx
 * @param {string} customerId
 * @param {Record<string, Meter>} meters the configured event types
 */
function usageOverTime(ctx, customerId, meters) {
  const types = Object.keys(meters);
  /** @type {{ bucket: Bucket, from: string | null, to: string | null }} */
  const state = { bucket: 'hour', from: null, to: null };
  const bucketSel = h(
    'select',
    { id: 'series-bucket', 'aria-label': 'Bucket' },
    h('option', { value: 'hour', text: 'Hourly' }),
    h('option', { value: 'day', text: 'Daily' }),
  );
  const presetBox = h('div', { class: 'presets', id: 'series-presets' });
  const fromIn = h('input', { type: 'date', id: 'series-from', 'aria-label': 'From (UTC date)' });
  const toIn = h('input', { type: 'date', id: 'series-to', 'aria-label': 'To (UTC date)' });
  const apply = h('button', { class: 'button', type: 'button', text: 'Apply', id: 'series-apply' });
  const rangeNote = h('span', { class: 'muted small', id: 'series-range' });
  const charts = h('div', { class: 'charts', id: 'series-charts' });
  ctx.view.append(
    h(
      'section',
      { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', { text: 'Usage over time' }), rangeNote),
      h('div', { class: 'toolbar' }, bucketSel, presetBox, h('span', { class: 'range' }, fromIn, '→', toIn, apply)),
      charts,
    ),
  );

  function renderPresets() {
    presetBox.replaceChildren(
      ...PRESETS[state.bucket].map(([label, days]) =>
        h('button', {
          class: 'button small',
          type: 'button',
          text: label,
          onclick: () => {
            const now = Date.now();
            state.to = null;
            state.from = new Date(now - days * 86400000 + (state.bucket === 'hour' ? 3600000 : 86400000)).toISOString();
            loadSeries();
          },
        }),
      ),
    );
  }
  bucketSel.addEventListener('change', () => {
    state.bucket = bucketSel.value === 'day' ? 'day' : 'hour';
    state.from = null;
    state.to = null;
    renderPresets();
    loadSeries();
  });
  apply.addEventListener('click', () => {
    state.from = fromIn.value || null;
    state.to = toIn.value ? `${toIn.value}T23:59:59.999Z` : null;
    loadSeries();
  });

  let seriesSeq = 0;
  async function loadSeries() {
    const mine = ++seriesSeq;
    destroyCharts();
    charts.replaceChildren(h('p', { class: 'muted', text: 'Loading…' }));
    charts.dataset.state = 'loading';
    // One failed type (say, a unique meter whose bucket period is not configured) shows its error in its card.
    /** @type {Array<UsageSeries | { eventType: string, error: unknown }>} */
    const answers = await Promise.all(
      types.map((t) =>
        api
          .usageSeries(customerId, { eventType: t, bucket: state.bucket, from: state.from, to: state.to, groupBy: splitKeys(meters[t])[0] })
          .catch((error) => ({ eventType: t, error })),
      ),
    );
    if (!ctx.current() || mine !== seriesSeq) return;
    const results = /** @type {UsageSeries[]} */ (answers.filter((a) => !('error' in a)));
    const failed = answers.find((a) => 'error' in a);
    if (failed && 'error' in failed && results.length === 0) {
      charts.replaceChildren(errorBox(failed.error));
      charts.dataset.state = 'error';
      return;
    }
    charts.replaceChildren();
    if (answers.length === 0) charts.append(h('p', { class: 'empty', text: 'No event types are configured.' }));
    const first = results[0];
    if (first) {
      rangeNote.textContent = `${fmtTime(first.from)} – ${fmtTime(first.to)}, ${state.bucket === 'hour' ? 'hourly' : 'daily'} buckets`;
      fromIn.value = first.from.slice(0, 10);
      toIn.value = first.to.slice(0, 10);
    }
    const step = state.bucket === 'hour' ? 3600 : 86400;
    answers.forEach((s, i) => {
      if ('error' in s) charts.append(errorCard(s.eventType, s.error));
      else appendSeriesCard(charts, s, i, step, meters[s.eventType], customerId, ctx.current);
    });
    charts.dataset.state = 'ready';
  }

  renderPresets();
  loadSeries();
}

/**
 * An event type's card whose series could not be read.
 * @param {string} eventType
 * @param {unknown} err
 * @returns {HTMLElement}
 */
function errorCard(eventType, err) {
  return h('div', { class: 'chart-card', dataset: { eventType } }, h('h3', {}, h('code', { text: eventType })), errorBox(err));
}

/**
 * Appends one event type's chart, in its card, to `charts`; `i` picks its colour. A series split by a groupBy
 * key (s.groups) adds the split chart below.
 * @param {HTMLElement} charts
 * @param {UsageSeries} s
 * @param {number} i
 * @param {number} step the bucket, in seconds
 * @param {Meter | undefined} meter
 * @param {string} customerId
 * @param {() => boolean} current
 */
function appendSeriesCard(charts, s, i, step, meter, customerId, current) {
  const box = h('div', { class: 'chart', dataset: { eventType: s.eventType, points: String(s.points.length) } });
  const card = h(
    'div',
    { class: 'chart-card', dataset: { eventType: s.eventType } },
    h('h3', {}, h('code', { text: s.eventType }), h('span', { class: 'muted small', text: ` ${meterOp(meter) || s.op} per ${s.bucket}` })),
    box,
  );
  charts.append(card); // before drawing: uPlot takes its width from the card
  if (s.points.length === 0) box.append(h('p', { class: 'empty', text: 'No usage in this range.' }));
  else {
    const xs = bucketGrid(s.from, s.to, step);
    const values = valuesOn(xs, s.points);
    barChart(box, xs, [{ label: s.op, values, color: seriesColor(i) }]);
    card.append(chartTable(`${s.eventType}: ${s.op} per ${s.bucket}`, xs, [{ label: s.op, values }]));
  }
  if (s.groups) appendGroupChart(card, { customerId, first: s, keys: splitKeys(meter), step, current });
}

/**
 * An aggregation's webhook state: delivered, failing (with attempts), or waiting.
 * @param {WebhookStatus} ws
 * @returns {HTMLElement | string}
 */
function webhookBadge(ws) {
  if (ws.delivered) return badge(ws.dryRun ? 'delivered (dry run)' : 'delivered', 'succeeded');
  if (ws.lastError) return badge(`not delivered, ${ws.attempts} attempt${ws.attempts === 1 ? '' : 's'}`, 'failed');
  // No attempt: nothing to send to (no matching endpoint), or not sent yet.
  if (!ws.attempts) return '—';
  return badge(`${ws.attempts} attempt${ws.attempts === 1 ? '' : 's'}`, 'pending');
}

/**
 * The customer's aggregation documents, newest first, page by page.
 * @param {ViewContext} ctx
 * @param {string} customerId
 * @param {string[]} periods
 */
function customerAggregations(ctx, customerId, periods) {
  const aggPeriod = h(
    'select',
    { id: 'agg-period', 'aria-label': 'Aggregation period' },
    h('option', { value: '', text: 'All periods' }),
    periods.map((p) => h('option', { value: p, text: p })),
  );
  const aggBody = h('tbody', {});
  const aggMore = h('button', { class: 'button', type: 'button', text: 'Load more', hidden: true });
  const aggStatus = h('p', { class: 'muted' });
  ctx.view.append(
    h(
      'section',
      { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', { text: 'Aggregations' }), aggPeriod),
      h(
        'table',
        { class: 'table', id: 'aggregations' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Period', 'Key', 'Start (UTC)', 'Values', 'State', 'Revision', 'Webhook'].map((t) => h('th', { text: t })),
          ),
        ),
        aggBody,
      ),
      aggStatus,
      aggMore,
    ),
  );
  /** @type {(reset: boolean) => Promise<void>} */
  const loadAggs = pagedList(ctx, {
    body: aggBody,
    status: aggStatus,
    more: aggMore,
    fetch: (cursor) => api.aggregations({ customerId, period: aggPeriod.value, limit: 25, cursor }),
    /** @param {Aggregation} a */
    row: (a) => {
      const ws = a.webhookStatus || { delivered: false, attempts: 0 };
      return h(
        'tr',
        { dataset: { aggregationId: a.id } },
        h('td', { text: a.period }),
        h('td', {}, h('code', { text: a.periodKey })),
        h('td', { text: fmtTime(a.periodStart) }),
        h(
          'td',
          { class: 'values' },
          Object.keys(a.events).map((t) =>
            h(
              'div',
              {},
              h('code', { text: t }),
              ` ${fmtExact(a.eventsDecimal?.[t], a.events[t])}`,
              h('span', { class: 'muted small', text: ` (${fmtNum(a.eventCounts[t])} events)` }),
            ),
          ),
        ),
        h('td', {}, badge(a.final ? 'final' : 'provisional')),
        h('td', { class: 'num', text: String(a.revision) }),
        h('td', { title: ws.lastError || null }, a.final ? webhookBadge(ws) : '—'),
      );
    },
    summary: (n) => (n === 0 ? 'No aggregations yet (they appear when periods close, or after a trigger).' : ''),
  });
  aggPeriod.addEventListener('change', () => loadAggs(true));
  aggMore.addEventListener('click', () => loadAggs(false));
  loadAggs(true);
}
