// Owns the dashboard's shell: signing in and out, the navigation, and routing each #/… hash to its page.
// Must never render API values as HTML, nor keep the API key anywhere but the tab's sessionStorage (api.js).
// @ts-check

import * as api from './api.js';
import { destroyCharts } from './charts.js';
import { configView } from './configuration.js';
import { customerView } from './customer.js';
import { customersView } from './customers.js';
import { deliveriesView } from './deliveries.js';
import { deliveryView } from './delivery.js';
import { $, messageOf } from './dom.js';
import { keysView } from './keys.js';
import { overviewView } from './overview.js';
import { auditView } from './audit.js';

/** @typedef {import('./types.js').ViewContext} ViewContext */

let viewSeq = 0; // bumped on every navigation; stale async renders check it and stop

// ------------------------------------------------------------------------------------------
// Sign-in
// ------------------------------------------------------------------------------------------

/** @param {string} [message] why the user has to sign in (again) */
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
  const input = $('#api-key', HTMLInputElement);
  input.value = '';
  input.focus();
}

/** @param {string} [message] */
function signOut(message) {
  api.forgetKey();
  showSignIn(message);
}

/** @param {SubmitEvent} ev */
async function onSignIn(ev) {
  ev.preventDefault();
  const key = $('#api-key', HTMLInputElement).value.trim();
  if (!key) return;
  const button = $('#sign-in-button', HTMLButtonElement);
  button.disabled = true;
  try {
    await api.ping(key);
    api.keepKey(key);
    $('#sign-in').hidden = true;
    await start();
  } catch (err) {
    const msg = api.statusOf(err) === 401 ? 'That API key was not accepted.' : messageOf(err);
    $('#sign-in-error').hidden = false;
    $('#sign-in-error').textContent = msg;
  } finally {
    button.disabled = false;
  }
}

async function start() {
  try {
    await api.loadSession();
  } catch (err) {
    return showSignIn(messageOf(err));
  }
  // Admin pages (deliveries, configuration, audit) are not offered to a key that may not open them.
  for (const a of document.querySelectorAll('#nav a[data-admin]')) {
    if (a instanceof HTMLElement) a.hidden = !api.isAdmin();
  }
  $('#nav').hidden = false;
  $('#sign-out').hidden = false;
  $('#view').hidden = false;
  try {
    const info = await api.serverInfo();
    $('#server-info').textContent = `${info.service} ${info.version}`;
  } catch {
    // the descriptor is decoration; the views report their own errors
  }
  route();
}

// ------------------------------------------------------------------------------------------
// Routing: #/overview, #/customers, #/customers/<id>, #/deliveries, #/deliveries/<id>, #/config, #/keys, #/audit
// ------------------------------------------------------------------------------------------

/** @returns {{ segments: string[], query: URLSearchParams }} */
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

/** Renders the page the hash names, from scratch. */
function route() {
  if (!api.hasKey()) return showSignIn();
  destroyCharts();
  const seq = ++viewSeq;
  const { segments, query } = parseHash();
  const [section, id] = segments;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a instanceof HTMLElement) a.classList.toggle('active', a.dataset.section === section);
  }
  const view = $('#view');
  view.replaceChildren();
  /** @type {ViewContext} */
  const ctx = { view, current: () => seq === viewSeq, reload: route };
  switch (section) {
    case 'customers':
      return id === undefined || id === '' ? customersView(ctx, query) : customerView(ctx, id);
    case 'deliveries':
      return id === undefined || id === '' ? deliveriesView(ctx, query) : deliveryView(ctx, id);
    case 'config':
      return configView(ctx);
    case 'keys':
      return keysView(ctx);
    case 'audit':
      return auditView(ctx);
    default:
      return overviewView(ctx);
  }
}

// ------------------------------------------------------------------------------------------
// Boot
// ------------------------------------------------------------------------------------------

api.onKeyRejected((message) => signOut(message));
$('#sign-in-form').addEventListener('submit', onSignIn);
$('#sign-out').addEventListener('click', () => signOut());
window.addEventListener('hashchange', () => route());
if (api.hasKey()) start();
else showSignIn();
