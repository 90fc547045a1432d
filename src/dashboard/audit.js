// Owns the Audit page: the admin actions on record (GET /audit), newest first, filtered by action.
// Must never render API values as HTML, nor change anything on the server.
// @ts-check

import * as api from './api.js';
import { h, pagedList } from './dom.js';
import { fmtTime } from './format.js';

/** @typedef {import('./types.js').AuditEntry} AuditEntry */
/** @typedef {import('./types.js').ViewContext} ViewContext */

const PAGE = 50;
const ACTIONS = ['delivery.retry', 'delivery.recover', 'endpoint.enable', 'aggregation.trigger', 'key.create', 'key.revoke'];

/**
 * @param {AuditEntry} r
 * @returns {HTMLElement}
 */
function auditRow(r) {
  const target = Object.entries(r.target)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return h(
    'tr',
    { dataset: { action: r.action } },
    h('td', { text: fmtTime(r.at) }),
    h('td', { text: r.action }),
    h('td', { text: r.keyId }),
    h('td', { text: `${r.method} ${r.route}` }),
    h('td', { text: target }),
    h('td', { class: 'num', text: String(r.status) }),
    h('td', { text: r.errorCode ?? '' }),
    h('td', { class: 'muted', text: r.requestId }),
  );
}

/** @param {ViewContext} ctx */
export function auditView(ctx) {
  const { view } = ctx;
  const actionSel = h(
    'select',
    { id: 'audit-action', 'aria-label': 'Action' },
    h('option', { value: '', text: 'Any action' }),
    ACTIONS.map((a) => h('option', { value: a, text: a })),
  );
  const body = h('tbody', {});
  const more = h('button', { class: 'button', type: 'button', text: 'Load more', hidden: true });
  const status = h('p', { class: 'muted' });
  view.append(
    h('h1', { text: 'Audit log' }),
    h(
      'div',
      { class: 'card' },
      h('div', { class: 'toolbar' }, actionSel),
      h(
        'table',
        { class: 'table', id: 'audit' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Time (UTC)', 'Action', 'Key', 'Route', 'Target', 'Status', 'Error', 'Request'].map((t) => h('th', { text: t })),
          ),
        ),
        body,
      ),
      status,
      more,
    ),
  );
  /** @type {(reset: boolean) => Promise<void>} */
  const load = pagedList(ctx, {
    body,
    status,
    more,
    fetch: (cursor) => api.audit({ action: actionSel.value, limit: PAGE, cursor }),
    /** @param {AuditEntry} r */
    row: (r) => auditRow(r),
    summary: (n) => (n === 0 ? 'No admin actions on record.' : ''),
  });
  actionSel.addEventListener('change', () => load(true));
  more.addEventListener('click', () => load(false));
  load(true);
}
