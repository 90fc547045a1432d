// Owns a delivery's page: its summary, every attempt (scheduled, manual, dry run) and the signed payload.
// Must never send a delivery except when the user presses Retry (one manual attempt, through the API).
// @ts-check

import * as api from './api.js';
import { canRetry, retryButton } from './deliveries.js';
import { badge, errorBox, h } from './dom.js';
import { fmtTime } from './format.js';

/** @typedef {import('./types.js').DeliveryDetail} DeliveryDetail */
/** @typedef {import('./types.js').ViewContext} ViewContext */

/**
 * @param {ViewContext} ctx
 * @param {string} id
 */
export async function deliveryView(ctx, id) {
  const { view } = ctx;
  view.append(h('p', {}, h('a', { href: '#/deliveries', text: '← Deliveries' })), h('h1', {}, 'Delivery ', h('code', { text: id })));
  /** @type {DeliveryDetail} */
  let d;
  try {
    d = await api.delivery(id);
  } catch (err) {
    if (ctx.current()) view.append(errorBox(err));
    return;
  }
  if (!ctx.current()) return;
  /** @type {Array<[string, Node | string]>} */
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
  const attemptHeads = ['#', 'Started (UTC)', 'Duration', 'HTTP', 'Error class', 'Error', 'Response body', 'Kind'];
  view.append(
    h(
      'section',
      { class: 'card', id: 'delivery-detail', dataset: { status: d.status } },
      h('div', { class: 'card-head' }, h('h2', { text: 'Summary' }), canRetry(d) ? retryButton(ctx, d, () => ctx.reload()) : null),
      h(
        'dl',
        { class: 'facts' },
        facts.map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]),
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', { text: `Attempts (${d.attempts.length})` }),
      d.attempts.length === 0
        ? h('p', { class: 'empty', text: 'No attempt yet.' })
        : h(
            'table',
            { class: 'table', id: 'attempts' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                attemptHeads.map((t) => h('th', { text: t })),
              ),
            ),
            h(
              'tbody',
              {},
              d.attempts.map((a) =>
                h(
                  'tr',
                  {},
                  h('td', { class: 'num', text: String(a.attempt) }),
                  h('td', { text: fmtTime(a.startedAt) }),
                  h('td', { class: 'num', text: `${a.durationMs} ms` }),
                  h('td', { class: 'num', text: a.statusCode === null ? '—' : String(a.statusCode) }),
                  h('td', { text: a.errorClass || '—' }),
                  h('td', { class: 'wrap', text: a.error || '' }),
                  h('td', { class: 'wrap' }, a.responseBody ? h('code', { class: 'snippet', text: a.responseBody.slice(0, 300) }) : '—'),
                  h('td', { text: a.dryRun ? 'dry run' : a.manual ? 'manual' : 'scheduled' }),
                ),
              ),
            ),
          ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', { text: 'Payload' }),
      h('pre', { class: 'json', text: JSON.stringify(d.message.payload, null, 2) }),
    ),
  );
}
