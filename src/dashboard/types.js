// Owns the JSDoc types the modules share: the API answers read (the SDK's wire types where it has them), a view's context.
// Must never hold runtime code: modules import it in JSDoc only, so the browser never loads it.
// @ts-check

/** @typedef {import('../client/types.js').Aggregation} Aggregation */
/** @typedef {import('../client/types.js').Delivery} Delivery */
/** @typedef {import('../client/types.js').DeliveryDetail} DeliveryDetail */
/** @typedef {import('../client/types.js').DeliveryRetryResult} DeliveryRetryResult */
/** @typedef {import('../client/types.js').DeliveryStatus} DeliveryStatus */
/** @typedef {import('../client/types.js').Endpoint} Endpoint */
/** @typedef {import('../client/types.js').GroupTotal} GroupTotal */
/** @typedef {import('../client/types.js').Usage} Usage */
/** @typedef {import('../client/types.js').WebhookStatus} WebhookStatus */
/** @typedef {import('../client/types.js').Session} Session */
/** @typedef {import('../client/types.js').AuditEntry} AuditEntry */
/** @template T @typedef {import('../client/types.js').Page<T>} Page */

/** GET / (the service descriptor). */
/** @typedef {{ service: string, version: string }} ServerInfo */

/** One row of GET /customers. */
/** @typedef {{ customerId: string, lastUsageAt: string }} CustomerRow */

/** Series buckets (GET /customers/:id/usage/series?bucket=). */
/** @typedef {'hour' | 'day'} Bucket */

/**
 * GET /customers/:id/usage/series.
 * @typedef {object} UsageSeries
 * @property {string} customerId
 * @property {string} eventType
 * @property {string} op
 * @property {Bucket} bucket
 * @property {string} from start of the first bucket
 * @property {string} to last instant of the last bucket
 * @property {SeriesPoint[]} points buckets with usage only
 * @property {string} [groupBy] the dimension the groups split on, when the request gave groupBy
 * @property {GroupSeries[]} [groups] one series per value of that dimension: null first, then by value; the overflow series last
 */

/** One bucket of a series. */
/** @typedef {{ t: string, value: number, valueDecimal: string, count: number }} SeriesPoint */

/**
 * One value of the split dimension and its points (null: missing, null or not a scalar; null too on the overflow series).
 * @typedef {{ value: string | null, overflow?: true, points: SeriesPoint[] }} GroupSeries
 */

/**
 * GET /stats: the last 7 days.
 * @typedef {object} Stats
 * @property {string} generatedAt
 * @property {Record<string, string>} eventTypes configured event types and their operators
 * @property {StatsEvents} events
 * @property {{ from: string, final: number, provisional: number, complete: boolean }} aggregations
 * @property {Record<string, number>} deliveries webhook deliveries by status
 * @property {{ total: number, active: number, disabled: number, failing: number }} endpoints
 */

/**
 * Events per hour over the last 7 days, by event time, summed over customers.
 * @typedef {object} StatsEvents
 * @property {string} from
 * @property {string} to
 * @property {string} bucket
 * @property {number} total
 * @property {Record<string, number>} byType
 * @property {Array<{ t: string, count: number, byType: Record<string, number> }>} points
 * @property {number} customersWithUsage
 * @property {number} customersScanned
 * @property {boolean} complete false when there were too many customers to examine all of them
 */

/**
 * One meter of GET /config's `events`: its operator, the metadata keys its totals split on, a unique meter's field.
 * @typedef {{ op: string, groupBy?: string[], field?: string }} Meter
 */

/**
 * The parts of GET /config (the redacted effective configuration) the dashboard reads.
 * @typedef {object} DashboardConfig
 * @property {Record<string, Meter>} [events]
 * @property {string[]} [periods]
 * @property {string} [schedule]
 * @property {string} [gracePeriod]
 * @property {string} [maxEventAge]
 * @property {unknown[]} [webhooks]
 */

/**
 * What a view gets from the router: the element it fills, whether it is still the page shown (async
 * work checks before touching the DOM), and a way to render the current page again.
 * @typedef {object} ViewContext
 * @property {HTMLElement} view
 * @property {() => boolean} current
 * @property {() => void} reload
 */

export {};

/**
 * One stored API key, as GET /keys lists it: never its material, only the prefix it starts with.
 * @typedef {object} ApiKeyInfo
 * @property {string} id
 * @property {string} name
 * @property {string} prefix
 * @property {Array<'ingest' | 'read' | 'admin'>} scopes
 * @property {string | null} customerId
 * @property {string | null} expiresAt
 * @property {{ requestsPerSecond: number, burst: number } | null} rateLimit
 * @property {string} createdAt
 * @property {string | null} revokedAt
 */
