// Owns talking to the meterhook API: the API key (this tab's sessionStorage), fetch, errors, one call per endpoint.
// Must never send the key anywhere but this origin's x-apikey header, nor keep it anywhere but sessionStorage.
// @ts-check

/** @typedef {import('./types.js').ApiKeyInfo} ApiKeyInfo */
/** @typedef {import('./types.js').Aggregation} Aggregation */
/** @typedef {import('./types.js').CustomerRow} CustomerRow */
/** @typedef {import('./types.js').DashboardConfig} DashboardConfig */
/** @typedef {import('./types.js').Delivery} Delivery */
/** @typedef {import('./types.js').DeliveryDetail} DeliveryDetail */
/** @typedef {import('./types.js').DeliveryRetryResult} DeliveryRetryResult */
/** @typedef {import('./types.js').Endpoint} Endpoint */
/** @typedef {import('./types.js').ServerInfo} ServerInfo */
/** @typedef {import('./types.js').Stats} Stats */
/** @typedef {import('./types.js').Usage} Usage */
/** @typedef {import('./types.js').Session} Session */
/** @typedef {import('./types.js').AuditEntry} AuditEntry */
/** @typedef {import('./types.js').UsageSeries} UsageSeries */
/** @template T @typedef {import('./types.js').Page<T>} Page */

const KEY_STORAGE = 'meterhook.apiKey';

let apiKey = sessionStorage.getItem(KEY_STORAGE);
/** @type {DashboardConfig | null} GET /config, loaded once per sign-in */
let config = null;
/** @type {Session | null} GET /session, loaded once per sign-in */
let session = null;
/** @type {(message: string) => void} */
let onRejected = () => undefined;

export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status; 0 when the server did not answer
   * @param {string} message
   * @param {unknown} [body]
   */
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/**
 * The HTTP status of a failed call, if the server answered.
 * @param {unknown} err
 * @returns {number | undefined}
 */
export const statusOf = (err) => (err instanceof ApiError ? err.status : undefined);

/** @returns {boolean} whether a key is kept (the user signed in) */
export const hasKey = () => Boolean(apiKey);

/** @param {string} key a key the server accepted */
export function keepKey(key) {
  apiKey = key;
  sessionStorage.setItem(KEY_STORAGE, key);
}

/** Forgets the key and everything loaded with it. */
export function forgetKey() {
  apiKey = null;
  config = null;
  session = null;
  sessionStorage.removeItem(KEY_STORAGE);
}

/** @param {(message: string) => void} fn called when the server rejects the kept key (401) */
export function onKeyRejected(fn) {
  onRejected = fn;
}

/**
 * @typedef {object} RequestOptions
 * @property {string} [method]
 * @property {unknown} [body] sent as JSON
 * @property {string} [key] a key to try instead of the kept one; its 401 does not sign out
 */

/**
 * Calls the API with the key; a 401 signs out.
 * @param {string} path
 * @param {RequestOptions} [opts]
 * @returns {Promise<{ data: unknown, headers: Headers }>}
 */
async function request(path, opts) {
  const o = opts || {};
  /** @type {Record<string, string>} */
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
    throw new ApiError(0, `The server did not answer (${err instanceof Error ? err.message : String(err)})`);
  }
  const text = await res.text();
  /** @type {unknown} */
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (res.status === 401 && !o.key) {
    onRejected('The API key was rejected. Sign in again.');
    throw new ApiError(401, 'The API key was rejected');
  }
  if (!res.ok) {
    const msg =
      data && typeof data === 'object' && 'error' in data && typeof data.error === 'string'
        ? data.error
        : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, msg, data);
  }
  return { data, headers: res.headers };
}

/**
 * The answer's body, typed by the caller's declared return type.
 * @template T
 * @param {string} path
 * @param {RequestOptions} [opts]
 * @returns {Promise<T>}
 */
async function data(path, opts) {
  return /** @type {T} */ ((await request(path, opts)).data);
}

/**
 * One page of a listing: the items and the X-Next-Cursor header.
 * @template T
 * @param {string} path
 * @returns {Promise<Page<T>>}
 */
async function page(path) {
  const r = await request(path);
  return { items: /** @type {T[]} */ (r.data), nextCursor: r.headers.get('x-next-cursor') };
}

/**
 * A query string of the parameters that have a value ('' and null count as none).
 * @param {Record<string, string | number | null | undefined>} params
 * @returns {string}
 */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

const enc = encodeURIComponent;

