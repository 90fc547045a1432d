// Owns the Keys page: the stored API keys (never their material), creating one with scopes, a customer, an expiry
// and a rate limit, showing the new key once, and revoking. Must never keep a created key after the page is left,
// nor put it anywhere but the one-time box on this page.
// @ts-check

import * as api from './api.js';
import { badge, errorBox, h, messageOf, toast } from './dom.js';
import { fmtTime } from './format.js';

/** @typedef {import('./types.js').ApiKeyInfo} ApiKeyInfo */
/** @typedef {import('./types.js').ViewContext} ViewContext */

const SCOPES = /** @type {const} */ (['ingest', 'read', 'admin']);

/**
 * A key's state for people: revoked, expired (by the browser's clock, the server decides) or active.
 * @param {ApiKeyInfo} k
 * @returns {string}
 */
function stateOf(k) {
  if (k.revokedAt) return 'revoked';
  if (k.expiresAt && Date.parse(k.expiresAt) <= Date.now()) return 'expired';
  return 'active';
}

/**
 * The new key, shown once with a copy button.
 * @param {{ key: string, name: string }} created
 * @returns {HTMLElement}
 */
function oneTimeBox(created) {
  const value = h('input', { id: 'created-key', type: 'text', readonly: true, value: created.key, spellcheck: 'false' });
  const copy = h('button', { class: 'button small', type: 'button', text: 'Copy' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      toast('Copied', 'ok');
    } catch {
      value.select();
    }
  });
  return h(
    'div',
    { class: 'card notice', role: 'status', id: 'created-key-box' },
    h('strong', { text: `Key “${created.name}” created.` }),
    h('p', { text: 'Copy it now: it is shown once, and the server keeps only its hash.' }),
    h('div', { class: 'toolbar' }, value, copy),
  );
}

/**
 * The create form; `onCreated` gets the answer (with the key) after a 201.
 * @param {(created: ApiKeyInfo & { key: string }) => void} onCreated
 * @returns {HTMLFormElement}
 */
function createForm(onCreated) {
  const name = h('input', { id: 'key-name', type: 'text', required: true, maxlength: '200', 'aria-label': 'Name' });
  const boxes = SCOPES.map((s) => h('input', { type: 'checkbox', name: 'scope', value: s, id: `key-scope-${s}` }));
  const customer = h('input', { id: 'key-customer', type: 'text', spellcheck: 'false', 'aria-label': 'Customer id' });
  const expires = h('input', { id: 'key-expires', type: 'datetime-local', 'aria-label': 'Expires (UTC)' });
  const rate = h('input', { id: 'key-rate', type: 'number', min: '1', step: '1', 'aria-label': 'Requests per second' });
  const burst = h('input', { id: 'key-burst', type: 'number', min: '1', step: '1', 'aria-label': 'Burst' });
  const error = h('p', { class: 'error', role: 'alert', id: 'key-create-error', hidden: true });
  const submit = h('button', { class: 'button primary', type: 'submit', text: 'Create key', id: 'key-create' });
  const field = (/** @type {string} */ label, /** @type {Node} */ input) =>
    h('label', { class: 'field' }, h('span', { text: label }), input);
  const form = h(
    'form',
    { class: 'card', id: 'key-form', autocomplete: 'off' },
    h('h2', { text: 'Create a key' }),
    h('div', { class: 'form-grid' }, field('Name', name), field('Customer id (a portal key; optional)', customer)),
    h(
      'fieldset',
      { class: 'scopes' },
      h('legend', { text: 'Scopes' }),
      SCOPES.map((s, i) => h('label', { class: 'check' }, boxes[i], h('span', { text: s }))),
    ),
    h(
      'div',
      { class: 'form-grid' },
      field('Expires (UTC; optional)', expires),
      field('Rate limit, requests/s (optional)', rate),
      field('Burst (optional)', burst),
    ),
    error,
    submit,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const scopes = SCOPES.filter((_, i) => boxes[i]?.checked);
    if (scopes.length === 0) {
      error.hidden = false;
      error.textContent = 'Choose at least one scope.';
      return;
    }
    /** @type {import('./api.js').NewKey} */
    const body = { name: name.value.trim(), scopes };
    if (customer.value.trim() !== '') body.customerId = customer.value.trim();
    if (expires.value !== '') body.expiresAt = new Date(`${expires.value}Z`).toISOString();
    if (rate.value !== '') body.rateLimit = { requestsPerSecond: Number(rate.value), burst: Number(burst.value || rate.value) };
    submit.disabled = true;
    try {
      const created = await api.createKey(body);
      form.reset();
      onCreated(created);
    } catch (err) {
      error.hidden = false;
      error.textContent = messageOf(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/**
 * One key's row, with a revoke button while it is active.
 * @param {ApiKeyInfo} k
 * @param {() => void} onRevoked
 * @returns {HTMLTableRowElement}
 */
function keyRow(k, onRevoked) {
  const state = stateOf(k);
  /** @type {HTMLButtonElement | null} */
  let revoke = null;
  if (state === 'active') {
    const button = h('button', { class: 'button small danger', type: 'button', text: 'Revoke', 'data-action': 'revoke' });
    button.addEventListener('click', async () => {
      if (!window.confirm(`Revoke “${k.name}”? Requests with it are refused from now on.`)) return;
      button.disabled = true;
      try {
        await api.revokeKey(k.id);
        toast(`Revoked “${k.name}”`, 'ok');
        onRevoked();
      } catch (err) {
        toast(messageOf(err), 'bad');
        button.disabled = false;
      }
    });
    revoke = button;
  }
  const limit = k.rateLimit ? `${k.rateLimit.requestsPerSecond}/s, burst ${k.rateLimit.burst}` : '—';
  return h(
    'tr',
    { dataset: { keyId: k.id, state } },
    h('td', { text: k.name }),
    h('td', {}, h('code', { text: `${k.prefix}…` })),
    h('td', { text: k.scopes.join(', ') }),
    h('td', { text: k.customerId || 'all customers' }),
    h('td', { text: k.expiresAt ? fmtTime(k.expiresAt) : 'never' }),
    h('td', { text: limit }),
    h('td', { text: fmtTime(k.createdAt) }),
    h('td', {}, badge(state), revoke),
  );
}

/** @param {ViewContext} ctx */
export async function keysView(ctx) {
  const { view } = ctx;
  const created = h('div', { id: 'created-slot' });
  const body = h('tbody', {});
  const status = h('p', { class: 'muted' });
  const load = async () => {
    status.textContent = 'Loading…';
    try {
      const keys = await api.keys();
      if (!ctx.current()) return;
      body.replaceChildren(...keys.map((k) => keyRow(k, () => load())));
      status.textContent = `${keys.length} key${keys.length === 1 ? '' : 's'}`;
    } catch (err) {
      if (ctx.current()) status.replaceChildren(errorBox(err));
    }
  };
  view.append(
    h('h1', { text: 'API keys' }),
    h('p', {
      class: 'muted',
      text: 'Keys from METERHOOK_API_KEYS are not listed. A key with a customer id sees and sends only that customer’s usage.',
    }),
    created,
    createForm((k) => {
      created.replaceChildren(oneTimeBox(k));
      load();
    }),
    h(
      'section',
      { class: 'card' },
      h('h2', { text: 'Keys' }),
      status,
      h(
        'table',
        { class: 'table', id: 'keys' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Name', 'Prefix', 'Scopes', 'Customer', 'Expires', 'Rate limit', 'Created', 'State'].map((t) => h('th', { text: t })),
          ),
        ),
        body,
      ),
    ),
  );
  await load();
}
