// Owns the mapping between table rows and the store port's records, once per table shape for both drivers
// (and the parameter lists both write). Must never hold business rules: it only renames and (de)serialises.
//
// One mapper reads either driver's raw row: PostgreSQL returns bigint and numeric columns as text and
// booleans as true/false; SQLite returns numbers and 0/1. float8/REAL values arrive as numbers from both,
// rollup sums as exact decimal text from both, and a NULL stays null.

import { numbersOf } from '../domain/aggregation.js';
import { FIXED_ZERO, formatFixed, parseFixed } from '../domain/decimal.js';
import type { StateField } from '../domain/operators.js';
import type { Period } from '../domain/periods.js';
import { parseScopes } from '../domain/scopes.js';
import type {
  AggregationRecord,
  ApiKeyRecord,
  DirtyMark,
  GroupState,
  GroupTotal,
  RollupRow,
  StoredEvent,
  UniqueCount,
} from '../domain/records.js';
import type { RollupState } from '../domain/rollup-state.js';
import type { AttemptRecord, DeliveryRecord, DeliveryStatus, EndpointState, OutboxMessage } from '../domain/deliveries.js';
import { POSTGRES_STYLE, SQLITE_STYLE, type SqlStyle } from './sql-where.js';

/** An integer column: a number from SQLite, text from pg for bigint. */
type Int = number | string;
type IntOrNull = Int | null;
/** A boolean column: 0/1 from SQLite, true/false from pg. */
type Bool = number | boolean;

const int = (v: Int): number => Number(v);
const intOrNull = (v: IntOrNull | undefined): number | null => (v === null || v === undefined ? null : Number(v));
const bool = (v: Bool): boolean => v === true || v === 1;
const textOrNull = (v: string | null | undefined): string | null => v ?? null;

export interface EventRow {
  seq: Int;
  customer_id: string;
  event_type: string;
  event_id: string | null;
  ts: Int;
  received_at: Int;
  value: number;
  metadata: string | null;
}

export const toEvent = (r: EventRow): StoredEvent => ({
  seq: int(r.seq),
  customerId: r.customer_id,
  eventType: r.event_type,
  id: textOrNull(r.event_id),
  ts: int(r.ts),
  receivedAt: int(r.received_at),
  value: Number(r.value),
  metadata: textOrNull(r.metadata),
});

export interface MarkRow {
  period: string;
  period_start: Int;
  customer_id: string;
  change_seq: Int;
}

export const toMark = (r: MarkRow): DirtyMark => ({
  period: r.period as Period,
  periodStart: int(r.period_start),
  customerId: r.customer_id,
  changeSeq: int(r.change_seq),
});

export interface RollupTableRow {
  event_type: string;
  hour: Int;
  count: Int;
  sum: string;
  vmin: number;
  vmax: number;
  first_ts: Int;
  first_seq: Int;
  first_value: number;
  last_ts: Int;
  last_seq: Int;
  last_value: number;
}

export const toRollup = (r: RollupTableRow): RollupRow => ({
  eventType: r.event_type,
  hour: int(r.hour),
  ...toState(r),
});

/** A merged group row: the state columns with the group key (`grp`) and, for hour reads, the hour. */
export const toGroupState = (r: Omit<RollupTableRow, 'hour'> & { grp: string; hour?: Int }): GroupState & { hour: number } => ({
  eventType: r.event_type,
  group: r.grp,
  hour: r.hour === undefined ? 0 : int(r.hour),
  ...toState(r),
});

/**
 * A merged group row read as an array (better-sqlite3's raw mode, which skips building an object per row):
 * event_type, grp, then the state columns in table order (count … last_value).
 */
export const groupStateOfColumns = (r: readonly unknown[]): GroupState => ({
  eventType: r[0] as string,
  group: r[1] as string,
  count: Number(r[2]),
  sum: parseFixed(String(r[3])),
  min: Number(r[4]),
  max: Number(r[5]),
  firstTs: Number(r[6]),
  firstSeq: Number(r[7]),
  firstValue: Number(r[8]),
  lastTs: Number(r[9]),
  lastSeq: Number(r[10]),
  lastValue: Number(r[11]),
});