/**
 * Checks a key before keeping it: /ping needs a key and returns nothing sensitive.
 * @param {string} key
 * @returns {Promise<void>}
 */
export async function ping(key) {
  await request('/ping', { key });
}

/** @returns {Promise<ServerInfo>} */
export const serverInfo = () => data('/');

/**
 * The configuration, loaded once per sign-in unless `fresh`.
 * @param {{ fresh?: boolean }} [opts]
 * @returns {Promise<DashboardConfig>}
 */
export async function loadConfig(opts) {
  if (opts?.fresh) config = null;
  // GET /config is for admin keys; a read key learns the meters and their operators from GET /stats.
  if (!config && !isAdmin()) {
    const s = await stats();
    config = { events: Object.fromEntries(Object.entries(s.eventTypes).map(([t, op]) => [t, { op }])) };
  }
  if (!config) config = await data('/config');
  return /** @type {DashboardConfig} */ (config);
}

/** @returns {Promise<Stats>} */
export const stats = () => data('/stats');

/** @returns {Promise<Endpoint[]>} */
export const endpoints = () => data('/webhooks/endpoints');

/**
 * @param {string} id
 * @returns {Promise<{ released: number }>}
 */
export const enableEndpoint = (id) => data(`/webhooks/endpoints/${enc(id)}/enable`, { method: 'POST' });

/**
 * @param {{ search: string, limit: number, cursor: string | null }} q
 * @returns {Promise<Page<CustomerRow>>}
 */
export const customers = (q) => page(`/customers${qs(q)}`);

/**
 * @param {string} customerId
 * @param {string} period
 * @returns {Promise<Usage>}
 */
export const customerUsage = (customerId, period) => data(`/customers/${enc(customerId)}/usage${qs({ period })}`);

/**
 * @param {string} customerId
 * @param {{ eventType: string, bucket: string, from: string | null, to: string | null, groupBy?: string | null }} q
 * @returns {Promise<UsageSeries>}
 */
export const usageSeries = (customerId, q) => data(`/customers/${enc(customerId)}/usage/series${qs(q)}`);

/**
 * @param {{ customerId: string, period: string, limit: number, cursor: string | null }} q
 * @returns {Promise<Page<Aggregation>>}
 */
export const aggregations = (q) => page(`/aggregations${qs(q)}`);

/**
 * @param {{ status: string, endpointId: string | null, limit: number, cursor: string | null }} q
 * @returns {Promise<Page<Delivery>>}
 */
export const deliveries = (q) => page(`/webhooks/deliveries${qs(q)}`);

/**
 * @param {string} id
 * @returns {Promise<DeliveryDetail>}
 */
export const delivery = (id) => data(`/webhooks/deliveries/${enc(id)}`);

/**
 * A manual attempt, sent now.
 * @param {string} id
 * @returns {Promise<DeliveryRetryResult>}
 */
export const retryDelivery = (id) => data(`/webhooks/deliveries/${enc(id)}/retry`, { method: 'POST' });

/**
 * What POST /keys takes.
 * @typedef {object} NewKey
 * @property {string} name
 * @property {Array<'ingest' | 'read' | 'admin'>} scopes
 * @property {string} [customerId]
 * @property {string} [expiresAt]
 * @property {{ requestsPerSecond: number, burst: number }} [rateLimit]
 */

/** @returns {Promise<ApiKeyInfo[]>} the stored keys, without their material */
export const keys = () => data('/keys');

/**
 * Creates a key; the answer holds the key itself, once.
 * @param {NewKey} body
 * @returns {Promise<ApiKeyInfo & { key: string }>}
 */
export const createKey = (body) => data('/keys', { method: 'POST', body });

/**
 * @param {string} id
 * @returns {Promise<void>}
 */
export const revokeKey = async (id) => {
  await request(`/keys/${enc(id)}`, { method: 'DELETE' });
};

/**
 * What the kept key may do (GET /session), loaded once per sign-in.
 * @returns {Promise<Session>}
 */
export async function loadSession() {
  if (!session) session = /** @type {Session} */ (await data('/session'));
  return session;
}

/** @returns {boolean} whether the kept key may call the admin routes (false until loadSession answered) */
export const isAdmin = () => session?.admin === true;

/**
 * @param {{ action: string, limit: number, cursor: string | null }} q
 * @returns {Promise<Page<AuditEntry>>}
 */
export const audit = (q) => page(`/audit${qs(q)}`);
