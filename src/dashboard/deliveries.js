// Owns the Deliveries page: webhook deliveries filtered by status and endpoint, and the Retry button.
// Must never send a delivery except when the user presses Retry (one manual attempt, through the API).
// @ts-check

import * as api from './api.js';
import { badge, h, messageOf, pagedList, toast } from './dom.js';
import { fmtTime } from './format.js';

/** @typedef {import('./types.js').Delivery} Delivery */
/** @typedef {import('./types.js').DeliveryDetail} DeliveryDetail */
/** @typedef {import('./types.js').DeliveryStatus} DeliveryStatus */
/** @typedef {import('./types.js').ViewContext} ViewContext */

/** @type {readonly DeliveryStatus[]} Every delivery status, in the order the dashboard shows them. */
export const STATUSES = ['pending', 'sending', 'retry_scheduled', 'succeeded', 'failed', 'cancelled', 'held'];

const PAGE = 50;

/**
 * A manual attempt makes sense unless the delivery succeeded or a worker is sending it.
 * @param {Pick<Delivery, 'status'>} d
 * @returns {boolean}
 */
export function canRetry(d) {
  return d.status !== 'succeeded' && d.status !== 'sending';
}

/**
 * A Retry button: one manual attempt now, its outcome in a toast, then `onDone` with the updated delivery.
 * @param {ViewContext} ctx
 * @param {Pick<Delivery, 'id'>} d
 * @param {(updated: Delivery) => void} onDone
 * @returns {HTMLButtonElement | null} null for a key that may not retry (no admin scope)
 */
export function retryButton(ctx, d, onDone) {
  if (!api.isAdmin()) return null;
  const b = h('button', { class: 'button small primary', type: 'button', text: 'Retry', 'data-action': 'retry' });
  b.addEventListener('click', async () => {
    b.disabled = true;
    b.textContent = 'Sending…';
    try {
      const r = await api.retryDelivery(d.id);
      const a = r.attempt;
      if (a.statusCode !== null && a.statusCode >= 200 && a.statusCode < 300) {
        toast(`Delivered: the endpoint answered ${a.statusCode}`, 'ok');
      } else {
        toast(`Attempt failed: ${a.statusCode !== null ? `HTTP ${a.statusCode}` : a.errorClass || ''} ${a.error || ''}`.trim(), 'bad');
      }
      if (ctx.current()) onDone(r.delivery);
    } catch (err) {
      toast(api.statusOf(err) === 409 ? 'A worker is sending this delivery right now; try again shortly.' : messageOf(err), 'bad');
      b.disabled = false;
      b.textContent = 'Retry';
    }
  });
  return b;
}

/**
 * A delivery's row; a retry refills it with the updated delivery.
 * @param {ViewContext} ctx
 * @param {Delivery} d
 * @returns {HTMLTableRowElement}
 */
function deliveryRow(ctx, d) {
  const row = h('tr', { dataset: { deliveryId: d.id, status: d.status } });
  /** @param {Delivery} x */
  const fill = (x) => {
    row.dataset.status = x.status;
    row.replaceChildren(
      h('td', { text: fmtTime(x.createdAt) }),
      h('td', {}, h('code', { text: x.endpointId })),
      h('td', {}, badge(x.status), x.nextAttemptAt ? h('div', { class: 'muted small', text: `next ${fmtTime(x.nextAttemptAt)}` }) : null),
      h('td', { class: 'num', text: String(x.attempts) }),
      h('td', { class: 'num', text: x.lastStatusCode === null ? '—' : String(x.lastStatusCode) }),
      h('td', { class: 'wrap error-text', text: x.lastError || '' }),
      h(
        'td',
        { class: 'actions' },
        h('a', { class: 'button small', href: `#/deliveries/${encodeURIComponent(x.id)}`, text: 'Attempts' }),
        canRetry(x) ? retryButton(ctx, x, (updated) => fill(updated)) : null,
      ),
    );
  };
  fill(d);
  return row;
}

/**
 * @param {ViewContext} ctx
 * @param {URLSearchParams} query the hash's query: status, endpointId
 */
export function deliveriesView(ctx, query) {
  const { view } = ctx;
  const statusSel = h(
    'select',
    { id: 'delivery-status', 'aria-label': 'Status' },
    h('option', { value: '', text: 'Any status' }),
    STATUSES.map((s) => h('option', { value: s, text: s, selected: query.get('status') === s })),
  );
  const endpointSel = h('select', { id: 'delivery-endpoint', 'aria-label': 'Endpoint' }, h('option', { value: '', text: 'Any endpoint' }));
  const refresh = h('button', { class: 'button', type: 'button', text: 'Refresh', id: 'delivery-refresh' });
  const body = h('tbody', {});
  const more = h('button', { class: 'button', type: 'button', text: 'Load more', hidden: true });
  const status = h('p', { class: 'muted' });
  view.append(
    h('h1', { text: 'Webhook deliveries' }),
    h(
      'div',
      { class: 'card' },
      h('div', { class: 'toolbar' }, statusSel, endpointSel, refresh),
      h(
        'table',
        { class: 'table', id: 'deliveries' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Created (UTC)', 'Endpoint', 'Status', 'Attempts', 'Last HTTP', 'Last error', ''].map((t) => h('th', { text: t })),
          ),
        ),
        body,
      ),
      status,
      more,
    ),
  );

  api
    .endpoints()
    .then((endpoints) => {
      for (const e of endpoints) endpointSel.append(h('option', { value: e.id, text: e.id, selected: query.get('endpointId') === e.id }));
    })
    .catch(() => undefined);

  /** @type {(reset: boolean) => Promise<void>} */
  const load = pagedList(ctx, {
    body,
    status,
    more,
    fetch: (cursor) =>
      api.deliveries({
        status: statusSel.value,
        endpointId: endpointSel.value || query.get('endpointId'),
        limit: PAGE,
        cursor,
      }),
    /** @param {Delivery} d */
    row: (d) => deliveryRow(ctx, d),
    summary: (n) => (n === 0 ? 'No deliveries match.' : ''),
  });
  const onFilter = () => {
    query.delete('endpointId');
    history.replaceState(null, '', `#/deliveries${api.qs({ status: statusSel.value, endpointId: endpointSel.value })}`);
    load(true);
  };
  statusSel.addEventListener('change', onFilter);
  endpointSel.addEventListener('change', onFilter);
  refresh.addEventListener('click', () => load(true));
  more.addEventListener('click', () => load(false));
  load(true);
}