/** The state columns holding a StateField, in table order. */
export const FIELD_COLUMNS: Readonly<Record<StateField, string>> = {
  sum: 'sum',
  min: 'vmin',
  max: 'vmax',
  first: 'first_ts, first_seq, first_value',
  last: 'last_ts, last_seq, last_value',
};

/**
 * A merged group row read as event_type, grp, count, then the columns of `field` (FIELD_COLUMNS; none when null):
 * the state's other fields are zero, so only an operator that reads `field` (OPERATOR_READS) may value it.
 */
export function projectedGroupState(field: StateField | null, r: readonly unknown[]): GroupState {
  const g: GroupState = {
    eventType: r[0] as string,
    group: r[1] as string,
    count: Number(r[2]),
    sum: FIXED_ZERO,
    min: 0,
    max: 0,
    firstTs: 0,
    firstSeq: 0,
    firstValue: 0,
    lastTs: 0,
    lastSeq: 0,
    lastValue: 0,
  };
  switch (field) {
    case 'sum':
      g.sum = parseFixed(String(r[3]));
      break;
    case 'min':
      g.min = Number(r[3]);
      break;
    case 'max':
      g.max = Number(r[3]);
      break;
    case 'first':
      g.firstTs = Number(r[3]);
      g.firstSeq = Number(r[4]);
      g.firstValue = Number(r[5]);
      break;
    case 'last':
      g.lastTs = Number(r[3]);
      g.lastSeq = Number(r[4]);
      g.lastValue = Number(r[5]);
      break;
    case null:
      break;
  }
  return g;
}

/** A hour state's columns after its key, in table order (count … last_value), as both drivers bind them. */
export const stateParams = (s: RollupState): unknown[] => [
  s.count,
  formatFixed(s.sum),
  s.min,
  s.max,
  s.firstTs,
  s.firstSeq,
  s.firstValue,
  s.lastTs,
  s.lastSeq,
  s.lastValue,
];

export interface UniqueCountRow {
  event_type: string;
  grp: string;
  n: Int;
  period_start?: Int;
}

export const toUniqueCount = (r: UniqueCountRow): UniqueCount & { periodStart: number } => ({
  eventType: r.event_type,
  group: r.grp,
  count: int(r.n),
  periodStart: r.period_start === undefined ? 0 : int(r.period_start),
});

const toState = (r: Omit<RollupTableRow, 'hour' | 'event_type'>): RollupState => ({
  count: int(r.count),
  // Exact decimal text from both: SQLite's TEXT column, pg's numeric.
  sum: parseFixed(String(r.sum)),
  min: Number(r.vmin),
  max: Number(r.vmax),
  firstTs: int(r.first_ts),
  firstSeq: int(r.first_seq),
  firstValue: Number(r.first_value),
  lastTs: int(r.last_ts),
  lastSeq: int(r.last_seq),
  lastValue: Number(r.last_value),
});

export interface AggregationRow {
  id: string;
  customer_id: string;
  period: string;
  period_key: string;
  period_start: Int;
  period_end: Int;
  events: string;
  event_counts: string;
  final: Bool;
  revision: Int;
  computed_at: Int;
  finalized_at: IntOrNull;
  webhook_status: string;
  groups?: string | null;
}

export const toAggregation = (r: AggregationRow): AggregationRecord => {
  const eventsDecimal = JSON.parse(r.events) as Record<string, string>;
  return {
    id: r.id,
    customerId: r.customer_id,
    period: r.period as Period,
    periodKey: r.period_key,
    periodStart: int(r.period_start),
    periodEnd: int(r.period_end),
    events: numbersOf(eventsDecimal),
    eventsDecimal,
    eventCounts: JSON.parse(r.event_counts),
    final: bool(r.final),
    revision: int(r.revision),
    computedAt: int(r.computed_at),
    finalizedAt: intOrNull(r.finalized_at),
    webhookStatus: JSON.parse(r.webhook_status),
    ...(r.groups ? { groups: JSON.parse(r.groups) as Record<string, GroupTotal[]> } : {}),
  };
};

