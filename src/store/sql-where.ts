// Owns the filters of the port's list queries (events, aggregations, deliveries) as SQL for both adapters:
// which column each filter hits, inclusive from/to, the newest-first keyset cursor, the limit. Must never know
// a table's joins or indexes: an adapter names the columns, this only writes the clause after FROM.

import type { AuditQuery } from '../domain/audit.js';
import type { AggregationQuery, DeliveryQuery, EventQuery } from './store.js';

/** How an adapter's driver takes parameters. */
export interface SqlStyle {
  /** The placeholder of the n-th parameter (1-based). */
  placeholder(n: number): string;
  /** A boolean as the driver binds it. */
  bool(b: boolean): boolean | number;
}

/** better-sqlite3: `?` placeholders; it binds no booleans, so they go as 0/1. */
export const SQLITE_STYLE: SqlStyle = { placeholder: () => '?', bool: (b) => (b ? 1 : 0) };
/** pg: `$1`, `$2`, … placeholders and real booleans. */
export const POSTGRES_STYLE: SqlStyle = { placeholder: (n) => `$${n}`, bool: (b) => b };

/** `WHERE … ORDER BY … LIMIT …` (the WHERE only when a filter is set) and its parameters in order. */
export interface ListSql {
  sql: string;
  params: unknown[];
}

class Clause {
  private readonly where: string[] = [];
  private readonly params: unknown[] = [];

  constructor(private readonly style: SqlStyle) {}

  private p(v: unknown): string {
    this.params.push(v);
    return this.style.placeholder(this.params.length);
  }

  /** `column op ?`, when the filter is set. */
  cmp(column: string, op: '=' | '>=' | '<=', v: unknown): void {
    if (v !== undefined) this.where.push(`${column} ${op} ${this.p(v)}`);
  }

  /**
   * Rows strictly older than the cursor, newest first on (a, b), at most `limit`. The row-value
   * comparison is what lets both databases walk their (a, b) index from the cursor on.
   */
  finish(a: string, b: string, cursor: readonly [unknown, unknown] | undefined, limit: number): ListSql {
    if (cursor) this.where.push(`(${a}, ${b}) < (${this.p(cursor[0])}, ${this.p(cursor[1])})`);
    const where = this.where.length ? `WHERE ${this.where.join(' AND ')} ` : '';
    return { sql: `${where}ORDER BY ${a} DESC, ${b} DESC LIMIT ${this.p(limit)}`, params: this.params };
  }
}

/** The columns an event listing filters on, as the adapter's query names them. */
export interface EventColumns {
  customerId: string;
  eventType: string;
  ts: string;
  seq: string;
}

export const EVENT_COLUMNS: EventColumns = { customerId: 'customer_id', eventType: 'event_type', ts: 'ts', seq: 'seq' };

/** GET /events: by customer and type, `from <= ts <= to`, newest (ts, seq) first. */
export function eventListSql(q: EventQuery, style: SqlStyle, c: EventColumns = EVENT_COLUMNS): ListSql {
  const w = new Clause(style);
  w.cmp(c.customerId, '=', q.customerId);
  w.cmp(c.eventType, '=', q.eventType);
  w.cmp(c.ts, '>=', q.from);
  w.cmp(c.ts, '<=', q.to);
  return w.finish(c.ts, c.seq, q.before && [q.before.ts, q.before.seq], q.limit);
}

/** GET /aggregations: by customer, period, key and finality, `from <= period_start <= to`, newest first. */
export function aggregationListSql(q: AggregationQuery, style: SqlStyle): ListSql {
  const w = new Clause(style);
  w.cmp('customer_id', '=', q.customerId);
  w.cmp('period', '=', q.period);
  w.cmp('period_key', '=', q.periodKey);
  w.cmp('final', '=', q.final === undefined ? undefined : style.bool(q.final));
  w.cmp('period_start', '>=', q.from);
  w.cmp('period_start', '<=', q.to);
  return w.finish('period_start', 'id', q.before && [q.before.periodStart, q.before.id], q.limit);
}

/** GET /webhooks/deliveries: by status, endpoint and aggregation, `from <= created_at <= to`, newest first. */
export function deliveryListSql(q: DeliveryQuery, style: SqlStyle): ListSql {
  const w = new Clause(style);
  w.cmp('status', '=', q.status);
  w.cmp('endpoint_id', '=', q.endpointId);
  w.cmp('aggregation_id', '=', q.aggregationId);
  w.cmp('created_at', '>=', q.from);
  w.cmp('created_at', '<=', q.to);
  return w.finish('created_at', 'id', q.before && [q.before.createdAt, q.before.id], q.limit);
}

/** GET /audit: by action and key, `from <= at <= to`, newest first. */
export function auditListSql(q: AuditQuery, style: SqlStyle): ListSql {
  const w = new Clause(style);
  w.cmp('action', '=', q.action);
  w.cmp('key_id', '=', q.keyId);
  w.cmp('at', '>=', q.from);
  w.cmp('at', '<=', q.to);
  return w.finish('at', 'id', q.before && [q.before.at, q.before.id], q.limit);
}

/** A constant list of SQL string literals, for `IN (…)`: only for the code's own constants, never for input. */
export function sqlStringList(values: readonly string[]): string {
  return values.map((v) => `'${v.replaceAll("'", "''")}'`).join(', ');
}
