// Shared by the closeDuePeriods suites: instants, an in-process app per test, capture through POST /usagebatch
// and reads through GET /aggregations, as the reference's clients see them.

import assert from 'node:assert/strict';
import { periodInterval, type Period } from '../../src/domain/periods.js';
import type { AggregationRecord } from '../../src/domain/records.js';
import { buildTestApp, REFERENCE_CONFIG, type TestApp } from './app.js';
import type { OracleEvent } from './oracle.js';

export const T = (iso: string): number => {
  const ms = Date.parse(iso);
  assert.ok(Number.isFinite(ms) && iso.endsWith('Z'), `bad test instant ${iso}`);
  return ms;
};
export const MIN = 60_000;
export const GRACE = 5 * MIN;
export const ALL_PERIODS: Period[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];
export const OPS = Object.fromEntries(Object.entries(REFERENCE_CONFIG.events).map(([t, v]) => [t, v.op])) as Record<
  string,
  'sum' | 'avg' | 'min' | 'max' | 'count' | 'first' | 'last'
>;

export interface In {
  eventType: string;
  customerId: string;
  value: number;
  timestamp: string;
  id?: string;
}

/** The JSON an aggregation has in GET /aggregations. */
export interface AggJson {
  _id: string;
  id: string;
  customerId: string;
  period: Period;
  periodKey: string;
  periodStart: string;
  periodEnd: string;
  timestamp: string;
  events: Record<string, number>;
  eventsDecimal: Record<string, string>;
  eventCounts: Record<string, number>;
  final: boolean;
  revision: number;
  webhookStatus: { delivered: boolean; attempts: number };
}

export async function withApp(opts: { now: string; config?: Record<string, unknown> }, fn: (t: TestApp) => Promise<void>): Promise<void> {
  const t = await buildTestApp({ now: opts.now, ...(opts.config ? { config: opts.config } : {}) });
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

/** Stores a batch through the real HTTP ingest path; the batch must be accepted. */
export async function post(t: TestApp, events: In[]): Promise<{ count: number; inserted: number; duplicates: number }> {
  const r = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: events });
  assert.ok(r.statusCode === 201 || r.statusCode === 200, `POST /usagebatch → ${r.statusCode} ${r.body}`);
  return r.json();
}

export async function aggs(t: TestApp, query: Record<string, string>): Promise<AggJson[]> {
  const r = await t.app.inject({ method: 'GET', url: '/aggregations', query: { limit: '1000', ...query }, headers: t.headers });
  assert.equal(r.statusCode, 200, r.body);
  return r.json();
}

export async function onlyAgg(t: TestApp, query: Record<string, string>): Promise<AggJson> {
  const list = await aggs(t, query);
  assert.equal(list.length, 1, `expected exactly one aggregation for ${JSON.stringify(query)}, got ${JSON.stringify(list)}`);
  return list[0]!;
}

export async function getAgg(t: TestApp, customerId: string, period: Period, at: number): Promise<AggregationRecord | undefined> {
  return t.store.getAggregation(customerId, period, periodInterval(period, at).start);
}

export const ev = (eventType: string, customerId: string, value: number, timestamp: string, id?: string): In =>
  id === undefined ? { eventType, customerId, value, timestamp } : { eventType, customerId, value, timestamp, id };

export const toOracle = (events: In[]): OracleEvent[] =>
  events.map((e) => ({ customerId: e.customerId, eventType: e.eventType, value: e.value, ts: T(e.timestamp), id: e.id ?? null }));

export const WITH_YEARLY = { ...REFERENCE_CONFIG, periods: ALL_PERIODS };
