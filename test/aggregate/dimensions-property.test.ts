// Groups and unique counts against a brute-force oracle: random metadata (missing keys, nulls, numbers, booleans,
// nested values), ISO-week and year edges, duplicates, random batch splits and late events after a first close;
// and the current usage of the open week, month and year through their running merges, current and stale.
// store-contract: sqlite, postgres
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { closeDuePeriods } from '../../src/aggregate/close-due-periods.js';
import { currentUsage } from '../../src/aggregate/current-usage.js';
import { advanceGroupMerges, groupedOperators } from '../../src/aggregate/group-merges.js';
import type { Operator } from '../../src/config/schema.js';
import { periodInterval, type Period } from '../../src/domain/periods.js';
import { buildTestApp, REFERENCE_CONFIG, type TestApp } from '../helpers/app.js';
import {
  docKey,
  oracleAggregations,
  oracleScaled,
  oracleText,
  type OracleDoc,
  type OracleEvent,
  type OracleMeter,
} from '../helpers/oracle.js';

const T = (iso: string): number => Date.parse(iso);
const DAY = 86_400_000;
const PERIODS: Period[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];
const METERS = {
  tokens: { op: 'sum', groupBy: ['model', 'region'] },
  calls: { op: 'count', groupBy: ['endpoint'] },
  latency: { op: 'max', groupBy: ['model'] },
  firstSeen: { op: 'first', groupBy: ['region'] },
  cost: { op: 'avg', groupBy: ['region'] },
  floor: { op: 'min', groupBy: ['endpoint'] },
  lastSeen: { op: 'last', groupBy: ['model'] },
  users: { op: 'unique', field: 'userId', groupBy: ['plan'] },
  devices: { op: 'unique', field: 'deviceId' },
  plain: { op: 'sum' },
} as const;
const CONFIG = { ...REFERENCE_CONFIG, periods: PERIODS, maxEventAge: '60d', events: METERS };
const OPS = Object.fromEntries(Object.entries(METERS).map(([t, m]) => [t, m.op as Operator]));
const ORACLE_METERS: Record<string, OracleMeter> = Object.fromEntries(
  Object.entries(METERS).map(([t, m]) => [
    t,
    { groupBy: 'groupBy' in m ? m.groupBy : undefined, field: 'field' in m ? m.field : undefined },
  ]),
);
const TYPES = Object.keys(METERS);

// Around the ISO week-year and calendar-year edge of 2025/2026 (Monday 2025-12-29 starts ISO week 202601).
const START = T('2025-12-20T00:00:00Z');
const END = T('2026-01-12T00:00:00Z');
const EDGES = ['2025-12-29T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-05T00:00:00Z'].map(T);
const INGEST_NOW = END;
const CLOSE_AT = T('2027-01-01T00:05:00Z');

const tsArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: START, max: END - 1 }) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...EDGES), fc.constantFrom(-3_600_000, -1, 0, 1)).map(([e, o]) => e + o) },
);

/** Dimension values of every kind the rule names: strings, numbers, booleans, null, objects, arrays, and absent. */
const dimArb = fc.oneof(
  fc.constantFrom('gpt-4o', 'llama', 'eu', 'us', '', 'ünï', '1.5'),
  fc.constantFrom(1.5, 10, 0, -2, 1e21),
  fc.boolean(),
  fc.constant(null),
  fc.constant({ nested: 'x' }),
  fc.constant(['a']),
  fc.constant(undefined),
);
const userArb = fc.oneof(
  fc.constantFrom('u1', 'u2', 'u3', 'u4', 7, true, `long-${'x'.repeat(80)}`),
  fc.constant(undefined),
  fc.constant(null),
);

const eventArb = fc.record({
  c: fc.nat({ max: 2 }),
  type: fc.constantFrom(...TYPES),
  value: fc.oneof(fc.integer({ min: -50, max: 50 }), fc.constantFrom(0.1, 0.2, 0.3, 1.25)),
  ts: tsArb,
  dims: fc.record({ model: dimArb, region: dimArb, endpoint: dimArb, plan: dimArb }),
  userId: userArb,
  deviceId: userArb,
  idTag: fc.option(fc.integer({ min: 0, max: 30 }), { nil: null }),
  late: fc.boolean(),
});

interface Wire {
  eventType: string;
  customerId: string;
  value: number;
  timestamp: number;
  id?: string;
  metadata?: Record<string, unknown>;
}

type RawEvent = typeof eventArb extends fc.Arbitrary<infer E> ? E : never;

