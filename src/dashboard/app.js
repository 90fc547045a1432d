// meterhook dashboard: a single page over the authenticated JSON API. Plain browser JavaScript, no
// build step. The API key lives in sessionStorage and goes out only in the x-apikey header, to this
// origin. Every value from the API is rendered as text (never as HTML).
/* global uPlot */
'use strict';

(function () {
  const KEY_STORAGE = 'meterhook.apiKey';
  const PALETTE = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#dc2626', '#65a30d'];
  const STATUSES = ['pending', 'sending', 'retry_scheduled', 'succeeded', 'failed', 'cancelled', 'held'];
  const PAGE = 50;

  /** Charts drawn on the current page, with the data they plot (read by the browser test). */
  window.__meterhookCharts = { customer: {}, overview: null };

  let apiKey = sessionStorage.getItem(KEY_STORAGE);
  let config = null; // GET /config, loaded once per sign-in
  let viewSeq = 0; // bumped on every navigation; stale async renders check it and stop
  const liveCharts = new Set();

  // ------------------------------------------------------------------------------------------
  // DOM helpers
  // ------------------------------------------------------------------------------------------

  /** Creates an element: attrs may hold class, text, on<Event> handlers, dataset, and plain attributes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const $ = (sel, root) => (root || document).querySelector(sel);

  const num = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });
  function fmtNum(v) {
    return typeof v === 'number' && Number.isFinite(v) ? num.format(v) : '—';
  }

  /** An exact total (decimal text) with digit grouping and every decimal place kept; else the number. */
  function fmtExact(text, fallback) {
    if (typeof text !== 'string' || !/^-?\d+(\.\d+)?$/.test(text)) return fmtNum(fallback);
    const [int, frac] = text.split('.');
    const neg = int.startsWith('-');
    const grouped = (neg ? int.slice(1) : int).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return `${neg ? '-' : ''}${grouped}${frac ? `.${frac}` : ''}`;
  }

  /** "2026-01-12 10:00:00 UTC", or a dash. */
  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  }

  function badge(text, kind) {
    return h('span', { class: `badge ${kind || String(text).replace(/[^a-z_]/gi, '')}`, text });
  }

  function toast(message, kind) {
    const el = h('div', { class: `toast ${kind || ''}`, role: 'status', text: message });
    $('#toasts').append(el);
    setTimeout(() => el.remove(), 5000);
  }

  function errorBox(err) {
    return h('p', { class: 'error', role: 'alert', text: err instanceof Error ? err.message : String(err) });
  }

  /**
   * A table filled page by page through the API's X-Next-Cursor. Returns load(reset): reset starts
   * over; otherwise the next page is appended. Answers that arrive after a newer load, or after the
   * view was left, are dropped.
   */
  function pagedList(ctx, { body, status, more, path, row, summary }) {
    let cursor = null;
    let seq = 0;
    return async function load(reset) {
      const mine = ++seq;
      if (reset) {
        cursor = null;
        body.replaceChildren();
      }
      status.textContent = 'Loading…';
      more.hidden = true;
      try {
        const r = await api(path(cursor));
        if (!ctx.current() || mine !== seq) return;
        for (const item of r.data) body.append(row(item));
        cursor = r.headers.get('x-next-cursor');
        more.hidden = !cursor;
        status.textContent = summary(body.children.length, Boolean(cursor));
      } catch (err) {
        if (ctx.current() && mine === seq) status.replaceChildren(errorBox(err));
      }
    };
  }

  // ------------------------------------------------------------------------------------------
  // API
  // ------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  /** Calls the API with the key; a 401 signs out. Resolves { data, headers }. */
  async function api(path, opts) {
    const o = opts || {};
    const headers = { 'x-apikey': o.key || apiKey || '' };
    let body;
    if (o.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(o.body);
    }
    let res;
    try {
      res = await fetch(path, { method: o.method || 'GET', headers, body, cache: 'no-store', credentials: 'omit' });
    } catch (err) {
      throw new ApiError(0, `The server did not answer (${err.message})`);
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (res.status === 401 && !o.key) {
      signOut('The API key was rejected. Sign in again.');
      throw new ApiError(401, 'The API key was rejected');
    }
    if (!res.ok) {
      const msg = data && typeof data === 'object' && typeof data.error === 'string' ? data.error : `${res.status} ${res.statusText}`;
      throw new ApiError(res.status, msg, data);
    }
    return { data, headers: res.headers };
  }

  const qs = (params) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
    const s = p.toString();
    return s ? `?${s}` : '';
  };

  async function loadConfig() {
    if (!config) config = (await api('/config')).data;
    return config;
  }

  // ------------------------------------------------------------------------------------------
  // Sign-in
  // ------------------------------------------------------------------------------------------

  function showSignIn(message) {
    destroyCharts();
    $('#view').hidden = true;
    $('#nav').hidden = true;
    $('#sign-out').hidden = true;
    $('#server-info').textContent = '';
    $('#sign-in').hidden = false;
    const err = $('#sign-in-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('#api-key').value = '';
    $('#api-key').focus();
  }

  function signOut(message) {
    apiKey = null;
    config = null;
    sessionStorage.removeItem(KEY_STORAGE);
    showSignIn(message);
  }

  async function onSignIn(ev) {
    ev.preventDefault();
    const key = $('#api-key').value.trim();
    if (!key) return;
    const button = $('#sign-in-button');
    button.disabled = true;
    try {
      // /ping needs a key and returns nothing sensitive: a cheap check before keeping the key.
      await api('/ping', { key });
      apiKey = key;
      sessionStorage.setItem(KEY_STORAGE, key);
      $('#sign-in').hidden = true;
      await start();
    } catch (err) {
      const msg = err.status === 401 ? 'That API key was not accepted.' : err.message;
      $('#sign-in-error').hidden = false;
      $('#sign-in-error').textContent = msg;
    } finally {
      button.disabled = false;
    }
  }

  async function start() {
    $('#nav').hidden = false;
    $('#sign-out').hidden = false;
    $('#view').hidden = false;
    try {
      const info = (await api('/')).data;
      $('#server-info').textContent = `${info.service} ${info.version}`;
    } catch {
      // the descriptor is decoration; the views report their own errors
    }
    route();
  }

  // ------------------------------------------------------------------------------------------
  // Routing: #/overview, #/customers, #/customers/<id>, #/deliveries, #/deliveries/<id>, #/config
  // ------------------------------------------------------------------------------------------

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    const [pathPart, queryPart] = raw.split('?');
    const segments = (pathPart || 'overview').split('/').map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
    return { segments, query: new URLSearchParams(queryPart || '') };
  }

  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  function route() {
    if (!apiKey) return showSignIn();
    destroyCharts();
    const seq = ++viewSeq;
    const { segments, query } = parseHash();
    const [section, id] = segments;
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.section === section);
    const view = $('#view');
    view.replaceChildren();
    const ctx = { seq, view, current: () => seq === viewSeq };
    switch (section) {
      case 'customers':
        return id === undefined || id === '' ? customersView(ctx, query) : customerView(ctx, id);
      case 'deliveries':
        return id === undefined || id === '' ? deliveriesView(ctx, query) : deliveryView(ctx, id);
      case 'config':
        return configView(ctx);
      default:
        return overviewView(ctx);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Charts
  // ------------------------------------------------------------------------------------------

  function destroyCharts() {
    for (const c of liveCharts) c.destroy();
    liveCharts.clear();
    window.__meterhookCharts = { customer: {}, overview: null };
  }

  const utc = (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC');
  const pad2 = (n) => String(n).padStart(2, '0');

  /** Time-axis labels in UTC, 24-hour: "11-24" at midnight, "14:00" otherwise. */
  function timeLabels(_u, splits) {
    return splits.map((ts) => {
      const d = new Date(ts * 1000);
      return d.getUTCHours() === 0 && d.getUTCMinutes() === 0
        ? `${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`
        : `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
    });
  }

  /**
   * A bar chart in `container`. xs are epoch seconds; each series is { label, values, color } with
   * null where a bucket has no data.
   */
  function barChart(container, xs, series, opts) {
    const width = Math.max(300, container.clientWidth || 600);
    const bars = uPlot.paths.bars({ size: [0.7, 40], gap: 1 });
    const chart = new uPlot(
      {
        width,
        height: (opts && opts.height) || 220,
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
            fill: `${s.color}cc`,
            width: 1,
            paths: bars,
            points: { show: false },
            value: (_u, v) => (v == null ? '—' : fmtNum(v)),
          })),
        ],
      },
      [xs, ...series.map((s) => s.values)],
      container,
    );
    liveCharts.add(chart);
    return chart;
  }

  window.addEventListener('resize', () => {
    for (const c of liveCharts) {
      const box = c.root.parentElement;
      if (box && box.clientWidth) c.setSize({ width: Math.max(300, box.clientWidth), height: c.height });
    }
  });

  /** Every bucket start from `fromIso` up to `toIso`, in epoch seconds. */
  function bucketGrid(fromIso, toIso, stepSeconds) {
    const out = [];
    const end = Date.parse(toIso) / 1000;
    for (let t = Date.parse(fromIso) / 1000; t <= end; t += stepSeconds) out.push(t);
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Overview
  // ------------------------------------------------------------------------------------------

  function statCard(label, value, note, extra) {
    return h('div', { class: 'stat card', ...(extra || {}) },
      h('div', { class: 'stat-label', text: label }),
      h('div', { class: 'stat-value', text: value }),
      note ? h('div', { class: 'stat-note muted', text: note }) : null);
  }

  async function overviewView(ctx) {
    const { view } = ctx;
    view.append(h('h1', { text: 'Overview' }), h('p', { class: 'muted', text: 'Loading…' }));
    let stats;
    let endpoints;
    try {
      [stats, endpoints] = await Promise.all([api('/stats').then((r) => r.data), api('/webhooks/endpoints').then((r) => r.data)]);
    } catch (err) {
      if (ctx.current()) view.replaceChildren(h('h1', { text: 'Overview' }), errorBox(err));
      return;
    }
    if (!ctx.current()) return;
    const ev = stats.events;
    const d = stats.deliveries;
    const failingEndpoints = endpoints.filter((e) => e.status === 'disabled' || e.failureStreak > 0);
    view.replaceChildren(
      h('h1', { text: 'Overview' }),
      h('div', { class: 'stats', id: 'overview-stats' },
        statCard('Events, last 7 days', fmtNum(ev.total), `${fmtNum(ev.customersWithUsage)} customers with usage`, { 'data-stat': 'events' }),
        statCard('Aggregations finalized', fmtNum(stats.aggregations.final), `${fmtNum(stats.aggregations.provisional)} provisional (periods of the last 7 days)`, { 'data-stat': 'aggregations' }),
        statCard('Deliveries failed', fmtNum(d.failed || 0), `${fmtNum(d.succeeded || 0)} succeeded, ${fmtNum((d.pending || 0) + (d.retry_scheduled || 0) + (d.sending || 0))} in progress`, { 'data-stat': 'deliveries' }),
        statCard('Failing endpoints', `${failingEndpoints.length} / ${endpoints.length}`, failingEndpoints.length ? failingEndpoints.map((e) => e.id).join(', ') : 'all healthy', { 'data-stat': 'endpoints' }),
      ),
    );
    if (!ev.complete) {
      view.append(h('p', { class: 'warning', text: `Only the first ${fmtNum(ev.customersScanned)} customers were counted: the event numbers are a lower bound.` }));
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
      barChart(chartBox, xs, [{ label: 'events', values, color: PALETTE[0] }]);
      window.__meterhookCharts.overview = { x: xs, y: values };
    }

    const grid = h('div', { class: 'grid2' });
    grid.append(
      h('section', { class: 'card' },
        h('h2', { text: 'Events by type, last 7 days' }),
        h('table', { class: 'table' },
          h('thead', {}, h('tr', {}, h('th', { text: 'Event type' }), h('th', { text: 'Operator' }), h('th', { class: 'num', text: 'Events' }))),
          h('tbody', {}, types.map((t) => h('tr', {},
            h('td', {}, h('code', { text: t })),
            h('td', { text: stats.eventTypes[t] }),
            h('td', { class: 'num', text: fmtNum(ev.byType[t] || 0) })))))),
      h('section', { class: 'card' },
        h('h2', { text: 'Webhook deliveries by status' }),
        h('div', { class: 'status-grid', id: 'delivery-counts' },
          STATUSES.map((s) => h('a', { class: 'status-cell', href: `#/deliveries?status=${s}`, dataset: { status: s } },
            badge(s), h('span', { class: 'status-count', text: fmtNum(d[s] || 0) }))))),
    );
    view.append(grid);

    view.append(h('section', { class: 'card' },
      h('h2', { text: 'Webhook endpoints' }),
      endpoints.length === 0
        ? h('p', { class: 'empty', text: 'No webhook endpoints are configured.' })
        : endpointsTable(ctx, endpoints)));
  }

  function endpointsTable(ctx, endpoints) {
    return h('table', { class: 'table', id: 'endpoints' },
      h('thead', {}, h('tr', {},
        ['Endpoint', 'URL', 'Status', 'Failure streak', 'Last success', 'Last failure', ''].map((t) => h('th', { text: t })))),
      h('tbody', {}, endpoints.map((e) => h('tr', {},
        h('td', {}, h('code', { text: e.id })),
        h('td', { class: 'wrap', text: e.url }),
        h('td', {}, badge(e.status === 'active' && e.failureStreak > 0 ? 'failing' : e.status), e.disabledReason ? h('div', { class: 'muted small', text: e.disabledReason }) : null),
        h('td', { class: 'num', text: fmtNum(e.failureStreak) }),
        h('td', { text: fmtTime(e.lastSuccessAt) }),
        h('td', { text: fmtTime(e.lastFailureAt) }),
        h('td', {}, e.disabledAt
          ? h('button', {
            class: 'button small', type: 'button', text: 'Enable',
            onclick: async () => {
              try {
                const r = (await api(`/webhooks/endpoints/${encodeURIComponent(e.id)}/enable`, { method: 'POST' })).data;
                toast(`Endpoint ${e.id} enabled; ${r.released} held deliveries released`, 'ok');
                if (ctx.current()) route();
              } catch (err) {
                toast(err.message, 'bad');
              }
            },
          })
          : null)))));
  }

  // ------------------------------------------------------------------------------------------
  // Customers
  // ------------------------------------------------------------------------------------------

  function customersView(ctx, query) {
    const { view } = ctx;
    const search = h('input', {
      id: 'customer-search', type: 'search', placeholder: 'Customer id starts with…', value: query.get('search') || '',
      'aria-label': 'Search customers by id prefix', spellcheck: 'false',
    });
    const body = h('tbody', {});
    const more = h('button', { class: 'button', type: 'button', text: 'Load more', hidden: true });
    const status = h('p', { class: 'muted' });
    view.append(
      h('h1', { text: 'Customers' }),
      h('div', { class: 'card' },
        h('div', { class: 'toolbar' }, search, status),
        h('table', { class: 'table', id: 'customers' },
          h('thead', {}, h('tr', {}, h('th', { text: 'Customer' }), h('th', { text: 'Latest usage (hour, UTC)' }))),
          body),
        more));

    const load = pagedList(ctx, {
      body, status, more,
      path: (cursor) => `/customers${qs({ search: search.value, limit: PAGE, cursor })}`,
      row: (c) => h('tr', { dataset: { customerId: c.customerId } },
        h('td', {}, h('a', { href: `#/customers/${encodeURIComponent(c.customerId)}`, text: c.customerId })),
        h('td', { text: fmtTime(c.lastUsageAt) })),
      summary: (n, hasMore) => (n === 0
        ? (search.value ? `No customer id starts with “${search.value}”.` : 'No customers with usage yet.')
        : `${n}${hasMore ? '+' : ''} customer${n === 1 ? '' : 's'}`),
    });
    let timer = null;
    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        history.replaceState(null, '', `#/customers${qs({ search: search.value })}`);
        load(true);
      }, 250);
    });
    more.addEventListener('click', () => load(false));
    load(true);
    search.focus();
  }

  /** An aggregation's webhook state: delivered, failing (with attempts), or waiting. */
  function webhookBadge(ws) {
    if (ws.delivered) return badge(ws.dryRun ? 'delivered (dry run)' : 'delivered', 'succeeded');
    if (ws.lastError) return badge(`not delivered, ${ws.attempts} attempt${ws.attempts === 1 ? '' : 's'}`, 'failed');
    // No attempt: nothing to send to (no matching endpoint), or not sent yet.
    if (!ws.attempts) return '—';
    return badge(`${ws.attempts} attempt${ws.attempts === 1 ? '' : 's'}`, 'pending');
  }

  /** Range presets per bucket: [label, days]. */
  const PRESETS = { hour: [['24 h', 1], ['7 days', 7], ['31 days', 31]], day: [['30 days', 30], ['90 days', 90], ['1 year', 365]] };

  async function customerView(ctx, customerId) {
    const { view } = ctx;
    view.append(
      h('p', {}, h('a', { href: '#/customers', text: '← Customers' })),
      h('h1', {}, 'Customer ', h('code', { id: 'customer-title', text: customerId })),
    );
    let cfg;
    try {
      cfg = await loadConfig();
    } catch (err) {
      if (ctx.current()) view.append(errorBox(err));
      return;
    }
    if (!ctx.current()) return;
    const types = Object.keys(cfg.events || {});
    const enc = encodeURIComponent(customerId);

    // --- current period ---------------------------------------------------------------------
    const periods = cfg.periods || ['monthly'];
    const periodSel = h('select', { id: 'usage-period', 'aria-label': 'Period' },
      periods.map((p) => h('option', { value: p, text: p, selected: p === (periods.includes('monthly') ? 'monthly' : periods[0]) })));
    const usageBox = h('div', { id: 'current-usage' });
    view.append(h('section', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', { text: 'Current period (real time)' }), periodSel),
      usageBox));
    async function loadUsage() {
      usageBox.replaceChildren(h('p', { class: 'muted', text: 'Loading…' }));
      try {
        const u = (await api(`/customers/${enc}/usage${qs({ period: periodSel.value })}`)).data;
        if (!ctx.current()) return;
        const rows = Object.keys(u.events);
        usageBox.replaceChildren(
          h('p', { class: 'muted' }, `${u.period} ${u.periodKey}: ${fmtTime(u.periodStart)} – ${fmtTime(u.periodEnd)} `, badge(u.final ? 'final' : 'open')),
          rows.length === 0
            ? h('p', { class: 'empty', text: 'No usage in this period.' })
            : h('table', { class: 'table' },
              h('thead', {}, h('tr', {}, h('th', { text: 'Event type' }), h('th', { text: 'Operator' }), h('th', { class: 'num', text: 'Value' }), h('th', { class: 'num', text: 'Events' }))),
              h('tbody', {}, rows.map((t) => h('tr', { dataset: { eventType: t } },
                h('td', {}, h('code', { text: t })),
                h('td', { text: (cfg.events[t] || {}).op || '' }),
                h('td', { class: 'num', text: fmtExact((u.eventsDecimal || {})[t], u.events[t]) }),
                h('td', { class: 'num', text: fmtNum(u.eventCounts[t]) }))))));
      } catch (err) {
        if (ctx.current()) usageBox.replaceChildren(errorBox(err));
      }
    }
    periodSel.addEventListener('change', loadUsage);

    // --- usage over time --------------------------------------------------------------------
    const state = { bucket: 'hour', from: null, to: null };
    const bucketSel = h('select', { id: 'series-bucket', 'aria-label': 'Bucket' },
      h('option', { value: 'hour', text: 'Hourly' }), h('option', { value: 'day', text: 'Daily' }));
    const presetBox = h('div', { class: 'presets', id: 'series-presets' });
    const fromIn = h('input', { type: 'date', id: 'series-from', 'aria-label': 'From (UTC date)' });
    const toIn = h('input', { type: 'date', id: 'series-to', 'aria-label': 'To (UTC date)' });
    const apply = h('button', { class: 'button', type: 'button', text: 'Apply', id: 'series-apply' });
    const rangeNote = h('span', { class: 'muted small', id: 'series-range' });
    const charts = h('div', { class: 'charts', id: 'series-charts' });
    view.append(h('section', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', { text: 'Usage over time' }), rangeNote),
      h('div', { class: 'toolbar' }, bucketSel, presetBox, h('span', { class: 'range' }, fromIn, '→', toIn, apply)),
      charts));

    function renderPresets() {
      presetBox.replaceChildren(...PRESETS[state.bucket].map(([label, days]) => h('button', {
        class: 'button small', type: 'button', text: label,
        onclick: () => {
          const now = Date.now();
          state.to = null;
          state.from = new Date(now - days * 86400000 + (state.bucket === 'hour' ? 3600000 : 86400000)).toISOString();
          loadSeries();
        },
      })));
    }
    bucketSel.addEventListener('change', () => {
      state.bucket = bucketSel.value;
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
      for (const c of liveCharts) c.destroy();
      liveCharts.clear();
      window.__meterhookCharts.customer = {};
      charts.replaceChildren(h('p', { class: 'muted', text: 'Loading…' }));
      charts.dataset.state = 'loading';
      let results;
      try {
        results = await Promise.all(types.map((t) =>
          api(`/customers/${enc}/usage/series${qs({ eventType: t, bucket: state.bucket, from: state.from, to: state.to })}`).then((r) => r.data)));
      } catch (err) {
        if (ctx.current() && mine === seriesSeq) {
          charts.replaceChildren(errorBox(err));
          charts.dataset.state = 'error';
        }
        return;
      }
      if (!ctx.current() || mine !== seriesSeq) return;
      charts.replaceChildren();
      if (results.length === 0) charts.append(h('p', { class: 'empty', text: 'No event types are configured.' }));
      const first = results[0];
      if (first) {
        rangeNote.textContent = `${fmtTime(first.from)} – ${fmtTime(first.to)}, ${state.bucket === 'hour' ? 'hourly' : 'daily'} buckets`;
        fromIn.value = first.from.slice(0, 10);
        toIn.value = first.to.slice(0, 10);
      }
      const step = state.bucket === 'hour' ? 3600 : 86400;
      results.forEach((s, i) => {
        const box = h('div', { class: 'chart', dataset: { eventType: s.eventType, points: String(s.points.length) } });
        const card = h('div', { class: 'chart-card', dataset: { eventType: s.eventType } },
          h('h3', {}, h('code', { text: s.eventType }), h('span', { class: 'muted small', text: ` ${s.op} per ${s.bucket}` })),
          box);
        charts.append(card);
        if (s.points.length === 0) {
          box.append(h('p', { class: 'empty', text: 'No usage in this range.' }));
          return;
        }
        const xs = bucketGrid(s.from, s.to, step);
        const byT = new Map(s.points.map((p) => [Date.parse(p.t) / 1000, p.value]));
        const values = xs.map((x) => (byT.has(x) ? byT.get(x) : null));
        const color = PALETTE[i % PALETTE.length];
        barChart(box, xs, [{ label: s.op, values, color }]);
        window.__meterhookCharts.customer[s.eventType] = {
          customerId: s.customerId, bucket: s.bucket, op: s.op, from: s.from, to: s.to, x: xs, y: values, points: s.points, color,
        };
      });
      charts.dataset.state = 'ready';
    }

    // --- aggregations -----------------------------------------------------------------------
    const aggPeriod = h('select', { id: 'agg-period', 'aria-label': 'Aggregation period' },
      h('option', { value: '', text: 'All periods' }), periods.map((p) => h('option', { value: p, text: p })));
    const aggBody = h('tbody', {});
    const aggMore = h('button', { class: 'button', type: 'button', text: 'Load more', hidden: true });
    const aggStatus = h('p', { class: 'muted' });
    view.append(h('section', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', { text: 'Aggregations' }), aggPeriod),
      h('table', { class: 'table', id: 'aggregations' },
        h('thead', {}, h('tr', {}, ['Period', 'Key', 'Start (UTC)', 'Values', 'State', 'Revision', 'Webhook'].map((t) => h('th', { text: t })))),
        aggBody),
      aggStatus, aggMore));
    const loadAggs = pagedList(ctx, {
      body: aggBody, status: aggStatus, more: aggMore,
      path: (cursor) => `/aggregations${qs({ customerId, period: aggPeriod.value, limit: 25, cursor })}`,
      row: (a) => {
        const ws = a.webhookStatus || {};
        return h('tr', { dataset: { aggregationId: a.id } },
          h('td', { text: a.period }),
          h('td', {}, h('code', { text: a.periodKey })),
          h('td', { text: fmtTime(a.periodStart) }),
          h('td', { class: 'values' }, Object.keys(a.events).map((t) => h('div', {},
            h('code', { text: t }), ` ${fmtExact((a.eventsDecimal || {})[t], a.events[t])}`, h('span', { class: 'muted small', text: ` (${fmtNum(a.eventCounts[t])} events)` })))),
          h('td', {}, badge(a.final ? 'final' : 'provisional')),
          h('td', { class: 'num', text: String(a.revision) }),
          h('td', { title: ws.lastError || null }, a.final ? webhookBadge(ws) : '—'));
      },
      summary: (n) => (n === 0 ? 'No aggregations yet (they appear when periods close, or after a trigger).' : ''),
    });
    aggPeriod.addEventListener('change', () => loadAggs(true));
    aggMore.addEventListener('click', () => loadAggs(false));

    renderPresets();
    loadUsage();
    loadSeries();
    loadAggs(true);
  }

  // ------------------------------------------------------------------------------------------
  // Deliveries
  // ------------------------------------------------------------------------------------------

  function deliveryRow(ctx, d) {
    const row = h('tr', { dataset: { deliveryId: d.id, status: d.status } });
    const fill = (x) => {
      row.dataset.status = x.status;
      row.replaceChildren(
        h('td', { text: fmtTime(x.createdAt) }),
        h('td', {}, h('code', { text: x.endpointId })),
        h('td', {}, badge(x.status), x.nextAttemptAt ? h('div', { class: 'muted small', text: `next ${fmtTime(x.nextAttemptAt)}` }) : null),
        h('td', { class: 'num', text: String(x.attempts) }),
        h('td', { class: 'num', text: x.lastStatusCode === null ? '—' : String(x.lastStatusCode) }),
        h('td', { class: 'wrap error-text', text: x.lastError || '' }),
        h('td', { class: 'actions' },
          h('a', { class: 'button small', href: `#/deliveries/${encodeURIComponent(x.id)}`, text: 'Attempts' }),
          canRetry(x) ? retryButton(ctx, x, (updated) => fill(updated)) : null),
      );
    };
    fill(d);
    return row;
  }

  /** A manual attempt makes sense unless the delivery succeeded or a worker is sending it. */
  function canRetry(d) {
    return d.status !== 'succeeded' && d.status !== 'sending';
  }

  function retryButton(ctx, d, onDone) {
    const b = h('button', { class: 'button small primary', type: 'button', text: 'Retry', 'data-action': 'retry' });
    b.addEventListener('click', async () => {
      b.disabled = true;
      b.textContent = 'Sending…';
      try {
        const r = (await api(`/webhooks/deliveries/${encodeURIComponent(d.id)}/retry`, { method: 'POST' })).data;
        const a = r.attempt;
        if (a.statusCode !== null && a.statusCode >= 200 && a.statusCode < 300) toast(`Delivered: the endpoint answered ${a.statusCode}`, 'ok');
        else toast(`Attempt failed: ${a.statusCode !== null ? `HTTP ${a.statusCode}` : a.errorClass || ''} ${a.error || ''}`.trim(), 'bad');
        if (ctx.current()) onDone(r.delivery);
      } catch (err) {
        toast(err.status === 409 ? 'A worker is sending this delivery right now; try again shortly.' : err.message, 'bad');
        b.disabled = false;
        b.textContent = 'Retry';
      }
    });
    return b;
  }

  async function deliveriesView(ctx, query) {
    const { view } = ctx;
    const statusSel = h('select', { id: 'delivery-status', 'aria-label': 'Status' },
      h('option', { value: '', text: 'Any status' }),
      STATUSES.map((s) => h('option', { value: s, text: s, selected: query.get('status') === s })));
    const endpointSel = h('select', { id: 'delivery-endpoint', 'aria-label': 'Endpoint' }, h('option', { value: '', text: 'Any endpoint' }));
    const refresh = h('button', { class: 'button', type: 'button', text: 'Refresh', id: 'delivery-refresh' });
    const body = h('tbody', {});
    const more = h('button', { class: 'button', type: 'button', text: 'Load more', hidden: true });
    const status = h('p', { class: 'muted' });
    view.append(
      h('h1', { text: 'Webhook deliveries' }),
      h('div', { class: 'card' },
        h('div', { class: 'toolbar' }, statusSel, endpointSel, refresh),
        h('table', { class: 'table', id: 'deliveries' },
          h('thead', {}, h('tr', {}, ['Created (UTC)', 'Endpoint', 'Status', 'Attempts', 'Last HTTP', 'Last error', ''].map((t) => h('th', { text: t })))),
          body),
        status, more));

    api('/webhooks/endpoints').then((r) => {
      for (const e of r.data) endpointSel.append(h('option', { value: e.id, text: e.id, selected: query.get('endpointId') === e.id }));
    }).catch(() => undefined);

    const load = pagedList(ctx, {
      body, status, more,
      path: (cursor) => `/webhooks/deliveries${qs({ status: statusSel.value, endpointId: endpointSel.value || query.get('endpointId'), limit: PAGE, cursor })}`,
      row: (d) => deliveryRow(ctx, d),
      summary: (n) => (n === 0 ? 'No deliveries match.' : ''),
    });
    const onFilter = () => {
      query.delete('endpointId');
      history.replaceState(null, '', `#/deliveries${qs({ status: statusSel.value, endpointId: endpointSel.value })}`);
      load(true);
    };
    statusSel.addEventListener('change', onFilter);
    endpointSel.addEventListener('change', onFilter);
    refresh.addEventListener('click', () => load(true));
    more.addEventListener('click', () => load(false));
    load(true);
  }

  async function deliveryView(ctx, id) {
    const { view } = ctx;
    view.append(h('p', {}, h('a', { href: '#/deliveries', text: '← Deliveries' })), h('h1', {}, 'Delivery ', h('code', { text: id })));
    let d;
    try {
      d = (await api(`/webhooks/deliveries/${encodeURIComponent(id)}`)).data;
    } catch (err) {
      if (ctx.current()) view.append(errorBox(err));
      return;
    }
    if (!ctx.current()) return;
    const facts = [
      ['Status', badge(d.status)],
      ['Endpoint', h('code', { text: d.endpointId })],
      ['Message', h('code', { text: `${d.message.id} (${d.message.type}, revision ${d.message.revision})` })],
      ['Aggregation', h('code', { text: d.aggregationId })],
      ['Created', fmtTime(d.createdAt)],
      ['Deadline', fmtTime(d.deadlineAt)],
      ['Delivered', fmtTime(d.deliveredAt)],
      ['Next attempt', fmtTime(d.nextAttemptAt)],
      ['Last error', d.lastError || '—'],
    ];
    view.append(
      h('section', { class: 'card', id: 'delivery-detail', dataset: { status: d.status } },
        h('div', { class: 'card-head' }, h('h2', { text: 'Summary' }), canRetry(d) ? retryButton(ctx, d, () => route()) : null),
        h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]))),
      h('section', { class: 'card' },
        h('h2', { text: `Attempts (${d.attempts.length})` }),
        d.attempts.length === 0
          ? h('p', { class: 'empty', text: 'No attempt yet.' })
          : h('table', { class: 'table', id: 'attempts' },
            h('thead', {}, h('tr', {}, ['#', 'Started (UTC)', 'Duration', 'HTTP', 'Error class', 'Error', 'Response body', 'Kind'].map((t) => h('th', { text: t })))),
            h('tbody', {}, d.attempts.map((a) => h('tr', {},
              h('td', { class: 'num', text: String(a.attempt) }),
              h('td', { text: fmtTime(a.startedAt) }),
              h('td', { class: 'num', text: `${a.durationMs} ms` }),
              h('td', { class: 'num', text: a.statusCode === null ? '—' : String(a.statusCode) }),
              h('td', { text: a.errorClass || '—' }),
              h('td', { class: 'wrap', text: a.error || '' }),
              h('td', { class: 'wrap' }, a.responseBody ? h('code', { class: 'snippet', text: a.responseBody.slice(0, 300) }) : '—'),
              h('td', { text: a.dryRun ? 'dry run' : a.manual ? 'manual' : 'scheduled' })))))),
      h('section', { class: 'card' },
        h('h2', { text: 'Payload' }),
        h('pre', { class: 'json', text: JSON.stringify(d.message.payload, null, 2) })),
    );
  }

  // ------------------------------------------------------------------------------------------
  // Configuration
  // ------------------------------------------------------------------------------------------

  async function configView(ctx) {
    const { view } = ctx;
    view.append(h('h1', { text: 'Configuration' }), h('p', { class: 'muted', text: 'The effective configuration, read-only; webhook secrets are redacted by the server.' }));
    let cfg;
    try {
      config = null; // always show the server's current answer
      cfg = await loadConfig();
    } catch (err) {
      if (ctx.current()) view.append(errorBox(err));
      return;
    }
    if (!ctx.current()) return;
    const events = cfg.events || {};
    view.append(
      h('div', { class: 'grid2' },
        h('section', { class: 'card' },
          h('h2', { text: 'Event types' }),
          h('table', { class: 'table' },
            h('thead', {}, h('tr', {}, h('th', { text: 'Event type' }), h('th', { text: 'Operator' }))),
            h('tbody', {}, Object.keys(events).map((t) => h('tr', {}, h('td', {}, h('code', { text: t })), h('td', { text: events[t].op })))))),
        h('section', { class: 'card' },
          h('h2', { text: 'Schedule' }),
          h('dl', { class: 'facts' },
            h('dt', { text: 'Periods' }), h('dd', { text: (cfg.periods || []).join(', ') }),
            h('dt', { text: 'Schedule (UTC)' }), h('dd', {}, h('code', { text: cfg.schedule })),
            h('dt', { text: 'Grace period' }), h('dd', { text: cfg.gracePeriod }),
            h('dt', { text: 'Max event age' }), h('dd', { text: cfg.maxEventAge }),
            h('dt', { text: 'Webhook endpoints' }), h('dd', { text: String((cfg.webhooks || []).length) })))),
      h('section', { class: 'card' },
        h('h2', { text: 'Full configuration (JSON)' }),
        h('pre', { class: 'json', id: 'config-json', text: JSON.stringify(cfg, null, 2) })),
    );
  }

  // ------------------------------------------------------------------------------------------
  // Boot
  // ------------------------------------------------------------------------------------------

  $('#sign-in-form').addEventListener('submit', onSignIn);
  $('#sign-out').addEventListener('click', () => signOut());
  window.addEventListener('hashchange', () => route());
  if (apiKey) start();
  else showSignIn();
})();