function aggregationValues(a: AggregationRecord, style: SqlStyle): unknown[] {
  return [
    a.id,
    a.customerId,
    a.period,
    a.periodKey,
    a.periodStart,
    a.periodEnd,
    JSON.stringify(a.eventsDecimal),
    JSON.stringify(a.eventCounts),
    style.bool(a.final),
    a.revision,
    a.computedAt,
    a.finalizedAt,
    JSON.stringify(a.webhookStatus),
    a.groups ? JSON.stringify(a.groups) : null,
  ];
}

/** One aggregation's column values in table order, as SQLite binds them (final as 0/1). */
export const aggregationParams = (a: AggregationRecord): unknown[] => aggregationValues(a, SQLITE_STYLE);

/** The same values column by column, for a PostgreSQL unnest() upsert of many. */
export const aggregationColumns = (list: AggregationRecord[]): unknown[][] =>
  columnsOf(
    list.map((a) => aggregationValues(a, POSTGRES_STYLE)),
    14,
  );

export interface MessageRow {
  id: string;
  aggregation_id: string;
  revision: Int;
  type: string;
  customer_id: string;
  period: string;
  created_at: Int;
  body: string;
}

export const toMessage = (r: MessageRow): OutboxMessage => ({
  id: r.id,
  aggregationId: r.aggregation_id,
  revision: int(r.revision),
  type: r.type as OutboxMessage['type'],
  customerId: r.customer_id,
  period: r.period as Period,
  createdAt: int(r.created_at),
  body: r.body,
});

/** A message's column values in table order (id, aggregation_id, revision, type, customer_id, period, created_at, body). */
export const messageParams = (m: OutboxMessage): unknown[] => [
  m.id,
  m.aggregationId,
  m.revision,
  m.type,
  m.customerId,
  m.period,
  m.createdAt,
  m.body,
];

/** The same values column by column, for a PostgreSQL unnest() insert of many. */
export const messageColumns = (list: OutboxMessage[]): unknown[][] => columnsOf(list.map(messageParams), 8);

export interface DeliveryRow {
  id: string;
  message_id: string;
  endpoint_id: string;
  aggregation_id: string;
  status: string;
  attempts: Int;
  next_attempt_at: IntOrNull;
  lease_owner: string | null;
  lease_until: IntOrNull;
  created_at: Int;
  updated_at: Int;
  deadline_at: Int;
  last_status_code: IntOrNull;
  last_error: string | null;
  delivered_at: IntOrNull;
  dry_run: Bool;
}

export const toDelivery = (r: DeliveryRow): DeliveryRecord => ({
  id: r.id,
  messageId: r.message_id,
  endpointId: r.endpoint_id,
  aggregationId: r.aggregation_id,
  status: r.status as DeliveryStatus,
  attempts: int(r.attempts),
  nextAttemptAt: intOrNull(r.next_attempt_at),
  leaseOwner: textOrNull(r.lease_owner),
  leaseUntil: intOrNull(r.lease_until),
  createdAt: int(r.created_at),
  updatedAt: int(r.updated_at),
  deadlineAt: int(r.deadline_at),
  lastStatusCode: intOrNull(r.last_status_code),
  lastError: textOrNull(r.last_error),
  deliveredAt: intOrNull(r.delivered_at),
  dryRun: bool(r.dry_run),
});

export interface AttemptRow {
  delivery_id: string;
  attempt: Int;
  started_at: Int;
  duration_ms: Int;
  status_code: IntOrNull;
  error_class: string | null;
  error: string | null;
  response_body: string | null;
  webhook_timestamp: Int;
  dry_run: Bool;
  manual: Bool;
}