function wireOf(raw: RawEvent, i: number): Wire {
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries({ ...raw.dims, userId: raw.userId, deviceId: raw.deviceId })) if (v !== undefined) metadata[k] = v;
  const w: Wire = { eventType: raw.type, customerId: `c${raw.c}`, value: raw.value, timestamp: raw.ts, metadata };
  if (raw.idTag !== null) w.id = `e${i}`;
  return w;
}

const scenarioArb = fc
  .record({
    raw: fc.array(eventArb, { minLength: 1, maxLength: 80, size: 'max' }),
    dupPicks: fc.array(fc.nat(), { maxLength: 10 }),
    sizes: fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 1, maxLength: 3 }),
  })
  .map((s) => {
    const base = s.raw.map((r, i) => ({ w: wireOf(r, i), late: r.late }));
    const withId = base.filter((b) => b.w.id !== undefined);
    const dups = withId.length === 0 ? [] : s.dupPicks.map((p) => withId[p % withId.length]!);
    return {
      first: [...base.filter((b) => !b.late), ...dups].map((b) => b.w),
      late: base.filter((b) => b.late).map((b) => b.w),
      sizes: s.sizes,
    };
  });

async function ingest(t: TestApp, send: readonly Wire[], sizes: readonly number[]): Promise<void> {
  for (let i = 0, k = 0; i < send.length; k++) {
    const n = sizes[k % sizes.length]!;
    const batch = send.slice(i, i + n);
    i += n;
    const r = await t.app.inject({ method: 'POST', url: '/usagebatch', headers: t.headers, payload: batch });
    assert.ok(r.statusCode === 201 || r.statusCode === 200, `POST /usagebatch → ${r.statusCode} ${r.body}`);
  }
}

interface Doc extends OracleDoc {
  groups?: Record<string, Array<{ dimensions: Record<string, string | null>; value: number; valueDecimal: string; count: number }>>;
  revision: number;
  id: string;
}

async function allDocs(t: TestApp): Promise<Doc[]> {
  const r = await t.app.inject({ method: 'GET', url: '/aggregations', query: { limit: '1000' }, headers: t.headers });
  assert.equal(r.statusCode, 200, r.body);
  return r.json() as Doc[];
}

function assertMatches(docs: Doc[], oracle: Map<string, OracleDoc>): void {
  assert.equal(docs.length, oracle.size, 'one document per oracle period');
  for (const d of docs) {
    const where = `${d.customerId} ${d.period} ${d.periodKey}`;
    const o = oracle.get(docKey(d.customerId, d.period, d.periodKey));
    assert.ok(o, `extra aggregation ${where}`);
    assert.deepEqual(d.eventsDecimal, o.eventsDecimal, where);
    assert.deepEqual(d.eventCounts, o.eventCounts, where);
    const groups = d.groups && Object.fromEntries(Object.entries(d.groups).map(([t, gs]) => [t, gs.map(({ value: _v, ...g }) => g)]));
    assert.deepEqual(groups, o.groups, `${where} groups`);
    for (const [type, gs] of Object.entries(d.groups ?? {})) {
      for (const g of gs) assert.equal(g.value, Number(g.valueDecimal), `${where} ${type} value is the decimal's double`);
      const op = OPS[type];
      if (op === 'sum' || op === 'count') {
        const sum = gs.reduce((n, g) => n + oracleScaled(Number(g.valueDecimal)), 0n);
        assert.equal(oracleText(sum), d.eventsDecimal[type], `${where} ${type}: groups add up to the total, exactly`);
      }
      assert.equal(
        gs.reduce((n, g) => n + g.count, 0),
        d.eventCounts[type],
        `${where} ${type}: group counts add up`,
      );
    }
  }
}

/** The instants of the two advances, inside the open ISO week of 2026-01-05 and the open January. */
const ADVANCES = [T('2026-01-05T10:30:00Z'), T('2026-01-09T12:00:00Z')] as const;
/** Where the second advance leaves the merges: the hour of its instant less the grace period. */
const throughOf = (t: TestApp) => {
  const settled = ADVANCES[1] - t.ctx.config.gracePeriodMs;
  return settled - (settled % 3_600_000);
};
const OPEN: Array<[Period, number]> = [
  ['weekly', ADVANCES[1]],
  ['monthly', ADVANCES[1]],
  ['yearly', ADVANCES[1]],
];

/**
 * Current usage of each open period equals the oracle's document for it, and the store answered through a
 * current merge for each customer with usage in `merged` (what the last advance saw), or past a stale one
 * exactly for those with a new `late` event since (not a replay of a stored id) in the hours the merge covers.
 */
