// Owns the Customers page: customer ids found by prefix, page by page, each linking to its customer page.
// Must never load every customer at once: it lists one page at a time through the API's cursor.
// @ts-check

import * as api from './api.js';
import { h, pagedList } from './dom.js';
import { fmtTime } from './format.js';

/** @typedef {import('./types.js').CustomerRow} CustomerRow */
/** @typedef {import('./types.js').ViewContext} ViewContext */

const PAGE = 50;

/**
 * @param {ViewContext} ctx
 * @param {URLSearchParams} query the hash's query: search
 */
export function customersView(ctx, query) {
  const { view } = ctx;
  const search = h('input', {
    id: 'customer-search',
    type: 'search',
    placeholder: 'Customer id starts with…',
    value: query.get('search') || '',
    'aria-label': 'Search customers by id prefix',
    spellcheck: 'false',
  });
  const body = h('tbody', {});
  const more = h('button', { class: 'button', type: 'button', text: 'Load more', hidden: true });
  const status = h('p', { class: 'muted' });
  view.append(
    h('h1', { text: 'Customers' }),
    h(
      'div',
      { class: 'card' },
      h('div', { class: 'toolbar' }, search, status),
      h(
        'table',
        { class: 'table', id: 'customers' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Customer' }), h('th', { text: 'Latest usage (hour, UTC)' }))),
        body,
      ),
      more,
    ),
  );

  /** @type {(reset: boolean) => Promise<void>} */
  const load = pagedList(ctx, {
    body,
    status,
    more,
    fetch: (cursor) => api.customers({ search: search.value, limit: PAGE, cursor }),
    /** @param {CustomerRow} c */
    row: (c) =>
      h(
        'tr',
        { dataset: { customerId: c.customerId } },
        h('td', {}, h('a', { href: `#/customers/${encodeURIComponent(c.customerId)}`, text: c.customerId })),
        h('td', { text: fmtTime(c.lastUsageAt) }),
      ),
    summary: (n, hasMore) =>
      n === 0
        ? search.value
          ? `No customer id starts with “${search.value}”.`
          : 'No customers with usage yet.'
        : `${n}${hasMore ? '+' : ''} customer${n === 1 ? '' : 's'}`,
  });
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      history.replaceState(null, '', `#/customers${api.qs({ search: search.value })}`);
      load(true);
    }, 250);
  });
  more.addEventListener('click', () => load(false));
  load(true);
  search.focus();
}