export const toAttempt = (r: AttemptRow): AttemptRecord => ({
  deliveryId: r.delivery_id,
  attempt: int(r.attempt),
  startedAt: int(r.started_at),
  durationMs: int(r.duration_ms),
  statusCode: intOrNull(r.status_code),
  errorClass: textOrNull(r.error_class),
  error: textOrNull(r.error),
  responseBody: textOrNull(r.response_body),
  webhookTimestamp: int(r.webhook_timestamp),
  dryRun: bool(r.dry_run),
  manual: bool(r.manual),
});

/**
 * An attempt's column values in table order (delivery_id, attempt, started_at, duration_ms, status_code,
 * error_class, error, response_body, webhook_timestamp, dry_run, manual), booleans as the driver binds them.
 */
export const attemptParams = (a: AttemptRecord, style: SqlStyle): unknown[] => [
  a.deliveryId,
  a.attempt,
  a.startedAt,
  a.durationMs,
  a.statusCode,
  a.errorClass,
  a.error,
  a.responseBody,
  a.webhookTimestamp,
  style.bool(a.dryRun),
  style.bool(a.manual),
];

export interface EndpointRow {
  id: string;
  url: string;
  disabled_at: IntOrNull;
  disabled_reason: string | null;
  last_success_at: IntOrNull;
  last_failure_at: IntOrNull;
  failure_streak: Int;
}

export const toEndpoint = (r: EndpointRow): EndpointState => ({
  id: r.id,
  url: r.url,
  disabledAt: intOrNull(r.disabled_at),
  disabledReason: textOrNull(r.disabled_reason),
  lastSuccessAt: intOrNull(r.last_success_at),
  lastFailureAt: intOrNull(r.last_failure_at),
  failureStreak: int(r.failure_streak),
});

export interface ApiKeyRow {
  id: string;
  hash: string;
  prefix: string;
  name: string;
  /** Comma-separated scopes in canonical order. */
  scopes: string;
  created_at: Int;
  revoked_at: IntOrNull;
  customer_id?: string | null;
  expires_at?: IntOrNull;
  rate_rps?: number | string | null;
  rate_burst?: IntOrNull;
}

export const toApiKey = (r: ApiKeyRow): ApiKeyRecord => ({
  id: r.id,
  hash: r.hash,
  prefix: r.prefix,
  name: r.name,
  // A name this version does not know (written by a newer one) grants nothing here.
  scopes: parseScopes(r.scopes).scopes,
  createdAt: int(r.created_at),
  revokedAt: intOrNull(r.revoked_at),
  customerId: r.customer_id ?? null,
  expiresAt: intOrNull(r.expires_at),
  rateLimit:
    r.rate_rps === null || r.rate_rps === undefined ? null : { requestsPerSecond: Number(r.rate_rps), burst: int(r.rate_burst ?? 1) },
});

/** The api_keys columns both adapters insert, and the values of a record in that order. */
export const API_KEY_COLUMNS = 'id, hash, prefix, name, scopes, created_at, revoked_at, customer_id, expires_at, rate_rps, rate_burst';
export const apiKeyParams = (k: ApiKeyRecord): unknown[] => [
  k.id,
  k.hash,
  k.prefix,
  k.name,
  k.scopes.join(','),
  k.createdAt,
  k.revokedAt,
  k.customerId ?? null,
  k.expiresAt ?? null,
  k.rateLimit?.requestsPerSecond ?? null,
  k.rateLimit?.burst ?? null,
];

/** Rows of values turned into one array per column (PostgreSQL's unnest() parameters). */
function columnsOf(rows: unknown[][], width: number): unknown[][] {
  const cols: unknown[][] = Array.from({ length: width }, () => new Array<unknown>(rows.length));
  rows.forEach((row, i) => {
    row.forEach((v, j) => {
      cols[j]![i] = v;
    });
  });
  return cols;
}