async function assertUsage(t: TestApp, oracle: Map<string, OracleDoc>, merged: readonly Wire[], late: readonly Wire[]): Promise<void> {
  for (const [period, at] of OPEN) {
    const iv = periodInterval(period, at);
    for (const c of ['c0', 'c1', 'c2']) {
      const u = await currentUsage(t.ctx, c, period, at);
      const o = oracle.get(docKey(c, period, u.periodKey));
      const where = `${c} ${period} ${u.periodKey}`;
      assert.deepEqual(u.eventsDecimal, o?.eventsDecimal ?? {}, where);
      assert.deepEqual(u.eventCounts, o?.eventCounts ?? {}, where);
      const groups = u.groups && Object.fromEntries(Object.entries(u.groups).map(([k, gs]) => [k, gs.map(({ value: _v, ...g }) => g)]));
      assert.deepEqual(groups, o?.groups, `${where} groups`);
      const path = (await t.store.mergedPeriod(c, period, iv.start, iv.end, groupedOperators(t.ctx.config))).merge;
      const covered = (ts: number) => ts >= iv.start && ts < throughOf(t);
      // The last advance built a merge for each customer that had usage in the period by then (`merged`).
      const built = merged.some((w) => w.customerId === c && w.timestamp >= iv.start && w.timestamp < iv.end);
      const stored = new Set(merged.filter((w) => w.id !== undefined).map((w) => `${w.customerId} ${w.eventType} ${w.id}`));
      const isNew = (w: Wire) => w.id === undefined || !stored.has(`${w.customerId} ${w.eventType} ${w.id}`);
      const stale = late.some((w) => w.customerId === c && covered(w.timestamp) && isNew(w));
      const expected = !built ? 'none' : stale ? 'stale' : 'current';
      assert.equal(path, expected, `${where}: how the store read the groups`);
    }
  }
}

const toOracle = (send: readonly Wire[]): OracleEvent[] =>
  send.map((w) => ({
    customerId: w.customerId,
    eventType: w.eventType,
    value: w.value,
    ts: w.timestamp,
    id: w.id ?? null,
    metadata: w.metadata,
  }));

describe('groups and unique counts match a brute-force oracle (property)', () => {
  it('random metadata, duplicates, batch splits and late events: every document, its groups and its webhook', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (s) => {
        const t = await buildTestApp({ config: CONFIG, now: INGEST_NOW });
        try {
          await ingest(t, s.first, s.sizes);
          // Running merges of the open week, month and year: built at the first advance, extended at the second.
          for (const at of ADVANCES) await advanceGroupMerges(t.ctx, at);
          const merged = oracleAggregations(toOracle(s.first), PERIODS, OPS, ORACLE_METERS);
          await assertUsage(t, merged, s.first, []);
          t.clock.set(CLOSE_AT);
          await closeDuePeriods(t.ctx);
          assertMatches(await allDocs(t), oracleAggregations(toOracle(s.first), PERIODS, OPS, ORACLE_METERS));
          // Late events (the clock goes back to when they were sent, inside maxEventAge), then a second close.
          t.clock.set(INGEST_NOW);
          await ingest(t, s.late, s.sizes);
          // A late event in hours a merge covers makes it stale: reads merge the hours themselves, and the next
          // advance (at the same hour) rebuilds the merges those reads reported.
          const withLate = oracleAggregations(toOracle([...s.first, ...s.late]), PERIODS, OPS, ORACLE_METERS);
          await assertUsage(t, withLate, s.first, s.late);
          const rebuilt = await advanceGroupMerges(t.ctx, ADVANCES[1]);
          assert.equal(rebuilt.advanced, 0, 'nothing new to extend at the same hour');
          await assertUsage(t, withLate, [...s.first, ...s.late], []);
          t.clock.set(CLOSE_AT + DAY);
          await closeDuePeriods(t.ctx);
          const docs = await allDocs(t);
          assertMatches(docs, oracleAggregations(toOracle([...s.first, ...s.late]), PERIODS, OPS, ORACLE_METERS));
          // The newest message of each document carries its groups, and the previous revision's when it is an update.
          for (const d of docs) {
            const msgs = await t.store.listMessages(d.id);
            const last = JSON.parse(msgs[msgs.length - 1]!.body) as { data: { groups?: unknown }; previous?: { groups?: unknown } };
            assert.equal(msgs.length, d.revision);
            assert.deepEqual(last.data.groups, d.groups);
            if (d.revision > 1) {
              const before = JSON.parse(msgs[msgs.length - 2]!.body) as { data: { groups?: unknown } };
              assert.deepEqual(last.previous?.groups, before.data.groups);
            }
          }
        } finally {
          await t.close();
        }
      }),
      { numRuns: 15 },
    );
  });
});
