// Owns building the dashboard's DOM: elements from plain data, badges, toasts, error boxes and paged tables.
// Must never insert a value as HTML: every value becomes a text node or an attribute.
// @ts-check

/** @typedef {import('./types.js').ViewContext} ViewContext */
/** @template T @typedef {import('./types.js').Page<T>} Page */

/** Attributes for h(): class, text, on<Event> handlers, dataset, and plain attributes (true: present). */
/** @typedef {Record<string, unknown>} Attrs */
/** A child for h(): text or a node; null, undefined and false are left out. */
/** @typedef {Node | string | number | boolean | null | undefined} Leaf */
/** Children may come in arrays, and arrays of arrays (flattened). */
/** @typedef {Leaf | Array<Leaf | Array<Leaf>>} Child */

/**
 * @param {Element} el
 * @param {Child} c
 */
function appendChild(el, c) {
  if (Array.isArray(c)) for (const x of c) appendChild(el, x);
  else if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
}

/**
 * Creates an element: attrs may hold class, text, on<Event> handlers, dataset, and plain attributes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children) appendChild(el, c);
  return el;
}

/**
 * The page's element for `sel` (one of index.html's fixed elements), of the given class.
 * @template {Element} [T=HTMLElement]
 * @param {string} sel
 * @param {{ new (): T, prototype: T }} [type]
 * @returns {T}
 */
export function $(sel, type) {
  const el = document.querySelector(sel);
  if (!(el instanceof (type || HTMLElement))) throw new Error(`The page has no ${sel}`);
  return /** @type {T} */ (el);
}

/**
 * A status pill; its class is `kind`, or the text itself (e.g. "failed").
 * @param {string} text
 * @param {string} [kind]
 * @returns {HTMLElement}
 */
export function badge(text, kind) {
  return h('span', { class: `badge ${kind || String(text).replace(/[^a-z_]/gi, '')}`, text });
}

/**
 * A message in the corner for five seconds.
 * @param {string} message
 * @param {'ok' | 'bad'} [kind]
 */
export function toast(message, kind) {
  const el = h('div', { class: `toast ${kind || ''}`, role: 'status', text: message });
  $('#toasts').append(el);
  setTimeout(() => el.remove(), 5000);
}

/**
 * An error's message, for people.
 * @param {unknown} err
 * @returns {string}
 */
export function messageOf(err) {
  return err instanceof Error ? err.message : String(err);
}

/**
 * @param {unknown} err
 * @returns {HTMLElement}
 */
export function errorBox(err) {
  return h('p', { class: 'error', role: 'alert', text: messageOf(err) });
}

/**
 * A table filled page by page through the API's X-Next-Cursor. Returns load(reset): reset starts
 * over; otherwise the next page is appended. Answers that arrive after a newer load, or after the
 * view was left, are dropped.
 * @template T
 * @param {ViewContext} ctx
 * @param {object} parts
 * @param {HTMLElement} parts.body the tbody the rows go into
 * @param {HTMLElement} parts.status where "Loading…", the summary or an error goes
 * @param {HTMLElement} parts.more the "Load more" button, shown while there is a next page
 * @param {(cursor: string | null) => Promise<Page<T>>} parts.fetch one page from the API
 * @param {(item: T) => Node} parts.row
 * @param {(rows: number, hasMore: boolean) => string} parts.summary
 * @returns {(reset: boolean) => Promise<void>}
 */
export function pagedList(ctx, { body, status, more, fetch, row, summary }) {
  /** @type {string | null} */
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
      const page = await fetch(cursor);
      if (!ctx.current() || mine !== seq) return;
      for (const item of page.items) body.append(row(item));
      cursor = page.nextCursor;
      more.hidden = !cursor;
      status.textContent = summary(body.children.length, Boolean(cursor));
    } catch (err) {
      if (ctx.current() && mine === seq) status.replaceChildren(errorBox(err));
    }
  };
}
