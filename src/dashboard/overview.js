// Owns the Overview page: the last 7 days' numbers, events per hour, deliveries by status, endpoint health.
// Must never change anything on the server except re-enabling an endpoint the user asked to enable.
// @ts-check

import * as api from './api.js';
import { barChart, chartTable, seriesColor } from './charts.js';
import { STATUSES } from './deliveries.js';
import { badge, errorBox, h, messageOf, toast } from './dom.js';
import { fmtNum, fmtTime } from './format.js';

/** @typedef {import('./types.js').Endpoint} Endpoint */
/** @typedef {import('./types.js').Stats} Stats */
/** @typedef {import('./types.js').ViewContext} ViewContext */

/**
 * @param {string} label
 * @param {string} value
 * @param {string} note
 * @param {Record<string, string>} [extra] more attributes
 * @returns {HTMLElement}
 */
function statCard(label, value, note, extra) {
  return h(
    'div',
    { class: 'stat card', ...(extra || {}) },
    h('div', { class: 'stat-label', text: label }),
    h('div', { class: 'stat-value', text: value }),
    note ? h('div', { class: 'stat-note muted', text: note }) : null,
  );
}

/** @param {ViewContext} ctx */
export async function overviewView(ctx) {
  const { view } = ctx;
  view.append(h('h1', { text: 'Overview' }), h('p', { class: 'muted', text: 'Loading…' }));
  /** @type {Stats} */
  let stats;
  /** @type {Endpoint[]} */
  let endpoints;
  try {
    [stats, endpoints] = await Promise.all([api.stats(), api.isAdmin() ? api.endpoints() : Promise.resolve([])]);
  } catch (err) {
    if (ctx.current()) view.replaceChildren(h('h1', { text: 'Overview' }), errorBox(err));
    return;
  }
  if (!ctx.current()) return;
  const ev = stats.events;
  const d = stats.deliveries;
  const failingEndpoints = endpoints.filter((e) => e.status === 'disabled' || e.failureStreak > 0);
  const inProgress = (d.pending || 0) + (d.retry_scheduled || 0) + (d.sending || 0);
  view.replaceChildren(
    h('h1', { text: 'Overview' }),
    h(
      'div',
      { class: 'stats', id: 'overview-stats' },
      statCard('Events, last 7 days', fmtNum(ev.total), `${fmtNum(ev.customersWithUsage)} customers with usage`, { 'data-stat': 'events' }),
      statCard(
        'Aggregations finalized',
        fmtNum(stats.aggregations.final),
        `${fmtNum(stats.aggregations.provisional)} provisional (periods of the last 7 days)`,
        { 'data-stat': 'aggregations' },
      ),
      statCard('Deliveries failed', fmtNum(d.failed || 0), `${fmtNum(d.succeeded || 0)} succeeded, ${fmtNum(inProgress)} in progress`, {
        'data-stat': 'deliveries',
      }),
      statCard(
        'Failing endpoints',
        `${failingEndpoints.length} / ${endpoints.length}`,
        failingEndpoints.length ? failingEndpoints.map((e) => e.id).join(', ') : 'all healthy',
        { 'data-stat': 'endpoints' },
      ),
    ),
  );
  if (!ev.complete) {
    view.append(
      h('p', {
        class: 'warning',
        text: `Only the first ${fmtNum(ev.customersScanned)} customers were counted: the event numbers are a lower bound.`,
      }),
    );
  }

  // Events per hour, all configured types together (the table below splits them by type).
  const chartCard = h('section', { class: 'card' }, h('h2', { text: 'Events per hour, last 7 days (by event time, UTC)' }));
  const chartBox = h('div', { class: 'chart', id: 'overview-chart' });
  chartCard.append(chartBox);
  view.append(chartCard);
  const types = Object.keys(stats.eventTypes);
  const xs = ev.points.map((p) => Date.parse(p.t) / 1000);
  const values = ev.points.map((p) => (p.count === 0 ? null : p.count));
  if (ev.total === 0) chartBox.append(h('p', { class: 'empty', text: 'No events in the last 7 days.' }));
  else {
    barChart(chartBox, xs, [{ label: 'events', values, color: seriesColor(0) }]);
    chartCard.append(chartTable('Events per hour, last 7 days', xs, [{ label: 'events', values: ev.points.map((p) => p.count) }]));
  }

  const grid = h('div', { class: 'grid2' });
  grid.append(
    h(
      'section',
      { class: 'card' },
      h('h2', { text: 'Events by type, last 7 days' }),
      h(
        'table',
        { class: 'table' },
        h(
          'thead',
          {},
          h('tr', {}, h('th', { text: 'Event type' }), h('th', { text: 'Operator' }), h('th', { class: 'num', text: 'Events' })),
        ),
        h(
          'tbody',
          {},
          types.map((t) =>
            h(
              'tr',
              {},
              h('td', {}, h('code', { text: t })),
              h('td', { text: stats.eventTypes[t] }),
              h('td', { class: 'num', text: fmtNum(ev.byType[t] || 0) }),
            ),
          ),
        ),
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', { text: 'Webhook deliveries by status' }),
      h(
        'div',
        { class: 'status-grid', id: 'delivery-counts' },
        STATUSES.map((s) =>
          h(
            'a',
            { class: 'status-cell', href: `#/deliveries?status=${s}`, dataset: { status: s } },
            badge(s),
            h('span', { class: 'status-count', text: fmtNum(d[s] || 0) }),
          ),
        ),
      ),
    ),
  );
  view.append(grid);

  // Endpoints and their Enable button are for admin keys only.
  if (!api.isAdmin()) return;
  view.append(
    h(
      'section',
      { class: 'card' },
      h('h2', { text: 'Webhook endpoints' }),
      endpoints.length === 0 ? h('p', { class: 'empty', text: 'No webhook endpoints are configured.' }) : endpointsTable(ctx, endpoints),
    ),
  );
}

/**
 * @param {ViewContext} ctx
 * @param {Endpoint[]} endpoints
 * @returns {HTMLElement}
 */
function endpointsTable(ctx, endpoints) {
  /** @param {Endpoint} e */
  const enableButton = (e) =>
    h('button', {
      class: 'button small',
      type: 'button',
      text: 'Enable',
      onclick: async () => {
        try {
          const r = await api.enableEndpoint(e.id);
          toast(`Endpoint ${e.id} enabled; ${r.released} held deliveries released`, 'ok');
          if (ctx.current()) ctx.reload();
        } catch (err) {
          toast(messageOf(err), 'bad');
        }
      },
    });
  return h(
    'table',
    { class: 'table', id: 'endpoints' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Endpoint', 'URL', 'Status', 'Failure streak', 'Last success', 'Last failure', ''].map((t) => h('th', { text: t })),
      ),
    ),
    h(
      'tbody',
      {},
      endpoints.map((e) =>
        h(
          'tr',
          {},
          h('td', {}, h('code', { text: e.id })),
          h('td', { class: 'wrap', text: e.url }),
          h(
            'td',
            {},
            badge(e.status === 'active' && e.failureStreak > 0 ? 'failing' : e.status),
            e.disabledReason ? h('div', { class: 'muted small', text: e.disabledReason }) : null,
          ),
          h('td', { class: 'num', text: fmtNum(e.failureStreak) }),
          h('td', { text: fmtTime(e.lastSuccessAt) }),
          h('td', { text: fmtTime(e.lastFailureAt) }),
          h('td', {}, e.disabledAt ? enableButton(e) : null),
        ),
      ),
    ),
  );
}
