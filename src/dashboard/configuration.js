// Owns the Configuration page: the server's effective configuration, as GET /config answers it.
// Must never show a secret the server did not redact: it renders the answer as it came, as text.
// @ts-check

import * as api from './api.js';
import { errorBox, h } from './dom.js';

/** @typedef {import('./types.js').DashboardConfig} DashboardConfig */
/** @typedef {import('./types.js').Endpoint} Endpoint */
/** @typedef {import('./types.js').ViewContext} ViewContext */

/** @param {ViewContext} ctx */
export async function configView(ctx) {
  const { view } = ctx;
  view.append(
    h('h1', { text: 'Configuration' }),
    h('p', { class: 'muted', text: 'The effective configuration, read-only; webhook secrets are redacted by the server.' }),
  );
  /** @type {DashboardConfig} */
  let cfg;
  /** @type {Endpoint[]} */
  let endpoints;
  try {
    // Always the server's current answer.
    [cfg, endpoints] = await Promise.all([api.loadConfig({ fresh: true }), api.endpoints()]);
  } catch (err) {
    if (ctx.current()) view.append(errorBox(err));
    return;
  }
  if (!ctx.current()) return;
  const events = cfg.events || {};
  view.append(
    h(
      'div',
      { class: 'grid2' },
      h(
        'section',
        { class: 'card' },
        h('h2', { text: 'Event types' }),
        h(
          'table',
          { class: 'table' },
          h('thead', {}, h('tr', {}, h('th', { text: 'Event type' }), h('th', { text: 'Operator' }))),
          h(
            'tbody',
            {},
            Object.entries(events).map(([t, e]) => h('tr', {}, h('td', {}, h('code', { text: t })), h('td', { text: e.op }))),
          ),
        ),
      ),
      h(
        'section',
        { class: 'card' },
        h('h2', { text: 'Schedule' }),
        h(
          'dl',
          { class: 'facts' },
          h('dt', { text: 'Periods' }),
          h('dd', { text: (cfg.periods || []).join(', ') }),
          h('dt', { text: 'Schedule (UTC)' }),
          h('dd', {}, h('code', { text: cfg.schedule })),
          h('dt', { text: 'Grace period' }),
          h('dd', { text: cfg.gracePeriod }),
          h('dt', { text: 'Max event age' }),
          h('dd', { text: cfg.maxEventAge }),
          h('dt', { text: 'Webhook endpoints' }),
          h('dd', { text: String((cfg.webhooks || []).length) }),
        ),
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', { text: 'Webhook endpoints' }),
      h('p', { class: 'muted', text: 'Each secret is named by its fingerprint (sha256: and 16 hex digits); no form of it is shown.' }),
      h(
        'table',
        { class: 'table', id: 'config-endpoints' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Endpoint', 'URL', 'Status', 'Secret', 'Fingerprint'].map((t) => h('th', { text: t })),
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
              h('td', { text: e.url }),
              h('td', { text: e.status }),
              h('td', { text: e.secretFormat }),
              h('td', {}, h('code', { 'data-fingerprint': e.id, text: e.secretFingerprint })),
            ),
          ),
        ),
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', { text: 'Full configuration (JSON)' }),
      h('pre', { class: 'json', id: 'config-json', text: JSON.stringify(cfg, null, 2) }),
    ),
  );
}
